#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; its own browser download does
# not work offline). Prints the browser's path; installs the package when it is missing.
#   bash scripts/chromium.sh
set -euo pipefail

die() { echo "chromium.sh: $*" >&2; exit 1; }

for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [[ -x $candidate ]]; then
        echo "$candidate"
        exit 0
    fi
done

[[ $(id -u) == 0 ]] || die "Chromium is not installed and installing it needs root (apt-get install chromium)"
command -v apt-get >/dev/null 2>&1 || die "Chromium is not installed and apt-get is not available to install it"
echo "chromium.sh: installing Debian's chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# no init system here: keep packages from starting services
policy=/usr/sbin/policy-rc.d created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
status=0
{ apt-get install -y -qq --no-install-recommends chromium || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }; } >&2 || status=$?
((created_policy)) && rm -f "$policy"
((status == 0)) || die "apt-get install chromium failed"
[[ -x /usr/bin/chromium ]] || die "apt-get installed chromium but /usr/bin/chromium is missing"
echo /usr/bin/chromium

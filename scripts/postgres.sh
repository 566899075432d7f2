#!/usr/bin/env bash
# A throw-away PostgreSQL server for tests and benchmarks.
#
#   scripts/postgres.sh start [PORT]   prints two lines: the server's directory, then its URL
#   scripts/postgres.sh stop DIR       stops the server started in DIR and removes DIR
#
# With PG_OWNER_PID set, a detached watcher stops the server once that process is gone, so
# a test run that is killed (and never reaches its teardown) leaves no server behind.
# Installs Debian's `postgresql` package when initdb/pg_ctl are missing (needs root and apt).
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user
# (created by the package). The cluster lives in a fresh directory under ${TMPDIR:-/tmp}, its
# unix socket too, and listens on 127.0.0.1:PORT (a free port when none is given) with trust
# authentication: never use it for anything but tests. Extra server settings can be passed
# as `-c name=value` words in PG_EXTRA_OPTS (the test suite turns fsync off).
# Diagnostics go to stderr; stdout carries only the two result lines.
set -euo pipefail

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

find_bindir() {
    local dir
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Debian keeps the server binaries out of PATH; take the newest version installed.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [[ -x $dir/pg_ctl && -x $dir/initdb ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    [[ $(id -u) == 0 ]] || die "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available to install it"
    say "installing PostgreSQL with apt-get (initdb/pg_ctl not found)"
    # No init system here: keep the package from trying to start its own cluster.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; } >&2 || {
        ((created_policy)) && rm -f "$policy"
        die "apt-get install postgresql failed"
    }
    ((created_policy)) && rm -f "$policy"
    return 0
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

start() {
    local port=${1:-} bindir dir as_user=()
    bindir=$(find_bindir) || { install_postgres; bindir=$(find_bindir) || die "PostgreSQL binaries not found after installing"; }
    [[ -n $port ]] || port=$(free_port)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/runyard-pg.XXXXXX")
    if [[ $(id -u) == 0 ]]; then
        id -u postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as"
        chown postgres: "$dir"
        chmod 700 "$dir"
        as_user=(runuser -u postgres --)
    fi
    "${as_user[@]}" "$bindir/initdb" -D "$dir/data" -U runyard --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # shellcheck disable=SC2086  # PG_EXTRA_OPTS is a list of words on purpose
    "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 ${PG_EXTRA_OPTS:-}" start >&2 \
        || { cat "$dir/server.log" >&2; die "pg_ctl start failed"; }
    "${as_user[@]}" "$bindir/createdb" -h "$dir" -p "$port" -U runyard runyard \
        || die "createdb failed"
    echo "$bindir" >"$dir/bindir"
    if [[ -n ${PG_OWNER_PID:-} ]]; then
        setsid bash "$0" watch "$PG_OWNER_PID" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    echo "$dir"
    echo "postgresql+psycopg://runyard@127.0.0.1:$port/runyard"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR} bindir as_user=()
    [[ -f $dir/bindir ]] || die "$dir is not a directory made by 'postgres.sh start'"
    bindir=$(cat "$dir/bindir")
    [[ $(id -u) == 0 ]] && as_user=(runuser -u postgres --)
    "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || say "pg_ctl stop failed"
    rm -rf "$dir"
}

watch() {
    local pid=${1:?} dir=${2:?}
    while kill -0 "$pid" 2>/dev/null; do sleep 2; done
    if [[ -f $dir/bindir ]]; then stop "$dir"; fi
}

case ${1:-} in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    watch) shift; watch "$@" ;;
    *) die "usage: postgres.sh start [PORT] | stop DIR" ;;
esac

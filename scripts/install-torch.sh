#!/usr/bin/env bash
# Put a CPU build of PyTorch into a venv, for the DDP example (examples/ddp_train.py) and its test.
#
#   scripts/install-torch.sh [VENV]        VENV defaults to the repository's .venv
#
# Idempotent: when `import torch` already works in VENV with torch.distributed and gloo, it
# does nothing. Otherwise, the first of these that applies:
#   1. TORCH_WHEEL=/path/to/torch-*.whl: that file.
#   2. A local CPU wheel (torch-*+cpu-cpXY-*-linux_$ARCH.whl for the venv's Python) in
#      TORCH_WHEEL_DIRS (space-separated), else in pip's find-links and /opt/wheels. Machines of
#      this project's kind carry one (torch 2.13.0+cpu, 192 MB, about 50 s to install, 750 MB
#      on disk). Its dependencies are pure Python (filelock, sympy, networkx, jinja2, ...).
#   3. TORCH_INDEX_URL=...: `pip install torch` from that index (a CPU wheel index).
#   4. RUNYARD_TORCH_FROM_PYPI=1: PyPI's torch with its CUDA packages (5.3 GB, 2-3 min). PyPI
#      has no CPU-only torch for Linux, and its torch does not import without them.
# Anything else fails with one line saying what to set. pip's output goes to a log file whose
# path a failure names.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${1:-$ROOT/.venv}
PY=$VENV/bin/python

say() { printf 'install-torch: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ -x $PY ]] || die "no Python at $PY (create the venv first, e.g. make $ROOT/.venv/.installed)"

# works: torch imports in VENV with torch.distributed and gloo (sets TORCH_VERSION).
TORCH_VERSION=
works() {
    TORCH_VERSION=$("$PY" -W ignore -c '
import sys
import torch, torch.distributed as dist
print(torch.__version__)
sys.exit(0 if dist.is_available() and dist.is_gloo_available() else 1)' 2>/dev/null)
}

if works; then
    say "torch $TORCH_VERSION with gloo already works in $VENV; nothing to do"
    exit 0
fi

# One installer at a time per venv (a test set-up and a developer may both call this).
exec 9>"$VENV/.install-torch.lock"
flock 9
if works; then
    say "torch $TORCH_VERSION with gloo already works in $VENV; nothing to do"
    exit 0
fi

# find_cpu_wheel: the newest local CPU wheel for this venv's Python and machine, or nothing.
find_cpu_wheel() {
    local tag arch dirs d
    tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    arch=$(uname -m)
    if [[ -n ${TORCH_WHEEL_DIRS:-} ]]; then
        dirs=$TORCH_WHEEL_DIRS
    else
        dirs="${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true) /opt/wheels"
    fi
    for d in $dirs; do
        d=${d#file://}
        [[ -d $d ]] || continue
        compgen -G "$d/torch-*+cpu-$tag-$tag-*linux*_$arch.whl" || true
    done | sort -t- -k2,2V | tail -n 1
}

LOG=$(mktemp "${TMPDIR:-/tmp}/install-torch.XXXXXX.log")
pip_install() {
    say "pip install $* (log: $LOG)"
    local t0=$SECONDS
    if ! "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@" >>"$LOG" 2>&1; then
        die "pip install $* failed: $(grep -E '^ERROR' "$LOG" | tail -n 1 || true) (full log: $LOG)"
    fi
    say "pip install took $((SECONDS - t0)) s"
}

if [[ -n ${TORCH_WHEEL:-} ]]; then
    [[ -f $TORCH_WHEEL ]] || die "TORCH_WHEEL=$TORCH_WHEEL is not a file"
    pip_install "$TORCH_WHEEL"
elif wheel=$(find_cpu_wheel) && [[ -n $wheel ]]; then
    pip_install "$wheel"
elif [[ -n ${TORCH_INDEX_URL:-} ]]; then
    pip_install --index-url "$TORCH_INDEX_URL" torch
elif [[ ${RUNYARD_TORCH_FROM_PYPI:-} == 1 ]]; then
    pip_install torch
else
    die "no CPU torch wheel for $("$PY" -c 'import sys; print(sys.version.split()[0])') on $(uname -m) in" \
        "${TORCH_WHEEL_DIRS:-pip find-links or /opt/wheels}; set TORCH_WHEEL=FILE, TORCH_WHEEL_DIRS=DIR," \
        "TORCH_INDEX_URL=URL (a CPU index) or RUNYARD_TORCH_FROM_PYPI=1 (PyPI's torch, 5.3 GB with CUDA)"
fi

works || die "torch installed in $VENV but torch.distributed with gloo does not work:" \
    "$("$PY" -W ignore -c 'import torch, torch.distributed as d; print(d.is_gloo_available())' 2>&1 | tail -n 1) (log: $LOG)"
rm -f "$LOG"
say "torch $TORCH_VERSION with gloo works in $VENV"

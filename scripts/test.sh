#!/usr/bin/env bash
# Every test, as CI runs it: lint, types, the web UI's Vitest suite, then pytest (the web UI is
# built by `make test` first). The tests start their own PostgreSQL (scripts/postgres.sh installs
# Debian's package when it is missing) and Chromium (scripts/chromium.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests
.venv/bin/mypy
(cd web && node_modules/.bin/vitest run --reporter=dot)
exec .venv/bin/pytest "$@"

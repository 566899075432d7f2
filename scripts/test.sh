#!/usr/bin/env bash
# Every test, as CI runs it: lint, types, then pytest. The tests start their own PostgreSQL
# (scripts/postgres.sh installs Debian's package when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests
.venv/bin/mypy
(cd web && node_modules/.bin/vitest run --reporter=dot)
exec .venv/bin/pytest "$@"

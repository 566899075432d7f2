# The two commands of the README: `make demo` (the main job) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WEBUI := src/runyard/server/webui/index.html
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

.PHONY: demo test bench lint clean web screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the web UI, built into the Python package (served by `runyard server`)
$(WEBUI): web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent build

web: $(WEBUI)

demo: $(VENV)/.installed $(WEBUI)
	$(PY) scripts/demo.py

test: $(VENV)/.installed $(WEBUI)
	bash scripts/test.sh

bench: $(VENV)/.installed $(WEBUI)
	$(PY) benchmarks/run.py

# README screenshots of the runs table, a run page and the cluster page, from real data
screenshots: $(VENV)/.installed $(WEBUI)
	RUNYARD_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q tests/browser

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	cd web && npm run --silent typecheck

clean:
	rm -rf $(VENV) .runyard .pytest_cache .mypy_cache .ruff_cache web/node_modules src/runyard/server/webui

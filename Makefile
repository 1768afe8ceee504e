# Two commands on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
JS_TEST_LOCK := $(wildcard tests/js/package-lock.json)
# The web client is rebuilt whenever a file under web/ (but its outputs) changes.
WEB_SRC := $(shell find web -path web/node_modules -prune -o -path web/dist -prune -o -type f -print 2>/dev/null)
WEB_BUILD := $(if $(wildcard web/package.json),web/dist/index.html)

.PHONY: install run test lint bench clean

install: $(STAMP) $(WEB_BUILD)

$(STAMP): pyproject.toml $(JS_TEST_LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@if [ -f tests/js/package.json ]; then npm ci --prefix tests/js --no-audit --no-fund; fi
	touch $(STAMP)

web/dist/index.html: $(WEB_SRC)
	npm ci --prefix web --no-audit --no-fund
	npm run --prefix web build

run: install
	$(VENV)/bin/codementor serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

bench: install
	npm ci --prefix bench --no-audit --no-fund
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) tests/js/node_modules bench/node_modules web/node_modules web/dist

# Two commands on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
NPM_LOCKS := $(wildcard web/package-lock.json tests/js/package-lock.json)

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml $(NPM_LOCKS)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@if [ -f web/package.json ]; then npm ci --prefix web && npm run --prefix web build; fi
	@if [ -f tests/js/package.json ]; then npm ci --prefix tests/js --no-audit --no-fund; fi
	touch $(STAMP)

run: install
	$(VENV)/bin/codementor serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	npm ci --prefix bench --no-audit --no-fund
	$(PY) bench/latency.py

clean:
	rm -rf $(VENV) tests/js/node_modules bench/node_modules web/node_modules web/dist

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

# The suites that face the websocket transport, run a second time on stock uvicorn
# websockets (CODEMENTOR_WS_FAST_PATH=off): the fallback must keep every promise too.
TRANSPORT_SUITES := tests/test_smoke_sync.py tests/test_bad_input.py tests/test_slow_consumer.py \
	tests/test_roles.py tests/test_awareness.py tests/test_interop_yjs.py tests/test_durability.py

.PHONY: install run test lint bench lock clean system-run system-test

# Missing Debian packages are installed (as root or with passwordless sudo) or named.
system-run:
	@.ci/system-packages run

system-test:
	@.ci/system-packages test

install: system-run $(STAMP) $(WEB_BUILD)

# Exact versions from the lock (the same the Dockerfile installs), then our package.
$(STAMP): pyproject.toml requirements-dev.lock $(JS_TEST_LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@if [ -f tests/js/package.json ]; then npm ci --prefix tests/js --no-audit --no-fund; fi
	touch $(STAMP)

web/dist/index.html: $(WEB_SRC)
	npm ci --prefix web --no-audit --no-fund
	npm run --prefix web build

run: install
	$(VENV)/bin/codementor serve --host $(HOST) --port $(PORT)

# Tests run in TEST_WORKERS processes (pytest-xdist; a file stays on one worker, so its
# module fixtures are made once); most wait on sockets and subprocesses, so 3 fit 2 cores.
# Tests marked `serial` measure against the clock or a CPU budget: they run alone after.
TEST_WORKERS ?= 3
PARALLEL := -n $(TEST_WORKERS) --dist loadfile -m "not serial"

test: system-test install
	$(PY) -m pytest $(PARALLEL)
	$(PY) -m pytest -m serial
	CODEMENTOR_WS_FAST_PATH=off $(PY) -m pytest $(PARALLEL) $(TRANSPORT_SUITES)
	CODEMENTOR_WS_FAST_PATH=off $(PY) -m pytest -m serial $(TRANSPORT_SUITES)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

bench: install
	npm ci --prefix bench --no-audit --no-fund
	$(PY) bench/run.py

# After changing dependencies in pyproject.toml: pin them again (needs the registry, and
# uv, which `make install` puts in .venv), then `make install`.
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
		--generate-hashes --quiet -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --quiet -o requirements-dev.lock

clean:
	rm -rf $(VENV) tests/js/node_modules bench/node_modules web/node_modules web/dist

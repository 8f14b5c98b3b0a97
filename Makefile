# ucp-dtn — the two commands of the README's quick start are `make demo` and `make test`.
# Each creates .venv when it is missing, so both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint check tools bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# System tools the tests use: tshark (the bpv7/tcpcl dissectors of the differential tests) and
# headless Chromium with its WebDriver (the dashboard test loads the page in a real browser).
# Installed when missing and we are root (CI and the dev machines run as root); otherwise the
# tests that need them are skipped, saying why.
tools:
	@command -v tshark >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark) >/dev/null; \
	  else echo "tshark not found: its differential tests will be skipped (apt-get install tshark)"; fi; }
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver) >/dev/null 2>&1 \
	      || echo "chromium could not be installed: the dashboard's browser test will be skipped"; \
	  else echo "chromium not found: the dashboard's browser test will be skipped (apt-get install chromium chromium-driver)"; fi; }

demo: setup
	$(VENV)/bin/ucp demo

test: setup tools
	$(PY) -bb -m pytest -q

lint: setup
	$(VENV)/bin/ruff check bpv7 convergence ucp_dtn tests bench
	$(VENV)/bin/ruff format --check bpv7 convergence ucp_dtn tests bench
	$(VENV)/bin/mypy --strict bpv7 convergence ucp_dtn

check: test lint

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Rebuild the audio-classifier workload (ucp_dtn/workloads/classifier.wasm is committed; this
# needs clang lld wasi-libc libclang-rt-14-dev-wasm32, see workloads/classifier/README.md).
.PHONY: classifier
classifier:
	workloads/classifier/build.sh

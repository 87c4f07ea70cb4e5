# The two commands: `make demo` (run the portal with demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install chromium ocean-venv demo test bench fuzz stop clean
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 20261204
JQ_FAST_EXAMPLES ?= 20000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the browser tests (tests/e2e); Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get install -y --no-install-recommends chromium \
	  || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }; }

# Python >= 3.12 venv with port-ocean under .portal/ocean-venv for tests/ocean (built once, reused; without a
# Python >= 3.12 here those tests skip, saying so). The tests build it themselves when it is missing.
ocean-venv: install
	$(PY) tests/ocean/ocean_venv.py || true

demo: install
	$(PY) manage.py demo --port $(PORT)

test: install chromium ocean-venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The schemathesis run of `make test` (tests/portal/test_openapi_fuzz.py) with many more examples per operation, and
# the in-process jq subset against the jq sandbox (tests/portal/test_jq_fast.py) on many more generated expressions.
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) JQ_FAST_EXAMPLES=$(JQ_FAST_EXAMPLES) \
		$(PY) -m pytest -q tests/portal/test_openapi_fuzz.py tests/portal/test_jq_fast.py $(PYTEST_ARGS)

bench: install
	$(PY) tests/benchmarks/run.py $(BENCH_ARGS)

stop:
	$(PY) -m portal.embedded stop

clean: stop
	rm -rf .portal

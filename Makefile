# Two commands set up a fresh machine and do the work:
#   make demo                - create .venv, install torch + pt2serde, run `pt2serde demo`
#   make test                - create .venv, install torch + pt2serde[test] (and Chromium for the
#                              browser tests, as root with apt-get), run the test suite (CI: .ci/run)
# and around them:
#   make test TORCH=2.14.1   - the same suite against another torch release, in its own .venv-2.14.1
#   make test-big            - the opt-in tests of archives over 4 GiB (~12 GiB free RAM, ~8 GiB disk)
#   make bench               - the serialize benchmark
#   make bench-models        - real architectures (transformers, random weights): load, first output, serialize
# TORCH_INDEX=https://download.pytorch.org/whl/cpu installs torch from PyTorch's CPU-only index
# (on Linux, PyPI's torch wheel is a multi-GB CUDA build).
PY ?= python3
TORCH ?= 2.13.0
TORCH_INDEX ?=
# the default release keeps the historical .venv; every other release gets its own venv
ifeq ($(TORCH),2.13.0)
VENV ?= .venv
else
VENV ?= .venv-$(TORCH)
endif
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

# torch is installed alone first, as torch==$(TORCH) (never a bare `torch` requirement; see
# README), with pip's progress shown: it is the long part. The second pip call pins it again
# so that nothing else may replace it.
$(VENV)/.torch-$(TORCH):
	$(PY) -m venv $(VENV)
	@echo "installing torch==$(TORCH) into $(VENV) (a large download: this can take several minutes)"
	$(PIP) install --progress-bar on $(TORCH_FROM) torch==$(TORCH)
	touch $@

# the demo needs torch and the package only
$(VENV)/.demo: $(VENV)/.torch-$(TORCH) pyproject.toml
	$(PIP) install -q torch==$(TORCH) -e .
	touch $@

# bench/models.py needs the bench extra (transformers)
$(VENV)/.bench: $(VENV)/.torch-$(TORCH) pyproject.toml
	$(PIP) install -q torch==$(TORCH) -e '.[bench]'
	touch $@

# the suite needs the test extra as well
$(VENV)/.test: $(VENV)/.torch-$(TORCH) pyproject.toml
	$(PIP) install -q torch==$(TORCH) -e '.[test]'
	touch $@

# the browser tests (tests/browser) drive Debian's Chromium (/usr/bin/chromium) through Playwright,
# which the test extra installs; no browser is downloaded. Chromium is installed here when it is
# missing and we are root with apt-get; otherwise this says the browser tests will be skipped, and
# why (each run, until Chromium is there: the stamp is written only then).
$(VENV)/.browser: | $(VENV)/.test
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Chromium for the browser tests: apt-get update && apt-get install -y chromium"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	    || echo "apt-get install chromium failed"; \
	fi
	@if [ -x /usr/bin/chromium ]; then echo "browser tests: using /usr/bin/chromium" && touch $@; \
	else echo "the browser tests (tests/browser) will be skipped: no /usr/bin/chromium, and it could not be" \
	  "installed here (that needs root and apt-get)"; fi

.PHONY: demo test test-big bench bench-models
demo: $(VENV)/.demo
	$(BIN)/pt2serde demo

test: $(VENV)/.test $(VENV)/.browser
	$(BIN)/python -m pytest -q

# archives over 4 GiB; the test fails (it does not skip) on a machine without the RAM and disk
test-big: $(VENV)/.test
	$(BIN)/python -m pytest -q -m big

bench: $(VENV)/.test
	$(BIN)/python bench/serialize.py

# BENCH_ARGS="--quick" for a smoke run, "--models gpt2-124M,bert-base --repeat 3 --json out.json" ...
bench-models: $(VENV)/.bench
	$(BIN)/python bench/models.py $(BENCH_ARGS)

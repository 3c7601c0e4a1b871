# lesionsynth — set-up and entry points. Two commands do everything: `make demo` and `make test`.
TORCH_VERSION ?= 2.13.0
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(TORCH_VERSION)
PYTEST_ARGS ?=

.PHONY: install test test-min demo lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned, so no dependency ever pulls another (multi-GB) build
	$(PIP) install -q "torch==$(TORCH_VERSION)"
	$(PIP) install -q -e ".[test]" "torch==$(TORCH_VERSION)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# the whole suite against the dependencies' lower bounds (requirements-min.txt), in its own venv
MIN_VENV ?= .venv-min
test-min:
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(MIN_VENV)/bin/python -m pip install -q -c requirements-min.txt -e ".[test]" "torch==$(TORCH_VERSION)"
	$(MIN_VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/lesionsynth demo --out demo_out

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

bench: $(STAMP)
	$(PIP) install -q -e ".[bench]" "torch==$(TORCH_VERSION)"
	$(PY) benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) $(MIN_VENV) demo_out .pytest_cache

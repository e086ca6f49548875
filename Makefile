# make demo | test | test-all | check | bench — each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
# TEST_ALL=1 (set by `make test-all` and CI) also runs the slow crash/soak tests.
PYTEST_MARK := $(if $(TEST_ALL),-m "",)

.PHONY: demo test test-all check bench bench-runner generate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  (echo "leaseq needs Python >= 3.11: make PYTHON=python3.11 ..." >&2; exit 1)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_MARK)

test-all:
	$(MAKE) test TEST_ALL=1

generate: $(STAMP)
	$(BIN)/python scripts/unasync.py

check: $(STAMP)
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/mypy
	$(BIN)/python scripts/unasync.py --check

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

# The task-runner bench compares with osiiso, which needs Python 3.13 (pyenv has it).
bench/.venv313/.installed: pyproject.toml
	PYENV_VERSION=3.13.0 python3.13 -m venv bench/.venv313
	bench/.venv313/bin/pip install -q osiiso==1.1.0 -e .
	@touch $@

bench-runner: bench/.venv313/.installed
	bench/.venv313/bin/python -m bench runner $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

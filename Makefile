# The two README commands: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL ?= cnn-lectures
# pytest-xdist workers for `make test` (notebooks are grouped per file)
JOBS   ?= 2
# each worker (and each notebook kernel it starts) computes on one thread: two workers with
# torch's default of one thread per core would fight over the cores and run several times slower
THREADS ?= 1
PARALLEL_ENV := OMP_NUM_THREADS=$(THREADS) MKL_NUM_THREADS=$(THREADS)

.PHONY: lab test setup unit notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Python ($(KERNEL))"
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

test: setup
	$(PARALLEL_ENV) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope

unit: setup
	$(BIN)/python -m pytest tests

notebooks: setup
	$(PARALLEL_ENV) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope notebooks

clean:
	rm -rf $(VENV) .pytest_cache

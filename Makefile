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

# `make lab`: JupyterLab refuses to run as root (containers, cloud VMs) unless given --allow-root; with
# no display (and not macOS) there is no browser to open, so it only prints the URL. LAB_ARGS adds options
# (e.g. LAB_ARGS="--ip=0.0.0.0 --port=8888"). tests/test_lab.py starts the server with this same command.
LAB_UID   ?= $(shell id -u 2>/dev/null)
LAB_OS    ?= $(shell uname -s 2>/dev/null)
LAB_FLAGS  = $(if $(filter 0,$(LAB_UID)),--allow-root) $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(LAB_OS))),,--no-browser)
LAB_ARGS  ?=
LAB_CMD    = $(strip $(BIN)/jupyter lab $(LAB_FLAGS) $(LAB_ARGS) notebooks/)

.PHONY: lab lab-command test setup unit notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Python ($(KERNEL))"
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	@echo "Starting JupyterLab on notebooks/: open the URL with the token that it prints below; Ctrl-C stops it."
	$(LAB_CMD)

# print the command `make lab` runs (without installing anything)
lab-command:
	@echo '$(LAB_CMD)'

test: setup
	$(PARALLEL_ENV) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope

unit: setup
	$(BIN)/python -m pytest tests

notebooks: setup
	$(PARALLEL_ENV) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope notebooks

clean:
	rm -rf $(VENV) .pytest_cache

# The two README commands: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
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
	rm -rf $(VENV) .pytest_cache build

# ---------------------------------------------------------------------------------------------
# Slides and handouts (docs/teaching.md), made from the lessons as they are stored: nothing is run.
# `make slides`: build/slides/NN_name.slides.html, one reveal.js deck per lesson, and an index.html.
# reveal.js comes from the PyPI package sphinx-revealjs and MathJax from jupyter-server-mathjax (both
# installed by `make setup`), copied beside the decks: they open offline. The slide types come from
# each lesson's headings, text and outputs when the deck is built (lecture_utils.slideshow).
# `make handouts`: build/handouts/: an HTML page per lesson with its outputs, an index.html, and a PDF per
# lesson printed by headless Chromium (Debian: apt-get install chromium fonts-noto-cjk). Without Chromium
# it writes the HTML pages, says so in one line and fails; `make handouts PDF=no` leaves the PDFs out.
PDF ?= yes
.PHONY: slides handouts
slides: setup
	$(BIN)/python -m lecture_utils.teaching slides --out build/slides

handouts: setup
	$(BIN)/python -m lecture_utils.teaching handouts --out build/handouts $(if $(filter no,$(PDF)),--no-pdf)

# The teaching kit (docs/exercises.md): the exercise notebooks without their solution cells and outputs, for
# students; and the nine lessons without outputs and prose, for testing yourself.
.PHONY: exercises clean-copies
exercises: setup
	$(BIN)/python -m lecture_utils.exercises student-copies --out build/exercises

clean-copies: setup
	$(BIN)/python -m lecture_utils.exercises clean-copies --out build/clean

# ---------------------------------------------------------------------------------------------
# Lesson 09's stored reference run (see data/reference/README.md): lesson 09's plan with --profile reference
# (lecture_utils.experiment.plans.REFERENCE_09: Fashion-MNIST from the raw idx files, 500 training images per class,
# validated on the 500 held-out images per class and tested once, 4 epochs of the recommended recipe,
# batch 192), on the CPU, one file per part of the plan. Resumable: run the same command again.
# `make -j2 reference-09` runs its three files side by side, one compute thread each.
FMNIST   ?= /usr/share/datasets/fashion-mnist
REF      := data/reference
RUN_ARGS  = --data-root $(FMNIST) --device cpu --threads 1 --no-progress
SWEEP     = $(BIN)/python -m lecture_utils.experiment.sweep

.PHONY: reference-lessons
# Lessons 01-08's reference runs into one file (python -m lecture_utils.experiment.sweep plan lessons); `make -j2
# reference-lessons` starts two workers that share the file, one compute thread each.
LESSONS_PLAN = $(SWEEP) plan lessons --profile reference --out $(REF)/lessons.jsonl $(RUN_ARGS)
reference-lessons: reference-lessons-worker1 reference-lessons-worker2

reference-lessons-worker1 reference-lessons-worker2: setup
	$(LESSONS_PLAN)

# The zoo on equal terms (lecture_utils.experiment.plans.ZOO): lessons 01-08's networks and the two-convolution baseline
# with the recommended recipe, 1000 training images per class, 5 epochs, held-out validation, tested once.
# `make -j2 reference-zoo` starts two workers that share the file, one compute thread each.
.PHONY: reference-zoo reference-zoo-worker1 reference-zoo-worker2
reference-zoo: reference-zoo-worker1 reference-zoo-worker2

reference-zoo-worker1 reference-zoo-worker2: setup
	$(SWEEP) plan zoo --out $(REF)/zoo.jsonl $(RUN_ARGS)

# The zoo at the CPU's real scale (lecture_utils.experiment.plans.SCALE_ZOO): the same networks, recipe and held-out
# protocol on the whole training split less its held-out part, 3 epochs, batch 128; cheapest first, VGG16_bn
# last. About 6 hours of one core in all: `make -j2 reference-zoo-scale` starts two workers that share the
# file, one compute thread each; rerun it to resume.
.PHONY: reference-zoo-scale reference-zoo-scale-worker1 reference-zoo-scale-worker2
reference-zoo-scale: reference-zoo-scale-worker1 reference-zoo-scale-worker2

reference-zoo-scale-worker1 reference-zoo-scale-worker2: setup
	$(SWEEP) plan zoo-scale --out $(REF)/zoo-scale.jsonl $(RUN_ARGS)

# Lesson 09's grid at the CPU's scale (plans.grid_scale_plan: the three MobileNets x 4 widths x 64/48/32 px on
# the zoo-scale protocol, seed 0, then seeds 1-2 at width 0.35 and 32 px) into data/reference/grid-scale.jsonl;
# 5.2 hours of one core; the three conditions zoo-scale.jsonl holds are not trained again.
# `make -j2 reference-grid-scale`; rerun to resume.
.PHONY: reference-grid-scale reference-grid-scale-worker1 reference-grid-scale-worker2
reference-grid-scale: reference-grid-scale-worker1 reference-grid-scale-worker2

reference-grid-scale-worker1 reference-grid-scale-worker2: setup
	$(SWEEP) plan grid-scale --out $(REF)/grid-scale.jsonl $(RUN_ARGS)

REF_09 := $(REF)/lesson09-grid.jsonl $(REF)/lesson09-ablation.jsonl $(REF)/lesson09-augment.jsonl
.PHONY: reference-lessons-worker1 reference-lessons-worker2 reference-09 $(REF_09)

reference-09: $(REF_09)

# grid: 3 models x 4 widths x 5 resolutions (28 px down to 12 px) and the two-convolution baseline (3 seeds);
# ablation: C_MobileNetV2's two changes one at a time and a LeakyReLU on the residual branch, 5 seeds; augment: the course's augmentation and none against light, 3 seeds. Each file holds what
# its part adds to the parts before it.
$(REF_09): $(REF)/lesson09-%.jsonl: setup
	$(SWEEP) plan lesson09 --profile reference --part $* --out $@ $(RUN_ARGS)

# ---------------------------------------------------------------------------------------------
# The GPU reference run (lecture_utils/experiment/gpu_reference.py): on one CUDA GPU of the H100 class, about 9 minutes by
# lecture_utils.estimate: lessons 01-08's networks at 64-96 px on the whole training split but the held-out
# part (3 seeds for the cheap ones), and lesson 09's grid at 224-96 px on a subset, with the proposed recipe,
# validated on the held-out split and tested once. Results with their provenance in data/reference/gpu/;
# resumable. Without a CUDA GPU it says so and exits 0.
GPU_REF ?= $(REF)/gpu/gpu-reference.jsonl
.PHONY: gpu-reference
gpu-reference: setup
	$(SWEEP) plan gpu-reference --out $(GPU_REF) --no-progress

# The prepared GPU check (docs/gpu.md, "When a GPU is lent"): `make device-data` once here puts Fashion-MNIST's
# four raw files (30 MB, ignored by git) in data/device-check/fashion-mnist/, to travel with the working tree (not
# in data/fashion_mnist/: the default search would find them there and change the data root runs record); then
# `make device-check` on the GPU machine runs `bench gpu-check` for lessons 01-08 and lesson 09's rates, about
# 3.5 minutes on one H100, with nothing installed or downloaded (no `setup`: it uses the python there, which
# must hold torch). Report and log in $OUT when set, else build/gpu-check/. Without CUDA: one line, exit 0.
DEVICE_DATA := data/device-check/fashion-mnist
.PHONY: device-data device-check
device-data:
	@test -f $(FMNIST)/train-images-idx3-ubyte.gz || { echo "device-data: no Fashion-MNIST raw files in $(FMNIST); \
	apt-get install dataset-fashion-mnist, or FMNIST=<folder with the four .gz files>"; exit 1; }
	mkdir -p $(DEVICE_DATA)
	cp -p $(FMNIST)/train-images-idx3-ubyte.gz $(FMNIST)/train-labels-idx1-ubyte.gz \
	      $(FMNIST)/t10k-images-idx3-ubyte.gz $(FMNIST)/t10k-labels-idx1-ubyte.gz $(DEVICE_DATA)/

device-check:
	bash scripts/device_check.sh

# ---------------------------------------------------------------------------------------------
# The recipe's choice on the held-out split (data/reference/README.md, lecture_utils.experiment.plans.recipe_choice_plan):
# the course's constant Adam against the proposed AdamW one-cycle recipe, ResNet-18 and MobileNetV2 0.5 at
# 32 px, 1000 training images per class, 500 held-out per class, 5 epochs, seeds 0-2, on the CPU.
# `make -j2 recipe-choice` starts two workers that share the file, one compute thread each.
.PHONY: recipe-choice recipe-choice-worker1 recipe-choice-worker2
recipe-choice: recipe-choice-worker1 recipe-choice-worker2

recipe-choice-worker1 recipe-choice-worker2: setup
	$(SWEEP) plan recipe-choice --out $(REF)/recipe-choice.jsonl $(RUN_ARGS)

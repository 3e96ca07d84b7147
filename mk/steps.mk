# pipeline_steps targets, included by the top-level Makefile.
#
#   make steps-venv    .venv-steps from requirements-steps.txt (pinned to the SageMaker images;
#                      wheels only; reinstalled only when the requirements file changes)
#   make test-steps    unit, bad-data, end-to-end, parity and drift-statistics tests
#   make local-run     the synthesized pipeline definitions of a stage, run on this machine
#                      (no Docker, no AWS): mlops/local_run.py, steps in .venv-steps
#   make bench-steps   preprocess throughput on ~1M rows vs the pyarrow read+write floor
#
# Variables: PYTHON (interpreter that creates the venv), LOCAL_RUN_ARGS (e.g.
# "--stage staging --model breast-cancer"), BENCH_STEPS_ARGS (e.g. "--rows 200000").

PYTHON ?= python3
STEPS_VENV ?= .venv-steps
STEPS_PY := $(STEPS_VENV)/bin/python
STEPS_STAMP := $(STEPS_VENV)/.installed-requirements-steps
LOCAL_RUN_ARGS ?=
BENCH_STEPS_ARGS ?=

.PHONY: steps-venv test-steps local-run bench-steps

$(STEPS_STAMP): requirements-steps.txt
	test -x $(STEPS_PY) || $(PYTHON) -m venv $(STEPS_VENV)
	$(STEPS_PY) -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r requirements-steps.txt
	touch $@

steps-venv: $(STEPS_STAMP)

test-steps: deps $(STEPS_STAMP)
	$(STEPS_PY) -m pytest tests/steps $(PYTEST_ARGS)

local-run: deps $(STEPS_STAMP)
	$(PY) -m mlops.local_run --steps-python $(STEPS_PY) $(LOCAL_RUN_ARGS)

bench-steps: $(STEPS_STAMP)
	$(STEPS_PY) benchmarks/steps_bench.py $(BENCH_STEPS_ARGS)

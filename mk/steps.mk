# pipeline_steps targets, included by the top-level Makefile.
#
#   make steps-venv    .venv-steps from requirements-steps.txt (pinned to the SageMaker images;
#                      wheels only; reinstalled only when the requirements file changes)
#   make test-steps    unit, bad-data, end-to-end, parity and drift-statistics tests
#   make local-run     the whole pipeline DAG on this machine, no Docker, no AWS
#   make bench-steps   preprocess throughput on ~1M rows vs the pyarrow read+write floor
#
# Variables: PYTHON (interpreter that creates the venv), LOCAL_RUN_ARGS (e.g.
# "--model diabetes"), BENCH_STEPS_ARGS (e.g. "--rows 200000").

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

test-steps: $(STEPS_STAMP)
	$(STEPS_PY) -m pytest tests/steps -q -p no:cacheprovider

local-run: $(STEPS_STAMP)
	$(STEPS_PY) pipeline_steps/local_run.py $(LOCAL_RUN_ARGS)

bench-steps: $(STEPS_STAMP)
	$(STEPS_PY) benchmarks/steps_bench.py $(BENCH_STEPS_ARGS)

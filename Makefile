# One entry point for people and CI. `make synth` and `make test` set everything up on a
# fresh machine that has Python 3.11+ (Node.js comes from a PyPI wheel unless a system
# Node.js 22+ is there) and need no AWS account or credentials.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_CHOICE := $(VENV)/.node
NODE_STAMP := node_modules/.installed

# No network at synth beyond the package registries: CLI telemetry off. The venv's bin comes
# first on PATH, so npm, the CDK CLI and jsii all run the Node.js chosen for the venv.
export CDK_DISABLE_CLI_TELEMETRY := true
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: all synth test test-infra lint bench docs check-tools node-check deps clean mlops check serve rollback smoke-test recommend
all: test

check-tools:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'

# What a new venv would get (the venv's choice is recorded in $(NODE_CHOICE)).
node-check:
	@sh mk/node.sh select $(VENV)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(MAKE) --no-print-directory check-tools
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Node.js for npm, the CDK CLI and jsii, chosen once per venv by mk/node.sh: a system
# Node.js 22+ as it is, else Node.js 24 from requirements-node.txt into $(VENV)/bin.
$(NODE_CHOICE): requirements-node.txt mk/node.sh | $(STAMP)
	@sh mk/node.sh setup $(VENV) requirements-node.txt constraints.txt >$@.tmp && mv -f $@.tmp $@ && cat $@

$(NODE_STAMP): package.json package-lock.json $(NODE_CHOICE)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(STAMP) $(NODE_CHOICE) $(NODE_STAMP)

synth: deps
	npx cdk synth --quiet $(SYNTH_ARGS)
	@echo "Templates for every stage are in cdk.out/ (cdk.out/assembly-<stage>/)."

# The CDK-app tests (tests/infra, tests/pipeline; .venv), then the step-script tests
# (tests/steps; .venv-steps). Run side by side they took as long on two cores: each
# suite keeps both cores busy (synths, the definition worker, local-run's subprocesses).
PYTEST_ARGS ?= -q -p no:cacheprovider
test: test-infra test-steps

test-infra: deps
	$(PY) -m pytest tests --ignore=tests/steps $(PYTEST_ARGS)

lint: deps
	$(PY) -m ruff check app.py stacks constructs mlops pipeline_steps tests benchmarks
	$(PY) -m ruff format --check app.py stacks constructs mlops pipeline_steps tests benchmarks
	$(PY) -m mypy app.py stacks constructs mlops

# The platform's command line: `make mlops ARGS="add-model wine --data wine.csv --target
# target"`, `make check` (config, schemas and Preprocess's data checks on data/raw/).
ARGS ?=
SYNTH_ARGS ?=
mlops: deps $(STEPS_STAMP)
	$(VENV)/bin/mlops $(ARGS)

check: deps $(STEPS_STAMP)
	$(VENV)/bin/mlops check $(ARGS)

docs: deps
	$(PY) -m mlops.pipeline_docs

bench: deps
	$(PY) benchmarks/synth_bench.py

clean:
	rm -rf cdk.out $(VENV) node_modules .venv-steps

# The step scripts (pipeline_steps/) run in their own venv pinned to the SageMaker
# scikit-learn container's versions: test-steps, local-run, bench-steps.
include mk/steps.mk

# Serving: which approved version a stage serves (then deploy), the endpoint check, and
# instance types measured by Inference Recommender (AWS credentials needed for these).
serve: deps
	$(VENV)/bin/mlops serve --stage $(STAGE) --model $(MODEL) $(ARGS)

rollback: deps
	$(VENV)/bin/mlops rollback --stage $(STAGE) --model $(MODEL) $(ARGS)

smoke-test: deps $(STEPS_STAMP)
	$(VENV)/bin/mlops smoke-test --stage $(STAGE) --model $(MODEL) $(ARGS)

recommend: deps
	$(VENV)/bin/mlops recommend --stage $(STAGE) --model $(MODEL) $(ARGS)

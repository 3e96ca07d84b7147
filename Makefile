# One entry point for people and CI. `make synth` and `make test` set everything up on a
# fresh machine (Python 3.11+ and Node.js) and need no AWS account or credentials.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# No network at synth beyond the package registries: CLI telemetry off. Node 20 works but
# is end-of-life for jsii; its banner is replaced by one line from `check-tools`.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: all synth test test-infra lint bench docs check-tools deps clean
all: test

check-tools:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@command -v node >/dev/null || { echo "Node.js is required (22 or 24 recommended)"; exit 1; }
	@node -e 'const m=+process.versions.node.split(".")[0]; if (m<20) {console.error("Node.js "+process.version+" is too old; use 22 or 24"); process.exit(1)} if (m<22) console.error("note: Node.js "+process.version+" is end-of-life; jsii and the CDK CLI prefer 22 or 24")'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(MAKE) --no-print-directory check-tools
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(STAMP) $(NODE_STAMP)

synth: deps
	npx cdk synth --quiet
	@echo "Templates for every stage are in cdk.out/ (cdk.out/assembly-<stage>/)."

# The pipeline tests run the definition's Evaluate step in the steps venv.
test-infra: deps steps-venv
	$(PY) -m pytest tests --ignore=tests/steps -q -p no:cacheprovider

test: test-infra test-steps

lint: deps
	$(PY) -m ruff check app.py stacks constructs mlops tests benchmarks
	$(PY) -m ruff format --check app.py stacks constructs mlops tests benchmarks

docs: deps
	$(PY) -m mlops.pipeline_docs

bench: deps
	$(PY) benchmarks/synth_bench.py

clean:
	rm -rf cdk.out $(VENV) node_modules .venv-steps

# The step scripts (pipeline_steps/) run in their own venv pinned to the SageMaker
# scikit-learn container's versions: test-steps, local-run, bench-steps.
include mk/steps.mk

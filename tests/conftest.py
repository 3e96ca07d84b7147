"""Loaded before every other conftest: start the pipeline-definition build worker, as
app.py does, before anything imports CDK (forking is safe only then), so that the test
session's synths build definitions on the second core. Only where the CDK app's
dependencies are installed (the step tests run in a venv of their own)."""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("aws_cdk") is not None:
    from mlops import definition_builds

    definition_builds.start()

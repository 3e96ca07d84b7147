"""Fixtures for the pipeline_steps tests (run with the .venv-steps interpreter: make test-steps)."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from steps_helpers import run_script

try:  # these tests need the pinned step libraries (.venv-steps); elsewhere, collect nothing
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401
    import scipy  # noqa: F401
    import xgboost  # noqa: F401
except ImportError as _missing:  # pragma: no cover - depends on the interpreter
    collect_ignore_glob = ["test_*.py"]
    print(f"tests/steps skipped: {_missing}; run them with `make test-steps`", file=sys.stderr)

from steplib.schema import parse_schema


@pytest.fixture
def small_schema():
    """Two numeric features, one categorical, categorical target."""
    return parse_schema(
        {
            "recordIdColumn": "record_id",
            "eventTimeColumn": "event_time",
            "target": {"name": "label", "type": "categorical"},
            "features": [
                {"name": "x1", "type": "numeric"},
                {"name": "x2", "type": "numeric"},
                {"name": "colour", "type": "categorical"},
            ],
        }
    )


@pytest.fixture(scope="session")
def local_run(tmp_path_factory):
    """One full local DAG run of both built-in models (defaults, not cdk.json)."""
    work = tmp_path_factory.mktemp("local-run")
    proc = run_script("local_run.py", "--work-dir", work, "--cdk-json", work / "absent-cdk.json")
    return {
        "proc": proc,
        "work": work,
        "summary": json.loads((work / "summary.json").read_text())
        if (work / "summary.json").exists()
        else None,
    }

"""Fixtures for the pipeline_steps tests (run with the .venv-steps interpreter: make test-steps)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from steps_helpers import CDK_PYTHON, DIABETES, REPO

try:  # these tests need the pinned step libraries (.venv-steps); elsewhere, collect nothing
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401
    import scipy  # noqa: F401
    import xgboost  # noqa: F401
except ImportError as _missing:  # pragma: no cover - depends on the interpreter
    collect_ignore_glob = ["test_*.py"]
    print(f"tests/steps skipped: {_missing}; run them with `make test-steps`", file=sys.stderr)

from steplib.schema import parse_schema_doc


@pytest.fixture
def small_schema():
    """Two numeric features, one categorical, categorical target."""
    return parse_schema_doc(
        {
            "recordIdColumn": "record_id",
            "eventTimeColumn": "event_time",
            "target": {"name": "label", "type": "categorical", "classes": ["no", "yes"]},
            "features": [
                {"name": "x1", "type": "numeric"},
                {"name": "x2", "type": "numeric"},
                {"name": "colour", "type": "categorical"},
            ],
        }
    )


_LOCAL_RUN: dict = {}


def pytest_collection_modifyitems(session, config, items):
    """Start the one local-run in the background as soon as tests are collected, and run
    the tests that read it last: it takes most of the suite's time, and the other tests
    run meanwhile."""
    if not any("local_run" in item.fixturenames for item in items):
        return
    items.sort(key=lambda item: "local_run" in item.fixturenames)
    _LOCAL_RUN.update(_start_local_run(Path(tempfile.mkdtemp(prefix="local-run-"))))


def _start_local_run(work: Path) -> dict:
    """``make local-run`` of the dev stage: the default config, the diabetes model, and
    scikit-learn's wine data added by ``mlops add-model`` (as it ships: no id or time, an
    invalid column name), synthesized by the CDK app and executed step by step with this
    interpreter."""
    import subprocess

    from export_sklearn_data import export_raw

    if not CDK_PYTHON.exists():
        pytest.fail(f"{CDK_PYTHON} is missing: run `make deps` (make test does)")
    project = work / "project"  # add-model writes here, not into the repository
    project.mkdir()
    shutil.copy(REPO / "cdk.json", project / "cdk.json")
    shutil.copytree(REPO / "data", project / "data")
    export_raw("wine", work / "wine.csv")
    added = subprocess.run(
        [CDK_PYTHON, "-m", "mlops.cli", "--project-root", project, "--steps-python",
         sys.executable, "add-model", "wine", "--data", work / "wine.csv", "--target", "target",
         "--event-time", "2026-01-01T00:00:00Z"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if added.returncode != 0:
        pytest.fail(f"mlops add-model wine failed:\n{added.stdout}\n{added.stderr}")
    cdk_json = json.loads((project / "cdk.json").read_text())
    models = cdk_json["context"]["mlops"]["models"]
    for model in models:  # the app resolves schemas from the repository
        model["schemaFile"] = str(project / model["schemaFile"])
    models.append(DIABETES)
    (work / "cdk.json").write_text(json.dumps(cdk_json))
    process = subprocess.Popen(
        [CDK_PYTHON, "-m", "mlops.local_run", "--cdk-json", work / "cdk.json",
         "--work-dir", work, "--steps-python", sys.executable,
         "--raw-data", project / "data" / "raw"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return {"process": process, "work": work, "added": added, "project": project}


@pytest.fixture(scope="session")
def local_run():
    """The result of the session's local-run (started at collection)."""
    import subprocess

    if not _LOCAL_RUN:  # a single test selected by name: collection did not start it
        _LOCAL_RUN.update(_start_local_run(Path(tempfile.mkdtemp(prefix="local-run-"))))
    process = _LOCAL_RUN["process"]
    stdout, stderr = process.communicate(timeout=900)
    proc = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    work = _LOCAL_RUN["work"]
    summary = work / "dev" / "summary.json"
    yield {
        "proc": proc,
        "added": _LOCAL_RUN["added"],
        "project": _LOCAL_RUN["project"],
        "work": work / "dev",
        "summary": {r["model"]: r for r in json.loads(summary.read_text())}
        if summary.exists()
        else None,
    }
    shutil.rmtree(work, ignore_errors=True)

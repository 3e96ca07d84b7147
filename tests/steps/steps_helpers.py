"""Helpers shared by the pipeline_steps tests (a uniquely named module, so it never clashes
with another conftest.py on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEPS = REPO / "pipeline_steps"
if str(STEPS) not in sys.path:
    sys.path.insert(0, str(STEPS))


def run_script(script: str, *args: object) -> subprocess.CompletedProcess:
    """Run a step script the way its container does; returns the completed process."""
    return subprocess.run(
        [sys.executable, str(STEPS / script), *map(str, args)], capture_output=True, text=True
    )


BC_SCHEMA = REPO / "data" / "schemas" / "breast-cancer.json"


def run_preprocess(
    input_path: Path, output_dir: Path, *extra: object
) -> subprocess.CompletedProcess:
    """preprocess.py on breast-cancer data (binary classification) into ``output_dir``."""
    return run_script(
        "preprocess.py",
        "--input-dir", input_path, "--schema", BC_SCHEMA,
        "--problem-type", "binary_classification", "--output-dir", output_dir, *extra,
    )  # fmt: skip


#: The CDK app's interpreter: local-run synthesizes the stage and executes its definitions.
CDK_PYTHON = REPO / ".venv" / "bin" / "python"

#: A second model, added to the default config only through cdk.json and its schema file
#: (its raw data is committed under data/raw/diabetes/).
DIABETES = {
    "name": "diabetes",
    "problemType": "regression",
    "targetColumn": "disease_progression",
    "schemaFile": "data/schemas/diabetes.json",
    "dataPrefix": "diabetes/",
    "hyperparameters": {
        "objective": "reg:squarederror",
        "num_round": 150,
        "max_depth": 2,
        "eta": 0.05,
        "subsample": 0.8,
        "eval_metric": "rmse",
    },
    "qualityGate": {"metric": "r2", "threshold": 0.3},
}


def job(work: Path, model: str, step: str) -> Path:
    """The local root of one step's job in a local-run work directory (its ``/opt/ml``)."""
    return work / model / "execution" / "jobs" / step / "opt" / "ml"

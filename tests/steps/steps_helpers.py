"""Helpers shared by the pipeline_steps tests (a uniquely named module, so it never clashes
with another conftest.py on sys.path)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEPS = REPO / "pipeline_steps"
if str(STEPS) not in sys.path:
    sys.path.insert(0, str(STEPS))


def run_script(script: str, *args: object, in_process: bool = True) -> subprocess.CompletedProcess:
    """Run a step script's ``main`` as its container does (through ``run_main``) and return
    what a process would have: exit code, stdout and stderr.

    In-process by default (interpreter start-up and the imports of pandas, pyarrow and
    xgboost cost about a second per run); ``in_process=False`` starts a real process,
    for the tests that are about the process itself.
    """
    argv = [str(a) for a in args]
    if not in_process:
        return subprocess.run(
            [sys.executable, str(STEPS / script), *argv], capture_output=True, text=True
        )
    from steplib.errors import run_main

    module = _script_module(script)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_main(module.main, argv)
        except SystemExit as exit_:  # argparse, or a script's own sys.exit
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # a crash: the traceback a process would print
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess([script, *argv], code, out.getvalue(), err.getvalue())


_MODULES: dict[str, object] = {}


def _script_module(script: str):
    if script not in _MODULES:
        spec = importlib.util.spec_from_file_location(f"step_{Path(script).stem}", STEPS / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as an import would (dataclasses look it up)
        spec.loader.exec_module(module)
        _MODULES[script] = module
    return _MODULES[script]


BC_SCHEMA = REPO / "data" / "schemas" / "breast-cancer.json"
#: The project's real data sets (the raw files, and diabetes's schema).
BC_RAW = REPO / "data/raw/breast-cancer/breast-cancer.csv"
DIABETES_RAW = REPO / "data/raw/diabetes/diabetes.csv"
DIABETES_SCHEMA = REPO / "data/schemas/diabetes.json"


def run_preprocess(
    input_path: Path, output_dir: Path, *extra: object
) -> subprocess.CompletedProcess:
    """preprocess.py on breast-cancer data (binary classification) into ``output_dir``."""
    return run_script(
        "preprocess.py",
        "--input-dir", input_path, "--schema", BC_SCHEMA,
        "--problem-type", "binary_classification", "--output-dir", output_dir, *extra,
    )  # fmt: skip


def train_small_model(
    work: Path, raw: Path, schema: Path, problem_type: str, extra: dict[str, str]
) -> Path:
    """Preprocess ``raw`` into ``work/prep`` and train a small booster of the problem
    type's objective into ``work/model`` and ``work/artifact`` (``extra``: more
    hyperparameters, e.g. ``num_class``); returns the preprocess output directory."""
    import json

    from steplib import contract

    prep = work / "prep"
    if problem_type == "binary_classification" and Path(schema) == BC_SCHEMA:
        proc = run_preprocess(raw, prep)
    else:
        proc = run_script(
            "preprocess.py", "--input-dir", raw, "--schema", schema,
            "--problem-type", problem_type, "--output-dir", prep,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    objective = contract.problem(problem_type).objectives[0]
    hp = {"objective": objective, "num_round": "12", "max_depth": "3", **extra}
    proc = run_script(
        "train_local.py", "--train-dir", prep / "train", "--validation-dir", prep / "validation",
        "--model-dir", work / "model", "--tarball-dir", work / "artifact",
        "--hyperparameters", json.dumps(hp),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return prep


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

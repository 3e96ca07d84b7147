"""The condition reads what evaluate writes: the definition's steps run as it says.

For each model with committed raw data, the definition's own Preprocess and Evaluate steps
are executed: their entrypoint, runner and arguments (pipeline parameters at their
defaults), with each input placed at its ``LocalPath`` and every ``/opt/ml/`` path moved
under a per-job root, and Evaluate's inputs taken from the Preprocess outputs they name.
Train is the built-in XGBoost algorithm (no script to run): its model comes from
``pipeline_steps/local_run.py``, which trains on the same deterministic split. The
condition's ``Std:JsonGet`` is then resolved on the file the property file names, with the
SDK's own resolver (the one SageMaker's local pipeline mode uses).

The steps run in ``.venv-steps`` (the images' libraries); ``make test`` creates it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import BINARY, REGRESSION, REPO_ROOT
from sagemaker.core.local.utils import get_using_dot_notation

from mlops.pipeline_definition import (
    STEP_CHECK_QUALITY,
    STEP_EVALUATE,
    STEP_PREPROCESS,
    PipelineInputs,
    build_definition,
)

STEPS_PYTHON = Path(os.environ.get("STEPS_PYTHON", REPO_ROOT / ".venv-steps" / "bin" / "python"))
MODELS_FILE = REPO_ROOT / "data" / "models.example.json"
CASES = {"breast-cancer": BINARY, "diabetes": REGRESSION}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """local_run's work directory for every model of the example file."""
    if not STEPS_PYTHON.exists():
        pytest.fail(f"{STEPS_PYTHON} is missing: run `make steps-venv` (make test does)")
    work = tmp_path_factory.mktemp("local-run")
    models = {"context": {"mlops": {"models": json.loads(MODELS_FILE.read_text())}}}
    (work / "cdk.json").write_text(json.dumps(models))
    result = subprocess.run(
        [STEPS_PYTHON, "pipeline_steps/local_run.py", "--work-dir", str(work / "run")]
        + ["--cdk-json", str(work / "cdk.json")]
        + [arg for name in CASES for arg in ("--model", name)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work / "run"


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    (step,) = [s for s in definition["Steps"] if s["Name"] == name]
    return step


def _condition_json_get(definition: dict[str, Any]) -> dict[str, Any]:
    (condition,) = _step(definition, STEP_CHECK_QUALITY)["Arguments"]["Conditions"]
    return condition["LeftValue"]["Std:JsonGet"]


def _value(value: Any, definition: dict[str, Any]) -> Any:
    """A definition value with parameters at their defaults and joins done."""
    if isinstance(value, dict) and "Get" in value and value["Get"].startswith("Parameters."):
        name = value["Get"].split(".", 1)[1]
        (parameter,) = [p for p in definition["Parameters"] if p["Name"] == name]
        return parameter["DefaultValue"]
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(str(_value(v, definition)) for v in join["Values"])
    return value


class Job:
    """Runs processing steps of one definition for one model, each under its own root."""

    def __init__(self, definition: dict[str, Any], model: str, upstream: Path, work: Path):
        self.definition, self.model, self.upstream, self.work = definition, model, upstream, work
        self.outputs: dict[tuple[str, str], Path] = {}  # (step, output name) -> local dir

    def run(self, name: str) -> dict[str, Any]:
        step = _step(self.definition, name)
        args = step["Arguments"]
        root = self.work / name

        def here(value: Any) -> str:
            return str(_value(value, self.definition)).replace("/opt/ml/", f"{root}/opt/ml/")

        for processing_input in args["ProcessingInputs"]:
            s3 = processing_input["S3Input"]
            self._stage_input(s3["S3Uri"], Path(here(s3["LocalPath"])))
        app = args["AppSpecification"]
        result = subprocess.run(
            [here(part) for part in app["ContainerEntrypoint"] + app["ContainerArguments"]],
            env={
                "PATH": f"{STEPS_PYTHON.parent}:{os.environ['PATH']}",
                "STEP_SOURCE_DIR": here("/opt/ml/processing/input/source"),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
        for output in args["ProcessingOutputConfig"]["Outputs"]:
            self.outputs[name, output["OutputName"]] = Path(here(output["S3Output"]["LocalPath"]))
        return step

    def _stage_input(self, source: Any, local: Path) -> None:
        """Put what SageMaker would download for one ProcessingInput at ``local``."""
        local.mkdir(parents=True)
        prefix = "Steps.Preprocess.ProcessingOutputConfig.Outputs["
        if source == "${SourceUri}":  # the zipped pipeline_steps/ asset
            shutil.make_archive(str(local / "source"), "zip", REPO_ROOT / "pipeline_steps")
        elif source == "${CodeUri}":  # the runner asset
            shutil.copy(REPO_ROOT / "pipeline_steps" / "run_step.sh", local / "run_step.sh")
        elif source == "${SchemaUri}":  # a file asset: the object is named after its hash
            (entry,) = [m for m in json.loads(MODELS_FILE.read_text()) if m["name"] == self.model]
            shutil.copy(REPO_ROOT / entry["schemaFile"], local / "0123456789abcdef.json")
        elif _value(source, self.definition) == "${RawDataUri}":  # InputDataUri's default
            shutil.copytree(REPO_ROOT / "data" / "raw" / self.model, local, dirs_exist_ok=True)
        elif source == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}:
            trained = self.upstream / self.model / "train/opt/ml/output"
            shutil.copytree(trained, local, dirs_exist_ok=True)
        elif isinstance(source, dict) and source.get("Get", "").startswith(prefix):
            output = source["Get"][len(prefix) :].split("'")[1]
            shutil.copytree(self.outputs["Preprocess", output], local, dirs_exist_ok=True)
        else:
            raise AssertionError(f"no local stand-in for input source {source!r}: extend this test")


def run_evaluate_step(definition: dict[str, Any], model: str, upstream: Path, work: Path) -> Path:
    """Runs the definition's Preprocess, then its Evaluate; returns the property file."""
    job = Job(definition, model, upstream, work)
    job.run(STEP_PREPROCESS)
    step = job.run(STEP_EVALUATE)
    (property_file,) = step["PropertyFiles"]
    return job.outputs[STEP_EVALUATE, property_file["OutputName"]] / property_file["FilePath"]


@pytest.mark.parametrize("model", sorted(CASES))
def test_condition_resolves_on_what_evaluate_writes(
    model: str, upstream: Path, tmp_path: Path
) -> None:
    inputs: PipelineInputs = CASES[model]
    definition = build_definition(inputs).definition()
    report_file = run_evaluate_step(definition, model, upstream, tmp_path)
    report = json.loads(report_file.read_text())

    json_get = _condition_json_get(definition)
    assert json_get["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    value = get_using_dot_notation(report, json_get["Path"])
    assert isinstance(value, float), (json_get["Path"], value)
    # The same number local_run's gate judged: one contract, two readers.
    local = json.loads(
        (upstream / model / "evaluate/opt/ml/processing/evaluation/evaluation.json").read_text()
    )
    assert value == get_using_dot_notation(local, json_get["Path"])


def test_a_wrong_path_does_not_resolve(upstream: Path, tmp_path: Path) -> None:
    """Negative: the resolver fails when the path and the report disagree."""
    definition = build_definition(BINARY).definition()
    report = json.loads(
        run_evaluate_step(definition, "breast-cancer", upstream, tmp_path).read_text()
    )
    for wrong in ("regression_metrics.auc.value", "binary_classification_metrics.AUC.value"):
        with pytest.raises(ValueError):
            get_using_dot_notation(report, wrong)


def test_a_missing_input_stand_in_is_an_error(tmp_path: Path) -> None:
    job = Job(build_definition(BINARY).definition(), "breast-cancer", tmp_path, tmp_path)
    with pytest.raises(AssertionError, match="no local stand-in"):
        job._stage_input("${SomethingNew}", tmp_path / "x")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

"""local-run's executor: it runs whatever the definition says, and reports what happened.

Small definitions with shell-script processing steps exercise the executor without the
step scripts; tests/steps runs the platform's real definitions end to end.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from mlops.local_cloud import LocalS3
from mlops.local_run import LocalPipeline, StepFailed, _in_dependency_order, _navigate

BUCKET = "s3://local-bucket"


def processing(name: str, script: str, *, inputs: dict[str, Any] | None = None,
               outputs: tuple[str, ...] = ("out",), **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A processing step running ``sh -c script`` with the given S3 inputs and outputs."""
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ContainerEntrypoint": ["/bin/sh", "-c", script],
                "ImageUri": "000000000000.dkr.ecr.us-east-1.amazonaws.com/any:1",
            },
            "ProcessingInputs": [
                {"InputName": k, "S3Input": {"S3Uri": v, "LocalPath": f"/opt/ml/processing/{k}"}}
                for k, v in (inputs or {}).items()
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": o,
                        "S3Output": {
                            "S3Uri": {"Std:Join": {"On": "/", "Values": [
                                BUCKET, {"Get": "Execution.PipelineExecutionId"}, name, o]}},
                            "LocalPath": f"/opt/ml/processing/{o}",
                        },
                    }
                    for o in outputs
                ]
            },
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1}},
        },
        **extra,
    }  # fmt: skip


def out_of(step: str, output: str = "out") -> dict[str, str]:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}


def execute(tmp_path: Path, definition: dict[str, Any], **kwargs: Any) -> Any:
    s3 = LocalS3(tmp_path / "s3")
    (tmp_path / "s3/local-bucket/input").mkdir(parents=True, exist_ok=True)
    (tmp_path / "s3/local-bucket/input/data.txt").write_text("41\n")
    runner = LocalPipeline(
        definition, s3, name="test-pipeline", work_dir=tmp_path / "work",
        registry_dir=tmp_path / "registry", steps_python=Path(sys.executable),
        progress=lambda line: None, **kwargs,
    )  # fmt: skip
    return runner.run(), s3


def quality_gate(threshold: float) -> dict[str, Any]:
    """Score (reads the input, writes a report), then a condition on the report's value."""
    score = processing(
        "Score",
        'read n < /opt/ml/processing/data/data.txt; echo "{\\"m\\": {\\"v\\": $((n+1))}}" '
        "> /opt/ml/processing/out/report.json",
        inputs={"data": f"{BUCKET}/input"},
        PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "out", "FilePath": "report.json"}],
    )  # fmt: skip
    publish = processing("Publish", "cp /opt/ml/processing/in/report.json /opt/ml/processing/out/",
                         inputs={"in": out_of("Score")})  # fmt: skip
    fail = {"Name": "TooLow", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
        "On": " ", "Values": ["value", {"Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Score.PropertyFiles.Report"}, "Path": "m.v"}},
            "below", {"Get": "Parameters.Threshold"}]}}}}  # fmt: skip
    check = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{
                "Type": "GreaterThanOrEqualTo",
                "LeftValue": {"Std:JsonGet": {
                    "PropertyFile": {"Get": "Steps.Score.PropertyFiles.Report"}, "Path": "m.v"}},
                "RightValue": {"Get": "Parameters.Threshold"},
            }],
            "IfSteps": [publish],
            "ElseSteps": [fail],
        },
    }  # fmt: skip
    return {
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": threshold}],
        # Listed out of order: the executor follows the data, not the list.
        "Steps": [check, score],
    }


def test_steps_run_in_dependency_order_and_the_true_branch_runs(tmp_path: Path) -> None:
    execution, _ = execute(tmp_path, quality_gate(40.0))
    assert execution.status == "Succeeded", execution.failure
    assert [s.name for s in execution.steps] == ["Score", "Check", "Publish"]
    assert execution.property_files == {"Score.Report": {"m": {"v": 42}}}
    (condition,) = execution.conditions
    assert (condition["left"], condition["type"], condition["right"]) == (42, ">=", 40.0)
    published = list((tmp_path / "s3/local-bucket").rglob("Publish/out/report.json"))
    assert len(published) == 1


def test_the_false_branch_fails_with_the_fail_steps_message(tmp_path: Path) -> None:
    execution, _ = execute(tmp_path, quality_gate(50.0))
    assert execution.status == "Failed"
    assert execution.failure == "value 42 below 50.0"
    assert [s.name for s in execution.steps] == ["Score", "Check", "TooLow"]


def test_a_start_time_parameter_overrides_the_default(tmp_path: Path) -> None:
    execution, _ = execute(tmp_path, quality_gate(50.0), parameters={"Threshold": "42"})
    assert execution.status == "Succeeded", execution.failure


def test_unknown_or_mistyped_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no parameter \['Threshhold'\]"):
        execute(tmp_path, quality_gate(1.0), parameters={"Threshhold": "1"})
    with pytest.raises(ValueError, match="parameter Threshold \\(Float\\): 'high'"):
        execute(tmp_path, quality_gate(1.0), parameters={"Threshold": "high"})


@pytest.mark.parametrize(
    ("script", "kind", "message"),
    [
        ('echo "ERROR: a.csv: column \'x\': not a number" >&2; exit 2', "data error",
         "a.csv: column 'x': not a number"),
        ("echo 'Traceback (most recent call last):'; echo 'ZeroDivisionError: division by zero';"
         " exit 1", "crash", "exit code 1: ZeroDivisionError: division by zero"),
    ],
)  # fmt: skip
def test_a_data_error_and_a_crash_are_reported_apart(
    tmp_path: Path, script: str, kind: str, message: str
) -> None:
    execution, _ = execute(tmp_path, {"Steps": [processing("Job", script)]})
    assert execution.status == "Failed"
    assert execution.failure.startswith(f"{kind}: {message}")
    assert execution.steps[0].status == "Failed"


def test_an_input_nobody_wrote_is_a_clear_failure(tmp_path: Path) -> None:
    step = processing("Job", "true", inputs={"data": f"{BUCKET}/nothing-here"})
    execution, _ = execute(tmp_path, {"Steps": [step]})
    assert execution.failure == (
        "missing input: Job input: s3://local-bucket/nothing-here: no objects under this prefix"
    )


def test_a_step_type_without_a_local_stand_in_is_named(tmp_path: Path) -> None:
    execution, _ = execute(
        tmp_path, {"Steps": [{"Name": "T", "Type": "Transform", "Arguments": {}}]}
    )
    assert execution.failure == "no local stand-in: step type Transform cannot run locally"


def test_register_checks_the_request_against_botocore(tmp_path: Path) -> None:
    register = {"Name": "Register", "Type": "RegisterModel",
                "Arguments": {"ModelPackageGroupName": "g", "ModelApprovalStatus": "Maybe"}}  # fmt: skip
    execution, _ = execute(tmp_path, {"Steps": [register]})
    assert execution.failure.startswith("invalid request: CreateModelPackage: Register: ")
    assert "ModelApprovalStatus: value 'Maybe' not one of" in execution.failure


def test_property_paths_find_list_members_by_name() -> None:
    props = {
        "Outputs": [
            {"OutputName": "a", "S3Uri": "s3://x/a"},
            {"OutputName": "b", "S3Uri": "s3://x/b"},
        ]
    }
    assert _navigate(props, "Outputs['b'].S3Uri", "w") == "s3://x/b"
    assert _navigate(props, "Outputs[0].S3Uri", "w") == "s3://x/a"
    with pytest.raises(StepFailed, match="nothing at"):
        _navigate(props, "Outputs['c'].S3Uri", "w")


def test_dependency_cycles_are_reported() -> None:
    a = {"Name": "A", "Type": "Fail", "DependsOn": ["B"]}
    b = {"Name": "B", "Type": "Fail", "DependsOn": ["A"]}
    with pytest.raises(StepFailed, match=r"circular dependencies among \['A', 'B'\]"):
        _in_dependency_order([a, b])


def test_an_unknown_model_or_stage_is_named_before_anything_runs(tmp_path: Path) -> None:
    from mlops.local_run import PROJECT_ROOT, run_stage

    common = dict(cdk_json=PROJECT_ROOT / "cdk.json", parameters={}, work_dir=tmp_path,
                  steps_python=Path(sys.executable), progress=lambda line: None)  # fmt: skip
    with pytest.raises(
        ValueError, match=r"no model has the name \['churn'\] \(models: breast-cancer\)"
    ):
        run_stage(stage="dev", models=["churn"], **common)
    with pytest.raises(ValueError, match="no stage is called 'qa'"):
        run_stage(stage="qa", models=[], **common)
    assert not list(tmp_path.iterdir())  # nothing synthesized, nothing run


def test_the_summary_prints_every_model_even_after_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlops.local_run import Execution, ModelRun, print_summary

    crashed = ModelRun("a", error="KeyError: 'x'")
    failed = ModelRun("b", execution=Execution("p", status="Failed", failure="data error: bad.csv"))
    assert print_summary([crashed, failed], "dev", Path("/tmp/w")) is False
    out = capsys.readouterr().out
    assert "a: KeyError: 'x'" in out and "b: data error: bad.csv" in out
    assert "RESULT: NOT OK" in out

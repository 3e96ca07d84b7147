"""The training pipeline as embedded: its role covers every step, nothing broader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_helpers import make_app, mlops_config

import app as platform_app

# The API each step type calls as the pipeline's role.
STEP_ACTIONS = {
    "Processing": {"sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob"},
    "Training": {"sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"},
    "RegisterModel": {"sagemaker:CreateModelPackage"},
}


def _role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    policies = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and "ExecutionRole" in k
    ]
    assert len(policies) == 1
    return policies[0]["Properties"]["PolicyDocument"]["Statement"]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found = set()
    for statement in statements:
        actions = statement["Action"]
        found.update(actions if isinstance(actions, list) else [actions])
    return found


def _pipeline(template: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"
    ]
    return pipeline


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_role_allows_every_action_the_steps_need(templates: dict[str, Any], stage: str) -> None:
    template = templates[f"{stage}/Training"]
    body, _ = _pipeline(template)["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"][
        "Fn::Sub"
    ]
    steps = json.loads(body.replace("${!", "${"))["Steps"]

    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for step in items:
            out.append(step)
            for branch in ("IfSteps", "ElseSteps"):
                out.extend(walk(step.get("Arguments", {}).get(branch, [])))
        return out

    actions = _actions(_role_statements(template))
    for step in walk(steps):
        needed = STEP_ACTIONS.get(step["Type"], set())
        assert needed <= actions, f"{step['Name']} needs {sorted(needed - actions)}"
    assert "iam:PassRole" in actions


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_role_grants_nothing_broader(templates: dict[str, Any], stage: str) -> None:
    statements = _role_statements(templates[f"{stage}/Training"])
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            _service, _, name = action.partition(":")
            assert name != "*", f"{action} grants a whole service"
        if statement["Resource"] == "*":
            # Only APIs without resource types, or conditioned ones.
            allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"} | {
                a
                for a in actions
                if (a.startswith("ec2:") and "NetworkInterface" in a)
                or a.startswith("ec2:Describe")
            }
            assert set(actions) <= allowed, actions
        if "iam:PassRole" in actions:
            assert statement["Condition"] == {
                "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
            }


def test_no_raw_token_reaches_the_body(templates: dict[str, Any]) -> None:
    for name, template in templates.items():
        if name.endswith("/Training"):
            body, values = _pipeline(template)["Properties"]["PipelineDefinition"][
                "PipelineDefinitionBody"
            ]["Fn::Sub"]
            assert "${Token[" not in body and "zzph" not in body
            assert set(values) >= {
                "ExecutionRoleArn",
                "ArtifactsBucket",
                "KmsKeyArn",
                "ModelPackageGroupArn",
            }


def test_prod_pipeline_is_scheduled_and_dev_is_not(templates: dict[str, Any]) -> None:
    def schedules(stage: str) -> list[dict[str, Any]]:
        return [
            r
            for r in templates[f"{stage}/Training"]["Resources"].values()
            if r["Type"] == "AWS::Scheduler::Schedule"
        ]

    (prod,) = schedules("prod")
    assert prod["Properties"]["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    assert "SageMakerPipelineParameters" in prod["Properties"]["Target"]
    assert schedules("dev") == []


# --- errors synth reports before CloudFormation would --------------------------------


def _dev_only() -> dict[str, Any]:
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    return config


def test_a_failed_definition_is_reported_with_its_pipeline(tmp_path: Path) -> None:
    """A builder error names the pipeline and keeps the builder's message. Here the SDK
    has no image for a region SageMaker itself lists (botocore knows ap-east-2)."""
    config = _dev_only()
    config["stages"]["dev"]["region"] = "ap-east-2"
    app = make_app(config, tmp_path)
    stages = platform_app.build(app)
    with pytest.raises(platform_app.SynthError) as raised:
        platform_app.synth(app, stages)
    (problem,) = raised.value.problems
    assert problem.startswith(
        "dev/Training/BreastCancerTrainingPipeline: ValueError: Unsupported region: ap-east-2."
    )


def test_templates_over_the_cloudformation_limit_fail_synth(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = make_app(_dev_only(), tmp_path)
    stages = platform_app.build(app)
    monkeypatch.setattr(platform_app, "MAX_TEMPLATE_BYTES", 20_000)
    with pytest.raises(platform_app.SynthError) as raised:
        platform_app.synth(app, stages)
    sizes = {
        p.relative_to(tmp_path).as_posix(): p.stat().st_size
        for p in tmp_path.rglob("*.template.json")
    }
    expected = [
        f"{name} is {size:,} bytes; CloudFormation accepts at most 20,000. Fix: configure "
        "fewer models per stage"
        for name, size in sorted(sizes.items())
        if size > 20_000
    ]
    assert expected and raised.value.problems == expected


def test_default_templates_are_far_below_the_limit(default_stages: dict[str, Any]) -> None:
    for stage in default_stages.values():
        for stack in (stage.data, stage.training):
            size = len(json.dumps(cdk.assertions.Template.from_stack(stack).to_json(), indent=1))
            assert size < platform_app.MAX_TEMPLATE_BYTES / 4, stack.node.path

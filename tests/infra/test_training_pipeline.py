"""The training pipeline as embedded: its role covers every step, nothing broader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_helpers import make_app, mlops_config

import app as platform_app
from constructs import template_budget

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


def _nested(stage: str) -> str:
    return f"{stage}/Training/BreastCancerTraining"


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_role_allows_every_action_the_steps_need(templates: dict[str, Any], stage: str) -> None:
    template = templates[_nested(stage)]
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
    statements = _role_statements(templates[_nested(stage)])
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            service, _, name = action.partition(":")
            # The MLflow REST API on the stage's one App is the only whole-service grant.
            if service == "sagemaker-mlflow":
                assert statement["Resource"] != "*" and len(actions) <= 3, statement
                continue
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
        if "sagemaker:CreateModelPackage" in actions:
            # Registration is only possible as pending: approving is an approver's job.
            assert statement["Condition"] == {
                "StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
            }


def test_no_raw_token_reaches_the_body(templates: dict[str, Any]) -> None:
    for name, template in templates.items():
        if name.endswith("/BreastCancerTraining"):
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
            for r in templates[_nested(stage)]["Resources"].values()
            if r["Type"] == "AWS::Scheduler::Schedule"
        ]

    (prod,) = schedules("prod")
    assert prod["Properties"]["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    target = prod["Properties"]["Target"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    # Starts that still fail land in a KMS-encrypted dead-letter queue.
    dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = templates[_nested("prod")]["Resources"][dlq]
    assert queue["Type"] == "AWS::SQS::Queue" and "KmsMasterKeyId" in queue["Properties"]
    assert schedules("dev") == []
    # Only this account's schedules may assume the schedule's role (confused deputy).
    (role,) = [
        r
        for k, r in templates[_nested("prod")]["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and k.startswith("PipelineScheduleRole")
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert set(trust["Condition"]["StringEquals"]) == {"aws:SourceAccount"}
    assert json.dumps(trust["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        ':schedule-group/default"]]}'
    )


# --- errors synth reports before CloudFormation would --------------------------------


def _dev_only() -> dict[str, Any]:
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    return config


def test_a_failed_definition_fails_synth_naming_its_pipeline(tmp_path: Path) -> None:
    """A builder error names the pipeline and keeps the builder's message, and synth stops
    before any template is written. Here the SDK has no image for a region SageMaker
    itself lists (botocore knows ap-east-2)."""
    config = _dev_only()
    config["stages"]["dev"]["region"] = "ap-east-2"
    app = make_app(config, tmp_path)
    platform_app.build(app)
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    message = str(raised.value)
    assert (
        "[dev/Training/BreastCancerTraining/Pipeline] ValueError: Unsupported region: ap-east-2"
        in message
    )
    assert not list(tmp_path.rglob("*.template.json"))


def test_templates_over_the_cloudformation_limits_fail_synth(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The limits plugin measures every written template (nested ones too)."""
    monkeypatch.setitem(template_budget.LIMITS, "bytes", 20_000)
    app = make_app(_dev_only(), tmp_path)
    platform_app.build(app)
    with pytest.raises(RuntimeError, match="CloudFormation allows 20,000 and the platform keeps"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (limits,) = [r for r in report["pluginReports"] if r["pluginName"] == "CloudFormationLimits"]
    found = {
        v["violatingConstructs"][0]["cloudFormationResource"]["templatePath"].rsplit("/", 1)[-1]
        for v in limits["violations"]
    }
    sizes = {p.name for p in tmp_path.rglob("*.template.json") if p.stat().st_size > 16_000}
    assert sizes and found == sizes


def test_default_templates_are_far_below_the_limits(default_app: cdk.App) -> None:
    for path in Path(default_app.outdir).rglob("*.template.json"):
        measured = template_budget.measure(path)
        for kind, value in measured.items():
            assert value < template_budget.LIMITS[kind] / 4, (path.name, kind, value)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_role_trusts_its_service_for_this_account_only(
    templates: dict[str, Any], stage: str
) -> None:
    """Confused-deputy guard: each service principal's trust names the account and the kind
    of resource the service acts for."""
    roles = [
        (name, role)
        for path, template in templates.items()
        if path.startswith(f"{stage}/")
        for name, role in template["Resources"].items()
        if role["Type"] == "AWS::IAM::Role"
    ]
    services = set()
    for name, role in roles:
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            service = statement["Principal"].get("Service")
            if service == "lambda.amazonaws.com":
                continue  # Lambda passes no source context when it assumes a role
            services.add(service)
            assert "aws:SourceAccount" in statement["Condition"]["StringEquals"], name
            assert "aws:SourceArn" in statement["Condition"]["ArnLike"], name
    assert {"sagemaker.amazonaws.com", "vpc-flow-logs.amazonaws.com"} <= services


def test_the_role_reads_its_asset_objects_and_prefixes_only(templates: dict[str, Any]) -> None:
    statements = _role_statements(templates[_nested("dev")])
    listing = [s for s in statements if "s3:ListBucket" in _actions([s])]
    assert listing and all("s3:prefix" in s["Condition"]["StringLike"] for s in listing)
    assert not any(a == "s3:List*" for a in _actions(statements))
    text = json.dumps(statements)
    assert "assets-${AWS::AccountId}-us-east-1/*" not in text  # not the whole asset bucket
    kms = [s for s in statements if any(a in _actions([s]) for a in ("kms:Decrypt",))]
    assert kms and all(s["Condition"]["StringEquals"]["kms:ViaService"] for s in kms)


def _policy_of(template: dict[str, Any], role_part: str) -> list[dict[str, Any]]:
    (policy,) = [
        r for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and role_part in k
    ]  # fmt: skip
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_only_the_ingestion_jobs_role_may_write_records(templates: dict[str, Any]) -> None:
    template = templates[_nested("dev")]
    ingestion = _policy_of(template, "IngestionRole")
    writes = [s for s in ingestion if "sagemaker:PutRecord" in _actions([s])]
    assert writes and all(
        "feature-group/dev-breast-cancer-features" in json.dumps(s["Resource"]) for s in writes
    )
    assert not [a for a in _actions(ingestion) if a.startswith("sagemaker:Create")]
    execution = _role_statements(template)
    assert not [a for a in _actions(execution) if "Record" in a]
    (passing,) = [s for s in execution if s.get("Sid") == "PassIngestionRoleToItsJob"]
    assert "IngestionRole" in json.dumps(passing["Resource"])
    for statement in ingestion:  # nothing broader, as for the execution role
        actions = _actions([statement])
        assert not any(a.endswith(":*") for a in actions), actions
        if statement["Resource"] == "*":
            assert all(
                a in {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
                or a.startswith("ec2:") for a in actions
            ), actions  # fmt: skip


def test_the_ingestion_step_is_the_one_job_with_a_network(templates: dict[str, Any]) -> None:
    body, values = _pipeline(templates[_nested("dev")])["Properties"]["PipelineDefinition"][
        "PipelineDefinitionBody"
    ]["Fn::Sub"]
    steps = {s["Name"]: s for s in json.loads(body.replace("${!", "${"))["Steps"]}
    ingest = steps["IngestFeatures"]
    assert ingest["DependsOn"] == ["Preprocess"]
    arguments = ingest["Arguments"]
    assert arguments["RoleArn"] == "${IngestionRoleArn}"
    assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert arguments["NetworkConfig"]["VpcConfig"]["SecurityGroupIds"] == [
        "${IngestionSecurityGroupId0}"
    ]
    assert "IngestionSecurityGroupId0" in values and "IngestionRoleArn" in values
    for name in ("Preprocess", "Evaluate"):
        assert steps[name]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert steps[name]["Arguments"]["RoleArn"] == "${ExecutionRoleArn}"
    assert steps["Train"]["Arguments"]["EnableNetworkIsolation"] is True


def test_a_model_without_a_feature_group_has_no_ingestion(synth: Any) -> None:
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    config["featureGroups"] = []
    stage = synth(config)["dev"]
    nested = stage.training.node.find_child("BreastCancerTraining")
    template = Template.from_stack(nested).to_json()
    assert "IngestFeatures" not in json.dumps(template)
    assert not [k for k in template["Resources"] if "IngestionRole" in k]

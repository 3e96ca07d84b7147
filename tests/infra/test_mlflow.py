"""MLflow: each stage's managed MLflow App, and the pipelines tracked in it by SageMaker."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_helpers import mlops_config, ssm_parameter_of
from test_data_stack import STAGES, resources


def _app(templates: dict[str, Any], stage: str) -> dict[str, Any]:
    (app,) = resources(templates[f"{stage}/Data"], "AWS::SageMaker::MlflowApp").values()
    return app


def _pipeline_body(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (pipeline,) = resources(template, "AWS::SageMaker::Pipeline").values()
    body, values = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return json.loads(body.replace("${!", "${")), values


def _role_statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    (policy,) = [
        p for k, p in resources(template, "AWS::IAM::Policy").items() if k.startswith(role_prefix)
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_an_mlflow_app_in_its_artifacts_bucket(
    templates: dict[str, Any], stage: str
) -> None:
    app = _app(templates, stage)
    props = app["Properties"]
    # Named per stack instance: a retained App never blocks a redeployed stage.
    delimiter, (prefix, instance) = props["Name"]["Fn::Join"]
    assert (delimiter, prefix) == ("-", f"mlops-{stage}") and "AWS::StackId" in json.dumps(instance)
    assert props["ModelRegistrationMode"] == "AutoModelRegistrationDisabled"
    uri = props["ArtifactStoreUri"]["Fn::Join"][1]
    assert uri[0] == "s3://" and uri[-1] == "/mlflow/"
    assert uri[1]["Ref"].startswith("ArtifactsBucket")
    expected = "Delete" if stage == "dev" else "Retain"
    assert app["DeletionPolicy"] == app["UpdateReplacePolicy"] == expected
    # ... and a retained App keeps its role and the role's policy.
    data = templates[f"{stage}/Data"]["Resources"]
    for kind in ("AWS::IAM::Role", "AWS::IAM::Policy"):
        (store,) = [
            r
            for k, r in data.items()
            if k.startswith("MlflowArtifactStoreRole") and r["Type"] == kind
        ]
        assert store["DeletionPolicy"] == expected, kind


def test_the_artifact_store_role_reaches_only_its_prefix(templates: dict[str, Any]) -> None:
    statements = _role_statements(templates["dev/Data"], "MlflowArtifactStoreRole")
    s3_resources = [
        r
        for s in statements
        if any(a.startswith("s3:") for a in _actions(s))
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    objects = [r for r in s3_resources if "Fn::Join" in r]
    assert objects and all(r["Fn::Join"][1][-1] == "/mlflow/*" for r in objects)
    # Listing is bounded to the prefix too, and the bucket key is usable through S3 only.
    (listing,) = [s for s in statements if "s3:ListBucket" in _actions(s)]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*"]}}
    others = [s for s in statements if s is not listing]
    assert not [a for s in others for a in _actions(s) if a.startswith("s3:List")]
    (key,) = [s for s in statements if any(a.startswith("kms:") for a in _actions(s))]
    assert "kms:ViaService" in key["Condition"]["StringEquals"]


@pytest.mark.parametrize("stage", STAGES)
def test_pipelines_are_tracked_in_the_stage_app(templates: dict[str, Any], stage: str) -> None:
    template = templates[f"{stage}/Training/BreastCancerTraining"]
    definition, values = _pipeline_body(template)
    experiment = f"{stage}-breast-cancer-training"
    expected = {"MlflowResourceArn": "${MlflowResourceArn}", "MlflowExperimentName": experiment}
    assert definition["MlflowConfig"] == expected
    (train,) = [s for s in definition["Steps"] if s["Name"] == "Train"]
    assert train["Arguments"]["MlflowConfig"] == expected
    # Tracking is SageMaker's own: the jobs stay network-isolated.
    assert train["Arguments"]["EnableNetworkIsolation"] is True
    # Read from the data stack's handoff (an SSM parameter), not a cross-stack export.
    imported = values["MlflowResourceArn"]
    assert ssm_parameter_of(template, imported) == f"/mlops/{stage}/mlflow/app-arn"
    grants = [
        s
        for s in _role_statements(template, "PipelineExecutionRole")
        if "sagemaker:CallMlflowAppApi" in s["Action"]
    ]
    assert grants == [
        {
            "Action": [
                "sagemaker-mlflow:*",
                "sagemaker:CallMlflowAppApi",
                "sagemaker:DescribeMlflowApp",
            ],
            "Effect": "Allow",
            "Resource": imported,
        }
    ]


def test_mlflow_disabled_leaves_it_out(synth: Any) -> None:
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    config["stages"]["dev"]["mlflow"] = {"enabled": False}
    stages = synth(config)
    data = Template.from_stack(stages["dev"].data).to_json()
    pipeline = stages["dev"].training.pipelines["breast-cancer"]
    training = Template.from_stack(cdk.Stack.of(pipeline)).to_json()
    assert resources(data, "AWS::SageMaker::MlflowApp") == {}
    assert "mlflow" not in json.dumps(resources(data, "AWS::SSM::Parameter"))
    definition, values = _pipeline_body(training)
    assert definition["MlflowConfig"] is None
    assert "MlflowResourceArn" not in values
    assert "CallMlflowAppApi" not in json.dumps(training)

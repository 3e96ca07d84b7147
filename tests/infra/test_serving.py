"""Serving: endpoints of the approved version per stage, blue/green with rollback alarms,
autoscaling, serverless in dev, the bootstrap path, version records, alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from botocore.stub import Stubber
from cdk_helpers import ROOT, load_handler, mlops_config

from constructs.endpoint import Deployment, ModelEndpoint
from constructs.model_registry import ModelPackageGroup
from mlops import serving_record
from mlops.config import ConfigError, parse_config

NESTED = "{stage}/Serving/BreastCancerServing"


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = _of_type(template, kind).values()
    return resource


# --------------------------------------------------------------------------- the stages


@pytest.mark.parametrize(
    ("stage", "kind", "percent"), [("staging", "CANARY", 10), ("prod", "LINEAR", 25)]
)
def test_staging_and_prod_roll_out_blue_green_with_alarm_rollback(
    templates: dict[str, Any], stage: str, kind: str, percent: int
) -> None:
    template = templates[NESTED.format(stage=stage)]
    endpoint = _one(template, "AWS::SageMaker::Endpoint")
    assert endpoint["Properties"]["EndpointName"] == f"{stage}-breast-cancer"
    config = endpoint["Properties"]["DeploymentConfig"]
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == kind and routing["WaitIntervalInSeconds"] == 600
    size = routing["CanarySize" if kind == "CANARY" else "LinearStepSize"]
    assert size == {"Type": "CAPACITY_PERCENT", "Value": percent}
    alarms = config["AutoRollbackConfiguration"]["Alarms"]
    rollback = {
        k: v["Properties"]
        for k, v in _of_type(template, "AWS::CloudWatch::Alarm").items()
        if k.startswith("EndpointRollback")
    }
    assert [a["AlarmName"] for a in alarms] == [{"Ref": k} for k in rollback]
    metrics = {p["MetricName"]: p for p in rollback.values()}
    assert metrics["Invocation5XXErrors"]["Threshold"] == 5
    assert metrics["ModelLatency"]["ExtendedStatistic"] == "p99"
    assert metrics["ModelLatency"]["Threshold"] == 1_000_000  # 1 s in microseconds
    assert all(p["AlarmActions"] for p in rollback.values())


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_instances_autoscale_on_invocations_with_kms_capture_in_the_vpc(
    templates: dict[str, Any], stage: str
) -> None:
    template = templates[NESTED.format(stage=stage)]
    target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["ResourceId"] == f"endpoint/{stage}-breast-cancer/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 8)
    assert "RoleARN" not in target  # the service-linked role
    policy = _one(template, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    config = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["InitialSamplingPercentage"] == 100
    assert "KmsKeyId" in capture and "KmsKeyId" in config
    variant = config["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 2
    model = _one(template, "AWS::SageMaker::Model")["Properties"]
    assert model["EnableNetworkIsolation"] is True and model["VpcConfig"]["Subnets"]
    assert model["PrimaryContainer"]["ModelPackageName"]  # the version's inference pipeline


def test_dev_is_serverless_with_the_versions_single_container_form(
    templates: dict[str, Any],
) -> None:
    template = templates[NESTED.format(stage="dev")]
    config = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MaxConcurrency": 5, "MemorySizeInMB": 2048}
    assert "InstanceType" not in variant and "DataCaptureConfig" not in config
    model = _one(template, "AWS::SageMaker::Model")["Properties"]
    assert "VpcConfig" not in model and model["EnableNetworkIsolation"] is False
    container = model["PrimaryContainer"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "serve_single.py"
    assert "AdditionalInferenceSpecifications.0.Containers.0.ModelDataUrl" in json.dumps(container)
    assert not _of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert "DeploymentConfig" not in _one(template, "AWS::SageMaker::Endpoint")["Properties"]


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_without_an_approved_version_nothing_of_the_endpoint_is_created(
    templates: dict[str, Any], stage: str
) -> None:
    nested = templates[NESTED.format(stage=stage)]
    condition = nested["Conditions"]["VersionApproved"]
    assert condition["Fn::Not"][0]["Fn::Equals"][1] == serving_record.NO_VERSION
    unconditioned = {k: r["Type"] for k, r in nested["Resources"].items() if "Condition" not in r}
    # Only what the stack's one AwsCustomResource handler needs (dev) stays.
    assert set(unconditioned.values()) <= {
        "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Logs::LogGroup",
    }  # fmt: skip
    parent = templates[f"{stage}/Serving"]
    (parameter,) = [p for k, p in parent["Parameters"].items() if "servingbreastcancer" in k]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == serving_record.record_name(stage, "breast-cancer")
    (output,) = [
        o["Value"]["Fn::If"] for k, o in parent["Outputs"].items() if k.startswith("BreastCancer")
    ]
    assert output[0] == "BreastCancerApproved" and "no version of breast-cancer" in output[2]


def test_the_data_stack_creates_missing_version_records_and_never_writes_them(
    templates: dict[str, Any],
) -> None:
    for stage, deletes in (("dev", "true"), ("prod", "false")):
        records = _one(templates[f"{stage}/Data"], "Custom::VersionRecords")["Properties"]
        assert records["Names"] == [serving_record.record_name(stage, "breast-cancer")]
        assert records["DeleteOnRemoval"] == deletes
        ssm = [
            p for p in _of_type(templates[f"{stage}/Data"], "AWS::SSM::Parameter").values()
            if "serving" in json.dumps(p["Properties"]["Name"])
        ]  # fmt: skip
        assert ssm == []  # CloudFormation owns no record


def test_alarms_go_to_the_stages_encrypted_topic_with_a_dashboard(
    templates: dict[str, Any],
) -> None:
    topic = _one(templates["prod/Data"], "AWS::SNS::Topic")["Properties"]
    assert "KmsMasterKeyId" in topic
    nested = templates[NESTED.format(stage="prod")]
    alarms = [
        a["Properties"] for k, a in _of_type(nested, "AWS::CloudWatch::Alarm").items()
        if k.startswith("MonitoringFacade")
    ]  # fmt: skip
    names = sorted(a.get("MetricName", "math") for a in alarms)
    assert names == sorted(
        ["Invocation5XXErrors", "math", "ModelLatency", "CPUUtilization",
         "MemoryUtilization", "DiskUtilization"]
    )  # fmt: skip
    assert all(a["AlarmActions"] for a in alarms)
    assert _of_type(nested, "AWS::CloudWatch::Dashboard")


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"instanceType": "ml.m5.tiny"}, "is not a SageMaker endpoint instance type"),
        ({"serverless": {"memorySizeMb": 1500}}, "memorySizeMb"),
        ({"autoscaling": {"minInstances": 3, "maxInstances": 2}, "initialInstanceCount": 3},
         "maxInstances: got 2: below minInstances"),
        ({"autoscaling": {"minInstances": 2, "maxInstances": 4}, "initialInstanceCount": 1},
         "initialInstanceCount: got 1: outside"),
        ({"serverless": {}, "deployment": "canary"}, "takes no canary or linear"),
        ({"serverless": {}, "deployment": "all_at_once", "rollbackAlarms": {}},
         "rollbackAlarms: a serverless endpoint has no blue/green"),
        ({"serverless": {}, "deployment": "all_at_once", "dataCapturePercent": 50},
         "does not capture data"),
        ({"serverless": {"maxConcurrency": 2, "provisionedConcurrency": 3},
          "deployment": "all_at_once"}, "provisionedConcurrency: got 3"),
        ({"deployment": "linear", "canaryPercent": 1, "bakeMinutes": 60}, "bakeMinutes: got 60"),
        ({"deployment": "linear", "canaryPercent": 5, "bakeMinutes": 1}, "canaryPercent: got 5"),
        ({"deployment": "linear", "canaryPercent": 10, "bakeMinutes": 45}, "bakeMinutes: got 45"),
    ],
)  # fmt: skip
def test_endpoint_settings_sagemaker_would_refuse_are_config_errors(
    endpoint: dict, message: str
) -> None:
    config = mlops_config()
    config["stages"]["staging"]["endpoint"] = endpoint
    with pytest.raises(ConfigError, match=r"stages\.staging\.endpoint") as raised:
        parse_config(config, project_root=ROOT)
    assert message in str(raised.value)


# --------------------------------------------------------------------------- the construct


def test_the_construct_exposes_names_grants_metrics_and_scaling() -> None:
    stack = cdk.Stack(env=cdk.Environment(account="111122223333", region="eu-west-1"))
    key = kms.Key(stack, "Key")
    endpoint = ModelEndpoint(
        stack, "Endpoint", endpoint_name="dev-iris", model_package_arn="arn:example",
        model_package_group=ModelPackageGroup(
            stack, "Group", model_package_group_name="g", description="d",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        ),
        encryption_key=key, model_data_bucket=s3.Bucket(stack, "Bucket"),
        model_data_prefix="pipelines/iris/", image_repository_arns=["arn:repo"],
        deployment=Deployment.canary(20, cdk.Duration.minutes(5)),
    )  # fmt: skip
    endpoint.auto_scale_instance_count(min_capacity=1, max_capacity=3).scale_on_invocations(50)
    user = cdk.aws_iam.Role(stack, "Caller", assumed_by=cdk.aws_iam.AccountRootPrincipal())
    endpoint.grant_invoke(user)
    assert endpoint.variant_name == "AllTraffic"
    assert endpoint.metric_model_latency().metric_name == "ModelLatency"
    assert endpoint.metric_cpu_utilization().namespace == "/aws/sagemaker/Endpoints"
    template = Template.from_stack(stack)
    policies = template.find_resources("AWS::IAM::Policy")
    caller = json.dumps([p for k, p in policies.items() if k.startswith("Caller")])
    assert "sagemaker:InvokeEndpoint" in caller and "endpoint/dev-iris" in caller
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 1)
    with pytest.raises(ValueError, match="give both vpc and security_groups"):
        ModelEndpoint(
            stack, "Bad", endpoint_name="x", model_package_arn="a",
            model_package_group=ModelPackageGroup(
                stack, "G2", model_package_group_name="h", description="d",
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
            encryption_key=key, model_data_bucket=s3.Bucket(stack, "B2"), model_data_prefix="p/",
            image_repository_arns=[], vpc=ec2.Vpc(stack, "Vpc"),
        )  # fmt: skip


# --------------------------------------------------------------------------- serve/rollback


def _clients(records: dict[str, str], versions: list[tuple[int, str]]):
    ssm = boto3.client("ssm", region_name="us-east-1")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    ssm_stub, sm_stub = Stubber(ssm), Stubber(sagemaker)
    return ssm, sagemaker, ssm_stub, sm_stub


def _arn(n: int) -> str:
    return f"arn:aws:sagemaker:us-east-1:111122223333:model-package/prod-iris/{n}"


@pytest.mark.parametrize(
    ("recorded", "version", "rollback", "expected"),
    [("none", None, False, 3), (_arn(3), None, True, 2), (_arn(3), 1, False, 1)],
    ids=["latest", "rollback", "chosen"],
)
def test_serve_and_rollback_record_an_approved_version(
    recorded: str, version: int | None, rollback: bool, expected: int
) -> None:
    ssm, sagemaker, ssm_stub, sm_stub = _clients({}, [])
    name = serving_record.record_name("prod", "iris")
    ssm_stub.add_response("get_parameter", {"Parameter": {"Value": recorded}}, {"Name": name})
    sm_stub.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [
            {"ModelPackageArn": _arn(n), "ModelPackageVersion": n, "ModelPackageGroupName": "prod-iris",
             "CreationTime": "2026-01-01", "ModelPackageStatus": "Completed",
             "ModelApprovalStatus": "Approved"}
            for n in (3, 1, 2)
        ]},
        {"ModelPackageGroupName": "prod-iris", "ModelApprovalStatus": "Approved"},
    )  # fmt: skip
    ssm_stub.add_response(
        "put_parameter", {"Version": 2},
        {"Name": name, "Value": _arn(expected), "Type": "String", "Overwrite": True},
    )  # fmt: skip
    with ssm_stub, sm_stub:
        before, chosen = serving_record.record(
            ssm, sagemaker, stage="prod", model="iris", version=version, rollback=rollback
        )
    assert (before, chosen.number) == (recorded, expected)
    ssm_stub.assert_no_pending_responses()


def test_rollback_from_the_oldest_or_an_unknown_version_is_refused() -> None:
    versions = [serving_record.Version(_arn(n), n) for n in (1, 2)]
    with pytest.raises(serving_record.ServingError, match="oldest approved"):
        serving_record.choose(versions, recorded=_arn(1), version=None, rollback=True)
    with pytest.raises(serving_record.ServingError, match="nothing to roll back from"):
        serving_record.choose(versions, recorded="none", version=None, rollback=True)
    with pytest.raises(serving_record.ServingError, match="no approved version"):
        serving_record.choose([], recorded="none", version=None, rollback=False)


def test_the_command_deploys_the_serving_stack_after_recording() -> None:
    import argparse

    calls = []

    class FakeSsm:
        class exceptions:
            ParameterNotFound = KeyError

        def get_parameter(self, Name: str) -> dict:
            return {"Parameter": {"Value": _arn(2)}}

        def put_parameter(self, **kwargs: Any) -> None:
            calls.append(("put", kwargs["Value"]))

    class FakeSageMaker:
        def get_paginator(self, name: str) -> Any:
            class P:
                def paginate(self, **kwargs: Any) -> list:
                    return [{"ModelPackageSummaryList": [
                        {"ModelPackageArn": _arn(n), "ModelPackageVersion": n} for n in (1, 2)
                    ]}]  # fmt: skip

            return P()

    fakes = {"ssm": FakeSsm(), "sagemaker": FakeSageMaker()}
    args = argparse.Namespace(stage="prod", model="iris", region=None, no_deploy=False)
    status = serving_record.run(
        args, rollback=True, clients=lambda s, r: fakes[s],
        deploy=lambda command: calls.append(("deploy", command)) or 0,
    )  # fmt: skip
    assert status == 0
    assert calls == [("put", _arn(1)), ("deploy", serving_record.deploy_command("prod"))]


# --------------------------------------------------------------------------- the handler


def _handler() -> Any:
    return load_handler("serving_records")


def _event(kind: str, names: list[str], delete: str = "false") -> dict:
    return {
        "RequestType": kind, "StackId": "s", "RequestId": "r", "LogicalResourceId": "l",
        "ResourceProperties": {"Namespace": "/mlops/dev/serving", "Names": names,
                               "DeleteOnRemoval": delete},
    }  # fmt: skip


def test_the_record_handler_creates_missing_records_and_keeps_existing_ones() -> None:
    handler = _handler()
    ssm = boto3.client("ssm", region_name="us-east-1")
    stub = Stubber(ssm)
    a, b = "/mlops/dev/serving/a/model-package-arn", "/mlops/dev/serving/b/model-package-arn"
    for name in (a, b):
        expected = {"Name": name, "Value": "none", "Type": "String", "Overwrite": False,
                    "Description": "Version record"}  # fmt: skip
        if name == a:
            stub.add_client_error(
                "put_parameter", "ParameterAlreadyExists", expected_params=expected
            )
        else:
            stub.add_response("put_parameter", {"Version": 1}, expected)
    with stub:
        response = handler.handle(_event("Update", [a, b]), ssm)
    assert (
        response["Status"] == "SUCCESS" and response["PhysicalResourceId"] == "/mlops/dev/serving"
    )
    stub.assert_no_pending_responses()


def test_the_record_handler_deletes_only_in_destroyed_stages_and_reports_failures() -> None:
    handler = _handler()
    ssm = boto3.client("ssm", region_name="us-east-1")
    stub = Stubber(ssm)
    names = [f"/mlops/dev/serving/m{i}/model-package-arn" for i in range(12)]
    stub.add_response("delete_parameters", {"DeletedParameters": names[:10]}, {"Names": names[:10]})
    stub.add_response("delete_parameters", {"DeletedParameters": names[10:]}, {"Names": names[10:]})
    with stub:
        assert handler.handle(_event("Delete", names, "true"), ssm)["Status"] == "SUCCESS"
        assert handler.handle(_event("Delete", names, "false"), ssm)["Status"] == "SUCCESS"
    stub.assert_no_pending_responses()
    stub = Stubber(ssm)
    stub.add_client_error("put_parameter", "AccessDeniedException")
    with stub:
        failed = handler.handle(_event("Create", names[:1]), ssm)
    assert failed["Status"] == "FAILED" and "AccessDenied" in failed["Reason"]


def test_records_are_named_once(tmp_path: Path) -> None:
    # The recommender, the data stack and the serving stack use the same names.
    from mlops import recommend

    name = "/mlops/s/serving/m/model-package-arn"
    assert serving_record.record_name("s", "m") == name
    assert recommend.SERVING_VERSION_PARAMETER.format(stage="s", model="m") == name


def _rendered(body: Any) -> dict[str, Any]:
    """A PipelineDefinitionBody (Fn::Join of text and references) with each reference as a
    ``${Name}`` placeholder, parsed."""
    if isinstance(body, str):
        return json.loads(body)
    (separator, parts) = body["Fn::Join"]
    text = separator.join(p if isinstance(p, str) else "${Ref}" for p in parts)
    return json.loads(text)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_batch_inference_transforms_the_served_version_with_capture(
    templates: dict[str, Any], stage: str
) -> None:
    from mlops.shape_check import check_definition

    template = templates[NESTED.format(stage=stage)]
    (pipeline,) = [
        p for p in _of_type(template, "AWS::SageMaker::Pipeline").values()
        if p["Properties"]["PipelineName"] == f"{stage}-breast-cancer-batch"
    ]  # fmt: skip
    assert pipeline["Condition"] == "VersionApproved"
    definition = _rendered(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    assert check_definition(definition) == []
    model, transform = definition["Steps"]
    assert model["Arguments"]["EnableNetworkIsolation"] is True
    capture = transform["Arguments"]["DataCaptureConfig"]
    assert capture["GenerateInferenceId"] is True and capture["KmsKeyId"]
    assert transform["Arguments"]["TransformOutput"]["KmsKeyId"]
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["InputUri"].endswith("/batch/breast-cancer/input/")


def test_model_names_that_give_one_construct_id_are_a_config_error() -> None:
    config = mlops_config()
    config["models"].append({**config["models"][0], "name": "bc2"})
    config["models"][0]["name"] = "bc-2"
    config["featureGroups"][0]["model"] = "bc-2"
    with pytest.raises(ConfigError, match=r"models\[1:bc2\]\.name: .* same construct ID"):
        parse_config(config, project_root=ROOT)

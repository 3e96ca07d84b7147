"""TrainingPipeline on its own, in a bare stack: CDK types in, attributes, grants, metrics."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs.model_registry import ModelPackageGroup
from constructs.training_pipeline import TrainingPipeline


@pytest.fixture(scope="module")
def built() -> tuple[cdk.Stack, TrainingPipeline]:
    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(region="eu-west-1"))
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Data", encryption_key=key)
    pipeline = TrainingPipeline(
        stack,
        "Pipeline",
        pipeline_name="bare-training",
        model_name="bare",
        problem_type="binary_classification",
        schema_file="data/schemas/breast-cancer.json",
        hyperparameters={"objective": "binary:logistic", "num_round": 10},
        quality_metric="auc",
        quality_threshold=0.9,
        raw_data_bucket=bucket,
        raw_data_prefix="raw/",
        artifacts_bucket=bucket,
        encryption_key=key,
        model_package_group=ModelPackageGroup.from_model_package_group_name(stack, "G", "bare"),
        max_runtime=cdk.Duration.minutes(30),
    )
    return stack, pipeline


def test_attributes_and_the_resource(built: tuple[cdk.Stack, TrainingPipeline]) -> None:
    stack, pipeline = built
    assert pipeline.pipeline_name == "bare-training"
    assert stack.resolve(pipeline.pipeline_arn)["Fn::Join"][1][-1] == ":pipeline/bare-training"
    template = cdk.assertions.Template.from_stack(stack)
    template.has_resource_properties("AWS::SageMaker::Pipeline", {"PipelineName": "bare-training"})
    body = json.dumps(template.to_json())
    assert '\\"MaxRuntimeInSeconds\\":1800' in body  # a Duration, as seconds
    assert "VpcConfig" not in body  # no vpc given: jobs outside a VPC


def test_grants_name_the_pipeline_and_its_executions(
    built: tuple[cdk.Stack, TrainingPipeline],
) -> None:
    stack, pipeline = built
    role = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_start_execution(role)
    (statement,) = stack.resolve(role.node.find_child("DefaultPolicy").document)["Statement"]
    assert "sagemaker:StartPipelineExecution" in statement["Action"]
    assert len(statement["Resource"]) == 2  # the pipeline and <pipeline>/execution/*


@pytest.mark.parametrize(
    ("method", "name", "statistic"),
    [
        ("metric_executions_started", "ExecutionStarted", "Sum"),
        ("metric_executions_failed", "ExecutionFailed", "Sum"),
        ("metric_executions_succeeded", "ExecutionSucceeded", "Sum"),
        ("metric_executions_stopped", "ExecutionStopped", "Sum"),
        ("metric_execution_duration", "ExecutionDuration", "Average"),
    ],
)
def test_metrics_are_sagemaker_pipelines_own(
    built: tuple[cdk.Stack, TrainingPipeline], method: str, name: str, statistic: str
) -> None:
    _, pipeline = built
    metric: Any = getattr(pipeline, method)()
    assert (metric.namespace, metric.metric_name, metric.statistic) == (
        "AWS/Sagemaker/ModelBuildingPipeline",
        name,
        statistic,
    )
    assert metric.dimensions == {"PipelineName": "bare-training"}
    assert metric.period.to_minutes() == 5


def test_a_vpc_needs_its_security_groups() -> None:
    from aws_cdk import aws_ec2 as ec2

    stack = cdk.Stack(cdk.App(), "Bad", env=cdk.Environment(region="eu-west-1"))
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "B")
    with pytest.raises(ValueError, match="give both vpc and security_groups, or neither"):
        TrainingPipeline(
            stack, "P", pipeline_name="p", model_name="p", problem_type="regression",
            schema_file="data/schemas/diabetes.json",
            hyperparameters={"objective": "reg:squarederror", "num_round": 5},
            quality_metric="rmse", quality_threshold=60.0, raw_data_bucket=bucket,
            raw_data_prefix="r/", artifacts_bucket=bucket, encryption_key=key,
            model_package_group=ModelPackageGroup.from_model_package_group_name(stack, "G", "p"),
            vpc=ec2.Vpc(stack, "Vpc"),
        )  # fmt: skip

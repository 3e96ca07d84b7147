"""A batch inference pipeline: a SageMaker Pipeline that runs a batch transform of a model
package version over an S3 prefix, with data capture, started by hand or on a schedule.

Two steps: ``CreateModel`` (the version's inference pipeline, network-isolated in the VPC)
and ``Transform`` (the files under ``InputUri`` in, one output file per input file under
the output prefix and the execution's ID, every record captured for drift checks, all
with the stage's key). The version is the pipeline parameter ``ModelPackageArn``, by
default the one the stage serves (a new version is picked up at the next deployment).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler

from constructs import Construct
from constructs.endpoint import only_if
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.network import selected_subnet_ids
from constructs.pipeline_base import SageMakerPipeline
from constructs.s3_grants import grant_prefix
from constructs.sagemaker_grants import model_role, sagemaker_role
from mlops.instance_storage import has_instance_storage

STEP_MODEL = "CreateModel"
STEP_TRANSFORM = "Transform"
#: SageMaker's log group of transform jobs.
TRANSFORM_LOG_GROUPS = ("TransformJobs",)


class BatchInferencePipeline(SageMakerPipeline):
    """See the module docstring.

    Attributes:
        role: the pipeline's role (creates the model and the transform job).
        model_role: what the model's containers run as (reads input, writes output).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        model_package_arn: str,
        model_package_arn_pattern: str,
        model_data_bucket: s3.IBucket,
        model_data_prefix: str,
        input_bucket: s3.IBucket,
        input_prefix: str,
        output_bucket: s3.IBucket,
        output_prefix: str,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        encryption_key: kms.IKey,
        image_repository_arns: Sequence[str],
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_groups: Sequence[ec2.ISecurityGroup],
        instance_type: str = "ml.m5.xlarge",
        instance_count: int = 1,
        schedule: scheduler.ScheduleExpression | None = None,
        condition: cdk.CfnCondition | None = None,
    ) -> None:
        """
        Args:
            model_package_arn: the default version (a deploy-time token is fine).
            model_package_arn_pattern: the versions it may create models of (its group's).
            model_data_bucket, model_data_prefix: where the versions' artifacts are.
            input_bucket, input_prefix: the default input (CSV or JSON Lines of raw rows).
            output_bucket, output_prefix: where results go, under the execution's ID.
            capture_bucket, capture_prefix: where captured records go.
            image_repository_arns: the ECR repositories of the version's images.
            schedule: when to start executions; without it, only when started.
            condition: every resource exists only while it holds.
        """
        super().__init__(scope, id, pipeline_name=pipeline_name)
        stack = cdk.Stack.of(self)
        self.model_role = model_role(
            self, "ModelRole", description=f"The containers of {pipeline_name}'s transform jobs",
            encryption_key=encryption_key, vpc=vpc, log_groups=TRANSFORM_LOG_GROUPS,
            model_data_bucket=model_data_bucket, model_data_prefix=model_data_prefix,
            image_repository_arns=image_repository_arns,
        )  # fmt: skip
        grant_prefix(self.model_role, input_bucket, input_prefix)
        grant_prefix(self.model_role, output_bucket, output_prefix, write=True)
        grant_prefix(self.model_role, capture_bucket, capture_prefix, write=True)
        self.role = sagemaker_role(self, "Role", description=f"Runs {pipeline_name}")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateModelsAndTransformJobs",
                actions=[
                    "sagemaker:CreateModel", "sagemaker:DescribeModel",
                    "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob", "sagemaker:AddTags",
                ],
                resources=[
                    stack.format_arn(service="sagemaker", resource=kind, resource_name="pipelines-*")
                    for kind in ("model", "transform-job")
                ],
            )
        )  # fmt: skip
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseTheModelsVersions",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[model_package_arn_pattern],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassTheModelRole",
                actions=["iam:PassRole"],
                resources=[self.model_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        encryption_key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")
        subnets = selected_subnet_ids(vpc, vpc_subnets)
        definition = transform_definition(
            role_arn=self.model_role.role_arn,
            model_package_arn=model_package_arn,
            input_uri=input_bucket.s3_url_for_object(input_prefix),
            output_uri=output_bucket.s3_url_for_object(output_prefix.rstrip("/")),
            capture_uri=capture_bucket.s3_url_for_object(capture_prefix.rstrip("/")),
            key_arn=encryption_key.key_arn,
            volume_key_arn=None if has_instance_storage(instance_type) else encryption_key.key_arn,
            subnets=subnets,
            security_groups=[g.security_group_id for g in security_groups],
            instance_type=instance_type,
            instance_count=instance_count,
        )
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_description="Batch inference of the served version",
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(definition)},
        )
        for role in (self.role, self.model_role):
            self.resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
            policy = default_policy_resource(role)
            acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
            acknowledge_wildcards(
                policy,
                "Each wildcard is bounded. Compensating controls: models and transform jobs "
                "only with names the pipeline service generates (pipelines-*); versions only "
                "of the model's group; S3 only the model's artifact, batch input, output and "
                "capture prefixes; KMS only the stage's data key; logs only SageMaker's "
                "transform log groups; network interfaces only in the stage's VPC; Resource "
                "'*' only where the API has no resource type (ecr:GetAuthorizationToken, ec2 "
                "Describe calls) or with a condition (cloudwatch:namespace /aws/sagemaker/*).",
            )
        if schedule is not None:
            self.add_schedule(schedule, encryption_key)
        if condition is not None:
            only_if(self, condition)


def transform_definition(
    *,
    role_arn: str,
    model_package_arn: str,
    input_uri: str,
    output_uri: str,
    capture_uri: str,
    key_arn: str,
    volume_key_arn: str | None,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    instance_type: str,
    instance_count: int,
) -> dict[str, Any]:
    """The pipeline definition (each step's Arguments: the CreateModel and
    CreateTransformJob requests, without the names the service gives)."""
    resources: dict[str, Any] = {"InstanceType": {"Get": "Parameters.InstanceType"},
                                 "InstanceCount": {"Get": "Parameters.InstanceCount"}}  # fmt: skip
    if volume_key_arn is not None:
        resources["VolumeKmsKeyId"] = volume_key_arn
    execution = {"Get": "Execution.PipelineExecutionId"}
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "ModelPackageArn", "Type": "String", "DefaultValue": model_package_arn},
            {"Name": "InputUri", "Type": "String", "DefaultValue": input_uri},
            {"Name": "InstanceType", "Type": "String", "DefaultValue": instance_type},
            {"Name": "InstanceCount", "Type": "Integer", "DefaultValue": instance_count},
        ],
        "Steps": [
            {
                "Name": STEP_MODEL,
                "Type": "Model",
                "Arguments": {
                    "ExecutionRoleArn": role_arn,
                    "PrimaryContainer": {"ModelPackageName": {"Get": "Parameters.ModelPackageArn"}},
                    "EnableNetworkIsolation": True,
                    "VpcConfig": {
                        "Subnets": list(subnets),
                        "SecurityGroupIds": list(security_groups),
                    },
                },
            },
            {
                "Name": STEP_TRANSFORM,
                "Type": "Transform",
                "Arguments": {
                    "ModelName": {"Get": f"Steps.{STEP_MODEL}.ModelName"},
                    "BatchStrategy": "MultiRecord",
                    "MaxPayloadInMB": 6,
                    "TransformInput": {
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": {"Get": "Parameters.InputUri"},
                            }
                        },
                        "ContentType": "text/csv",
                        "SplitType": "Line",
                    },
                    "TransformOutput": {
                        "S3OutputPath": {
                            "Std:Join": {"On": "/", "Values": [output_uri, execution]}
                        },
                        "Accept": "text/csv",
                        "AssembleWith": "Line",
                        "KmsKeyId": key_arn,
                    },
                    "TransformResources": resources,
                    "DataCaptureConfig": {
                        "DestinationS3Uri": capture_uri,
                        "KmsKeyId": key_arn,
                        "GenerateInferenceId": True,
                    },
                },
            },
        ],
    }

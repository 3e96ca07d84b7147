"""Permissions every SageMaker job and endpoint role needs (jobs of the training pipeline,
models behind endpoints)."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.s3_grants import grant_prefix
from constructs.service_principals import confined_service_principal

#: SageMaker's log groups of the pipeline's jobs.
JOB_LOG_GROUPS = ("ProcessingJobs", "TrainingJobs")


def endpoint_log_groups(endpoint_name: str) -> tuple[str, ...]:
    """SageMaker's log group of an endpoint (``/aws/sagemaker/Endpoints/<name>``)."""
    return (f"Endpoints/{endpoint_name}",)


def grant_sagemaker_basics(
    role: iam.Role,
    stack: cdk.Stack,
    key: kms.IKey,
    *,
    vpc: ec2.IVpc | None,
    log_groups: Sequence[str],
) -> None:
    """What the role of any SageMaker job or endpoint needs: volume keys, logs in
    SageMaker's ``/aws/sagemaker/<kind>`` groups (``log_groups``: e.g. ``ProcessingJobs``),
    metrics, ECR login, and (in a VPC) its network interfaces."""
    # Job volumes and outputs are encrypted with the data key; SageMaker creates grants.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="EncryptJobVolumes",
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
    key.grant(role, "kms:DescribeKey")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="WriteJobLogs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            resources=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=f"/aws/sagemaker/{kind}:*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
                for kind in log_groups
            ],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="PublishJobMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"])
    )
    if vpc is not None:
        # SageMaker creates the jobs' network interfaces as this role: only in this VPC.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobNetworkInterfacesInTheVpc",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=["*"],
                conditions={
                    "ArnEquals": {
                        "ec2:Vpc": stack.format_arn(
                            service="ec2", resource="vpc", resource_name=vpc.vpc_id
                        )
                    }
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeJobNetwork",
                actions=[
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )


#: What pulling a container image takes (on the image's repository).
IMAGE_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)


def sagemaker_role(scope: Construct, id: str, *, description: str) -> iam.Role:
    """A role only SageMaker in this account may assume (for jobs, models, pipelines)."""
    return iam.Role(
        scope,
        id,
        assumed_by=confined_service_principal(
            scope, "sagemaker.amazonaws.com", arn_service="sagemaker"
        ),
        description=description,
    )


def model_role(
    scope: Construct,
    id: str,
    *,
    description: str,
    encryption_key: kms.IKey,
    vpc: ec2.IVpc | None,
    log_groups: Sequence[str],
    model_data_bucket: s3.IBucket,
    model_data_prefix: str,
    image_repository_arns: Sequence[str],
) -> iam.Role:
    """The role a model's containers run as: its artifacts, its images, and what every
    SageMaker role needs (:func:`grant_sagemaker_basics`)."""
    role = sagemaker_role(scope, id, description=description)
    grant_prefix(role, model_data_bucket, model_data_prefix)
    grant_sagemaker_basics(
        role, cdk.Stack.of(scope), encryption_key, vpc=vpc, log_groups=log_groups
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="PullModelImages",
            actions=list(IMAGE_PULL_ACTIONS),
            resources=list(image_repository_arns),
        )
    )
    return role

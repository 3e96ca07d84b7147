"""The role a stage gives the release pipeline: its smoke tests and promotions run as it.

The release pipeline runs in a tooling account; its CodeBuild steps assume this role to read
the stage's version records, invoke its endpoints (``mlops release-smoke-test``) and, in a
stage served by promotion, copy a version of its source stage into this stage's artifacts
bucket and model package group and record it (``mlops promote``; ADR 0004).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.model_registry import grant_read_versions
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from pipeline_steps.steplib.contract import REGISTERED_APPROVAL_STATUS


class ReleaseAccess(Construct):
    """A role named ``role_name`` that only the release stack's roles may assume.

    Args:
        trusted_account: the release (tooling) account.
        trusted_role_prefix: the name prefix of the roles that may assume it (CloudFormation
            names a stack's roles ``<stack name>-...``).
        record_name_pattern: the version records (an SSM name pattern): read, and written
            when promoting.
        handoff_parameter_names: other SSM parameters it reads (the artifacts bucket's).
        group_prefix: the stage's groups are ``<group_prefix><model>``: read, and written
            when promoting.
        endpoint_name_prefix: the stage's endpoints are named ``<prefix><model>``: invoked.
        serving_stack_name: the stack whose outputs say what the endpoints serve: read.
        artifacts_bucket, artifact_patterns: where promoted versions' objects are copied to.
        promotion_source_account: the account of the stage promoted from, whose artifacts
            bucket (through its own grant to this account) is read; None: no promotion.

    Attributes:
        role.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role_name: str,
        trusted_account: str,
        trusted_role_prefix: str,
        record_name_pattern: str,
        handoff_parameter_names: Sequence[str],
        group_prefix: str,
        endpoint_name_prefix: str,
        serving_stack_name: str,
        artifacts_bucket: s3.IBucket,
        artifact_patterns: Sequence[str],
        promotion_source_account: str | None,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        principal = iam.AccountPrincipal(trusted_account).with_conditions(
            {
                "ArnLike": {
                    "aws:PrincipalArn": f"arn:{stack.partition}:iam::{trusted_account}:role/"
                    f"{trusted_role_prefix}-*"
                }
            }
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=principal,
            max_session_duration=cdk.Duration.hours(1),
            description="The release pipeline's smoke tests and promotions in this stage",
        )
        role = self.role

        def parameter(name: str) -> str:
            return stack.format_arn(
                service="ssm", resource="parameter", resource_name=name.lstrip("/")
            )

        # Patterns, not one ARN per model: a role's inline policies hold 10,240 characters.
        records = parameter(record_name_pattern)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[records, *(parameter(n) for n in handoff_parameter_names)],
            )
        )
        grant_read_versions(role, self, group_prefix)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=[
                    stack.format_arn(
                        service="sagemaker",
                        resource="endpoint",
                        resource_name=f"{endpoint_name_prefix}*",
                    )
                ],
            )
        )
        # What the serving stack was deployed with (its outputs): what a smoke test tests.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks"],
                resources=[
                    stack.format_arn(
                        service="cloudformation", resource="stack",
                        resource_name=f"{serving_stack_name}/*",
                    )
                ],
            )
        )  # fmt: skip
        if promotion_source_account is not None:
            groups = stack.format_arn(
                service="sagemaker",
                resource="model-package-group",
                resource_name=f"{group_prefix}*",
            )
            versions = stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{group_prefix}*/*"
            )
            # A promoted copy is created pending, as the training pipelines create theirs,
            # and approved after its record is written.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:CreateModelPackage"],
                    resources=[groups, versions],
                    conditions={
                        "StringEquals": {
                            "sagemaker:ModelApprovalStatus": REGISTERED_APPROVAL_STATUS
                        }
                    },
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=[versions])
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["ssm:PutParameter"], resources=[records])
            )
            for pattern in artifact_patterns:
                artifacts_bucket.grant_put(role, pattern)
            # The source stage's bucket and key name this account in their own policies
            # (modelReaderAccounts); here: only objects of buckets in that account, and the
            # key only through S3.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:GetObjectTagging"],
                    resources=[f"arn:{stack.partition}:s3:::*"],
                    conditions={"StringEquals": {"s3:ResourceAccount": promotion_source_account}},
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[
                        f"arn:{stack.partition}:kms:{stack.region}:{promotion_source_account}:key/*"
                    ],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}
                    },
                )
            )
        policy = default_policy_resource(role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Compensating controls: only the release stack's roles may assume it, for an hour; "
            "it reads the stage's version records and artifacts bucket name, writes the records "
            "only when promoting, reads and (when promoting) adds versions of the stage's groups only "
            "(ListModelPackages has no resource-level permissions), invokes the stage's "
            "endpoints, writes only registered-model keys of the stage's artifacts bucket and "
            "reads only objects owned by the source stage's account, its key through S3 only.",
        )

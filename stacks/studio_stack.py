"""Browser-based data preparation: the stage's SageMaker Studio domain with Canvas.

Only in stages with ``studio.enabled`` (default: dev). The domain's network (its security
group and the interface endpoints) is the data stack's; here are the domain, its
execution role with what users may reach, and the user profiles from config.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.feature_group import grant_feature_groups
from constructs.model_registry import grant_read_versions, grant_register_versions
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.s3_grants import grant_prefix
from constructs.studio_domain import StudioDomain
from mlops import serving_record
from mlops.config import StageConfig, pascal_case
from stacks.data_stack import OFFLINE_STORE_PREFIX, DataStack, _retention


class StudioStack(cdk.Stack):
    """The stage's Studio domain, wired to the stage's data stack.

    Attributes:
        domain: the :class:`StudioDomain`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        stage: StageConfig,
        data: DataStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id,
            termination_protection=stage.termination_protection,
            description=f"SageMaker MLOps platform ({stage_name}): Studio domain with Canvas",
            **kwargs,
        )
        # Values come from the data stack's handoff (SSM), read at deployment: deploy after.
        self.add_stack_dependency(data)
        shared = data.resources_for(self)
        security_group = shared.studio_security_group
        if security_group is None:
            raise ValueError(f"stage {stage_name}: the data stack has no Studio network")
        removal = (
            cdk.RemovalPolicy.DESTROY
            if stage.removal_policy == "destroy"
            else cdk.RemovalPolicy.RETAIN
        )
        settings = stage.studio
        self.domain = StudioDomain(
            self,
            "Domain",
            domain_name=f"mlops-{stage_name}",
            vpc=shared.vpc,
            subnets=shared.job_subnets,
            security_group=security_group,
            encryption_key=shared.data_key,
            artifacts_bucket=shared.artifacts_bucket,
            canvas_direct_deploy=settings.allows_direct_deploy(stage_name),
            idle_timeout_minutes=settings.idle_timeout_minutes,
            # A destroyed stage's domain gets no EFS home (CloudFormation would leave it
            # behind, blocking the VPC's deletion); a retained one keeps it.
            home_file_system=removal == cdk.RemovalPolicy.RETAIN,
            removal_policy=removal,
            log_retention=_retention(stage.log_retention_days),
        )
        role = self.domain.execution_role
        # What users prepare data from, and where their work goes: one pattern per kind
        # of resource of the stage (its groups are all named <stage>-...), so the role's
        # policy does not grow with the models.
        # Raw data: read, anywhere in the bucket; its key only through S3.
        grant_prefix(role, shared.raw_data_bucket, "")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation"], resources=[shared.raw_data_bucket.bucket_arn]
            )
        )
        group_prefix = serving_record.group_prefix(stage_name)
        grant_read_versions(role, self, group_prefix)
        grant_register_versions(role, self, group_prefix)
        if data.feature_groups:
            workgroup = shared.offline_store_workgroup
            store_bucket = shared.feature_store_bucket
            grant_feature_groups(
                role, self, group_prefix=group_prefix, encryption_key=shared.data_key,
                offline_store=(store_bucket, OFFLINE_STORE_PREFIX,
                               data.offline_store_table_prefix, workgroup)
                if workgroup is not None and store_bucket is not None else None,
            )  # fmt: skip
        if shared.mlflow_app is not None:
            shared.mlflow_app.grant_tracking(role)
        for profile in settings.user_profiles:
            own_role = (
                iam.Role.from_role_arn(
                    self, f"{pascal_case(profile.name)}Role", profile.execution_role_arn,
                    mutable=False,
                )
                if profile.execution_role_arn
                else None
            )  # fmt: skip
            self.domain.add_user_profile(profile.name, execution_role=own_role)
        grants = default_policy_resource(role)
        acknowledge(grants, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            grants,
            "Compensating controls: SageMaker's log groups, ECR login and network interfaces "
            "in the stage's VPC (what every SageMaker job role has); the stage's own "
            "resources only, by their name prefixes: "
            f"model package groups and feature groups named {group_prefix}*, versions "
            "registered only pending approval, offline-store tables and objects of the "
            "stage, its MLflow App; objects only under the named prefixes of the stage's "
            "buckets, the key only through S3 or SageMaker; ListModelPackages has no "
            "resource type.",
        )
        cdk.CfnOutput(self, "DomainId", value=self.domain.domain_id,
                      description="The Studio domain's ID")  # fmt: skip
        cdk.CfnOutput(self, "DomainUrl", value=self.domain.domain_url,
                      description="Studio's URL (sign in through the console or "
                      "CreatePresignedDomainUrl)")  # fmt: skip

    def model_scopes(self) -> dict[str, list[Construct]]:
        """What each model adds to this template: nothing but statements of the execution
        role's policy."""
        return {}

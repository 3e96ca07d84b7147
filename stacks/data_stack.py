"""The stateful stack: keys, data buckets and model package groups.

Nothing here is torn down casually: in stages with ``removalPolicy: retain`` every resource
is RETAINed and the stack has termination protection.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from constructs.model_registry import ModelPackageGroup
from constructs.secure_bucket import AccessLogsBucket, SecureBucket

from mlops.config import ModelConfig, StageConfig, pascal_case


class DataStack(cdk.Stack):
    """Customer-managed keys, encrypted buckets and the Model Registry for one stage.

    Attributes:
        data_key: the KMS key for data, artifacts and captured inference data.
        raw_data_bucket: raw data that pipelines read.
        artifacts_bucket: pipeline outputs: splits, baselines, models, evaluation reports.
        data_capture_bucket: endpoint request/response capture for drift checks.
        access_logs_bucket: S3 server access logs of the three buckets above.
        model_package_groups: one per configured model, by model name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        stage: StageConfig,
        models: tuple[ModelConfig, ...],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id,
            termination_protection=stage.termination_protection,
            description=f"SageMaker MLOps platform ({stage_name}): keys, data buckets, model registry",
            **kwargs,
        )
        removal = (
            cdk.RemovalPolicy.DESTROY
            if stage.removal_policy == "destroy"
            else cdk.RemovalPolicy.RETAIN
        )

        self.data_key = kms.Key(
            self,
            "DataKey",
            description=f"MLOps {stage_name}: data, artifacts and captured inference data",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=cdk.Duration.days(30),
        )
        self.data_key.add_alias(f"alias/mlops-{stage_name}-data")

        self.access_logs_bucket = AccessLogsBucket(
            self,
            "AccessLogs",
            removal_policy=removal,
            expiration_days=stage.log_retention_days,
        ).bucket

        def data_bucket(bucket_id: str, recovery: str, expiration_days: int | None = None) -> Any:
            return SecureBucket(
                self,
                bucket_id,
                encryption_key=self.data_key,
                access_logs_bucket=self.access_logs_bucket,
                removal_policy=removal,
                noncurrent_version_expiration_days=stage.noncurrent_version_expiration_days,
                recovery=recovery,
                expiration_days=expiration_days,
            ).bucket

        self.raw_data_bucket = data_bucket(
            "RawData", "raw data is a landed copy; its source of record is upstream."
        )
        self.artifacts_bucket = data_bucket(
            "Artifacts", "every artifact is rebuilt from the raw data by re-running the pipeline."
        )
        self.data_capture_bucket = data_bucket(
            "DataCapture",
            "captured requests are a short-lived sample for drift checks; a lost window "
            "is skipped, the next one is captured.",
            expiration_days=stage.capture_expiration_days,
        )

        # Other accounts that deploy this stage's models read their artifacts.
        for account in stage.model_reader_accounts:
            self.artifacts_bucket.grant_read(iam.AccountPrincipal(account), "models/*")

        self.model_package_groups: dict[str, ModelPackageGroup] = {}
        for model in models:
            self.model_package_groups[model.name] = ModelPackageGroup(
                self,
                f"{pascal_case(model.name)}ModelPackageGroup",
                model_package_group_name=f"{stage_name}-{model.name}",
                description=f"{model.name}: {model.problem_type}, target {model.target_column}",
                reader_account_ids=stage.model_reader_accounts,
                removal_policy=removal,
            )
        _quiet_auto_delete_provider_lint(self)


def _quiet_auto_delete_provider_lint(stack: cdk.Stack) -> None:
    """Scopes one cfn-lint warning to the bucket-emptying handler CDK adds for DESTROY stages.

    CDK's provider both references its role with GetAtt and lists it in DependsOn; cfn-lint
    reports the duplicate (W3005). It is harmless, and the resource is CDK's, not ours.
    """
    provider = stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    if isinstance(handler, cdk.CfnResource):
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

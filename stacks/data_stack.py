"""The stateful stack: keys, data buckets and model package groups.

Nothing here is torn down casually: in stages with ``removalPolicy: retain`` every resource
is RETAINed and the stack has termination protection.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.mlflow_app import MlflowApp
from constructs.model_registry import ModelPackageGroup
from constructs.network import PrivateNetwork
from constructs.secure_bucket import AccessLogsBucket, SecureBucket
from mlops.config import ModelConfig, StageConfig, pascal_case


class DataStack(cdk.Stack):
    """Customer-managed keys, encrypted buckets and the Model Registry for one stage.

    Attributes:
        data_key: the KMS key for data, artifacts and captured inference data.
        raw_data_bucket: raw data that pipelines read.
        artifacts_bucket: pipeline outputs: splits, baselines, models, evaluation reports.
        data_capture_bucket: endpoint request/response capture for drift checks.
        raw_data_bucket_arn_export, artifacts_bucket_arn_export: names of the exports
            other stacks import these buckets' ARNs by.
        access_logs_bucket: S3 server access logs of the three buckets above.
        model_package_groups: one per configured model, by model name.
        mlflow: the stage's managed MLflow App, or None when ``mlflow.enabled`` is false.
        mlflow_app_arn_export: name of the export of the App's ARN (None without one).
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
            description=f"SageMaker MLOps platform ({stage_name}): keys, network, data buckets, model registry",
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
        # CloudWatch Logs encrypts this stage's log groups (VPC flow logs) with the key.
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

        self.network = PrivateNetwork(
            self,
            "Network",
            cidr=stage.vpc.cidr,
            max_azs=stage.vpc.max_azs,
            encryption_key=self.data_key,
            flow_log_retention=_retention(stage.log_retention_days),
            removal_policy=removal,
        )

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

        # Named exports for the stateless stacks. IAM policies there name these buckets in
        # wildcard resources (`<bucket-arn>/<prefix>/*`), and a named export keeps both the
        # policy text and its cdk-nag acknowledgement stable (see constructs/nag.py).
        self.raw_data_bucket_arn_export = self._export(
            "RawDataBucketArn", self.raw_data_bucket.bucket_arn
        )
        self.artifacts_bucket_arn_export = self._export(
            "ArtifactsBucketArn", self.artifacts_bucket.bucket_arn
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

        self.mlflow: MlflowApp | None = None
        self.mlflow_app_arn_export: str | None = None
        if stage.mlflow.enabled:
            self.mlflow = MlflowApp(
                self,
                "Mlflow",
                app_name=f"mlops-{stage_name}",
                artifacts_bucket=self.artifacts_bucket,
                removal_policy=removal,
            )
            self.mlflow_app_arn_export = self._export("MlflowAppArn", self.mlflow.app_arn)
        _quiet_auto_delete_provider_lint(self)

    def _export(self, name: str, value: str) -> str:
        """Exports ``value`` as ``<stack name>-<name>`` and returns the export name."""
        export_name = f"{self.stack_name}-{name}"
        self.export_value(value, name=export_name)
        return export_name


# CloudWatch Logs accepts only these retention periods (days).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention that keeps logs at least ``days`` days."""
    return _RETENTION[min(d for d in _RETENTION if d >= days)]


def _quiet_auto_delete_provider_lint(stack: cdk.Stack) -> None:
    """Scopes one cfn-lint warning to the handlers CDK adds (bucket emptying in DESTROY
    stages, closing the VPC's default security group).

    CDK's providers both references its role with GetAtt and lists it in DependsOn; cfn-lint
    reports the duplicate (W3005). It is harmless, and the resource is CDK's, not ours.
    """
    for name in (
        "Custom::S3AutoDeleteObjectsCustomResourceProvider",
        "Custom::VpcRestrictDefaultSGCustomResourceProvider",
    ):
        provider = stack.node.try_find_child(name)
        handler = provider.node.try_find_child("Handler") if provider is not None else None
        if isinstance(handler, cdk.CfnResource):
            handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

"""The stateful stack: keys, data buckets and model package groups.

Nothing here is torn down casually: in stages with ``removalPolicy: retain`` every resource
is RETAINed and the stack has termination protection.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.feature_group import (
    FeatureGroup,
    FeatureGroupBase,
    OfflineStoreRole,
    OfflineStoreWorkgroup,
    OfflineStoreWorkgroupBase,
    share_catalog,
)
from constructs.mlflow_app import MlflowApp, MlflowAppBase
from constructs.model_registry import ModelPackageGroup, ModelPackageGroupBase, ModelVersionCleanup
from constructs.network import PrivateNetwork
from constructs.release_access import ReleaseAccess
from constructs.secure_bucket import AccessLogsBucket, SecureBucket
from constructs.stage_handoff import StageHandoff
from constructs.version_records import VersionRecords
from mlops import serving_record
from mlops.config import FeatureGroupConfig, ModelConfig, StageConfig, pascal_case
from mlops.pipeline_definition import registered_object_patterns
from pipeline_steps.steplib import contract

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Where offline stores and Athena results live in the feature store bucket.
OFFLINE_STORE_PREFIX = "offline-store/"
ATHENA_RESULTS_PREFIX = "athena-results/"
#: The handoff key of the Studio domain's security group.
STUDIO_SECURITY_GROUP_KEY = "network/studio-security-group-id"


@dataclass(frozen=True)
class ReleaseWiring:
    """How a released stage meets the release pipeline (None account: this stack's).

    Attributes:
        account, region: the release (tooling) account and region.
        promoted_from_account: set in a stage served by promotion: its source's account.
    """

    account: str | None
    region: str
    promoted_from_account: str | None = None
    promoted: bool = False


class DataStack(cdk.Stack):
    """Customer-managed keys, encrypted buckets and the Model Registry for one stage.

    Attributes:
        data_key: the KMS key for data, artifacts and captured inference data.
        raw_data_bucket: raw data that pipelines read.
        artifacts_bucket: pipeline outputs: splits, baselines, models, evaluation reports.
        data_capture_bucket: endpoint request/response capture for drift checks.
        access_logs_bucket: S3 server access logs of the three buckets above.
        model_package_groups: one per configured model, by model name.
        feature_groups: one per configured feature group, by its config name.
        feature_store_bucket: offline stores and Athena results (None without offline
            stores); offline_store_workgroup: the Athena workgroup that queries them.
        mlflow: the stage's managed MLflow App, or None when ``mlflow.enabled`` is false.
        handoff: what other stacks of the stage read (SSM parameters, no exports); use
            :meth:`resources_for` rather than reading it directly.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        stage: StageConfig,
        models: tuple[ModelConfig, ...],
        feature_groups: tuple[FeatureGroupConfig, ...] = (),
        release: ReleaseWiring | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id,
            termination_protection=stage.termination_protection,
            description=f"SageMaker MLOps platform ({stage_name}): keys, network, data buckets, model registry",
            **kwargs,
        )
        self._held: dict[str, StageResources] = {}  # resources_for, by scope
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

        # Alarms of the stage (endpoints, monitoring) go here; CloudWatch publishes to a
        # topic encrypted with the key only when the key lets it.
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", master_key=self.data_key, enforce_ssl=True,
            display_name=f"MLOps {stage_name} alarms",
        )  # fmt: skip
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cloudwatch", resource="alarm", resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )  # fmt: skip
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsToTheAlarmTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
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

        if stage.owns_job_log_groups:
            # SageMaker writes every job's logs to these two groups of the account: with the
            # stage's key and retention instead of unencrypted and kept forever.
            for kind in ("ProcessingJobs", "TrainingJobs"):
                logs.LogGroup(
                    self,
                    f"{kind}Logs",
                    log_group_name=f"/aws/sagemaker/{kind}",
                    encryption_key=self.data_key,
                    retention=_retention(stage.log_retention_days),
                    removal_policy=removal,
                )

        self.network.allow_buckets(
            [self.raw_data_bucket, self.artifacts_bucket, self.data_capture_bucket]
        )

        # Other accounts that deploy this stage's models read what a registered version
        # refers to (its two model artifacts, evaluation and baseline), nothing else.
        for account in stage.model_reader_accounts:
            for pattern in registered_object_patterns():
                self.artifacts_bucket.grant_read(iam.AccountPrincipal(account), pattern)

        self.model_package_groups: dict[str, ModelPackageGroup] = {}
        for model in models:
            self.model_package_groups[model.name] = ModelPackageGroup(
                self,
                f"{pascal_case(model.name)}ModelPackageGroup",
                model_package_group_name=serving_record.model_package_group_name(
                    stage_name, model.name
                ),
                description=f"{model.name}: {model.problem_type}, target {model.target_column}",
                reader_account_ids=stage.model_reader_accounts,
                removal_policy=removal,
            )

        if removal == cdk.RemovalPolicy.DESTROY and self.model_package_groups:
            ModelVersionCleanup(
                self,
                "ModelVersionCleanup",
                groups=list(self.model_package_groups.values()),
                encryption_key=self.data_key,
                log_retention=_retention(stage.log_retention_days),
            )

        # What each model serves in this stage: created as "none", then written only by
        # the approval tooling (never by CloudFormation).
        self.version_records = VersionRecords(
            self, "VersionRecords",
            namespace=serving_record.NAMESPACE.format(stage=stage_name) + "/serving",
            names=[serving_record.record_name(stage_name, m.name) for m in models],
            encryption_key=self.data_key, log_retention=_retention(stage.log_retention_days),
            delete_on_removal=removal == cdk.RemovalPolicy.DESTROY,
        )  # fmt: skip

        self._feature_store(stage_name, stage, models, feature_groups, removal, data_bucket)
        self.studio_security_group: ec2.ISecurityGroup | None = None
        if stage.studio.is_enabled(stage_name):
            self._studio_network(stage)
        if release is not None:
            self._release(stage_name, release)

        self.mlflow: MlflowApp | None = None
        if stage.mlflow.enabled:
            self.mlflow = MlflowApp(
                self,
                "Mlflow",
                # Unique per stack instance: a retained App (its experiments kept) does not
                # block a redeployed stage, which gets an App of its own.
                app_name=cdk.Fn.join("-", [f"mlops-{stage_name}", _stack_instance_id()]),
                artifacts_bucket=self.artifacts_bucket,
                removal_policy=removal,
            )
        self.handoff = StageHandoff(
            self, "Handoff", namespace=serving_record.NAMESPACE.format(stage=stage_name)
        )
        self._publish()
        _quiet_auto_delete_provider_lint(self)

    def _feature_store(
        self,
        stage_name: str,
        stage: StageConfig,
        models: tuple[ModelConfig, ...],
        groups: tuple[FeatureGroupConfig, ...],
        removal: cdk.RemovalPolicy,
        data_bucket: Any,
    ) -> None:
        """One feature group per configured group, its features from its model's schema;
        the offline stores' bucket, role and Athena workgroup when any group has one."""
        self.feature_groups: dict[str, FeatureGroup] = {}
        #: The offline stores' Glue tables are named ``<stage>_<group>...``.
        self.offline_store_table_prefix = f"{stage_name}_"
        self._feature_group_models: dict[str, str] = {}
        self.feature_store_bucket: s3.IBucket | None = None
        self.offline_store_workgroup: OfflineStoreWorkgroup | None = None
        role = None
        if any(g.offline_store for g in groups):
            self.feature_store_bucket = data_bucket(
                "FeatureStore",
                "the offline stores are rebuilt by re-ingesting the raw data (the pipeline's "
                "ingestion step); Athena results are disposable.",
            )
            role = OfflineStoreRole(
                self, "OfflineStoreRole", bucket=self.feature_store_bucket,
                prefix=OFFLINE_STORE_PREFIX, table_prefix=self.offline_store_table_prefix,
            ).role  # fmt: skip
            self.offline_store_workgroup = OfflineStoreWorkgroup(
                self, "OfflineStoreWorkgroup", workgroup_name=f"{stage_name}-feature-store",
                bucket=self.feature_store_bucket, results_prefix=ATHENA_RESULTS_PREFIX,
                encryption_key=self.data_key, removal_policy=removal,
            )  # fmt: skip
        by_name = {m.name: m for m in models}
        for group in groups:
            model = by_name[group.model]
            schema = contract.parse_schema(
                json.loads((PROJECT_ROOT / model.schema_file).read_text(encoding="utf-8")),
                model.schema_file,
            )
            feature_group = FeatureGroup(
                self,
                f"{pascal_case(group.name)}FeatureGroup",
                feature_group_name=f"{stage_name}-{group.name}",
                record_identifier=schema.record_id_column,
                event_time_feature=schema.event_time_column,
                features=contract.feature_definitions(schema),
                encryption_key=self.data_key,
                online_store=group.online_store,
                online_storage_type=group.online_storage_type,
                ttl=cdk.Duration.days(group.online_ttl_days) if group.online_ttl_days else None,
                offline_store_bucket=self.feature_store_bucket if group.offline_store else None,
                offline_store_prefix=OFFLINE_STORE_PREFIX,
                offline_store_role=role if group.offline_store else None,
                throughput_mode=group.throughput_mode,
                provisioned_read_capacity_units=group.provisioned_read_capacity_units,
                provisioned_write_capacity_units=group.provisioned_write_capacity_units,
                description=f"Features of {model.name} ({model.problem_type}), from {model.schema_file}",
                removal_policy=removal,
            )
            if group.share_with_accounts:
                feature_group.share_with_accounts(group.share_with_accounts)
            self.feature_groups[group.name] = feature_group
            self._feature_group_models[group.name] = model.name
        self.ingestion_security_group: ec2.ISecurityGroup | None = None
        if self.feature_groups:
            self.ingestion_security_group = self.network.add_feature_store_runtime_endpoint(
                [g.feature_group_arn for g in self.feature_groups.values()]
            )
        trains_offline = {m.name for m in models if m.training_data == "offlineStore"}
        self._offline_trained = {
            n for n, m in self._feature_group_models.items() if m in trains_offline
        }
        if self._offline_trained and self.offline_store_workgroup is not None:
            assert self.ingestion_security_group is not None
            self.network.add_athena_endpoint(
                self.offline_store_workgroup.workgroup_arn, self.ingestion_security_group
            )
        shared = sorted({a for g in groups for a in g.share_with_accounts})
        if shared:
            share_catalog(self, "FeatureGroupDiscovery", shared)

    def _studio_network(self, stage: StageConfig) -> None:
        """The Studio domain's security group and the interface endpoints it needs (the
        domain itself is the Studio stack's): here, with the network they belong to."""
        self.studio_security_group = self.network.add_studio_endpoints(
            with_mlflow=stage.mlflow.enabled
        )
        # Canvas imports from the offline stores through Athena.
        if self.offline_store_workgroup is not None and not self.network.has_endpoint("Athena"):
            self.network.add_athena_endpoint(
                self.offline_store_workgroup.workgroup_arn, self.studio_security_group,
                clients_are="Studio apps",
            )  # fmt: skip

    def model_scopes(self) -> dict[str, list[Construct]]:
        """What each model adds to this template: its model package group and feature
        groups."""
        scopes: dict[str, list[Construct]] = {
            name: [group] for name, group in self.model_package_groups.items()
        }
        for name, feature_group in self.feature_groups.items():
            scopes[self._feature_group_models[name]].append(feature_group)
        return scopes

    def _publish(self) -> None:
        """What the stage's other stacks read (see :meth:`resources_for`)."""
        publish = self.handoff.publish
        publish("data/key-arn", self.data_key.key_arn, description="The stage's data key")
        for key, bucket, what in (
            ("data/raw-data-bucket-arn", self.raw_data_bucket, "raw data"),
            (serving_record.ARTIFACTS_BUCKET_KEY, self.artifacts_bucket, "artifacts"),
            ("data/data-capture-bucket-arn", self.data_capture_bucket, "data capture"),
        ):
            publish(key, bucket.bucket_arn, description=f"ARN of the stage's {what} bucket")
        publish("alarms/topic-arn", self.alarm_topic.topic_arn, description="The stage's alarms")
        publish("network/vpc-id", self.network.vpc.vpc_id, description="The stage's VPC")
        self.handoff.publish_list(
            "network/job-subnet-ids",
            self.network.subnets.subnet_ids,
            description="Isolated subnets SageMaker jobs run in",
        )
        publish(
            "network/job-security-group-id",
            self.network.job_security_group.security_group_id,
            description="Security group of SageMaker jobs",
        )
        if self.mlflow is not None:
            publish("mlflow/app-arn", self.mlflow.app_arn, description="The stage's MLflow App")
        if self.feature_store_bucket is not None:
            publish(
                "data/feature-store-bucket-arn", self.feature_store_bucket.bucket_arn,
                description="ARN of the stage's Feature Store offline-store bucket",
            )  # fmt: skip
        if self.studio_security_group is not None:
            publish(
                STUDIO_SECURITY_GROUP_KEY,
                self.studio_security_group.security_group_id,
                description="Security group of the Studio domain's apps",
            )
        if self.ingestion_security_group is not None:
            publish(
                "network/ingestion-security-group-id",
                self.ingestion_security_group.security_group_id,
                description="Security group of feature ingestion jobs",
            )

    def _release(self, stage_name: str, release: ReleaseWiring) -> None:
        """What the release pipeline needs here before it deploys anything else of the stage
        (the stateful stack deploys first): its role, and the key's grant to EventBridge."""
        self.release_access = ReleaseAccess(
            self, "ReleaseAccess", role_name=serving_record.release_role_name(stage_name),
            trusted_account=release.account or self.account,
            trusted_role_prefix=serving_record.RELEASE_STACK_NAME,
            record_name_pattern=serving_record.record_name(stage_name, "*"),
            handoff_parameter_names=[
                serving_record.handoff_name(stage_name, serving_record.ARTIFACTS_BUCKET_KEY)
            ],
            group_prefix=serving_record.group_prefix(stage_name),
            endpoint_name_prefix=serving_record.endpoint_name(stage_name, ""),
            serving_stack_name=serving_record.serving_stack_name(stage_name),
            artifacts_bucket=self.artifacts_bucket,
            artifact_patterns=registered_object_patterns(),
            promotion_source_account=(release.promoted_from_account or self.account)
            if release.promoted else None,
        )  # fmt: skip
        # EventBridge keeps the approval rule's undeliverable events in a queue encrypted
        # with this key (constructs/approval_deploys.py).
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeDeadLettersOfThisAccount",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

    def feature_group_of(self, model_name: str) -> FeatureGroup | None:
        """The feature group a model's pipeline ingests into: the first configured for it."""
        for name, model in self._feature_group_models.items():
            if model == model_name:
                return self.feature_groups[name]
        return None

    def resources_for(self, scope: Construct) -> StageResources:
        """This stack's shared resources, imported into ``scope`` (a construct of another
        stack of the stage) through the handoff: no cross-stack export is created. Each
        is imported when first used; one holder per scope."""
        path = scope.node.path
        if path not in self._held:
            self._held[path] = StageResources(Construct(scope, "StageResources"), self)
        return self._held[path]


class StageResources:
    """The data stack's shared resources as another stack of the stage sees them.

    Each attribute is imported into the holder's stack when first read (a stack that
    never uses the capture bucket does not read its SSM parameter).
    """

    def __init__(self, holder: Construct, data: DataStack) -> None:
        self._holder = holder
        self._data = data

    def _read(self, key: str) -> str:
        return self._data.handoff.read(self._holder, key)

    @functools.cached_property
    def alarm_topic(self) -> sns.ITopic:
        """The stage's KMS-encrypted alarm topic."""
        return sns.Topic.from_topic_arn(self._holder, "AlarmTopic", self._read("alarms/topic-arn"))

    @functools.cached_property
    def data_key(self) -> kms.IKey:
        return kms.Key.from_key_arn(self._holder, "DataKey", self._read("data/key-arn"))

    def _bucket(self, construct_id: str, key: str) -> s3.IBucket:
        return s3.Bucket.from_bucket_attributes(
            self._holder, construct_id, bucket_arn=self._read(key), encryption_key=self.data_key
        )

    @functools.cached_property
    def raw_data_bucket(self) -> s3.IBucket:
        return self._bucket("RawData", "data/raw-data-bucket-arn")

    @functools.cached_property
    def artifacts_bucket(self) -> s3.IBucket:
        return self._bucket("Artifacts", serving_record.ARTIFACTS_BUCKET_KEY)

    @functools.cached_property
    def data_capture_bucket(self) -> s3.IBucket:
        return self._bucket("DataCapture", "data/data-capture-bucket-arn")

    @functools.cached_property
    def vpc(self) -> ec2.IVpc:
        subnet_ids = self._data.handoff.read_list(self._holder, "network/job-subnet-ids")
        zones = list(self._data.network.vpc.availability_zones)[: len(subnet_ids)]
        return ec2.Vpc.from_vpc_attributes(
            self._holder,
            "Vpc",
            vpc_id=self._read("network/vpc-id"),
            availability_zones=zones,
            isolated_subnet_ids=subnet_ids,
        )

    #: The subnets of :attr:`vpc` that SageMaker jobs run in.
    job_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

    @functools.cached_property
    def job_security_group(self) -> ec2.ISecurityGroup:
        return ec2.SecurityGroup.from_security_group_id(
            self._holder,
            "JobSecurityGroup",
            self._read("network/job-security-group-id"),
            mutable=False,
        )

    @functools.cached_property
    def mlflow_app(self) -> MlflowAppBase | None:
        """The stage's MLflow App; None when the stage has MLflow turned off."""
        if not self._data.handoff.has("mlflow/app-arn"):
            return None
        return MlflowApp.from_app_arn(self._holder, "Mlflow", self._read("mlflow/app-arn"))

    @functools.cached_property
    def studio_security_group(self) -> ec2.ISecurityGroup | None:
        """The Studio domain's apps' group; None when the stage has no domain."""
        if not self._data.handoff.has(STUDIO_SECURITY_GROUP_KEY):
            return None
        return ec2.SecurityGroup.from_security_group_id(
            self._holder, "StudioSecurityGroup",
            self._read(STUDIO_SECURITY_GROUP_KEY), mutable=False,
        )  # fmt: skip

    @functools.cached_property
    def ingestion_security_group(self) -> ec2.ISecurityGroup | None:
        """Feature ingestion jobs' group; None when the stage has no feature group."""
        if not self._data.handoff.has("network/ingestion-security-group-id"):
            return None
        return ec2.SecurityGroup.from_security_group_id(
            self._holder, "IngestionSecurityGroup",
            self._read("network/ingestion-security-group-id"), mutable=False,
        )  # fmt: skip

    def feature_group(
        self, model_name: str, *, with_offline_store: bool = False
    ) -> FeatureGroupBase | None:
        """The feature group ``model_name``'s pipeline ingests into, or None; with
        ``with_offline_store``, its offline store too (for queries)."""
        group = self._data.feature_group_of(model_name)
        if group is None:
            return None
        offline = with_offline_store and group.offline_store_table is not None
        return FeatureGroupBase.from_feature_group_attributes(
            self._holder, f"{pascal_case(model_name)}FeatureGroup",
            feature_group_name=group.feature_group_name, encryption_key=self.data_key,
            offline_store_bucket=self.feature_store_bucket if offline else None,
            offline_store_prefix=group.offline_store_prefix,
            offline_store_table=group.offline_store_table if offline else None,
        )  # fmt: skip

    @functools.cached_property
    def feature_store_bucket(self) -> s3.IBucket | None:
        """The offline stores' bucket; None when no group of the stage has one."""
        if not self._data.handoff.has("data/feature-store-bucket-arn"):
            return None
        return self._bucket("FeatureStoreBucket", "data/feature-store-bucket-arn")

    @functools.cached_property
    def offline_store_workgroup(self) -> OfflineStoreWorkgroupBase | None:
        """The Athena workgroup of offline-store queries; None without an offline store."""
        workgroup = self._data.offline_store_workgroup
        if workgroup is None or self.feature_store_bucket is None:
            return None
        return OfflineStoreWorkgroupBase.from_workgroup_attributes(
            self._holder, "OfflineStoreWorkgroup", workgroup_name=workgroup.workgroup_name,
            bucket=self.feature_store_bucket, results_prefix=workgroup.results_prefix,
        )  # fmt: skip

    def model_package_group(self, model_name: str) -> ModelPackageGroupBase:
        """The model package group of ``model_name`` (``KeyError`` if none)."""
        group = self._data.model_package_groups[model_name]
        return ModelPackageGroup.from_model_package_group_name(
            self._holder,
            f"{pascal_case(model_name)}ModelPackageGroup",
            group.model_package_group_name,
        )


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


def _stack_instance_id() -> str:
    """The first group of the stack ID's GUID: differs for each creation of a stack."""
    guid = cdk.Fn.select(2, cdk.Fn.split("/", cdk.Aws.STACK_ID))
    return cdk.Fn.select(0, cdk.Fn.split("-", guid))


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

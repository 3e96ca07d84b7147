"""A SageMaker Feature Store feature group: online store, Iceberg offline store, grants, metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ram as ram
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.s3_grants import grant_prefix
from constructs.service_principals import confined_service_principal

#: The Glue database Feature Store's offline stores are catalogued in.
OFFLINE_STORE_DATABASE = "sagemaker_featurestore"
#: What running offline-store queries in a workgroup takes.
ATHENA_QUERY_ACTIONS = (
    "athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
    "athena:StopQueryExecution", "athena:GetWorkGroup",
)  # fmt: skip
#: Feature types of a feature definition.
FEATURE_DEFINITION_TYPES = ("Integral", "Fractional", "String")
#: Namespace of Feature Store's runtime metrics (dimensions FeatureGroupName, OperationName).
METRICS_NAMESPACE = "AWS/SageMaker"


def offline_store_table_arns(stack: cdk.Stack, table: str) -> list[str]:
    """The Glue catalog, the offline-store database and ``table`` (a name or a pattern):
    what a Glue table's readers and writers are granted on."""
    return [
        stack.format_arn(service="glue", resource="catalog"),
        stack.format_arn(service="glue", resource="database", resource_name=OFFLINE_STORE_DATABASE),
        stack.format_arn(
            service="glue", resource="table", resource_name=f"{OFFLINE_STORE_DATABASE}/{table}"
        ),
    ]


def grant_feature_groups(
    grantee: iam.IGrantable,
    scope: Construct,
    *,
    group_prefix: str,
    encryption_key: kms.IKey,
    offline_store: tuple[s3.IBucket, str, str, OfflineStoreWorkgroupBase] | None = None,
) -> None:
    """Record reads and writes on every feature group named ``<group_prefix>...`` (a
    stage's groups: one pattern, not one ARN per group, for a role's policy size), with the
    key through SageMaker; with ``offline_store`` (bucket, store prefix, Glue table prefix,
    workgroup), Athena queries of their offline stores too."""
    stack = cdk.Stack.of(scope)
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "sagemaker:PutRecord", "sagemaker:DeleteRecord", "sagemaker:GetRecord",
                "sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup",
            ],
            resources=[stack.format_arn(service="sagemaker", resource="feature-group",
                                        resource_name=f"{group_prefix}*")],
        )
    )  # fmt: skip
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            resources=[encryption_key.key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"}
            },
        )
    )
    if offline_store is None:
        return
    bucket, prefix, table_prefix, workgroup = offline_store
    workgroup.grant_run_queries(grantee)
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
            resources=offline_store_table_arns(stack, f"{table_prefix}*"),
        )
    )
    grant_prefix(grantee, bucket, prefix)


class OfflineStoreRole(Construct):
    """The role Feature Store assumes to write offline stores into ``bucket`` under
    ``prefix`` and to keep their Glue tables, one per stage.

    Attributes:
        role: pass it to each :class:`FeatureGroup` with an offline store.
    """

    def __init__(
        self, scope: Construct, id: str, *, bucket: s3.IBucket, prefix: str, table_prefix: str
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=confined_service_principal(
                self,
                "sagemaker.amazonaws.com",
                arn_service="sagemaker",
                resource="feature-group/*",
            ),
            description="Lets Feature Store write this stage's offline stores and Glue tables",
        )
        grant_prefix(self.role, bucket, prefix, write=True)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetBucketAcl"], resources=[bucket.bucket_arn])
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable",
                    "glue:CreateTable", "glue:UpdateTable", "glue:GetPartitions",
                ],
                resources=offline_store_table_arns(stack, f"{table_prefix}*"),
            )
        )  # fmt: skip
        policy = default_policy_resource(self.role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Compensating controls: objects only under the offline-store prefix "
            f"({prefix}) of the stage's feature store bucket, listing only there (s3:prefix), "
            f"the key only through S3; Glue tables only named {table_prefix}* in "
            f"{OFFLINE_STORE_DATABASE} (the stage's groups); only Feature Store of this "
            "account may assume the role.",
        )


class FeatureGroupBase(Construct):
    """What every feature group offers callers: its name, ARN, grants and metrics.

    Attributes:
        feature_group_name, feature_group_arn: the group.
        encryption_key: the key of its stores (granted with the records).
    """

    feature_group_name: str
    feature_group_arn: str
    encryption_key: kms.IKey
    offline_store_bucket: s3.IBucket | None = None
    offline_store_prefix: str = ""
    offline_store_table: str | None = None

    def _set_names(self, name: str) -> None:
        # Plain values (the name is given), so policies name the group without a token.
        self.feature_group_name = name
        self.feature_group_arn = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="feature-group", resource_name=name
        )

    @staticmethod
    def from_feature_group_attributes(
        scope: Construct,
        id: str,
        *,
        feature_group_name: str,
        encryption_key: kms.IKey,
        offline_store_bucket: s3.IBucket | None = None,
        offline_store_prefix: str = "",
        offline_store_table: str | None = None,
    ) -> FeatureGroupBase:
        """A group defined elsewhere (another stack of the stage), for its grants; with
        its offline store's bucket, prefix and Glue table, also for offline queries."""
        imported = FeatureGroupBase(scope, id)
        imported._set_names(feature_group_name)
        imported.encryption_key = encryption_key
        imported.offline_store_bucket = offline_store_bucket
        imported.offline_store_prefix = offline_store_prefix
        imported.offline_store_table = offline_store_table
        return imported

    # --------------------------------------------------------------------- grants

    def _grant(self, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(actions), resource_arns=[self.feature_group_arn]
        )

    def _grant_key(self, grantee: iam.IGrantable, actions: Sequence[str], service: str) -> None:
        stack = cdk.Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.encryption_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"{service}.{stack.region}.amazonaws.com"}
                },
            )
        )

    def grant_write_records(self, grantee: iam.IGrantable) -> iam.Grant:
        """``PutRecord`` and ``DeleteRecord`` (online and offline stores), with the key."""
        self._grant_key(grantee, ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "sagemaker")
        return self._grant(
            grantee,
            ["sagemaker:PutRecord", "sagemaker:DeleteRecord", "sagemaker:DescribeFeatureGroup"],
        )

    def grant_read_records(self, grantee: iam.IGrantable) -> iam.Grant:
        """``GetRecord`` and ``BatchGetRecord`` from the online store, with the key."""
        self._grant_key(grantee, ["kms:Decrypt"], "sagemaker")
        return self._grant(
            grantee,
            ["sagemaker:GetRecord", "sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup"],
        )

    def grant_query_offline(
        self, grantee: iam.IGrantable, workgroup: OfflineStoreWorkgroupBase
    ) -> iam.Grant:
        """Athena queries of the offline store in ``workgroup``: the Glue table, the store's
        objects, the workgroup's results prefix, and the key (through S3)."""
        if self.offline_store_bucket is None or self.offline_store_table is None:
            raise ValueError(f"{self.node.path} has no offline store")
        stack = cdk.Stack.of(self)
        workgroup.grant_run_queries(grantee)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=offline_store_table_arns(stack, self.offline_store_table),
            )
        )  # fmt: skip
        grant_prefix(grantee, self.offline_store_bucket, self.offline_store_prefix)
        return self._grant(grantee, ["sagemaker:DescribeFeatureGroup"])

    # --------------------------------------------------------------------- metrics

    def metric(
        self, metric_name: str, operation: str | None = None, **props: object
    ) -> cloudwatch.Metric:
        """A Feature Store runtime metric of this group (``operation``: ``PutRecord``,
        ``GetRecord``, ... where the metric is per operation)."""
        dimensions = {"FeatureGroupName": self.feature_group_name}
        if operation is not None:
            dimensions["OperationName"] = operation
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE, metric_name=metric_name, dimensions_map=dimensions,
            **props,  # type: ignore[arg-type]
        )  # fmt: skip

    def metric_put_record_latency(self, **props: object) -> cloudwatch.Metric:
        return self.metric("OperationLatency", "PutRecord", statistic="p99", **props)

    def metric_throttled_requests(
        self, operation: str = "PutRecord", **props: object
    ) -> cloudwatch.Metric:
        return self.metric("ThrottledRequests", operation, statistic="Sum", **props)

    def metric_consumed_write_units(self, **props: object) -> cloudwatch.Metric:
        return self.metric("ConsumedWriteRequestsUnits", "PutRecord", statistic="Sum", **props)

    def metric_consumed_read_units(self, **props: object) -> cloudwatch.Metric:
        return self.metric("ConsumedReadRequestsUnits", "GetRecord", statistic="Sum", **props)


class FeatureGroup(FeatureGroupBase):
    """One feature group: online store (KMS, optional TTL, Standard or InMemory), offline
    store (Iceberg table in S3 with KMS, catalogued in Glue), throughput mode.

    Feature groups are stateful: ``removal_policy`` RETAIN keeps one (and its data) when it
    leaves the stack. CloudFormation replaces a group on almost any change of its
    definition, so callers pin its logical ID.

    Attributes:
        feature_group_name, feature_group_arn: the group.
        offline_store_database, offline_store_table: its Glue table (None without an
            offline store), what Athena queries.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        feature_group_name: str,
        record_identifier: str,
        event_time_feature: str,
        features: Mapping[str, str],
        encryption_key: kms.IKey,
        online_store: bool = True,
        online_storage_type: str = "Standard",
        ttl: cdk.Duration | None = None,
        offline_store_bucket: s3.IBucket | None = None,
        offline_store_prefix: str = "feature-store/",
        offline_store_role: iam.IRole | None = None,
        throughput_mode: str = "OnDemand",
        provisioned_read_capacity_units: int | None = None,
        provisioned_write_capacity_units: int | None = None,
        description: str | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            feature_group_name: 1-64 letters, digits, hyphens (Feature Store's rule).
            record_identifier, event_time_feature: names among ``features``.
            features: feature name -> ``Integral``, ``Fractional`` or ``String``, in order.
            encryption_key: encrypts the online store and the offline store's objects.
            online_store: keep the latest record per id for low-latency reads.
            online_storage_type: ``Standard`` or ``InMemory``.
            ttl: online records expire this long after their event time (whole days).
            offline_store_bucket: the offline store's bucket (None: no offline store).
            offline_store_prefix: the key prefix of offline stores in that bucket.
            offline_store_role: what Feature Store assumes to write the offline store.
            throughput_mode: ``OnDemand`` or ``Provisioned`` (with capacity units).
        """
        super().__init__(scope, id)
        for name in (record_identifier, event_time_feature):
            if name not in features:
                raise ValueError(f"{name!r} is not among the features of {feature_group_name}")
        bad = {n: t for n, t in features.items() if t not in FEATURE_DEFINITION_TYPES}
        if bad:
            raise ValueError(f"feature types {bad} are not among {FEATURE_DEFINITION_TYPES}")
        if offline_store_bucket is not None and offline_store_role is None:
            raise ValueError("an offline store needs offline_store_role")
        self.encryption_key = encryption_key
        self.offline_store_bucket = offline_store_bucket
        self.offline_store_prefix = offline_store_prefix
        self.offline_store_database: str | None = None
        online: dict[str, object] | None = None
        if online_store:
            # Typed as plain JSON in aws-cdk-lib, like OfflineStoreConfig: PascalCase keys.
            online = {
                "EnableOnlineStore": True,
                "SecurityConfig": {"KmsKeyId": encryption_key.key_arn},
                "StorageType": online_storage_type,
            }
            if ttl is not None:
                online["TtlDuration"] = {"Unit": "Days", "Value": int(ttl.to_days())}
        offline = None
        if offline_store_bucket is not None:
            self.offline_store_database = OFFLINE_STORE_DATABASE
            self.offline_store_table = feature_group_name.replace("-", "_")
            # OfflineStoreConfig is typed as plain JSON in aws-cdk-lib: CloudFormation's own
            # (PascalCase) keys, not the property classes.
            offline = {
                "S3StorageConfig": {
                    "S3Uri": offline_store_bucket.s3_url_for_object(
                        offline_store_prefix.rstrip("/")
                    ),
                    "KmsKeyId": encryption_key.key_arn,
                },
                "TableFormat": "Iceberg",
                "DisableGlueTableCreation": False,
                "DataCatalogConfig": {
                    "Catalog": "AwsDataCatalog",
                    "Database": self.offline_store_database,
                    "TableName": self.offline_store_table,
                },
            }
        throughput = sagemaker.CfnFeatureGroup.ThroughputConfigProperty(
            throughput_mode=throughput_mode,
            provisioned_read_capacity_units=provisioned_read_capacity_units,
            provisioned_write_capacity_units=provisioned_write_capacity_units,
        )
        self._resource = sagemaker.CfnFeatureGroup(
            self,
            "Resource",
            feature_group_name=feature_group_name,
            record_identifier_feature_name=record_identifier,
            event_time_feature_name=event_time_feature,
            feature_definitions=[
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(
                    feature_name=name, feature_type=kind
                )
                for name, kind in features.items()
            ],
            online_store_config=online,
            offline_store_config=offline,
            role_arn=offline_store_role.role_arn if offline_store_role is not None else None,
            throughput_config=throughput,
            description=description,
        )
        self._resource.apply_removal_policy(removal_policy)
        if offline_store_role is not None:
            # Feature Store checks the role's access when the group is created.
            policy = offline_store_role.node.try_find_child("DefaultPolicy")
            if policy is not None:
                self._resource.node.add_dependency(policy)
        self._set_names(feature_group_name)

    # --------------------------------------------------------------------- sharing

    def share_with_accounts(self, account_ids: Sequence[str]) -> ram.CfnResourceShare:
        """Shares the group read-only with ``account_ids`` (AWS RAM): its records and
        metadata (``DescribeFeatureGroup``, ``GetRecord``, ``BatchGetRecord``). Discovery of
        the account's groups is a share of the feature group catalog (see
        :func:`share_catalog`), once per account and region."""
        stack = cdk.Stack.of(self)
        return ram.CfnResourceShare(
            self,
            "Share",
            name=f"{self.feature_group_name}-read-only",
            principals=list(account_ids),
            resource_arns=[self.feature_group_arn],
            allow_external_principals=True,
            permission_arns=[
                f"arn:{stack.partition}:ram::aws:permission/"
                "AWSRAMPermissionSageMakerFeatureGroupReadOnly"
            ],
        )


def share_catalog(scope: Construct, id: str, account_ids: Sequence[str]) -> ram.CfnResourceShare:
    """Makes the account's feature groups discoverable (names and metadata, not records) to
    ``account_ids``: a RAM share of the feature group catalog."""
    stack = cdk.Stack.of(scope)
    return ram.CfnResourceShare(
        scope,
        id,
        name=f"{stack.stack_name}-feature-group-discovery",
        principals=list(account_ids),
        resource_arns=[
            stack.format_arn(
                service="sagemaker",
                resource="sagemaker-catalog",
                resource_name="DefaultFeatureGroupCatalog",
            )
        ],
        allow_external_principals=True,
        permission_arns=[
            f"arn:{stack.partition}:ram::aws:permission/"
            "AWSRAMPermissionSageMakerCatalogResourceSearch"
        ],
    )


class OfflineStoreWorkgroupBase(Construct):
    """An Athena workgroup for offline-store queries, with its results location.

    Attributes:
        workgroup_name, workgroup_arn: the workgroup.
        bucket, results_prefix: where its query results are written.
    """

    workgroup_name: str
    workgroup_arn: str
    bucket: s3.IBucket
    results_prefix: str

    @staticmethod
    def from_workgroup_attributes(
        scope: Construct, id: str, *, workgroup_name: str, bucket: s3.IBucket, results_prefix: str
    ) -> OfflineStoreWorkgroupBase:
        """A workgroup defined elsewhere (another stack of the stage), for its grants."""
        imported = OfflineStoreWorkgroupBase(scope, id)
        imported._set_names(workgroup_name)
        imported.bucket = bucket
        imported.results_prefix = results_prefix
        return imported

    def _set_names(self, workgroup_name: str) -> None:
        self.workgroup_name = workgroup_name
        self.workgroup_arn = cdk.Stack.of(self).format_arn(
            service="athena", resource="workgroup", resource_name=workgroup_name
        )

    def grant_run_queries(self, grantee: iam.IGrantable) -> None:
        """Start, follow and read queries in this workgroup, with its results prefix."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(ATHENA_QUERY_ACTIONS),
                resources=[self.workgroup_arn],
            )
        )  # fmt: skip
        grant_prefix(grantee, self.bucket, self.results_prefix, write=True)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation"], resources=[self.bucket.bucket_arn]
            )
        )


class OfflineStoreWorkgroup(OfflineStoreWorkgroupBase):
    """An Athena workgroup for offline-store queries: results under ``results_prefix`` in
    ``bucket``, encrypted with ``encryption_key``; the workgroup's settings are enforced, so
    a query cannot write results elsewhere or unencrypted."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        workgroup_name: str,
        bucket: s3.IBucket,
        results_prefix: str,
        encryption_key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = bucket
        self.results_prefix = results_prefix
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Resource",
            name=workgroup_name,
            description="Point-in-time queries of the stage's Feature Store offline stores",
            recursive_delete_option=removal_policy == cdk.RemovalPolicy.DESTROY,
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=bucket.s3_url_for_object(results_prefix.rstrip("/")),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=encryption_key.key_arn
                    ),
                    expected_bucket_owner=cdk.Stack.of(self).account,
                ),
            ),
        )
        self.workgroup.apply_removal_policy(removal_policy)
        self._set_names(workgroup_name)

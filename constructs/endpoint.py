"""A SageMaker real-time endpoint serving one registered model version.

On instances: the version's own inference pipeline (``ModelPackageName``: the scikit-learn
transform in front of XGBoost, so the endpoint takes raw rows), in the VPC with network
isolation, the volume and the captured data encrypted with the stage's key, and every
update rolled out blue/green with automatic rollback on alarms. Serverless: the version's
single-container form (SageMaker Serverless Inference serves no inference pipeline, VPC,
network isolation or data capture), read from the version itself at deployment.

Which version is served is a deploy-time value (``model_package_arn``, e.g. read from the
stage's version record); with ``condition``, every resource of the construct exists only
while it holds (no version approved yet: nothing is created, nothing fails).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import custom_resources as cr

from constructs import Construct, IConstruct
from constructs.model_registry import ModelPackageGroupBase
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.network import selected_subnet_ids
from constructs.s3_grants import grant_prefix
from constructs.sagemaker_grants import endpoint_log_groups, model_role
from constructs.sdk_call import deploy_time_call
from mlops.instance_storage import has_instance_storage
from pipeline_steps.steplib.contract import SINGLE_CONTAINER_ENVIRONMENT

#: The one production variant; kept across versions (blue/green and autoscaling need it).
VARIANT_NAME = "AllTraffic"
#: Namespaces of endpoint metrics: invocations, and the instances'.
INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
#: The content types data capture records as text.
CAPTURE_CSV_TYPES = ("text/csv",)
CAPTURE_JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class Deployment:
    """How an update shifts traffic to the new fleet (blue/green).

    Use :meth:`all_at_once`, :meth:`canary` or :meth:`linear`.
    """

    kind: str
    percent: int = 100
    bake: cdk.Duration | None = None

    @staticmethod
    def all_at_once(bake: cdk.Duration | None = None) -> Deployment:
        return Deployment("ALL_AT_ONCE", 100, bake or cdk.Duration.minutes(0))

    @staticmethod
    def canary(percent: int, bake: cdk.Duration) -> Deployment:
        """``percent`` of capacity first, the rest after ``bake`` without an alarm."""
        return Deployment("CANARY", percent, bake)

    @staticmethod
    def linear(percent: int, bake: cdk.Duration) -> Deployment:
        """Steps of ``percent`` of capacity, each baked for ``bake``."""
        return Deployment("LINEAR", percent, bake)

    def routing(self) -> sagemaker.CfnEndpoint.TrafficRoutingConfigProperty:
        wait = self._bake_seconds()
        step = sagemaker.CfnEndpoint.CapacitySizeProperty(
            type="CAPACITY_PERCENT", value=self.percent
        )
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type=self.kind,
            wait_interval_in_seconds=wait,
            canary_size=step if self.kind == "CANARY" else None,
            linear_step_size=step if self.kind == "LINEAR" else None,
        )

    def _bake_seconds(self) -> int:
        return int(self.bake.to_seconds()) if self.bake is not None else 0

    def total_seconds(self) -> int:
        """How long traffic shifting takes, bakes included (before the final bake)."""
        steps = {"ALL_AT_ONCE": 1, "CANARY": 2, "LINEAR": -(-100 // self.percent)}[self.kind]
        return steps * self._bake_seconds()


@dataclass(frozen=True)
class ServerlessConfig:
    """Serverless inference: memory (1024-6144 MB in 1024 steps) and concurrency."""

    memory_size_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None


@dataclass(frozen=True)
class DataCapture:
    """Requests and responses captured to ``bucket`` under ``prefix`` (a share of them)."""

    bucket: s3.IBucket
    prefix: str
    sampling_percent: int = 100


class ModelEndpoint(cdk.Resource):
    """An endpoint serving one model package version (see the module docstring).

    Attributes:
        endpoint_name, endpoint_arn, variant_name: the endpoint and its one variant.
        role: what the model's containers run as.
        rollback_alarms: the alarms that roll an update back (instances only).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model_package_arn: str,
        model_package_group: ModelPackageGroupBase,
        encryption_key: kms.IKey,
        model_data_bucket: s3.IBucket,
        model_data_prefix: str,
        image_repository_arns: Sequence[str],
        instance_type: str = "ml.m5.large",
        initial_instance_count: int = 1,
        serverless: ServerlessConfig | None = None,
        data_capture: DataCapture | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] = (),
        deployment: Deployment | None = None,
        rollback_5xx_errors: int = 5,
        rollback_latency_p99: cdk.Duration | None = None,
        rollback_alarm_topic: sns.ITopic | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        condition: cdk.CfnCondition | None = None,
    ) -> None:
        """
        Args:
            endpoint_name: the endpoint's name (callers and alarms use it).
            model_package_arn: the version served (a deploy-time token is fine).
            model_package_group: its group (serverless reads the version from it).
            encryption_key: encrypts the volume and the captured data.
            model_data_bucket, model_data_prefix: where the version's artifacts are.
            image_repository_arns: the ECR repositories of its containers' images.
            instance_type, initial_instance_count: the fleet (not with ``serverless``).
            serverless: serve serverless instead of on instances.
            data_capture: capture requests and responses (instances only).
            vpc, vpc_subnets, security_groups: run in the VPC, network-isolated
                (instances only; default subnets: the VPC's private ones).
            deployment: how updates shift traffic; default all at once.
            rollback_5xx_errors: 5xx errors a minute, two minutes running, that roll an
                update back.
            rollback_latency_p99: model latency p99, two minutes running, that rolls an
                update back; default one second.
            rollback_alarm_topic: the rollback alarms also notify it.
            log_retention: of the serverless form's lookup handler's logs.
            condition: every resource of the construct exists only while it holds.
        """
        super().__init__(scope, id, physical_name=endpoint_name)
        if serverless is not None and (data_capture is not None or vpc is not None):
            raise ValueError(
                f"{self.node.path}: serverless endpoints have no VPC, network isolation or "
                "data capture"
            )
        if (vpc is None) != (not security_groups):
            raise ValueError(f"{self.node.path}: give both vpc and security_groups, or neither")
        stack = cdk.Stack.of(self)
        self.endpoint_name = endpoint_name
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower()
        )
        self.variant_name = VARIANT_NAME
        self._serverless = serverless is not None
        self._key = encryption_key
        self._log_retention = log_retention

        self.role = model_role(
            self, "ModelRole", description=f"The containers of endpoint {endpoint_name}",
            encryption_key=encryption_key, vpc=vpc, log_groups=endpoint_log_groups(endpoint_name),
            model_data_bucket=model_data_bucket, model_data_prefix=model_data_prefix,
            image_repository_arns=image_repository_arns,
        )  # fmt: skip
        if data_capture is not None:
            grant_prefix(self.role, data_capture.bucket, data_capture.prefix, write=True)

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            **self._containers(model_package_arn, model_package_group),
            enable_network_isolation=serverless is None,
            vpc_config=self._vpc_config(vpc, vpc_subnets, security_groups),
        )

        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT_NAME,
            model_name=self.model.attr_model_name,
            initial_variant_weight=1,
            **(
                {
                    "serverless_config": sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=serverless.memory_size_mb,
                        max_concurrency=serverless.max_concurrency,
                        provisioned_concurrency=serverless.provisioned_concurrency,
                    )
                }
                if serverless is not None
                else {
                    "instance_type": instance_type,
                    "initial_instance_count": initial_instance_count,
                }
            ),
        )
        # Volumes of types with local NVMe storage are hardware-encrypted; SageMaker
        # refuses a key for them.
        volume_key = (
            encryption_key.key_arn
            if serverless is None and not has_instance_storage(instance_type)
            else None
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            Construct(self, "Config"),
            "Resource",
            production_variants=[variant],
            kms_key_id=volume_key,
            data_capture_config=self._capture(data_capture, encryption_key),
        )

        self.rollback_alarms: list[cloudwatch.Alarm] = []
        deployment_config = None
        if serverless is None:
            latency = rollback_latency_p99 or cdk.Duration.seconds(1)
            self.rollback_alarms = [
                self.metric_invocation_5xx_errors().create_alarm(
                    self, "Rollback5xxAlarm", threshold=rollback_5xx_errors,
                    evaluation_periods=2, datapoints_to_alarm=2,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"{endpoint_name}: 5xx errors; rolls an update back",
                ),
                self.metric_model_latency(statistic="p99").create_alarm(
                    self, "RollbackLatencyAlarm",
                    # ModelLatency is in microseconds.
                    threshold=latency.to_milliseconds() * 1000,
                    evaluation_periods=2, datapoints_to_alarm=2,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"{endpoint_name}: model latency p99; rolls an update back",
                ),
            ]  # fmt: skip
            if rollback_alarm_topic is not None:
                for alarm in self.rollback_alarms:
                    alarm.add_alarm_action(cloudwatch_actions.SnsAction(rollback_alarm_topic))
            deployment = deployment or Deployment.all_at_once()
            deployment_config = sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=deployment.routing(),
                    termination_wait_in_seconds=deployment._bake_seconds(),
                    # Shifting and the final bake, with room for the green fleet to start.
                    # Shifting, the final bake and half an hour for the new fleet to start
                    # (config refuses roll-outs that would not fit SageMaker's 8 hours).
                    maximum_execution_timeout_in_seconds=min(
                        28_800,
                        max(600, deployment.total_seconds() + deployment._bake_seconds() + 1800),
                    ),
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name)
                        for a in self.rollback_alarms
                    ]
                ),
            )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=deployment_config,
        )
        if serverless is not None:
            acknowledge(
                self.endpoint_config,
                "NIST.800.53.R5::NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
                "A serverless endpoint has no storage volume attached to an instance, which "
                "is what KmsKeyId encrypts. Compensating controls: the model artifacts it "
                "loads stay encrypted with the stage's key in S3, and it captures no data.",
            )
        policy = default_policy_resource(self.role)
        self.model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Each wildcard is bounded. Compensating controls: S3 only the model's artifact "
            f"prefix ({model_data_prefix}) and, with data capture, its capture prefix; KMS "
            "only the stage's data key, through S3 and SageMaker; logs only SageMaker's "
            "endpoint log groups; images only the model's repositories; network interfaces "
            "only in the stage's VPC; Resource '*' only where the API has no resource type "
            "(ecr:GetAuthorizationToken, ec2 Describe calls) or with a condition "
            "(cloudwatch:namespace /aws/sagemaker/*).",
        )
        if condition is not None:
            only_if(self, condition)

    # --- pieces ---------------------------------------------------------------------------

    def _containers(self, arn: str, group: ModelPackageGroupBase) -> dict[str, Any]:
        if not self._serverless:
            # The version's inference pipeline, as registered: a model package as the
            # primary container stands for all of its containers (as the SDK deploys one).
            return {
                "primary_container": sagemaker.CfnModel.ContainerDefinitionProperty(
                    model_package_name=arn
                )
            }
        # The version's single-container form, read from the version at deployment (the
        # call runs again whenever the version served changes).
        spec = "AdditionalInferenceSpecifications.0.Containers.0"
        describe = deploy_time_call(
            self,
            "SingleContainer",
            call=cr.AwsSdkCall(
                service="SageMaker",
                action="describeModelPackage",
                parameters={"ModelPackageName": arn},
                physical_resource_id=cr.PhysicalResourceId.of(arn),
                output_paths=[f"{spec}.Image", f"{spec}.ModelDataUrl"],
            ),
            statements=[
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeModelPackage"],
                    resources=[group.model_package_arn_pattern],
                )
            ],
            encryption_key=self._key,
            log_retention=self._log_retention,
            log_scope=cdk.Stack.of(self),
            purpose="read the served version's single-container form",
            policy_reason="Compensating controls: DescribeModelPackage (read-only) only on "
            f"versions of this model's group ({group.model_package_group_name}).",
        )
        return {
            "primary_container": sagemaker.CfnModel.ContainerDefinitionProperty(
                image=describe.get_response_field(f"{spec}.Image"),
                model_data_url=describe.get_response_field(f"{spec}.ModelDataUrl"),
                environment=dict(SINGLE_CONTAINER_ENVIRONMENT),
            )
        }

    @staticmethod
    def _vpc_config(
        vpc: ec2.IVpc | None,
        subnets: ec2.SubnetSelection | None,
        groups: Sequence[ec2.ISecurityGroup],
    ) -> sagemaker.CfnModel.VpcConfigProperty | None:
        if vpc is None:
            return None
        subnet_ids = selected_subnet_ids(vpc, subnets)
        return sagemaker.CfnModel.VpcConfigProperty(
            security_group_ids=[g.security_group_id for g in groups], subnets=subnet_ids
        )

    @staticmethod
    def _capture(
        capture: DataCapture | None, key: kms.IKey
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        if capture is None:
            return None
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=capture.sampling_percent > 0,
            initial_sampling_percentage=capture.sampling_percent,
            destination_s3_uri=capture.bucket.s3_url_for_object(capture.prefix.rstrip("/")),
            kms_key_id=key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
                for mode in ("Input", "Output")
            ],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                csv_content_types=list(CAPTURE_CSV_TYPES),
                json_content_types=list(CAPTURE_JSON_TYPES),
            ),
        )

    # --- grants and metrics ---------------------------------------------------------------

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` call the endpoint."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpoint"],
            resource_arns=[self.endpoint_arn],
        )

    def metric(
        self, metric_name: str, *, namespace: str = INVOCATION_NAMESPACE, **props: Any
    ) -> cloudwatch.Metric:
        """A metric of the endpoint's variant (one-minute periods unless given)."""
        options = {"period": cdk.Duration.minutes(1), **props}
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT_NAME},
            **options,  # type: ignore[arg-type]
        )

    def metric_invocations(self, **props: Any) -> cloudwatch.Metric:
        return self.metric("Invocations", **{"statistic": "Sum", **props})

    def metric_invocation_5xx_errors(self, **props: Any) -> cloudwatch.Metric:
        return self.metric("Invocation5XXErrors", **{"statistic": "Sum", **props})

    def metric_invocation_4xx_errors(self, **props: Any) -> cloudwatch.Metric:
        return self.metric("Invocation4XXErrors", **{"statistic": "Sum", **props})

    def metric_model_latency(self, **props: Any) -> cloudwatch.Metric:
        """Microseconds, as SageMaker reports it."""
        return self.metric("ModelLatency", **{"statistic": "Average", **props})

    def metric_cpu_utilization(self, **props: Any) -> cloudwatch.Metric:
        return self.metric("CPUUtilization", namespace=INSTANCE_NAMESPACE, **props)

    def metric_memory_utilization(self, **props: Any) -> cloudwatch.Metric:
        return self.metric("MemoryUtilization", namespace=INSTANCE_NAMESPACE, **props)

    def metric_disk_utilization(self, **props: Any) -> cloudwatch.Metric:
        return self.metric("DiskUtilization", namespace=INSTANCE_NAMESPACE, **props)

    # --- autoscaling ----------------------------------------------------------------------

    def auto_scale_instance_count(self, *, min_capacity: int, max_capacity: int) -> EndpointScaling:
        """Application Auto Scaling of the variant's instance count (instances only)."""
        if self._serverless:
            raise ValueError(f"{self.node.path}: a serverless endpoint scales itself")
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        target.node.add_dependency(self.endpoint)
        # Application Auto Scaling's service-linked role for SageMaker (created on first
        # use when RoleARN is left out); the role CDK would make has no SageMaker rights.
        target.node.try_remove_child("Role")
        target.node.default_child.add_property_deletion_override("RoleARN")  # type: ignore[union-attr]
        return EndpointScaling(target)


class EndpointScaling:
    """The scaling of an endpoint's instance count."""

    def __init__(self, target: appscaling.ScalableTarget) -> None:
        self.target = target

    def scale_on_invocations(
        self,
        invocations_per_instance: int,
        *,
        scale_in_cooldown: cdk.Duration | None = None,
        scale_out_cooldown: cdk.Duration | None = None,
    ) -> appscaling.TargetTrackingScalingPolicy:
        """Keeps invocations per instance per minute near ``invocations_per_instance``."""
        return self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=scale_in_cooldown or cdk.Duration.minutes(5),
            scale_out_cooldown=scale_out_cooldown or cdk.Duration.minutes(1),
        )


def only_if(scope: IConstruct, condition: cdk.CfnCondition) -> None:
    """Every CloudFormation resource under ``scope`` exists only while ``condition`` holds."""
    cdk.Aspects.of(scope).add(_Conditioned(condition))


@jsii.implements(cdk.IAspect)
class _Conditioned:
    """Puts every CloudFormation resource under a construct under one condition."""

    def __init__(self, condition: cdk.CfnCondition) -> None:
        self.condition = condition

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cdk.CfnResource):
            node.cfn_options.condition = self.condition

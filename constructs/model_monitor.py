"""SageMaker Model Monitor data-quality and model-quality schedules of one endpoint (the
``model_monitor`` monitoring engine, for accounts that still have Model Monitor).

The baselines are the ones registered with the served version (its drift-check baselines:
the Model Monitor ``statistics.json``/``constraints.json`` the training pipeline wrote from
its training data, and the model-quality constraints from its quality gate), read at
deployment from the version (``DescribeModelPackage``): a new served version gives new job
definitions. Jobs run in the VPC with network isolation, the stage's key on volumes and
outputs; Model Monitor publishes its metrics itself (``metric_*``).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import custom_resources as cr

from constructs import Construct
from constructs.endpoint import ModelEndpoint
from constructs.model_registry import ModelPackageGroupBase
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.network import selected_subnet_ids
from constructs.s3_grants import grant_pattern_read, grant_prefix
from constructs.sagemaker_grants import grant_sagemaker_basics, sagemaker_role
from constructs.sdk_call import deploy_time_call
from pipeline_steps.steplib import contract, monitoring

#: CloudWatch allows this many metrics in one alarm's math expression.
METRICS_PER_ALARM = 10
ENDPOINT_INPUT = "/opt/ml/processing/input/endpoint"
GROUND_TRUTH_INPUT = "/opt/ml/processing/input/ground-truth"
OUTPUT = "/opt/ml/processing/output"


def schedule_expression(hours: int) -> str:
    """Model Monitor's cron for every ``hours`` hours (hourly, every N hours, or daily at
    midnight UTC: the forms ``CreateMonitoringSchedule`` documents)."""
    if hours == 1:
        return "cron(0 * ? * * *)"
    if hours == 24:
        return "cron(0 0 ? * * *)"
    if 24 % hours:
        raise ValueError(f"Model Monitor runs every N hours, N dividing 24; got {hours}")
    return f"cron(0 0/{hours} ? * * *)"


def _name_of(arn: str) -> str:
    """The name in a job definition's ARN (``...:<kind>-job-definition/<name>``)."""
    return cdk.Fn.select(1, cdk.Fn.split("/", arn))


class ModelMonitorSchedules(Construct):
    """Data-quality and model-quality schedules of ``endpoint`` (module docstring); they
    and their job definitions are created after it, since they name it.

    Attributes:
        endpoint_name: the monitored endpoint's.
        role: what the monitoring jobs run as.
        data_quality_schedule, model_quality_schedule: the two ``MonitoringSchedule``s.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint: ModelEndpoint,
        model_package_arn: str,
        model_package_group: ModelPackageGroupBase,
        problem_type: str,
        image_uri: str,
        instance_type: str,
        volume_encrypted: bool,
        cadence_hours: int,
        ground_truth_delay_hours: int,
        baseline_bucket: s3.IBucket,
        baseline_key_pattern: str,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        ground_truth_bucket: s3.IBucket,
        ground_truth_prefix: str,
        output_bucket: s3.IBucket,
        output_prefix: str,
        encryption_key: kms.IKey,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_groups: Sequence[ec2.ISecurityGroup],
        log_retention: logs.RetentionDays,
        log_scope: Construct | None = None,
    ) -> None:
        """
        Args:
            model_package_arn: the version served (a deploy-time token is fine); its
                registered drift-check baselines are read at deployment.
            model_package_group: its group (the baselines' reader may describe its versions).
        """
        super().__init__(scope, id)
        if problem_type not in monitoring.MODEL_MONITOR_PROBLEM_TYPES:
            raise ValueError(
                f"Model Monitor cannot check {problem_type} models here: the endpoint returns "
                f"class probabilities (supported: {sorted(monitoring.MODEL_MONITOR_PROBLEM_TYPES)})"
            )
        stack = cdk.Stack.of(self)
        endpoint_name = self.endpoint_name = endpoint.endpoint_name
        self.cadence = cdk.Duration.hours(cadence_hours)
        self.role = sagemaker_role(
            self, "Role", description=f"Model Monitor jobs of {endpoint_name}"
        )
        grant_sagemaker_basics(
            self.role, stack, encryption_key, vpc=vpc, log_groups=("ProcessingJobs",)
        )
        grant_pattern_read(self.role, baseline_bucket, baseline_key_pattern)
        # Model Monitor publishes its metrics as the job's role (AWS spells the namespace
        # with and without the leading slash).
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishModelMonitorMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # no resource type; the namespace condition bounds it
                conditions={"StringLike": {"cloudwatch:namespace": [
                    "aws/sagemaker/Endpoints/*", "/aws/sagemaker/Endpoints/*"]}},
            )
        )  # fmt: skip
        grant_prefix(self.role, capture_bucket, capture_prefix)
        grant_prefix(self.role, ground_truth_bucket, ground_truth_prefix)
        grant_prefix(self.role, output_bucket, output_prefix, write=True)
        policy = default_policy_resource(self.role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Compensating controls: S3 reads only of the registered baselines, this model's "
            "capture and ground-truth prefixes, writes only under its monitoring output "
            "prefix; KMS only the stage's key; logs only SageMaker's processing job groups; "
            "network interfaces only in the stage's VPC; Resource '*' only where the API "
            "has no resource type or with a namespace condition.",
        )

        # The served version's drift-check baselines, read when it changes.
        fields = {
            "statistics": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
            "constraints": "DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri",
            "quality": "DriftCheckBaselines.ModelQuality.Constraints.S3Uri",
        }
        baselines = deploy_time_call(
            self, "ServedBaselines", resource_type="Custom::ServedBaselines",
            call=cr.AwsSdkCall(
                service="SageMaker", action="describeModelPackage",
                parameters={"ModelPackageName": model_package_arn},
                physical_resource_id=cr.PhysicalResourceId.of(model_package_arn),
                output_paths=list(fields.values()),
            ),
            statements=[iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"],
                                            resources=[model_package_group.model_package_arn_pattern])],
            encryption_key=encryption_key, log_retention=log_retention, log_scope=log_scope,
            purpose="read the served version's registered baselines",
            policy_reason="Compensating controls: DescribeModelPackage on this model's "
            f"versions only (stack {stack.stack_name}).",
        )  # fmt: skip
        uri = {k: baselines.get_response_field(v) for k, v in fields.items()}

        resources = {
            "instanceCount": 1, "instanceType": instance_type, "volumeSizeInGb": 30,
            **({"volumeKmsKeyId": encryption_key.key_arn} if volume_encrypted else {}),
        }  # fmt: skip
        network = {
            "enableInterContainerTrafficEncryption": True,
            "enableNetworkIsolation": True,
            "vpcConfig": {
                "securityGroupIds": [g.security_group_id for g in security_groups],
                "subnets": selected_subnet_ids(vpc, vpc_subnets),
            },
        }
        stopping = {"maxRuntimeInSeconds": min(3600, cadence_hours * 3600)}

        def output(kind: str) -> dict:
            return {
                "kmsKeyId": encryption_key.key_arn,
                "monitoringOutputs": [
                    {"s3Output": {"localPath": OUTPUT, "s3UploadMode": "EndOfJob",
                                   "s3Uri": output_bucket.s3_url_for_object(f"{output_prefix}{kind}")}}
                ],
            }  # fmt: skip

        data_quality = sagemaker.CfnDataQualityJobDefinition(
            self, "DataQualityJobDefinition",
            data_quality_app_specification={"imageUri": image_uri,
                                            "environment": {"publish_cloudwatch_metrics": "Enabled"}},
            data_quality_baseline_config={"constraintsResource": {"s3Uri": uri["constraints"]},
                                          "statisticsResource": {"s3Uri": uri["statistics"]}},
            data_quality_job_input={"endpointInput": {
                "endpointName": endpoint_name, "localPath": ENDPOINT_INPUT,
                "s3DataDistributionType": "FullyReplicated", "s3InputMode": "File"}},
            data_quality_job_output_config=output("data-quality"),
            job_resources={"clusterConfig": resources},
            network_config=network, role_arn=self.role.role_arn, stopping_condition=stopping,
        )  # fmt: skip
        delay = ground_truth_delay_hours
        endpoint_input: dict = {
            "endpointName": endpoint_name, "localPath": ENDPOINT_INPUT,
            "s3DataDistributionType": "FullyReplicated", "s3InputMode": "File",
            "startTimeOffset": f"-PT{delay + cadence_hours}H",
            "endTimeOffset": f"-PT{delay}H",
        }  # fmt: skip
        # The endpoints answer CSV: one value per row, the positive class's probability
        # (binary) or the prediction (regression).
        if problem_type == contract.BINARY:
            endpoint_input.update(probabilityAttribute="0", probabilityThresholdAttribute=0.5)
        else:
            endpoint_input.update(inferenceAttribute="0")
        model_quality = sagemaker.CfnModelQualityJobDefinition(
            self, "ModelQualityJobDefinition",
            model_quality_app_specification={
                "imageUri": image_uri,
                "environment": {"publish_cloudwatch_metrics": "Enabled"},
                "problemType": monitoring.MODEL_MONITOR_PROBLEM_TYPES[problem_type]},
            model_quality_baseline_config={"constraintsResource": {"s3Uri": uri["quality"]}},
            model_quality_job_input={
                "endpointInput": endpoint_input,
                "groundTruthS3Input": {
                    "s3Uri": ground_truth_bucket.s3_url_for_object(ground_truth_prefix.rstrip("/"))},
            },
            model_quality_job_output_config=output("model-quality"),
            job_resources={"clusterConfig": resources},
            network_config=network, role_arn=self.role.role_arn, stopping_condition=stopping,
        )  # fmt: skip
        for definition in (data_quality, model_quality):
            definition.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        hourly = schedule_expression(cadence_hours)
        self.data_quality_schedule = self._schedule(
            "DataQualitySchedule", "DataQuality", data_quality.attr_job_definition_arn, hourly
        )
        self.model_quality_schedule = self._schedule(
            "ModelQualitySchedule", "ModelQuality", model_quality.attr_job_definition_arn, hourly
        )
        self.node.add_dependency(endpoint)

    def _schedule(
        self, id: str, kind: str, definition_arn: str, expression: str
    ) -> sagemaker.CfnMonitoringSchedule:
        name = f"{self.endpoint_name}-{'dq' if kind == 'DataQuality' else 'mq'}"[:63]
        return sagemaker.CfnMonitoringSchedule(
            self, id, monitoring_schedule_name=name, endpoint_name=self.endpoint_name,
            monitoring_schedule_config={
                "monitoringJobDefinitionName": _name_of(definition_arn),
                "monitoringType": kind,
                "scheduleConfig": {"scheduleExpression": expression},
            },
        )  # fmt: skip

    # --- metrics (Model Monitor's own) -----------------------------------------------------

    def _metric(
        self, namespace: str, name: str, schedule: sagemaker.CfnMonitoringSchedule
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace, metric_name=name, statistic="Maximum", period=self.cadence,
            dimensions_map={monitoring.MODEL_MONITOR_ENDPOINT: self.endpoint_name,
                            monitoring.MODEL_MONITOR_SCHEDULE: schedule.monitoring_schedule_name},
        )  # fmt: skip

    def metric_feature_drift(self, feature: str) -> cloudwatch.Metric:
        """Model Monitor's distance of ``feature`` (its baseline name) from the baseline."""
        return self._metric(
            monitoring.MODEL_MONITOR_DATA_NAMESPACE,
            monitoring.model_monitor_feature_drift(feature),
            self.data_quality_schedule,
        )

    def metric_model_quality(self, quality_metric: str) -> cloudwatch.Metric:
        """A model-quality metric Model Monitor publishes (``auc``, ``rmse``...)."""
        return self._metric(
            monitoring.MODEL_MONITOR_MODEL_NAMESPACE, quality_metric, self.model_quality_schedule
        )

    def metric_drift_score(self, features: Sequence[str]) -> list[cloudwatch.MathExpression]:
        """The largest feature drift, in expressions of at most ten metrics each (a
        CloudWatch alarm's limit)."""
        expressions = []
        for start in range(0, len(features), METRICS_PER_ALARM):
            part = features[start : start + METRICS_PER_ALARM]
            expressions.append(
                cloudwatch.MathExpression(
                    expression=f"MAX([{', '.join(f'f{i}' for i in range(len(part)))}])",
                    using_metrics={f"f{i}": self.metric_feature_drift(f) for i, f in enumerate(part)},
                    label=f"largest feature drift ({part[0]}..{part[-1]})",
                    period=self.cadence,
                )
            )  # fmt: skip
        return expressions

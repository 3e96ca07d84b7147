"""Scheduled drift and model-quality checks (the ``scheduled`` monitoring engine; ADR 0006).

* :class:`MonitoringPipeline`: one per stage, the SageMaker Pipeline of
  :mod:`mlops.monitoring_definition` with its two Lambda steps, its jobs' role and what
  schedules share (a role, a dead-letter queue).
* :class:`DriftSchedule`: one per model and capture source, an EventBridge Scheduler
  schedule starting that pipeline with the model's parameters; ``metric_*`` of what the
  checks publish.
* :class:`DriftAlarms`: alarms on drift sustained in N of M windows, on model quality below
  the gate and on missing runs, to the stage's topic, built only from ``metric_*``.
* :class:`DriftRetrain`: an EventBridge rule on a model's drift alarms starting a guarded,
  bounded retrain (``handlers/drift_retrain``).

Metric names and dimensions come from ``pipeline_steps/steplib/monitoring.py``, the module
the checks build their metrics with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.log_groups import dead_letter_queue, powertools_function
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.network import selected_subnet_ids
from constructs.pipeline_base import SageMakerPipeline
from constructs.s3_grants import grant_objects_read, grant_pattern_read, grant_prefix
from constructs.sagemaker_grants import grant_sagemaker_basics, sagemaker_role
from constructs.service_principals import confined_service_principal
from constructs.training_pipeline import ASSET_EXCLUDES, RUNNER, STEPS_DIR
from mlops import monitoring_definition as definition
from pipeline_steps.steplib import monitoring

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"
#: Where a run's manifests and reports go in the artifacts bucket.
MONITORING_PREFIX = "monitoring/"


class MonitoringPipeline(SageMakerPipeline):
    """A stage's monitoring pipeline (see the module docstring).

    Attributes:
        job_role: what the check jobs run as (reads baselines, manifests, capture and labels;
            writes reports).
        window_function, publish_function: the pipeline's two Lambda steps.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        stage_name: str,
        artifacts_bucket: s3.IBucket,
        baseline_key_pattern: str,
        capture_bucket: s3.IBucket,
        batch_data: Sequence[tuple[s3.IBucket, str]],
        ground_truth_bucket: s3.IBucket,
        ground_truth_prefix: str,
        encryption_key: kms.IKey,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_groups: Sequence[ec2.ISecurityGroup],
        image_uri: str,
        instance_type: str,
        volume_encrypted: bool,
        record_name_template: str,
        record_parameter_pattern: str,
        endpoint_name_template: str,
        no_version: str,
        model_package_arn_pattern: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        """
        Args:
            baseline_key_pattern: the keys of registered baselines (read by the jobs).
            batch_data: the batch transforms' input and output files, as (bucket, key
                pattern): batch capture lists them, and the checks read them.
            record_name_template: the SSM name of a model's version record (``{model}``).
            record_parameter_pattern: the ARN pattern of those parameters.
            endpoint_name_template: a model's endpoint name (``{model}``).
            model_package_arn_pattern: the versions the window step may describe.
        """
        super().__init__(scope, id, pipeline_name=pipeline_name)
        stack = cdk.Stack.of(self)
        self.stage_name = stage_name
        source = s3_assets.Asset(self, "StepsSource", path=str(STEPS_DIR), exclude=ASSET_EXCLUDES)
        runner = s3_assets.Asset(self, "StepRunner", path=str(RUNNER))

        # --- the check jobs: read what they check, write their reports -----------------
        self.job_role = sagemaker_role(
            self, "JobRole", description=f"Runs {pipeline_name}'s checks"
        )
        grant_sagemaker_basics(self.job_role, stack, encryption_key, vpc=vpc,
                               log_groups=("ProcessingJobs",))  # fmt: skip
        grant_objects_read(
            self.job_role, source.bucket, [source.s3_object_key, runner.s3_object_key]
        )
        grant_prefix(self.job_role, artifacts_bucket, MONITORING_PREFIX, write=True)
        # SageMaker lists an S3Prefix input (the baseline directory) before reading it.
        grant_pattern_read(self.job_role, artifacts_bucket, baseline_key_pattern)
        for bucket, pattern in batch_data:
            grant_pattern_read(self.job_role, bucket, pattern)
        grant_prefix(self.job_role, capture_bucket, "")
        grant_prefix(self.job_role, ground_truth_bucket, ground_truth_prefix)

        # --- SelectWindow: the served version, its baseline, the window's manifests -----
        window_role = self._function_role("WindowRole", "Selects a monitoring run's window")
        window_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadVersionRecords",
                actions=["ssm:GetParameter"],
                resources=[record_parameter_pattern],
            )
        )
        window_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeServedVersions",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[model_package_arn_pattern],
            )
        )
        for bucket, prefix in (
            (capture_bucket, "*"),
            (ground_truth_bucket, f"{ground_truth_prefix}*"),
        ):
            window_role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [prefix]}},
                )
            )  # fmt: skip
        # Batch transform capture is manifests of the jobs' files: the step reads them.
        grant_pattern_read(window_role, capture_bucket, "*/batch/*")
        grant_prefix(window_role, artifacts_bucket, MONITORING_PREFIX, write=True)
        self.window_function = self._function(
            "WindowFunction", "monitoring_window", window_role, encryption_key, log_retention,
            description=f"{pipeline_name}: selects the window, baseline and labels of a run",
            environment={
                "STAGE": stage_name,
                "CAPTURE_BUCKET": capture_bucket.bucket_name,
                "ARTIFACTS_BUCKET": artifacts_bucket.bucket_name,
                "GROUND_TRUTH_BUCKET": ground_truth_bucket.bucket_name,
                "GROUND_TRUTH_PREFIX": ground_truth_prefix,
                "RECORD_NAME_TEMPLATE": record_name_template,
                "NO_VERSION": no_version,
                "ENDPOINT_NAME_TEMPLATE": endpoint_name_template,
                "MONITORING_PREFIX": MONITORING_PREFIX,
            },
        )  # fmt: skip

        # --- PublishMetrics: the reports' metrics to CloudWatch --------------------------
        publish_role = self._function_role("PublishRole", "Publishes a monitoring run's metrics")
        grant_prefix(publish_role, artifacts_bucket, MONITORING_PREFIX)
        publish_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishMonitoringMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # no resource type; the namespace condition bounds it
                conditions={"StringEquals": {"cloudwatch:namespace": monitoring.NAMESPACE}},
            )
        )
        self.publish_function = self._function(
            "PublishFunction", "monitoring_publish", publish_role, encryption_key, log_retention,
            description=f"{pipeline_name}: publishes the checks' metrics to CloudWatch",
            environment={"STAGE": stage_name, "NAMESPACE": monitoring.NAMESPACE,
                         "ARTIFACTS_BUCKET": artifacts_bucket.bucket_name},
        )  # fmt: skip
        for role in (window_role, publish_role):
            acknowledge_wildcards(
                default_policy_resource(role),
                "Compensating controls: S3 writes and report reads only under the artifacts "
                f"bucket's {MONITORING_PREFIX} prefix; listing only the capture bucket and the "
                "ground-truth prefix, reading only the capture bucket's batch manifests "
                "(*/batch/*); version records and versions only of this stage; KMS only the "
                "stage's key through S3; PutMetricData only in the monitoring namespace; "
                "logs only to the function's own log group.",
            )

        # --- the pipeline: invokes the two functions and runs the check jobs ------------
        self.role = sagemaker_role(self, "Role", description=f"Runs {pipeline_name}")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunCheckJobs",
                actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                         "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
                resources=[stack.format_arn(service="sagemaker", resource="processing-job",
                                            resource_name="pipelines-*")],
            )
        )  # fmt: skip
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassTheJobRole",
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        for function in (self.window_function, self.publish_function):
            function.grant_invoke(self.role)
        subnets = selected_subnet_ids(vpc, vpc_subnets)
        body = definition.monitoring_definition(
            stage_name=stage_name,
            image_uri=image_uri,
            instance_type=instance_type,
            volume_encrypted=volume_encrypted,
            subnets=[f"${{SubnetId{i}}}" for i in range(len(subnets))],
            security_groups=[f"${{SecurityGroupId{i}}}" for i in range(len(security_groups))],
        )
        values: dict[str, str] = {
            "ExecutionRoleArn": self.job_role.role_arn,
            "WindowFunctionArn": self.window_function.function_arn,
            "PublishFunctionArn": self.publish_function.function_arn,
            "KmsKeyArn": encryption_key.key_arn,
            "CodeUri": runner.s3_object_url,
            "SourceUri": source.s3_object_url,
        }
        values.update({f"SubnetId{i}": s for i, s in enumerate(subnets)})
        values.update(
            {f"SecurityGroupId{i}": g.security_group_id for i, g in enumerate(security_groups)}
        )
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_description=f"Drift and model-quality checks of {stage_name}",
            role_arn=self.role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": cdk.Fn.sub(stack.to_json_string(body), values)
            },
        )  # fmt: skip
        for role in (self.role, self.job_role):
            self.resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
            policy = default_policy_resource(role)
            acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
            acknowledge_wildcards(
                policy,
                "Each wildcard is bounded. Compensating controls: processing jobs only with "
                "names the pipeline service generates (pipelines-*); S3 reads only of the "
                "registered baselines, the capture bucket, the ground-truth prefix, the batch "
                "jobs' input and output files and the two step assets, writes only under "
                f"{MONITORING_PREFIX}; KMS only the stage's "
                "key; the two functions of this pipeline only; logs only SageMaker's "
                "processing job groups; network interfaces only in the stage's VPC; Resource "
                "'*' only where the API has no resource type (ecr:GetAuthorizationToken, ec2 "
                "Describe calls) or with a condition (cloudwatch:namespace /aws/sagemaker/*).",
            )

        # --- what every schedule of this pipeline shares --------------------------------
        self.schedule_dead_letters = dead_letter_queue(
            self,
            "ScheduleDeadLetters",
            encryption_key=encryption_key,
            of="the monitoring schedules",
        )
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=confined_service_principal(
                self, "scheduler.amazonaws.com", arn_service="scheduler",
                resource="schedule-group/default",
            ),
            description=f"Lets EventBridge Scheduler start {pipeline_name}",
        )  # fmt: skip
        encryption_key.grant(self.schedule_role, "kms:GenerateDataKey", "kms:Decrypt")
        acknowledge(
            default_policy_resource(self.schedule_role), INLINE_POLICY, INLINE_POLICY_REASON
        )

    def _function_role(self, id: str, description: str) -> iam.Role:
        # Lambda does not pass aws:SourceAccount/SourceArn when it assumes a role.
        return iam.Role(
            self, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )  # fmt: skip

    def _function(
        self, id: str, handler: str, role: iam.Role, key: kms.IKey, retention: logs.RetentionDays,
        *, description: str, environment: dict[str, str],
    ) -> lambda_.Function:  # fmt: skip
        function = powertools_function(
            self, id, handler_dir=HANDLERS / handler, role=role, encryption_key=key,
            retention=retention, timeout=cdk.Duration.minutes(5), description=description,
            environment=environment, reserved_concurrency=10,
            invoked_by=f"the {self.pipeline_name} pipeline's Lambda steps (a failed step fails "
            "the run, and the missing-runs alarms report it)",
        )  # fmt: skip
        acknowledge(default_policy_resource(role), INLINE_POLICY, INLINE_POLICY_REASON)
        return function


class DriftSchedule(Construct):
    """Starts the stage's monitoring pipeline for one model and capture source every
    ``cadence``; ``metric_*`` are what those runs publish.

    Attributes:
        stage_name, model_name, source, cadence.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline: MonitoringPipeline,
        model_name: str,
        source: str,
        problem_type: str,
        psi_threshold: float,
        ks_p_value_threshold: float,
        missing_rate_increase: float,
        cadence: cdk.Duration,
        ground_truth_delay: cdk.Duration,
    ) -> None:
        super().__init__(scope, id)
        if source not in monitoring.SOURCES:
            raise ValueError(f"source must be one of {monitoring.SOURCES}, got {source!r}")
        self.stage_name, self.model_name, self.source = pipeline.stage_name, model_name, source
        self.cadence = cadence
        minutes = int(cadence.to_minutes())
        parameters = {
            "ModelName": model_name,
            "CaptureSource": source,
            "ProblemType": problem_type,
            "PsiThreshold": repr(float(psi_threshold)),
            "KsPValueThreshold": repr(float(ks_p_value_threshold)),
            "MissingRateIncrease": repr(float(missing_rate_increase)),
            "WindowMinutes": str(minutes),
            "GroundTruthDelayMinutes": str(int(ground_truth_delay.to_minutes())),
        }
        if set(parameters) != set(definition.PARAMETERS):
            raise ValueError(f"the schedule sets {sorted(parameters)}, the pipeline takes "
                             f"{sorted(definition.PARAMETERS)}")  # fmt: skip
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"Checks {model_name}'s {source} capture for drift and quality",
            schedule=scheduler.ScheduleExpression.rate(cadence),
            target=scheduler_targets.SageMakerStartPipelineExecution(
                pipeline,
                role=pipeline.schedule_role,
                pipeline_parameter_list=[
                    scheduler_targets.SageMakerPipelineParameter(name=k, value=v)
                    for k, v in parameters.items()
                ],
                max_event_age=cdk.Duration.minutes(max(1, min(minutes, 60))),
                retry_attempts=3,
                dead_letter_queue=pipeline.schedule_dead_letters,
            ),
        )

    def metric(
        self, metric_name: str, *, statistic: str = "Maximum", **extra: str
    ) -> cloudwatch.Metric:
        """A metric the checks publish for this model and source, per ``cadence``."""
        return cloudwatch.Metric(
            namespace=monitoring.NAMESPACE,
            metric_name=metric_name,
            dimensions_map=monitoring.dimension_map(
                self.stage_name, self.model_name, self.source, **extra
            ),
            statistic=statistic,
            period=self.cadence,
        )  # fmt: skip

    def metric_drift_detected(self) -> cloudwatch.Metric:
        """1 in a window with drift, 0 without; none for an empty window."""
        return self.metric(monitoring.DRIFT_DETECTED)

    def metric_drift_score(self) -> cloudwatch.Metric:
        """The largest feature PSI of a window."""
        return self.metric(monitoring.DRIFT_SCORE)

    def metric_rows_checked(self) -> cloudwatch.Metric:
        """Captured rows a window held."""
        return self.metric(monitoring.ROWS_CHECKED, statistic="Sum")

    def metric_no_data(self) -> cloudwatch.Metric:
        """1 for a window without captured rows."""
        return self.metric(monitoring.NO_DATA)

    def metric_runs(self) -> cloudwatch.Metric:
        """Completed monitoring runs."""
        return self.metric(monitoring.MONITORING_RUNS, statistic="SampleCount")

    def metric_feature_psi(self, feature: str) -> cloudwatch.Metric:
        """One feature's PSI."""
        return self.metric(monitoring.FEATURE_PSI, **{monitoring.FEATURE: feature})

    def metric_model_quality(self, quality_metric: str) -> cloudwatch.Metric:
        """A model-quality metric (the contract's name) of the window's labelled rows."""
        return self.metric(monitoring.MODEL_QUALITY, **{monitoring.QUALITY_METRIC: quality_metric})


def alarm_name(stage_name: str, model_name: str, what: str) -> str:
    """``<stage>/<model>/<what>``: stage and model names have no ``/``."""
    return f"{stage_name}/{model_name}/{what}"


class DriftAlarms(Construct):
    """A model's monitoring alarms, to ``topic``, built from ``metric_*``.

    Attributes:
        drift: alarms whose ALARM state is sustained drift (they start retraining).
        others: the quality and missing-run alarms.
    """

    def __init__(self, scope: Construct, id: str, *, topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        self._action = cloudwatch_actions.SnsAction(topic)
        self.drift: list[cloudwatch.Alarm] = []
        self.others: list[cloudwatch.Alarm] = []

    def _alarm(self, id: str, **props: Any) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(self, id, **props)
        alarm.add_alarm_action(self._action)
        return alarm

    def add_sustained_drift(
        self, id: str, *, name: str, metric: cloudwatch.IMetric, threshold: float,
        drift_windows: int, of_last_windows: int, description: str,
    ) -> cloudwatch.Alarm:  # fmt: skip
        """ALARM when ``metric`` exceeds ``threshold`` in ``drift_windows`` of the last
        ``of_last_windows`` periods; windows without data count as no drift."""
        alarm = self._alarm(
            id, alarm_name=name, metric=metric, threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=of_last_windows, datapoints_to_alarm=drift_windows,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )  # fmt: skip
        self.drift.append(alarm)
        return alarm

    def add_quality(
        self, id: str, *, name: str, metric: cloudwatch.IMetric, threshold: float,
        higher_is_better: bool, description: str,
    ) -> cloudwatch.Alarm:  # fmt: skip
        """ALARM when a window's quality metric is worse than the model's gate."""
        operator = (
            cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
            if higher_is_better
            else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        )
        alarm = self._alarm(
            id, alarm_name=name, metric=metric, threshold=threshold, comparison_operator=operator,
            evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )  # fmt: skip
        self.others.append(alarm)
        return alarm

    def add_missing_runs(
        self, id: str, *, name: str, metric: cloudwatch.Metric, windows: int, description: str
    ) -> cloudwatch.Alarm:
        """ALARM when no run completed in ``windows`` consecutive periods of ``metric``."""
        alarm = self._alarm(
            id, alarm_name=name, metric=metric, threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=windows, datapoints_to_alarm=windows,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            alarm_description=description,
        )  # fmt: skip
        self.others.append(alarm)
        return alarm


class RetrainHandler(Construct):
    """A stage's retrain handler (``handlers/drift_retrain``, reserved concurrency 1, so that
    its guard sees the runs it started itself). Invocations that still fail after Lambda's
    two retries land in ``dead_letters`` (:meth:`metric_failed_retrains`).

    Attributes:
        function: the handler.
        dead_letters: its dead-letter queue (the stage's key).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        training_pipeline_template: str,
        training_pipeline_arn_pattern: str,
        max_per_day: int,
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        """
        Args:
            training_pipeline_template: a model's training pipeline name (``{model}``).
            training_pipeline_arn_pattern: the ARNs of them all: one statement for every
                model of the stage (a grant per pipeline would grow the policy past IAM's
                size limit at a hundred models).
        """
        super().__init__(scope, id)
        role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Starts {stage_name}'s training pipelines on sustained drift",
        )  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RetrainGuardedAndBounded",
                actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
                resources=[training_pipeline_arn_pattern],
            )
        )
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", encryption_key=encryption_key, of="the retrain handler"
        )
        encryption_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        self.function = powertools_function(
            self, "Function", handler_dir=HANDLERS / "drift_retrain", role=role,
            encryption_key=encryption_key, retention=log_retention,
            timeout=cdk.Duration.minutes(1), reserved_concurrency=1,
            description=f"Starts {stage_name}'s training on sustained drift (guarded, bounded)",
            environment={
                "STAGE": stage_name,
                "TRAINING_PIPELINE_TEMPLATE": training_pipeline_template,
                "MAX_RETRAINS_PER_DAY": str(max_per_day),
                "EXECUTION_NAME_PREFIX": "drift-retrain",
            },
            invoked_by="EventBridge rules on the stage's drift alarms (asynchronously)",
            dead_letter_queue=self.dead_letters,
        )  # fmt: skip
        acknowledge(default_policy_resource(role), INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            default_policy_resource(role),
            "Compensating controls: only the stage's training pipelines "
            f"({training_pipeline_template.format(model='*')}); KMS only the stage's key (its "
            "dead-letter queue); logs only to its own group.",
        )

    def metric_failed_retrains(self, **props: Any) -> cloudwatch.Metric:
        """Retrain invocations that failed after Lambda's retries (messages in the
        dead-letter queue, Maximum)."""
        return self.dead_letters.metric_approximate_number_of_messages_visible(
            **{"statistic": "Maximum", **props}
        )


class DriftRetrain(Construct):
    """Starts a model's training pipeline when one of its drift alarms goes into ALARM
    (EventBridge rule -> the stage's :class:`RetrainHandler`), unless a run of it is in
    progress or ``max_per_day`` drift retrains started today (UTC): one rule per model,
    matching its alarms' ARNs.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        handler: RetrainHandler,
        alarms: Sequence[cloudwatch.IAlarm],
        description: str,
    ) -> None:
        super().__init__(scope, id)
        self.rule = events.Rule(
            self,
            "Rule",
            description=description,
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[a.alarm_arn for a in alarms],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[events_targets.LambdaFunction(handler.function, retry_attempts=2)],
        )

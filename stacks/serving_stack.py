"""The stateless serving stack: one endpoint per model, serving the version approved for
the stage, with its alarms and dashboard.

Which version runs is the model's version record in this stage (``mlops/serving_record.py``;
ADR 0003): an SSM parameter this stack reads at each deployment through an SSM-typed
CloudFormation parameter (the CDK CLI re-resolves those on every ``cdk deploy``), so the
template never changes when a version is approved. While a record says ``none``, a
condition leaves that model's endpoint out and the stack says so in an output.

The parameters are resolved here, in the parent, and passed to each model's nested stack
as an ordinary parameter: a nested stack whose template is unchanged is updated only when
its parameters change, so a version change reaches it that way.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_ssm as ssm

from constructs import Construct
from constructs.approval_deploys import ApprovalDeploys
from constructs.batch_inference import BatchInferencePipeline
from constructs.drift_monitor import (
    MONITORING_PREFIX,
    DriftAlarms,
    DriftRetrain,
    DriftSchedule,
    MonitoringPipeline,
    RetrainHandler,
    alarm_name,
)
from constructs.endpoint import (
    DataCapture,
    Deployment,
    ModelEndpoint,
    ServerlessConfig,
    only_if,
)
from constructs.endpoint_monitoring import EndpointMonitoring
from constructs.model_monitor import ModelMonitorSchedules
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.sagemaker_grants import model_role
from constructs.training_pipeline import lazy_result
from mlops import definition_builds, serving_record
from mlops.config import (
    DEFAULT_BATCH_INPUT,
    DEFAULT_BATCH_OUTPUT,
    ModelConfig,
    StageConfig,
    pascal_case,
)
from mlops.instance_storage import has_instance_storage
from mlops.pipeline_definition import PipelineInputs, baseline_key_pattern, model_prefix
from pipeline_steps.steplib import contract, monitoring
from stacks.data_stack import PROJECT_ROOT, DataStack, ReleaseWiring, _retention
from stacks.pipeline_stack import PipelineStack, nested_stack_scopes

#: The keys of the baselines versions register (preprocess's ``baseline/`` output).
BASELINE_KEYS = baseline_key_pattern()


class ServingStack(cdk.Stack):
    """Endpoints of one stage, wired to its data and training stacks.

    Attributes:
        endpoints: one :class:`ModelEndpoint` per model, by model name (created at deploy
            only while the model has an approved version in the stage).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        stage: StageConfig,
        models: tuple[ModelConfig, ...],
        data: DataStack,
        training: PipelineStack,
        release: ReleaseWiring | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, id, description=f"SageMaker MLOps platform ({stage_name}): endpoints", **kwargs
        )
        self.add_stack_dependency(data)  # the version records and the handoff
        self.endpoints: dict[str, ModelEndpoint] = {}
        self._nested: dict[str, ModelServingStack] = {}
        self._records: dict[str, Construct] = {}
        #: The stage's monitoring pipeline (None with ``monitoring.enabled`` false).
        self.monitoring: MonitoringPipeline | None = None
        retrain: RetrainHandler | None = None
        if stage.monitoring.enabled:
            self.monitoring = self._monitoring_pipeline(stage_name, stage, data, models)
            if stage.monitoring.retrain.enabled:
                retrain = RetrainHandler(
                    self, "DriftRetrain", stage_name=stage_name,
                    training_pipeline_template=serving_record.training_pipeline_name(stage_name, "{model}"),
                    training_pipeline_arn_pattern=self.format_arn(
                        service="sagemaker", resource="pipeline",
                        resource_name=serving_record.training_pipeline_name(stage_name, "*")),
                    max_per_day=stage.monitoring.retrain.max_per_day,
                    encryption_key=data.resources_for(self).data_key,
                    log_retention=_retention(stage.log_retention_days),
                )  # fmt: skip
                failed = cloudwatch.Alarm(
                    retrain, "FailedAlarm", alarm_name=f"{stage_name}/drift-retrain-failed",
                    metric=retrain.metric_failed_retrains(period=cdk.Duration.minutes(5)),
                    threshold=0, evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description="A drift retrain failed after Lambda's retries (see the "
                    "handler's dead-letter queue and logs)",
                )  # fmt: skip
                failed.add_alarm_action(
                    cloudwatch_actions.SnsAction(data.resources_for(self).alarm_topic)
                )
        for model in models:
            name = serving_record.record_name(stage_name, model.name)
            served = ssm.StringParameter.value_for_string_parameter(self, name)
            approved = cdk.CfnCondition(
                self,
                f"{pascal_case(model.name)}Approved",
                expression=cdk.Fn.condition_not(
                    cdk.Fn.condition_equals(served, serving_record.NO_VERSION)
                ),
            )
            nested = ModelServingStack(
                self,
                f"{pascal_case(model.name)}Serving",
                endpoint_name=serving_record.endpoint_name(stage_name, model.name),
                model=model,
                stage=stage,
                data=data,
                model_package_arn=served,
                image_repository_arns=training.pipelines[model.name].image_repository_arns(self),
                monitoring_pipeline=self.monitoring,
                retrain_handler=retrain,
                stage_name=stage_name,
            )
            self.endpoints[model.name] = nested.endpoint
            self._nested[model.name] = nested
            record = self._records[model.name] = Construct(self, f"{pascal_case(model.name)}Record")
            cdk.CfnOutput(
                record,
                "Serves",
                key=serving_record.served_output_key(model.name),
                description=f"What endpoint {stage_name}-{model.name} serves",
                value=cdk.Fn.condition_if(
                    approved.logical_id,
                    served,
                    f"nothing yet: no version of {model.name} is approved in {stage_name} "
                    f"(approve one, then: make serve STAGE={stage_name} MODEL={model.name})",
                ).to_string(),
            )
        self._recommender_role(
            stage_name, data, models,
            sorted({a for m in models for a in training.pipelines[m.name].image_repository_arns(self)}),
        )  # fmt: skip
        if release is not None:
            self._release(stage_name, stage, data, release)

    def _monitoring_pipeline(
        self, stage_name: str, stage: StageConfig, data: DataStack, models: tuple[ModelConfig, ...]
    ) -> MonitoringPipeline:
        """The stage's scheduled drift and quality checks (every model, both sources)."""
        shared = data.resources_for(self)
        instance_type = stage.pipeline.processing_instance_type
        image = definition_builds.image_uri(
            "sklearn", stage.region, PipelineInputs.sklearn_version, "training"
        )
        return MonitoringPipeline(
            self, "Monitoring", pipeline_name=serving_record.monitoring_pipeline_name(stage_name), stage_name=stage_name,
            artifacts_bucket=shared.artifacts_bucket, baseline_key_pattern=BASELINE_KEYS,
            capture_bucket=shared.data_capture_bucket, ground_truth_bucket=shared.raw_data_bucket,
            batch_data=[
                *((shared.raw_data_bucket, p) for p in _patterns(models, "batch_input")),
                *((shared.artifacts_bucket, p) for p in _patterns(models, "batch_output")),
            ],
            ground_truth_prefix=stage.monitoring.ground_truth_prefix,
            encryption_key=shared.data_key, vpc=shared.vpc, vpc_subnets=shared.job_subnets,
            security_groups=[shared.job_security_group],
            image_uri=lazy_result(self, image),
            instance_type=instance_type, volume_encrypted=not has_instance_storage(instance_type),
            record_name_template=serving_record.record_name(stage_name, "{model}"),
            record_parameter_pattern=self.format_arn(
                service="ssm", resource="parameter",
                resource_name=serving_record.record_name(stage_name, "*").lstrip("/")),
            endpoint_name_template=serving_record.endpoint_name(stage_name, "{model}"),
            no_version=serving_record.NO_VERSION,
            model_package_arn_pattern=self.format_arn(
                service="sagemaker", resource="model-package",
                resource_name=f"{serving_record.group_prefix(stage_name)}*/*"),
            log_retention=_retention(stage.log_retention_days),
        )  # fmt: skip

    def _release(
        self, stage_name: str, stage: StageConfig, data: DataStack, release: ReleaseWiring
    ) -> None:
        """Approvals write the records and start the release."""
        scope = Construct(self, "Release")
        shared = data.resources_for(scope)
        tooling = release.account or self.account
        ApprovalDeploys(
            scope, "ApprovalDeploys", stage_name=stage_name,
            group_prefix=serving_record.group_prefix(stage_name),
            record_name_template=serving_record.record_name(stage_name, "{model}"),
            release_event_bus=events.EventBus.from_event_bus_arn(
                scope, "ReleaseBus",
                f"arn:{self.partition}:events:{release.region}:{tooling}:event-bus/default",
            ),
            event_source=serving_record.RELEASE_EVENT_SOURCE,
            detail_type=serving_record.RECORD_CHANGED, no_version=serving_record.NO_VERSION,
            promoted_from_key=serving_record.PROMOTED_FROM_KEY, promoted_only=release.promoted,
            encryption_key=shared.data_key, log_retention=_retention(stage.log_retention_days),
        )  # fmt: skip

    def _recommender_role(
        self,
        stage_name: str,
        data: DataStack,
        models: tuple[ModelConfig, ...],
        image_repository_arns: list[str],
    ) -> None:
        """The role Inference Recommender jobs run as (``mlops recommend``): also the
        execution role of the models it load-tests."""
        shared = data.resources_for(self)
        role = model_role(
            self, "RecommenderRole", description=f"Inference Recommender jobs of {stage_name}",
            encryption_key=shared.data_key, vpc=None,
            log_groups=("Endpoints/*", "InferenceRecommendationsJobs"),
            model_data_bucket=shared.artifacts_bucket, model_data_prefix="pipelines/",
            image_repository_arns=image_repository_arns,
        )  # fmt: skip
        # It must never touch what the stage serves.
        served = [
            self.format_arn(
                service="sagemaker", resource=kind,
                resource_name=serving_record.endpoint_name(stage_name, m.name) + suffix,
            )
            for m in models
            for kind, suffix in (("endpoint", ""), ("endpoint-config", "*"))
        ]  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NeverTheServedEndpoints",
                effect=iam.Effect.DENY,
                actions=["sagemaker:DeleteEndpoint", "sagemaker:UpdateEndpoint",
                         "sagemaker:UpdateEndpointWeightsAndCapacities",
                         "sagemaker:DeleteEndpointConfig"],
                resources=served,
            )
        )  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadLoadTestMetrics",
                actions=["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"],
                resources=["*"],  # no resource type for these actions
            )
        )
        # The job creates and deletes its own models, endpoint configs and endpoints,
        # named by the service.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel", "sagemaker:DeleteModel", "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DescribeEndpointConfig", "sagemaker:CreateEndpoint",
                    "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
                    "sagemaker:InvokeEndpoint", "sagemaker:DescribeModelPackage",
                    "sagemaker:ListModelPackages", "sagemaker:AddTags",
                ],
                resources=["*"],
            )
        )  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        shared.artifacts_bucket.grant_read(role)
        policy = default_policy_resource(role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Inference Recommender names the models, endpoint configs and endpoints it load-"
            "tests itself, so they cannot be named in advance. Compensating controls: an "
            "explicit Deny on deleting or updating the stage's served endpoints and their "
            "configs; only SageMaker hosting actions; the role can be assumed only by "
            "SageMaker in this account; S3 read only on the stage's artifacts bucket (the "
            "versions' artifacts and the sample payloads); images only the models' "
            "repositories; logs only SageMaker's endpoint and recommendation-job groups; "
            "CloudWatch metric reads have no resource type.",
        )
        ssm.StringParameter(
            self,
            "RecommenderRoleArn",
            parameter_name=serving_record.recommender_role_parameter(stage_name),
            string_value=role.role_arn,
            description="Role of Inference Recommender jobs (mlops recommend)",
        )

    def model_scopes(self) -> dict[str, list[Construct]]:
        """What each model adds to this template: its nested stack and its output."""
        scopes = nested_stack_scopes(self._nested)
        for name, record in self._records.items():
            scopes[name].append(record)
        return scopes


class ModelServingStack(cdk.NestedStack):
    """One model's endpoint, alarms and dashboard, as a nested stack of the ServingStack."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model: ModelConfig,
        stage: StageConfig,
        data: DataStack,
        model_package_arn: str,
        image_repository_arns: list[str],
        stage_name: str,
        monitoring_pipeline: MonitoringPipeline | None = None,
        retrain_handler: RetrainHandler | None = None,
    ) -> None:
        super().__init__(scope, id, description=f"Endpoint of {model.name}")
        shared = data.resources_for(self)
        settings = stage.endpoint
        self._model_package_arn = model_package_arn
        self._approved = approved = cdk.CfnCondition(
            self,
            "VersionApproved",
            expression=cdk.Fn.condition_not(
                cdk.Fn.condition_equals(model_package_arn, serving_record.NO_VERSION)
            ),
        )
        on_instances = settings.serverless is None
        self._group = group = shared.model_package_group(model.name)
        deployment = {
            "all_at_once": lambda p, b: Deployment.all_at_once(b),
            "canary": Deployment.canary,
            "linear": Deployment.linear,
        }[settings.deployment](settings.canary_percent, cdk.Duration.minutes(settings.bake_minutes))
        self.endpoint = ModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            model_package_arn=model_package_arn,
            model_package_group=group,
            encryption_key=shared.data_key,
            model_data_bucket=shared.artifacts_bucket,
            model_data_prefix=model_prefix(model.name),
            image_repository_arns=image_repository_arns,
            instance_type=settings.instance_type,
            initial_instance_count=settings.initial_instance_count,
            serverless=(
                ServerlessConfig(
                    memory_size_mb=settings.serverless.memory_size_mb,
                    max_concurrency=settings.serverless.max_concurrency,
                    provisioned_concurrency=settings.serverless.provisioned_concurrency,
                )
                if settings.serverless is not None
                else None
            ),
            data_capture=(
                DataCapture(
                    bucket=shared.data_capture_bucket,
                    prefix=f"{model.name}/",
                    sampling_percent=settings.capture_percent,
                )
                if on_instances
                else None
            ),
            vpc=shared.vpc if on_instances else None,
            vpc_subnets=shared.job_subnets if on_instances else None,
            security_groups=[shared.job_security_group] if on_instances else [],
            deployment=deployment,
            rollback_5xx_errors=settings.rollback.invocation_5xx_errors,
            rollback_latency_p99=cdk.Duration.millis(settings.rollback.model_latency_p99_ms),
            rollback_alarm_topic=shared.alarm_topic,
            log_retention=_retention(stage.log_retention_days),
            condition=approved,
        )
        if on_instances:
            scaling = settings.scaling
            self.endpoint.auto_scale_instance_count(
                min_capacity=scaling.min_instances, max_capacity=scaling.max_instances
            ).scale_on_invocations(
                scaling.target_invocations_per_instance,
                scale_in_cooldown=cdk.Duration.seconds(scaling.scale_in_cooldown_seconds),
                scale_out_cooldown=cdk.Duration.seconds(scaling.scale_out_cooldown_seconds),
            )
        monitors = EndpointMonitoring(
            self,
            "Monitoring",
            endpoint=self.endpoint,
            topic=shared.alarm_topic,
            dashboard_name=endpoint_name,
            on_instances=on_instances,
            traffic_expected=settings.traffic_expected,
        )
        # Nothing to watch while nothing is served.
        only_if(monitors, approved)
        # Batch inference of the same version; data capture on, in the VPC.
        batch = stage.batch
        self.batch = BatchInferencePipeline(
            self,
            "BatchInference",
            pipeline_name=f"{endpoint_name}-batch",
            model_package_arn=model_package_arn,
            model_package_arn_pattern=group.model_package_arn_pattern,
            model_data_bucket=shared.artifacts_bucket,
            model_data_prefix=model_prefix(model.name),
            input_bucket=shared.raw_data_bucket,
            input_prefix=model.batch_input,
            output_bucket=shared.artifacts_bucket,
            output_prefix=model.batch_output,
            capture_bucket=shared.data_capture_bucket,
            capture_prefix=f"{model.name}/batch/",
            encryption_key=shared.data_key,
            image_repository_arns=image_repository_arns,
            vpc=shared.vpc,
            vpc_subnets=shared.job_subnets,
            security_groups=[shared.job_security_group],
            instance_type=batch.instance_type,
            instance_count=batch.instance_count,
            schedule=(
                scheduler.ScheduleExpression.expression(batch.schedule_expression, None)
                if batch.schedule_expression
                else None
            ),
            condition=approved,
        )

        if monitoring_pipeline is not None:
            self._monitoring(
                stage_name,
                model,
                stage,
                data,
                monitoring_pipeline,
                retrain_handler,
                approved,
                endpoint_name,
            )

    def _monitoring(
        self,
        stage_name: str,
        model: ModelConfig,
        stage: StageConfig,
        data: DataStack,
        pipeline: MonitoringPipeline,
        retrain_handler: RetrainHandler | None,
        approved: cdk.CfnCondition,
        endpoint_name: str,
    ) -> None:
        """The model's drift and quality schedules, alarms and retrain rule (while served)."""
        settings = stage.monitoring
        shared = data.resources_for(self)
        scope = Construct(self, "DriftMonitoring")
        alarms = DriftAlarms(scope, "Alarms", topic=shared.alarm_topic)
        gate = contract.gate_metric(model.problem_type, model.quality_gate.metric)
        retrain = settings.retrain
        cadence = cdk.Duration.minutes(settings.cadence_minutes)
        sources = [monitoring.BATCH_SOURCE] if settings.batch else []
        if settings.engine == "scheduled" and stage.endpoint.capture_percent > 0:
            sources.insert(0, monitoring.ENDPOINT_SOURCE)
        thresholds = model.drift
        for source in sources:
            title = source.capitalize()
            schedule = DriftSchedule(
                scope, f"{title}Schedule", pipeline=pipeline, model_name=model.name,
                source=source, problem_type=model.problem_type,
                psi_threshold=thresholds.psi_threshold,
                ks_p_value_threshold=thresholds.ks_p_value_threshold,
                missing_rate_increase=thresholds.missing_rate_increase,
                cadence=cadence,
                ground_truth_delay=cdk.Duration.minutes(settings.ground_truth_delay_minutes),
            )  # fmt: skip
            alarms.add_sustained_drift(
                f"{title}Drift", name=alarm_name(stage_name, model.name, f"drift-{source}"),
                metric=schedule.metric_drift_detected(), threshold=0.5,
                drift_windows=retrain.drift_windows, of_last_windows=retrain.of_last_windows,
                description=f"Drift of {model.name} ({source} capture) in "
                f"{retrain.drift_windows} of the last {retrain.of_last_windows} windows",
            )  # fmt: skip
            alarms.add_quality(
                f"{title}Quality", name=alarm_name(stage_name, model.name, f"quality-{source}"),
                metric=schedule.metric_model_quality(gate.name),
                threshold=model.quality_gate.threshold, higher_is_better=gate.higher_is_better,
                description=f"{gate.name} of {model.name}'s labelled {source} predictions is "
                f"worse than its gate ({model.quality_gate.threshold})",
            )  # fmt: skip
            alarms.add_missing_runs(
                f"{title}MissingRuns",
                name=alarm_name(stage_name, model.name, f"missing-runs-{source}"),
                metric=schedule.metric_runs(), windows=2,
                description=f"No monitoring run of {model.name} ({source}) completed in two "
                "windows: the pipeline failed or did not start",
            )  # fmt: skip
        if settings.engine == "model_monitor":
            self._model_monitor(stage_name, model, stage, shared, alarms, gate, endpoint_name)
        if retrain_handler is not None and alarms.drift:
            DriftRetrain(
                scope, "Retrain", handler=retrain_handler, alarms=alarms.drift,
                description=f"Retrains {model.name} on sustained drift in {stage_name}",
            )  # fmt: skip
        only_if(scope, approved)

    def _model_monitor(
        self, stage_name: str, model: ModelConfig, stage: StageConfig, shared: Any,
        alarms: DriftAlarms, gate: contract.GateMetric, endpoint_name: str,
    ) -> None:  # fmt: skip
        """Model Monitor's data- and model-quality schedules of the endpoint, with alarms."""
        settings = stage.monitoring
        retrain = settings.retrain
        instance_type = stage.pipeline.processing_instance_type
        image = definition_builds.image_uri("model-monitor", stage.region)
        schedules = ModelMonitorSchedules(
            self, "ModelMonitor", endpoint=self.endpoint,
            model_package_arn=self._model_package_arn, model_package_group=self._group,
            problem_type=model.problem_type,
            image_uri=lazy_result(self, image),
            instance_type=instance_type, volume_encrypted=not has_instance_storage(instance_type),
            cadence_hours=settings.cadence_minutes // 60,
            ground_truth_delay_hours=-(-settings.ground_truth_delay_minutes // 60),
            baseline_bucket=shared.artifacts_bucket, baseline_key_pattern=BASELINE_KEYS,
            capture_bucket=shared.data_capture_bucket, capture_prefix=f"{model.name}/",
            ground_truth_bucket=shared.raw_data_bucket,
            ground_truth_prefix=f"{settings.ground_truth_prefix}{model.name}/",
            output_bucket=shared.artifacts_bucket,
            output_prefix=f"{MONITORING_PREFIX}{model.name}/model-monitor/",
            encryption_key=shared.data_key, vpc=shared.vpc, vpc_subnets=shared.job_subnets,
            security_groups=[shared.job_security_group],
            log_retention=_retention(stage.log_retention_days), log_scope=self,
        )  # fmt: skip
        features = [monitoring.model_monitor_column(i) for i in range(model_feature_count(model))]
        threshold = monitoring.model_monitor_comparison_threshold(model.drift.psi_threshold)
        for index, expression in enumerate(schedules.metric_drift_score(features)):
            alarms.add_sustained_drift(
                f"ModelMonitorDrift{index}",
                name=alarm_name(stage_name, model.name, f"drift-model-monitor-{index + 1}"),
                metric=expression, threshold=threshold, drift_windows=retrain.drift_windows,
                of_last_windows=retrain.of_last_windows,
                description=f"Model Monitor: a feature of {model.name} drifted beyond "
                f"{threshold} in {retrain.drift_windows} of the last {retrain.of_last_windows} runs",
            )  # fmt: skip
        alarms.add_quality(
            "ModelMonitorQuality", name=alarm_name(stage_name, model.name, "quality-model-monitor"),
            metric=schedules.metric_model_quality(gate.name),
            threshold=model.quality_gate.threshold, higher_is_better=gate.higher_is_better,
            description=f"Model Monitor: {gate.name} of {model.name} is worse than its gate",
        )  # fmt: skip
        runs = schedules.metric_feature_drift(features[0]).with_(statistic="SampleCount")
        alarms.add_missing_runs(
            "ModelMonitorMissingRuns",
            name=alarm_name(stage_name, model.name, "missing-runs-model-monitor"),
            metric=runs, windows=2,
            description=f"Model Monitor published no data-quality metric of {model.name} in "
            "two runs: its schedule failed or stopped",
        )  # fmt: skip
        only_if(schedules, self._approved)


def _patterns(models: tuple[ModelConfig, ...], prefix: str) -> list[str]:
    """Key patterns of the models' batch input or output files: one for every model on the
    default layout, and each configured prefix of its own."""
    default = {"batch_input": DEFAULT_BATCH_INPUT, "batch_output": DEFAULT_BATCH_OUTPUT}[prefix]
    found = {
        f"{getattr(model, f'{prefix}_prefix') or default.format(model='*')}*" for model in models
    }
    return sorted(found)


def model_feature_count(model: ModelConfig) -> int:
    """How many features the model's schema has (the columns of its requests)."""
    schema = contract.parse_schema(
        json.loads((PROJECT_ROOT / model.schema_file).read_text(encoding="utf-8")),
        model.schema_file,
    )
    return len(schema.features)

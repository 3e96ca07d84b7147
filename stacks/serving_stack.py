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

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_ssm as ssm

from constructs import Construct
from constructs.approval_deploys import ApprovalDeploys
from constructs.batch_inference import BatchInferencePipeline
from constructs.endpoint import (
    DataCapture,
    Deployment,
    ModelEndpoint,
    ServerlessConfig,
    only_if,
)
from constructs.endpoint_monitoring import EndpointMonitoring
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.sagemaker_grants import model_role
from mlops import serving_record
from mlops.config import ModelConfig, StageConfig, pascal_case
from mlops.pipeline_definition import model_prefix
from stacks.data_stack import DataStack, ReleaseWiring, _retention
from stacks.pipeline_stack import PipelineStack, nested_stack_scopes


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
    ) -> None:
        super().__init__(scope, id, description=f"Endpoint of {model.name}")
        shared = data.resources_for(self)
        settings = stage.endpoint
        approved = cdk.CfnCondition(
            self,
            "VersionApproved",
            expression=cdk.Fn.condition_not(
                cdk.Fn.condition_equals(model_package_arn, serving_record.NO_VERSION)
            ),
        )
        on_instances = settings.serverless is None
        group = shared.model_package_group(model.name)
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

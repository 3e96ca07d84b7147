"""What every SageMaker Pipeline of the platform offers (training, batch inference): its
name and ARN, ``grant_*`` and ``metric_*`` methods, and a schedule."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk.interfaces import aws_sagemaker as sagemaker_refs

from constructs import Construct
from constructs.log_groups import dead_letter_queue
from constructs.nag import INLINE_POLICY, INLINE_POLICY_REASON, acknowledge, default_policy_resource
from constructs.service_principals import confined_service_principal

#: CloudWatch namespace of SageMaker Pipelines' execution metrics (dimension PipelineName).
METRIC_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"


@jsii.implements(sagemaker.IPipeline)
class SageMakerPipeline(cdk.Resource):
    """A SageMaker Pipeline named ``pipeline_name`` (subclasses create its resource)."""

    def __init__(self, scope: Construct, id: str, *, pipeline_name: str) -> None:
        super().__init__(scope, id, physical_name=pipeline_name)
        self._pipeline_name = pipeline_name
        self._pipeline_arn = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower()
        )

    @property
    def pipeline_name(self) -> str:
        return self._pipeline_name

    @property
    def pipeline_arn(self) -> str:
        return self._pipeline_arn

    # --- grants ---------------------------------------------------------------------------

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` start, watch and stop executions of this pipeline."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:StartPipelineExecution",
                "sagemaker:DescribePipelineExecution",
                "sagemaker:ListPipelineExecutionSteps",
                "sagemaker:StopPipelineExecution",
            ],
            resource_arns=[self.pipeline_arn, f"{self.pipeline_arn}/execution/*"],
        )

    def grant_start_pipeline_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` start executions only (what ``sagemaker.IPipeline`` asks for)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:StartPipelineExecution"],
            resource_arns=[self.pipeline_arn],
        )

    @property
    def pipeline_ref(self) -> sagemaker_refs.PipelineReference:
        return sagemaker_refs.PipelineReference(pipeline_name=self.pipeline_name)

    # --- metrics --------------------------------------------------------------------------

    def metric(
        self,
        metric_name: str,
        *,
        statistic: str = "Sum",
        period: cdk.Duration | None = None,
        **props: Any,
    ) -> cloudwatch.Metric:
        """A SageMaker Pipelines metric of this pipeline (namespace
        ``AWS/Sagemaker/ModelBuildingPipeline``, dimension ``PipelineName``); the period
        defaults to 5 minutes."""
        return cloudwatch.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"PipelineName": self.pipeline_name},
            statistic=statistic,
            period=period or cdk.Duration.minutes(5),
            **props,
        )

    def metric_executions_started(self, **props: Any) -> cloudwatch.Metric:
        """Executions started (Sum)."""
        return self.metric("ExecutionStarted", **props)

    def metric_executions_failed(self, **props: Any) -> cloudwatch.Metric:
        """Executions that failed, the quality gate's QualityFailed included (Sum)."""
        return self.metric("ExecutionFailed", **props)

    def metric_executions_succeeded(self, **props: Any) -> cloudwatch.Metric:
        """Executions that succeeded (Sum)."""
        return self.metric("ExecutionSucceeded", **props)

    def metric_executions_stopped(self, **props: Any) -> cloudwatch.Metric:
        """Executions stopped by a person or a retry policy (Sum)."""
        return self.metric("ExecutionStopped", **props)

    def metric_execution_duration(self, **props: Any) -> cloudwatch.Metric:
        """How long executions took, in milliseconds (Average)."""
        return self.metric("ExecutionDuration", **{"statistic": "Average", **props})

    def add_schedule(self, expression: scheduler.ScheduleExpression, key: kms.IKey) -> None:
        # Starts that fail after the retries land here instead of vanishing.
        # (cdk-nag cannot see the Scheduler's DeadLetterConfig.)
        self.schedule_dead_letters = dead_letter_queue(
            self, "ScheduleDeadLetters", encryption_key=key, of="the pipeline's schedule"
        )
        role = iam.Role(
            self,
            "ScheduleRole",
            # Only schedules of this account's default group may assume it.
            assumed_by=confined_service_principal(
                self,
                "scheduler.amazonaws.com",
                arn_service="scheduler",
                resource="schedule-group/default",
            ),
            description=f"Lets EventBridge Scheduler start {self.pipeline_name}",
        )
        scheduler.Schedule(
            self,
            "Schedule",
            description=f"Starts {self.pipeline_name}",
            schedule=expression,
            target=scheduler_targets.SageMakerStartPipelineExecution(
                self,
                role=role,
                max_event_age=cdk.Duration.hours(1),
                retry_attempts=3,
                dead_letter_queue=self.schedule_dead_letters,
            ),
        )
        # The dead-letter queue is encrypted with the key: sending needs a data key.
        key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        acknowledge(default_policy_resource(role), INLINE_POLICY, INLINE_POLICY_REASON)

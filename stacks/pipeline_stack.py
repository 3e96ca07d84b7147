"""The stateless training stack: one SageMaker Pipeline per model, rebuilt at will.

Each model's pipeline lives in a nested stack of its own, so that a stage's models are
not bounded by one template's 1 MB and 500 resources: the parent holds one
``AWS::CloudFormation::Stack`` per model. A model keeps its nested stack (and its logical
ID) when others are added or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_scheduler as scheduler

from constructs import Construct
from constructs.training_pipeline import TrainingPipeline
from mlops import data_wrangler, serving_record
from mlops.config import ModelConfig, StageConfig, pascal_case
from stacks.data_stack import PROJECT_ROOT, DataStack


class PipelineStack(cdk.Stack):
    """Training pipelines of one stage, wired to the stage's DataStack.

    Attributes:
        pipelines: one :class:`TrainingPipeline` per configured model, by model name.
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
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id,
            description=f"SageMaker MLOps platform ({stage_name}): training pipelines",
            **kwargs,
        )
        # Values come from the data stack's handoff (SSM), read at deployment: deploy after.
        self.add_stack_dependency(data)
        self.pipelines: dict[str, TrainingPipeline] = {}
        self._nested: dict[str, ModelTrainingStack] = {}
        for model in models:
            nested = ModelTrainingStack(
                self,
                f"{pascal_case(model.name)}Training",
                pipeline_name=serving_record.training_pipeline_name(stage_name, model.name),
                model=model,
                stage=stage,
                data=data,
            )
            self.pipelines[model.name] = nested.pipeline
            self._nested[model.name] = nested

    def model_scopes(self) -> dict[str, list[Construct]]:
        """What each model adds to this template: its nested stack's resource."""
        return nested_stack_scopes(self._nested)


def nested_stack_scopes(nested: Mapping[str, cdk.NestedStack]) -> dict[str, list[Construct]]:
    """Each model's nested stack resource in its parent's template, by model name."""
    return {
        name: [n.nested_stack_resource] for name, n in nested.items() if n.nested_stack_resource
    }


class ModelTrainingStack(cdk.NestedStack):
    """One model's training pipeline, as a nested stack of the :class:`PipelineStack`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        model: ModelConfig,
        stage: StageConfig,
        data: DataStack,
    ) -> None:
        super().__init__(scope, id, description=f"Training pipeline of {model.name}")
        shared = data.resources_for(self)
        settings = stage.pipeline
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            model_name=model.name,
            problem_type=model.problem_type,
            schema_file=model.schema_file,
            hyperparameters=model.hyperparameters,
            quality_metric=model.quality_gate.metric,
            quality_threshold=model.quality_gate.threshold,
            drift_psi_threshold=model.drift.psi_threshold,
            raw_data_bucket=shared.raw_data_bucket,
            raw_data_prefix=model.data_prefix,
            artifacts_bucket=shared.artifacts_bucket,
            encryption_key=shared.data_key,
            model_package_group=shared.model_package_group(model.name),
            vpc=shared.vpc,
            vpc_subnets=shared.job_subnets,
            security_groups=[shared.job_security_group],
            processing_instance_type=settings.processing_instance_type,
            processing_instance_count=settings.processing_instance_count,
            training_instance_type=settings.training_instance_type,
            training_instance_count=settings.training_instance_count,
            max_runtime=cdk.Duration.seconds(settings.max_runtime_seconds),
            use_spot_training=settings.use_spot_training,
            max_wait=(
                cdk.Duration.seconds(settings.max_wait_seconds)
                if settings.max_wait_seconds
                else None
            ),
            xgboost_version=model.algorithm.version,
            mlflow_app=shared.mlflow_app,
            feature_group=shared.feature_group(
                model.name, with_offline_store=model.training_data == "offlineStore"
            ),
            ingestion_security_groups=(
                [shared.ingestion_security_group] if shared.ingestion_security_group else []
            ),
            offline_store_workgroup=(
                shared.offline_store_workgroup if model.training_data == "offlineStore" else None
            ),
            # Checked with the config (mlops/config.py); read again here for its wiring.
            data_wrangler_flow=(
                data_wrangler.load_flow(PROJECT_ROOT / model.data_wrangler_flow)
                if model.data_wrangler_flow
                else None
            ),
            schedule=(
                scheduler.ScheduleExpression.expression(settings.schedule_expression, None)
                if settings.schedule_expression
                else None
            ),
        )
        cdk.CfnOutput(
            self,
            "PipelineName",
            value=self.pipeline.pipeline_name,
            description=(
                "Start with: aws sagemaker start-pipeline-execution --pipeline-name "
                f"{self.pipeline.pipeline_name}"
            ),
        )

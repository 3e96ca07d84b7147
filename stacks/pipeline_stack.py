"""The stateless training stack: one SageMaker Pipeline per model, rebuilt at will."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.training_pipeline import TrainingPipeline
from mlops.config import ModelConfig, StageConfig, pascal_case
from stacks.data_stack import DataStack


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
        raw_data = s3.Bucket.from_bucket_attributes(
            self,
            "RawDataBucket",
            bucket_arn=cdk.Fn.import_value(data.raw_data_bucket_arn_export),
            encryption_key=data.data_key,
        )
        artifacts = s3.Bucket.from_bucket_attributes(
            self,
            "ArtifactsBucket",
            bucket_arn=cdk.Fn.import_value(data.artifacts_bucket_arn_export),
            encryption_key=data.data_key,
        )
        mlflow_app_arn = (
            cdk.Fn.import_value(data.mlflow_app_arn_export) if data.mlflow_app_arn_export else None
        )
        self.pipelines: dict[str, TrainingPipeline] = {}
        for model in models:
            pipeline = TrainingPipeline(
                self,
                f"{pascal_case(model.name)}TrainingPipeline",
                pipeline_name=f"{stage_name}-{model.name}-training",
                model=model,
                settings=stage.pipeline,
                raw_data_bucket=raw_data,
                artifacts_bucket=artifacts,
                encryption_key=data.data_key,
                model_package_group=data.model_package_groups[model.name],
                vpc_subnets=list(data.network.subnets.subnets),
                security_groups=[data.network.job_security_group],
                mlflow_app_arn=mlflow_app_arn,
            )
            self.pipelines[model.name] = pipeline
            cdk.CfnOutput(
                self,
                f"{pascal_case(model.name)}PipelineName",
                value=pipeline.pipeline_name,
                description=f"Start with: aws sagemaker start-pipeline-execution --pipeline-name {pipeline.pipeline_name}",
            )

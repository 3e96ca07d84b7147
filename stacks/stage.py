"""One deployment environment of the platform, as a CDK Stage."""

from __future__ import annotations

import aws_cdk as cdk

from constructs import Construct
from constructs.template_budget import TemplateBudget
from mlops import serving_record
from mlops.config import PlatformConfig
from stacks.data_stack import DataStack, ReleaseWiring
from stacks.pipeline_stack import PipelineStack
from stacks.serving_stack import ServingStack
from stacks.studio_stack import StudioStack


class MlopsStage(cdk.Stage):
    """All stacks of one stage (``dev``, ``staging``, ``prod``...), in its account and region.

    Attributes:
        data: the stateful stack (keys, network, buckets, model registry, MLflow).
        training: the training pipelines (stateless).
        serving: the endpoints (stateless).
        studio: the Studio domain with Canvas, or None (``studio.enabled``; default dev).
    """

    def __init__(self, scope: Construct, stage_name: str, *, config: PlatformConfig) -> None:
        stage = config.stages[stage_name]
        super().__init__(
            scope, stage_name, env=cdk.Environment(account=stage.account, region=stage.region)
        )
        models = config.models
        release = _release_wiring(config, stage_name)
        self.data = DataStack(
            self, "Data", stage_name=stage_name, stage=stage, models=models,
            feature_groups=config.feature_groups, release=release,
        )  # fmt: skip
        self.training = PipelineStack(
            self, "Training", stage_name=stage_name, stage=stage, models=models, data=self.data
        )
        self.serving = ServingStack(
            self, "Serving", stack_name=serving_record.serving_stack_name(stage_name),
            stage_name=stage_name, stage=stage, models=models, data=self.data,
            training=self.training, release=release,
        )  # fmt: skip
        self.studio: StudioStack | None = None
        stacks: list[DataStack | PipelineStack | ServingStack | StudioStack] = [
            self.data, self.training, self.serving
        ]  # fmt: skip
        if stage.studio.is_enabled(stage_name):
            self.studio = StudioStack(
                self, "Studio", stage_name=stage_name, stage=stage, data=self.data
            )
            stacks.append(self.studio)
        for stack in stacks:
            stack.node.add_validation(TemplateBudget(stack, stack.model_scopes))
        for key, value in sorted(stage.tags.items()):
            cdk.Tags.of(self).add(key, value)


def _release_wiring(config: PlatformConfig, stage_name: str) -> ReleaseWiring | None:
    """How ``stage_name`` meets the release pipeline; None when no release deploys it."""
    release = config.release
    if release is None or stage_name not in release.stages:
        return None
    source = release.promotions.get(stage_name)
    return ReleaseWiring(
        account=release.account,
        region=release.region,
        promoted_from_account=(config.stages[source].account or release.account)
        if source
        else None,
        promoted=source is not None,
    )

"""Shared fixtures: the default app synthesized once, and a helper to synth variants."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_helpers import make_app

import app as platform_app


@pytest.fixture(scope="session")
def default_stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, platform_app.MlopsStage]:
    """Every stage of the default config, built and synthesized once (cdk-nag included)."""
    app = make_app(outdir=tmp_path_factory.mktemp("cdk.out"))
    stages = platform_app.build(app)
    platform_app.synth(app, stages)
    return stages


@pytest.fixture(scope="session")
def templates(default_stages: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"<stage>/<stack>": template}`` for every stack of the default app."""
    result = {}
    for stage_name, stage in default_stages.items():
        for stack in stage.node.children:
            if isinstance(stack, cdk.Stack):
                result[f"{stage_name}/{stack.node.id}"] = cdk.assertions.Template.from_stack(
                    stack
                ).to_json()
    return result


@pytest.fixture
def synth() -> Iterator[Callable[..., dict[str, Any]]]:
    """Builds and synthesizes an app from an edited config; returns its stages."""

    def run(mlops: dict[str, Any], outdir: Path | None = None) -> dict[str, Any]:
        app = make_app(mlops, outdir)
        stages = platform_app.build(app)
        platform_app.synth(app, stages)
        return stages

    yield run

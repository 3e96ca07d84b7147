"""Shared fixtures: the default app synthesized once, and a helper to synth variants."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_helpers import all_templates, make_app

import app as platform_app


@pytest.fixture(scope="session")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> cdk.App:
    """The default app (every stage of cdk.json, cdk-nag included), synthesized once."""
    app = make_app(outdir=tmp_path_factory.mktemp("cdk.out"))
    platform_app.build(app)
    app.synth()
    return app


@pytest.fixture(scope="session")
def default_stages(default_app: cdk.App) -> dict[str, Any]:
    """The default app's stages, by name."""
    return {
        stage.node.id: stage for stage in default_app.node.children if isinstance(stage, cdk.Stage)
    }


@pytest.fixture(scope="session")
def templates(default_stages: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"<stage>/<stack path>": template}`` for every stack, nested ones included
    (``dev/Training/BreastCancerTraining``)."""
    return all_templates(default_stages.values())


@pytest.fixture
def synth() -> Iterator[Callable[..., dict[str, Any]]]:
    """Builds and synthesizes an app from an edited config; returns its stages."""

    def run(mlops: dict[str, Any], outdir: Path | None = None) -> dict[str, Any]:
        app = make_app(mlops, outdir)
        stages = platform_app.build(app)
        app.synth()
        return stages

    yield run

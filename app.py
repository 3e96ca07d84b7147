#!/usr/bin/env python3
"""The CDK app: reads the ``mlops`` context, builds one Stage per environment, adds cdk-nag."""

from __future__ import annotations

from mlops import definition_builds

if __name__ == "__main__":
    # `cdk synth` runs this file. Fork the pipeline-definition build worker before CDK
    # loads (forking is safe only now): it imports the SageMaker SDK on the other core.
    definition_builds.start()

# The imports below come after that on purpose (ruff E402 is off for this file).
import gc
import sys
from pathlib import Path

import aws_cdk as cdk
import cdk_nag

from constructs.template_budget import CloudFormationLimits
from mlops.config import ConfigError, PlatformConfig, load_config
from stacks.stage import MlopsStage

PROJECT_ROOT = Path(__file__).resolve().parent
FAIL_ON_FINDINGS = "@aws-cdk/core:failSynthOnValidationErrors"


def selected_stages(app: cdk.App, config: PlatformConfig) -> tuple[str, ...]:
    """The stages to build: ``-c stages=dev,prod`` if given, else the config's defaultStages."""
    requested = app.node.try_get_context("stages")
    if requested is None:
        return config.default_stages
    names = tuple(n.strip() for n in str(requested).split(",") if n.strip())
    unknown = [n for n in names if n not in config.stages]
    if unknown or not names:
        raise ConfigError(
            [
                f"stages (from -c stages=...): got {requested!r}; defined stages are "
                f"{sorted(config.stages)}. Fix: pass a comma-separated list of those"
            ]
        )
    return names


def release_requested(app: cdk.App) -> bool:
    """``-c release=true``: build the release pipeline (and every stage it releases)."""
    return str(app.node.try_get_context("release")).lower() == "true"


def build(app: cdk.App, *, project_root: Path = PROJECT_ROOT) -> dict[str, MlopsStage]:
    """Adds every selected stage to ``app`` (with ``-c release=true``, every released stage
    and the release pipeline) and registers the validation plugins on it.

    Raises:
        ConfigError: before any construct is built, if the configuration has problems.
    """
    config = load_config(app.node.try_get_context("mlops"), project_root=project_root)
    release = release_requested(app)
    if release and config.release is None:
        raise ConfigError(
            [
                "release: missing, but -c release=true asks for the release pipeline. Fix: add "
                "a release section to cdk.json (docs/deploy/release.md)"
            ]
        )
    names = config.release.stages if release and config.release else selected_stages(app, config)
    stages = {name: MlopsStage(app, name, config=config) for name in names}
    if release:
        from stacks.release_stack import ReleaseStack

        ReleaseStack(app, "Release", config=config, stages=stages, project_root=project_root)
    # AwsSolutions for general hygiene; NIST 800-53 R5 adds the SageMaker KMS checks
    # (endpoint configs, notebooks) that AwsSolutions lacks; CloudFormation's size limits.
    cdk.Validations.of(app).add_plugins(
        cdk_nag.AwsSolutionsChecks(), cdk_nag.NIST80053R5Checks(), CloudFormationLimits()
    )
    return stages


def main() -> None:
    # One short-lived process: cyclic garbage is not worth collecting (measured: ~0.4 s
    # saved during the build, ~0.6 s at exit; peak memory the same).
    gc.disable()
    # The CDK CLI asks apps not to fail on validation findings; the platform's gate is that
    # an unacknowledged cdk-nag finding fails `cdk synth` (and so `make synth` and CI).
    app = cdk.App(post_cli_context={FAIL_ON_FINDINGS: True})
    try:
        build(app)
        app.synth()
    except (ConfigError, RuntimeError) as error:  # CDK's own errors arrive through jsii
        definition_builds.stop()
        print(
            error if isinstance(error, ConfigError) else f"synth failed: {error}", file=sys.stderr
        )
        sys.exit(2)
    gc.freeze()  # nothing left to collect: skip the interpreter's final collection


if __name__ == "__main__":
    main()

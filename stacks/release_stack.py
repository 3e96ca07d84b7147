"""The release pipeline: a self-mutating CDK Pipelines release of every stage, in waves.

Built only when the app is asked for it (``cdk synth -c release=true``); the stages it
deploys are the app's own ``MlopsStage`` objects, so a stage deployed by the release is the
stage ``cdk deploy`` deploys from a workstation, with the same stack names.

Each run: the source (a CodeConnections repository or an S3 object), ``make test`` then
``make synth`` in CodeBuild with the README's Python and Node.js, the pipeline updating itself,
the assets, then the waves in the configured order. A stage named in ``approvalBefore`` waits
for a person; in a stage served by promotion (``promotions``), between its data and serving
stacks, ``mlops promote`` copies in the versions its source stage's smoke test passed in the
same run (ADR 0004); every stage is followed by its endpoints' smoke test
(``mlops release-smoke-test``). A changed version record in any stage starts a run (the
stage's approval handler sends ``RECORD_CHANGED`` to this account's default event bus).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines

from constructs import Construct
from constructs.release_nag import acknowledge_release_findings
from mlops import serving_record
from mlops.config import PlatformConfig, ReleaseConfig
from stacks.stage import MlopsStage

#: The CodeBuild image and the runtimes it installs: the README's Python 3.11+ and a
#: Node.js the Makefile accepts as it is (22+); the CDK CLI comes from package-lock.json.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIMES = {"python": "3.11", "nodejs": "22"}
#: The synth step: the README's two commands, the release app's templates into cdk.out.
SYNTH_COMMANDS = ("make test", "make synth SYNTH_ARGS='-c release=true'")


#: Where a smoke test writes the versions it tested, and a promotion reads them.
TESTED_DIR = "tested"


def tested_file(stage: str) -> str:
    return f"{stage}.json"


def cli_version(project_root: Path) -> str:
    """The CDK CLI version pinned in package.json (the pipeline's self-mutation uses it)."""
    pinned = json.loads((project_root / "package.json").read_text())["devDependencies"]
    return str(pinned["aws-cdk"])


class ReleaseStack(cdk.Stack):
    """The release pipeline of ``stages``, in the tooling account and region of ``release``.

    Attributes:
        pipeline: the CDK Pipelines pipeline (built: ``pipeline.pipeline`` is the CodePipeline).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PlatformConfig,
        stages: Mapping[str, MlopsStage],
        project_root: Path,
        **kwargs: Any,
    ) -> None:
        release = config.release
        assert release is not None
        super().__init__(
            scope, id, stack_name=serving_record.RELEASE_STACK_NAME,
            env=cdk.Environment(account=release.account, region=release.region),
            description="SageMaker MLOps platform: the release pipeline", **kwargs,
        )  # fmt: skip
        self._release = release
        self._config = config
        source = self._source(release)
        build = pipelines.CodeBuildOptions(
            build_environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.MEDIUM
            ),
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": RUNTIMES}}}
            ),
            timeout=cdk.Duration.minutes(90),
        )
        synth = pipelines.CodeBuildStep(
            "Synth",
            input=source,
            commands=list(SYNTH_COMMANDS),
            env={"CI": "true"},
            primary_output_directory="cdk.out",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            synth=synth,
            pipeline_type=codepipeline.PipelineType.V2,
            # A second change waits for the running release instead of racing it.
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            cross_account_keys=True,
            enable_key_rotation=True,
            self_mutation=True,
            cli_version=cli_version(project_root),
            publish_assets_in_parallel=False,
            code_build_defaults=build,
        )
        self._smoke_tests: dict[str, pipelines.CodeBuildStep] = {}
        for number, wave_stages in enumerate(release.waves, start=1):
            wave = self.pipeline.add_wave(f"Wave{number}")
            for name in wave_stages:
                self._smoke_tests[name] = self._smoke_test(name, source)
                wave.add_stage(
                    stages[name],
                    pre=self._approval(name),
                    post=[self._smoke_tests[name]],
                    stack_steps=self._promotion(name, stages[name], source),
                )
        self.pipeline.build_pipeline()
        # CDK lists the pipeline's role in DependsOn and references it with GetAtt.
        self.pipeline.pipeline.node.default_child.add_metadata(  # type: ignore[union-attr]
            "cfn-lint", {"config": {"ignore_checks": ["W3005"]}}
        )
        self._start_on_record_changes(release)
        acknowledge_release_findings(self)

    # ------------------------------------------------------------------ pieces

    def _source(self, release: ReleaseConfig) -> pipelines.CodePipelineSource:
        source = release.source
        if source.kind == "connection":
            assert source.connection_arn is not None and source.repository is not None
            return pipelines.CodePipelineSource.connection(
                source.repository, source.branch, connection_arn=source.connection_arn
            )
        assert source.bucket is not None and source.object_key is not None
        bucket = s3.Bucket.from_bucket_name(self, "SourceBucket", source.bucket)
        return pipelines.CodePipelineSource.s3(bucket, source.object_key)

    def stage_account(self, stage: str) -> str:
        """The stage's account: its own, else the release's (this stack's)."""
        return self._config.stages[stage].account or self.account

    def release_role_arn(self, stage: str) -> str:
        return self.format_arn(
            service="iam", region="", account=self.stage_account(stage),
            resource="role", resource_name=serving_record.release_role_name(stage),
        )  # fmt: skip

    def _assume(self, *stage_names: str) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            resources=[self.release_role_arn(s) for s in stage_names],
        )

    def _approval(self, name: str) -> list[pipelines.Step]:
        if name not in self._release.approvals:
            return []
        return [
            pipelines.ManualApprovalStep(
                f"Approve-{name}",
                comment=f"Deploy {name}? The earlier waves deployed and passed their smoke tests.",
            )
        ]

    def _promotion(
        self, name: str, stage: MlopsStage, source: pipelines.IFileSetProducer
    ) -> list[pipelines.StackSteps]:
        """In a promoted stage: after its data stack (the records, the release role), before
        its serving stack, the versions its source stage passed its smoke test with in this
        run (that step's output) are copied in and recorded."""
        promoted_from = self._release.promotions.get(name)
        if promoted_from is None:
            return []
        promote = pipelines.CodeBuildStep(
            f"Promote-{promoted_from}-to-{name}",
            input=source,
            additional_inputs={TESTED_DIR: self._smoke_tests[promoted_from]},
            commands=[
                "make deps",
                f".venv/bin/mlops promote --source-stage {promoted_from} --target-stage {name} "
                f"--tested {TESTED_DIR}/{tested_file(promoted_from)}",
            ],
            role_policy_statements=[self._assume(promoted_from, name)],
        )
        return [pipelines.StackSteps(stack=stage.serving, pre=[promote])]

    def _smoke_test(self, name: str, source: pipelines.IFileSetProducer) -> pipelines.CodeBuildStep:
        """The stage's smoke test; its output is the versions it tested (a promotion from
        this stage copies exactly those)."""
        return pipelines.CodeBuildStep(
            f"SmokeTest-{name}",
            input=source,
            commands=[
                "make deps steps-venv",
                f".venv/bin/mlops release-smoke-test --stage {name} "
                f"--tested-file {TESTED_DIR}/{tested_file(name)}",
            ],
            primary_output_directory=TESTED_DIR,
            role_policy_statements=[self._assume(name)],
        )

    def _start_on_record_changes(self, release: ReleaseConfig) -> None:
        """A changed version record in any stage starts a release run."""
        accounts = sorted({self.stage_account(s) for s in release.stages})
        others = [a for a in accounts if not cdk.Token.is_unresolved(a) and a != self.account]
        for account in others:
            # The stages' approval handlers send their event to this account's default bus.
            events.CfnEventBusPolicy(
                self, f"AcceptRecordChanges{account}",
                statement_id=f"mlops-record-changes-{account}", event_bus_name="default",
                statement={
                    "Effect": "Allow", "Principal": {"AWS": f"arn:{self.partition}:iam::{account}:root"},
                    "Action": "events:PutEvents",
                    "Resource": f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default",
                    "Condition": {"StringEquals": {"events:source": [serving_record.RELEASE_EVENT_SOURCE]}},
                },
            )  # fmt: skip
        events.Rule(
            self,
            "StartOnRecordChange",
            description="A stage's version record changed (a model version approved or "
            "rejected): release",
            event_pattern=events.EventPattern(
                source=[serving_record.RELEASE_EVENT_SOURCE],
                detail_type=[serving_record.RECORD_CHANGED],
                account=accounts,
            ),
            targets=[targets.CodePipeline(self.pipeline.pipeline)],
        )

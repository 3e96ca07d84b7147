"""The version record: which model package version a stage serves for a model.

One SSM parameter per stage and model, ``/mlops/<stage>/serving/<model>/model-package-arn``,
holding a model package ARN or ``none`` (nothing approved yet). The data stack creates it
(``none``) and never writes it again; the serving stack reads it at every deployment
(an SSM-typed CloudFormation parameter, which the CDK CLI always re-resolves) and serves
that version, or, while it says ``none``, deploys everything else and says so.

This module writes it: ``mlops serve`` records an approved version (the latest by
default), ``mlops rollback`` the approved version before the one recorded; both then
deploy the stage's serving stack (``--no-deploy`` leaves that to you). Only approved
versions of the stage's own model package group may be recorded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_steps.steplib.contract import REGISTERED_APPROVAL_STATUS

#: The handoff namespace of a stage, and the record's key in it.
NAMESPACE = "/mlops/{stage}"
RECORD_KEY = "serving/{model}/model-package-arn"
#: The handoff key of the artifacts bucket's ARN (the data stack publishes it).
ARTIFACTS_BUCKET_KEY = "data/artifacts-bucket-arn"
#: What a record holds while no version is approved (the data stack's initial value).
NO_VERSION = "none"
APPROVED = "Approved"
REJECTED = "Rejected"
#: What a version is registered as (the contract's), until someone approves it.
PENDING = REGISTERED_APPROVAL_STATUS

# --- the release pipeline (docs/adr/0004-promotion-between-stages.md) ------------------
#: The event the approval handler sends to the release account's default event bus after
#: it changed a record; the release stack's rule on it starts the release.
RELEASE_EVENT_SOURCE = "mlops.release"
RECORD_CHANGED = "Version Record Changed"
#: The metadata key (CustomerMetadataProperties) of a version promoted into a stage: the
#: ARN of the version it was copied from.
PROMOTED_FROM_KEY = "promoted_from"


#: The release stack's name; its roles' names start with it (the stages' release roles
#: trust only those).
RELEASE_STACK_NAME = "mlops-release"


def release_role_name(stage: str) -> str:
    """The role each stage gives the release pipeline (smoke tests and promotion)."""
    return f"mlops-{stage}-release"


def handoff_name(stage: str, key: str) -> str:
    """The SSM parameter name of handoff ``key`` of ``stage`` (``data/artifacts-bucket-arn``)."""
    return f"{NAMESPACE.format(stage=stage)}/{key}"


def record_name(stage: str, model: str) -> str:
    """The SSM parameter name of ``model``'s version record in ``stage``."""
    return f"{NAMESPACE.format(stage=stage)}/{RECORD_KEY.format(model=model)}"


def recommender_role_parameter(stage: str) -> str:
    """The SSM parameter holding the ARN of the stage's Inference Recommender role."""
    return f"{NAMESPACE.format(stage=stage)}/serving/recommender-role-arn"


#: How a training pipeline's name ends (``<stage>-<model>-training``).
TRAINING_PIPELINE_SUFFIX = "-training"


def training_pipeline_name(stage: str, model: str) -> str:
    """The pipeline that trains ``model`` in ``stage`` (``{model}`` or ``*`` make a template
    or a pattern of the stage's)."""
    return f"{stage}-{model}{TRAINING_PIPELINE_SUFFIX}"


def monitoring_pipeline_name(stage: str) -> str:
    """The pipeline of ``stage``'s drift and quality checks."""
    return f"{stage}-monitoring"


def endpoint_name(stage: str, model: str) -> str:
    """The endpoint serving ``model`` in ``stage``."""
    return f"{stage}-{model}"


def serving_stack_name(stage: str) -> str:
    """The CloudFormation stack of the stage's endpoints."""
    return f"{stage}-Serving"


def served_output_key(model: str) -> str:
    """The serving stack's output that says what ``model``'s endpoint was deployed with:
    a model package ARN, or a sentence while nothing is approved."""
    from mlops.config import pascal_case

    return f"{pascal_case(model)}RecordServes"


def group_prefix(stage: str) -> str:
    """What the names of the stage's model package groups start with."""
    return f"{stage}-"


def model_package_group_name(stage: str, model: str) -> str:
    """The stage's model package group of ``model`` (as the data stack names it)."""
    return f"{group_prefix(stage)}{model}"


class ServingError(RuntimeError):
    """A version cannot be recorded (named, with the fix)."""


@dataclass(frozen=True)
class Version:
    arn: str
    number: int


def approved_versions(sagemaker: Any, group: str) -> list[Version]:
    """Approved versions of ``group``, oldest first."""
    found = []
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, ModelApprovalStatus=APPROVED):
        for summary in page["ModelPackageSummaryList"]:
            found.append(Version(summary["ModelPackageArn"], int(summary["ModelPackageVersion"])))
    return sorted(found, key=lambda v: v.number)


def current(ssm: Any, name: str) -> str:
    """What the record holds (``ServingError`` when it does not exist)."""
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        raise ServingError(
            f"{name} does not exist: the stage's data stack creates it. Fix: deploy the data "
            "stack of the stage first (npx cdk deploy <stage>/Data)"
        ) from None


def choose(
    versions: list[Version], *, recorded: str, version: int | None, rollback: bool
) -> Version:
    """The version to record: ``version``, the latest (default), or, with ``rollback``,
    the approved version before ``recorded``."""
    if not versions:
        raise ServingError(
            "no approved version. Fix: approve one (aws sagemaker update-model-package "
            "--model-package-arn <arn> --model-approval-status Approved)"
        )
    if version is not None:
        chosen = [v for v in versions if v.number == version]
        if not chosen:
            raise ServingError(
                f"version {version} is not approved (approved: {[v.number for v in versions]})"
            )
        return chosen[0]
    if not rollback:
        return versions[-1]
    served = [v for v in versions if v.arn == recorded]
    if not served:
        raise ServingError(
            f"the recorded version ({recorded}) is not an approved version of the group; "
            "nothing to roll back from. Fix: serve a version with --version N"
        )
    earlier = [v for v in versions if v.number < served[0].number]
    if not earlier:
        raise ServingError(
            f"version {served[0].number} is the oldest approved version: there is none to "
            "roll back to"
        )
    return earlier[-1]


def record(
    ssm: Any,
    sagemaker: Any,
    *,
    stage: str,
    model: str,
    version: int | None = None,
    rollback: bool = False,
) -> tuple[str, Version]:
    """Writes the chosen version into the record; returns (what it held, the version)."""
    name = record_name(stage, model)
    recorded = current(ssm, name)
    versions = approved_versions(sagemaker, model_package_group_name(stage, model))
    chosen = choose(versions, recorded=recorded, version=version, rollback=rollback)
    ssm.put_parameter(Name=name, Value=chosen.arn, Type="String", Overwrite=True)
    return recorded, chosen


def deploy_command(stage: str) -> list[str]:
    """Deploys the stage's serving stack (it re-reads every version record)."""
    return [
        "npx",
        "cdk",
        "deploy",
        f"{stage}/Serving",
        "--exclusively",
        "--require-approval",
        "never",
    ]


def add_arguments(parser: argparse.ArgumentParser, *, rollback: bool) -> None:
    parser.add_argument("--stage", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--region", help="default: the AWS CLI's (AWS_REGION)")
    if not rollback:
        parser.add_argument("--version", type=int, help="default: the latest approved")
    parser.add_argument("--no-deploy", action="store_true", help="only write the record")
    parser.set_defaults(run=lambda args: run(args, rollback=rollback))


def run(
    args: argparse.Namespace,
    *,
    rollback: bool,
    clients: Callable[[str, str | None], Any] | None = None,
    deploy: Callable[[list[str]], int] | None = None,
) -> int:
    """``mlops serve`` / ``mlops rollback``: record, then deploy. Exit status 0 on success,
    2 when nothing could be recorded, the deploy's status otherwise."""
    if clients is None:
        import boto3

        def clients(service: str, region: str | None) -> Any:
            return boto3.client(service, region_name=region)

    region = getattr(args, "region", None)
    root = getattr(args, "project_root", None)
    if root is not None:  # the command line: the names and the region come from cdk.json
        from mlops.recommend import RecommendError, read_config, select

        try:
            _, stage = select(read_config(Path(root)), args.model, args.stage)
        except RecommendError as error:
            print(f"mlops serve: {error}", file=sys.stderr)
            return 2
        region = region or stage.region
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        before, chosen = record(
            clients("ssm", region), clients("sagemaker", region), stage=args.stage,
            model=args.model, version=getattr(args, "version", None), rollback=rollback,
        )  # fmt: skip
    except ServingError as error:
        print(f"{args.stage}/{args.model}: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(
            f"{args.stage}/{args.model}: AWS refused or could not be reached ({error}). Fix: "
            "credentials for the stage's account (aws sts get-caller-identity), --region",
            file=sys.stderr,
        )
        return 1
    print(
        f"{record_name(args.stage, args.model)}: {before} -> {chosen.arn} (version {chosen.number})"
    )
    command = deploy_command(args.stage)
    if args.no_deploy:
        print("Deploy with: " + " ".join(command))
        return 0
    status = (deploy or (lambda c: _run(c, cwd=root)))(command)
    if status != 0:
        print(
            f"the deploy failed (exit {status}): the record says version {chosen.number}, the "
            f"endpoint still serves {before}. Deploy again, or restore the record with: mlops "
            f"serve --stage {args.stage} --model {args.model} --version <the one served>",
            file=sys.stderr,
        )
    return status


def _run(command: Sequence[str], *, cwd: str | None) -> int:
    """Runs the deploy in the project (where cdk.json is)."""
    return subprocess.run(list(command), check=False, cwd=cwd).returncode

"""The release pipeline's commands: smoke tests of a stage and promotion between stages.

The release pipeline (CodePipeline in the tooling account) deploys the stages in waves. Its
CodeBuild job has the project checked out and the tooling account's credentials only; in
each stage's account it assumes the stage's release role (``mlops-<stage>-release``, in the
stage's account: ``stages.<stage>.account``, else ``release.account``, else the caller's).

``mlops release-smoke-test --stage S``
    Runs ``mlops smoke-test``'s test of every model S's serving stack was deployed with
    (its outputs), as S's release role; a model with no approved version is skipped (and
    passes). ``--tested-file F`` writes the versions that passed to F (JSON), for the
    promotion later in the same release run. Exit 0 when every served
    model passed, 1 when one failed or AWS refused a call, 2 for a mistake in the command
    or config or a missing prerequisite.

``mlops promote --source-stage staging --target-stage prod``
    Makes the target serve the version the source's smoke test passed in this release run
    (``--tested F``; without it, what the source's records say): for each model, copies
    the version's S3 artifacts into the target's artifacts bucket (same keys), registers a
    copy of it in the target's group (metadata ``promoted_from`` = the source version's
    ARN), records it as the target's served version, then approves it. A version promoted
    before is left alone (the target's own approvals decide from then on). Everything is
    checked for every model before anything is written. Exit 0 done (or nothing to do),
    1 AWS refused a call, 2 refused (the source version is not approved, refers to S3
    objects outside the source's artifacts bucket, ...).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import serving_record
from mlops.serving_record import (
    APPROVED,
    ARTIFACTS_BUCKET_KEY,
    NO_VERSION,
    PENDING,
    PROMOTED_FROM_KEY,
    handoff_name,
    model_package_group_name,
    record_name,
    release_role_name,
)
from pipeline_steps.steplib import monitoring

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXIT_FAILED = 1
EXIT_USAGE = 2

#: The API actions each command calls with a stage's release role (its IAM policy needs
#: them; the smoke test's InvokeEndpoint is pipeline_steps/smoke_test.py's).
SMOKE_TEST_ACTIONS = ("cloudformation:DescribeStacks", "sagemaker:InvokeEndpoint")
SOURCE_ROLE_ACTIONS = ("ssm:GetParameter", "sagemaker:DescribeModelPackage")
TARGET_ROLE_ACTIONS = (
    "ssm:GetParameter",
    "ssm:PutParameter",
    "sagemaker:ListModelPackages",
    "sagemaker:DescribeModelPackage",
    "sagemaker:CreateModelPackage",
    "sagemaker:UpdateModelPackage",
    "s3:GetObject",  # CopyObject's source, in the source stage's artifacts bucket
    "s3:PutObject",  # CopyObject's destination, in the target stage's artifacts bucket
)
#: The IAM actions behind each call (named in error messages).
IAM_ACTIONS: dict[str, tuple[str, ...]] = {
    "AssumeRole": ("sts:AssumeRole",),
    "GetCallerIdentity": ("sts:GetCallerIdentity",),
    "GetParameter": ("ssm:GetParameter",),
    "DescribeStacks": ("cloudformation:DescribeStacks",),
    "PutParameter": ("ssm:PutParameter",),
    "DescribeModelPackage": ("sagemaker:DescribeModelPackage",),
    "ListModelPackages": ("sagemaker:ListModelPackages",),
    "CreateModelPackage": ("sagemaker:CreateModelPackage",),
    "UpdateModelPackage": ("sagemaker:UpdateModelPackage",),
    "CopyObject": ("s3:GetObject", "s3:PutObject"),
}

#: What a promotion copies of the source version (CreateModelPackage members, an
#: allow-list: everything else DescribeModelPackage answers is the source's own).
COPIED_FIELDS = (
    "ModelPackageDescription",
    "InferenceSpecification",
    "AdditionalInferenceSpecifications",
    "ModelMetrics",
    "DriftCheckBaselines",
    "Domain",
    "Task",
)
#: The fields holding S3 URIs, and the key of the URIs in them that are copied: the
#: containers' model data, and every metrics source (any object with an ``S3Uri``).
S3_FIELDS = {
    "InferenceSpecification": "ModelDataUrl",
    "AdditionalInferenceSpecifications": "ModelDataUrl",
    "ModelMetrics": "S3Uri",
    "DriftCheckBaselines": "S3Uri",
}
#: Container members describing the source's object (its ETag), not the copy.
DROPPED_CONTAINER_MEMBERS = ("ModelDataETag",)
_S3_URI = re.compile(r"s3://([^/]+)/(.+)")
_BUCKET_ARN = re.compile(r"arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
#: Variables that would make a subprocess's AWS SDK prefer other credentials.
_OTHER_CREDENTIALS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN")


class ReleaseError(Exception):
    """Refused: a mistake in the command or config, or a missing prerequisite (exit 2)."""


class AwsFailure(Exception):
    """AWS refused a call or could not be reached (exit 1); the message names the call."""


# --------------------------------------------------------------------------- roles


def partition(region: str) -> str:
    """The AWS partition of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def release_role_arn(account: str, stage: str, region: str) -> str:
    """The ARN of ``stage``'s release role in ``account`` (``region`` gives the partition)."""
    return f"arn:{partition(region)}:iam::{account}:role/{release_role_name(stage)}"


def session_name(stage: str) -> str:
    """The role session name (CloudTrail shows it): ``mlops-release-<stage>``."""
    return f"mlops-release-{stage}"[:64]


#: ``service, region, credentials -> client``; credentials as STS answers them
#: (``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``).
ClientMaker = Callable[[str, str, Mapping[str, Any]], Any]


def boto3_client(service: str, region: str, credentials: Mapping[str, Any]) -> Any:
    """The default client maker: boto3 with the temporary credentials."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    return session.client(service)


def credential_env(credentials: Mapping[str, Any], region: str) -> dict[str, str]:
    """The temporary credentials and the region as a subprocess's AWS SDK reads them."""
    return {
        "AWS_ACCESS_KEY_ID": str(credentials["AccessKeyId"]),
        "AWS_SECRET_ACCESS_KEY": str(credentials["SecretAccessKey"]),
        "AWS_SESSION_TOKEN": str(credentials["SessionToken"]),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


@dataclass(frozen=True)
class StageAccess:
    """A stage's release role, assumed: clients in the stage's region, and the same
    credentials as environment variables (for subprocesses)."""

    stage: str
    role_arn: str
    region: str
    clients: Callable[[str], Any]
    env: Mapping[str, str]


def assume_release_role(
    sts: Any, *, account: str, stage: str, region: str, make_client: ClientMaker = boto3_client
) -> StageAccess:
    """Assumes ``stage``'s release role in ``account`` with ``sts`` (the caller's client)."""
    role = release_role_arn(account, stage, region)
    credentials = sts.assume_role(RoleArn=role, RoleSessionName=session_name(stage))["Credentials"]
    made: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in made:
            made[service] = make_client(service, region, credentials)
        return made[service]

    return StageAccess(stage, role, region, clients, credential_env(credentials, region))


@dataclass
class Tooling:
    """The release account's side: its STS client, and the stages' roles assumed with it."""

    config: Any
    sts: Any
    make_client: ClientMaker = boto3_client
    _caller: str | None = field(default=None, init=False)

    def account(self, stage: str) -> str:
        """``stages.<stage>.account``, else ``release.account``, else the caller's account."""
        release = getattr(self.config, "release", None)
        account = self.config.stages[stage].account or getattr(release, "account", None)
        if account:
            return str(account)
        if self._caller is None:
            with _aws("the release account's credentials"):
                self._caller = str(self.sts.get_caller_identity()["Account"])
        return self._caller

    def assume(self, stage: str) -> StageAccess:
        region = self.config.stages[stage].region
        account = self.account(stage)
        with _aws(f"{stage}'s release role {release_role_arn(account, stage, region)}"):
            return assume_release_role(
                self.sts, account=account, stage=stage, region=region,
                make_client=self.make_client,
            )  # fmt: skip


def _fix(operation: str, acting: str) -> str:
    if operation == "AssumeRole":
        return (
            f"{acting} must exist (deploy the stage) and trust the release account; run with "
            "the release account's credentials (aws sts get-caller-identity)"
        )
    if operation == "GetCallerIdentity":
        return "credentials of the release account (aws sts get-caller-identity)"
    if operation == "CopyObject":
        return (
            f"{acting} must read the source artifacts bucket (its bucket policy and its KMS "
            "key's policy must allow the target's release role) and write the target's "
            "(s3:PutObject, and its KMS key)"
        )
    actions = " and ".join(IAM_ACTIONS.get(operation, (operation,)))
    return f"{acting} must allow {actions} (on the stage's resources); is the stage deployed?"


@contextmanager
def _aws(acting: str) -> Iterator[None]:
    """Turns botocore's errors into an :class:`AwsFailure` naming the call and the fix."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        operation = error.operation_name or "a call"
        detail = error.response.get("Error", {})
        raise AwsFailure(
            f"AWS refused {operation} as {acting} ({detail.get('Code', '?')}: "
            f"{detail.get('Message', error)}). Fix: {_fix(operation, acting)}"
        ) from None
    except BotoCoreError as error:
        raise AwsFailure(
            f"AWS could not be reached as {acting} ({error}). Fix: the release account's "
            "credentials (aws sts get-caller-identity) and network access to AWS"
        ) from None


# --------------------------------------------------------------------------- reads


def read_record(access: StageAccess, model: str) -> str:
    """What ``model``'s version record in the stage holds (an ARN or ``none``)."""
    with _aws(access.role_arn):
        try:
            return serving_record.current(access.clients("ssm"), record_name(access.stage, model))
        except serving_record.ServingError as error:
            raise ReleaseError(f"{access.stage}/{model}: {error}") from None


def artifacts_bucket(access: StageAccess) -> str:
    """The name of the stage's artifacts bucket (from the data stack's handoff parameter)."""
    name = handoff_name(access.stage, ARTIFACTS_BUCKET_KEY)
    ssm = access.clients("ssm")
    with _aws(access.role_arn):
        try:
            value = str(ssm.get_parameter(Name=name)["Parameter"]["Value"]).strip()
        except ssm.exceptions.ParameterNotFound:
            raise ReleaseError(
                f"{name} does not exist in {access.stage}'s account: the data stack publishes "
                f"it. Fix: deploy {access.stage}'s data stack"
            ) from None
    match = _BUCKET_ARN.fullmatch(value)
    if match is None:
        raise ReleaseError(f"{name}: {value!r} is not an S3 bucket ARN (arn:aws:s3:::NAME)")
    return match.group(1)


def version_number(package: Mapping[str, Any]) -> int:
    """A described version's number (its ARN's last segment when not given)."""
    number = package.get("ModelPackageVersion")
    return int(number if number is not None else str(package["ModelPackageArn"]).rsplit("/")[-1])


def deployed_versions(access: StageAccess, models: Sequence[str]) -> dict[str, str | None]:
    """What each model's endpoint was deployed with (the serving stack's outputs: a
    version's ARN, or None while nothing is approved), not what the record says by now."""
    name = serving_record.serving_stack_name(access.stage)
    with _aws(access.role_arn):
        stacks = access.clients("cloudformation").describe_stacks(StackName=name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    found: dict[str, str | None] = {}
    for model in models:
        key = serving_record.served_output_key(model)
        if key not in outputs:
            raise ReleaseError(
                f"{name} has no output {key}: the stack predates {model}. Fix: deploy it"
            )
        value = outputs[key]
        found[model] = value if value.startswith("arn:") else None
    return found


def write_tested(path: Path, versions: Mapping[str, str]) -> None:
    """The versions a smoke test passed, for the promotion of the same run (atomically)."""
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(dict(sorted(versions.items())), indent=2) + "\n")
        partial.replace(path)
    except OSError as error:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ReleaseError(
            f"--tested-file {path}: {error}. Fix: a writable path (the release writes "
            "tested/<stage>.json in the project)"
        ) from None


def read_tested(path: Path) -> dict[str, str]:
    """The versions :func:`write_tested` wrote (``ReleaseError`` when unreadable)."""
    try:
        versions = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ReleaseError(
            f"--tested {path}: {error}. Fix: pass the file the source stage's "
            "release-smoke-test --tested-file wrote in this run"
        ) from None
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("arn:")
        for k, v in versions.items()
    ):
        raise ReleaseError(f"--tested {path}: not a JSON object of model name -> version ARN")
    return versions


def promoted_before(sagemaker: Any, group: str, source_arn: str) -> dict[str, Any] | None:
    """The version of ``group`` promoted from ``source_arn``, if one is (newest first)."""
    summaries = []
    for page in sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group
    ):
        summaries.extend(page["ModelPackageSummaryList"])
    summaries.sort(key=lambda s: int(s.get("ModelPackageVersion") or 0), reverse=True)
    for summary in summaries:
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if package.get("CustomerMetadataProperties", {}).get(PROMOTED_FROM_KEY) == source_arn:
            return dict(package)
    return None


# --------------------------------------------------------------------------- the copy


@dataclass(frozen=True)
class Copy:
    """One S3 object of the source version: where the version names it, and its key."""

    field: str
    key: str


def rewrite_uris(
    value: Any, path: str, *, key: str, source_bucket: str, target_bucket: str, copies: list[Copy]
) -> Any:
    """``value`` with every URI under ``key`` moved from the source bucket to the target's
    (recorded in ``copies``); refuses any other S3 URI, and URIs outside the source bucket."""

    def moved(uri: str, where: str) -> str:
        match = _S3_URI.fullmatch(uri)
        if match is None or match.group(1) != source_bucket:
            raise ReleaseError(
                f"{where} is {uri}, outside the source stage's artifacts bucket "
                f"({source_bucket}): a promotion copies only from it. Fix: register versions "
                "whose artifacts are in the stage's artifacts bucket"
            )
        copies.append(Copy(where, match.group(2)))
        return f"s3://{target_bucket}/{match.group(2)}"

    def walk(item: Any, where: str) -> Any:
        if isinstance(item, Mapping):
            return {
                name: moved(inner, f"{where}.{name}")
                if name == key and isinstance(inner, str)
                else walk(inner, f"{where}.{name}")
                for name, inner in item.items()
            }
        if isinstance(item, list):
            return [walk(inner, f"{where}[{i}]") for i, inner in enumerate(item)]
        if isinstance(item, str) and item.strip().lower().startswith("s3://"):
            raise ReleaseError(
                f"{where} is {item}: an S3 location a promotion does not copy (it copies each "
                "container's ModelDataUrl and the metrics' S3Uri). Fix: register the version "
                "without it, or promote it by hand"
            )
        return item

    return walk(value, path)


def _patterns() -> list[str]:
    from mlops.pipeline_definition import registered_object_patterns

    return registered_object_patterns()


def _registered(key: str) -> bool:
    """Whether ``key`` is one of a registered version's objects (what promotions copy)."""
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in _patterns())


def _without_etags(specification: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(specification)
    if "Containers" in result:
        result["Containers"] = [
            {k: v for k, v in c.items() if k not in DROPPED_CONTAINER_MEMBERS}
            for c in result["Containers"]
        ]
    return result


def promotion_request(
    source: Mapping[str, Any], *, group: str, source_bucket: str, target_bucket: str
) -> tuple[dict[str, Any], list[Copy]]:
    """The CreateModelPackage request of the copy of ``source`` (DescribeModelPackage's
    answer) in ``group``, and the objects to copy (each key once, in order)."""
    request: dict[str, Any] = {"ModelPackageGroupName": group}
    copies: list[Copy] = []
    for name in COPIED_FIELDS:
        if source.get(name) is None:
            continue
        value = source[name]
        if name == "InferenceSpecification":
            value = _without_etags(value)
        elif name == "AdditionalInferenceSpecifications":
            value = [_without_etags(spec) for spec in value]
        if name in S3_FIELDS:
            value = rewrite_uris(
                value, name, key=S3_FIELDS[name], source_bucket=source_bucket,
                target_bucket=target_bucket, copies=copies,
            )  # fmt: skip
        request[name] = value
    request["ModelApprovalStatus"] = PENDING
    request["CustomerMetadataProperties"] = {
        **source.get("CustomerMetadataProperties", {}),
        PROMOTED_FROM_KEY: source["ModelPackageArn"],
    }
    # The drift checks' baseline is a directory: its statistics are named, the rest beside them.
    own = request.get("ModelMetrics", {}).get("ModelDataQuality", {}).get("Statistics")
    if own is not None:
        directory = own["S3Uri"].split("/", 3)[3].rsplit("/", 1)[0]
        copies += [
            Copy("ModelMetrics.ModelDataQuality (beside its statistics)", f"{directory}/{name}")
            for name in monitoring.BASELINE_COMPANIONS
        ]
    unique: dict[str, Copy] = {}
    for copy in copies:  # each key once, where the version first names it
        unique.setdefault(copy.key, copy)
    return request, list(unique.values())


# --------------------------------------------------------------------------- promote


@dataclass(frozen=True)
class Promotion:
    """What promoting one model does, all checked: the objects to copy, the request."""

    model: str
    source_arn: str
    source_version: int
    source_bucket: str
    target_bucket: str
    copies: tuple[Copy, ...]
    request: Mapping[str, Any]


class _Buckets:
    """Each stage's artifacts bucket, read once, when first needed."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def __call__(self, access: StageAccess) -> str:
        if access.stage not in self._names:
            self._names[access.stage] = artifacts_bucket(access)
        return self._names[access.stage]


def plan(
    model: str,
    *,
    source: StageAccess,
    target: StageAccess,
    buckets: Callable[[StageAccess], str],
    tested: Mapping[str, str] | None = None,
) -> Promotion | str:
    """Checks one model's promotion: the :class:`Promotion`, or why nothing is to be done.
    Reads only; raises :class:`ReleaseError` when the promotion is refused."""
    from mlops import shape_check

    if tested is not None:  # what the source's smoke test passed in this release run
        if model not in tested:
            return f"{model}: nothing to promote, {source.stage}'s smoke test tested no version"
        source_arn = tested[model]
    else:
        source_arn = read_record(source, model)
    if source_arn == NO_VERSION:
        return f"{model}: nothing to promote, {source.stage} serves no version ({NO_VERSION})"
    with _aws(source.role_arn):
        package = source.clients("sagemaker").describe_model_package(ModelPackageName=source_arn)
    number = version_number(package)
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise ReleaseError(
            f"{model}: {source.stage} serves {source_arn} (version {number}), which is "
            f"{status}, not {APPROVED}: only an approved version is promoted. Fix: approve it "
            f"in {source.stage}, or serve an approved one (mlops serve --stage {source.stage} "
            f"--model {model})"
        )
    own_group = model_package_group_name(source.stage, model)
    if package.get("ModelPackageGroupName", own_group) != own_group:
        raise ReleaseError(
            f"{model}: {source.stage}'s record names {source_arn}, a version of "
            f"{package['ModelPackageGroupName']}, not of {own_group}. Fix: mlops serve "
            f"--stage {source.stage} --model {model}"
        )
    group = model_package_group_name(target.stage, model)
    with _aws(target.role_arn):
        earlier = promoted_before(target.clients("sagemaker"), group, source_arn)
    if earlier is not None:
        line = (
            f"{model}: {source.stage} version {number} was promoted before, as {target.stage} "
            f"version {version_number(earlier)} ({earlier.get('ModelApprovalStatus')}); "
            f"{target.stage}'s record is left as it is"
        )
        if earlier.get("ModelApprovalStatus") == PENDING:
            line += (
                f" (if a promotion was interrupted, approve it: aws sagemaker "
                f"update-model-package --model-package-arn {earlier['ModelPackageArn']} "
                f"--model-approval-status {APPROVED}, then mlops serve --stage {target.stage} "
                f"--model {model})"
            )
        return line
    read_record(target, model)  # the record exists (the target's data stack is deployed)
    source_bucket, target_bucket = buckets(source), buckets(target)
    try:
        request, copies = promotion_request(
            package, group=group, source_bucket=source_bucket, target_bucket=target_bucket
        )
    except ReleaseError as error:
        raise ReleaseError(f"{model}: {source_arn}: {error}") from None
    outside = [c for c in copies if not _registered(c.key)]
    if outside:
        raise ReleaseError(
            f"{model}: {source_arn}: {outside[0].field} is s3://{source_bucket}/"
            f"{outside[0].key}, not a registered-model key ({', '.join(_patterns())}): the "
            f"target's release role writes only those. Fix: register versions whose "
            "artifacts the training pipeline wrote"
        )
    problems = shape_check.check_step_arguments(model, "CreateModelPackage", request)
    if problems:
        raise ReleaseError(
            f"{model}: the copy of {source_arn} would not be a valid CreateModelPackage "
            "request:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return Promotion(
        model, source_arn, number, source_bucket, target_bucket, tuple(copies), request
    )


def apply(promotion: Promotion, *, source: StageAccess, target: StageAccess) -> str:
    """Copies the objects, registers the copy, records it, then approves it (in this order:
    the target's approval handler then finds the record already naming it)."""
    s3 = target.clients("s3")
    sagemaker = target.clients("sagemaker")
    with _aws(target.role_arn):
        for copy in promotion.copies:
            print(
                f"{promotion.model}: copying s3://{promotion.source_bucket}/{copy.key} -> "
                f"s3://{promotion.target_bucket}/{copy.key} ({copy.field})",
                file=sys.stderr,
            )
            s3.copy_object(
                Bucket=promotion.target_bucket, Key=copy.key,
                CopySource={"Bucket": promotion.source_bucket, "Key": copy.key},
            )  # fmt: skip
        created = str(sagemaker.create_model_package(**promotion.request)["ModelPackageArn"])
        target.clients("ssm").put_parameter(
            Name=record_name(target.stage, promotion.model), Value=created, Type="String",
            Overwrite=True,
        )  # fmt: skip
        sagemaker.update_model_package(
            ModelPackageArn=created, ModelApprovalStatus=APPROVED,
            ApprovalDescription=f"promoted from {promotion.source_arn} by the release pipeline",
        )  # fmt: skip
    return (
        f"{promotion.model}: {source.stage} version {promotion.source_version} -> "
        f"{target.stage} version {created.rsplit('/', 1)[-1]} (recorded)"
    )


def promote(
    config: Any,
    source_stage: str,
    target_stage: str,
    *,
    tooling: Tooling,
    tested_file: Path | None = None,
) -> int:
    """``mlops promote``: every model's promotion checked, then done. The exit status.
    With ``tested_file`` (the source's ``release-smoke-test --tested-file``), the versions
    it tested are promoted, not whatever the source's records say by now."""
    try:
        tested = read_tested(tested_file) if tested_file is not None else None
        _check_stages(config, {"--source-stage": source_stage, "--target-stage": target_stage})
        if source_stage == target_stage:
            raise ReleaseError(
                f"--source-stage and --target-stage are both {source_stage!r}. Fix: promote "
                "into another stage (e.g. --source-stage staging --target-stage prod)"
            )
        source = tooling.assume(source_stage)
        target = tooling.assume(target_stage)
        buckets = _Buckets()
        planned = [
            plan(m.name, source=source, target=target, buckets=buckets, tested=tested)
            for m in config.models
        ]
        for item in planned:
            if isinstance(item, str):
                print(item)
            else:
                print(apply(item, source=source, target=target))
    except ReleaseError as error:
        print(f"mlops promote: {error}\nnothing was promoted", file=sys.stderr)
        return EXIT_USAGE
    except AwsFailure as error:
        print(f"mlops promote: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


# --------------------------------------------------------------------------- smoke test

#: ``command, env -> exit status``: runs one smoke test.
Runner = Callable[[Sequence[str], Mapping[str, str]], int]


def run_command(command: Sequence[str], env: Mapping[str, str]) -> int:
    """The default runner: the command in a subprocess with ``env`` as its environment."""
    return subprocess.run(list(command), check=False, env=dict(env)).returncode


def subprocess_env(base: Mapping[str, str], access: StageAccess) -> dict[str, str]:
    """``base`` with the stage's credentials in place of any others."""
    env = {k: v for k, v in base.items() if k not in _OTHER_CREDENTIALS}
    env.update(access.env)
    return env


def release_smoke_test(
    config: Any,
    stage: str,
    *,
    tooling: Tooling,
    project_root: Path,
    steps_python: Path,
    rows: int = 5,
    runner: Runner = run_command,
    base_env: Mapping[str, str] | None = None,
    tested_file: Path | None = None,
) -> int:
    """``mlops release-smoke-test``: every served model of ``stage`` tested. The exit status.
    With ``tested_file``, the versions that passed are written there (JSON, model -> ARN),
    only when all did."""
    from mlops.cli import smoke_test_command

    try:
        _check_stages(config, {"--stage": stage})
        if not Path(steps_python).exists():
            raise ReleaseError(f"{steps_python} is missing. Fix: run `make steps-venv`")
        if rows < 1:
            raise ReleaseError(f"--rows: got {rows}. Fix: send at least 1 row")
        access = tooling.assume(stage)
        records = deployed_versions(access, [m.name for m in config.models])
    except ReleaseError as error:
        print(f"mlops release-smoke-test: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AwsFailure as error:
        print(f"mlops release-smoke-test: {error}", file=sys.stderr)
        return EXIT_FAILED
    env = subprocess_env(os.environ if base_env is None else base_env, access)
    failed = []
    for model in config.models:
        arn = records[model.name]
        if arn is None:
            print(f"{stage}/{model.name}: skipped, no version approved")
            continue
        command = smoke_test_command(
            project_root, stage, model, steps_python, region=access.region, rows=rows
        )
        status = runner(command, env)
        if status == 0:
            print(f"{stage}/{model.name}: passed ({arn})")
        else:
            failed.append(model.name)
            print(f"{stage}/{model.name}: FAILED (exit {status}) ({arn})")
    if tested_file is not None and not failed:
        try:
            write_tested(tested_file, {m: a for m, a in records.items() if a is not None})
        except ReleaseError as error:
            print(f"mlops release-smoke-test: {error}", file=sys.stderr)
            return EXIT_USAGE
    if failed:
        print(
            f"mlops release-smoke-test: {stage}: {', '.join(failed)} failed (the smoke test's "
            "message is above). Fix the endpoint, or roll back: reject the served version "
            "(aws sagemaker update-model-package --model-approval-status Rejected ...); the "
            "stage's approval handler records the one before it and starts a release",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


# --------------------------------------------------------------------------- the command


def _check_stages(config: Any, named: Mapping[str, str]) -> None:
    for flag, stage in named.items():
        if stage not in config.stages:
            raise ReleaseError(
                f"{flag}: no stage named {stage!r} in cdk.json; stages are {list(config.stages)}"
            )


def default_tooling(config: Any) -> Tooling:
    """The release account's STS client (in ``release.region``, else the first stage's)."""
    import boto3

    release = getattr(config, "release", None)
    region = getattr(release, "region", None) or next(iter(config.stages.values())).region
    return Tooling(config, boto3.client("sts", region_name=region))


def _config(args: argparse.Namespace) -> Any:
    from mlops.recommend import RecommendError, read_config

    try:
        return read_config(Path(getattr(args, "project_root", None) or PROJECT_ROOT).resolve())
    except RecommendError as error:
        raise ReleaseError(str(error)) from None


def run_smoke_test(
    args: argparse.Namespace,
    *,
    config: Any = None,
    tooling: Tooling | None = None,
    runner: Runner = run_command,
    base_env: Mapping[str, str] | None = None,
) -> int:
    """``mlops release-smoke-test`` with parsed arguments."""
    from mlops.local_run import DEFAULT_STEPS_PYTHON

    try:
        config = config if config is not None else _config(args)
    except ReleaseError as error:
        print(f"mlops release-smoke-test: {error}", file=sys.stderr)
        return EXIT_USAGE
    root = Path(getattr(args, "project_root", None) or PROJECT_ROOT)
    return release_smoke_test(
        config, args.stage, tooling=tooling or default_tooling(config), project_root=root,
        steps_python=Path(getattr(args, "steps_python", None) or DEFAULT_STEPS_PYTHON),
        rows=args.rows, runner=runner, base_env=base_env,
        tested_file=Path(args.tested_file) if getattr(args, "tested_file", None) else None,
    )  # fmt: skip


def run_promote(
    args: argparse.Namespace, *, config: Any = None, tooling: Tooling | None = None
) -> int:
    """``mlops promote`` with parsed arguments."""
    try:
        config = config if config is not None else _config(args)
    except ReleaseError as error:
        print(f"mlops promote: {error}", file=sys.stderr)
        return EXIT_USAGE
    return promote(
        config,
        args.source_stage,
        args.target_stage,
        tooling=tooling or default_tooling(config),
        tested_file=Path(args.tested) if getattr(args, "tested", None) else None,
    )


def add_verbs(verbs: Any) -> None:
    """Adds ``release-smoke-test`` and ``promote`` to ``mlops``'s subcommands."""
    smoke = verbs.add_parser(
        "release-smoke-test",
        help="smoke-test every model a stage serves, as the stage's release role",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    smoke.add_argument("--stage", required=True)
    smoke.add_argument("--rows", type=int, default=5, help="rows sent per model (default 5)")
    smoke.add_argument("--tested-file", help="write the versions that passed here (JSON)")
    smoke.add_argument("--steps-python", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    smoke.set_defaults(run=run_smoke_test)
    prom = verbs.add_parser(
        "promote",
        help="make a stage serve the versions another serves (copied into its bucket and group)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prom.add_argument("--source-stage", required=True, help="e.g. staging")
    prom.add_argument("--target-stage", required=True, help="e.g. prod")
    prom.add_argument(
        "--tested", help="promote the versions in this file (release-smoke-test --tested-file)"
    )
    prom.set_defaults(run=run_promote)
    for verb in (smoke, prom):  # also after the verb; mlops's own --project-root otherwise
        verb.add_argument("--project-root", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

"""EventBridge target: a stage's version record follows the approval of its model versions.

A version record is the SSM parameter that says which model package version a stage serves
for a model (``none`` while nothing is). This handler receives SageMaker's "Model Package
State Change" events of the stage's model package groups and keeps each record in step with
what reviewers decide, then tells the release account so that its pipeline deploys it:

- **Approved**: the record becomes that version (approving an older version is therefore a
  rollback to it). In a stage released by promotion (``PROMOTED_ONLY``, prod) only versions
  carrying the promotion metadata may be served; approving any other version does nothing.
  (The metadata is read from DescribeModelPackage, as for the rollback candidates: what the
  version carries now, not what the event said.)
- **Rejected**, of the version the record holds: the record becomes the latest *other*
  approved version (a promoted one in a ``PROMOTED_ONLY`` stage), or ``none`` when none
  remains (the next deploy then removes the endpoint). Rejecting another version does nothing.

Only a package whose ``ModelPackageStatus`` is ``Completed`` is acted on: the event also
fires while a package is being created or deleted and when its metadata is updated, each time
with the package's current approval status. The rule matches ``Completed`` only; the handler
checks it again, in the event and in DescribeModelPackage's answer (a package being deleted
is ignored), and never falls back to a version that is not ``Completed``.

Why the care: EventBridge delivers at least once and not necessarily in order, and a failed
invocation is retried for hours or re-driven from the dead-letter queue, so an event may be:

- **older than the record**: an event whose ``time`` is earlier than the record's last write
  (GetParameter's ``LastModifiedDate``) is ignored, with both times: whatever wrote the
  record (a later event, a promotion, an operator) decided after it, and the late event must
  not undo that, even if its version is still approved. Compared to the second, as the
  event's ``time`` is: the promotion writes the record and then approves the version, so
  that approval's event is not older than the write, and goes on to find the record
  ``unchanged``. An event without ``time`` is not so checked. This event's own write that
  the handler undid (below) does not count: the record is as old as the value put back.
- **stale** (the version's status changed since): it is checked against DescribeModelPackage
  and ignored when it differs;
- **repeated**: a record that already holds the new value is not written again, and no
  release event is sent: one write and one event at most per change.

A changed record is followed by one event on the release account's bus; when that fails the
record is restored and the invocation fails, so that a retry does both again. (The restore is
a write too: the record's two versions before it, read with ``<name>:<version>`` only when the
event is older than the record, tell a restore of the event's own write apart, so that its
retry is not taken for an event older than the record.) Every AWS call has short
timeouts and few retries (``CLIENT_CONFIG``), so that a slow call fails the invocation within
the function's 60 s rather than the function being stopped between a write and its restore.

The stage's groups are those named ``<GROUP_PREFIX><model>``, the record of a model the SSM
parameter ``RECORD_NAME_TEMPLATE`` names with ``{model}`` replaced (no list of every model:
it would not fit in a function's 4 KB of environment at 100 models). The rule matches the
groups by that prefix, so a group of something else in the account whose name starts with
it (``prod-other-project``) reaches the handler too. The stage's data stack creates every
configured model's record before the rule exists, so the record is read first: one that
does not exist means the group is not one of the stage's models, and the event is ignored
(a warning naming the group and the record; nothing written, nothing sent).

The Lambda package is this file alone: the standard library, the runtime's boto3 and the
Powertools layer. Every shared fact (names, the event to send) arrives through environment
variables, read at each invocation.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="model-approval")

APPROVED = "Approved"
REJECTED = "Rejected"
#: The ``ModelPackageStatus`` of a package that may be served (not being created or deleted).
COMPLETED = "Completed"
#: Every client's: the function has 60 s and must not be stopped between writing a record and
#: restoring it (botocore's defaults are 60 s to connect, 60 s to read, and retries).
#: botocore's ``max_attempts`` counts the retries: at most 4 attempts of a call.
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=3, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2}
)
#: A restore follows the write it undoes within one invocation (the function's timeout).
RESTORE_WITHIN = datetime.timedelta(seconds=60)
#: How many restores in a row are looked past (each retry of a failing event adds one).
MAX_RESTORES = 10
#: The environment variables the construct sets (names as it must spell them). The group of
#: a model is ``<GROUP_PREFIX><model>``, its record ``RECORD_NAME_TEMPLATE`` with ``{model}``
#: replaced.
ENVIRONMENT = (
    "STAGE",
    "GROUP_PREFIX",
    "RECORD_NAME_TEMPLATE",
    "NO_VERSION",
    "RELEASE_EVENT_BUS_ARN",
    "RELEASE_EVENT_SOURCE",
    "RELEASE_DETAIL_TYPE",
    "PROMOTED_FROM_KEY",
    "PROMOTED_ONLY",
)

#: The model's name in ``RECORD_NAME_TEMPLATE``.
MODEL_PLACEHOLDER = "{model}"

#: Makes a client: ``clients(service, region)`` (``None``: the function's own region).
Clients = Callable[[str, str | None], Any]


class ConfigError(RuntimeError):
    """The function's environment is incomplete or malformed (a deployment error)."""


class ReleaseEventFailed(RuntimeError):
    """The release account's bus did not accept the event."""


@dataclass(frozen=True)
class Config:
    stage: str
    #: What the names of the stage's model package groups start with ...
    group_prefix: str
    #: ... and the name of a model's version record (SSM parameter), ``{model}`` replaced.
    record_template: str
    no_version: str
    bus_arn: str
    source: str
    detail_type: str
    promoted_from_key: str
    promoted_only: bool

    def record_of(self, group: str) -> str | None:
        """The version record of ``group``; ``None`` when its name is not
        ``<group_prefix><model>``. (A group so named may still be something else's: then
        that record does not exist.)"""
        prefix = self.group_prefix
        model = group[len(prefix) :] if group.startswith(prefix) else ""
        return self.record_template.replace(MODEL_PLACEHOLDER, model) if model else None

    def groups(self) -> str:
        """The stage's groups, for a log line."""
        return f"those named {self.group_prefix}<model>"


@dataclass(frozen=True)
class Change:
    """What the event says: a version of a group is now in an approval status."""

    group: str
    arn: str
    version: int
    status: str
    metadata: dict[str, str]
    #: The package's ``ModelPackageStatus`` (``None``: the event does not say).
    package_status: str | None = None
    #: When the change happened: the event's ``time`` (``None``: the event does not say).
    time: datetime.datetime | None = None


@dataclass(frozen=True)
class Package:
    """What DescribeModelPackage says of a version now."""

    status: str
    metadata: dict[str, str]
    #: Its ``ModelPackageStatus`` (``Completed``, ``Deleting``, ...).
    package_status: str = COMPLETED


@dataclass(frozen=True)
class Record:
    """What GetParameter says of a version record (or of one of its versions)."""

    value: str
    version: int | None = None
    #: When it was written (``LastModifiedDate``).
    modified: datetime.datetime | None = None


@dataclass(frozen=True)
class Version:
    arn: str
    number: int


@dataclass(frozen=True)
class Outcome:
    """``recorded`` (written, event sent), ``unchanged`` (already so) or ``ignored``."""

    action: str
    reason: str
    before: str | None = None
    after: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- configuration and the event ------------------------------------------------------------


def read_config(environ: Mapping[str, str]) -> Config:
    """The configuration from the environment (``ConfigError`` naming what is wrong)."""
    missing = [name for name in ENVIRONMENT if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"environment variables not set: {', '.join(missing)} (the model approval "
            "construct sets them). Fix: redeploy the stage's stack that defines the function"
        )
    promoted_only = environ["PROMOTED_ONLY"].strip().lower()
    if promoted_only not in ("true", "false"):
        raise ConfigError(f"PROMOTED_ONLY must be 'true' or 'false', not {promoted_only!r}")
    bus_arn = environ["RELEASE_EVENT_BUS_ARN"]
    bus_region(bus_arn)  # refuses a malformed ARN now, before any record is read
    template = environ["RECORD_NAME_TEMPLATE"]
    if MODEL_PLACEHOLDER not in template:
        raise ConfigError(f"RECORD_NAME_TEMPLATE has no {MODEL_PLACEHOLDER}: {template!r}")
    return Config(
        stage=environ["STAGE"],
        group_prefix=environ["GROUP_PREFIX"],
        record_template=template,
        no_version=environ["NO_VERSION"],
        bus_arn=bus_arn,
        source=environ["RELEASE_EVENT_SOURCE"],
        detail_type=environ["RELEASE_DETAIL_TYPE"],
        promoted_from_key=environ["PROMOTED_FROM_KEY"],
        promoted_only=promoted_only == "true",
    )


def bus_region(arn: str) -> str:
    """The region of an event bus ARN (``arn:aws:events:<region>:<account>:event-bus/<name>``):
    the events client must be made there, whatever the function's region."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "events" or not parts[3]:
        raise ConfigError(f"RELEASE_EVENT_BUS_ARN is not an event bus ARN: {arn!r}")
    if not parts[5].startswith("event-bus/"):
        raise ConfigError(f"RELEASE_EVENT_BUS_ARN is not an event bus ARN: {arn!r}")
    return parts[3]


def version_of(arn: str) -> int | None:
    """The version number at the end of a versioned model package ARN (``.../<group>/7``)."""
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def parse(event: Mapping[str, Any]) -> Change:
    """The change an EventBridge "SageMaker Model Package State Change" event reports."""
    detail = event["detail"]
    arn = str(detail["ModelPackageArn"])
    number = detail.get("ModelPackageVersion")
    version = int(number) if number is not None else version_of(arn)
    if version is None:
        raise ValueError(f"no ModelPackageVersion in the event and none in its ARN ({arn})")
    package_status = detail.get("ModelPackageStatus")
    return Change(
        group=str(detail["ModelPackageGroupName"]),
        arn=arn,
        version=version,
        status=str(detail.get("ModelApprovalStatus", "")),
        metadata=dict(detail.get("CustomerMetadataProperties") or {}),
        package_status=str(package_status) if package_status is not None else None,
        time=event_time(event.get("time")),
    )


def event_time(value: Any) -> datetime.datetime | None:
    """An event's ``time`` (ISO-8601, ``2026-12-03T09:00:00Z``), in UTC; ``None`` if absent."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"the event's time is not an ISO-8601 time: {value!r}") from None
    return utc(parsed)


def utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC (a time without a zone is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    """``moment`` as an event's ``time`` is written (UTC, ``Z``), for a reason or a log."""
    return utc(moment).isoformat().replace("+00:00", "Z")


# --- the decision (pure) --------------------------------------------------------------------


def is_promoted(metadata: Mapping[str, str], config: Config) -> bool:
    """Whether a version carries the promotion metadata (the ARN it was promoted from)."""
    return bool(metadata.get(config.promoted_from_key))


def screen(change: Change, config: Config) -> str | None:
    """Why the event does not concern a record (rules 1, 2), or ``None``. No AWS call."""
    if config.record_of(change.group) is None:
        return (
            f"model package group {change.group} has no version record in stage "
            f"{config.stage} (its groups: {config.groups()})"
        )
    if change.package_status is not None and change.package_status != COMPLETED:
        return (
            f"version {change.version} is {change.package_status or 'of no package status'}, "
            f"not {COMPLETED}: only a completed package changes a record (the event fires "
            "also while a package is created or deleted, and when its metadata is updated)"
        )
    if change.status not in (APPROVED, REJECTED):
        return (
            f"version {change.version} is {change.status or 'of no approval status'}: only "
            f"{APPROVED} and {REJECTED} change a record"
        )
    return None


def superseded(change: Change, written: datetime.datetime | None) -> str | None:
    """Why the event is older than the record's last write (``written``), or ``None``.
    To the second: the event's ``time`` has no fraction, so an event of the second the record
    was written in is not older than the write."""
    if change.time is None or written is None:
        return None
    if change.time >= utc(written).replace(microsecond=0):
        return None
    return (
        f"the record was written after this event: the event is of {iso(change.time)}, the "
        f"record was written at {iso(written)} (a late or replayed event: what wrote the "
        "record decided after it)"
    )


def check(change: Change, package: Package | None, config: Config) -> str | None:
    """Why the event must not be acted on, given the version now (rules 3, 4), or ``None``."""
    if package is None:
        return f"version {change.version} no longer exists ({change.arn})"
    if package.package_status != COMPLETED:
        return (
            f"version {change.version} is {package.package_status or 'of no package status'}"
            f" now, not {COMPLETED}: a stale event, or a package not usable (being deleted)"
        )
    if package.status != change.status:
        return (
            f"stale event: it says version {change.version} is {change.status}, it is now "
            f"{package.status} (a later event handles that)"
        )
    if (
        config.promoted_only
        and change.status == APPROVED
        and not is_promoted(package.metadata, config)
    ):
        return (
            f"version {change.version} was not promoted: stage {config.stage} serves only "
            f"promoted versions (those carrying the {config.promoted_from_key!r} metadata, "
            "which the release pipeline's promotion sets). Fix: release the version through "
            "the release pipeline, which promotes it into this stage"
        )
    return None


def needs_fallback(change: Change, recorded: str) -> bool:
    """Whether the record must fall back to another version: the served one was rejected."""
    return change.status == REJECTED and recorded == change.arn


def rollback_order(versions: Iterable[Version], rejected: str) -> list[Version]:
    """The candidates to fall back to: every other approved version, newest first."""
    return sorted((v for v in versions if v.arn != rejected), key=lambda v: -v.number)


def decide(change: Change, config: Config, *, recorded: str, fallback: Version | None) -> Outcome:
    """What the record becomes (rules 5-7). ``recorded``: what it holds; ``fallback``: the
    version to fall back to when the served version was rejected (``None``: none remains)."""
    if change.status == APPROVED:
        after = change.arn
        reason = f"version {change.version} approved"
        previous = version_of(recorded) if _same_group(recorded, change.arn) else None
        if previous is not None and previous > change.version:
            reason += f"; rolled back from version {previous}"
    elif recorded != change.arn:
        return Outcome(
            "ignored",
            f"version {change.version} rejected; it is not served (the record holds {recorded})",
            before=recorded,
            after=recorded,
        )
    elif fallback is None:
        after = config.no_version
        reason = f"version {change.version} rejected; no approved version remains"
    else:
        after = fallback.arn
        moved = "rolled back" if fallback.number < change.version else "moved on"
        reason = f"version {change.version} rejected; {moved} to version {fallback.number}"
    if after == recorded:
        return Outcome("unchanged", f"{reason}; the record holds it already", recorded, after)
    return Outcome("recorded", reason, before=recorded, after=after)


def release_detail(change: Change, config: Config, outcome: Outcome) -> dict[str, Any]:
    """The detail of the event that tells the release account a record changed."""
    return {
        "stage": config.stage,
        "model_package_group": change.group,
        "record": config.record_of(change.group),
        "before": outcome.before,
        "after": outcome.after,
        "reason": outcome.reason,
    }


def _same_group(recorded: str, arn: str) -> bool:
    return recorded.rsplit("/", 1)[0] == arn.rsplit("/", 1)[0]


# --- AWS calls ------------------------------------------------------------------------------


def is_missing(error: ClientError) -> bool:
    """Whether SageMaker's error says the model package does not exist."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "").lower()
    return code in ("ValidationException", "ResourceNotFound") and (
        "does not exist" in message or "not found" in message
    )


def describe(sagemaker: Any, arn: str) -> Package | None:
    """The version's approval status and metadata now; ``None`` if it no longer exists."""
    try:
        response = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    return Package(
        status=str(response.get("ModelApprovalStatus", "")),
        metadata=dict(response.get("CustomerMetadataProperties") or {}),
        package_status=str(response.get("ModelPackageStatus", "")),
    )


def approved_versions(sagemaker: Any, group: str) -> list[Version]:
    """The approved versions of ``group`` (every page)."""
    found = []
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, ModelApprovalStatus=APPROVED):
        for summary in page["ModelPackageSummaryList"]:
            arn = summary["ModelPackageArn"]
            number = summary.get("ModelPackageVersion")
            number = int(number) if number is not None else version_of(arn)
            if number is not None:
                found.append(Version(arn, number))
    return found


def fallback(sagemaker: Any, change: Change, config: Config) -> Version | None:
    """The latest other approved version of the group that the stage may serve (newest
    first, as DescribeModelPackage says of it now: ``Completed`` and still approved; in a
    ``PROMOTED_ONLY`` stage the first one carrying the promotion metadata)."""
    for candidate in rollback_order(approved_versions(sagemaker, change.group), change.arn):
        package = describe(sagemaker, candidate.arn)
        reason = _ineligible(package, config)
        if reason is None:
            return candidate
        logger.info(
            "rollback candidate skipped", extra={"candidate": candidate.arn, "reason": reason}
        )
    return None


def _ineligible(package: Package | None, config: Config) -> str | None:
    """Why a rollback candidate may not be served, or ``None``."""
    if package is None:
        return "it no longer exists"
    if package.package_status != COMPLETED:
        return f"it is {package.package_status or 'of no package status'}, not {COMPLETED}"
    if package.status != APPROVED:
        return f"it is now {package.status}"
    if config.promoted_only and not is_promoted(package.metadata, config):
        return f"it was not promoted (no {config.promoted_from_key!r} metadata)"
    return None


def read_record(ssm: Any, name: str) -> Record | None:
    """The record (``name``, or one of its versions: ``<name>:<version>``); ``None`` when it
    does not exist."""
    try:
        parameter = ssm.get_parameter(Name=name)["Parameter"]
    except (ssm.exceptions.ParameterNotFound, ssm.exceptions.ParameterVersionNotFound):
        return None
    version = parameter.get("Version")
    modified = parameter.get("LastModifiedDate")
    return Record(
        value=str(parameter["Value"]),
        version=int(version) if version is not None else None,
        modified=utc(modified) if isinstance(modified, datetime.datetime) else None,
    )


def written_at(ssm: Any, name: str, record: Record, change: Change) -> datetime.datetime | None:
    """When the record took what it holds, looking past the restores of this event's own
    writes (a retry after a failed release event): a version that puts back the value of the
    version before the one just written, within ``RESTORE_WITHIN`` of it, the undone write
    being what this event writes (an approval: its version; a rejection: a move away from
    the rejected version, which the restore puts back). The record is then as of that
    earlier version. Anything else (another event's, the promotion's, an operator's write)
    counts at its own time. Earlier versions are read only while the event is older than the
    version found (not at all for an event that is not older than the record)."""
    current = record
    for _ in range(MAX_RESTORES):
        if superseded(change, current.modified) is None:
            break
        if current.version is None or current.version < 3 or current.modified is None:
            break
        if change.status == REJECTED and current.value != change.arn:
            break
        before = read_record(ssm, f"{name}:{current.version - 2}")
        if before is None or before.value != current.value or before.modified is None:
            break
        undone = read_record(ssm, f"{name}:{current.version - 1}")
        if (
            undone is None
            or undone.value == current.value
            or (change.status == APPROVED and undone.value != change.arn)
            or undone.modified is None
            or current.modified - undone.modified > RESTORE_WITHIN
        ):
            break
        logger.info(
            "the record's last write restored this event's write: it counts as of the "
            "version it put back",
            extra={"restored_at": iso(current.modified), "as_of": iso(before.modified)},
        )
        current = before
    return current.modified


def write_record(ssm: Any, name: str, value: str) -> None:
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def release_entry(config: Config, detail: Mapping[str, Any]) -> dict[str, str]:
    """The PutEvents entry of the event that tells the release account a record changed."""
    return {
        "Source": config.source,
        "DetailType": config.detail_type,
        "Detail": json.dumps(detail, sort_keys=True),
        "EventBusName": config.bus_arn,
    }


def announce(events: Any, config: Config, detail: Mapping[str, Any]) -> None:
    """Sends one event to the release account's bus (``ReleaseEventFailed`` if refused)."""
    response = events.put_events(Entries=[release_entry(config, detail)])
    if response.get("FailedEntryCount", 0) > 0:
        failed: dict[str, str] = next(
            (e for e in response.get("Entries", []) if e.get("ErrorCode")), {}
        )
        raise ReleaseEventFailed(
            f"the release event bus {config.bus_arn} refused the event "
            f"({failed.get('ErrorCode', 'no error code')}: "
            f"{failed.get('ErrorMessage', 'no message')}); the record is put back and the "
            "invocation fails, so that a retry does both again"
        )


# --- the handler ----------------------------------------------------------------------------


def process(event: Mapping[str, Any], config: Config, clients: Clients) -> dict[str, Any]:
    """Handles one event; returns the outcome (``action``, ``reason``, ``before``, ``after``)."""
    change = parse(event)
    logger.append_keys(
        stage=config.stage,
        model_package_group=change.group,
        model_package_version=change.version,
        approval_status=change.status,
    )
    reason = screen(change, config)
    if reason is not None:
        return _finish(Outcome("ignored", reason))
    # The record first: a group that only shares the prefix has none (see the module's doc).
    ssm = clients("ssm", None)
    name = str(config.record_of(change.group))
    record = read_record(ssm, name)
    if record is None:
        return _not_of_the_stage(change, config, name)
    recorded = record.value
    reason = superseded(change, written_at(ssm, name, record, change))
    if reason is not None:
        return _finish(Outcome("ignored", reason, recorded, recorded), record=name)
    sagemaker = clients("sagemaker", None)
    reason = check(change, describe(sagemaker, change.arn), config)
    if reason is not None:
        return _finish(Outcome("ignored", reason), record=name)
    rollback_to = fallback(sagemaker, change, config) if needs_fallback(change, recorded) else None
    outcome = decide(change, config, recorded=recorded, fallback=rollback_to)
    if outcome.action != "recorded":
        return _finish(outcome, record=name)
    write_record(ssm, name, str(outcome.after))
    detail = release_detail(change, config, outcome)
    try:
        announce(clients("events", bus_region(config.bus_arn)), config, detail)
    except Exception:
        _restore(ssm, name, outcome, release_entry(config, detail), bus_region(config.bus_arn))
        raise
    if outcome.after == config.no_version:
        logger.warning(
            "nothing approved remains: the next deploy of the serving stack removes the endpoint",
            extra={"record": name},
        )
    return _finish(outcome, record=name)


def _not_of_the_stage(change: Change, config: Config, name: str) -> dict[str, Any]:
    """Ignores an event of a group that has the stage's prefix but no version record: the
    stage's data stack creates the record of every model it serves, so the group is not one
    of them (something else in the account whose name starts with the prefix)."""
    outcome = Outcome(
        "ignored",
        f"model package group {change.group} is not one of stage {config.stage}'s models: "
        f"its version record {name} does not exist (the stage's data stack creates the "
        "record of every model it serves)",
    )
    result = outcome.as_dict()
    logger.warning(
        f"event ignored: model package group {change.group} has no version record {name}",
        extra={**result, "record": name},
    )
    return result


def _restore(ssm: Any, name: str, outcome: Outcome, entry: Mapping[str, str], region: str) -> None:
    """Puts the record back after the release event failed: a retry of the event then finds
    the old value and does both again (left changed, the retry would see it unchanged and
    the release account would never hear of it). The retry looks past this write when it
    compares its time with the record's (``written_at``)."""
    logger.exception(
        "release event failed: restoring the record",
        extra={"record": name, "before": outcome.before, "after": outcome.after},
    )
    try:
        write_record(ssm, name, str(outcome.before))
    except Exception:
        # A retry or a re-drive of the event now finds the record written after it, and
        # ignores it: the event has to be sent by hand.
        logger.exception(
            f"could not restore {name}: it holds {outcome.after} but the release account was "
            f"not told. Fix: send the release event (release_entry, logged here) by hand: aws "
            f"events put-events --region {region} --entries '[<release_entry>]'",
            extra={"record": name, "release_entry": dict(entry)},
        )


def _finish(outcome: Outcome, **extra: Any) -> dict[str, Any]:
    result = outcome.as_dict()
    message = {"recorded": "record changed", "unchanged": "nothing to do: record unchanged"}
    logger.info(
        message.get(outcome.action, "nothing to do: event ignored"), extra={**result, **extra}
    )
    return result


@functools.cache
def make_client(service: str, region: str | None) -> Any:
    """A client of ``service`` (the function's region when ``region`` is ``None``), with
    ``CLIENT_CONFIG``; kept for the warm invocations that follow."""
    return boto3.client(service, region_name=region, config=CLIENT_CONFIG)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process(event, read_config(os.environ), make_client)

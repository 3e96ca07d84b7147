"""CloudFormation custom resource: empty a SageMaker Studio domain (or a user profile) first.

CloudFormation cannot delete a Studio domain, or a user profile, that still has apps or
spaces: those are made in Studio, by its users, not by the stack. This function backs a
``Custom::StudioTeardown`` resource whose ``ServiceToken`` is its own ARN, so CloudFormation
invokes it directly and it answers CloudFormation itself (a PUT to the pre-signed
``ResponseURL``).

``ResourceProperties``:

- ``DomainId`` (required): the domain.
- ``UserProfileName`` (optional): the resource then stands for that one user profile. On
  Delete it removes that profile's apps (those whose ``UserProfileName`` is it, and those of
  the spaces it owns) and the spaces it owns (``OwnershipSettingsSummary``), nothing else.
  Without it, the resource stands for the whole domain: on Delete it removes every app and
  every space of the domain, then the user profiles not named in ``ManagedUserProfiles``.
- ``ManagedUserProfiles`` (optional list, domain-level only): the profiles the stack
  deletes itself (right after this resource); the others, made by hand, would block the
  domain's deletion and are deleted here.

Create and Update do nothing and answer SUCCESS with the physical ID
``<DomainId>/<UserProfileName>`` or ``<DomainId>/*``: a replaced domain gets a new ID, so
CloudFormation later sends a Delete for the old one. Delete, in order:

1. DeleteApp for every matching app not ``Deleted`` or ``Deleting``;
2. wait until no matching app is in a status other than ``Deleted`` or ``Failed`` (an app
   already ``Deleting`` is waited for, not deleted again; a ``Failed`` one counts as gone once
   DeleteApp was tried on it);
3. DeleteSpace for every matching space not ``Deleting``, and wait until none is listed;
4. domain-level only: DeleteUserProfile for every unmanaged profile, and wait likewise.

Every step is idempotent: something already gone (``ResourceNotFound``, or a
``ValidationException`` saying it does not exist), the domain included, is success. A delete
refused with ``ResourceInUse`` (a space whose apps are still going) is tried again at the
next poll.

Deleting apps takes minutes. When the invocation's remaining time falls below
``MARGIN_SECONDS`` with work left, the function invokes itself asynchronously with the same
event plus ``TeardownStartedAt`` (epoch seconds of the first invocation) and
``TeardownAttempt`` (the invocation's number), and returns without answering: the next
invocation carries on. Past ``BUDGET_SECONDS`` since the start (the resource's
``ServiceTimeout`` is an hour), or after ``MAX_INVOCATIONS``, it answers FAILED naming what
is left. Any unexpected error is answered FAILED too: CloudFormation is never left waiting.

The Lambda package is this file alone: the standard library, the runtime's boto3 and the
Powertools layer. It reads no environment variable of its own.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="studio-teardown")

#: Short time-outs and few retries (botocore's defaults are 60 s to connect, 60 s to read):
#: one stuck call must not eat the margin kept for the hand-over to the next invocation.
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=3, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3}
)
#: Seconds between two listings while waiting.
POLL_SECONDS = 15.0
#: Below this much time left in the invocation, the work is handed to the next one (room
#: for a poll, a listing and the self-invocation).
MARGIN_SECONDS = 120.0
#: How long the teardown may take in all, since its first invocation: the custom resource's
#: ``ServiceTimeout`` is 3600 s, and CloudFormation must hear FAILED before it.
BUDGET_SECONDS = 50 * 60.0
#: At most this many invocations (a 15-minute function needs 4 in 50 minutes): bounds a loop
#: of short invocations if the function's timeout were ever below the margin.
MAX_INVOCATIONS = 10
#: The fields a continued invocation's event carries besides CloudFormation's.
STARTED_AT = "TeardownStartedAt"
ATTEMPT = "TeardownAttempt"
#: CloudFormation's limit on the size of a custom resource's response body.
MAX_RESPONSE_BYTES = 4096

#: App statuses not to delete (done, or being done) ...
APP_NOT_DELETED = frozenset({"Deleted", "Deleting"})
#: ... and those not waited for: ``Failed`` counts as gone once DeleteApp was tried on it.
APP_GONE = frozenset({"Deleted", "Failed"})
#: Space and user profile statuses not to delete again; one still listed is waited for
#: (``Deleted`` is not among their documented statuses, but would count as gone).
BEING_DELETED = frozenset({"Deleted", "Deleting"})
GONE = frozenset({"Deleted"})
#: What a ``ValidationException`` says when the thing named does not exist.
MISSING_MESSAGES = ("does not exist", "not found", "cannot find", "could not find")

#: Makes a client of a service (the function's region).
Clients = Callable[[str], Any]


class PropertiesError(ValueError):
    """The resource's properties are malformed (a template error)."""


class DomainGone(Exception):
    """The domain no longer exists: there is nothing left to tear down."""


@dataclass(frozen=True)
class Target:
    """What the resource stands for: a domain, or one user profile of it."""

    domain_id: str
    #: ``None``: the whole domain.
    user_profile_name: str | None = None
    #: The profiles the stack deletes itself (domain-level only).
    managed_profiles: frozenset[str] = frozenset()

    @property
    def physical_id(self) -> str:
        """``<DomainId>/<UserProfileName>``, or ``<DomainId>/*`` for the domain."""
        return f"{self.domain_id}/{self.user_profile_name or '*'}"

    def describe(self) -> str:
        if self.user_profile_name is None:
            return f"domain {self.domain_id}"
        return f"user profile {self.user_profile_name} of domain {self.domain_id}"


@dataclass(frozen=True)
class Item:
    """An app, a space or a user profile as a listing shows it."""

    kind: str
    name: str
    status: str
    #: The delete call's parameters (they identify it).
    params: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return self.params

    def describe(self) -> str:
        return f"{self.kind} {self.name} ({self.status})"


@dataclass(frozen=True)
class Phase:
    """One kind of thing to delete and wait for."""

    kind: str
    #: The client's delete method (``delete_app``).
    operation: str
    #: Lists the matching items, as they are now (``DomainGone`` if the domain is).
    list_items: Callable[[], list[Item]]
    #: Statuses not to delete ...
    not_deleted: frozenset[str]
    #: ... and those that count as gone while still listed.
    gone: frozenset[str]


@dataclass(frozen=True)
class Runtime:
    """What the handler needs from the outside world (replaced in tests)."""

    clients: Clients
    #: Opens a ``urllib.request.Request`` (``urllib.request.urlopen``).
    opener: Callable[..., Any]
    sleep: Callable[[float], None]
    #: Epoch seconds (``time.time``).
    clock: Callable[[], float]


# --- the properties -------------------------------------------------------------------------


def parse_target(properties: Mapping[str, Any]) -> Target:
    """The target the properties name.

    Args:
        properties: The event's ``ResourceProperties``.

    Returns:
        The domain, or the user profile, the resource stands for.

    Raises:
        PropertiesError: ``DomainId`` is missing or empty, ``UserProfileName`` is present but
            empty (it would turn a profile's resource into the domain's), or
            ``ManagedUserProfiles`` is not a list of names.
    """
    domain_id = properties.get("DomainId")
    if not isinstance(domain_id, str) or not domain_id:
        raise PropertiesError(f"DomainId must be a domain's ID, not {domain_id!r}")
    profile = properties.get("UserProfileName")
    if profile is not None and (not isinstance(profile, str) or not profile):
        raise PropertiesError(f"UserProfileName must be a user profile's name, not {profile!r}")
    managed = properties.get("ManagedUserProfiles", [])
    if not isinstance(managed, list) or not all(isinstance(n, str) and n for n in managed):
        raise PropertiesError(f"ManagedUserProfiles must be a list of names, not {managed!r}")
    return Target(domain_id, profile, frozenset(managed))


# --- listing --------------------------------------------------------------------------------


def is_missing(error: ClientError) -> bool:
    """Whether SageMaker's error says the thing named (or its domain) does not exist.

    ``ResourceNotFound`` is the modelled error of DeleteApp, DeleteSpace and
    DeleteUserProfile; a ``ValidationException`` counts only when its message says so.
    """
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "").lower()
    if code == "ResourceNotFound":
        return True
    return code == "ValidationException" and any(m in message for m in MISSING_MESSAGES)


def _pages(sagemaker: Any, operation: str, result: str, domain_id: str) -> Iterator[dict]:
    """Every item of a domain's listing (all pages).

    Raises:
        DomainGone: SageMaker says the domain does not exist.
    """
    try:
        for page in sagemaker.get_paginator(operation).paginate(DomainIdEquals=domain_id):
            yield from page.get(result, [])
    except ClientError as error:
        if is_missing(error):
            raise DomainGone(domain_id) from error
        raise


def list_apps(sagemaker: Any, domain_id: str) -> list[dict[str, Any]]:
    """Every app of the domain (ListApps also shows recently ``Deleted`` ones)."""
    return list(_pages(sagemaker, "list_apps", "Apps", domain_id))


def list_spaces(sagemaker: Any, domain_id: str) -> list[dict[str, Any]]:
    """Every space of the domain."""
    return list(_pages(sagemaker, "list_spaces", "Spaces", domain_id))


def list_profiles(sagemaker: Any, domain_id: str) -> list[dict[str, Any]]:
    """Every user profile of the domain."""
    return list(_pages(sagemaker, "list_user_profiles", "UserProfiles", domain_id))


def owner_of(space: Mapping[str, Any]) -> str | None:
    """The user profile that owns a space (``None``: a space without an owner)."""
    return (space.get("OwnershipSettingsSummary") or {}).get("OwnerUserProfileName")


def app_item(app: Mapping[str, Any]) -> Item:
    """An app of ListApps, with DeleteApp's parameters (its space's, or its profile's)."""
    params = [("DomainId", app["DomainId"]), ("AppType", app["AppType"])]
    params.append(("AppName", app["AppName"]))
    if app.get("SpaceName"):
        params.append(("SpaceName", app["SpaceName"]))
        owner = f"space {app['SpaceName']}"
    else:
        params.append(("UserProfileName", app["UserProfileName"]))
        owner = f"user profile {app['UserProfileName']}"
    name = f"{app['AppType']} {app['AppName']} of {owner}"
    return Item("app", name, str(app.get("Status", "")), tuple(params))


def space_item(space: Mapping[str, Any]) -> Item:
    params = (("DomainId", space["DomainId"]), ("SpaceName", space["SpaceName"]))
    return Item("space", space["SpaceName"], str(space.get("Status", "")), params)


def profile_item(profile: Mapping[str, Any]) -> Item:
    params = (("DomainId", profile["DomainId"]), ("UserProfileName", profile["UserProfileName"]))
    return Item("user profile", profile["UserProfileName"], str(profile.get("Status", "")), params)


def matching_app(app: Mapping[str, Any], target: Target, owned: frozenset[str]) -> bool:
    """Whether an app is the target's: any app of the domain, or the profile's own and those
    of the spaces it owns (``owned``)."""
    if target.user_profile_name is None:
        return True
    if app.get("SpaceName"):
        return app["SpaceName"] in owned
    return app.get("UserProfileName") == target.user_profile_name


def matching_space(space: Mapping[str, Any], target: Target) -> bool:
    return target.user_profile_name is None or owner_of(space) == target.user_profile_name


def phases(sagemaker: Any, target: Target) -> list[Phase]:
    """What to delete and wait for, in order: apps, spaces, and (domain-level) the user
    profiles the stack does not delete itself.

    Raises:
        DomainGone: (profile-level) listing the spaces found no domain.
    """
    domain_id = target.domain_id
    owned: frozenset[str] = frozenset()
    if target.user_profile_name is not None:  # the apps of the spaces it owns are its own
        spaces = list_spaces(sagemaker, domain_id)
        owned = frozenset(s["SpaceName"] for s in spaces if matching_space(s, target))

    def apps() -> list[Item]:
        found = list_apps(sagemaker, domain_id)
        return [app_item(a) for a in found if matching_app(a, target, owned)]

    def spaces_() -> list[Item]:
        found = list_spaces(sagemaker, domain_id)
        return [space_item(s) for s in found if matching_space(s, target)]

    def profiles() -> list[Item]:
        found = list_profiles(sagemaker, domain_id)
        managed = target.managed_profiles
        return [profile_item(p) for p in found if p["UserProfileName"] not in managed]

    plan = [
        Phase("app", "delete_app", apps, APP_NOT_DELETED, APP_GONE),
        Phase("space", "delete_space", spaces_, BEING_DELETED, GONE),
    ]
    if target.user_profile_name is None:
        plan.append(Phase("user profile", "delete_user_profile", profiles, BEING_DELETED, GONE))
    return plan


# --- deleting and waiting -------------------------------------------------------------------


def delete(sagemaker: Any, phase: Phase, item: Item) -> bool:
    """Deletes one item.

    Args:
        sagemaker: A SageMaker client.
        phase: The item's kind.
        item: What to delete.

    Returns:
        ``True`` when it is deleted, being deleted or gone; ``False`` when SageMaker refused
        with ``ResourceInUse`` (what it holds is still being deleted): try again later.

    Raises:
        ClientError: Any other refusal (except of an item that counts as gone already: a
            ``Failed`` app, which is tried once).
    """
    try:
        getattr(sagemaker, phase.operation)(**dict(item.params))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        reason = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
        if is_missing(error):
            logger.info(f"{item.kind} already gone: {item.name}", extra={"error": reason})
            return True
        if item.status in phase.gone and code in ("ValidationException", "ResourceInUse"):
            logger.warning(
                f"{item.kind} {item.name} is {item.status}: its deletion was refused, and it "
                "counts as gone",
                extra={"error": reason},
            )
            return True
        if code == "ResourceInUse":
            logger.info(f"{item.kind} {item.name} still in use: tried again at the next poll")
            return False
        raise
    logger.info(f"deleting {item.describe()}", extra={"deleted": dict(item.params)})
    return True


def settle(
    sagemaker: Any,
    phase: Phase,
    *,
    out_of_time: Callable[[], bool],
    sleep: Callable[[float], None],
    poll_seconds: float = POLL_SECONDS,
) -> list[str]:
    """Deletes the phase's items and waits until they are gone.

    Each round lists the items, deletes those not deleted yet (each once per invocation,
    unless it was in use), and ends when none is left; else it sleeps and lists again.

    Args:
        sagemaker: A SageMaker client.
        phase: What to delete.
        out_of_time: Whether to stop (checked before each sleep, and before each delete
            but a round's first: one call may take tens of seconds).
        sleep: Waits that many seconds.
        poll_seconds: The time between two listings.

    Returns:
        What is left (described) when time ran out; empty when all is gone.

    Raises:
        DomainGone: The domain no longer exists.
    """
    tried: set[tuple[tuple[str, str], ...]] = set()
    while True:
        items = phase.list_items()
        deleted_now = 0
        for item in items:
            fresh = item.status not in phase.not_deleted and item.key not in tried
            if not fresh:
                continue
            # Each round deletes at least one item; after that, a delete (which may take
            # tens of seconds) starts only while time is left.
            if deleted_now and out_of_time():
                break
            if delete(sagemaker, phase, item):
                tried.add(item.key)
            deleted_now += 1
        left = [item.describe() for item in items if item.status not in phase.gone]
        if not left:
            logger.info(f"no {phase.kind} left")
            return []
        if out_of_time():
            return left
        logger.info(f"waiting for {len(left)} {phase.kind}(s)", extra={"waiting_for": left})
        sleep(poll_seconds)


def teardown(
    sagemaker: Any,
    target: Target,
    *,
    out_of_time: Callable[[], bool],
    sleep: Callable[[float], None],
    poll_seconds: float = POLL_SECONDS,
) -> list[str]:
    """Deletes the target's apps, then its spaces, then (domain-level) the unmanaged user
    profiles, waiting for each kind to be gone before the next.

    Idempotent: run again, it finds what is done and carries on from there.

    Args:
        sagemaker: A SageMaker client.
        target: The domain or user profile to empty.
        out_of_time: Whether to stop waiting (then what is left is returned).
        sleep: Waits that many seconds.
        poll_seconds: The time between two listings.

    Returns:
        What is left when time ran out (of the phase under way); empty when done.
    """
    try:
        for phase in phases(sagemaker, target):
            left = settle(
                sagemaker, phase, out_of_time=out_of_time, sleep=sleep, poll_seconds=poll_seconds
            )
            if left:
                return left
    except DomainGone:
        logger.info(f"domain {target.domain_id} does not exist: nothing to tear down")
    return []


# --- CloudFormation -------------------------------------------------------------------------


def response(event: Mapping[str, Any], status: str, physical_id: str, reason: str) -> dict:
    """The body of the answer to CloudFormation, within its size limit (the reason is
    shortened as needed)."""
    body = {
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": physical_id,
        "Status": status,
        "Reason": "",
    }
    room = MAX_RESPONSE_BYTES - len(json.dumps(body).encode())
    body["Reason"] = truncate(reason, room)
    return body


def truncate(text: str, limit: int) -> str:
    """``text`` cut (with ``...``) so that its JSON string content fits ``limit`` bytes."""

    def size(value: str) -> int:
        return len(json.dumps(value).encode()) - 2

    if size(text) <= limit:
        return text
    cut = text[: max(limit - 3, 0)]
    while cut and size(cut + "...") > limit:
        cut = cut[:-1]
    return cut + "..." if limit >= 3 else ""


def send(
    url: str, body: Mapping[str, Any], opener: Callable[..., Any] = urllib.request.urlopen
) -> None:
    """PUTs the answer to the pre-signed URL (an empty Content-Type, as S3's signature of it
    requires)."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
    )
    with opener(request, timeout=30):
        pass


def continuation(event: Mapping[str, Any], started_at: float, attempt: int) -> dict[str, Any]:
    """The event of the next invocation: the same, with when the teardown started and the
    next invocation's number."""
    return {**event, STARTED_AT: started_at, ATTEMPT: attempt + 1}


def hand_over(client: Any, function_arn: str, event: Mapping[str, Any]) -> None:
    """Invokes the function (itself) asynchronously with ``event``.

    Raises:
        RuntimeError: Lambda did not queue the invocation.
    """
    answer = client.invoke(
        FunctionName=function_arn,
        InvocationType="Event",
        Payload=json.dumps(event, sort_keys=True).encode(),
    )
    if answer.get("StatusCode") != 202:
        raise RuntimeError(f"Lambda did not queue the next invocation: {answer!r}")


def started_at(event: Mapping[str, Any], clock: Callable[[], float]) -> float:
    """When the teardown started: the continued event's field, else now."""
    value = event.get(STARTED_AT)
    return float(value) if isinstance(value, int | float) else clock()


def process(
    event: Mapping[str, Any], context: LambdaContext, runtime: Runtime
) -> dict[str, Any] | None:
    """Handles one invocation: answers CloudFormation, or hands the work over to the next
    invocation.

    Args:
        event: CloudFormation's request (continued: plus ``TeardownStartedAt`` and
            ``TeardownAttempt``).
        context: The invocation's context (time left, the function's ARN).
        runtime: Clients, the opener of the response URL, the sleep and the clock.

    Returns:
        The answer sent, or ``None`` when the work was handed over.

    Raises:
        OSError: The answer could not be sent (Lambda retries the invocation).
    """
    body = decide(event, context, runtime)
    if body is not None:
        send(event["ResponseURL"], body, runtime.opener)
        logger.info(
            f"answered {body['Status']}", extra={"physical_resource_id": body["PhysicalResourceId"]}
        )
    return body


def decide(
    event: Mapping[str, Any], context: LambdaContext, runtime: Runtime
) -> dict[str, Any] | None:
    """The answer to CloudFormation (``None``: the work was handed over); never raises, an
    error is answered FAILED."""
    physical_id = str(event.get("PhysicalResourceId") or event["LogicalResourceId"])
    request = event.get("RequestType")
    try:
        start = started_at(event, runtime.clock)
        attempt = int(event.get(ATTEMPT, 1))
        logger.append_keys(request_type=request, attempt=attempt)
        try:
            target = parse_target(event.get("ResourceProperties") or {})
        except PropertiesError as error:
            if request != "Delete":
                raise
            # The properties a Delete carries are the last that succeeded: none did.
            logger.warning("nothing was created: nothing to tear down", extra={"error": str(error)})
            return response(event, "SUCCESS", physical_id, "nothing to tear down")
        logger.append_keys(domain_id=target.domain_id, user_profile_name=target.user_profile_name)
        if request in ("Create", "Update"):
            return response(event, "SUCCESS", target.physical_id, "nothing to do")
        if request != "Delete":
            raise ValueError(f"unknown RequestType {request!r}")

        def spent() -> float:
            return runtime.clock() - start

        def out_of_time() -> bool:
            low = context.get_remaining_time_in_millis() < MARGIN_SECONDS * 1000
            return low or spent() >= BUDGET_SECONDS

        left = teardown(
            runtime.clients("sagemaker"), target, out_of_time=out_of_time, sleep=runtime.sleep
        )
        if not left:
            done = f"{target.describe()} torn down"
            logger.info(done)
            return response(event, "SUCCESS", physical_id, done)
        if spent() >= BUDGET_SECONDS or attempt >= MAX_INVOCATIONS:
            reason = (
                f"the teardown of {target.describe()} is not done after "
                f"{round(spent() / 60)} min and {attempt} invocation(s); still left: "
                f"{', '.join(left)}. Delete them by hand (aws sagemaker delete-app / "
                "delete-space / delete-user-profile), then delete the stack again"
            )
            logger.error(reason, extra={"left": left})
            return response(event, "FAILED", physical_id, reason)
        logger.info(
            "out of time: handing over to the next invocation",
            extra={"left": left, "next_attempt": attempt + 1},
        )
        following = continuation(event, start, attempt)
        hand_over(runtime.clients("lambda"), context.invoked_function_arn, following)
        return None
    except Exception as error:  # reported to CloudFormation, which then stops waiting
        logger.exception("studio teardown failed")
        return response(event, "FAILED", physical_id, f"{type(error).__name__}: {error}")


@functools.cache
def make_client(service: str) -> Any:
    """A client of ``service`` in the function's region, with ``CLIENT_CONFIG``."""
    return boto3.client(service, config=CLIENT_CONFIG)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    process(event, context, Runtime(make_client, urllib.request.urlopen, time.sleep, time.time))

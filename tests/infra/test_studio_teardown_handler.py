"""Deleting a Studio domain or user profile: its apps and spaces are deleted first.

The handler (handlers/studio_teardown) runs against real botocore clients wrapped in
Stubbers: each call's parameters are asserted exactly and validated against botocore's
shapes (as are the stubbed responses), a call not stubbed fails the test, and every stubbed
call must have been made. The clock and the sleep are fakes (a poll advances the clock), and
so is the opener of CloudFormation's response URL.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from cdk_helpers import ROOT, dummy_aws_credentials, load_handler, third_party_imports

HANDLER = ROOT / "handlers" / "studio_teardown" / "index.py"
studio = load_handler("studio_teardown")

ACCOUNT = "111122223333"
DOMAIN = "d-abc123def456"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:dev-studio-teardown"
RESPONSE_URL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?s=1"
#: When the invocation under test runs (epoch seconds) ...
NOW = 1_767_225_600.0
#: ... and how long it has (the function's 15 minutes).
FULL = 900.0
POLL = studio.POLL_SECONDS


def request(
    kind: str,
    *,
    profile: str | None = None,
    managed: list[str] | None = None,
    physical_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A CloudFormation request to the custom resource (``extra``: continuation fields)."""
    properties: dict[str, Any] = {"ServiceToken": FUNCTION_ARN, "DomainId": DOMAIN}
    if profile is not None:
        properties["UserProfileName"] = profile
    if managed is not None:
        properties["ManagedUserProfiles"] = managed
    event: dict[str, Any] = {
        "RequestType": kind,
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": RESPONSE_URL,
        "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/dev-Studio/guid",
        "RequestId": "7bfe2d54-0000-0000-0000-000000000000",
        "LogicalResourceId": "StudioTeardown",
        "ResourceType": "Custom::StudioTeardown",
        "ResourceProperties": properties,
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return {**event, **extra}


def delete_domain(**extra: Any) -> dict[str, Any]:
    return request("Delete", managed=["alice", "bob"], physical_id=f"{DOMAIN}/*", **extra)


def delete_profile(**extra: Any) -> dict[str, Any]:
    return request("Delete", profile="alice", physical_id=f"{DOMAIN}/alice", **extra)


def app(
    app_type: str, status: str, *, space: str | None = None, profile: str | None = None
) -> dict[str, Any]:
    """An app as ListApps shows it (of a space, or of a user profile)."""
    item: dict[str, Any] = {
        "DomainId": DOMAIN,
        "AppType": app_type,
        "AppName": "default",
        "Status": status,
    }
    if space is not None:
        item["SpaceName"] = space
    if profile is not None:
        item["UserProfileName"] = profile
    return item


def space(name: str, owner: str, status: str = "InService") -> dict[str, Any]:
    return {
        "DomainId": DOMAIN,
        "SpaceName": name,
        "Status": status,
        "OwnershipSettingsSummary": {"OwnerUserProfileName": owner},
        "SpaceSharingSettingsSummary": {"SharingType": "Private"},
    }


def profile(name: str, status: str = "InService") -> dict[str, Any]:
    return {"DomainId": DOMAIN, "UserProfileName": name, "Status": status}


def delete_app_params(item: dict[str, Any]) -> dict[str, str]:
    params = {"DomainId": DOMAIN, "AppType": item["AppType"], "AppName": item["AppName"]}
    for key in ("SpaceName", "UserProfileName"):
        if key in item:
            params[key] = item[key]
    return params


@dataclass
class Clock:
    """The time: a poll's sleep moves it on."""

    now: float = NOW
    slept: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Context:
    """The attributes of a Lambda context that the handler and Powertools' Logger read."""

    clock: Clock = field(default_factory=Clock)
    #: When the invocation is stopped (epoch seconds).
    ends: float = NOW + FULL
    function_name: str = "dev-studio-teardown"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = FUNCTION_ARN
    aws_request_id: str = "0f6a7c1e-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - self.clock.now) * 1000)


@dataclass
class Opener:
    """Stands for ``urllib.request.urlopen``: records the requests made."""

    requests: list[tuple[urllib.request.Request, float]] = field(default_factory=list)

    def __call__(self, req: urllib.request.Request, timeout: float) -> Any:
        self.requests.append((req, timeout))
        return _Closing()

    def answers(self) -> list[dict[str, Any]]:
        return [json.loads(req.data) for req, _ in self.requests]  # type: ignore[arg-type]


class _Closing:
    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *_: object) -> None:
        return None


class Aws:
    """Stubbed clients, the factory the handler makes them with, and the expected calls."""

    def __init__(self, sagemaker: Any, lambda_: Any) -> None:
        self.sagemaker = sagemaker
        self.lambda_ = lambda_
        self.stubs = {"sagemaker": Stubber(self.sagemaker), "lambda": Stubber(self.lambda_)}
        self.made: list[str] = []

    def clients(self, service: str) -> Any:
        self.made.append(service)
        return self.sagemaker if service == "sagemaker" else self.lambda_

    def _listing(self, operation: str, result: str, pages: tuple[list[dict], ...]) -> None:
        """One listing of the domain, one page per argument."""
        for index, items in enumerate(pages):
            answer: dict[str, Any] = {result: items}
            params = {"DomainIdEquals": DOMAIN}
            if index + 1 < len(pages):
                answer["NextToken"] = f"page-{index + 1}"
            if index > 0:
                params["NextToken"] = f"page-{index}"
            self.stubs["sagemaker"].add_response(operation, answer, params)

    def apps(self, *pages: list[dict[str, Any]]) -> None:
        self._listing("list_apps", "Apps", pages or ([],))

    def spaces(self, *pages: list[dict[str, Any]]) -> None:
        self._listing("list_spaces", "Spaces", pages or ([],))

    def profiles(self, *pages: list[dict[str, Any]]) -> None:
        self._listing("list_user_profiles", "UserProfiles", pages or ([],))

    def app_deleted(self, item: dict[str, Any]) -> None:
        self.stubs["sagemaker"].add_response("delete_app", {}, delete_app_params(item))

    def space_deleted(self, name: str) -> None:
        params = {"DomainId": DOMAIN, "SpaceName": name}
        self.stubs["sagemaker"].add_response("delete_space", {}, params)

    def profile_deleted(self, name: str) -> None:
        params = {"DomainId": DOMAIN, "UserProfileName": name}
        self.stubs["sagemaker"].add_response("delete_user_profile", {}, params)

    def fails(
        self, operation: str, code: str, message: str, params: dict[str, Any] | None = None
    ) -> None:
        self.stubs["sagemaker"].add_client_error(
            operation, code, message, http_status_code=400, expected_params=params
        )

    def handed_over(self, event: dict[str, Any], status_code: int = 202) -> None:
        """The asynchronous self-invocation with ``event``."""
        params = {
            "FunctionName": FUNCTION_ARN,
            "InvocationType": "Event",
            "Payload": json.dumps(event, sort_keys=True).encode(),
        }
        self.stubs["lambda"].add_response("invoke", {"StatusCode": status_code}, params)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    dummy_aws_credentials(monkeypatch, tmp_path)
    return monkeypatch


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """Real sagemaker and lambda clients, made once (loading SageMaker's model is slow)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dummy_aws_credentials(monkeypatch, tmp_path_factory.mktemp("aws"))
        yield (
            boto3.client("sagemaker", region_name="us-east-1"),
            boto3.client("lambda", region_name="us-east-1"),
        )


@pytest.fixture
def aws(clients: tuple[Any, Any], credentials: pytest.MonkeyPatch) -> Iterator[Aws]:
    """The clients with fresh Stubbers: every queued call must be made."""
    stubbed = Aws(*clients)
    for stub in stubbed.stubs.values():
        stub.activate()
    yield stubbed
    for stub in stubbed.stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


@dataclass
class Run:
    """One invocation's outcome: the answer (``None``: handed over), what was PUT, and the
    polls."""

    answer: dict[str, Any] | None
    opener: Opener
    clock: Clock


def run(aws: Aws, event: dict[str, Any], *, remaining: float = FULL) -> Run:
    """Invokes the handler's core with ``remaining`` seconds left in the invocation."""
    clock = Clock()
    context = Context(clock=clock, ends=NOW + remaining)
    opener = Opener()
    runtime = studio.Runtime(aws.clients, opener, clock.sleep, clock.time)
    answer = studio.process(event, context, runtime)  # type: ignore[arg-type]
    if answer is None:
        assert opener.requests == []
    else:
        assert opener.answers() == [answer]
    return Run(answer, opener, clock)


# --- Create and Update ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Create", "Update"])
@pytest.mark.parametrize(
    ("user_profile", "physical_id"), [(None, f"{DOMAIN}/*"), ("alice", f"{DOMAIN}/alice")]
)
def test_create_and_update_answer_success_with_no_aws_call(
    aws: Aws, kind: str, user_profile: str | None, physical_id: str
) -> None:
    extra = {"PhysicalResourceId": f"{DOMAIN}/*"} if kind == "Update" else {}
    result = run(aws, request(kind, profile=user_profile, managed=["alice"], **extra))
    assert result.answer is not None
    assert result.answer["Status"] == "SUCCESS"
    assert result.answer["PhysicalResourceId"] == physical_id
    assert aws.made == []


def test_an_update_to_another_domain_gives_a_new_physical_id(aws: Aws) -> None:
    """CloudFormation then deletes the old one: a Delete of the old domain's resource."""
    event = request("Update", physical_id="d-old000000000/*")
    answer = run(aws, event).answer
    assert answer is not None and answer["PhysicalResourceId"] == f"{DOMAIN}/*"


def test_the_answer_is_put_to_the_response_url_as_cloudformation_requires(aws: Aws) -> None:
    result = run(aws, request("Create"))
    ((req, timeout),) = result.opener.requests
    assert req.get_method() == "PUT"
    assert req.full_url == RESPONSE_URL
    assert req.get_header("Content-type") == ""  # the pre-signed URL signs an empty type
    assert req.get_header("Content-length") == str(len(req.data))  # type: ignore[arg-type]
    assert timeout <= 30
    body = json.loads(req.data)  # type: ignore[arg-type]
    assert body == {
        "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/dev-Studio/guid",
        "RequestId": "7bfe2d54-0000-0000-0000-000000000000",
        "LogicalResourceId": "StudioTeardown",
        "PhysicalResourceId": f"{DOMAIN}/*",
        "Status": "SUCCESS",
        "Reason": "nothing to do",
    }


# --- Delete ---------------------------------------------------------------------------------


def test_deleting_the_domain_empties_it_then_deletes_unmanaged_profiles(aws: Aws) -> None:
    """Live apps are deleted; one already Deleting is waited for, one Deleted left alone;
    then the spaces; then the profile made by hand (carol), not the stack's (alice, bob)."""
    lab = app("JupyterLab", "InService", space="alice-space")
    canvas = app("Canvas", "InService", profile="bob")
    editor = app("CodeEditor", "Deleting", space="shared")
    classic = app("JupyterServer", "Deleted", profile="alice")
    # the apps: two pages; two deleted; then polled until none is left
    aws.apps([lab, canvas], [editor, classic])
    aws.app_deleted(lab)
    aws.app_deleted(canvas)
    aws.apps([{**lab, "Status": "Deleting"}, {**canvas, "Status": "Deleted"}, editor, classic])
    aws.apps([{**a, "Status": "Deleted"} for a in (lab, canvas, editor, classic)])
    # the spaces: both deleted, then waited for until no longer listed
    aws.spaces([space("alice-space", "alice"), space("shared", "bob")])
    aws.space_deleted("alice-space")
    aws.space_deleted("shared")
    aws.spaces([space("alice-space", "alice", "Deleting")])
    aws.spaces([])
    # the user profiles: carol's only
    aws.profiles([profile("alice"), profile("bob"), profile("carol")])
    aws.profile_deleted("carol")
    aws.profiles([profile("alice"), profile("bob"), profile("carol", "Deleting")])
    aws.profiles([profile("alice"), profile("bob")])
    result = run(aws, delete_domain())
    assert result.answer is not None
    assert result.answer["Status"] == "SUCCESS", result.answer["Reason"]
    assert result.answer["PhysicalResourceId"] == f"{DOMAIN}/*"
    assert result.clock.slept == [POLL] * 6  # two polls a kind
    assert aws.made == ["sagemaker"]


def test_deleting_a_profile_touches_only_its_apps_and_spaces(aws: Aws) -> None:
    """alice's own apps and those of the spaces she owns; not bob's, not his spaces'. Her
    Failed app is deleted once and not waited for. No user profile is deleted."""
    aws.spaces([space("alice-space", "alice"), space("bob-space", "bob")])  # who owns what
    lab = app("JupyterLab", "InService", space="alice-space")
    canvas = app("Canvas", "InService", profile="alice")
    failed = app("KernelGateway", "Failed", profile="alice")
    others = [
        app("JupyterLab", "InService", space="bob-space"),
        app("Canvas", "InService", profile="bob"),
    ]
    aws.apps([lab, canvas, failed, *others])
    aws.app_deleted(lab)
    aws.app_deleted(canvas)
    aws.app_deleted(failed)
    aws.apps([{**a, "Status": "Deleted"} for a in (lab, canvas, failed)] + others)
    aws.spaces([space("alice-space", "alice"), space("bob-space", "bob")])
    aws.space_deleted("alice-space")
    aws.spaces([space("bob-space", "bob")])
    result = run(aws, delete_profile())
    assert result.answer is not None
    assert result.answer["Status"] == "SUCCESS", result.answer["Reason"]
    assert result.answer["PhysicalResourceId"] == f"{DOMAIN}/alice"
    assert result.clock.slept == [POLL] * 2


def test_nothing_left_answers_success_without_waiting(aws: Aws) -> None:
    aws.apps([app("JupyterLab", "Deleted", space="s"), app("Canvas", "Failed", profile="bob")])
    aws.app_deleted(app("Canvas", "Failed", profile="bob"))  # a Failed app: tried once
    aws.spaces()
    aws.profiles([profile("alice"), profile("bob")])
    result = run(aws, delete_domain())
    assert result.answer is not None and result.answer["Status"] == "SUCCESS"
    assert result.clock.slept == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ResourceNotFound", f"Domain {DOMAIN} not found"),
        ("ValidationException", f"Domain {DOMAIN} does not exist"),
    ],
)
@pytest.mark.parametrize(
    ("event", "listing"), [(delete_domain(), "list_apps"), (delete_profile(), "list_spaces")]
)
def test_a_domain_already_gone_answers_success(
    aws: Aws, code: str, message: str, event: dict[str, Any], listing: str
) -> None:
    aws.fails(listing, code, message, {"DomainIdEquals": DOMAIN})
    answer = run(aws, event).answer
    assert answer is not None and answer["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ResourceNotFound", "App does not exist"),
        ("ValidationException", "RecordNotFound: App [default] does not exist"),
    ],
)
def test_an_app_that_vanished_before_its_delete_is_not_an_error(
    aws: Aws, code: str, message: str
) -> None:
    lab = app("JupyterLab", "InService", space="s")
    aws.apps([lab])
    aws.fails("delete_app", code, message, delete_app_params(lab))
    aws.apps([])  # it is gone
    aws.spaces([space("s", "alice")])
    aws.fails("delete_space", "ResourceNotFound", "Space s does not exist")  # gone too
    aws.spaces([])
    aws.profiles([])
    answer = run(aws, delete_domain()).answer
    assert answer is not None and answer["Status"] == "SUCCESS"


def test_a_space_still_in_use_is_deleted_again_at_the_next_poll(aws: Aws) -> None:
    aws.apps([])
    aws.spaces([space("s", "alice")])
    in_use = "Space s has apps that are being deleted"
    aws.fails("delete_space", "ResourceInUse", in_use, {"DomainId": DOMAIN, "SpaceName": "s"})
    aws.spaces([space("s", "alice")])
    aws.space_deleted("s")
    aws.spaces([space("s", "alice", "Deleting")])
    aws.spaces([])
    aws.profiles([])
    result = run(aws, delete_domain())
    assert result.answer is not None and result.answer["Status"] == "SUCCESS"
    assert result.clock.slept == [POLL] * 3


def test_a_failed_app_whose_delete_is_refused_counts_as_gone(aws: Aws) -> None:
    failed = app("JupyterLab", "Failed", space="s")
    aws.apps([failed])
    refused = "App is in Failed state"
    aws.fails("delete_app", "ValidationException", refused, delete_app_params(failed))
    aws.spaces()
    aws.profiles()
    answer = run(aws, delete_domain()).answer
    assert answer is not None and answer["Status"] == "SUCCESS"


def test_a_validation_error_that_is_not_about_a_missing_app_fails(aws: Aws) -> None:
    """Only "does not exist" (or "not found") counts as gone: anything else is an error."""
    lab = app("JupyterLab", "InService", space="s")
    aws.apps([lab])
    aws.fails("delete_app", "ValidationException", "Invalid request", delete_app_params(lab))
    answer = run(aws, delete_domain()).answer
    assert answer is not None and answer["Status"] == "FAILED"
    assert "ValidationException" in answer["Reason"] and "Invalid request" in answer["Reason"]


def test_an_unexpected_aws_error_answers_failed_with_the_error(aws: Aws) -> None:
    denied = "User is not authorized to perform: sagemaker:ListApps"
    aws.fails("list_apps", "AccessDeniedException", denied, {"DomainIdEquals": DOMAIN})
    answer = run(aws, delete_domain()).answer
    assert answer is not None and answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == f"{DOMAIN}/*"
    assert answer["Reason"].startswith("ClientError: ")
    assert "AccessDeniedException" in answer["Reason"] and denied in answer["Reason"]


# --- time -----------------------------------------------------------------------------------


def test_running_out_of_time_hands_over_to_the_next_invocation(aws: Aws) -> None:
    """Less than the margin left, work remains: one asynchronous self-invocation with the
    same event, when the teardown started and the next attempt's number; no answer."""
    lab = app("JupyterLab", "InService", space="s")
    aws.apps([lab])
    aws.app_deleted(lab)
    event = delete_domain()
    aws.handed_over({**event, studio.STARTED_AT: NOW, studio.ATTEMPT: 2})
    result = run(aws, event, remaining=studio.MARGIN_SECONDS - 1)
    assert result.answer is None
    assert result.opener.requests == []
    assert aws.made == ["sagemaker", "lambda"]


def test_a_continued_invocation_keeps_when_the_teardown_started(aws: Aws) -> None:
    started = NOW - 20 * 60
    editor = app("CodeEditor", "Deleting", space="s")  # waited for, not deleted again
    aws.apps([editor])
    aws.apps([editor])
    event = delete_domain(**{studio.STARTED_AT: started, studio.ATTEMPT: 2})
    aws.handed_over({**event, studio.ATTEMPT: 3})
    result = run(aws, event, remaining=studio.MARGIN_SECONDS + POLL / 2)  # one poll fits
    assert result.answer is None
    assert result.clock.slept == [POLL]


def test_past_the_budget_the_answer_is_failed_naming_what_is_left(aws: Aws) -> None:
    started = NOW - 51 * 60
    canvas = app("Canvas", "InService", profile="carol")
    aws.apps([app("JupyterLab", "Deleting", space="s1"), canvas])
    aws.app_deleted(canvas)
    event = delete_domain(**{studio.STARTED_AT: started, studio.ATTEMPT: 4})
    result = run(aws, event)
    assert result.answer is not None and result.answer["Status"] == "FAILED"
    reason = result.answer["Reason"]
    assert f"domain {DOMAIN} is not done after 51 min and 4 invocation(s)" in reason
    assert "app JupyterLab default of space s1 (Deleting)" in reason
    assert "app Canvas default of user profile carol (InService)" in reason
    assert "lambda" not in aws.made


def test_the_budget_running_out_while_waiting_answers_failed(aws: Aws) -> None:
    aws.apps([])
    aws.spaces([space("s", "alice", "Deleting")])
    aws.spaces([space("s", "alice", "Deleting")])
    event = delete_domain(**{studio.STARTED_AT: NOW - studio.BUDGET_SECONDS + 1})
    result = run(aws, event)
    assert result.clock.slept == [POLL]
    assert result.answer is not None and result.answer["Status"] == "FAILED"
    assert "still left: space s (Deleting)" in result.answer["Reason"]


def test_too_many_invocations_answer_failed(aws: Aws) -> None:
    aws.apps([app("JupyterLab", "Deleting", space="s")])
    event = delete_domain(**{studio.STARTED_AT: NOW - 60, studio.ATTEMPT: studio.MAX_INVOCATIONS})
    answer = run(aws, event, remaining=1).answer
    assert answer is not None and answer["Status"] == "FAILED"


def test_a_refused_self_invocation_answers_failed(aws: Aws) -> None:
    aws.apps([app("JupyterLab", "Deleting", space="s")])
    event = delete_domain()
    aws.handed_over({**event, studio.STARTED_AT: NOW, studio.ATTEMPT: 2}, status_code=500)
    answer = run(aws, event, remaining=1).answer
    assert answer is not None and answer["Status"] == "FAILED"
    assert "did not queue the next invocation" in answer["Reason"]


# --- the properties -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({}, "DomainId must be"),
        ({"DomainId": DOMAIN, "UserProfileName": ""}, "UserProfileName must be"),
        ({"DomainId": DOMAIN, "ManagedUserProfiles": "alice"}, "ManagedUserProfiles must be"),
    ],
)
def test_malformed_properties_fail_a_create(
    aws: Aws, properties: dict[str, Any], message: str
) -> None:
    event = {**request("Create"), "ResourceProperties": properties}
    answer = run(aws, event).answer
    assert answer is not None and answer["Status"] == "FAILED"
    assert message in answer["Reason"]
    assert answer["PhysicalResourceId"] == "StudioTeardown"
    assert aws.made == []


def test_the_delete_after_a_failed_create_succeeds_doing_nothing(aws: Aws) -> None:
    """Its properties never succeeded: nothing was created (else the stack would be stuck)."""
    event = {**request("Delete", physical_id="StudioTeardown"), "ResourceProperties": {}}
    answer = run(aws, event).answer
    assert answer is not None and answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "StudioTeardown"
    assert aws.made == []


def test_a_long_reason_is_cut_to_cloudformations_limit() -> None:
    body = studio.response(request("Delete"), "FAILED", f"{DOMAIN}/*", "space x (Deleting), " * 500)
    assert len(json.dumps(body).encode()) <= studio.MAX_RESPONSE_BYTES == 4096
    assert body["Reason"].endswith("...") and body["Reason"].startswith("space x (Deleting), ")
    assert studio.truncate("short", 100) == "short"


# --- the Lambda entry point and the package -------------------------------------------------


def test_the_handler_wires_the_clients_and_answers(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    opener = Opener()
    monkeypatch.setattr(studio, "make_client", aws.clients)
    monkeypatch.setattr(urllib.request, "urlopen", opener)
    aws.fails("list_apps", "ResourceNotFound", "Domain not found", {"DomainIdEquals": DOMAIN})
    assert studio.handler(request("Create", profile="alice"), Context()) is None
    assert studio.handler(delete_domain(), Context()) is None
    answers = opener.answers()
    assert [(a["Status"], a["PhysicalResourceId"]) for a in answers] == [
        ("SUCCESS", f"{DOMAIN}/alice"),
        ("SUCCESS", f"{DOMAIN}/*"),
    ]


def test_clients_have_short_timeouts_and_bounded_retries(credentials: pytest.MonkeyPatch) -> None:
    studio.make_client.cache_clear()
    try:
        for service in ("sagemaker", "lambda"):
            client = studio.make_client(service)
            config = client.meta.config
            assert (config.connect_timeout, config.read_timeout) == (3, 10)
            assert config.retries == {"mode": "standard", "total_max_attempts": 3}
            assert client.meta.region_name == "us-east-1"
            assert studio.make_client(service) is client
    finally:
        studio.make_client.cache_clear()


def test_stubbed_calls_are_checked_against_botocores_shapes(aws: Aws) -> None:
    """What makes the stubs above prove real parameter and field names."""
    aws.stubs["sagemaker"].add_response("delete_space", {})
    with pytest.raises(ParamValidationError):
        aws.sagemaker.delete_space(DomainId=DOMAIN, Space="s")
    aws.sagemaker.delete_space(DomainId=DOMAIN, SpaceName="s")  # the queued answer
    with pytest.raises(ParamValidationError):
        aws.stubs["sagemaker"].add_response("list_apps", {"Applications": []})


def test_the_handler_imports_nothing_of_the_project() -> None:
    """The Lambda package is the file alone: the stdlib, boto3/botocore and Powertools."""
    assert third_party_imports(HANDLER) <= {"boto3", "botocore", "aws_lambda_powertools"}


def test_time_is_checked_before_each_delete_not_only_before_sleeping() -> None:
    """One delete may take tens of seconds: when time runs out in the middle of a listing,
    the round's first delete is made and the rest is left for the next invocation instead
    of overrunning Lambda's time-out."""
    calls: list[str] = []

    class Client:
        def delete_app(self, **params: str) -> None:
            calls.append(params["AppName"])

    items = [
        studio.Item("app", name, "InService", (("DomainId", DOMAIN), ("AppName", name)))
        for name in ("one", "two", "three")
    ]
    phase = studio.Phase(
        kind="app", operation="delete_app", list_items=lambda: items,
        not_deleted=frozenset({"Deleted", "Deleting"}), gone=frozenset({"Deleted", "Failed"}),
    )  # fmt: skip
    budget = iter([True])
    left = studio.settle(
        Client(), phase, out_of_time=lambda: next(budget, True), sleep=lambda _: None
    )
    assert calls == ["one"]
    assert left == ["app one (InService)", "app two (InService)", "app three (InService)"]


def test_the_handler_budget_fits_the_construct_time_outs() -> None:
    """The construct's time-outs and the handler's budget are one arrangement: the handler
    hands over before Lambda stops it, and answers before CloudFormation gives up."""
    from constructs.studio_domain import TEARDOWN_FUNCTION_TIMEOUT, TEARDOWN_SERVICE_TIMEOUT

    function_seconds = TEARDOWN_FUNCTION_TIMEOUT.to_seconds()
    assert function_seconds > studio.MARGIN_SECONDS + studio.POLL_SECONDS
    # The budget is checked within an invocation too: past it, at most one call and the
    # answer (within the margin) remain.
    assert TEARDOWN_SERVICE_TIMEOUT.to_seconds() > studio.BUDGET_SECONDS + studio.MARGIN_SECONDS
    assert (
        studio.MAX_INVOCATIONS * (function_seconds - studio.MARGIN_SECONDS) >= studio.BUDGET_SECONDS
    )

"""Approving or rejecting a model version: the stage's version record follows, once.

The handler (handlers/model_approval) runs against real botocore clients wrapped in
Stubbers, each call's parameters asserted exactly: a call not stubbed fails the test, so a
test that stubs nothing proves that no AWS call was made. The environment is the one the
construct sets, from mlops/serving_record.py.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cdk_helpers import (
    ROOT,
    dummy_aws_credentials,
    lambda_context,
    load_handler,
    third_party_imports,
)

from mlops.serving_record import (
    APPROVED,
    NO_VERSION,
    PENDING,
    PROMOTED_FROM_KEY,
    RECORD_CHANGED,
    REJECTED,
    RELEASE_EVENT_SOURCE,
    group_prefix,
    model_package_group_name,
    record_name,
)

HANDLER = ROOT / "handlers" / "model_approval" / "index.py"
approval = load_handler("model_approval")

ACCOUNT = "111122223333"
#: The release account's bus: another account and another region than the function's.
BUS_REGION = "eu-west-1"
BUS = f"arn:aws:events:{BUS_REGION}:444455556666:event-bus/default"
MODEL = "breast-cancer"
STAGING = model_package_group_name("staging", MODEL)
STAGING_RECORD = record_name("staging", MODEL)
PROD = model_package_group_name("prod", MODEL)
PROD_RECORD = record_name("prod", MODEL)
COMPLETED = "Completed"
UTC = datetime.UTC
#: When the events happened (their ``time``) ...
EVENT_TIME = "2026-01-01T09:00:00Z"
#: ... and when the records were last written: before, unless a test says otherwise.
WRITTEN = datetime.datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def arn(version: int, group: str = STAGING) -> str:
    return f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/{group}/{version}"


def promoted(version: int) -> dict[str, str]:
    """The metadata of a version promoted into prod from staging's ``version``."""
    return {PROMOTED_FROM_KEY: arn(version)}


def event(
    version: int,
    status: str,
    group: str = STAGING,
    metadata: dict[str, str] | None = None,
    *,
    time: str | None = EVENT_TIME,
    package_status: str | None = COMPLETED,
) -> dict[str, Any]:
    """A "SageMaker Model Package State Change" event as EventBridge delivers it (``None``:
    without that field)."""
    detail: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn(version, group),
        "ModelPackageName": group,
        "CreationTime": 1767225600000,
        "ModelApprovalStatus": status,
    }
    if package_status is not None:
        detail["ModelPackageStatus"] = package_status
    if metadata is not None:
        detail["CustomerMetadataProperties"] = metadata
    payload: dict[str, Any] = {
        "version": "0",
        "id": "5b2a1c2e-0000-0000-0000-000000000000",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "region": "us-east-1",
        "resources": [arn(version, group)],
        "detail": detail,
    }
    if time is not None:
        payload["time"] = time
    return payload


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime.datetime:
    """A time of the events' day (UTC)."""
    return datetime.datetime(2026, 1, 1, hour, minute, second, microsecond, tzinfo=UTC)


def _client(service: str, region: str) -> Any:
    return boto3.client(
        service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
    )


class Aws:
    """Stubbed clients, and the factory the handler makes its clients with."""

    def __init__(self) -> None:
        self.ssm = _client("ssm", "us-east-1")
        self.sagemaker = _client("sagemaker", "us-east-1")
        self.events = _client("events", BUS_REGION)
        self.stubs = {name: Stubber(getattr(self, name)) for name in ("ssm", "sagemaker", "events")}
        self.made: list[tuple[str, str | None]] = []

    def clients(self, service: str, region: str | None) -> Any:
        self.made.append((service, region))
        return getattr(self, service)

    # --- expected calls -----------------------------------------------------------------

    def describe(
        self,
        version: int,
        status: str,
        group: str = STAGING,
        metadata: dict[str, str] | None = None,
        package_status: str = COMPLETED,
    ) -> None:
        response: dict[str, Any] = {
            "ModelPackageName": group,
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn(version, group),
            "CreationTime": datetime.datetime(2026, 1, 1),
            "ModelPackageStatus": package_status,
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": status,
        }
        if metadata is not None:
            response["CustomerMetadataProperties"] = metadata
        self.stubs["sagemaker"].add_response(
            "describe_model_package", response, {"ModelPackageName": arn(version, group)}
        )

    def approved(self, *pages: list[int], group: str = STAGING) -> None:
        """ListModelPackages of the group's approved versions, one page per argument."""
        for index, versions in enumerate(pages):
            response: dict[str, Any] = {
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageGroupName": group,
                        "ModelPackageVersion": v,
                        "ModelPackageArn": arn(v, group),
                        "CreationTime": datetime.datetime(2026, 1, v),
                        "ModelPackageStatus": "Completed",
                        "ModelApprovalStatus": APPROVED,
                    }
                    for v in versions
                ]
            }
            params = {"ModelPackageGroupName": group, "ModelApprovalStatus": APPROVED}
            if index + 1 < len(pages):
                response["NextToken"] = f"page-{index + 1}"
            if index > 0:
                params["NextToken"] = f"page-{index}"
            self.stubs["sagemaker"].add_response("list_model_packages", response, params)

    def record_holds(
        self,
        value: str,
        name: str = STAGING_RECORD,
        *,
        modified: datetime.datetime = WRITTEN,
        version: int = 3,
    ) -> None:
        """GetParameter of the record: what it holds, since when (``LastModifiedDate``)."""
        parameter = {
            "Name": name,
            "Type": "String",
            "Value": value,
            "Version": version,
            "LastModifiedDate": modified,
        }
        self.stubs["ssm"].add_response("get_parameter", {"Parameter": parameter}, {"Name": name})

    def record_was(
        self,
        version: int,
        value: str,
        modified: datetime.datetime,
        name: str = STAGING_RECORD,
    ) -> None:
        """GetParameter of one of the record's earlier versions (``<name>:<version>``)."""
        parameter = {
            "Name": name,
            "Type": "String",
            "Value": value,
            "Version": version,
            "Selector": f":{version}",
            "LastModifiedDate": modified,
        }
        self.stubs["ssm"].add_response(
            "get_parameter", {"Parameter": parameter}, {"Name": f"{name}:{version}"}
        )

    def record_set(self, value: str, name: str = STAGING_RECORD) -> None:
        self.stubs["ssm"].add_response(
            "put_parameter",
            {"Version": 4, "Tier": "Standard"},
            {"Name": name, "Value": value, "Type": "String", "Overwrite": True},
        )

    def released(self, detail: dict[str, Any], response: dict[str, Any] | None = None) -> None:
        entry = {
            "Source": RELEASE_EVENT_SOURCE,
            "DetailType": RECORD_CHANGED,
            "Detail": json.dumps(detail, sort_keys=True),
            "EventBusName": BUS,
        }
        self.stubs["events"].add_response(
            "put_events",
            response or {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
            {"Entries": [entry]},
        )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The staging function's environment (released by approval, not by promotion)."""
    for name, value in {
        "STAGE": "staging",
        "GROUP_PREFIX": group_prefix("staging"),
        "RECORD_NAME_TEMPLATE": record_name("staging", "{model}"),
        "NO_VERSION": NO_VERSION,
        "RELEASE_EVENT_BUS_ARN": BUS,
        "RELEASE_EVENT_SOURCE": RELEASE_EVENT_SOURCE,
        "RELEASE_DETAIL_TYPE": RECORD_CHANGED,
        "PROMOTED_FROM_KEY": PROMOTED_FROM_KEY,
        "PROMOTED_ONLY": "false",
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def prod(env: pytest.MonkeyPatch) -> None:
    """The prod function's environment: only promoted versions may be served."""
    env.setenv("STAGE", "prod")
    env.setenv("GROUP_PREFIX", group_prefix("prod"))
    env.setenv("RECORD_NAME_TEMPLATE", record_name("prod", "{model}"))
    env.setenv("PROMOTED_ONLY", "true")


@pytest.fixture
def aws(env: pytest.MonkeyPatch) -> Iterator[Aws]:
    stubbed = Aws()
    env.setattr(approval, "make_client", stubbed.clients)
    for stub in stubbed.stubs.values():
        stub.activate()
    yield stubbed
    for stub in stubbed.stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def run(payload: dict[str, Any]) -> dict[str, Any]:
    return approval.handler(payload, lambda_context("staging-model-approval", ACCOUNT))


def change(before: str, after: str, reason: str, **overrides: str) -> dict[str, Any]:
    """The release event's detail."""
    detail = {
        "stage": "staging",
        "model_package_group": STAGING,
        "record": STAGING_RECORD,
        "before": before,
        "after": after,
        "reason": reason,
    }
    return {**detail, **overrides}


# --- approved -------------------------------------------------------------------------------


def test_an_approved_version_is_recorded_and_the_release_account_told(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.released(change(arn(6), arn(7), "version 7 approved"))
    outcome = run(event(7, APPROVED))
    assert outcome == {
        "action": "recorded",
        "reason": "version 7 approved",
        "before": arn(6),
        "after": arn(7),
    }
    # the record first; ssm and sagemaker in the function's region, events in the bus's
    assert aws.made == [("ssm", None), ("sagemaker", None), ("events", BUS_REGION)]


def test_the_first_approved_version_replaces_none(aws: Aws) -> None:
    aws.record_holds(NO_VERSION)
    aws.describe(1, APPROVED)
    aws.record_set(arn(1))
    aws.released(change(NO_VERSION, arn(1), "version 1 approved"))
    assert run(event(1, APPROVED))["action"] == "recorded"


def test_an_approved_version_already_recorded_writes_and_sends_nothing(aws: Aws) -> None:
    aws.record_holds(arn(7))
    aws.describe(7, APPROVED)
    outcome = run(event(7, APPROVED))
    assert outcome["action"] == "unchanged"
    assert outcome["before"] == outcome["after"] == arn(7)
    assert ("events", BUS_REGION) not in aws.made


def test_the_same_event_twice_gives_one_write_and_one_event(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.released(change(arn(6), arn(7), "version 7 approved"))
    # the second time, the record was written (by the first) after the event
    aws.record_holds(arn(7), modified=at(9, 0, 2), version=4)
    aws.record_was(2, NO_VERSION, WRITTEN)  # not a restore: nothing undone
    assert [run(event(7, APPROVED))["action"] for _ in range(2)] == ["recorded", "ignored"]


def test_the_same_event_twice_within_its_second_gives_one_write_and_one_event(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.released(change(arn(6), arn(7), "version 7 approved"))
    aws.record_holds(arn(7), modified=at(9, 0, 0, 300_000), version=4)  # not older: to the second
    aws.describe(7, APPROVED)
    assert [run(event(7, APPROVED))["action"] for _ in range(2)] == ["recorded", "unchanged"]


def test_re_approving_an_older_version_rolls_back_to_it(aws: Aws) -> None:
    reason = "version 5 approved; rolled back from version 7"
    aws.record_holds(arn(7))
    aws.describe(5, APPROVED)
    aws.record_set(arn(5))
    aws.released(change(arn(7), arn(5), reason))
    assert run(event(5, APPROVED)) == {
        "action": "recorded",
        "reason": reason,
        "before": arn(7),
        "after": arn(5),
    }


# --- rejected -------------------------------------------------------------------------------


def test_rejecting_the_served_version_rolls_back_to_the_previous_approved(aws: Aws) -> None:
    reason = "version 7 rejected; rolled back to version 6"
    aws.record_holds(arn(7))
    aws.describe(7, REJECTED)
    # two pages, in no order; the rejected version may still be listed (eventual consistency)
    aws.approved([4, 6], [7, 2])
    aws.describe(6, APPROVED)  # the newest other one: completed and still approved
    aws.record_set(arn(6))
    aws.released(change(arn(7), arn(6), reason))
    assert run(event(7, REJECTED)) == {
        "action": "recorded",
        "reason": reason,
        "before": arn(7),
        "after": arn(6),
    }


def test_rejecting_the_only_approved_version_records_none(aws: Aws) -> None:
    reason = "version 7 rejected; no approved version remains"
    aws.record_holds(arn(7))
    aws.describe(7, REJECTED)
    aws.approved([])
    aws.record_set(NO_VERSION)
    aws.released(change(arn(7), NO_VERSION, reason))
    outcome = run(event(7, REJECTED))
    assert outcome["action"] == "recorded" and outcome["after"] == NO_VERSION
    assert outcome["reason"] == reason


def test_rejecting_a_version_that_is_not_served_changes_nothing(aws: Aws) -> None:
    aws.record_holds(arn(7))
    aws.describe(5, REJECTED)
    outcome = run(event(5, REJECTED))
    assert outcome["action"] == "ignored"
    assert outcome["before"] == outcome["after"] == arn(7)
    assert "not served" in outcome["reason"]


# --- ignored --------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["dev-breast-cancer", PROD, group_prefix("staging")])
def test_a_group_without_the_prefix_or_a_model_is_ignored_with_no_aws_call(
    aws: Aws, group: str
) -> None:
    outcome = run(event(3, APPROVED, group=group))
    assert outcome["action"] == "ignored" and "no version record" in outcome["reason"]
    assert aws.made == []


def record_missing(aws: Aws, name: str) -> None:
    aws.stubs["ssm"].add_client_error(
        "get_parameter", "ParameterNotFound", expected_params={"Name": name}
    )


@pytest.mark.parametrize("status", [APPROVED, REJECTED])
def test_a_group_with_the_prefix_but_no_record_is_ignored_with_a_warning(
    aws: Aws, caplog: pytest.LogCaptureFixture, status: str
) -> None:
    """Something else's group named like the stage's: its record does not exist (the data
    stack creates every model's record before the rule exists). No other call stubbed."""
    other, record = "staging-other-project", record_name("staging", "other-project")
    record_missing(aws, record)
    outcome = run(event(3, status, group=other))
    assert outcome["action"] == "ignored"
    assert outcome["before"] is None and outcome["after"] is None
    assert "not one of stage staging's models" in outcome["reason"]
    assert other in outcome["reason"] and record in outcome["reason"]
    assert aws.made == [("ssm", None)]  # no describe, no write, no event
    (warning,) = [r for r in caplog.records if r.name == approval.logger.name]  # only it
    assert warning.levelno == logging.WARNING
    assert other in warning.getMessage() and record in warning.getMessage()


@pytest.mark.parametrize("status", [PENDING, ""])
def test_another_status_is_ignored_with_no_aws_call(aws: Aws, status: str) -> None:
    outcome = run(event(7, status))
    assert outcome["action"] == "ignored" and "only Approved and Rejected" in outcome["reason"]
    assert aws.made == []


def test_a_stale_event_is_ignored(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.describe(7, REJECTED)  # approved, then rejected before the approval's event arrived
    outcome = run(event(7, APPROVED))
    assert outcome["action"] == "ignored" and outcome["reason"].startswith("stale event")
    assert aws.made == [("ssm", None), ("sagemaker", None)]  # no write, no event


def test_an_event_of_a_deleted_version_is_ignored(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.stubs["sagemaker"].add_client_error(
        "describe_model_package",
        "ValidationException",
        f"ModelPackage {arn(7)} does not exist.",
        expected_params={"ModelPackageName": arn(7)},
    )
    outcome = run(event(7, APPROVED))
    assert outcome["action"] == "ignored" and "no longer exists" in outcome["reason"]


def test_another_sagemaker_error_fails_the_invocation(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.stubs["sagemaker"].add_client_error("describe_model_package", "ThrottlingException")
    with pytest.raises(ClientError, match="ThrottlingException"):
        run(event(7, APPROVED))


# --- not completed: being created or deleted, or only its metadata updated -----------------


@pytest.mark.parametrize("package_status", ["InProgress", "Pending", "Deleting", "Failed", ""])
@pytest.mark.parametrize("status", [APPROVED, REJECTED])
def test_an_event_of_a_package_not_completed_is_ignored_with_no_aws_call(
    aws: Aws, status: str, package_status: str
) -> None:
    outcome = run(event(7, status, package_status=package_status))
    assert outcome["action"] == "ignored"
    assert "not Completed: only a completed package changes a record" in outcome["reason"]
    assert aws.made == []


def test_an_event_without_a_package_status_is_processed(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.released(change(arn(6), arn(7), "version 7 approved"))
    assert run(event(7, APPROVED, package_status=None))["action"] == "recorded"


@pytest.mark.parametrize("status", [APPROVED, REJECTED])
def test_a_package_being_deleted_now_is_ignored(aws: Aws, status: str) -> None:
    """The event said Completed; DescribeModelPackage says Deleting: nothing written, no
    event (neither is stubbed), whatever the approval status."""
    aws.record_holds(arn(7))
    aws.describe(7, status, package_status="Deleting")
    outcome = run(event(7, status))
    assert outcome["action"] == "ignored"
    assert outcome["reason"] == (
        "version 7 is Deleting now, not Completed: a stale event, or a package not usable "
        "(being deleted)"
    )
    assert aws.made == [("ssm", None), ("sagemaker", None)]


def test_a_rollback_skips_candidates_not_completed_or_no_longer_approved(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reason = "version 7 rejected; rolled back to version 4"
    aws.record_holds(arn(7))
    aws.describe(7, REJECTED)
    aws.approved([4, 5, 6])
    aws.describe(6, APPROVED, package_status="Deleting")
    aws.describe(5, REJECTED)  # the list still has it (eventual consistency)
    aws.describe(4, APPROVED)
    aws.record_set(arn(4))
    aws.released(change(arn(7), arn(4), reason))
    assert run(event(7, REJECTED))["reason"] == reason
    skipped = [r for r in caplog.records if r.getMessage() == "rollback candidate skipped"]
    assert [(r.candidate, r.reason) for r in skipped] == [  # type: ignore[attr-defined]
        (arn(6), "it is Deleting, not Completed"),
        (arn(5), "it is now Rejected"),
    ]


def test_a_rollback_with_only_packages_not_completed_left_records_none(aws: Aws) -> None:
    aws.record_holds(arn(7))
    aws.describe(7, REJECTED)
    aws.approved([6])
    aws.describe(6, APPROVED, package_status="Deleting")
    aws.record_set(NO_VERSION)
    aws.released(change(arn(7), NO_VERSION, "version 7 rejected; no approved version remains"))
    assert run(event(7, REJECTED))["after"] == NO_VERSION


def test_prod_rolls_back_only_to_a_completed_promoted_version(aws: Aws, prod: None) -> None:
    reason = "version 4 rejected; rolled back to version 2"
    aws.record_holds(arn(4, PROD), name=PROD_RECORD)
    aws.describe(4, REJECTED, group=PROD, metadata=promoted(7))
    aws.approved([2, 3], group=PROD)
    aws.describe(3, APPROVED, group=PROD, metadata=promoted(6), package_status="Deleting")
    aws.describe(2, APPROVED, group=PROD, metadata=promoted(5))
    aws.record_set(arn(2, PROD), name=PROD_RECORD)
    aws.released(
        change(
            arn(4, PROD), arn(2, PROD), reason, stage="prod", model_package_group=PROD,
            record=PROD_RECORD,
        )
    )  # fmt: skip
    assert run(event(4, REJECTED, group=PROD, metadata=promoted(7)))["reason"] == reason


# --- late or replayed: older than the record's last write -----------------------------------


@pytest.mark.parametrize("status", [APPROVED, REJECTED])
def test_an_event_older_than_the_records_last_write_changes_nothing(aws: Aws, status: str) -> None:
    """Version 7 approved (or rejected) at 09:00; the record was written at 10:00 (version 8
    approved since): the late event is ignored before any describe, though version 7 may
    still be approved. No describe, write or event is stubbed."""
    aws.record_holds(arn(8), modified=at(10, 0, 0, 250_000), version=5)
    if status == APPROVED:  # (a rejection's restore would hold the rejected version, not 8)
        aws.record_was(3, arn(6), WRITTEN)  # not a restore: nothing else read
    outcome = run(event(7, status, time="2026-01-01T09:00:00Z"))
    assert outcome == {
        "action": "ignored",
        "reason": "the record was written after this event: the event is of "
        "2026-01-01T09:00:00Z, the record was written at 2026-01-01T10:00:00.250000Z (a late "
        "or replayed event: what wrote the record decided after it)",
        "before": arn(8),
        "after": arn(8),
    }
    assert aws.made == [("ssm", None)]


def test_a_record_with_no_earlier_versions_to_read_is_as_old_as_its_last_write(aws: Aws) -> None:
    """Version 2: there is no version before the one before it (nothing read); an earlier
    version no longer kept (SSM keeps 100) is no restore either."""
    aws.record_holds(arn(8), modified=at(10), version=2)
    assert run(event(7, APPROVED))["action"] == "ignored"
    aws.record_holds(arn(8), modified=at(10), version=150)
    aws.stubs["ssm"].add_client_error(
        "get_parameter",
        "ParameterVersionNotFound",
        expected_params={"Name": f"{STAGING_RECORD}:148"},
    )
    assert run(event(7, APPROVED))["action"] == "ignored"


@pytest.mark.parametrize(
    ("time", "written"),
    [
        ("2026-01-01T09:00:00Z", at(9, 0, 0, 400_000)),  # the approval in the write's second
        ("2026-01-01T09:00:01Z", at(9, 0, 0, 400_000)),
        ("2026-01-01T09:00:00Z", at(9)),
    ],
)
def test_the_promotions_approval_after_its_write_finds_the_record_unchanged(
    aws: Aws, prod: None, time: str, written: datetime.datetime
) -> None:
    """The promotion writes the record, then approves the version: that approval's event is
    not older than the write (its time has no fraction of a second)."""
    aws.record_holds(arn(3, PROD), name=PROD_RECORD, modified=written)
    aws.describe(3, APPROVED, group=PROD, metadata=promoted(7))
    outcome = run(event(3, APPROVED, group=PROD, metadata=promoted(7), time=time))
    assert outcome["action"] == "unchanged"


def test_an_event_without_a_time_is_processed_as_before(aws: Aws) -> None:
    aws.record_holds(arn(8), modified=at(23))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.released(change(arn(8), arn(7), "version 7 approved; rolled back from version 8"))
    assert run(event(7, APPROVED, time=None))["action"] == "recorded"


@pytest.mark.parametrize("restores", [1, 2])
def test_the_retry_after_a_restore_does_both_again(aws: Aws, restores: int) -> None:
    """The release event failed ``restores`` times: each attempt wrote version 7 and put 6
    back (seconds later), after the event's time. The retry looks past those writes to the
    record as it was (version 3, at 08:00), and records 7 and tells the release account."""
    history = [NO_VERSION, NO_VERSION, arn(6)]  # versions 1 to 3
    times = [WRITTEN, WRITTEN, WRITTEN]
    for attempt in range(restores):
        history += [arn(7), arn(6)]
        times += [at(9, attempt + 1), at(9, attempt + 1, 2)]
    latest = len(history)
    aws.record_holds(arn(6), modified=times[-1], version=latest)
    for version in range(latest, 3, -2):  # down to version 3, older than the event
        aws.record_was(version - 2, history[version - 3], times[version - 3])
        aws.record_was(version - 1, history[version - 2], times[version - 2])
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.released(change(arn(6), arn(7), "version 7 approved"))
    assert run(event(7, APPROVED))["action"] == "recorded"


def test_the_retry_of_a_rejection_after_a_restore_does_both_again(aws: Aws) -> None:
    reason = "version 7 rejected; rolled back to version 6"
    aws.record_holds(arn(7), modified=at(9, 1, 2), version=5)
    aws.record_was(3, arn(7), WRITTEN)
    aws.record_was(4, arn(6), at(9, 1))  # the rollback the restore undid
    aws.describe(7, REJECTED)
    aws.approved([6])
    aws.describe(6, APPROVED)
    aws.record_set(arn(6))
    aws.released(change(arn(7), arn(6), reason))
    assert run(event(7, REJECTED))["reason"] == reason


@pytest.mark.parametrize(
    ("undone", "undone_at", "restored_at"),
    [
        (arn(7), at(9, 1), at(9, 5)),  # put back minutes later: an operator, not a restore
        (arn(8), at(9, 1), at(9, 1, 2)),  # the undone write was another event's (8, not 7)
    ],
)
def test_a_write_back_that_is_not_a_restore_of_this_event_counts(
    aws: Aws, undone: str, undone_at: datetime.datetime, restored_at: datetime.datetime
) -> None:
    aws.record_holds(arn(6), modified=restored_at, version=5)
    aws.record_was(3, arn(6), WRITTEN)
    aws.record_was(4, undone, undone_at)
    outcome = run(event(7, APPROVED))
    assert outcome["action"] == "ignored"
    assert outcome["reason"].startswith("the record was written after this event")


def test_a_late_rejection_of_a_version_not_held_reads_no_earlier_version(aws: Aws) -> None:
    """A rejection writes only when the record holds the rejected version, so a restore of
    its write holds it again: holding another, nothing earlier is read."""
    aws.record_holds(arn(8), modified=at(10), version=5)
    assert run(event(7, REJECTED))["action"] == "ignored"


def test_an_event_time_that_is_not_iso_8601_fails_with_no_aws_call(aws: Aws) -> None:
    with pytest.raises(ValueError, match="not an ISO-8601 time: 'yesterday'"):
        run(event(7, APPROVED, time="yesterday"))
    assert aws.made == []


# --- promoted only (prod) -------------------------------------------------------------------


def test_prod_ignores_an_approved_version_that_was_not_promoted(aws: Aws, prod: None) -> None:
    aws.record_holds(arn(2, PROD), name=PROD_RECORD)
    aws.describe(3, APPROVED, group=PROD)
    outcome = run(event(3, APPROVED, group=PROD))
    assert outcome["action"] == "ignored"
    assert "serves only promoted versions" in outcome["reason"]
    assert "release pipeline's promotion" in outcome["reason"]
    assert ("events", BUS_REGION) not in aws.made  # nothing written (no put_parameter stubbed)


def test_prod_ignores_another_projects_group_of_its_prefix(aws: Aws, prod: None) -> None:
    """``prod-other-project`` matches the rule's prefix: not one of prod's models, whether
    promoted or not (the record is read before the version is described)."""
    record_missing(aws, record_name("prod", "other-project"))
    outcome = run(event(3, APPROVED, group="prod-other-project"))
    assert outcome["action"] == "ignored"
    assert "not one of stage prod's models" in outcome["reason"]
    assert aws.made == [("ssm", None)]


def test_prod_records_an_approved_promoted_version(aws: Aws, prod: None) -> None:
    detail = change(
        arn(2, PROD), arn(3, PROD), "version 3 approved", stage="prod",
        model_package_group=PROD, record=PROD_RECORD,
    )  # fmt: skip
    aws.record_holds(arn(2, PROD), name=PROD_RECORD)
    aws.describe(3, APPROVED, group=PROD, metadata=promoted(7))
    aws.record_set(arn(3, PROD), name=PROD_RECORD)
    aws.released(detail)
    outcome = run(event(3, APPROVED, group=PROD, metadata=promoted(7)))
    assert outcome["action"] == "recorded" and outcome["after"] == arn(3, PROD)


def test_prod_rolls_back_only_to_a_promoted_version(aws: Aws, prod: None) -> None:
    reason = "version 4 rejected; rolled back to version 2"
    aws.record_holds(arn(4, PROD), name=PROD_RECORD)
    aws.describe(4, REJECTED, group=PROD, metadata=promoted(7))
    aws.approved([1, 2, 3], group=PROD)
    aws.describe(3, APPROVED, group=PROD)  # the newest other one: approved but not promoted
    aws.describe(2, APPROVED, group=PROD, metadata=promoted(6))  # the first eligible: 1 unasked
    aws.record_set(arn(2, PROD), name=PROD_RECORD)
    aws.released(
        change(
            arn(4, PROD), arn(2, PROD), reason, stage="prod", model_package_group=PROD,
            record=PROD_RECORD,
        )
    )  # fmt: skip
    outcome = run(event(4, REJECTED, group=PROD, metadata=promoted(7)))
    assert outcome["action"] == "recorded" and outcome["reason"] == reason


def test_prod_rejecting_a_served_version_with_no_promoted_one_left_records_none(
    aws: Aws, prod: None
) -> None:
    aws.record_holds(arn(4, PROD), name=PROD_RECORD)
    aws.describe(4, REJECTED, group=PROD, metadata=promoted(7))
    aws.approved([3], group=PROD)
    aws.describe(3, APPROVED, group=PROD, metadata={"other": "x"})
    aws.record_set(NO_VERSION, name=PROD_RECORD)
    aws.released(
        change(
            arn(4, PROD), NO_VERSION, "version 4 rejected; no approved version remains",
            stage="prod", model_package_group=PROD, record=PROD_RECORD,
        )
    )  # fmt: skip
    assert run(event(4, REJECTED, group=PROD))["after"] == NO_VERSION


# --- failures -------------------------------------------------------------------------------


def test_a_refused_release_event_puts_the_record_back_and_fails(aws: Aws) -> None:
    aws.record_holds(arn(6))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    refused = {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "not authorized"}],
    }
    aws.released(change(arn(6), arn(7), "version 7 approved"), response=refused)
    aws.record_set(arn(6))  # restored: a retry of the event then does both again
    with pytest.raises(approval.ReleaseEventFailed, match="AccessDeniedException: not authorized"):
        run(event(7, APPROVED))


def test_a_failed_restore_says_to_send_the_release_event_by_hand(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry would find the record written after the event and ignore it: the fix is to
    send the event, not to re-drive it."""
    detail = change(arn(6), arn(7), "version 7 approved")
    aws.record_holds(arn(6))
    aws.describe(7, APPROVED)
    aws.record_set(arn(7))
    aws.stubs["events"].add_client_error("put_events", "AccessDeniedException")
    aws.stubs["ssm"].add_client_error("put_parameter", "ThrottlingException")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        run(event(7, APPROVED))
    (failed,) = [r for r in caplog.records if r.getMessage().startswith("could not restore")]
    assert f"it holds {arn(7)} but the release account was not told" in failed.getMessage()
    assert f"aws events put-events --region {BUS_REGION}" in failed.getMessage()
    assert failed.release_entry == {  # type: ignore[attr-defined]
        "Source": RELEASE_EVENT_SOURCE,
        "DetailType": RECORD_CHANGED,
        "Detail": json.dumps(detail, sort_keys=True),
        "EventBusName": BUS,
    }


def test_a_missing_record_is_ignored_not_failed(aws: Aws) -> None:
    """A missing record means the group is not one of the stage's models: no raise, and no
    further call (none is stubbed)."""
    record_missing(aws, STAGING_RECORD)
    outcome = run(event(7, APPROVED))
    assert outcome["action"] == "ignored"
    assert STAGING in outcome["reason"] and STAGING_RECORD in outcome["reason"]
    assert aws.made == [("ssm", None)]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PROMOTED_ONLY", "yes", "PROMOTED_ONLY must be"),
        ("RELEASE_EVENT_BUS_ARN", "default", "not an event bus ARN"),
        ("STAGE", "", "not set: STAGE"),
    ],
)
def test_a_bad_environment_fails_naming_the_variable(
    aws: Aws, env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(approval.ConfigError, match=message):
        run(event(7, APPROVED))
    assert aws.made == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GROUP_PREFIX", None, "not set: GROUP_PREFIX"),
        ("GROUP_PREFIX", "", "not set: GROUP_PREFIX"),
        ("RECORD_NAME_TEMPLATE", None, "not set: RECORD_NAME_TEMPLATE"),
        ("RECORD_NAME_TEMPLATE", "", "not set: RECORD_NAME_TEMPLATE"),
        ("RECORD_NAME_TEMPLATE", "/mlops/staging/serving/model", "RECORD_NAME_TEMPLATE has no"),
    ],
)
def test_the_groups_and_records_must_be_configured(
    aws: Aws, env: pytest.MonkeyPatch, name: str, value: str | None, message: str
) -> None:
    if value is None:
        env.delenv(name)
    else:
        env.setenv(name, value)
    with pytest.raises(approval.ConfigError, match=message):
        run(event(7, APPROVED))
    assert aws.made == []


# --- the parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bus", "region"),
    [
        (BUS, "eu-west-1"),
        ("arn:aws:events:us-east-1:111122223333:event-bus/default", "us-east-1"),
        ("arn:aws-cn:events:cn-north-1:111122223333:event-bus/default", "cn-north-1"),
    ],
)
def test_the_events_client_is_made_in_the_bus_region(bus: str, region: str) -> None:
    assert approval.bus_region(bus) == region


def test_clients_give_up_well_within_the_functions_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Short timeouts and few retries, not botocore's 60 s + 60 s and retries: a stuck call
    fails the invocation before Lambda stops it between a write and its restore. Making a
    client calls nothing (credentials from the environment, no configuration files)."""
    dummy_aws_credentials(monkeypatch, tmp_path)
    approval.make_client.cache_clear()
    try:
        made = {
            (service, region): approval.make_client(service, region)
            for service, region in [("ssm", None), ("sagemaker", None), ("events", BUS_REGION)]
        }
        for (_, region), client in made.items():
            config = client.meta.config
            assert (config.connect_timeout, config.read_timeout) == (3, 5)
            # two attempts a call, 8 s each at most: a write, a PutEvents and a restore fit in 60 s
            assert config.retries == {"mode": "standard", "total_max_attempts": 2}
            assert client.meta.region_name == (region or "us-east-1")
        assert approval.make_client("events", BUS_REGION) is made[("events", BUS_REGION)]
        shared = approval.CLIENT_CONFIG  # the module's constant (botocore rewrites its retries)
        assert (shared.connect_timeout, shared.read_timeout) == (3, 5)
    finally:
        approval.make_client.cache_clear()


def test_the_decision_is_a_pure_function(env: pytest.MonkeyPatch) -> None:
    config = approval.read_config(os.environ)
    rejected = approval.parse(event(7, REJECTED))
    newer = approval.Version(arn(8), 8)
    assert approval.decide(rejected, config, recorded=arn(7), fallback=newer).reason == (
        "version 7 rejected; moved on to version 8"
    )
    order = approval.rollback_order(
        [approval.Version(arn(n), n) for n in (2, 7, 9, 5)], rejected=arn(7)
    )
    assert [v.number for v in order] == [9, 5, 2]
    assert approval.needs_fallback(rejected, arn(7))
    assert not approval.needs_fallback(rejected, arn(6))
    assert approval.screen(rejected, config) is None


def test_the_handler_imports_nothing_of_the_project() -> None:
    """The Lambda package is the file alone: the stdlib, boto3/botocore and Powertools."""
    assert third_party_imports(HANDLER) <= {"boto3", "botocore", "aws_lambda_powertools"}
    assert approval.APPROVED == APPROVED and approval.REJECTED == REJECTED

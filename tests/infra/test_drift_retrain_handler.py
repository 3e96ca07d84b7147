"""Sustained drift: the drift alarm going into ALARM starts the model's training pipeline,
unless a run is under way or the day's retrains are used up.

The handler (handlers/drift_retrain) runs against a real SageMaker client wrapped in a
Stubber, each call's parameters asserted exactly and checked against botocore's shapes: a
call not stubbed fails the test, so a test that stubs no StartPipelineExecution proves that
no run was started. The time is a fixed ``now``; the events follow CloudWatch's documented
"CloudWatch Alarm State Change" example.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cdk_helpers import (
    ROOT,
    dummy_aws_credentials,
    lambda_context,
    load_handler,
    third_party_imports,
)

HANDLER = ROOT / "handlers" / "drift_retrain" / "index.py"
retrainer = load_handler("drift_retrain")

UTC = datetime.UTC
ACCOUNT = "111122223333"
STAGE = "staging"
MODEL = "breast-cancer"
ALARM_NAME = f"{STAGE}/{MODEL}/drift-endpoint"
PIPELINE = f"{STAGE}-{MODEL}-training"
PIPELINE_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/{PIPELINE}"
EVENT_ID = "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92"
NOW = datetime.datetime(2026, 1, 1, 10, 25, 3, tzinfo=UTC)
MIDNIGHT = datetime.datetime(2026, 1, 1, tzinfo=UTC)
REASON = (
    "Threshold Crossed: 3 datapoints were greater than or equal to the threshold (1.0). The "
    "most recent datapoints which crossed the threshold: [1.0 (01/01/26 10:20:00), 1.0 "
    "(01/01/26 09:20:00), 1.0 (01/01/26 07:20:00)]."
)
ENVIRONMENT = {
    "STAGE": STAGE,
    "TRAINING_PIPELINE_TEMPLATE": f"{STAGE}-{{model}}-training",
    "MAX_RETRAINS_PER_DAY": "2",
    "EXECUTION_NAME_PREFIX": "drift-retrain",
}
CONFIG = retrainer.read_config(ENVIRONMENT)


def alarm_event(
    state: str = "ALARM",
    previous: str = "OK",
    name: str = ALARM_NAME,
    event_id: str = EVENT_ID,
    reason: str = REASON,
    **envelope: Any,
) -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" event as EventBridge delivers it."""
    reason_data = {"version": "1.0", "statistic": "Maximum", "period": 3600, "threshold": 1.0}
    event = {
        "version": "0",
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-01-01T10:25:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": reason,
                "reasonData": json.dumps(reason_data),
                "timestamp": "2026-01-01T10:25:00.412+0000",
            },
            "previousState": {
                "value": previous,
                "reason": "Threshold Crossed: no datapoints were received",
                "timestamp": "2026-01-01T09:25:00.129+0000",
            },
            "configuration": {"description": "drift in 3 of the last 4 windows", "metrics": []},
        },
    }
    return {**event, **envelope}


def execution(
    display_name: str, started: datetime.datetime, status: str = "Succeeded", number: int = 0
) -> dict[str, Any]:
    """A PipelineExecutionSummary."""
    return {
        "PipelineExecutionArn": f"{PIPELINE_ARN}/execution/run{number:08d}",
        "StartTime": started,
        "PipelineExecutionStatus": status,
        "PipelineExecutionDisplayName": display_name,
    }


def token(event_id: str = EVENT_ID) -> str:
    return hashlib.sha256(f"drift-retrain:{event_id}".encode()).hexdigest()


class Aws:
    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self.stub = Stubber(sagemaker)

    def clients(self, service: str) -> Any:
        assert service == "sagemaker"
        return self.sagemaker

    def executions(self, *pages: list[dict[str, Any]]) -> None:
        """One listing of the pipeline's executions, a page per argument."""
        for index, summaries in enumerate(pages or ([],)):
            params: dict[str, Any] = {
                "PipelineName": PIPELINE,
                "CreatedAfter": NOW - datetime.timedelta(hours=672),
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 100,
            }
            answer: dict[str, Any] = {"PipelineExecutionSummaries": summaries}
            if index + 1 < len(pages):
                answer["NextToken"] = f"page-{index + 1}"
            if index:
                params["NextToken"] = f"page-{index}"
            self.stub.add_response("list_pipeline_executions", answer, params)

    def started(self, description: str, request_token: str = token(), number: int = 99) -> str:
        arn = f"{PIPELINE_ARN}/execution/run{number:08d}"
        params = {
            "PipelineName": PIPELINE,
            "PipelineExecutionDisplayName": "drift-retrain-20260101102500",
            "PipelineExecutionDescription": description,
            "ClientRequestToken": request_token,
        }
        self.stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": arn}, params)
        return arn


DESCRIPTION = f"Started by drift alarm {ALARM_NAME} going into ALARM: {REASON}"


@pytest.fixture(scope="module")
def sagemaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        dummy_aws_credentials(monkeypatch, tmp_path_factory.mktemp("aws"))
        yield boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture
def aws(sagemaker: Any) -> Iterator[Aws]:
    """The client with a fresh Stubber: every queued call must be made."""
    stubbed = Aws(sagemaker)
    stubbed.stub.activate()
    try:
        yield stubbed
        stubbed.stub.assert_no_pending_responses()
    finally:  # the client is shared: a failed test must not leave its stubs on it
        stubbed.stub.deactivate()


def run(aws: Aws, event: dict[str, Any], config: Any = CONFIG) -> dict[str, Any]:
    return retrainer.retrain(event, config, aws.clients, lambda: NOW)


# --- starting ---------------------------------------------------------------------------------


def test_sustained_drift_starts_the_models_training_pipeline(aws: Aws) -> None:
    """Today: one drift retrain (failed) and a scheduled run; yesterday: three drift
    retrains. Only today's prefixed runs count: 1 of 2, so a run starts."""
    yesterday = MIDNIGHT - datetime.timedelta(minutes=1)
    aws.executions(
        [
            execution("drift-retrain-20260101030000", MIDNIGHT.replace(hour=3), "Failed", 1),
            execution("scheduled-20260101000500", MIDNIGHT.replace(minute=5), number=2),
            execution("scheduled-20260101000000", MIDNIGHT, number=3),
            execution("drift-retrain-20251231235900", yesterday, number=4),
            execution("drift-retrain-20251231120000", yesterday.replace(hour=12), number=5),
            execution("drift-retrain-20251231090000", yesterday.replace(hour=9), number=6),
        ]
    )
    arn = aws.started(DESCRIPTION)
    assert run(aws, alarm_event()) == {"started": True, "executionArn": arn}


def test_a_transition_from_insufficient_data_starts_a_run(aws: Aws) -> None:
    aws.executions([])
    arn = aws.started(DESCRIPTION)
    assert run(aws, alarm_event(previous="INSUFFICIENT_DATA"))["executionArn"] == arn


@pytest.mark.parametrize("source", ["batch", "model-monitor-2"])
def test_every_drift_alarm_of_the_model_starts_its_pipeline(aws: Aws, source: str) -> None:
    """Batch capture's alarm, and a Model Monitor stage's alarms on groups of features."""
    name = f"{STAGE}/{MODEL}/drift-{source}"
    aws.executions([])
    arn = aws.started(f"Started by drift alarm {name} going into ALARM: {REASON}")
    assert run(aws, alarm_event(name=name))["executionArn"] == arn


def test_a_redelivered_event_sends_the_same_request(aws: Aws) -> None:
    """EventBridge delivers at least once: the same event gives the same name, description
    and token (SageMaker starts one run for a token); another event, another token."""
    for _ in range(2):  # the listing does not show the first run yet
        aws.executions([])
        aws.started(DESCRIPTION)
    assert run(aws, alarm_event()) == run(aws, alarm_event())
    other = "d5d2d2da-0000-0000-0000-000000000000"
    aws.executions([])
    aws.started(DESCRIPTION, request_token=token(other))
    run(aws, alarm_event(event_id=other))
    assert token() != token(other) and len(token()) == 64


def test_the_token_and_the_name_follow_start_pipeline_executions_rules() -> None:
    value = retrainer.token(EVENT_ID)
    assert value == token() and 32 <= len(value) <= 128
    assert retrainer.DISPLAY_NAME.match("drift-retrain-20260101102500")


def test_a_long_reason_is_cut_to_the_descriptions_limit(aws: Aws) -> None:
    long_reason = "Threshold Crossed: " + "1.0 (01/01/26 10:20:00), " * 300
    aws.executions([])
    cut = f"Started by drift alarm {ALARM_NAME} going into ALARM: {long_reason}"[:3069] + "..."
    aws.started(cut)
    assert run(aws, alarm_event(reason=long_reason))["started"] is True
    assert len(cut) == 3072


# --- not starting -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_a_run_in_progress_on_a_later_page_starts_nothing(aws: Aws, status: str) -> None:
    """A training run started by its schedule (or an earlier retrain) on the second page."""
    earlier = MIDNIGHT - datetime.timedelta(days=2)
    aws.executions(
        [execution("scheduled-20260101000000", MIDNIGHT, number=1)],
        [execution("scheduled-20251230000000", earlier, status, number=2)],
    )
    result = run(aws, alarm_event())
    assert result == {"started": False, "reason": "a retrain or training run is in progress"}


def test_the_daily_bound_starts_nothing(aws: Aws) -> None:
    """Two drift retrains today (one failed, one succeeded): the bound of 2 is reached,
    whatever ran yesterday or on a schedule."""
    aws.executions(
        [
            execution("drift-retrain-20260101083000", MIDNIGHT.replace(hour=8), number=1),
            execution("scheduled-20260101000500", MIDNIGHT.replace(minute=5), number=2),
            execution("drift-retrain-20260101000000", MIDNIGHT, "Failed", number=3),
        ],
        [execution("drift-retrain-20251231235959", MIDNIGHT - datetime.timedelta(seconds=1))],
    )
    assert run(aws, alarm_event()) == {"started": False, "reason": "daily bound reached"}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (alarm_event(state="OK", previous="ALARM"), "went from ALARM to OK"),
        (alarm_event(state="INSUFFICIENT_DATA"), "not a transition into ALARM"),
        (alarm_event(previous="ALARM"), "went from ALARM to ALARM"),
        (alarm_event(name=f"prod/{MODEL}/drift-endpoint"), "is stage prod's, not staging's"),
        (alarm_event(name=f"dev/{MODEL}/drift-batch"), "is stage dev's"),
        (alarm_event(name=f"{STAGE}/{MODEL}/latency"), "is not a drift alarm"),
        (alarm_event(name=f"{STAGE}/{MODEL}/drift-stream"), "is not a drift alarm"),
        (alarm_event(name="ServerCpuTooHigh"), "is not a drift alarm"),
        (alarm_event(source="aws.sagemaker"), "not a CloudWatch alarm state change"),
        (
            alarm_event(**{"detail-type": "CloudWatch Alarm Configuration Change"}),
            "not a CloudWatch alarm state change",
        ),
    ],
)
def test_other_events_are_ignored_without_a_call(
    aws: Aws, event: dict[str, Any], reason: str
) -> None:
    result = run(aws, event)
    assert result["started"] is False and reason in result["reason"]


def test_an_event_without_an_id_is_refused(aws: Aws) -> None:
    with pytest.raises(ValueError, match="has no id"):
        run(aws, alarm_event(event_id=""))


# --- the environment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"STAGE": ""}, "not set: STAGE"),
        ({"MAX_RETRAINS_PER_DAY": "0"}, "MAX_RETRAINS_PER_DAY must be an integer of at least 1"),
        ({"MAX_RETRAINS_PER_DAY": "two"}, "MAX_RETRAINS_PER_DAY must be"),
        ({"TRAINING_PIPELINE_TEMPLATE": "staging-training"}, "has no {model}"),
        ({"EXECUTION_NAME_PREFIX": "drift_retrain"}, "does not make a valid execution display"),
        ({"EXECUTION_NAME_PREFIX": "d" * 68}, "does not make a valid execution display"),
    ],
)
def test_a_malformed_environment_is_a_config_error(changes: dict[str, str], message: str) -> None:
    with pytest.raises(retrainer.ConfigError, match=message):
        retrainer.read_config({**ENVIRONMENT, **changes})


def test_the_longest_prefix_fits_the_display_name() -> None:
    config = retrainer.read_config({**ENVIRONMENT, "EXECUTION_NAME_PREFIX": "d" * 67})
    assert len(f"{config.prefix}-20260101102500") == 82


# --- the Lambda entry point and the package -----------------------------------------------


def test_the_handler_reads_the_environment_and_the_clock(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(retrainer, "make_client", aws.clients)
    monkeypatch.setattr(retrainer, "utc_now", lambda: NOW)
    aws.executions([execution("x", MIDNIGHT, "Executing")])
    assert (
        retrainer.handler(alarm_event(), lambda_context("staging-drift-retrain", ACCOUNT))[
            "started"
        ]
        is False
    )


def test_the_handler_imports_nothing_of_the_project() -> None:
    """The Lambda package is the file alone: the stdlib, boto3/botocore and Powertools."""
    assert third_party_imports(HANDLER) <= {"boto3", "botocore", "aws_lambda_powertools"}

"""EventBridge target: sustained drift starts the model's training pipeline, within bounds.

Each model and capture source of a stage has a drift alarm, ``<stage>/<model>/drift-<source>``,
that goes into ALARM when drift was detected in N of the last M monitoring windows. An
EventBridge rule sends its "CloudWatch Alarm State Change" events (source ``aws.cloudwatch``;
``detail.alarmName``, ``detail.state.value`` / ``reason`` / ``timestamp``,
``detail.previousState.value``) here, and this handler starts the model's training pipeline
(``TRAINING_PIPELINE_TEMPLATE``, ``{model}`` replaced) when all of these hold:

1. the event is a transition **into** ALARM (``state.value`` ALARM, ``previousState.value``
   not ALARM): anything else (OK, INSUFFICIENT_DATA, an ALARM that stays ALARM) is ignored;
2. the alarm is this stage's and in the layout above: another stage's, or another alarm, is
   ignored;
3. no execution of the pipeline is ``Executing`` or ``Stopping``: a retrain or a training run
   in progress already uses the data the alarm is about;
4. fewer than ``MAX_RETRAINS_PER_DAY`` executions whose display name starts with
   ``EXECUTION_NAME_PREFIX`` were created since 00:00 UTC today: a model that drifts all day
   is retrained a bounded number of times, and someone has to look at it.

An ignored or refused event returns ``{"started": False, "reason": ...}`` and logs why; a
started run returns ``{"started": True, "executionArn": ...}``. The execution is named
``<EXECUTION_NAME_PREFIX>-<yyyymmddHHMMSS>`` (the event's time, UTC) and described with the
alarm's name and reason (cut to the API's 3072 characters). Its ``ClientRequestToken`` is a
hash of the EventBridge event's ``id``: EventBridge delivers at least once, and a redelivered
event sends the same request (the same name and description too: both come from the event),
which SageMaker does not start twice.

The function's reserved concurrency is 1 (the construct sets it): invocations run one at a
time, so the guard of one sees the execution the previous one started (as soon as
ListPipelineExecutions shows it), and two alarms of a model (endpoint and batch) going into
ALARM together start one run, not two. The guard lists the executions created in the last
``EXECUTION_TIMEOUT`` (SageMaker Pipelines stops an execution after 672 hours), newest first,
all pages.

Environment: ``STAGE``, ``TRAINING_PIPELINE_TEMPLATE``, ``MAX_RETRAINS_PER_DAY`` (an integer,
at least 1), ``EXECUTION_NAME_PREFIX``. The Lambda package is this file alone: the standard
library, the runtime's boto3 and the Powertools layer.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="drift-retrain")

UTC = datetime.UTC
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=3, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3}
)
ENVIRONMENT = (
    "STAGE",
    "TRAINING_PIPELINE_TEMPLATE",
    "MAX_RETRAINS_PER_DAY",
    "EXECUTION_NAME_PREFIX",
)
MODEL_PLACEHOLDER = "{model}"
ALARM_SOURCE = "aws.cloudwatch"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
ALARM = "ALARM"
#: ``<stage>/<model>/drift-<source>`` (``model-monitor-<n>``: a Model Monitor stage's
#: alarms on groups of up to ten features).
ALARM_NAME = re.compile(
    r"^(?P<stage>[^/]+)/(?P<model>[a-z][a-z0-9-]{0,30}[a-z0-9])/drift-(?P<source>endpoint|batch|model-monitor-\d+)$"
)
#: Execution statuses that mean a run is under way.
IN_PROGRESS = frozenset({"Executing", "Stopping"})
#: SageMaker Pipelines' execution time-out (a quota): no execution created before that is
#: still running.
EXECUTION_TIMEOUT = datetime.timedelta(hours=672)
#: StartPipelineExecution's rules: the display name ...
DISPLAY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")
DISPLAY_NAME_MAX = 82
STAMP = "%Y%m%d%H%M%S"
#: ... the description (0 to 3072 characters) ...
DESCRIPTION_MAX = 3072
#: ... and the idempotency token (32 to 128 characters): a SHA-256 in hex is 64.
TOKEN_LENGTH = 64

#: Makes a client of a service (the function's region).
Clients = Callable[[str], Any]


class ConfigError(RuntimeError):
    """The function's environment is incomplete or malformed (a deployment error)."""


@dataclass(frozen=True)
class Config:
    stage: str
    pipeline_template: str
    max_per_day: int
    prefix: str

    def pipeline_name(self, model: str) -> str:
        return self.pipeline_template.replace(MODEL_PLACEHOLDER, model)


@dataclass(frozen=True)
class Alarm:
    """A drift alarm's transition into ALARM."""

    name: str
    model: str
    source: str
    reason: str
    event_id: str
    #: When the event happened (the event's ``time``).
    time: datetime.datetime


def read_config(environ: Mapping[str, str]) -> Config:
    """The configuration from the environment (``ConfigError`` naming what is wrong)."""
    missing = [name for name in ENVIRONMENT if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"environment variables not set: {', '.join(missing)} (the monitoring construct "
            "sets them). Fix: redeploy the stage's monitoring stack"
        )
    problems = []
    template = environ["TRAINING_PIPELINE_TEMPLATE"]
    if MODEL_PLACEHOLDER not in template:
        problems.append(f"TRAINING_PIPELINE_TEMPLATE has no {MODEL_PLACEHOLDER}: {template!r}")
    limit = environ["MAX_RETRAINS_PER_DAY"].strip()
    if not limit.isdigit() or int(limit) < 1:
        problems.append(f"MAX_RETRAINS_PER_DAY must be an integer of at least 1, not {limit!r}")
    prefix = environ["EXECUTION_NAME_PREFIX"]
    sample = f"{prefix}-{datetime.datetime(2026, 1, 1, tzinfo=UTC).strftime(STAMP)}"
    if not DISPLAY_NAME.match(sample) or len(sample) > DISPLAY_NAME_MAX:
        problems.append(
            f"EXECUTION_NAME_PREFIX {prefix!r} does not make a valid execution display name "
            f"({sample!r} must match {DISPLAY_NAME.pattern}, at most {DISPLAY_NAME_MAX} "
            "characters)"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(environ["STAGE"], template, int(limit), prefix)


def _event_time(value: str | None, now: datetime.datetime) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return now
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def drift_alarm(event: Mapping[str, Any], stage: str, now: datetime.datetime) -> Alarm | str:
    """The drift alarm of this stage that went into ALARM, or why the event is ignored."""
    bridge = EventBridgeEvent(dict(event))
    if event.get("source") != ALARM_SOURCE or event.get("detail-type") != ALARM_DETAIL_TYPE:
        return (
            f"not a CloudWatch alarm state change (source {event.get('source')!r}, "
            f"detail-type {event.get('detail-type')!r})"
        )
    detail = bridge.detail or {}
    name = str(detail.get("alarmName", ""))
    state = (detail.get("state") or {}).get("value")
    previous = (detail.get("previousState") or {}).get("value")
    if state != ALARM or previous == ALARM:
        return f"alarm {name} went from {previous} to {state}: not a transition into ALARM"
    layout = ALARM_NAME.match(name)
    if layout is None:
        return f"alarm {name} is not a drift alarm (<stage>/<model>/drift-<source>)"
    if layout["stage"] != stage:
        return f"alarm {name} is stage {layout['stage']}'s, not {stage}'s"
    if not event.get("id"):
        raise ValueError(f"the event of alarm {name} has no id: it cannot be made idempotent")
    return Alarm(
        name=name,
        model=layout["model"],
        source=layout["source"],
        reason=str((detail.get("state") or {}).get("reason", "")),
        event_id=bridge.get_id,
        time=_event_time(event.get("time"), now),
    )


def executions(sagemaker: Any, pipeline: str, since: datetime.datetime) -> Iterator[dict]:
    """The pipeline's executions created since ``since``, newest first (every page)."""
    params: dict[str, Any] = {
        "PipelineName": pipeline,
        "CreatedAfter": since,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    while True:
        page = sagemaker.list_pipeline_executions(**params)
        yield from page.get("PipelineExecutionSummaries", [])
        if not page.get("NextToken"):
            return
        params["NextToken"] = page["NextToken"]


def token(event_id: str) -> str:
    """The idempotency token of an event: the same for every delivery of it."""
    return hashlib.sha256(f"drift-retrain:{event_id}".encode()).hexdigest()[:TOKEN_LENGTH]


def description(alarm: Alarm) -> str:
    text = f"Started by drift alarm {alarm.name} going into ALARM: {alarm.reason}"
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 3] + "..."


def retrain(
    event: Mapping[str, Any],
    config: Config,
    clients: Clients,
    now: Callable[[], datetime.datetime],
) -> dict[str, Any]:
    """Starts the training pipeline of a drifting model, or says why not.

    Args:
        event: The EventBridge event.
        config: The function's environment.
        clients: Makes the ``sagemaker`` client.
        now: The current time (aware).

    Returns:
        ``{"started": True, "executionArn": ...}`` or ``{"started": False, "reason": ...}``.
    """
    moment = now().astimezone(UTC)
    alarm = drift_alarm(event, config.stage, moment)
    if isinstance(alarm, str):
        logger.info(f"ignored: {alarm}")
        return {"started": False, "reason": alarm}
    pipeline = config.pipeline_name(alarm.model)
    logger.append_keys(alarm=alarm.name, model=alarm.model, pipeline=pipeline)

    sagemaker = clients("sagemaker")
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    today = 0
    for summary in executions(sagemaker, pipeline, moment - EXECUTION_TIMEOUT):
        if summary.get("PipelineExecutionStatus") in IN_PROGRESS:
            reason = "a retrain or training run is in progress"
            logger.info(
                f"not started: {reason}",
                extra={
                    "execution_arn": summary.get("PipelineExecutionArn"),
                    "status": summary.get("PipelineExecutionStatus"),
                },
            )
            return {"started": False, "reason": reason}
        started = summary.get("StartTime")
        name = str(summary.get("PipelineExecutionDisplayName") or "")
        if isinstance(started, datetime.datetime) and started >= midnight:
            today += name.startswith(config.prefix)
    if today >= config.max_per_day:
        reason = "daily bound reached"
        logger.warning(
            f"not started: {reason} ({today} drift retrains today, at most "
            f"{config.max_per_day}): look at the model's drift",
            extra={"retrains_today": today},
        )
        return {"started": False, "reason": reason}

    answer = sagemaker.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=f"{config.prefix}-{alarm.time.strftime(STAMP)}",
        PipelineExecutionDescription=description(alarm),
        ClientRequestToken=token(alarm.event_id),
    )
    arn = answer["PipelineExecutionArn"]
    logger.info("retrain started", extra={"execution_arn": arn, "retrains_today": today + 1})
    return {"started": True, "executionArn": arn}


@functools.cache
def make_client(service: str) -> Any:
    """A client of ``service`` in the function's region, with ``CLIENT_CONFIG``."""
    return boto3.client(service, config=CLIENT_CONFIG)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return retrain(event, read_config(os.environ), make_client, utc_now)

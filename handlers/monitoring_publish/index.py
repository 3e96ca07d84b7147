"""SageMaker Pipelines Lambda step (PublishMetrics): the checks' metrics to CloudWatch.

The last step of a monitoring run. The DriftCheck and QualityCheck processing jobs are
network-isolated: they cannot call CloudWatch, so each writes its metrics into its report,
as ready ``PutMetricData`` entries (a ``metrics`` list of ``MetricName``, ``Dimensions``
``[{"Name", "Value"}]``, ``Value``, ``Unit``), and this step publishes them.

The event is the step's ``Arguments``::

    {"ModelName": "breast-cancer", "CaptureSource": "endpoint" | "batch",
     "ReportUri": "s3://<ARTIFACTS_BUCKET>/<run prefix>/"}

It reads ``<ReportUri>drift/drift_report.json`` (required) and
``<ReportUri>quality/quality_report.json`` (optional: a run without ground truth publishes
the drift metrics only), and refuses, raising before anything is published, when:

- the ``ReportUri`` is not a prefix (``s3://.../``) of ``ARTIFACTS_BUCKET``;
- a report is not JSON, or its ``metrics`` is not a list of entries;
- an entry lacks one of the dimensions ``Stage`` = ``STAGE``, ``ModelName`` = the event's
  model, ``CaptureSource`` = the event's source (a report of another stage, model or source
  must not feed this one's alarms), or names a dimension twice;
- an entry's ``Value`` is not a finite number within CloudWatch's range (±2^360);
- the entries do not pass botocore's checks of ``PutMetricData`` (all requests are checked
  before the first is sent).

Each entry is published as it is, plus a ``Timestamp`` (unless it has one): its report's
``window_end`` (ISO 8601) when present, else now (the checks write null when not given a
window). The run's own ``MonitoringRuns`` entry comes in the drift report like the others.
The entries go in requests of at most ``MAX_ENTRIES`` entries and about
``MAX_REQUEST_BYTES`` (PutMetricData's limits: 1000 metrics and 1 MB a request), sized as
the query protocol encodes them, the largest of the encodings botocore may use.

Returns the step's ``OutputParameters`` (strings): ``MetricCount`` (the entries published)
and ``DriftDetected``: ``no-data`` when the drift report says ``no_data``, else ``true`` or
``false`` from its ``drift_detected``.

Environment: ``STAGE``, ``NAMESPACE`` (the metrics' namespace), ``ARTIFACTS_BUCKET``. The
Lambda package is this file alone: the standard library,
the runtime's boto3 and the Powertools layer.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.validate
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="monitoring-publish")

UTC = datetime.UTC
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=3, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 4}
)
#: The environment variables the construct sets.
ENVIRONMENT = ("STAGE", "NAMESPACE", "ARTIFACTS_BUCKET")
MODEL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
SOURCES = ("endpoint", "batch")
#: The reports, under the run's ``ReportUri``.
DRIFT_REPORT = "drift/drift_report.json"
QUALITY_REPORT = "quality/quality_report.json"
#: The dimensions every entry must carry (what the alarms of a model and source select).
STAGE_DIMENSION = "Stage"
MODEL_DIMENSION = "ModelName"
SOURCE_DIMENSION = "CaptureSource"
#: PutMetricData: at most 1000 metrics a request ...
MAX_ENTRIES = 1000
#: ... and 1 MB (taken as 10^6 bytes); a request's entries are kept to this share of it, the
#: rest left for the request's own fields and headers.
MAX_REQUEST_BYTES = 1_000_000
ENTRY_BYTES_SHARE = 0.9
#: ... up to 30 dimensions a metric, values within ±2^360 (no NaN, no infinity).
MAX_DIMENSIONS = 30
MAX_MAGNITUDE = 2.0**360

#: Makes a client of a service (the function's region).
Clients = Callable[[str], Any]


class ConfigError(RuntimeError):
    """The function's environment is incomplete (a deployment error)."""


class ReportError(ValueError):
    """A report, or what it asks to publish, is refused: nothing is published."""


@dataclass(frozen=True)
class Config:
    stage: str
    namespace: str
    artifacts_bucket: str


@dataclass(frozen=True)
class Request:
    model: str
    source: str
    #: The run's key prefix in the artifacts bucket (ends with ``/``).
    prefix: str


def read_config(environ: Mapping[str, str]) -> Config:
    """The configuration from the environment (``ConfigError`` naming what is missing)."""
    missing = [name for name in ENVIRONMENT if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"environment variables not set: {', '.join(missing)} (the monitoring construct "
            "sets them). Fix: redeploy the stage's monitoring stack"
        )
    return Config(
        stage=environ["STAGE"],
        namespace=environ["NAMESPACE"],
        artifacts_bucket=environ["ARTIFACTS_BUCKET"],
    )


def parse_event(event: Mapping[str, Any], config: Config) -> Request:
    """The step's arguments, checked (``ValueError`` naming the first wrong one)."""
    model = event.get("ModelName")
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        raise ValueError(f"ModelName must match {MODEL_NAME.pattern}, not {model!r}")
    source = event.get("CaptureSource")
    if source not in SOURCES:
        raise ValueError(f"CaptureSource must be one of {', '.join(SOURCES)}, not {source!r}")
    uri = event.get("ReportUri")
    bucket_root = f"s3://{config.artifacts_bucket}/"
    if not isinstance(uri, str) or not uri.startswith(bucket_root) or not uri.endswith("/"):
        raise ReportError(
            f"ReportUri must be a prefix in the artifacts bucket ({bucket_root}<run>/), not "
            f"{uri!r}: reports are read from there only"
        )
    prefix = uri[len(bucket_root) :]
    if not prefix.strip("/"):
        raise ReportError(f"ReportUri must name a run's prefix, not the bucket: {uri!r}")
    return Request(str(model), str(source), prefix)


# --- reports ----------------------------------------------------------------------------------


def read_report(s3: Any, bucket: str, key: str, *, required: bool) -> dict[str, Any] | None:
    """A report's JSON (``None``: absent and not required).

    Raises:
        ReportError: Absent and required, not JSON, or not a JSON object.
    """
    uri = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        # Absent objects read as NoSuchKey only with s3:ListBucket (else AccessDenied).
        if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        if required:
            raise ReportError(f"{uri} does not exist: the check wrote no report") from None
        logger.info(f"no report at {uri}: not published")
        return None
    try:
        report = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{uri} is not JSON: {error}") from None
    if not isinstance(report, dict):
        raise ReportError(f"{uri} is not a JSON object")
    return report


def report_time(report: Mapping[str, Any], uri: str, now: datetime.datetime) -> datetime.datetime:
    """The report's ``window_end`` (naive: UTC), else ``now``."""
    value = report.get("window_end")
    if value is None:
        return now
    try:
        moment = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"{uri}: window_end is not an ISO 8601 time: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _in_range(value: Any) -> bool:
    """A finite number within CloudWatch's range (a boolean is no number here)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
    except OverflowError:  # an integer too large for a float
        return False


def checked_entries(
    report: Mapping[str, Any], uri: str, expected: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The report's ``metrics`` entries, each checked.

    Raises:
        ReportError: Naming the report, the entry's index and name, and the problem.
    """
    entries = report.get("metrics")
    if not isinstance(entries, list):
        raise ReportError(f"{uri}: metrics must be a list of PutMetricData entries")
    for index, entry in enumerate(entries):
        where = f"{uri}: metrics[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("MetricName"), str):
            raise ReportError(f"{where} is not a MetricData entry with a MetricName")
        where += f" ({entry['MetricName']})"
        dims = entry.get("Dimensions")
        if not isinstance(dims, list) or not all(isinstance(d, dict) for d in dims):
            raise ReportError(f"{where}: Dimensions must be a list of {{Name, Value}}")
        names = [d.get("Name") for d in dims]
        if len(set(names)) != len(names) or len(names) > MAX_DIMENSIONS:
            raise ReportError(
                f"{where}: dimensions must have distinct names, at most {MAX_DIMENSIONS}: {names}"
            )
        found = {d.get("Name"): d.get("Value") for d in dims}
        for name, wanted in expected.items():
            if found.get(name) != wanted:
                raise ReportError(
                    f"{where}: dimension {name} is {found.get(name)!r}, not {wanted!r}: the "
                    "report is not this run's"
                )
        value = entry.get("Value")
        if not _in_range(value):
            raise ReportError(
                f"{where}: Value must be a finite number within ±2^360, not {value!r}"
            )
    return entries


def drift_state(report: Mapping[str, Any], uri: str) -> str:
    """``no-data``, ``true`` or ``false``, from the drift report."""
    if report.get("no_data") is True:
        return "no-data"
    detected = report.get("drift_detected")
    if not isinstance(detected, bool):
        raise ReportError(f"{uri}: drift_detected must be true or false, not {detected!r}")
    return "true" if detected else "false"


# --- requests ---------------------------------------------------------------------------------


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}", item)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value, 1):
            yield from _flatten(f"{prefix}.member.{index}", item)
    elif isinstance(value, datetime.datetime):
        yield prefix, value.isoformat()
    else:
        yield prefix, str(value)


def entry_bytes(entry: Mapping[str, Any]) -> int:
    """An upper bound of an entry's size in a request: its query-protocol encoding
    (``MetricData.member.N.Dimensions.member.M.Name=...&``), with a 4-digit ``N``."""
    return len(urllib.parse.urlencode(list(_flatten("MetricData.member.1000", entry)))) + 1


def chunks(
    entries: list[dict[str, Any]],
    max_entries: int = MAX_ENTRIES,
    max_bytes: float = MAX_REQUEST_BYTES * ENTRY_BYTES_SHARE,
) -> list[list[dict[str, Any]]]:
    """The entries in order, in groups within both limits (one entry over the byte limit
    goes alone: CloudWatch then refuses it, which ``entry_bytes``'s bound makes unlikely)."""
    groups: list[list[dict[str, Any]]] = []
    size = 0.0
    for entry in entries:
        grow = entry_bytes(entry)
        if not groups or len(groups[-1]) >= max_entries or size + grow > max_bytes:
            groups.append([])
            size = 0.0
        groups[-1].append(entry)
        size += grow
    return groups


def publish(
    event: Mapping[str, Any],
    config: Config,
    clients: Clients,
    now: Callable[[], datetime.datetime],
) -> dict[str, str]:
    """Publishes a run's metrics; returns the step's outputs.

    Args:
        event: The step's arguments.
        config: The function's environment.
        clients: Makes the ``s3`` and ``cloudwatch`` clients.
        now: The current time (aware).

    Raises:
        ValueError: A malformed argument.
        ReportError: A report, or an entry, is refused (nothing was published).
    """
    request = parse_event(event, config)
    logger.append_keys(model=request.model, capture_source=request.source)
    expected = {
        STAGE_DIMENSION: config.stage,
        MODEL_DIMENSION: request.model,
        SOURCE_DIMENSION: request.source,
    }
    s3 = clients("s3")
    bucket = config.artifacts_bucket
    published: list[dict[str, Any]] = []
    state = "no-data"
    for name, required in ((DRIFT_REPORT, True), (QUALITY_REPORT, False)):
        key = request.prefix + name
        uri = f"s3://{bucket}/{key}"
        report = read_report(s3, bucket, key, required=required)
        if report is None:
            continue
        stamp = report_time(report, uri, now())
        if name == DRIFT_REPORT:
            state = drift_state(report, uri)
        for entry in checked_entries(report, uri, expected):
            published.append(entry if "Timestamp" in entry else {**entry, "Timestamp": stamp})
    cloudwatch = clients("cloudwatch")
    requests = [{"Namespace": config.namespace, "MetricData": group} for group in chunks(published)]
    shape = cloudwatch.meta.service_model.operation_model("PutMetricData").input_shape
    for params in requests:  # every request checked before the first is sent
        botocore.validate.validate_parameters(params, shape)
    for params in requests:
        cloudwatch.put_metric_data(**params)
    logger.info(
        "metrics published",
        extra={"metric_count": len(published), "requests": len(requests), "drift": state},
    )
    return {"MetricCount": str(len(published)), "DriftDetected": state}


@functools.cache
def make_client(service: str) -> Any:
    """A client of ``service`` in the function's region, with ``CLIENT_CONFIG``."""
    return boto3.client(service, config=CLIENT_CONFIG)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return publish(event, read_config(os.environ), make_client, utc_now)

"""SageMaker Pipelines Lambda step (SelectWindow): the data one monitoring run checks.

The monitoring pipeline of a stage runs, per model and capture source, SelectWindow, then the
DriftCheck and QualityCheck processing jobs (network-isolated: they read only the S3 inputs
given to them), then PublishMetrics. This step decides what those jobs read and writes it
down as SageMaker ``ManifestFile`` manifests (``[{"prefix": "s3://bucket/"}, "key", ...]``,
the ``S3DataSource`` format), so that a job reads exactly the window's objects.

The event is the step's ``Arguments`` (strings, as the pipeline passes them)::

    {"ModelName": "breast-cancer", "CaptureSource": "endpoint" | "batch",
     "WindowMinutes": "60", "GroundTruthDelayMinutes": "0",
     "ExecutionId": "<pipeline execution ID or ARN>"}

What it does:

1. **The served version.** The stage's version record (the SSM parameter
   ``RECORD_NAME_TEMPLATE`` names, ``{model}`` replaced) holds the served model package ARN,
   or ``NO_VERSION``: then nothing is served and the run fails, saying so. The version's
   ``ModelMetrics.ModelDataQuality.Statistics`` (``s3://.../baseline/statistics.json``, what
   the training pipeline registers) gives the baseline directory, ``s3://.../baseline/``; a
   version without it fails the run, naming the version.
2. **The windows.** ``end`` is the latest point of the window grid at or before now (UTC):
   the latest multiple of ``WindowMinutes`` since 00:00 UTC of the day (60: the top of the
   hour; 15: :00, :15, :30 or :45), or, for a window that does not divide a day, since the
   Unix epoch. ``start`` is ``end`` minus ``WindowMinutes``. A run started late (the
   function's start-up, a Scheduler retry) therefore checks the same whole window as one on
   time, and consecutive runs tile the time line: no overlaps, no gaps. The drift check reads
   the capture of ``[start, end)``. The quality check reads the predictions of
   ``[end - delay - window, end - delay)`` (the same as the drift check's when the delay is
   0) and the ground-truth labels of ``[end - delay - window, end)``: labels arrive after
   their predictions.
3. **The objects of a window** are those whose ``LastModified`` is in it (ends excluded):

   - ``endpoint``: SageMaker's real-time capture layout, ``.jsonl`` files of
     ``captureData`` records,
     ``s3://CAPTURE_BUCKET/<model>/<endpoint name>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``
     (``ENDPOINT_NAME_TEMPLATE`` names the endpoint). The variants are listed (delimiter
     ``/``), then each hour partition overlapping a window, plus the hour before it
     (``UPLOAD_LAG``): a file is uploaded a little after the records of its hour, so one of
     the 09:00 partition uploaded at 10:01 belongs to the 10:00 window by its
     ``LastModified``, and would otherwise be missed by both windows.
   - ``batch``: batch transform capture (the developer guide's "Capture data from batch
     transform job", ``model-monitor-data-capture-batch``). Under the jobs'
     ``DataCaptureConfig.DestinationS3Uri``, ``s3://CAPTURE_BUCKET/<model>/batch``, a job
     writes no data but *manifests* (to avoid duplicating it), in two folders:
     ``input/yyyy/mm/dd/hh/`` and ``output/yyyy/mm/dd/hh/`` (the hour the job started,
     UTC). An input manifest lists the job's input files, an output manifest its output
     files (each line with the inference ID and time appended: ``GenerateInferenceId``),
     as ``[{"prefix": "s3://<input uri>/"}, "dummy_0.csv", "dummy_1.csv"]``. The guide
     calls it a JSONL file while its example is one JSON array: both are read (one array;
     one array a line; or a ``{"prefix": ...}`` line, then a JSON string a key). The
     manifests of the hour partitions overlapping a window, plus ``BATCH_UPLOAD_LAG`` (a
     day: a manifest is in its job's start hour, written as late as the job's end), are
     listed and kept by ``LastModified``, whatever their names: the input ones of the drift
     window, the output ones of the prediction window. Each kept manifest is read and its
     files resolved to ``s3://bucket/key`` URIs, each kept once. A malformed manifest fails
     the run with a ``ValueError`` naming its URI.
   - ground truth: Model Monitor's layout,
     ``s3://GROUND_TRUTH_BUCKET/<GROUND_TRUTH_PREFIX><model>/yyyy/mm/dd/hh/*.jsonl``, listed
     by hour partition as the endpoint capture is, ``.jsonl`` only.
4. **The manifests**, under the run's prefix
   ``s3://ARTIFACTS_BUCKET/<MONITORING_PREFIX><model>/<source>/<execution ID>/``:
   ``capture.manifest`` (the drift window's capture: for ``batch``, the jobs' input files),
   ``quality-capture.manifest`` (the prediction window's: for ``batch``, their output files)
   and ``ground-truth.manifest``. A ``ManifestFile`` has one prefix: the bucket's root for
   the endpoint capture and the labels; for ``batch``, the longest common prefix of the
   files' URIs ending at a ``/`` (``s3://raw/batch/m/input/``), the files of one manifest
   in more than one bucket failing the run with a ``ValueError`` naming two of them. They
   are written with no encryption argument: the bucket's default encryption (the stage's
   KMS key) applies (``ServerSideEncryption="aws:kms"`` without a key ID would use the
   AWS-managed ``aws/s3`` key instead). An empty window still gives its job something to
   read: one zero-byte ``empty/empty.jsonl`` under the run's prefix, which the checks read
   as an empty window and report as "no data".

It returns the step's ``OutputParameters``, every value a string (the pipeline declares them
``String``; SageMaker's ``OutputParameter`` values are strings of at most 1024 characters):
``ModelPackageArn``, ``BaselineUri``, ``CaptureManifestUri``, ``QualityCaptureManifestUri``,
``GroundTruthManifestUri``, ``ReportUri`` (the run's prefix, where the checks write their
reports), ``WindowStart``, ``WindowEnd`` (ISO 8601, ``Z``), ``CaptureObjectCount`` (the objects
``capture.manifest`` lists: for ``batch``, the input data files) and
``GroundTruthObjectCount``.

A malformed event (unknown source, minutes that are not whole numbers, a model name outside
``MODEL_NAME``) fails with a ``ValueError`` naming the argument; a malformed environment with
a ``ConfigError``. Nothing is written before every check has passed.

IAM: ``ssm:GetParameter`` on the version records; ``sagemaker:DescribeModelPackage`` on the
served versions; ``s3:ListBucket`` on the capture bucket (prefixes ``<model>/``) and the
ground-truth bucket (prefixes ``GROUND_TRUTH_PREFIX``); ``s3:GetObject`` on
``<model>/batch/*`` of the capture bucket (the batch manifests; the data files they list
are read by the checks, not here); ``s3:PutObject`` under ``MONITORING_PREFIX`` of the
artifacts bucket; and the buckets' KMS key through S3: ``kms:Decrypt`` (the manifests read)
and ``kms:GenerateDataKey`` (the objects written).

The Lambda package is this file alone: the standard library, the runtime's boto3 and the
Powertools layer. Everything project-specific arrives through environment variables.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="monitoring-window")

UTC = datetime.UTC
#: Short time-outs and bounded retries: a stuck listing fails the step, and the pipeline
#: reports it, rather than the function hanging until its time-out.
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=3, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 4}
)
#: The environment variables the construct sets.
ENVIRONMENT = (
    "STAGE",
    "CAPTURE_BUCKET",
    "ARTIFACTS_BUCKET",
    "GROUND_TRUTH_BUCKET",
    "GROUND_TRUTH_PREFIX",
    "RECORD_NAME_TEMPLATE",
    "NO_VERSION",
    "ENDPOINT_NAME_TEMPLATE",
    "MONITORING_PREFIX",
)
#: The model's name in the templates.
MODEL_PLACEHOLDER = "{model}"
#: A model's name, as the platform's config allows it.
MODEL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
ENDPOINT_SOURCE = "endpoint"
BATCH_SOURCE = "batch"
SOURCES = (ENDPOINT_SOURCE, BATCH_SOURCE)
#: The tail of a pipeline execution ARN (``.../execution/<id>``), as a key segment.
EXECUTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")
#: How long after its hour partition a capture or label file may be uploaded: that many
#: partitions before a window are listed too (their files are kept by ``LastModified``).
UPLOAD_LAG = datetime.timedelta(hours=1)
#: The same for batch transform manifests, which are in the partition of the hour their
#: job *started*: an output manifest is written when the job ends. Batch transform jobs
#: run for at most a day here (the pipeline's default runtime limit is shorter), so the day
#: of partitions before a window is listed too; LastModified still selects.
BATCH_UPLOAD_LAG = datetime.timedelta(hours=24)
#: The endpoint capture's and the labels' files: JSON Lines.
DATA_SUFFIX = ".jsonl"
#: Batch transform capture, under ``<model>/batch/``: the manifests of the jobs' input files
#: (read by the drift check) and of their output files (by the quality check).
BATCH_INPUT = "input/"
BATCH_OUTPUT = "output/"
#: The origin of the window grid of a window that does not divide a day.
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
#: An object's URI: ``s3://bucket/key``, the key not a "folder".
S3_URI = re.compile(r"^s3://([^/]+)/(.*[^/])$")
#: A ``ManifestFile``'s prefix object, in messages.
PREFIX_SHAPE = '{"prefix": "s3://bucket/..."}'
#: The stand-in for an empty window, under the run's prefix.
EMPTY_KEY = "empty/empty.jsonl"
CAPTURE_MANIFEST = "capture.manifest"
QUALITY_CAPTURE_MANIFEST = "quality-capture.manifest"
GROUND_TRUTH_MANIFEST = "ground-truth.manifest"
#: ``S3Uri`` of the baseline statistics in DescribeModelPackage's answer.
BASELINE_PATH = ("ModelMetrics", "ModelDataQuality", "Statistics", "S3Uri")

#: Makes a client of a service (the function's region).
Clients = Callable[[str], Any]


class ConfigError(RuntimeError):
    """The function's environment is incomplete or malformed (a deployment error)."""


class NothingServed(RuntimeError):
    """The stage serves no version of the model: there is nothing to monitor."""


class NoBaseline(RuntimeError):
    """The served version has no data-quality baseline to check drift against."""


@dataclass(frozen=True)
class Config:
    """The function's environment."""

    stage: str
    capture_bucket: str
    artifacts_bucket: str
    ground_truth_bucket: str
    #: Empty, or ending with ``/``.
    ground_truth_prefix: str
    record_template: str
    no_version: str
    endpoint_template: str
    #: Empty, or ending with ``/``.
    monitoring_prefix: str

    def record_name(self, model: str) -> str:
        return self.record_template.replace(MODEL_PLACEHOLDER, model)

    def endpoint_name(self, model: str) -> str:
        return self.endpoint_template.replace(MODEL_PLACEHOLDER, model)


@dataclass(frozen=True)
class Request:
    """One run's arguments, checked."""

    model: str
    source: str
    window_minutes: int
    delay_minutes: int
    #: The pipeline execution's ID (the tail of its ARN).
    execution_id: str


@dataclass(frozen=True)
class Window:
    """``[start, end)``, both aware UTC datetimes."""

    start: datetime.datetime
    end: datetime.datetime

    def __contains__(self, moment: datetime.datetime) -> bool:
        return self.start <= moment < self.end

    def partitions(self, lag: datetime.timedelta = UPLOAD_LAG) -> list[str]:
        """The ``yyyy/mm/dd/hh/`` partitions overlapping the window, from ``lag`` before it."""
        hour = (self.start - lag).replace(minute=0, second=0, microsecond=0)
        found = []
        while hour < self.end:
            found.append(hour.strftime("%Y/%m/%d/%H/"))
            hour += datetime.timedelta(hours=1)
        return found


@dataclass(frozen=True)
class Windows:
    """The drift check's window and the quality check's two."""

    drift: Window
    predictions: Window
    labels: Window


@dataclass(frozen=True)
class Obj:
    """A listed S3 object."""

    key: str
    last_modified: datetime.datetime


@dataclass(frozen=True)
class Selection:
    """What one check reads: a ``ManifestFile`` prefix (``s3://bucket/...``, ending with
    ``/``) and the keys relative to it, sorted (none: an empty window)."""

    prefix: str
    keys: tuple[str, ...]


# --- configuration and the event ------------------------------------------------------------


def read_config(environ: Mapping[str, str]) -> Config:
    """The configuration from the environment (``ConfigError`` naming what is wrong)."""
    # The prefixes may be empty (the bucket's root); the others may not.
    optional = ("GROUND_TRUTH_PREFIX", "MONITORING_PREFIX")
    missing = [
        name
        for name in ENVIRONMENT
        if environ.get(name) is None or (name not in optional and not environ[name])
    ]
    if missing:
        raise ConfigError(
            f"environment variables not set: {', '.join(missing)} (the monitoring construct "
            "sets them). Fix: redeploy the stage's monitoring stack"
        )
    problems = []
    for name in ("RECORD_NAME_TEMPLATE", "ENDPOINT_NAME_TEMPLATE"):
        if MODEL_PLACEHOLDER not in environ[name]:
            problems.append(f"{name} has no {MODEL_PLACEHOLDER}: {environ[name]!r}")
    for name in optional:
        value = environ[name]
        if value and (not value.endswith("/") or value.startswith("/")):
            problems.append(f"{name} must be empty or end with '/' (not start with it): {value!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(
        stage=environ["STAGE"],
        capture_bucket=environ["CAPTURE_BUCKET"],
        artifacts_bucket=environ["ARTIFACTS_BUCKET"],
        ground_truth_bucket=environ["GROUND_TRUTH_BUCKET"],
        ground_truth_prefix=environ["GROUND_TRUTH_PREFIX"],
        record_template=environ["RECORD_NAME_TEMPLATE"],
        no_version=environ["NO_VERSION"],
        endpoint_template=environ["ENDPOINT_NAME_TEMPLATE"],
        monitoring_prefix=environ["MONITORING_PREFIX"],
    )


def _minutes(event: Mapping[str, Any], name: str, minimum: int) -> int:
    value = event.get(name)
    # Booleans are ints to Python, but "True" is no number of minutes.
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"{name} must be a whole number of minutes, not {value!r}")
    minutes = int(text)
    if minutes < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {minutes}")
    return minutes


def parse_event(event: Mapping[str, Any]) -> Request:
    """The step's arguments, checked (``ValueError`` naming the first wrong one)."""
    model = event.get("ModelName")
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        raise ValueError(f"ModelName must match {MODEL_NAME.pattern}, not {model!r}")
    source = event.get("CaptureSource")
    if source not in SOURCES:
        raise ValueError(f"CaptureSource must be one of {', '.join(SOURCES)}, not {source!r}")
    window = _minutes(event, "WindowMinutes", 1)
    delay = _minutes(event, "GroundTruthDelayMinutes", 0)
    execution = event.get("ExecutionId")
    tail = execution.rsplit("/", 1)[-1] if isinstance(execution, str) else ""
    if not EXECUTION_ID.match(tail):
        raise ValueError(
            f"ExecutionId must be a pipeline execution ID or ARN (its tail matching "
            f"{EXECUTION_ID.pattern}), not {execution!r}"
        )
    return Request(str(model), str(source), window, delay, tail)


def window_end(moment: datetime.datetime, window_minutes: int) -> datetime.datetime:
    """The latest point of the window grid at or before ``moment`` (aware UTC).

    The grid is the multiples of ``window_minutes`` since 00:00 UTC of ``moment``'s day (60:
    the tops of the hours; 15: :00, :15, :30, :45), or since the Unix epoch for a window that
    does not divide a day (7, 100, 2880). A run that starts late, or is retried, gets the
    end an on-time run would have, so it checks the same whole window, and consecutive runs
    tile: the end is not the run's own clock, which would overlap or leave gaps.
    """
    step = datetime.timedelta(minutes=window_minutes)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    origin = EPOCH if DAY % step else midnight
    return origin + (moment - origin) // step * step


def windows(now: datetime.datetime, window_minutes: int, delay_minutes: int) -> Windows:
    """The drift, prediction and label windows of a run at ``now`` (naive: taken as UTC),
    ending on the window grid (``window_end``)."""
    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    end = window_end(moment, window_minutes)
    window = datetime.timedelta(minutes=window_minutes)
    delay = datetime.timedelta(minutes=delay_minutes)
    return Windows(
        drift=Window(end - window, end),
        predictions=Window(end - delay - window, end - delay),
        labels=Window(end - delay - window, end),
    )


def iso(moment: datetime.datetime) -> str:
    """``2026-01-01T10:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the served version -----------------------------------------------------------------------


def served_version(ssm: Any, sagemaker: Any, config: Config, model: str) -> tuple[str, str]:
    """The served model package ARN and its baseline directory (``s3://.../``).

    Raises:
        NothingServed: The record holds ``NO_VERSION``, or does not exist.
        NoBaseline: The version has no ``ModelDataQuality`` statistics, or not an S3 URI.
    """
    name = config.record_name(model)
    try:
        arn = ssm.get_parameter(Name=name)["Parameter"]["Value"].strip()
    except ssm.exceptions.ParameterNotFound:
        raise NothingServed(
            f"the version record {name} of model {model} does not exist in stage "
            f"{config.stage}: nothing is served, nothing to monitor. Fix: deploy the stage's "
            "data stack (it creates the records), then approve a version"
        ) from None
    if arn == config.no_version:
        raise NothingServed(
            f"stage {config.stage} serves no version of model {model} (its record {name} holds "
            f"{config.no_version!r}): nothing to monitor. Fix: approve a version, or turn the "
            "model's monitoring off until one is"
        )
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    uri: Any = package
    for key in BASELINE_PATH:
        uri = uri.get(key) if isinstance(uri, Mapping) else None
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise NoBaseline(
            f"model package {arn} (served by stage {config.stage} for model {model}) has no "
            f"data-quality baseline: {'.'.join(BASELINE_PATH)} is {uri!r}, not an "
            "s3://.../statistics.json. Fix: register versions with their baseline (the "
            "training pipeline's baseline step), and approve one that has it"
        )
    return arn, uri.rsplit("/", 1)[0] + "/"


# --- listing ----------------------------------------------------------------------------------


def _pages(s3: Any, **params: Any) -> Iterator[dict[str, Any]]:
    yield from s3.get_paginator("list_objects_v2").paginate(**params)


def list_objects(s3: Any, bucket: str, prefix: str) -> list[Obj]:
    """Every object under ``prefix`` (all pages)."""
    return [
        Obj(item["Key"], item["LastModified"])
        for page in _pages(s3, Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def list_folders(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The "folders" right under ``prefix`` (``<prefix><name>/``), in S3's order."""
    return [
        common["Prefix"]
        for page in _pages(s3, Bucket=bucket, Prefix=prefix, Delimiter="/")
        for common in page.get("CommonPrefixes", [])
    ]


def list_partitions(
    s3: Any, bucket: str, base: str, spans: Iterable[Window], lag: datetime.timedelta = UPLOAD_LAG
) -> list[Obj]:
    """The objects of the hour partitions under ``base`` that the windows need (each listed
    once, in time order)."""
    needed = sorted({partition for span in spans for partition in span.partitions(lag)})
    return [obj for partition in needed for obj in list_objects(s3, bucket, base + partition)]


def endpoint_objects(
    s3: Any, config: Config, request: Request, spans: Iterable[Window]
) -> list[Obj]:
    """The endpoint capture objects that may fall in the windows (filtered later, by
    window)."""
    endpoint = f"{request.model}/{config.endpoint_name(request.model)}/"
    spans = list(spans)
    found = []
    for variant in list_folders(s3, config.capture_bucket, endpoint):
        found += list_partitions(s3, config.capture_bucket, variant, spans)
    return found


def in_window(objects: Iterable[Obj], window: Window, suffix: str = DATA_SUFFIX) -> list[str]:
    """The keys of the objects named ``*<suffix>`` last modified in the window, sorted
    ("folder" keys, ending with ``/``, left out)."""
    return sorted(
        {
            o.key
            for o in objects
            if o.key.endswith(suffix) and not o.key.endswith("/") and o.last_modified in window
        }
    )


# --- batch transform capture ------------------------------------------------------------------


def _manifest_entries(text: str) -> list[tuple[str, Any]]:
    """A manifest's JSON values, each with where it is (``ValueError`` if one is not JSON).

    The whole file as one JSON value, or, if it is not one, JSON Lines (blank lines
    skipped).
    """
    try:
        return [("the file", json.loads(text))]
    except json.JSONDecodeError:
        pass
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON ({error})") from None
    return entries


def parse_manifest(text: str) -> list[str]:
    """The object URIs a batch capture manifest lists, in its order.

    Accepted, leniently: one ``ManifestFile`` JSON array (``[{"prefix": "s3://.../"}, "key",
    ...]``), the whole file or one a line; or JSON Lines of a ``{"prefix": ...}`` line and a
    JSON string a key (a later prefix line applies to the keys after it). A key is appended
    to its prefix, as SageMaker resolves a ``ManifestFile``.

    Raises:
        ValueError: Not one of those, no prefix at all, a key before any prefix, or a
            resolved URI that is not ``s3://bucket/key`` (of an object, not a "folder").
    """
    found: list[str] = []
    prefixes = 0
    prefix: str | None = None
    for where, value in _manifest_entries(text):
        # An array is a whole manifest: its own prefix first, then its keys.
        if isinstance(value, list):
            prefix = None
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Mapping):
                prefix = item.get("prefix")
                if not isinstance(prefix, str) or not prefix.startswith("s3://"):
                    raise ValueError(f"{where}: {item!r} is not a prefix object ({PREFIX_SHAPE})")
                prefixes += 1
            elif isinstance(item, str):
                if prefix is None:
                    raise ValueError(f"{where}: the key {item!r} comes before any prefix")
                if not S3_URI.match(prefix + item):
                    raise ValueError(
                        f"{where}: {prefix + item!r} is not the s3://bucket/key of an object"
                    )
                found.append(prefix + item)
            else:
                raise ValueError(f"{where}: {item!r} is neither a prefix object nor a key")
        if isinstance(value, list):
            prefix = None
    if not prefixes:
        raise ValueError(f"it has no prefix object ({PREFIX_SHAPE})")
    return found


def read_manifest(s3: Any, bucket: str, key: str) -> list[str]:
    """The object URIs the batch capture manifest ``s3://bucket/key`` lists.

    Raises:
        ValueError: The manifest is malformed (naming its URI, and why).
    """
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return parse_manifest(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"the batch capture manifest s3://{bucket}/{key} is malformed: {error}. A batch "
            f"transform job's capture manifest is a ManifestFile: [{PREFIX_SHAPE}, "
            '"key", ...], or JSON Lines of the prefix object and the keys. Fix: repair or '
            "remove it (every run whose window keeps it fails until then)"
        ) from error


def one_prefix(uris: Iterable[str], name: str) -> Selection:
    """``uris`` as one ``ManifestFile``: their longest common prefix ending at a ``/``, and
    the keys relative to it (each once, sorted).

    Raises:
        ValueError: The URIs are in more than one bucket (naming two of them), which one
            prefix cannot hold.
    """
    unique = sorted(set(uris))
    if not unique:
        return Selection("", ())
    by_bucket: dict[str, str] = {}
    for uri in unique:
        match = S3_URI.match(uri)
        by_bucket.setdefault(match.group(1) if match else uri, uri)
    if len(by_bucket) > 1:
        first, second = list(by_bucket.values())[:2]
        raise ValueError(
            f"the batch transform files for {name} are in more than one bucket ({first} and "
            f"{second}, at least): a ManifestFile has one prefix, so one bucket. Fix: keep the "
            "model's batch transform inputs in one bucket, and its outputs in one bucket"
        )
    # Sorted, their common prefix is that of the first and the last (the first, if it is a
    # prefix of the last); it is cut at its last "/".
    first, last = unique[0], unique[-1]
    pairs = enumerate(zip(first, last, strict=False))
    common = first[: next((i for i, (a, b) in pairs if a != b), len(first))]
    prefix = common[: common.rfind("/") + 1]
    return Selection(prefix, tuple(uri[len(prefix) :] for uri in unique))


def batch_capture(
    s3: Any, config: Config, model: str, folder: str, span: Window, name: str
) -> Selection:
    """What a check reads of the batch capture of ``span``: the files listed by the
    manifests of ``<model>/batch/<folder>`` last modified in it (any name).

    Raises:
        ValueError: A malformed manifest, or files in more than one bucket.
    """
    bucket = config.capture_bucket
    base = f"{model}/batch/{folder}"
    manifests = in_window(
        list_partitions(s3, bucket, base, [span], BATCH_UPLOAD_LAG), span, suffix=""
    )
    uris = [uri for key in manifests for uri in read_manifest(s3, bucket, key)]
    selection = one_prefix(uris, name)
    logger.info(
        "batch capture manifests read",
        extra={"folder": base, "manifests": len(manifests), "objects": len(selection.keys)},
    )
    return selection


# --- manifests --------------------------------------------------------------------------------


def manifest_file(prefix: str, keys: Iterable[str]) -> bytes:
    """A ``ManifestFile`` manifest of ``keys`` relative to ``prefix`` (``s3://.../``)."""
    body: list[Any] = [{"prefix": prefix}, *keys]
    return json.dumps(body).encode()


def manifest(bucket: str, keys: Iterable[str]) -> bytes:
    """A ``ManifestFile`` manifest of ``keys`` in ``bucket`` (relative to its root)."""
    return manifest_file(f"s3://{bucket}/", keys)


def put(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    """Writes an object with no encryption argument: the bucket's default encryption (the
    stage's KMS key) applies. ``ServerSideEncryption="aws:kms"`` without a key ID would use
    the AWS-managed ``aws/s3`` key instead."""
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def run_prefix(config: Config, request: Request) -> str:
    """The run's key prefix in the artifacts bucket (ends with ``/``)."""
    return f"{config.monitoring_prefix}{request.model}/{request.source}/{request.execution_id}/"


def select_window(
    event: Mapping[str, Any],
    config: Config,
    clients: Clients,
    now: Callable[[], datetime.datetime],
) -> dict[str, str]:
    """Selects a run's data and writes its manifests; returns the step's outputs.

    Args:
        event: The step's arguments.
        config: The function's environment.
        clients: Makes the ``ssm``, ``sagemaker`` and ``s3`` clients.
        now: The current time (aware, or naive UTC).

    Returns:
        The step's ``OutputParameters``, every value a string.

    Raises:
        ValueError: A malformed argument or batch capture manifest, or batch files in more
            than one bucket.
        NothingServed: The stage serves no version of the model.
        NoBaseline: The served version has no baseline.
    """
    request = parse_event(event)
    logger.append_keys(model=request.model, capture_source=request.source)
    spans = windows(now(), request.window_minutes, request.delay_minutes)
    arn, baseline = served_version(clients("ssm"), clients("sagemaker"), config, request.model)
    s3 = clients("s3")
    if request.source == BATCH_SOURCE:
        drift = batch_capture(s3, config, request.model, BATCH_INPUT, spans.drift, CAPTURE_MANIFEST)
        predictions = batch_capture(
            s3, config, request.model, BATCH_OUTPUT, spans.predictions, QUALITY_CAPTURE_MANIFEST
        )
    else:
        captured = endpoint_objects(s3, config, request, (spans.drift, spans.predictions))
        root = f"s3://{config.capture_bucket}/"
        drift = Selection(root, tuple(in_window(captured, spans.drift)))
        predictions = Selection(root, tuple(in_window(captured, spans.predictions)))
    labels_base = f"{config.ground_truth_prefix}{request.model}/"
    labels = list_partitions(s3, config.ground_truth_bucket, labels_base, [spans.labels])
    label = Selection(f"s3://{config.ground_truth_bucket}/", tuple(in_window(labels, spans.labels)))

    prefix = run_prefix(config, request)
    artifacts = config.artifacts_bucket
    if not (drift.keys and predictions.keys and label.keys):
        put(s3, artifacts, prefix + EMPTY_KEY, b"", "application/jsonlines")
    written = {}
    for name, selection in (
        (CAPTURE_MANIFEST, drift),
        (QUALITY_CAPTURE_MANIFEST, predictions),
        (GROUND_TRUTH_MANIFEST, label),
    ):
        if selection.keys:
            body = manifest_file(selection.prefix, selection.keys)
        else:
            body = manifest(artifacts, [prefix + EMPTY_KEY])
        put(s3, artifacts, prefix + name, body, "application/json")
        written[name] = f"s3://{artifacts}/{prefix}{name}"

    result = {
        "ModelPackageArn": arn,
        "BaselineUri": baseline,
        "CaptureManifestUri": written[CAPTURE_MANIFEST],
        "QualityCaptureManifestUri": written[QUALITY_CAPTURE_MANIFEST],
        "GroundTruthManifestUri": written[GROUND_TRUTH_MANIFEST],
        "ReportUri": f"s3://{artifacts}/{prefix}",
        "WindowStart": iso(spans.drift.start),
        "WindowEnd": iso(spans.drift.end),
        "CaptureObjectCount": str(len(drift.keys)),
        "GroundTruthObjectCount": str(len(label.keys)),
    }
    logger.info(
        "window selected",
        extra={
            "capture_objects": len(drift.keys),
            "quality_capture_objects": len(predictions.keys),
            "ground_truth_objects": len(label.keys),
            "window_start": result["WindowStart"],
            "window_end": result["WindowEnd"],
            "quality_window_start": iso(spans.predictions.start),
            "quality_window_end": iso(spans.predictions.end),
            "model_package_arn": arn,
            "report_uri": result["ReportUri"],
        },
    )
    return result


@functools.cache
def make_client(service: str) -> Any:
    """A client of ``service`` in the function's region, with ``CLIENT_CONFIG``."""
    return boto3.client(service, config=CLIENT_CONFIG)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return select_window(event, read_config(os.environ), make_client, utc_now)

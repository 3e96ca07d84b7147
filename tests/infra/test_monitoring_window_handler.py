"""SelectWindow: which capture and ground-truth objects a monitoring run checks.

The handler (handlers/monitoring_window) runs against real botocore clients wrapped in
Stubbers: each call's parameters are asserted exactly and checked against botocore's shapes
(as are the stubbed answers), a call not stubbed fails the test, and every stubbed call must
have been made. The time is a fixed ``now``. The version record's name and ``none`` come from
mlops/serving_record.py, as the construct's do.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cdk_helpers import ROOT, dummy_aws_credentials, load_handler, third_party_imports

from mlops.serving_record import NO_VERSION, endpoint_name, record_name

HANDLER = ROOT / "handlers" / "monitoring_window" / "index.py"
window = load_handler("monitoring_window")

UTC = datetime.UTC
ACCOUNT = "111122223333"
STAGE = "staging"
MODEL = "breast-cancer"
CAPTURE = "staging-capture"
ARTIFACTS = "staging-artifacts"
LABELS = "staging-ground-truth"
ENDPOINT = endpoint_name(STAGE, MODEL)
RECORD = record_name(STAGE, MODEL)
PACKAGE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/{STAGE}-{MODEL}/7"
BASELINE = f"s3://{ARTIFACTS}/training/{MODEL}/run-42/baseline/"
EXECUTION_ID = "k2c4n1x0p9ab"
EXECUTION_ARN = (
    f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/{STAGE}-monitoring/execution/{EXECUTION_ID}"
)
RUN = f"monitoring/{MODEL}/endpoint/{EXECUTION_ID}/"
#: The run's time: the window ends at 10:20 (floored to the minute) and starts at 09:20, so
#: it spans the 09 and 10 partitions (and 08 is listed for files uploaded late).
NOW = datetime.datetime(2026, 1, 1, 10, 20, 45, 123456, tzinfo=UTC)

ENVIRONMENT = {
    "STAGE": STAGE,
    "CAPTURE_BUCKET": CAPTURE,
    "ARTIFACTS_BUCKET": ARTIFACTS,
    "GROUND_TRUTH_BUCKET": LABELS,
    "GROUND_TRUTH_PREFIX": "ground-truth/",
    "RECORD_NAME_TEMPLATE": record_name(STAGE, "{model}"),
    "NO_VERSION": NO_VERSION,
    "ENDPOINT_NAME_TEMPLATE": endpoint_name(STAGE, "{model}"),
    "MONITORING_PREFIX": "monitoring/",
}
CONFIG = window.read_config(ENVIRONMENT)


def at(hour: int, minute: int, second: int = 0, day: int = 1) -> datetime.datetime:
    return datetime.datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


def event(
    source: str = "endpoint",
    window_minutes: str = "60",
    delay: str = "0",
    execution: str = EXECUTION_ARN,
    model: str = MODEL,
) -> dict[str, str]:
    """The step's arguments, as the pipeline passes them (strings)."""
    return {
        "ModelName": model,
        "CaptureSource": source,
        "WindowMinutes": window_minutes,
        "GroundTruthDelayMinutes": delay,
        "ExecutionId": execution,
    }


def partition(hour: int) -> str:
    return f"2026/01/01/{hour:02d}/"


class Aws:
    """Stubbed clients, the factory the handler makes them with, and the expected calls."""

    def __init__(self, ssm: Any, sagemaker: Any, s3: Any) -> None:
        self.clients_by_name = {"ssm": ssm, "sagemaker": sagemaker, "s3": s3}
        self.stubs = {name: Stubber(client) for name, client in self.clients_by_name.items()}

    def clients(self, service: str) -> Any:
        return self.clients_by_name[service]

    def served(self, value: str = PACKAGE) -> None:
        answer = {"Parameter": {"Name": RECORD, "Type": "String", "Value": value, "Version": 3}}
        self.stubs["ssm"].add_response("get_parameter", answer, {"Name": RECORD})

    def package(self, statistics: str | None = BASELINE + "statistics.json") -> None:
        answer: dict[str, Any] = {
            "ModelPackageName": f"{STAGE}-{MODEL}",
            "ModelPackageArn": PACKAGE,
            "CreationTime": at(0, 0),
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
        }
        if statistics is not None:
            source = {"ContentType": "application/json", "S3Uri": statistics}
            answer["ModelMetrics"] = {"ModelDataQuality": {"Statistics": source}}
        params = {"ModelPackageName": PACKAGE}
        self.stubs["sagemaker"].add_response("describe_model_package", answer, params)

    def listing(
        self,
        bucket: str,
        prefix: str,
        *pages: list[tuple[str, datetime.datetime]],
        folders: list[str] | None = None,
    ) -> None:
        """One listing of ``prefix``: a page per argument (``folders``: with delimiter ``/``,
        one page of those folders)."""
        if folders is not None:
            answer = {
                "IsTruncated": False,
                "CommonPrefixes": [{"Prefix": f"{prefix}{name}/"} for name in folders],
            }
            params = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
            self.stubs["s3"].add_response("list_objects_v2", answer, params)
            return
        for index, objects in enumerate(pages or ([],)):
            more = index + 1 < len(pages)
            page: dict[str, Any] = {
                "IsTruncated": more,
                "Contents": [
                    {"Key": key, "LastModified": modified, "Size": 100} for key, modified in objects
                ],
            }
            params = {"Bucket": bucket, "Prefix": prefix}
            if more:
                page["NextContinuationToken"] = f"token-{index + 1}"
            if index:
                params["ContinuationToken"] = f"token-{index}"
            self.stubs["s3"].add_response("list_objects_v2", page, params)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        params = {
            "Bucket": ARTIFACTS,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "ServerSideEncryption": "aws:kms",
        }
        self.stubs["s3"].add_response("put_object", {}, params)

    def empty_written(self, run: str = RUN) -> None:
        self.put(run + "empty/empty.jsonl", b"", "application/jsonlines")

    def manifests(self, capture: list[str], quality: list[str], labels: list[str], run: str = RUN):
        """The three manifests, in the order they are written."""
        empty = [run + "empty/empty.jsonl"]
        for name, bucket, keys in (
            ("capture.manifest", CAPTURE, capture),
            ("quality-capture.manifest", CAPTURE, quality),
            ("ground-truth.manifest", LABELS, labels),
        ):
            body = [{"prefix": f"s3://{bucket}/"}, *keys] if keys else [
                {"prefix": f"s3://{ARTIFACTS}/"}, *empty
            ]  # fmt: skip
            self.put(run + name, json.dumps(body).encode())


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    """Real clients, made once (loading SageMaker's model is slow)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dummy_aws_credentials(monkeypatch, tmp_path_factory.mktemp("aws"))
        yield (
            boto3.client("ssm", region_name="us-east-1"),
            boto3.client("sagemaker", region_name="us-east-1"),
            boto3.client("s3", region_name="us-east-1"),
        )


@pytest.fixture
def aws(clients: tuple[Any, Any, Any]) -> Iterator[Aws]:
    """The clients with fresh Stubbers: every queued call must be made."""
    stubbed = Aws(*clients)
    for stub in stubbed.stubs.values():
        stub.activate()
    try:
        yield stubbed
        for stub in stubbed.stubs.values():
            stub.assert_no_pending_responses()
    finally:  # the clients are shared: a failed test must not leave its stubs on them
        for stub in stubbed.stubs.values():
            stub.deactivate()


def run(aws: Aws, arguments: dict[str, str], now: datetime.datetime = NOW) -> dict[str, str]:
    return window.select_window(arguments, CONFIG, aws.clients, lambda: now)


def outputs(capture: int, labels: int, run_prefix: str = RUN, **changes: str) -> dict[str, str]:
    base = f"s3://{ARTIFACTS}/{run_prefix}"
    expected = {
        "ModelPackageArn": PACKAGE,
        "BaselineUri": BASELINE,
        "CaptureManifestUri": base + "capture.manifest",
        "QualityCaptureManifestUri": base + "quality-capture.manifest",
        "GroundTruthManifestUri": base + "ground-truth.manifest",
        "ReportUri": base,
        "WindowStart": "2026-01-01T09:20:00Z",
        "WindowEnd": "2026-01-01T10:20:00Z",
        "CaptureObjectCount": str(capture),
        "GroundTruthObjectCount": str(labels),
    }
    return {**expected, **changes}


# --- endpoint capture -------------------------------------------------------------------------


def test_endpoint_capture_of_two_variants_across_two_hour_partitions(aws: Aws) -> None:
    """Kept: ``.jsonl`` objects last modified in [09:20, 10:20), whichever partition they are
    in (the 08 one included: uploaded late). Left out: before the start, at the end (it is
    excluded), after it, and files that are not ``.jsonl``."""
    base = f"{MODEL}/{ENDPOINT}/"
    main, canary = f"{base}AllTraffic/", f"{base}Canary/"
    late = main + partition(8) + "08-59-00-000-late.jsonl"
    first = main + partition(9) + "09-20-00-000-first.jsonl"
    last = main + partition(10) + "10-19-00-000-last.jsonl"
    canary_one = canary + partition(9) + "09-45-00-000-c.jsonl"
    gt_in = f"ground-truth/{MODEL}/" + partition(9) + "labels-1.jsonl"

    aws.served()
    aws.package()
    aws.listing(CAPTURE, base, folders=["AllTraffic", "Canary"])
    aws.listing(
        CAPTURE, main + partition(8),
        [(late, at(9, 21)), (main + partition(8) + "08-10-00-000-old.jsonl", at(8, 11))],
    )  # fmt: skip
    aws.listing(
        CAPTURE, main + partition(9),
        [
            (main + partition(9) + "09-19-00-000-before.jsonl", at(9, 19, 59)),
            (first, at(9, 20)),
            (main + partition(9) + "09-30-00-000-notes.json", at(9, 30)),
        ],
    )  # fmt: skip
    aws.listing(
        CAPTURE, main + partition(10),
        [(last, at(10, 19, 59)), (main + partition(10) + "10-20-00-000-end.jsonl", at(10, 20))],
    )  # fmt: skip
    aws.listing(CAPTURE, canary + partition(8))
    aws.listing(CAPTURE, canary + partition(9), [(canary_one, at(9, 45))])
    aws.listing(CAPTURE, canary + partition(10))
    labels = f"ground-truth/{MODEL}/"
    aws.listing(LABELS, labels + partition(8), [(labels + partition(8) + "old.jsonl", at(8, 30))])
    aws.listing(LABELS, labels + partition(9), [(gt_in, at(9, 30))])
    aws.listing(LABELS, labels + partition(10), [(labels + partition(10) + "x.jsonl", at(10, 21))])
    captured = sorted([late, first, last, canary_one])
    aws.manifests(captured, captured, [gt_in])  # no delay: the same predictions

    assert run(aws, event()) == outputs(capture=4, labels=1)


def test_a_manifest_is_a_manifest_file_of_relative_keys() -> None:
    """SageMaker's ``ManifestFile`` format: the prefix first, then keys relative to it."""
    body = window.manifest("bucket", ["a/b.jsonl", "c.jsonl"])
    assert json.loads(body) == [{"prefix": "s3://bucket/"}, "a/b.jsonl", "c.jsonl"]
    assert body == b'[{"prefix": "s3://bucket/"}, "a/b.jsonl", "c.jsonl"]'


def test_the_quality_window_is_shifted_by_the_ground_truth_delay(aws: Aws) -> None:
    """Delay 120 min: predictions of [07:20, 08:20), labels of [07:20, 10:20); the drift
    window is unchanged. Each partition the windows need is listed once."""
    base = f"{MODEL}/{ENDPOINT}/"
    variant = f"{base}AllTraffic/"
    old_prediction = variant + partition(7) + "07-30-00-000-p.jsonl"
    boundary = variant + partition(8) + "08-19-00-000-q.jsonl"
    recent = variant + partition(9) + "09-40-00-000-r.jsonl"
    labels = f"ground-truth/{MODEL}/"
    early_label = labels + partition(7) + "l1.jsonl"
    recent_label = labels + partition(10) + "l2.jsonl"

    aws.served()
    aws.package()
    aws.listing(CAPTURE, base, folders=["AllTraffic"])
    aws.listing(CAPTURE, variant + partition(6))
    aws.listing(CAPTURE, variant + partition(7), [(old_prediction, at(7, 31))])
    aws.listing(
        CAPTURE, variant + partition(8),
        [(boundary, at(8, 19, 59)), (variant + partition(8) + "08-20.jsonl", at(8, 20))],
    )  # fmt: skip
    aws.listing(CAPTURE, variant + partition(9), [(recent, at(9, 41))])
    aws.listing(CAPTURE, variant + partition(10))
    aws.listing(LABELS, labels + partition(6), [(labels + partition(6) + "l0.jsonl", at(7, 19))])
    aws.listing(LABELS, labels + partition(7), [(early_label, at(7, 20))])
    aws.listing(LABELS, labels + partition(8))
    aws.listing(LABELS, labels + partition(9))
    aws.listing(LABELS, labels + partition(10), [(recent_label, at(10, 5))])
    aws.manifests([recent], [old_prediction, boundary], [early_label, recent_label])

    assert run(aws, event(delay="120")) == outputs(capture=1, labels=2)


# --- batch capture ----------------------------------------------------------------------------


def test_batch_capture_lists_the_whole_prefix_page_by_page(aws: Aws) -> None:
    """The batch layout is not fixed: every page of ``<model>/batch/`` is read and filtered
    by time; no ground truth gives the empty stand-in."""
    prefix = f"{MODEL}/batch/"
    run_prefix = f"monitoring/{MODEL}/batch/{EXECUTION_ID}/"
    in_one = prefix + "job-1/input/part-0.jsonl"
    in_two = prefix + "job-2/2026/01/01/10/out.jsonl"
    aws.served()
    aws.package()
    aws.listing(
        CAPTURE, prefix,
        [(prefix + "job-0/old.jsonl", at(8, 0)), (in_one, at(9, 25))],
        [(prefix + "job-2/manifest.json", at(9, 50)), (in_two, at(10, 1))],
        [(prefix + "job-3/later.jsonl", at(10, 20, 1))],
    )  # fmt: skip
    labels = f"ground-truth/{MODEL}/"
    for hour in (8, 9, 10):
        aws.listing(LABELS, labels + partition(hour))
    aws.empty_written(run_prefix)
    aws.manifests([in_one, in_two], [in_one, in_two], [], run=run_prefix)

    result = run(aws, event(source="batch", execution=EXECUTION_ID))
    assert result == outputs(capture=2, labels=0, run_prefix=run_prefix)


def test_an_empty_window_lists_the_empty_stand_in(aws: Aws) -> None:
    """No variant captured anything yet, no labels: each manifest lists one zero-byte
    ``empty/empty.jsonl`` of the run, which the checks report as "no data"."""
    aws.served()
    aws.package()
    aws.listing(CAPTURE, f"{MODEL}/{ENDPOINT}/", folders=[])
    labels = f"ground-truth/{MODEL}/"
    for hour in (8, 9, 10):
        aws.listing(LABELS, labels + partition(hour))
    aws.empty_written()
    aws.manifests([], [], [])

    assert run(aws, event()) == outputs(capture=0, labels=0)


# --- the served version -------------------------------------------------------------------


def test_a_stage_serving_nothing_fails_the_run(aws: Aws) -> None:
    aws.served(NO_VERSION)
    with pytest.raises(window.NothingServed, match=f"serves no version of model {MODEL}"):
        run(aws, event())


def test_a_missing_record_fails_the_run(aws: Aws) -> None:
    aws.stubs["ssm"].add_client_error(
        "get_parameter", "ParameterNotFound", "not found", 400, expected_params={"Name": RECORD}
    )
    with pytest.raises(window.NothingServed, match=f"{RECORD} of model {MODEL} does not exist"):
        run(aws, event())


@pytest.mark.parametrize("statistics", [None, "", "baseline/statistics.json"])
def test_a_version_without_a_baseline_fails_naming_it(aws: Aws, statistics: str | None) -> None:
    aws.served()
    aws.package(statistics)
    with pytest.raises(window.NoBaseline, match=f"model package {PACKAGE} .* no data-quality"):
        run(aws, event())


# --- the arguments and the environment -----------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CaptureSource": "stream"}, "CaptureSource must be one of endpoint, batch"),
        ({"CaptureSource": None}, "CaptureSource must be"),
        ({"WindowMinutes": "sixty"}, "WindowMinutes must be a whole number"),
        ({"WindowMinutes": "1.5"}, "WindowMinutes must be a whole number"),
        ({"WindowMinutes": "-5"}, "WindowMinutes must be a whole number"),
        ({"WindowMinutes": "0"}, "WindowMinutes must be at least 1"),
        ({"WindowMinutes": True}, "WindowMinutes must be a whole number"),
        ({"GroundTruthDelayMinutes": ""}, "GroundTruthDelayMinutes must be a whole number"),
        ({"ModelName": "Breast_Cancer"}, "ModelName must match"),
        ({"ModelName": "b"}, "ModelName must match"),
        ({"ModelName": "breast-"}, "ModelName must match"),
        ({"ModelName": "m" * 33}, "ModelName must match"),
        ({"ExecutionId": ""}, "ExecutionId must be"),
        ({"ExecutionId": "arn:aws:sagemaker:x:pipeline/p/execution/"}, "ExecutionId must be"),
    ],
)
def test_malformed_arguments_are_refused_before_any_call(
    aws: Aws, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(aws, {**event(), **changes})


def test_whole_minutes_may_come_as_numbers() -> None:
    request = window.parse_event({**event(), "WindowMinutes": 30, "GroundTruthDelayMinutes": 0})
    assert (request.window_minutes, request.delay_minutes) == (30, 0)
    assert request.execution_id == EXECUTION_ID


def test_the_windows_end_at_the_minute() -> None:
    spans = window.windows(NOW, 60, 30)
    assert (spans.drift.start, spans.drift.end) == (at(9, 20), at(10, 20))
    assert (spans.predictions.start, spans.predictions.end) == (at(8, 50), at(9, 50))
    assert (spans.labels.start, spans.labels.end) == (at(8, 50), at(10, 20))
    naive = window.windows(NOW.replace(tzinfo=None), 60, 0)
    assert naive.drift == spans.drift


def test_partitions_cross_days_and_include_the_upload_lag() -> None:
    span = window.Window(at(23, 30), at(0, 30, day=2))
    assert span.partitions() == ["2026/01/01/22/", "2026/01/01/23/", "2026/01/02/00/"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CAPTURE_BUCKET": ""}, "environment variables not set: CAPTURE_BUCKET"),
        ({"RECORD_NAME_TEMPLATE": "/mlops/staging/x"}, "RECORD_NAME_TEMPLATE has no"),
        ({"ENDPOINT_NAME_TEMPLATE": "staging"}, "ENDPOINT_NAME_TEMPLATE has no"),
        ({"MONITORING_PREFIX": "monitoring"}, "MONITORING_PREFIX must be empty or end"),
        ({"GROUND_TRUTH_PREFIX": "/labels/"}, "GROUND_TRUTH_PREFIX must be empty or end"),
    ],
)
def test_a_malformed_environment_is_a_config_error(changes: dict[str, str], message: str) -> None:
    with pytest.raises(window.ConfigError, match=message):
        window.read_config({**ENVIRONMENT, **changes})


def test_empty_prefixes_are_the_buckets_roots() -> None:
    config = window.read_config({**ENVIRONMENT, "MONITORING_PREFIX": "", "GROUND_TRUTH_PREFIX": ""})
    request = window.parse_event(event())
    assert window.run_prefix(config, request) == f"{MODEL}/endpoint/{EXECUTION_ID}/"


# --- the Lambda entry point and the package -----------------------------------------------


class Context:
    """The attributes of a Lambda context that Powertools' Logger reads."""

    function_name = "staging-monitoring-window"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:staging-window"
    aws_request_id = "0f6a7c1e-0000-0000-0000-000000000000"


def test_the_handler_reads_the_environment_and_the_clock(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(window, "make_client", aws.clients)
    monkeypatch.setattr(window, "utc_now", lambda: NOW)
    aws.served(NO_VERSION)
    with pytest.raises(window.NothingServed):
        window.handler(event(), Context())


def test_the_handler_imports_nothing_of_the_project() -> None:
    """The Lambda package is the file alone: the stdlib, boto3/botocore and Powertools."""
    assert third_party_imports(HANDLER) <= {"boto3", "botocore", "aws_lambda_powertools"}

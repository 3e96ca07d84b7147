"""SelectWindow: which capture and ground-truth objects a monitoring run checks.

The handler (handlers/monitoring_window) runs against real botocore clients wrapped in
Stubbers: each call's parameters are asserted exactly and checked against botocore's shapes
(as are the stubbed answers), a call not stubbed fails the test, and every stubbed call must
have been made. The time is a fixed ``now``; the windows end on the window grid. The version
record's name and ``none`` come from mlops/serving_record.py, as the construct's do.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from cdk_helpers import (
    ROOT,
    dummy_aws_credentials,
    lambda_context,
    load_handler,
    third_party_imports,
)

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
BATCH_RUN = f"monitoring/{MODEL}/batch/{EXECUTION_ID}/"
#: The run's time, 20 minutes late: the 60-minute window ends on the grid, at 10:00, and
#: starts at 09:00, so it is the 09 partition (and 08 is listed for files uploaded late).
NOW = datetime.datetime(2026, 1, 1, 10, 20, 45, 123456, tzinfo=UTC)
#: The batch transform jobs' files (outside the capture bucket).
RAW = "raw-data"
BATCH_INPUT = f"{MODEL}/batch/input/"
BATCH_OUTPUT = f"{MODEL}/batch/output/"

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
        # No ServerSideEncryption: the bucket's default (the stage's key) applies.
        params = {"Bucket": ARTIFACTS, "Key": key, "Body": body, "ContentType": content_type}
        self.stubs["s3"].add_response("put_object", {}, params)

    def read(self, key: str, body: bytes) -> None:
        """One GetObject of a batch capture manifest in the capture bucket."""
        answer = {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body)}
        self.stubs["s3"].add_response("get_object", answer, {"Bucket": CAPTURE, "Key": key})

    def empty_written(self, run: str = RUN) -> None:
        self.put(run + "empty/empty.jsonl", b"", "application/jsonlines")

    def manifests(
        self,
        capture: list[str],
        quality: list[str],
        labels: list[str],
        run: str = RUN,
        capture_prefix: str = f"s3://{CAPTURE}/",
        quality_prefix: str = f"s3://{CAPTURE}/",
    ) -> None:
        """The three manifests, in the order they are written."""
        empty = [run + "empty/empty.jsonl"]
        for name, prefix, keys in (
            ("capture.manifest", capture_prefix, capture),
            ("quality-capture.manifest", quality_prefix, quality),
            ("ground-truth.manifest", f"s3://{LABELS}/", labels),
        ):
            body = [{"prefix": prefix}, *keys] if keys else [
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
        "WindowStart": "2026-01-01T09:00:00Z",
        "WindowEnd": "2026-01-01T10:00:00Z",
        "CaptureObjectCount": str(capture),
        "GroundTruthObjectCount": str(labels),
    }
    return {**expected, **changes}


# --- endpoint capture -------------------------------------------------------------------------


def test_endpoint_capture_of_two_variants_across_two_hour_partitions(aws: Aws) -> None:
    """Kept: ``.jsonl`` objects last modified in [09:00, 10:00), whichever partition they are
    in (the 08 one included: uploaded late). Left out: before the start, at the end (it is
    excluded), after it, and files that are not ``.jsonl``. The 10 partition, after the
    window, is not listed."""
    base = f"{MODEL}/{ENDPOINT}/"
    main, canary = f"{base}AllTraffic/", f"{base}Canary/"
    late = main + partition(8) + "08-59-00-000-late.jsonl"
    first = main + partition(9) + "09-00-00-000-first.jsonl"
    last = main + partition(9) + "09-59-00-000-last.jsonl"
    canary_one = canary + partition(9) + "09-45-00-000-c.jsonl"
    gt_in = f"ground-truth/{MODEL}/" + partition(9) + "labels-1.jsonl"

    aws.served()
    aws.package()
    aws.listing(CAPTURE, base, folders=["AllTraffic", "Canary"])
    aws.listing(
        CAPTURE, main + partition(8),
        [
            (late, at(9, 1)),
            (main + partition(8) + "08-10-00-000-old.jsonl", at(8, 11)),
            (main + partition(8) + "08-58-00-000-before.jsonl", at(8, 59, 59)),
        ],
    )  # fmt: skip
    aws.listing(
        CAPTURE, main + partition(9),
        [
            (first, at(9, 0)),
            (main + partition(9) + "09-30-00-000-notes.json", at(9, 30)),
            (last, at(9, 59, 59)),
            (main + partition(9) + "09-59-30-000-end.jsonl", at(10, 0)),
        ],
    )  # fmt: skip
    aws.listing(CAPTURE, canary + partition(8))
    aws.listing(CAPTURE, canary + partition(9), [(canary_one, at(9, 45))])
    labels = f"ground-truth/{MODEL}/"
    aws.listing(LABELS, labels + partition(8), [(labels + partition(8) + "old.jsonl", at(8, 30))])
    aws.listing(
        LABELS, labels + partition(9),
        [(gt_in, at(9, 30)), (labels + partition(9) + "x.jsonl", at(10, 1))],
    )  # fmt: skip
    captured = sorted([late, first, last, canary_one])
    aws.manifests(captured, captured, [gt_in])  # no delay: the same predictions

    assert run(aws, event()) == outputs(capture=4, labels=1)


def test_a_manifest_is_a_manifest_file_of_relative_keys() -> None:
    """SageMaker's ``ManifestFile`` format: the prefix first, then keys relative to it."""
    body = window.manifest("bucket", ["a/b.jsonl", "c.jsonl"])
    assert json.loads(body) == [{"prefix": "s3://bucket/"}, "a/b.jsonl", "c.jsonl"]
    assert body == b'[{"prefix": "s3://bucket/"}, "a/b.jsonl", "c.jsonl"]'


def test_the_quality_window_is_shifted_by_the_ground_truth_delay(aws: Aws) -> None:
    """Delay 120 min: predictions of [07:00, 08:00), labels of [07:00, 10:00); the drift
    window is unchanged. Each partition the windows need is listed once."""
    base = f"{MODEL}/{ENDPOINT}/"
    variant = f"{base}AllTraffic/"
    uploaded_late = variant + partition(6) + "06-59-00-000-o.jsonl"
    old_prediction = variant + partition(7) + "07-30-00-000-p.jsonl"
    boundary = variant + partition(7) + "07-59-00-000-q.jsonl"
    recent = variant + partition(9) + "09-40-00-000-r.jsonl"
    labels = f"ground-truth/{MODEL}/"
    early_label = labels + partition(7) + "l1.jsonl"
    recent_label = labels + partition(9) + "l2.jsonl"

    aws.served()
    aws.package()
    aws.listing(CAPTURE, base, folders=["AllTraffic"])
    aws.listing(CAPTURE, variant + partition(6), [(uploaded_late, at(7, 0))])
    aws.listing(
        CAPTURE, variant + partition(7),
        [
            (old_prediction, at(7, 31)),
            (boundary, at(7, 59, 59)),
            (variant + partition(7) + "07-59-30-000-s.jsonl", at(8, 0)),
        ],
    )  # fmt: skip
    aws.listing(CAPTURE, variant + partition(8))
    aws.listing(CAPTURE, variant + partition(9), [(recent, at(9, 41))])
    aws.listing(LABELS, labels + partition(6), [(labels + partition(6) + "l0.jsonl", at(6, 59))])
    aws.listing(LABELS, labels + partition(7), [(early_label, at(7, 0))])
    aws.listing(LABELS, labels + partition(8))
    aws.listing(LABELS, labels + partition(9), [(recent_label, at(9, 5))])
    aws.manifests(
        [recent], sorted([uploaded_late, old_prediction, boundary]), [early_label, recent_label]
    )

    assert run(aws, event(delay="120")) == outputs(capture=1, labels=2)


# --- batch capture ----------------------------------------------------------------------------


def lines(*values: Any) -> bytes:
    """JSON Lines: one JSON value a line."""
    return "".join(json.dumps(value) + "\n" for value in values).encode()


@pytest.fixture(autouse=True)
def one_hour_batch_lag(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The batch tests list the hour before a window, like the endpoint's; the day the
    handler lists for batch is tested on its own."""
    if request.node.name != "test_a_batch_manifest_written_at_a_long_jobs_end_is_found":
        monkeypatch.setattr(window, "BATCH_UPLOAD_LAG", window.UPLOAD_LAG)


def test_a_batch_manifest_written_at_a_long_jobs_end_is_found(aws: Aws) -> None:
    """A manifest sits in its job's start hour; one written at the end of a job that began
    a day earlier (LastModified in the window) is read: the day of partitions is listed."""
    late = BATCH_INPUT + "2025/12/31/09/job-long"
    aws.served()
    aws.package()
    hours = [datetime.timedelta(hours=h) for h in range(-24, 1)]
    start = at(9, 0)
    for offset in hours:
        moment = start + offset
        prefix = BATCH_INPUT + moment.strftime("%Y/%m/%d/%H/")
        aws.listing(CAPTURE, prefix, [(late, at(9, 30))] if late.startswith(prefix) else [])
    aws.read(late, json.dumps([{"prefix": f"s3://{RAW}/in/"}, "a.csv"]).encode())
    for offset in hours:
        aws.listing(CAPTURE, BATCH_OUTPUT + (start + offset).strftime("%Y/%m/%d/%H/"))
    labels = f"ground-truth/{MODEL}/"
    for hour in (8, 9):
        aws.listing(LABELS, labels + partition(hour))
    aws.empty_written(BATCH_RUN)
    aws.manifests(["a.csv"], [], [], run=BATCH_RUN, capture_prefix=f"s3://{RAW}/in/")

    result = run(aws, event(source="batch", execution=EXECUTION_ID))
    assert result == outputs(capture=1, labels=0, run_prefix=BATCH_RUN)


def test_batch_capture_reads_the_manifests_of_the_window(aws: Aws) -> None:
    """The manifests of the 08 and 09 partitions last modified in [09:00, 10:00), whatever
    their names, are read: input ones for the drift check, output ones for the quality
    check. Left out: before the start, at the end, a "folder" key. One manifest is a JSON
    array, one JSON Lines, one an array a line; a file listed twice (by two prefixes) is
    kept once; each manifest's prefix is the files' longest common one ending at a "/"."""
    inputs, outs = f"s3://{RAW}/batch/{MODEL}/input/", f"s3://{RAW}/batch/{MODEL}/output/"
    array_in = BATCH_INPUT + partition(8) + "job-a-manifest.jsonl"
    lines_in = BATCH_INPUT + partition(9) + "job-b"
    array_out = BATCH_OUTPUT + partition(8) + "job-a-manifest.jsonl"
    lines_out = BATCH_OUTPUT + partition(9) + "job-b.manifest"
    label = f"ground-truth/{MODEL}/" + partition(9) + "labels.jsonl"

    aws.served()
    aws.package()
    aws.listing(
        CAPTURE, BATCH_INPUT + partition(8),
        [(BATCH_INPUT + partition(8) + "job-0", at(8, 30)), (array_in, at(9, 5))],
    )  # fmt: skip
    aws.listing(
        CAPTURE, BATCH_INPUT + partition(9),
        [
            (BATCH_INPUT + partition(9), at(9, 1)),
            (lines_in, at(9, 40)),
            (BATCH_INPUT + partition(9) + "job-c", at(10, 0)),
        ],
    )  # fmt: skip
    aws.read(array_in, json.dumps(
        [{"prefix": inputs + "2026-01-01/"}, "dummy_0.csv", "dummy_1.csv"]
    ).encode())  # fmt: skip
    aws.read(lines_in, lines(
        {"prefix": inputs}, "2026-01-01/dummy_1.csv", "2026-01-02/part-0.csv"
    ))  # fmt: skip
    aws.listing(CAPTURE, BATCH_OUTPUT + partition(8), [(array_out, at(9, 6))])
    aws.listing(
        CAPTURE, BATCH_OUTPUT + partition(9),
        [(lines_out, at(9, 41)), (BATCH_OUTPUT + partition(9) + "job-c", at(10, 0, 1))],
    )  # fmt: skip
    aws.read(array_out, json.dumps(
        [{"prefix": outs}, "dummy_0.csv.out", "dummy_1.csv.out"]
    ).encode())  # fmt: skip
    aws.read(lines_out, lines(
        [{"prefix": outs}, "part-0.csv.out"], [{"prefix": outs + "day2/"}, "part-1.csv.out"]
    ))  # fmt: skip
    labels = f"ground-truth/{MODEL}/"
    aws.listing(LABELS, labels + partition(8))
    aws.listing(LABELS, labels + partition(9), [(label, at(9, 30))])
    aws.manifests(
        ["2026-01-01/dummy_0.csv", "2026-01-01/dummy_1.csv", "2026-01-02/part-0.csv"],
        ["day2/part-1.csv.out", "dummy_0.csv.out", "dummy_1.csv.out", "part-0.csv.out"],
        [label],
        run=BATCH_RUN,
        capture_prefix=inputs,
        quality_prefix=outs,
    )

    result = run(aws, event(source="batch", execution=EXECUTION_ID))
    assert result == outputs(capture=3, labels=1, run_prefix=BATCH_RUN)


def test_batch_inputs_and_outsfollow_their_own_windows(aws: Aws) -> None:
    """Delay 60 min: input manifests of [09:00, 10:00) for the drift check, output ones of
    [08:00, 09:00) for the quality check; an output manifest of the drift window is not
    read. The files of one manifest in one folder: that folder is the prefix."""
    data_in = BATCH_INPUT + partition(9) + "in"
    data_out = BATCH_OUTPUT + partition(8) + "out"
    label = f"ground-truth/{MODEL}/" + partition(8) + "labels.jsonl"
    aws.served()
    aws.package()
    aws.listing(CAPTURE, BATCH_INPUT + partition(8))
    aws.listing(CAPTURE, BATCH_INPUT + partition(9), [(data_in, at(9, 10))])
    aws.read(data_in, lines({"prefix": f"s3://{RAW}/in/"}, "a.csv"))
    aws.listing(CAPTURE, BATCH_OUTPUT + partition(7))
    aws.listing(
        CAPTURE, BATCH_OUTPUT + partition(8),
        [(data_out, at(8, 10)), (BATCH_OUTPUT + partition(8) + "later", at(9, 10))],
    )  # fmt: skip
    aws.read(data_out, json.dumps([{"prefix": f"s3://{RAW}/out/"}, "a.csv.out"]).encode())
    labels = f"ground-truth/{MODEL}/"
    aws.listing(LABELS, labels + partition(7))
    aws.listing(LABELS, labels + partition(8), [(label, at(8, 30))])
    aws.listing(LABELS, labels + partition(9))
    aws.manifests(
        ["a.csv"], ["a.csv.out"], [label], run=BATCH_RUN,
        capture_prefix=f"s3://{RAW}/in/", quality_prefix=f"s3://{RAW}/out/",
    )  # fmt: skip

    result = run(aws, event(source="batch", delay="60", execution=EXECUTION_ID))
    assert result == outputs(capture=1, labels=1, run_prefix=BATCH_RUN)


def test_batch_files_in_two_buckets_fail_the_run_naming_two(aws: Aws) -> None:
    """A ``ManifestFile`` has one prefix, so one bucket; nothing is written."""
    first, second = BATCH_INPUT + partition(9) + "a", BATCH_INPUT + partition(9) + "b"
    aws.served()
    aws.package()
    aws.listing(CAPTURE, BATCH_INPUT + partition(8))
    aws.listing(CAPTURE, BATCH_INPUT + partition(9), [(first, at(9, 10)), (second, at(9, 20))])
    aws.read(first, json.dumps([{"prefix": f"s3://{RAW}/in/"}, "a.csv"]).encode())
    aws.read(second, json.dumps([{"prefix": "s3://other-data/in/"}, "b.csv"]).encode())
    message = (
        rf"files for capture\.manifest are in more than one bucket \(s3://other-data/in/b\.csv "
        rf"and s3://{RAW}/in/a\.csv"
    )
    with pytest.raises(ValueError, match=message):
        run(aws, event(source="batch", execution=EXECUTION_ID))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "line 1 is not JSON"),
        (b'{"prefix": "s3://raw/in/"}\n"a.csv"\n[oops', "line 3 is not JSON"),
        (b'[{"prefix": "s3://raw/in/"}, 3]', "3 is neither a prefix object nor a key"),
        (b'["a.csv", {"prefix": "s3://raw/in/"}]', "the key 'a.csv' comes before any prefix"),
        (b'[{"prefix": "raw/in/"}, "a.csv"]', "is not a prefix object"),
        (b'[{"prefix": "s3://raw/in/"}, "day/"]', "'s3://raw/in/day/' is not the s3://bucket/"),
        (b"", "it has no prefix object"),
        (b"\xff\xfe", "can't decode"),
    ],
)
def test_a_malformed_batch_manifest_fails_the_run_naming_it(
    aws: Aws, body: bytes, reason: str
) -> None:
    key = BATCH_INPUT + partition(9) + "job-a"
    aws.served()
    aws.package()
    aws.listing(CAPTURE, BATCH_INPUT + partition(8))
    aws.listing(CAPTURE, BATCH_INPUT + partition(9), [(key, at(9, 10))])
    aws.read(key, body)
    with pytest.raises(ValueError, match=f"manifest s3://{CAPTURE}/{key} is malformed") as error:
        run(aws, event(source="batch", execution=EXECUTION_ID))
    assert reason in str(error.value)


def test_an_empty_batch_window_lists_the_empty_stand_in(aws: Aws) -> None:
    """A manifest of the window listing no file, none of the prediction window, no labels:
    the empty stand-in, as for the endpoint."""
    key = BATCH_INPUT + partition(9) + "job-a"
    aws.served()
    aws.package()
    aws.listing(CAPTURE, BATCH_INPUT + partition(8))
    aws.listing(CAPTURE, BATCH_INPUT + partition(9), [(key, at(9, 10))])
    aws.read(key, lines({"prefix": f"s3://{RAW}/in/"}))
    aws.listing(CAPTURE, BATCH_OUTPUT + partition(8))
    aws.listing(CAPTURE, BATCH_OUTPUT + partition(9))
    labels = f"ground-truth/{MODEL}/"
    for hour in (8, 9):
        aws.listing(LABELS, labels + partition(hour))
    aws.empty_written(BATCH_RUN)
    aws.manifests([], [], [], run=BATCH_RUN)

    result = run(aws, event(source="batch", execution=EXECUTION_ID))
    assert result == outputs(capture=0, labels=0, run_prefix=BATCH_RUN)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"prefix": "s3://raw/in/"}, "a.csv", "b/c.csv"]',
        b'\xef\xbb\xbf[{"prefix":"s3://raw/in/"},\n "a.csv",\n "b/c.csv"]\n',
        b'{"prefix": "s3://raw/in/"}\n"a.csv"\n\n"b/c.csv"\n',
        b'[{"prefix": "s3://raw/in/"}, "a.csv"]\n[{"prefix": "s3://raw/in/b/"}, "c.csv"]',
        b'{"prefix": "s3://raw/in"}\n"/a.csv"\n{"prefix": "s3://raw/in/b/"}\n"c.csv"',
    ],
)
def test_a_batch_manifest_is_read_leniently(body: bytes) -> None:
    """A whole-file array (pretty-printed too, with a BOM), JSON Lines of the prefix and the
    keys, an array a line: the keys appended to their prefixes, as SageMaker does."""
    assert window.parse_manifest(body.decode("utf-8-sig")) == [
        "s3://raw/in/a.csv", "s3://raw/in/b/c.csv"
    ]  # fmt: skip


def test_one_prefix_is_the_longest_common_one_ending_at_a_slash() -> None:
    one = window.one_prefix(["s3://raw/in/a.csv"], "capture.manifest")
    assert one == window.Selection("s3://raw/in/", ("a.csv",))
    names = window.one_prefix(["s3://raw/in/abc.csv", "s3://raw/in/abd.csv"], "x")
    assert names == window.Selection("s3://raw/in/", ("abc.csv", "abd.csv"))
    folders = window.one_prefix(["s3://raw/a/x.csv", "s3://raw/ab/y.csv", "s3://raw/a/x.csv"], "x")
    assert folders == window.Selection("s3://raw/", ("a/x.csv", "ab/y.csv"))
    assert window.one_prefix([], "x") == window.Selection("", ())


def test_an_empty_window_lists_the_empty_stand_in(aws: Aws) -> None:
    """No variant captured anything yet, no labels: each manifest lists one zero-byte
    ``empty/empty.jsonl`` of the run, which the checks report as "no data"."""
    aws.served()
    aws.package()
    aws.listing(CAPTURE, f"{MODEL}/{ENDPOINT}/", folders=[])
    labels = f"ground-truth/{MODEL}/"
    for hour in (8, 9):
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


def test_the_windows_end_on_the_window_grid() -> None:
    """A run 20 minutes late checks the whole hour that ended at 10:00; the quality windows
    are shifted from that end by the delay."""
    spans = window.windows(NOW, 60, 30)
    assert (spans.drift.start, spans.drift.end) == (at(9, 0), at(10, 0))
    assert (spans.predictions.start, spans.predictions.end) == (at(8, 30), at(9, 30))
    assert (spans.labels.start, spans.labels.end) == (at(8, 30), at(10, 0))
    naive = window.windows(NOW.replace(tzinfo=None), 60, 0)
    assert naive.drift == spans.drift


def start_of(year: int, month: int, day: int, hour: int = 0) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "minutes", "start", "end"),
    [
        # 60: the tops of the hours; a late or retried run checks the same window.
        (at(10, 7), 60, at(9, 0), at(10, 0)),
        (at(10, 59, 59), 60, at(9, 0), at(10, 0)),
        (at(10, 0), 60, at(9, 0), at(10, 0)),
        (at(0, 10, day=2), 60, at(23, 0), at(0, 0, day=2)),
        # 15: :00, :15, :30, :45.
        (at(10, 7), 15, at(9, 45), at(10, 0)),
        (at(10, 29, 59), 15, at(10, 0), at(10, 15)),
        (at(10, 30), 15, at(10, 15), at(10, 30)),
        # A day: midnight to midnight.
        (at(10, 7, day=2), 1440, at(0, 0), at(0, 0, day=2)),
        # Not dividing a day: multiples since the Unix epoch (2026-01-01 10:07 is minute
        # 29454367 of it: 5 past a multiple of 7, 67 past one of 100; day 20454, even).
        (at(10, 7), 7, at(9, 55), at(10, 2)),
        (at(10, 7), 100, at(7, 20), at(9, 0)),
        (at(10, 7), 2880, start_of(2025, 12, 30), at(0, 0)),
    ],
)
def test_the_window_grid(
    moment: datetime.datetime, minutes: int, start: datetime.datetime, end: datetime.datetime
) -> None:
    drift = window.windows(moment, minutes, 0).drift
    assert (drift.start, drift.end) == (start, end)


@pytest.mark.parametrize("minutes", [15, 60, 7, 100])
def test_consecutive_runs_tile(minutes: int) -> None:
    """Runs one window apart, each started up to almost a window late: no overlap, no gap."""
    step = datetime.timedelta(minutes=minutes)
    first = window.windows(NOW, minutes, 0).drift
    for lateness in (datetime.timedelta(0), step - datetime.timedelta(seconds=1)):
        second = window.windows(first.end + step + lateness, minutes, 0).drift
        assert (second.start, second.end) == (first.end, first.end + step)


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


def test_the_handler_reads_the_environment_and_the_clock(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(window, "make_client", aws.clients)
    monkeypatch.setattr(window, "utc_now", lambda: NOW)
    aws.served(NO_VERSION)
    with pytest.raises(window.NothingServed):
        window.handler(event(), lambda_context("staging-monitoring-window", ACCOUNT))


def test_the_handler_imports_nothing_of_the_project() -> None:
    """The Lambda package is the file alone: the stdlib, boto3/botocore and Powertools."""
    assert third_party_imports(HANDLER) <= {"boto3", "botocore", "aws_lambda_powertools"}

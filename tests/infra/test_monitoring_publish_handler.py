"""PublishMetrics: the checks' reports become CloudWatch metrics, or nothing does.

The handler (handlers/monitoring_publish) runs against real botocore clients wrapped in
Stubbers, each call's parameters asserted exactly and checked against botocore's shapes: a
call not stubbed fails the test, so a refusal that stubs no PutMetricData proves that
nothing was published. The time is a fixed ``now``.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from cdk_helpers import (
    ROOT,
    dummy_aws_credentials,
    lambda_context,
    load_handler,
    third_party_imports,
)

HANDLER = ROOT / "handlers" / "monitoring_publish" / "index.py"
publisher = load_handler("monitoring_publish")

UTC = datetime.UTC
STAGE = "staging"
MODEL = "breast-cancer"
SOURCE = "endpoint"
ARTIFACTS = "staging-artifacts"
NAMESPACE = "SageMakerMLOps/Monitoring"
RUN = f"monitoring/{MODEL}/{SOURCE}/k2c4n1x0p9ab/"
REPORT_URI = f"s3://{ARTIFACTS}/{RUN}"
NOW = datetime.datetime(2026, 1, 1, 10, 21, 7, tzinfo=UTC)
WINDOW_END = datetime.datetime(2026, 1, 1, 10, 20, tzinfo=UTC)
ENVIRONMENT = {"STAGE": STAGE, "NAMESPACE": NAMESPACE, "ARTIFACTS_BUCKET": ARTIFACTS}
CONFIG = publisher.read_config(ENVIRONMENT)


def dims(stage: str = STAGE, model: str = MODEL, source: str = SOURCE, **extra: str) -> list:
    values = {"Stage": stage, "ModelName": model, "CaptureSource": source, **extra}
    return [{"Name": k, "Value": v} for k, v in values.items()]


def entry(name: str, value: Any, unit: str = "None", **dimensions: Any) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": dimensions.pop("replace", None) or dims(**dimensions),
        "Value": value,
        "Unit": unit,
    }


DRIFT = [
    entry("NoData", 0.0, "Count"),
    entry("RowsChecked", 512.0, "Count"),
    entry("DriftDetected", 1.0, "Count"),
    entry("DriftScore", 0.31),
    entry("FeaturePSI", 0.31, FeatureName="mean_radius"),
]
QUALITY = [
    entry("QualityNoData", 0.0, "Count"),
    entry("ModelQuality", 0.97, QualityMetric="auc"),
]


def drift_report(metrics: list | None = None, **fields: Any) -> dict[str, Any]:
    report = {
        "drift_detected": True,
        "window_end": "2026-01-01T10:20:00Z",
        "metrics": DRIFT if metrics is None else metrics,
    }
    return {**report, **fields}


def quality_report(metrics: list | None = None, **fields: Any) -> dict[str, Any]:
    report = {"labeled_row_count": 40, "window_end": "2026-01-01T10:20:00Z"}
    return {**report, "metrics": QUALITY if metrics is None else metrics, **fields}


def event(uri: str = REPORT_URI, **changes: str) -> dict[str, str]:
    return {"ModelName": MODEL, "CaptureSource": SOURCE, "ReportUri": uri, **changes}


def stamped(entries: list[dict[str, Any]], when: datetime.datetime = WINDOW_END) -> list:
    return [{**e, "Timestamp": when} for e in entries]


class Aws:
    def __init__(self, s3: Any, cloudwatch: Any) -> None:
        self.clients_by_name = {"s3": s3, "cloudwatch": cloudwatch}
        self.stubs = {name: Stubber(client) for name, client in self.clients_by_name.items()}

    def clients(self, service: str) -> Any:
        return self.clients_by_name[service]

    def report(self, name: str, content: dict[str, Any] | bytes | None) -> None:
        """The report ``name`` (``None``: absent)."""
        params = {"Bucket": ARTIFACTS, "Key": RUN + name}
        if content is None:
            self.stubs["s3"].add_client_error(
                "get_object", "NoSuchKey", "The specified key does not exist.", 404,
                expected_params=params,
            )  # fmt: skip
            return
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        answer = {"Body": StreamingBody(io.BytesIO(data), len(data))}
        self.stubs["s3"].add_response("get_object", answer, params)

    def reports(self, drift: Any, quality: Any = None) -> None:
        self.report("drift/drift_report.json", drift)
        self.report("quality/quality_report.json", quality)

    def published(self, *requests: list[dict[str, Any]]) -> None:
        for entries in requests:
            params = {"Namespace": NAMESPACE, "MetricData": entries}
            self.stubs["cloudwatch"].add_response("put_metric_data", {}, params)


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        dummy_aws_credentials(monkeypatch, tmp_path_factory.mktemp("aws"))
        yield (
            boto3.client("s3", region_name="us-east-1"),
            boto3.client("cloudwatch", region_name="us-east-1"),
        )


@pytest.fixture
def aws(clients: tuple[Any, Any]) -> Iterator[Aws]:
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


def run(aws: Aws, arguments: dict[str, str], config: Any = CONFIG) -> dict[str, str]:
    return publisher.publish(arguments, config, aws.clients, lambda: NOW)


# --- publishing -------------------------------------------------------------------------------


def test_the_entries_are_published_as_they_are_with_the_windows_end(aws: Aws) -> None:
    aws.reports(drift_report(), quality_report())
    aws.published(stamped(DRIFT + QUALITY))
    assert run(aws, event()) == {"MetricCount": "7", "DriftDetected": "true"}


def test_a_run_without_a_quality_report_publishes_the_drift_metrics(aws: Aws) -> None:
    aws.reports(drift_report(drift_detected=False), None)
    aws.published(stamped(DRIFT))
    assert run(aws, event()) == {"MetricCount": "5", "DriftDetected": "false"}


def test_an_empty_window_is_no_data(aws: Aws) -> None:
    no_data = [entry("NoData", 1.0, "Count"), entry("RowsChecked", 0.0, "Count")]
    quality = [entry("QualityNoData", 1.0, "Count")]
    report = drift_report(no_data, no_data=True, drift_detected=False)
    aws.reports(report, quality_report(quality, no_data=True))
    aws.published(stamped(no_data + quality))
    assert run(aws, event()) == {"MetricCount": "3", "DriftDetected": "no-data"}


def test_without_a_window_end_the_time_is_now_and_an_own_timestamp_is_kept(aws: Aws) -> None:
    own = {**entry("RowsChecked", 1.0, "Count"), "Timestamp": "2026-01-01T10:19:00Z"}
    report = drift_report([entry("NoData", 0.0, "Count"), own])
    del report["window_end"]
    aws.reports(report, None)
    aws.published([{**entry("NoData", 0.0, "Count"), "Timestamp": NOW}, own])
    assert run(aws, event())["MetricCount"] == "2"


def test_more_entries_than_one_request_takes_go_in_several(aws: Aws) -> None:
    """PutMetricData takes at most 1000 metrics a request: 2500 go in 1000, 1000 and 500."""
    many = [entry("FeaturePSI", i / 10, FeatureName=f"f{i}") for i in range(2500)]
    aws.reports(drift_report(many), None)
    entries = stamped(many)
    aws.published(entries[:1000], entries[1000:2000], entries[2000:])
    assert run(aws, event())["MetricCount"] == "2500"


def test_large_entries_are_grouped_within_the_request_size() -> None:
    """30 dimensions of 1024 characters: about 33 KB an entry in the query encoding, so a
    request of 1 MB holds far fewer than 1000; the order is kept."""
    wide = {f"D{i}": f"{i}" * 1024 for i in range(27)}
    entries = [entry("Wide", float(i), **wide) for i in range(100)]
    groups = publisher.chunks(entries)
    assert [e for group in groups for e in group] == entries
    assert len(groups) > 3
    for group in groups:
        size = sum(publisher.entry_bytes(e) for e in group)
        assert size <= publisher.MAX_REQUEST_BYTES * publisher.ENTRY_BYTES_SHARE


def test_the_size_bound_is_the_query_encoding_of_the_entry() -> None:
    one = entry("NoData", 1.0, "Count")
    size = publisher.entry_bytes(one)
    assert size > len("MetricData.member.1000.Dimensions.member.1.Name=Stage") * 3
    assert publisher.chunks([one, one, one], max_entries=2) == [[one, one], [one]]
    assert publisher.chunks([one, one, one], max_bytes=2 * size) == [[one, one], [one]]


def test_the_run_metric_is_published_like_the_others(aws: Aws) -> None:
    """The drift report carries the run's ``MonitoringRuns`` entry: nothing is added."""
    metrics = [*DRIFT, entry("MonitoringRuns", 1.0, "Count")]
    aws.reports(drift_report(metrics), None)
    aws.published(stamped(metrics))
    assert run(aws, event())["MetricCount"] == "6"


# --- refusals: nothing is published -----------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (entry("DriftScore", 0.3, model="other-model"), "dimension ModelName is 'other-model'"),
        (entry("DriftScore", 0.3, stage="prod"), "dimension Stage is 'prod', not 'staging'"),
        (entry("DriftScore", 0.3, source="batch"), "dimension CaptureSource is 'batch'"),
        (
            entry("DriftScore", 0.3, replace=dims()[:2]),
            "dimension CaptureSource is None, not 'endpoint'",
        ),
        (entry("DriftScore", 0.3, replace=[*dims(), dims()[0]]), "distinct names"),
        (entry("DriftScore", float("nan")), "finite number"),
        (entry("DriftScore", float("inf")), "finite number"),
        (entry("DriftScore", -float("inf")), "finite number"),
        (entry("DriftScore", 1e200), "finite number within"),
        (entry("DriftScore", 10**400), "finite number within"),
        (entry("DriftScore", "0.3"), "finite number"),
        (entry("DriftScore", True), "finite number"),
        ({"Dimensions": dims(), "Value": 1.0}, "with a MetricName"),
        ({"MetricName": "X", "Dimensions": {"Stage": STAGE}, "Value": 1.0}, "Dimensions must"),
    ],
)
def test_a_bad_entry_in_either_report_publishes_nothing(
    aws: Aws, bad: dict[str, Any], message: str
) -> None:
    aws.reports(drift_report(), quality_report([*QUALITY, bad]))
    with pytest.raises(publisher.ReportError, match=message):
        run(aws, event())


def test_a_nan_written_by_a_check_is_refused(aws: Aws) -> None:
    """Python's json writes NaN as a bare ``NaN``, which it reads back: still refused."""
    body = json.dumps(drift_report([*DRIFT, entry("DriftScore", float("nan"))])).encode()
    assert b"NaN" in body
    aws.report("drift/drift_report.json", body)  # refused before the quality report is read
    with pytest.raises(publisher.ReportError, match=r"metrics\[5\] \(DriftScore\)"):
        run(aws, event())


def test_an_entry_botocore_refuses_publishes_nothing(aws: Aws) -> None:
    """Every request is checked before the first is sent: a bad entry in the second request
    stops the first one too."""
    many = [entry("FeaturePSI", 0.1, FeatureName=f"f{i}") for i in range(1000)]
    many.append({**entry("FeaturePSI", 0.1), "Colour": "red"})
    aws.reports(drift_report(many), None)
    with pytest.raises(ParamValidationError, match="Colour"):
        run(aws, event())


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://other-bucket/{RUN}",
        f"s3://{ARTIFACTS}-evil/{RUN}",
        f"s3://{ARTIFACTS}/{RUN}".rstrip("/"),
        f"s3://{ARTIFACTS}/",
        f"https://{ARTIFACTS}.s3.amazonaws.com/{RUN}",
        "",
    ],
)
def test_a_report_outside_the_artifacts_bucket_is_not_read(aws: Aws, uri: str) -> None:
    with pytest.raises(publisher.ReportError, match="ReportUri must"):
        run(aws, event(uri))


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (None, "drift_report.json does not exist"),
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (drift_report(metrics={"auc": 0.9}), "metrics must be a list"),
        ({"window_end": "2026-01-01T10:20:00Z", "metrics": DRIFT}, "drift_detected must be"),
        (drift_report(window_end="yesterday"), "window_end is not an ISO 8601 time"),
    ],
)
def test_a_missing_or_malformed_drift_report_publishes_nothing(
    aws: Aws, report: Any, message: str
) -> None:
    aws.report("drift/drift_report.json", report)
    with pytest.raises(publisher.ReportError, match=message):
        run(aws, event())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ModelName": "Other_Model"}, "ModelName must match"),
        ({"CaptureSource": "stream"}, "CaptureSource must be one of"),
    ],
)
def test_malformed_arguments_are_refused(aws: Aws, changes: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(aws, event(**changes))


def test_a_missing_environment_variable_is_a_config_error() -> None:
    with pytest.raises(publisher.ConfigError, match="not set: NAMESPACE"):
        publisher.read_config({**ENVIRONMENT, "NAMESPACE": ""})


# --- the Lambda entry point and the package -----------------------------------------------


def test_the_handler_reads_the_environment_and_the_clock(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(publisher, "make_client", aws.clients)
    monkeypatch.setattr(publisher, "utc_now", lambda: NOW)
    report = drift_report()
    del report["window_end"]
    aws.reports(report, None)
    aws.published(stamped(DRIFT, NOW))
    assert publisher.handler(event(), lambda_context("staging-monitoring-publish")) == {
        "MetricCount": "5",
        "DriftDetected": "true",
    }


def test_the_handler_imports_nothing_of_the_project() -> None:
    """The Lambda package is the file alone: the stdlib, boto3/botocore and Powertools."""
    assert third_party_imports(HANDLER) <= {"boto3", "botocore", "aws_lambda_powertools"}

"""The monitoring metrics: the one definition of what the drift and quality checks publish
and what the alarms watch.

The step scripts (``drift_check.py``, ``quality_check.py``) build their ``MetricData``
entries here; the CDK constructs import the same names and dimensions for their alarms
(``constructs/drift_monitor.py``), and ``tests/`` check that what a real run publishes is
what the alarms watch. Model Monitor's own metric names (the ``model_monitor`` engine) are
defined here too, since its alarms watch them.

Standard library only: it ships inside ``pipeline_steps/`` to the containers and the CDK
app imports it as ``pipeline_steps.steplib.monitoring``.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from . import contract

#: The CloudWatch namespace of the scheduled engine's metrics.
NAMESPACE = "SageMakerMLOps/Monitoring"

#: What the checks read beside a version's registered ``statistics.json`` (preprocess's
#: ``baseline/`` output): a promotion copies them with it.
BASELINE_COMPANIONS = ("baseline.parquet", "schema.json")

# --- dimensions (every metric has the first three; per-feature and quality add one) -------
STAGE = "Stage"
MODEL = "ModelName"
SOURCE = "CaptureSource"
FEATURE = "FeatureName"
QUALITY_METRIC = "QualityMetric"

#: What a check reads: the endpoint's data capture, or the batch transform jobs' capture.
ENDPOINT_SOURCE = "endpoint"
BATCH_SOURCE = "batch"
SOURCES = (ENDPOINT_SOURCE, BATCH_SOURCE)

# --- drift (drift_check.py) ---------------------------------------------------------------
#: 1 when any feature drifted in the window, else 0 (only for a window with rows).
DRIFT_DETECTED = "DriftDetected"
#: The overall drift score: the largest feature PSI of the window (only with rows).
DRIFT_SCORE = "DriftScore"
DRIFTED_FEATURES = "DriftedFeatureCount"
#: Rows the check read (0 for an empty window).
ROWS_CHECKED = "RowsChecked"
#: 1 when the window held no captured rows (the check then publishes no drift values).
NO_DATA = "NoData"
FEATURE_PSI = "FeaturePSI"
FEATURE_P_VALUE = "FeaturePValue"
FEATURE_MISSING_RATE = "FeatureMissingRate"

# --- model quality (quality_check.py) -----------------------------------------------------
#: A model-quality metric of the window's labelled predictions (dimension QualityMetric:
#: the contract's metric name, e.g. ``auc``, ``rmse``).
MODEL_QUALITY = "ModelQuality"
#: Captured predictions that had a ground-truth label in the window.
LABELED_ROWS = "LabeledRowsChecked"
#: 1 when no captured prediction had a label (the check then publishes no quality values).
QUALITY_NO_DATA = "QualityNoData"

# --- runs (the pipeline's PublishMetrics step) ----------------------------------------------
#: 1 per completed monitoring run; its absence is the "missing runs" alarm.
MONITORING_RUNS = "MonitoringRuns"

# --- Model Monitor's own metrics (the model_monitor engine) -------------------------------
MODEL_MONITOR_DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_MONITOR_MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
#: Model Monitor's model-quality problem types, by the contract's: what it can check of
#: the endpoints' output (one probability or one value per row; multiclass endpoints
#: return probability vectors, and Model Monitor needs the predicted label).
MODEL_MONITOR_PROBLEM_TYPES = {
    contract.BINARY: "BinaryClassification",
    contract.REGRESSION: "Regression",
}
MODEL_MONITOR_ENDPOINT = "Endpoint"
MODEL_MONITOR_SCHEDULE = "MonitoringSchedule"


def model_monitor_feature_drift(feature: str) -> str:
    """Model Monitor's data-quality metric of one feature's distance from the baseline."""
    return f"feature_baseline_drift_{feature}"


def model_monitor_column(index: int) -> str:
    """Model Monitor's name of the ``index``-th column of a header-less CSV row (the
    endpoints' requests: the schema's features in order)."""
    return f"_c{index}"


def model_monitor_comparison_threshold(psi_threshold: float) -> float:
    """Model Monitor's distribution distance threshold for a model's drift PSI threshold.

    One ``drift`` setting configures both engines, so the PSI threshold becomes Model
    Monitor's threshold too; its distance lies in [0, 1], so the value is clipped to it (a
    PSI threshold above 1 means "never" for Model Monitor as well).
    """
    if not math.isfinite(psi_threshold):
        raise ValueError(f"the drift threshold must be finite, got {psi_threshold}")
    return min(max(float(psi_threshold), 0.0), 1.0)


def dimensions(stage: str, model: str, source: str, **extra: str) -> list[dict[str, str]]:
    """``Dimensions`` of a metric: stage, model, source, then ``extra`` in the given order."""
    if source not in SOURCES:
        raise ValueError(f"capture source {source!r} is not one of {SOURCES}")
    dims = {STAGE: stage, MODEL: model, SOURCE: source, **extra}
    return [{"Name": k, "Value": v} for k, v in dims.items()]


def dimension_map(stage: str, model: str, source: str, **extra: str) -> dict[str, str]:
    """The same dimensions as a mapping (how the CDK's ``cloudwatch.Metric`` takes them)."""
    return {d["Name"]: d["Value"] for d in dimensions(stage, model, source, **extra)}


def _entry(name: str, dims: list[dict[str, str]], value: float, unit: str) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": unit}


def drift_score(report: Mapping[str, Any]) -> float:
    """The overall drift score of a drift report: its largest feature PSI (0 when none)."""
    values = [
        rep["psi"] for rep in report.get("features", {}).values() if rep.get("psi") is not None
    ]
    return float(max(values)) if values else 0.0


def drift_metrics(report: Mapping[str, Any], stage: str, model: str, source: str) -> list[dict]:
    """``MetricData`` entries of a drift report (``drift_check.py``'s ``drift_report.json``).

    An empty window publishes ``NoData`` = 1 and ``RowsChecked`` = 0 only: no drift value,
    so that it neither passes nor breaches the drift alarm.
    """
    base = dimensions(stage, model, source)
    rows = int(report.get("window_row_count", 0))
    if report.get("no_data"):
        return [_entry(NO_DATA, base, 1, "Count"), _entry(ROWS_CHECKED, base, 0, "Count")]
    entries = [
        _entry(NO_DATA, base, 0, "Count"),
        _entry(ROWS_CHECKED, base, rows, "Count"),
        _entry(DRIFT_DETECTED, base, 1 if report["drift_detected"] else 0, "Count"),
        _entry(DRIFTED_FEATURES, base, len(report["drifted_features"]), "Count"),
        _entry(DRIFT_SCORE, base, drift_score(report), "None"),
    ]
    for name, rep in report["features"].items():
        dims = dimensions(stage, model, source, **{FEATURE: name})
        p_value = rep.get("ks_p_value", rep.get("chi2_p_value"))
        for metric, value in (
            (FEATURE_PSI, rep.get("psi")),
            (FEATURE_P_VALUE, p_value),
            (FEATURE_MISSING_RATE, rep.get("window_missing_rate")),
        ):
            if value is not None and math.isfinite(value):
                entries.append(_entry(metric, dims, value, "None"))
    return entries


def quality_metrics(report: Mapping[str, Any], stage: str, model: str, source: str) -> list[dict]:
    """``MetricData`` entries of a quality report (``quality_check.py``'s
    ``quality_report.json``: ``labeled_row_count``, ``no_data``, and the metric values by
    name under ``quality``). A value that is None or not finite (undefined on the window) is
    left out.
    """
    base = dimensions(stage, model, source)
    if report.get("no_data"):
        return [_entry(QUALITY_NO_DATA, base, 1, "Count"), _entry(LABELED_ROWS, base, 0, "Count")]
    entries = [
        _entry(QUALITY_NO_DATA, base, 0, "Count"),
        _entry(LABELED_ROWS, base, int(report["labeled_row_count"]), "Count"),
    ]
    for name, value in sorted(report["quality"].items()):
        if value is not None and math.isfinite(value):
            dims = dimensions(stage, model, source, **{QUALITY_METRIC: name})
            entries.append(_entry(MODEL_QUALITY, dims, value, "None"))
    return entries


def run_metric(stage: str, model: str, source: str) -> dict:
    """The ``MonitoringRuns`` entry the pipeline's last step publishes once per run."""
    return _entry(MONITORING_RUNS, dimensions(stage, model, source), 1, "Count")


def window_time(value: str) -> str:
    """A monitoring window's bound as the reports carry it (``window_start``,
    ``window_end``: the publish step stamps the entries with ``window_end``): an ISO 8601
    time, returned as given; ``ValueError`` otherwise (an ``argparse`` type)."""
    try:
        datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every check of a monitoring run takes: where its inputs and output are,
    and the dimensions and window of the metrics it writes."""
    parser.add_argument("--baseline-dir", default="/opt/ml/processing/baseline")
    parser.add_argument("--capture-dir", default="/opt/ml/processing/input/capture")
    parser.add_argument(
        "--schema", default=None, help="schema file (default: <baseline-dir>/schema.json)"
    )
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument(
        "--model-name",
        default=os.environ.get("MODEL_NAME", "model"),
        help="ModelName dimension of the CloudWatch metrics (default: $MODEL_NAME or 'model')",
    )
    parser.add_argument(
        "--stage",
        default=os.environ.get("STAGE", "dev"),
        help="Stage dimension of the CloudWatch metrics (default: $STAGE or 'dev')",
    )
    parser.add_argument(
        "--capture-source",
        choices=SOURCES,
        default=ENDPOINT_SOURCE,
        help="CaptureSource dimension: what was captured (default: endpoint)",
    )
    parser.add_argument(
        "--window-start",
        type=window_time,
        default=None,
        help="the window's start, ISO 8601, written to the report (default: none)",
    )
    parser.add_argument(
        "--window-end",
        type=window_time,
        default=None,
        help="the window's end, ISO 8601: the metrics' timestamp (default: none, publish time)",
    )


def metric_names(entries: Iterable[Mapping[str, Any]]) -> set[tuple[str, tuple[str, ...]]]:
    """(metric name, dimension names) of each entry: what an alarm must match."""
    return {(e["MetricName"], tuple(d["Name"] for d in e["Dimensions"])) for e in entries}

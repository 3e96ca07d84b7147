"""Drift check: compare a window of captured inference requests with the training baseline.

Runs in the SageMaker scikit-learn processing image on a schedule (SageMaker Model Monitor
is closed to new customers, so this replaces its data-quality job). Reads the baseline that
preprocess wrote (``statistics.json``, ``baseline.parquet``; the schema from
``schema.json`` there unless ``--schema`` is given) and the window's requests under the
capture directory, by ``--capture-source``:

* ``endpoint``: every real-time data-capture ``*.jsonl`` file (``captureData`` records;
  :func:`steplib.payload.read_capture`);
* ``batch``: the batch transform jobs' input files, which batch data capture's manifests
  list and the window step resolves: every file, whatever its name (``part-0.csv``), in
  subfolders too, but hidden files and markers (names starting with ``.`` or ``_``). Each
  line is one record of raw features, as the endpoint takes them: CSV (the schema's
  features in schema order, no target; a header row first is skipped) or JSON Lines (one
  object a line keyed by feature name); see :func:`steplib.payload.read_batch_inputs`;

and writes ``drift_report.json``:

* per feature: PSI and Kolmogorov-Smirnov (numeric) or PSI and chi-square (categorical),
  missing-value rates, wrong-type counts, and the drift decision with its reasons;
* ``drift_detected``: true when any feature drifted; ``drift_score``: the largest PSI;
* ``no_data``: true when the window held no captured record (see below);
* ``model_name``, ``stage``, ``capture_source``, ``window_start``, ``window_end`` (as given
  by ``--window-start``/``--window-end``, else null), ``capture_record_count`` (records
  read: capture records, or for ``batch`` input rows);
* ``metrics``: finished ``MetricData`` entries for CloudWatch ``PutMetricData``, built by
  :mod:`steplib.monitoring` (the drift metrics, then one ``MonitoringRuns``).

An empty window (no ``*.jsonl`` file, or only files without a record: the window manifest
then delivers one empty file; for ``batch``, no file, or files without a row: empty, or a
header only) is not an error: the report has ``no_data: true``, ``window_row_count: 0``,
``drift_detected: false``, ``drift_score: null``, no features, and the metrics ``NoData`` =
1 and ``RowsChecked`` = 0 (no drift value). The baseline and the schema are still read and
checked. A capture directory that does not exist is an error.

Drift is a result, not an error: the exit code is 0 unless ``--fail-on-drift`` is given.
A malformed capture line (for ``batch``: an input line that is not a row of the schema's
features) is an error (exit 2) naming file and line, and writes no report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from steplib import drift, monitoring, rawio
from steplib.contract import NUMERIC
from steplib.errors import DataError, run_main
from steplib.payload import read_batch_inputs, read_capture
from steplib.schema import Schema, load_schema

LOG = logging.getLogger("pipeline_steps.drift_check")
EXIT_DRIFT = 3


def load_baseline(baseline_dir: Path, schema: Schema):
    """(statistics dict, baseline feature frame) from preprocess's ``baseline/`` output."""
    stats_path = Path(baseline_dir) / "statistics.json"
    data_path = Path(baseline_dir) / "baseline.parquet"
    try:
        stats = json.loads(stats_path.read_text())
    except FileNotFoundError:
        raise DataError(
            stats_path, None, "baseline statistics not found; run preprocess first"
        ) from None
    missing = [n for n in schema.feature_names if n not in stats.get("features", {})]
    if missing:
        raise DataError(
            stats_path, missing[0], "feature is in the schema but not in the baseline statistics"
        )
    try:
        table = pq.read_table(data_path, columns=schema.feature_names)
    except FileNotFoundError:
        raise DataError(data_path, None, "baseline data not found; run preprocess first") from None
    except (pa.ArrowInvalid, KeyError) as err:
        raise DataError(data_path, None, f"cannot read baseline data: {err}") from None
    return stats, table.to_pandas()


def capture_window_is_empty(capture_dir: Path) -> bool:
    """Whether the window holds no capture record: no ``*.jsonl`` file under ``capture_dir``
    (the files :func:`steplib.payload.read_capture` reads), or only blank lines in them.

    Raises:
        DataError: when ``capture_dir`` does not exist (a wrong path, not an empty window).
    """
    capture_dir = Path(capture_dir)
    if not capture_dir.exists():
        raise DataError(capture_dir, None, "capture directory does not exist")
    if capture_dir.is_file():
        files = [capture_dir]
    else:
        files = sorted(p for p in capture_dir.rglob("*.jsonl") if p.is_file())
    for file in files:
        with open(file, "rb") as fh:
            if any(line.strip() for line in fh):
                return False
    return True


def no_data_report(
    stats: dict, baseline: pd.DataFrame, schema: Schema, thresholds: drift.DriftThresholds
) -> dict:
    """The report of an empty window: ``drift.drift_report``'s layout, with no features
    (statistics of no rows are not values: no PSI, no p-value, no missing rate)."""
    empty = pd.DataFrame(
        {
            f.name: pd.Series(dtype="float64" if f.type == NUMERIC else "object")
            for f in schema.features
        }
    )
    report = drift.drift_report(stats, baseline, empty, {}, schema, thresholds)
    report["features"] = {}
    return report


def drift_check(
    baseline_dir: Path,
    capture_dir: Path,
    schema_path: Path | None,
    output_dir: Path,
    thresholds: drift.DriftThresholds,
    model_name: str,
    stage: str = "dev",
    capture_source: str = monitoring.ENDPOINT_SOURCE,
    window_start: str | None = None,
    window_end: str | None = None,
) -> dict:
    """Run the step; returns the report written to ``drift_report.json``.

    ``schema_path``: None reads ``<baseline_dir>/schema.json``. ``stage`` and
    ``capture_source`` are the metrics' ``Stage`` and ``CaptureSource`` dimensions;
    ``capture_source`` also says what ``capture_dir`` holds (see the module docstring).
    ``window_start``/``window_end``: the window's bounds (ISO 8601), written to the report
    as given; None writes null (the publish step then stamps the metrics with its own time).
    """
    if capture_source not in monitoring.SOURCES:
        raise DataError(
            "--capture-source", None, f"{capture_source!r} is not one of {monitoring.SOURCES}"
        )
    schema = load_schema(Path(baseline_dir) / "schema.json" if schema_path is None else schema_path)
    stats, baseline = load_baseline(baseline_dir, schema)
    if capture_source == monitoring.BATCH_SOURCE:
        window, type_errors, records = read_batch_inputs(capture_dir, schema)
    elif capture_window_is_empty(capture_dir):
        records = 0
    else:
        window, type_errors, records = read_capture(capture_dir, schema)
    if records == 0:
        report = no_data_report(stats, baseline, schema, thresholds)
    else:
        report = drift.drift_report(stats, baseline, window, type_errors, schema, thresholds)
    no_data = records == 0
    report["no_data"] = no_data
    report["drift_score"] = None if no_data else monitoring.drift_score(report)
    report["model_name"] = model_name
    report["stage"] = stage
    report["capture_source"] = capture_source
    report["window_start"] = window_start
    report["window_end"] = window_end
    report["capture_record_count"] = records
    report["metrics"] = [
        *monitoring.drift_metrics(report, stage, model_name, capture_source),
        monitoring.run_metric(stage, model_name, capture_source),
    ]
    with rawio.atomic_output(output_dir) as staging:
        (staging / "drift_report.json").write_text(json.dumps(report, indent=2))
    if no_data:
        LOG.info("no captured records in the window: no_data=true, no drift values")
    else:
        LOG.info(
            "drift_detected=%s drift_score=%.4f drifted_features=%s window_rows=%d",
            report["drift_detected"],
            report["drift_score"],
            report["drifted_features"],
            report["window_row_count"],
        )
    return report


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    monitoring.add_run_arguments(p)
    defaults = drift.DriftThresholds()
    p.add_argument("--psi-threshold", type=float, default=defaults.psi)
    p.add_argument("--ks-p-value-threshold", type=float, default=defaults.p_value)
    p.add_argument("--missing-rate-increase", type=float, default=defaults.missing_rate_increase)
    p.add_argument(
        "--fail-on-drift", action="store_true", help=f"exit {EXIT_DRIFT} when drift is detected"
    )
    args = p.parse_args(argv)
    thresholds = drift.DriftThresholds(
        args.psi_threshold, args.ks_p_value_threshold, args.missing_rate_increase
    )
    report = drift_check(
        Path(args.baseline_dir),
        Path(args.capture_dir),
        Path(args.schema) if args.schema else None,
        Path(args.output_dir),
        thresholds,
        args.model_name,
        args.stage,
        args.capture_source,
        args.window_start,
        args.window_end,
    )
    if args.fail_on_drift and report["drift_detected"]:
        print(f"DRIFT: features {report['drifted_features']}", file=sys.stderr)
        sys.exit(EXIT_DRIFT)


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Drift check: compare a window of captured inference requests with the training baseline.

Runs in the SageMaker scikit-learn processing image on a schedule (SageMaker Model Monitor
is closed to new customers, so this replaces its data-quality job). Reads the baseline that
preprocess wrote (``statistics.json``, ``baseline.parquet``) and every data-capture ``*.jsonl``
file under the capture prefix, and writes ``drift_report.json``:

* per feature: PSI and Kolmogorov-Smirnov (numeric) or PSI and chi-square (categorical),
  missing-value rates, wrong-type counts, and the drift decision with its reasons;
* ``drift_detected``: true when any feature drifted;
* ``metrics``: ``MetricData`` entries ready for CloudWatch ``PutMetricData``.

Drift is a result, not an error: the exit code is 0 unless ``--fail-on-drift`` is given.
Malformed capture lines are an error (exit 2) naming file and line.
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

import pyarrow as pa
import pyarrow.parquet as pq
from steplib import drift, rawio
from steplib.errors import DataError, run_main
from steplib.payload import read_capture
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


def drift_check(
    baseline_dir: Path,
    capture_dir: Path,
    schema_path: Path,
    output_dir: Path,
    thresholds: drift.DriftThresholds,
    model_name: str,
) -> dict:
    """Run the step; returns the report written to ``drift_report.json``."""
    schema = load_schema(schema_path)
    stats, baseline = load_baseline(baseline_dir, schema)
    window, type_errors, records = read_capture(capture_dir, schema)
    report = drift.drift_report(stats, baseline, window, type_errors, schema, thresholds)
    report["model_name"] = model_name
    report["capture_record_count"] = records
    report["metrics"] = drift.cloudwatch_metrics(report, model_name)
    with rawio.atomic_output(output_dir) as staging:
        (staging / "drift_report.json").write_text(json.dumps(report, indent=2))
    LOG.info(
        "drift_detected=%s drifted_features=%s window_rows=%d",
        report["drift_detected"],
        report["drifted_features"],
        report["window_row_count"],
    )
    return report


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline-dir", default="/opt/ml/processing/baseline")
    p.add_argument("--capture-dir", default="/opt/ml/processing/input/capture")
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/schema.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    defaults = drift.DriftThresholds()
    p.add_argument("--psi-threshold", type=float, default=defaults.psi)
    p.add_argument("--ks-p-value-threshold", type=float, default=defaults.p_value)
    p.add_argument("--missing-rate-increase", type=float, default=defaults.missing_rate_increase)
    p.add_argument(
        "--model-name",
        default=os.environ.get("MODEL_NAME", "model"),
        help="ModelName dimension of the CloudWatch metrics (default: $MODEL_NAME or 'model')",
    )
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
        Path(args.schema),
        Path(args.output_dir),
        thresholds,
        args.model_name,
    )
    if args.fail_on_drift and report["drift_detected"]:
        print(f"DRIFT: features {report['drifted_features']}", file=sys.stderr)
        sys.exit(EXIT_DRIFT)


if __name__ == "__main__":
    sys.exit(run_main(main))

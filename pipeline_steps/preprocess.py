"""Preprocessing step: validate raw data, split it, fit the transform, write training inputs.

Runs in the SageMaker scikit-learn processing image (see containers.json). Reads raw CSV or
Parquet (one file or every file under the input prefix) or, with ``--written-layout``, a
file the platform wrote (the training-set step's ``training-set.csv``: the schema's own
names, the record id and event time as columns), validates it against the model's schema, makes a seeded (stratified for classification) train/validation/test split, fits
the feature transform on the training rows, and writes:

* ``train/train.csv`` (or ``--train-shards`` numbered parts, so that each training instance
  gets its own file under ``ShardedByS3Key``), ``validation/validation.csv``: label first,
  no header (built-in XGBoost CSV)
* ``test/test.csv``: the raw test rows with header (record id, event time, target, features)
* ``baseline/baseline.parquet`` and ``baseline/statistics.json``: what drift checks compare against
* ``baseline/schema.json``: the schema the data was validated against (its file layout), which
  the drift and quality checks read as the served version's schema
* ``baseline/model-monitor/statistics.json`` and ``constraints.json``: the same baseline rows
  in SageMaker Model Monitor's data-quality format (``steplib.model_monitor``), with
  ``--drift-comparison-threshold`` as its drift threshold
* ``transform/transform.json`` and ``transform/model.tar.gz``: the fitted transform, packaged
  as a scikit-learn serving model with ``inference.py``

On a multi-instance processing job every instance reads all rows and computes the same
seeded split and fit; the training shards are divided between the instances (shard ``i``
is written by instance ``i mod count``), and the first instance writes everything else.
Uploads to one S3 prefix then add up to the single-instance output.

Bad data exits with code 2 and one message naming file, column and problem; nothing is
written to the output directory unless every output was produced.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from steplib import artifacts, cluster, drift, model_monitor, rawio, transform
from steplib.contract import REGRESSION, DriftThresholds, Schema
from steplib.errors import DataError, run_main
from steplib.schema import check_problem_type, load_schema

LOG = logging.getLogger("pipeline_steps.preprocess")
#: Training rows kept as the drift baseline (baseline.parquet, statistics.json): a seeded
#: sample when the training split is larger. 100k rows pin deciles and KS far below noise.
BASELINE_SAMPLE_ROWS = 100_000
#: The split's shares (the pipeline passes none, so these are what runs).
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--input-dir", default="/opt/ml/processing/input/raw", help="raw file or prefix directory"
    )
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/schema.json")
    p.add_argument("--problem-type", required=True)
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--validation-fraction", type=float, default=VALIDATION_FRACTION)
    p.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    p.add_argument(
        "--train-shards", type=int, default=1, help="training files (one per training instance)"
    )
    p.add_argument("--resource-config", default=str(cluster.RESOURCE_CONFIG))
    p.add_argument(
        "--drift-comparison-threshold",
        type=float,
        default=DriftThresholds().psi,
        help="the model's drift PSI threshold: Model Monitor's distance threshold in "
        "baseline/model-monitor/constraints.json (clipped to [0, 1])",
    )
    p.add_argument(
        "--written-layout",
        action="store_true",
        help="the input is a file the platform wrote (schema names, record id and event time "
        "as columns: the training-set step's output), not raw files",
    )
    p.add_argument(
        "--check-only",
        action="store_true",
        help="run the schema and data checks and the split only; print a JSON summary, "
        "write nothing",
    )
    return p.parse_args(argv)


def _write_baseline(
    out_dir: Path, sample, schema, train_rows: int, comparison_threshold: float
) -> None:
    """``baseline.parquet`` (raw feature values), ``statistics.json`` and ``schema.json`` for
    the drift checks, and the same rows as Model Monitor's baseline in ``model-monitor/``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(sample, preserve_index=False), out_dir / "baseline.parquet")
    stats = drift.baseline_statistics(sample, schema)
    stats["source"] = f"training split ({train_rows} rows; statistics from {len(sample)} of them)"
    (out_dir / "statistics.json").write_text(json.dumps(stats, indent=2, sort_keys=True))
    (out_dir / "schema.json").write_text(json.dumps(schema.to_json(), indent=2) + "\n")
    model_monitor.write_baselines(
        out_dir / "model-monitor", sample, schema, comparison_threshold=comparison_threshold
    )


@dataclass(frozen=True)
class CheckedData:
    """Raw data that passed every check of this step, and its split."""

    schema: Schema
    table: pa.Table
    frame: pd.DataFrame
    source: str
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray

    def summary(self) -> dict:
        return {
            "source": self.source,
            "rows_read": int(self.table.num_rows),
            "rows_used": len(self.frame),
            "train_rows": len(self.train_idx),
            "validation_rows": len(self.val_idx),
            "test_rows": len(self.test_idx),
        }


def check_data(
    input_dir: Path,
    schema_path: Path,
    problem_type: str,
    seed: int = 42,
    validation_fraction: float = VALIDATION_FRACTION,
    test_fraction: float = TEST_FRACTION,
    timings: dict | None = None,
    written_layout: bool = False,
) -> CheckedData:
    """Every check this step makes of the schema and the raw data, and the seeded split;
    nothing is written (``--check-only``, and ``mlops check``, run just this).

    ``written_layout``: the input is a file the platform wrote, read with
    :meth:`Schema.as_written`; when left out, raw files as the schema describes them.
    """
    timings = {} if timings is None else timings
    t = time.perf_counter()
    schema = load_schema(schema_path)
    check_problem_type(schema, problem_type, str(schema_path))
    table = rawio.read_table(input_dir, schema.as_written() if written_layout else schema)
    frame = table.to_pandas()
    timings["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    source = rawio.describe_source(input_dir)
    frame = transform.validate_frame(frame, schema, problem_type, source)
    strata = (
        frame[schema.target_name].astype(str).to_numpy()
        if problem_type != REGRESSION
        else frame[schema.target_name].to_numpy()
    )
    train_idx, val_idx, test_idx = transform.split_indices(
        strata, problem_type, seed, validation_fraction, test_fraction, source
    )
    timings["validate_split_s"] = time.perf_counter() - t
    return CheckedData(schema, table, frame, source, train_idx, val_idx, test_idx)


def preprocess(
    input_dir: Path,
    schema_path: Path,
    problem_type: str,
    output_dir: Path,
    seed: int = 42,
    validation_fraction: float = VALIDATION_FRACTION,
    test_fraction: float = TEST_FRACTION,
    train_shards: int = 1,
    host: tuple[int, int] = (0, 1),
    written_layout: bool = False,
    drift_comparison_threshold: float = DriftThresholds().psi,
) -> dict:
    """Run the whole step; returns a summary (row counts, timings). See the module docstring.

    ``host`` is ``(index, count)`` of this instance (see :func:`steplib.cluster.current_host`).
    ``written_layout``: as for :func:`check_data`. ``drift_comparison_threshold``: the
    model's drift PSI threshold, for Model Monitor's constraints; left out, the contract's
    default.
    """
    if train_shards < 1:
        raise DataError("--train-shards", None, f"got {train_shards}; must be 1 or more")
    if not np.isfinite(drift_comparison_threshold) or drift_comparison_threshold < 0:
        raise DataError(
            "--drift-comparison-threshold",
            None,
            f"got {drift_comparison_threshold}; must be a number >= 0 (the drift PSI threshold)",
        )
    leader = host[0] == 0
    timings = {}
    checked = check_data(
        input_dir, schema_path, problem_type, seed, validation_fraction, test_fraction, timings,
        written_layout,
    )  # fmt: skip
    schema, table, frame, source = checked.schema, checked.table, checked.frame, checked.source
    train_idx, val_idx, test_idx = checked.train_idx, checked.val_idx, checked.test_idx
    t = time.perf_counter()
    train = frame.iloc[train_idx]
    if len(train) < train_shards:
        raise DataError(
            input_dir,
            None,
            f"the training split has {len(train)} rows, fewer than the {train_shards} shards "
            "asked for (one per training instance): use fewer training instances",
        )
    spec = transform.fit_transform_spec(train, schema, problem_type)
    timings["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with (
        rawio.atomic_output(output_dir) as staging,
        ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool,
    ):
        # pyarrow's writers and numpy's sorts release the GIL: the baseline and the test
        # split are written while the training matrices are encoded in parallel chunks.
        names = cluster.shard_names("train", train_shards)
        bounds = np.array_split(np.arange(len(train)), train_shards)
        for i in cluster.my_shards(train_shards, host):
            rows = train.iloc[bounds[i]]
            y = transform.encode_labels(spec, rows[schema.target_name], source)
            x = transform.apply_transform(spec, rows)
            rawio.write_matrix_csv(staging / "train" / names[i], np.column_stack([y, x]), pool)
        if not leader:
            timings["transform_write_s"] = time.perf_counter() - t
            LOG.info("preprocess done on host %d of %d: train shards only", host[0] + 1, host[1])
            return {"host": host[0] + 1, "hosts": host[1], "timings": timings}
        raw_cols = rawio.required_columns(schema)
        test_job = pool.submit(
            rawio.write_table_csv,
            staging / "test" / "test.csv",
            pa.Table.from_pandas(frame.iloc[test_idx][raw_cols], preserve_index=False),
        )
        sample = (
            train
            if len(train) <= BASELINE_SAMPLE_ROWS
            else train.sample(BASELINE_SAMPLE_ROWS, random_state=seed)
        )
        baseline_job = pool.submit(
            _write_baseline,
            staging / "baseline",
            sample[schema.feature_names],
            schema,
            len(train),
            drift_comparison_threshold,
        )
        validation = frame.iloc[val_idx]
        y = transform.encode_labels(spec, validation[schema.target_name], source)
        x = transform.apply_transform(spec, validation)
        rawio.write_matrix_csv(
            staging / "validation" / "validation.csv", np.column_stack([y, x]), pool
        )
        artifacts.write_transform_package(spec, staging / "transform")
        test_job.result()
        baseline_job.result()
        summary = {
            "rows_read": int(table.num_rows),
            "rows_used": len(frame),
            "train_rows": len(train_idx),
            "validation_rows": len(val_idx),
            "test_rows": len(test_idx),
            "model_features": len(spec["outputColumns"]),
            "labels": spec["labels"],
            "seed": seed,
            "train_shards": train_shards,
            "hosts": host[1],
        }
        (staging / "transform" / "preprocess_summary.json").write_text(
            json.dumps(summary, indent=2)
        )
    timings["transform_write_s"] = time.perf_counter() - t
    summary["timings"] = timings
    LOG.info("preprocess done: %s", json.dumps(summary))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check_only:
        checked = check_data(
            Path(args.input_dir), Path(args.schema), args.problem_type, args.seed,
            args.validation_fraction, args.test_fraction, written_layout=args.written_layout,
        )  # fmt: skip
        print(json.dumps(checked.summary()))
        return
    preprocess(
        Path(args.input_dir),
        Path(args.schema),
        args.problem_type,
        Path(args.output_dir),
        args.seed,
        args.validation_fraction,
        args.test_fraction,
        args.train_shards,
        cluster.current_host(Path(args.resource_config)),
        args.written_layout,
        args.drift_comparison_threshold,
    )


if __name__ == "__main__":
    sys.exit(run_main(main))

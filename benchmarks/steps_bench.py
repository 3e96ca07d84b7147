"""Preprocess throughput on ~1M rows against the floor of reading and writing them with pyarrow.

The rows are a seeded bootstrap resample of the real breast cancer export (data/raw/), with
fresh record ids and event times. In one run it times:

* floor: ``pyarrow.csv.read_csv`` of the raw file (schema column types) and
  ``pyarrow.csv.write_csv`` of the same rows: the least any CSV-in/CSV-out step can cost;
* preprocess: the step's ``preprocess()`` on the same file (read, validate, split, fit,
  transform, write train/validation/test/baseline/transform).

Each is run ``--repeats`` times alternately; the best of each gives the ratio. Target: <= 2x.
Prints a table and writes the figures as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pipeline_steps"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
from preprocess import preprocess  # noqa: E402
from steplib import rawio  # noqa: E402
from steplib.schema import load_schema  # noqa: E402

SCHEMA = REPO / "data/schemas/breast-cancer.json"
RAW = REPO / "data/raw/breast-cancer"
TARGET_RATIO = 2.0


def make_rows(rows: int, path: Path, seed: int) -> int:
    """Write a bootstrap resample of the real data with unique ids; returns its size in bytes."""
    schema = load_schema(SCHEMA)
    table = rawio.read_table(RAW, schema)
    idx = np.random.default_rng(seed).integers(0, table.num_rows, rows)
    sample = table.take(pa.array(idx))
    ids = pa.array([f"bs-{i:08d}" for i in range(rows)])
    times = pa.array(
        np.datetime_as_string(
            np.datetime64("2026-01-01T00:00:00") + np.arange(rows).astype("timedelta64[s]")
        )
        + "Z"
    )
    sample = sample.set_column(
        sample.schema.get_field_index(schema.record_id_column), schema.record_id_column, ids
    )
    sample = sample.set_column(
        sample.schema.get_field_index(schema.event_time_column), schema.event_time_column, times
    )
    pacsv.write_csv(sample, path)
    return path.stat().st_size


def floor(path: Path, out: Path) -> float:
    """Seconds to read the raw CSV with the schema's types and write the same rows back."""
    schema = load_schema(SCHEMA)
    types = {
        schema.record_id_column: pa.string(),
        schema.event_time_column: pa.string(),
        schema.target_name: pa.string(),
    }
    types.update({f: pa.float64() for f in schema.numeric_features})
    t = time.perf_counter()
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    pacsv.write_csv(table, out / "copy.csv")
    return time.perf_counter() - t


def run_preprocess(path: Path, out: Path) -> tuple:
    t = time.perf_counter()
    summary = preprocess(path, SCHEMA, "binary_classification", out / "preprocess")
    return time.perf_counter() - t, summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="steps-bench-"))
    try:
        raw = tmp / "raw.csv"
        t = time.perf_counter()
        size = make_rows(args.rows, raw, args.seed)
        print(
            f"bootstrap resample: {args.rows:,} rows, {size / 1e6:.0f} MB CSV ({time.perf_counter() - t:.1f} s to build)",
            flush=True,
        )
        floors, preps, summary = [], [], None
        for i in range(args.repeats):
            out = tmp / f"out{i}"
            out.mkdir()
            floors.append(floor(raw, out))
            sec, summary = run_preprocess(raw, out)
            preps.append(sec)
            print(
                f"  repeat {i + 1}: floor {floors[-1]:.2f} s, preprocess {preps[-1]:.2f} s",
                flush=True,
            )
            shutil.rmtree(out)
        best_floor, best_prep = min(floors), min(preps)
        ratio = best_prep / best_floor
        figures = {
            "rows": args.rows,
            "csv_megabytes": round(size / 1e6, 1),
            "cpu_count": os.cpu_count(),
            "floor_seconds": round(best_floor, 3),
            "preprocess_seconds": round(best_prep, 3),
            "ratio": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "floor_rows_per_second": round(args.rows / best_floor),
            "preprocess_rows_per_second": round(args.rows / best_prep),
            "preprocess_phase_seconds": {k: round(v, 3) for k, v in summary["timings"].items()},
        }
        print()
        print(f"{'':<34}{'seconds':>10}{'rows/s':>14}")
        print(
            f"{'floor (pyarrow read + write)':<34}{best_floor:>10.2f}{args.rows / best_floor:>14,.0f}"
        )
        print(f"{'preprocess.py':<34}{best_prep:>10.2f}{args.rows / best_prep:>14,.0f}")
        print(
            f"ratio preprocess/floor: {ratio:.2f}x (target <= {TARGET_RATIO}x): {'MET' if ratio <= TARGET_RATIO else 'NOT MET'}"
        )
        print(f"preprocess phases: {figures['preprocess_phase_seconds']}")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Export scikit-learn's bundled real data sets into the raw-data layout (no download).

Writes ``<out-dir>/<model>/<model>.csv`` and ``<schema-dir>/<model>.json`` for:

* ``breast-cancer``: Wisconsin diagnostic breast cancer, 569 rows, 30 numeric features,
  target ``diagnosis`` in {benign, malignant} (binary classification).
* ``diabetes``: 442 rows, unscaled, target ``disease_progression`` (regression); ``sex`` is
  exported as a categorical feature so the categorical path runs on real data.

Each row gets a ``record_id`` and an ``event_time`` (ISO-8601 UTC), the two columns a
Feature Store feature group requires.

``--raw NAME --csv PATH`` instead writes any of scikit-learn's bundled data sets (``iris``,
``wine``, ``digits``, ``breast_cancer``, ``diabetes``, ``linnerud``) as scikit-learn ships
it: its own column names, the target as ``target``, no id or time: data as a user would
bring it to ``mlops add-model``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pandas as pd
from steplib.contract import CATEGORICAL, NUMERIC, Feature, Schema, suggest_column_name
from steplib.errors import run_main

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def feature_store_name(name: str) -> str:
    """'mean concave points' -> 'mean_concave_points' (the contract's column-name rule)."""
    return suggest_column_name(name)


def with_ids(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    ids = [f"{prefix}-{i:06d}" for i in range(len(frame))]
    times = [(EPOCH + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(len(frame))]
    out = frame.copy()
    out.insert(0, "event_time", times)
    out.insert(0, "record_id", ids)
    return out


def breast_cancer() -> tuple:
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer(as_frame=True)
    x = ds.data.rename(columns=feature_store_name)
    # sklearn codes 0 = malignant, 1 = benign.
    y = ds.target.map({0: "malignant", 1: "benign"}).rename("diagnosis")
    frame = with_ids(pd.concat([y, x], axis=1), "bc")
    schema = Schema(
        record_id_column="record_id",
        event_time_column="event_time",
        target_name="diagnosis",
        target_type=CATEGORICAL,
        classes=("benign", "malignant"),  # malignant is the positive class
        features=tuple(Feature(c, NUMERIC) for c in x.columns),
    )
    return frame, schema


def diabetes() -> tuple:
    from sklearn.datasets import load_diabetes

    ds = load_diabetes(as_frame=True, scaled=False)
    x = ds.data.copy()
    x["sex"] = x["sex"].astype(int).astype(str)
    y = ds.target.rename("disease_progression")
    frame = with_ids(pd.concat([y, x], axis=1), "db")
    schema = Schema(
        record_id_column="record_id",
        event_time_column="event_time",
        target_name="disease_progression",
        target_type=NUMERIC,
        features=tuple(Feature(c, CATEGORICAL if c == "sex" else NUMERIC) for c in x.columns),
    )
    return frame, schema


DATASETS = {"breast-cancer": breast_cancer, "diabetes": diabetes}


def export(out_dir: Path, schema_dir: Path) -> dict:
    """Write every data set and schema; returns {model: csv path}."""
    written = {}
    for model, build in DATASETS.items():
        frame, schema = build()
        path = out_dir / model / f"{model}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, lineterminator="\n")
        schema_dir.mkdir(parents=True, exist_ok=True)
        (schema_dir / f"{model}.json").write_text(json.dumps(schema.to_json(), indent=2) + "\n")
        written[model] = str(path)
    return written


RAW_DATASETS = ("iris", "wine", "digits", "breast_cancer", "diabetes", "linnerud")


def export_raw(name: str, csv: Path) -> int:
    """Write scikit-learn's data set ``name`` as it ships (see the module docstring)."""
    import sklearn.datasets

    frame = getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame
    csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False, lineterminator="\n")
    return len(frame)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", default="data/raw")
    p.add_argument("--schema-dir", default="data/schemas")
    p.add_argument("--raw", choices=RAW_DATASETS, help="write one data set as it ships")
    p.add_argument("--csv", type=Path, help="where --raw writes")
    args = p.parse_args(argv)
    if args.raw:
        if args.csv is None:
            p.error("--raw needs --csv")
        print(f"{args.raw}: {export_raw(args.raw, args.csv)} rows -> {args.csv}")
        return
    for model, path in export(Path(args.out_dir), Path(args.schema_dir)).items():
        print(f"{model}: {path}")


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Drift check power on the project's own data: false-positive rate and detection rate.

For each dataset under data/raw/ (breast cancer, diabetes) this runs what the pipeline runs:

* the baseline is what preprocess keeps: ``preprocess()`` is run on the raw data into a
  temporary directory (its own seed and split fractions) and ``baseline/`` is read back
  with the drift check's ``load_baseline``;
* windows are drawn from the rows preprocess did not train on (its validation and test
  splits, from ``check_data``, the same seeded split), with replacement when a window is
  larger than the rows it is drawn from ("repl." in the table, with the mean number of
  distinct rows per window);
* each window goes through ``drift.drift_report`` (the function the drift check calls)
  with the model's thresholds from cdk.json (the contract's defaults for a dataset that
  has no model there).

Shifts, ``--windows`` windows each: none (the share flagged is the false-positive rate);
every numeric feature (categorical ones are left as they are) moved by +0.5 and +1.0 of
its baseline standard deviation (``statistics.json``); one feature (the numeric feature
most correlated with the target on the training split) moved by +1 sd; that feature's
values missing with probability 0.2 (its missing rate raised by 20 points); rows drawn
only from a target-defined part of the held-out rows (the positive class for
classification, above the training split's upper target quartile for regression: a
covariate shift that follows the target).

Prints a table of the share of windows flagged, and a summary line, on stdout (the same
for the same ``--seed``); the run time goes to stderr.

Read the unshifted rows drawn with replacement with care: such a window repeats rows of a
held-out set of one to two hundred rows, so it carries that set's own chance difference
from the baseline with the weight of ``rows`` independent draws (KS takes the repeats for
evidence). Expect its false-positive rate to be higher than fresh rows would give.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pipeline_steps"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from drift_check import load_baseline  # noqa: E402
from preprocess import check_data, preprocess  # noqa: E402
from steplib import drift  # noqa: E402
from steplib.contract import REGRESSION, DriftThresholds, Schema  # noqa: E402

CDK_JSON = REPO / "cdk.json"
#: (dataset, problem type when cdk.json has no model of that name). Raw data and schema
#: are data/raw/<dataset>/ and data/schemas/<dataset>.json unless cdk.json says otherwise.
DATASETS = (("breast-cancer", "binary_classification"), ("diabetes", REGRESSION))
ALL_SHIFT_SDS = (0.5, 1.0)
SINGLE_SHIFT_SD = 1.0
MISSING_RATE_RISE = 0.2
#: A shift counts as detectable at a window size when this share of windows is flagged.
DETECTION_LEVEL = 0.9


@dataclass(frozen=True)
class Dataset:
    """One dataset as the drift check sees it, and the rows windows are drawn from."""

    name: str
    schema: Schema
    thresholds: DriftThresholds
    thresholds_source: str
    baseline_stats: dict
    baseline: pd.DataFrame
    train_rows: int
    held_out: pd.DataFrame
    single_feature: str
    target_pool: pd.DataFrame
    target_pool_rule: str


@dataclass(frozen=True)
class Shift:
    """A change applied to windows; ``pool`` picks the rows windows are drawn from."""

    label: str
    apply: Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]
    pool: Callable[[Dataset], pd.DataFrame]
    stream: int  # which random stream draws the rows: shifts sharing one see the same rows


def model_config(name: str, cdk_json: Path = CDK_JSON) -> dict | None:
    """The cdk.json model entry named ``name``; None when there is none."""
    models = json.loads(cdk_json.read_text())["context"]["mlops"].get("models", [])
    return next((m for m in models if m.get("name") == name), None)


def thresholds_of(model: dict | None) -> tuple[DriftThresholds, str]:
    """The drift check's thresholds for a model entry, and where they came from; fields
    left out take the contract's defaults, as the CDK app's config does."""
    defaults = DriftThresholds()
    if model is None:
        return defaults, "the contract's defaults: no such model in cdk.json"
    settings = model.get("drift", {})
    thresholds = DriftThresholds(
        settings.get("psiThreshold", defaults.psi),
        settings.get("ksPValueThreshold", defaults.p_value),
        settings.get("missingRateIncrease", defaults.missing_rate_increase),
    )
    return thresholds, "from cdk.json"


def most_target_correlated(train: pd.DataFrame, schema: Schema) -> str:
    """The numeric feature with the largest absolute Pearson correlation with the target on
    the training rows (classification: the positive class, the last listed, as 1)."""
    target = train[schema.target_name]
    if schema.classes:
        target = (target.astype(str) == schema.classes[-1]).astype(float)
    corr = {
        name: abs(np.corrcoef(train[name].to_numpy(float), target.to_numpy(float))[0, 1])
        for name in schema.numeric_features
    }
    return max(corr, key=lambda name: (corr[name], name))


def load_dataset(name: str, problem_type: str, work_dir: Path) -> Dataset:
    """Run preprocess on ``data/raw/<name>`` and return its baseline and held-out rows."""
    model = model_config(name)
    if model is not None:
        problem_type = model["problemType"]
    schema_path = REPO / (model["schemaFile"] if model else f"data/schemas/{name}.json")
    raw_dir = REPO / "data" / "raw" / (model["dataPrefix"] if model else name)
    out = work_dir / name
    preprocess(raw_dir, schema_path, problem_type, out)
    checked = check_data(raw_dir, schema_path, problem_type)
    schema = checked.schema
    stats, baseline = load_baseline(out / "baseline", schema)
    held_idx = np.concatenate([checked.val_idx, checked.test_idx])
    held_out = checked.frame.iloc[held_idx].reset_index(drop=True)
    train = checked.frame.iloc[checked.train_idx]
    target = held_out[schema.target_name]
    if problem_type == REGRESSION:
        cut = float(train[schema.target_name].quantile(0.75))
        pool = held_out[target > cut]
        rule = f"{schema.target_name} > {cut:g} (training upper quartile)"
    else:
        pool = held_out[target.astype(str) == schema.classes[-1]]
        rule = f"{schema.target_name} == {schema.classes[-1]} only"
    thresholds, source = thresholds_of(model)
    return Dataset(
        name,
        schema,
        thresholds,
        source,
        stats,
        baseline,
        len(checked.train_idx),
        held_out,
        most_target_correlated(train, schema),
        pool.reset_index(drop=True),
        rule,
    )


def _move(features: list[str], sds: float, stats: dict):
    def apply(window: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        for name in features:
            window[name] = window[name] + sds * stats["features"][name]["std"]
        return window

    return apply


def _blank(feature: str, rate: float):
    def apply(window: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        window.loc[rng.random(len(window)) < rate, feature] = np.nan
        return window

    return apply


def _unchanged(window: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return window


def shifts(ds: Dataset) -> list[Shift]:
    """The shifts measured for one dataset, "none" first."""
    numeric = ds.schema.numeric_features
    stats = ds.baseline_stats
    held = lambda d: d.held_out  # noqa: E731
    return [
        Shift("none", _unchanged, held, 0),
        *(
            Shift(f"all numeric +{sd:.1f} sd", _move(numeric, sd, stats), held, 0)
            for sd in ALL_SHIFT_SDS
        ),
        Shift(
            f"{ds.single_feature} +{SINGLE_SHIFT_SD:g} sd",
            _move([ds.single_feature], SINGLE_SHIFT_SD, stats),
            held,
            0,
        ),
        Shift(
            f"{ds.single_feature} missing +{MISSING_RATE_RISE * 100:g} pts",
            _blank(ds.single_feature, MISSING_RATE_RISE),
            held,
            0,
        ),
        Shift(ds.target_pool_rule, _unchanged, lambda d: d.target_pool, 1),
    ]


def draw(pool_rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``size`` of ``pool_rows`` rows: without replacement when there are that
    many, else with."""
    return rng.choice(pool_rows, size, replace=size > pool_rows)


def drift_rate(
    ds: Dataset, shift: Shift, size: int, windows: int, seed: int, ds_index: int
) -> tuple[float, float]:
    """Share of ``windows`` windows of ``size`` rows, shifted, that the drift check flags,
    and the mean number of distinct rows in a window (below ``size`` when drawn with
    replacement).

    Rows come from the random stream ``(seed, ds_index, size, shift.stream)``: shifts of
    one dataset that draw from the same rows see the same windows; the shift's own
    randomness (which values go missing) has a stream of its own.
    """
    rows_rng = np.random.default_rng([seed, ds_index, size, shift.stream])
    shift_rng = np.random.default_rng([seed, ds_index, size, 100])
    pool = shift.pool(ds)[ds.schema.feature_names]
    flagged, distinct = 0, 0
    for _ in range(windows):
        idx = draw(len(pool), size, rows_rng)
        distinct += len(np.unique(idx))
        window = shift.apply(pool.iloc[idx].reset_index(drop=True), shift_rng)
        report = drift.drift_report(
            ds.baseline_stats, ds.baseline, window, {}, ds.schema, ds.thresholds
        )
        flagged += report["drift_detected"]
    return flagged / windows, distinct / windows


_WORKER: dict = {}


def _start_worker(datasets: list[Dataset], windows: int, seed: int) -> None:
    _WORKER.update(datasets=datasets, windows=windows, seed=seed)


def _cell(task: tuple[int, int, int]) -> dict:
    """One table row: ``(dataset index, window size, shift index)`` in a worker."""
    ds_index, size, shift_index = task
    ds = _WORKER["datasets"][ds_index]
    shift = shifts(ds)[shift_index]
    pool = len(shift.pool(ds))
    rate, distinct = drift_rate(ds, shift, size, _WORKER["windows"], _WORKER["seed"], ds_index)
    return {
        "dataset": ds.name,
        "size": size,
        "shift": shift.label,
        "pool": pool,
        "replace": size > pool,
        "distinct": distinct,
        "windows": _WORKER["windows"],
        "rate": rate,
    }


def describe(ds: Dataset) -> str:
    """One line: the dataset's baseline, held-out rows, thresholds and chosen feature."""
    t = ds.thresholds
    return (
        f"{ds.name}: baseline {ds.baseline_stats['row_count']} rows (training split "
        f"{ds.train_rows}); held-out (validation + test) {len(ds.held_out)} rows; "
        f"{ds.target_pool_rule}: {len(ds.target_pool)} of them; thresholds "
        f"({ds.thresholds_source}): PSI > {t.psi} and p < {t.p_value}/"
        f"{len(ds.schema.features)} features, missing rate +{t.missing_rate_increase}; "
        f"single-feature shifts on {ds.single_feature} (most target-correlated)"
    )


def run(windows: int, sizes: list[int], seed: int, work_dir: Path, jobs: int = 1) -> list[dict]:
    """Every (dataset, window size, shift) cell, in ``jobs`` processes (in this one when 1);
    also prints each dataset's setup. The figures do not depend on ``jobs``: every cell
    seeds its own random streams."""
    datasets = [load_dataset(name, kind, work_dir) for name, kind in DATASETS]
    for ds in datasets:
        print(describe(ds), flush=True)
    tasks = [
        (ds_index, size, shift_index)
        for ds_index, ds in enumerate(datasets)
        for size in sizes
        for shift_index in range(len(shifts(ds)))
    ]
    if jobs == 1:
        _start_worker(datasets, windows, seed)
        return [_cell(task) for task in tasks]
    with ProcessPoolExecutor(
        jobs, initializer=_start_worker, initargs=(datasets, windows, seed)
    ) as pool:
        return list(pool.map(_cell, tasks))


def print_table(rows: list[dict]) -> None:
    head = ("dataset", "rows", "shift", "drawn from", "distinct", "windows", "drift rate")
    print()
    print(
        f"{head[0]:<15}{head[1]:>5}  {head[2]:<52}{head[3]:>12}{head[4]:>10}{head[5]:>9}{head[6]:>12}"
    )
    for r in rows:
        drawn = f"{r['pool']}{' repl.' if r['replace'] else ''}"
        print(
            f"{r['dataset']:<15}{r['size']:>5}  {r['shift']:<52}{drawn:>12}"
            f"{r['distinct']:>10.0f}{r['windows']:>9}{r['rate']:>12.2f}"
        )


def summary(rows: list[dict]) -> str:
    """One line: each dataset's worst false-positive rate, and the smallest window size at
    which each shift is flagged in at least :data:`DETECTION_LEVEL` of windows."""
    parts = []
    for name, _ in DATASETS:
        mine = [r for r in rows if r["dataset"] == name]
        fpr = [r["rate"] for r in mine if r["shift"] == "none"]
        smallest = min(r["size"] for r in mine)
        late = []
        for label in dict.fromkeys(r["shift"] for r in mine if r["shift"] != "none"):
            ok = [r["size"] for r in mine if r["shift"] == label and r["rate"] >= DETECTION_LEVEL]
            if not ok or min(ok) > smallest:
                late.append(f"{label}: {min(ok) if ok else 'no size'}")
        found = f"every shift from {smallest} rows" + (f" except {'; '.join(late)}" if late else "")
        parts.append(
            f"{name}: false-positive rate {min(fpr):.2f}-{max(fpr):.2f}; "
            f">= {DETECTION_LEVEL:.0%} detected: {found}"
        )
    return "summary: " + " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--windows", type=int, default=100, help="windows per cell")
    p.add_argument(
        "--sizes", default="50,100,200,500", help="window sizes in rows, comma-separated"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per CPU)"
    )
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drift-power-") as tmp:
        rows = run(args.windows, sizes, args.seed, Path(tmp), args.jobs)
    print_table(rows)
    print(summary(rows), flush=True)
    seconds, cpu = time.perf_counter() - t, sum(os.times()[:4])  # with the workers' CPU time
    print(
        f"run time {seconds:.1f} s ({cpu:.1f} CPU-seconds), {args.jobs} processes, "
        f"{os.cpu_count()} CPUs",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SageMaker Model Monitor baseline files, written by the training pipeline itself.

Model Monitor's data-quality and model-quality jobs compare what an endpoint captured with
baseline files in Model Monitor's own format: ``statistics.json`` and ``constraints.json``
(AWS developer guide, "Schema for Statistics (statistics.json file)" and "Schema for
Constraints (constraints.json file)"), and for model quality a constraints file with one
``<problem type>_constraints`` section. Model Monitor's baselining job (its analyzer
container) would compute them from a dataset in a processing job of its own; preprocess and
evaluate write them here from what they already hold, so the baseline is the same sample
the project's own drift check compares against, and no extra job runs.

Feature names: the endpoints receive header-less CSV rows of the schema's features in
schema order (``inference.py``, ``payload.parse_payload``), and Model Monitor names the
columns of header-less CSV ``_c0``, ``_c1``, ... in order. So the data-quality files call
the schema's feature ``i`` ``_c{i}`` (``monitoring.model_monitor_column``, which the
schedules' alarms use too); the real names are in the project's own ``statistics.json`` one
directory up, in the same order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from steplib import contract, monitoring
from steplib.contract import MULTICLASS, NUMERIC, Schema

#: ``version`` of the data-quality files (both schema pages show 0).
DATA_QUALITY_VERSION = 0
#: ``version`` of the model-quality constraints (what Model Monitor's baselining job writes).
MODEL_QUALITY_VERSION = 0.0
#: "By default, the distribution is materialized in 10 buckets" (statistics page).
BUCKETS = 10
#: KLL sketch parameters of Model Monitor's own baselines: size ``k`` and shrinking factor
#: ``c``. A sample of at most ``k`` values is kept whole; see :func:`kll_sketch`.
KLL_K = 2048
KLL_C = 0.64
#: Share of a column's values that may have another type than the baseline's (or, for a
#: String column, lie outside its domain) before Model Monitor reports a violation.
DATATYPE_CHECK_THRESHOLD = 0.1
DOMAIN_CONTENT_THRESHOLD = 0.1
#: Model Monitor's drift methods: its default for numeric features, and the L-infinity
#: distance of the category frequencies (the alternative is ChiSquared).
COMPARISON_METHOD = "Robust"
CATEGORICAL_DRIFT_METHOD = "LInfinity"
#: Model Monitor's names of the multiclass metrics the contract also gives a short name
#: ("Model quality metrics" lists only the weighted_* names for multiclass).
_MODEL_MONITOR_NAMES = {
    (MULTICLASS, "f1"): "weighted_f1",
    (MULTICLASS, "precision"): "weighted_precision",
    (MULTICLASS, "recall"): "weighted_recall",
}


def data_quality_statistics(frame: pd.DataFrame, schema: Schema) -> dict:
    """``statistics.json`` of the baseline rows: one entry per feature, in schema order.

    Numeric features are ``Integral`` when every present value is a whole number, else
    ``Fractional``; categorical features are ``String``. ``std_dev`` is the population
    standard deviation. A feature without a present value has only its counts.
    """
    n = len(frame)
    features = []
    for i, feat in enumerate(schema.features):
        col = frame[feat.name]
        if feat.type == NUMERIC:
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            features.append(
                _numeric_statistics(
                    monitoring.model_monitor_column(i), values[~np.isnan(values)], n
                )
            )
        else:
            features.append(
                _string_statistics(monitoring.model_monitor_column(i), col.dropna().astype(str), n)
            )
    return {"version": DATA_QUALITY_VERSION, "dataset": {"item_count": n}, "features": features}


def _numeric_statistics(name: str, present: np.ndarray, n: int) -> dict:
    stats: dict = {"common": {"num_present": int(present.size), "num_missing": n - present.size}}
    if present.size:
        ordered = [float(v) for v in np.sort(present)]
        # fsum: exactly rounded, so the files are the same on every machine.
        total = math.fsum(ordered)
        mean = total / len(ordered)
        stats.update(
            mean=mean,
            sum=total,
            std_dev=math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / len(ordered)),
            min=ordered[0],
            max=ordered[-1],
            distribution={"kll": {"buckets": _buckets(ordered), "sketch": kll_sketch(ordered)}},
        )
    whole = present.size > 0 and bool(np.all(np.mod(present, 1) == 0))
    return {
        "name": name,
        "inferred_type": "Integral" if whole else "Fractional",
        "numerical_statistics": stats,
    }


def _buckets(ordered: list[float]) -> list[dict]:
    """10 equal-width buckets from min to max: ``[min, b1], (b1, b2], ..., (b9, max]``
    (all values in the first when min == max); the counts are exact."""
    low, high = ordered[0], ordered[-1]
    edges = [low + (high - low) * i / BUCKETS for i in range(BUCKETS)] + [high]
    counts = np.bincount(np.searchsorted(edges[1:-1], ordered, side="left"), minlength=BUCKETS)
    return [
        {"lower_bound": edges[i], "upper_bound": edges[i + 1], "count": int(counts[i])}
        for i in range(BUCKETS)
    ]


def kll_sketch(ordered: list[float], k: int = KLL_K) -> dict:
    """A deterministic KLL sketch of sorted values: ``data[h]`` holds items of weight 2**h.

    Up to ``k`` values it is the values themselves at level 0 (an exact sketch). Beyond,
    level ``L`` (the lowest holding at most ``k`` items) has the middle value of each run of
    2**L sorted values, and the last ``n mod 2**L`` values are summarised by one item per
    binary digit of that count, so the weights add up to the number of values. A KLL
    compaction keeps every other item; this keeps the middle one instead of a random one.
    """
    n = len(ordered)
    level = 0
    while n >> level > k:
        level += 1
    width = 1 << level
    full = n - n % width
    data: list[list[float]] = [[] for _ in range(level + 1)]
    data[level] = ordered[width // 2 : full : width]
    start = full
    for h in range(level - 1, -1, -1):
        if (n - full) >> h & 1:
            run = ordered[start : start + (1 << h)]
            data[h].append(run[len(run) // 2])
            start += 1 << h
    return {"parameters": {"c": KLL_C, "k": float(k)}, "data": data}


def _string_statistics(name: str, present: pd.Series, n: int) -> dict:
    counts = present.value_counts()
    buckets = [{"value": v, "count": int(counts[v])} for v in sorted(counts.index)]
    return {
        "name": name,
        "inferred_type": "String",
        "string_statistics": {
            "common": {"num_present": int(present.size), "num_missing": n - int(present.size)},
            "distinct_count": len(buckets),
            "distribution": {"categorical": {"buckets": buckets}},
        },
    }


def data_quality_constraints(
    frame: pd.DataFrame, schema: Schema, *, comparison_threshold: float
) -> dict:
    """``constraints.json`` of the baseline rows (the features as in
    :func:`data_quality_statistics`).

    ``completeness`` is the share of present values, ``is_non_negative`` whether the
    smallest value is >= 0, a String feature's domain its baseline levels.

    ``comparison_threshold``: the model's drift PSI threshold. The one ``drift`` setting of
    a model configures both engines, so it becomes Model Monitor's distance threshold for
    numeric and categorical features alike; that distance lies in [0, 1], so the value is
    clipped to it (``monitoring.model_monitor_comparison_threshold``: a PSI threshold above 1
    means "never" for Model Monitor too).

    Raises:
        ValueError: ``comparison_threshold`` is not a finite number.
    """
    return _constraints(data_quality_statistics(frame, schema), comparison_threshold)


def _constraints(statistics: dict, comparison_threshold: float) -> dict:
    threshold = monitoring.model_monitor_comparison_threshold(comparison_threshold)
    n = statistics["dataset"]["item_count"]
    features = []
    for feat in statistics["features"]:
        numeric = "numerical_statistics" in feat
        stats = feat["numerical_statistics" if numeric else "string_statistics"]
        entry: dict = {
            "name": feat["name"],
            "inferred_type": feat["inferred_type"],
            "completeness": stats["common"]["num_present"] / n if n else 0.0,
        }
        if numeric and "min" in stats:
            entry["num_constraints"] = {"is_non_negative": stats["min"] >= 0}
        elif not numeric and stats["distinct_count"]:
            levels = stats["distribution"]["categorical"]["buckets"]
            entry["string_constraints"] = {"domains": [b["value"] for b in levels]}
        features.append(entry)
    return {
        "version": DATA_QUALITY_VERSION,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": DATATYPE_CHECK_THRESHOLD,
            "domain_content_threshold": DOMAIN_CONTENT_THRESHOLD,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": threshold,
                "comparison_method": COMPARISON_METHOD,
                "categorical_comparison_threshold": threshold,
                "categorical_drift_method": CATEGORICAL_DRIFT_METHOD,
            },
        },
    }


def model_quality_constraints(problem_type: str, metric: str, threshold: float) -> dict:
    """Model Monitor's model-quality constraints for the quality gate ``metric``/``threshold``.

    ``{"version": 0.0, "<problem type>_constraints": {metric: {"threshold",
    "comparison_operator"}}}``: Model Monitor reports a violation when ``value <operator>
    threshold`` holds, so a metric where higher is better (``auc >= 0.95`` passes the gate)
    gets ``LessThanThreshold`` and an error metric (``rmse <= 40`` passes) gets
    ``GreaterThanThreshold``: the violation is exactly the gate failing. A multiclass
    ``f1``/``precision``/``recall`` is written under Model Monitor's ``weighted_*`` name.

    Raises:
        ValueError: the contract has no such gate (unknown problem type or metric, or a
            threshold outside the metric's range).
    """
    problems = contract.gate_problems(problem_type, metric, threshold)
    if problems:
        raise ValueError("; ".join(p.render("quality gate ") for p in problems))
    spec = contract.problem(problem_type)
    operator = (
        "LessThanThreshold" if spec.metrics[metric].higher_is_better else "GreaterThanThreshold"
    )
    section = spec.report_section.removesuffix("_metrics") + "_constraints"
    name = _MODEL_MONITOR_NAMES.get((problem_type, metric), metric)
    return {
        "version": MODEL_QUALITY_VERSION,
        section: {name: {"threshold": float(threshold), "comparison_operator": operator}},
    }


def dumps(document: dict) -> str:
    """The file text: strict JSON (``allow_nan=False``), sorted keys, so reruns are
    byte-identical."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_baselines(
    out_dir: Path, frame: pd.DataFrame, schema: Schema, *, comparison_threshold: float
) -> None:
    """``out_dir/statistics.json`` and ``out_dir/constraints.json`` of the baseline rows
    (see :func:`data_quality_constraints` for ``comparison_threshold``)."""
    statistics = data_quality_statistics(frame, schema)
    constraints = _constraints(statistics, comparison_threshold)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "statistics.json").write_text(dumps(statistics))
    (out_dir / "constraints.json").write_text(dumps(constraints))

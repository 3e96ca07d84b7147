"""Baseline statistics and drift statistics (PSI, Kolmogorov-Smirnov, chi-square).

A feature is flagged when the shift is both large (PSI above its threshold) and unlikely to
be sampling noise (KS or chi-square p-value below the significance threshold divided by the
number of features tested, a Bonferroni correction), or when its missing rate rises by more
than the allowed amount, or when values of the wrong type arrive.

Why both: PSI alone is noisy on small capture windows (its expected value under no drift is
about (bins - 1) * (1/n_baseline + 1/n_window), 0.13 for 85 captured rows), and a p-value
alone flags trivial shifts on large windows. Why Bonferroni: one check runs one test per
feature, so ``ksPValueThreshold`` is the family-wise false-alarm level of the whole check,
not of each of its 30 tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from steplib.contract import CATEGORICAL, NUMERIC, DriftThresholds, Schema

NUMERIC_BINS = 10
# Floor for empty bins so PSI stays finite (a common convention).
PSI_EPSILON = 1e-4
OTHER_LEVEL = "__other__"


def numeric_bin_edges(values: np.ndarray, bins: int = NUMERIC_BINS) -> list[float]:
    """Inner quantile edges of the baseline (duplicates removed, so ties do not make empty bins)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return []
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(x) for x in np.unique(qs)]


def bin_proportions(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Share of non-missing values in each bin ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    values = values[~np.isnan(values)]
    counts = np.bincount(
        np.searchsorted(np.asarray(edges), values, side="left"), minlength=len(edges) + 1
    )
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over bins, empty bins floored."""
    e = np.clip(np.asarray(expected, dtype=float), epsilon, None)
    a = np.clip(np.asarray(actual, dtype=float), epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def baseline_statistics(frame: pd.DataFrame, schema: Schema) -> dict:
    """Per-feature statistics of the baseline rows that drift checks compare against."""
    features: dict[str, dict] = {}
    n = len(frame)
    for feat in schema.features:
        col = frame[feat.name]
        missing_rate = float(col.isna().mean()) if n else 0.0
        if feat.type == NUMERIC:
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            present = values[~np.isnan(values)]
            edges = numeric_bin_edges(values)
            features[feat.name] = {
                "type": NUMERIC,
                "count": int(n),
                "missing_rate": missing_rate,
                "mean": float(present.mean()) if present.size else None,
                "std": float(present.std(ddof=1)) if present.size > 1 else None,
                "min": float(present.min()) if present.size else None,
                "max": float(present.max()) if present.size else None,
                "bin_edges": edges,
                "bin_proportions": [float(p) for p in bin_proportions(values, edges)],
            }
        else:
            counts = col.dropna().astype(str).value_counts()
            features[feat.name] = {
                "type": CATEGORICAL,
                "count": int(n),
                "missing_rate": missing_rate,
                "level_counts": {str(k): int(v) for k, v in sorted(counts.items())},
            }
    return {"row_count": int(n), "features": features}


def numeric_drift(baseline_values: np.ndarray, stats_entry: dict, window: np.ndarray) -> dict:
    """PSI (baseline deciles) and two-sample KS for one numeric feature; NaNs are ignored."""
    present = window[~np.isnan(window)]
    base = baseline_values[~np.isnan(baseline_values)]
    if present.size == 0 or base.size == 0:
        return {"psi": None, "ks_statistic": None, "ks_p_value": None}
    edges = stats_entry["bin_edges"]
    value = psi(np.asarray(stats_entry["bin_proportions"]), bin_proportions(present, edges))
    ks = stats.ks_2samp(base, present)
    return {"psi": value, "ks_statistic": float(ks.statistic), "ks_p_value": float(ks.pvalue)}


def categorical_drift(stats_entry: dict, window: pd.Series) -> dict:
    """PSI and chi-square (baseline vs window level counts); unseen levels pool into one."""
    base_counts = stats_entry["level_counts"]
    levels = list(base_counts)
    values = window.dropna().astype(str)
    win = values.where(values.isin(levels), OTHER_LEVEL).value_counts()
    base_vec = np.array([base_counts[lvl] for lvl in levels] + [0], dtype=float)
    win_vec = np.array([win.get(lvl, 0) for lvl in levels] + [win.get(OTHER_LEVEL, 0)], dtype=float)
    result: dict[str, float | None] = {
        "psi": None,
        "chi2_statistic": None,
        "chi2_p_value": None,
        "unseen_level_rate": float(win_vec[-1] / win_vec.sum()) if win_vec.sum() else 0.0,
    }
    if win_vec.sum() == 0 or base_vec.sum() == 0:
        return result
    result["psi"] = psi(base_vec / base_vec.sum(), win_vec / win_vec.sum())
    keep = (base_vec + win_vec) > 0
    table = np.vstack([base_vec[keep], win_vec[keep]])
    if table.shape[1] < 2:
        result["chi2_statistic"], result["chi2_p_value"] = 0.0, 1.0
    else:
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        result["chi2_statistic"], result["chi2_p_value"] = float(chi2), float(p)
    return result


def feature_report(
    name: str,
    stats_entry: dict,
    baseline_values: pd.Series | None,
    window: pd.Series,
    type_errors: int,
    thresholds: DriftThresholds,
    p_value_threshold: float | None = None,
) -> dict:
    """All statistics and the drift decision (with reasons) for one feature.

    ``p_value_threshold`` is the per-feature significance level; when left out, the
    configured ``thresholds.p_value`` (no multiple-testing correction).
    """
    p_threshold = thresholds.p_value if p_value_threshold is None else p_value_threshold
    n = len(window)
    missing_rate = float(window.isna().mean()) if n else 0.0
    report: dict = {
        "type": stats_entry["type"],
        "window_count": int(n),
        "baseline_missing_rate": stats_entry["missing_rate"],
        "window_missing_rate": missing_rate,
        "type_error_count": int(type_errors),
    }
    if stats_entry["type"] == NUMERIC:
        values = pd.to_numeric(window, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        report.update(
            numeric_drift(
                baseline_values.to_numpy(dtype=np.float64, na_value=np.nan), stats_entry, values
            )
        )
        p_value = report["ks_p_value"]
    else:
        report.update(categorical_drift(stats_entry, window))
        p_value = report["chi2_p_value"]
    reasons = []
    if (
        report["psi"] is not None
        and p_value is not None
        and report["psi"] > thresholds.psi
        and p_value < p_threshold
    ):
        reasons.append(
            f"distribution shift: PSI {report['psi']:.3f} > {thresholds.psi} and p-value {p_value:.2g} < {p_threshold:.2g}"
        )
    if missing_rate - stats_entry["missing_rate"] > thresholds.missing_rate_increase:
        reasons.append(
            f"missing rate rose from {stats_entry['missing_rate']:.3f} to {missing_rate:.3f} (> +{thresholds.missing_rate_increase})"
        )
    if type_errors:
        reasons.append(f"{type_errors} values of the wrong type (expected {stats_entry['type']})")
    report["drift"] = bool(reasons)
    report["reasons"] = reasons
    return report


def drift_report(
    baseline_stats: dict,
    baseline_frame: pd.DataFrame,
    window: pd.DataFrame,
    type_errors: dict[str, int],
    schema: Schema,
    thresholds: DriftThresholds,
) -> dict:
    """Compare a window of feature rows with the baseline; see the module docstring for the rule."""
    per_feature_p = thresholds.p_value / max(1, len(schema.features))
    features = {}
    for feat in schema.features:
        features[feat.name] = feature_report(
            feat.name,
            baseline_stats["features"][feat.name],
            baseline_frame[feat.name] if feat.type == NUMERIC else None,
            window[feat.name],
            type_errors.get(feat.name, 0),
            thresholds,
            per_feature_p,
        )
    drifted = [name for name, rep in features.items() if rep["drift"]]
    return {
        "drift_detected": bool(drifted),
        "drifted_features": drifted,
        "window_row_count": len(window),
        "baseline_row_count": int(baseline_stats["row_count"]),
        "thresholds": {
            "psiThreshold": thresholds.psi,
            "ksPValueThreshold": thresholds.p_value,
            "missingRateIncrease": thresholds.missing_rate_increase,
            "pValuePerFeature": per_feature_p,
        },
        "features": features,
    }

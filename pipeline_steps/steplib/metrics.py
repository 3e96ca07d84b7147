"""Model-quality metrics in SageMaker's layout, the quality gate, and evaluation plots."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

LOG = logging.getLogger("pipeline_steps.metrics")

METRICS_KEY = {
    "binary_classification": "binary_classification_metrics",
    "multiclass_classification": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
#: Metrics where a lower value is better; the gate passes when value <= threshold.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse"})
BOOTSTRAP_ROUNDS = 200


def _binary(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    pred = (score >= 0.5).astype(int)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
    }
    out["auc"] = skm.roc_auc_score(y, score) if len(np.unique(y)) == 2 else float("nan")
    return out


def _multiclass(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    out = {"accuracy": skm.accuracy_score(y, pred)}
    for name, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        # Class-frequency weighted averages; SageMaker's model-quality layout names them
        # weighted_*, the project's gate config may use either name.
        out[name] = out[f"weighted_{name}"] = fn(y, pred, average="weighted", zero_division=0)
    return out


def _regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    mse = skm.mean_squared_error(y, pred)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, float]]] = {
    "binary_classification": _binary,
    "multiclass_classification": _multiclass,
    "regression": _regression,
}


def model_quality_report(problem_type: str, y: np.ndarray, pred: np.ndarray, seed: int = 0) -> dict:
    """Metrics with a bootstrap standard deviation, in the model-quality JSON layout.

    ``{"<problem>_metrics": {"auc": {"value": v, "standard_deviation": s}, ...}}``. For
    classification it also holds ``confusion_matrix`` (actual -> predicted -> count) as
    SageMaker's layout does.

    Args:
        problem_type: One of the three problem types.
        y: True labels (class index) or values.
        pred: Positive-class score (binary), class probabilities (multiclass) or values.
        seed: Seed of the bootstrap resampling used for standard_deviation.
    """
    fn = METRIC_FUNCTIONS[problem_type]
    point = fn(y, pred)
    rng = np.random.default_rng(seed)
    samples: dict[str, list] = {k: [] for k in point}
    n = len(y)
    for _ in range(BOOTSTRAP_ROUNDS):
        idx = rng.integers(0, n, n)
        if problem_type != "regression" and len(np.unique(y[idx])) < 2:
            continue
        for k, v in fn(y[idx], pred[idx]).items():
            samples[k].append(v)
    section: dict = {
        k: {
            "value": float(v),
            "standard_deviation": float(np.nanstd(samples[k])) if samples[k] else 0.0,
        }
        for k, v in point.items()
    }
    if problem_type != "regression":
        labels_pred = (
            (pred >= 0.5).astype(int)
            if problem_type == "binary_classification"
            else pred.argmax(axis=1)
        )
        k = 2 if problem_type == "binary_classification" else pred.shape[1]
        cm = skm.confusion_matrix(y.astype(int), labels_pred, labels=list(range(k)))
        section["confusion_matrix"] = {
            str(a): {str(p): int(cm[a, p]) for p in range(k)} for a in range(k)
        }
    return {METRICS_KEY[problem_type]: section}


def gate_decision(report: dict, problem_type: str, metric: str, threshold: float) -> dict:
    """The quality gate as the pipeline's condition step applies it.

    Passes when the metric is >= threshold, or <= threshold for rmse, mae and mse.
    """
    section = report[METRICS_KEY[problem_type]]
    if metric not in section:
        raise KeyError(
            f"metric {metric!r} not in {METRICS_KEY[problem_type]} (have {sorted(section)})"
        )
    value = section[metric]["value"]
    if metric in LOWER_IS_BETTER:
        passed, op = value <= threshold, "<="
    else:
        passed, op = value >= threshold, ">="
    return {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "comparison": op,
        "passed": bool(passed),
        "json_path": f"{METRICS_KEY[problem_type]}.{metric}.value",
    }


def write_plots(problem_type: str, y: np.ndarray, pred: np.ndarray, labels, out_dir: Path) -> list:
    """ROC curve and confusion matrix (classification) or residual plots (regression) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if problem_type == "binary_classification":
        fpr, tpr, _ = skm.roc_curve(y, pred)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(fpr, tpr, label=f"AUC = {skm.roc_auc_score(y, pred):.4f}")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(
            xlabel="False positive rate",
            ylabel="True positive rate",
            title=f"ROC curve (positive: {labels[1]})",
        )
        ax.legend(loc="lower right")
        written.append(_save(fig, out_dir / "roc_curve.png"))
    if problem_type != "regression":
        pred_cls = (
            (pred >= 0.5).astype(int)
            if problem_type == "binary_classification"
            else pred.argmax(axis=1)
        )
        cm = skm.confusion_matrix(y.astype(int), pred_cls, labels=list(range(len(labels))))
        fig, ax = plt.subplots(figsize=(5, 5))
        skm.ConfusionMatrixDisplay(cm, display_labels=labels).plot(ax=ax, colorbar=False)
        ax.set_title("Confusion matrix (test split)")
        written.append(_save(fig, out_dir / "confusion_matrix.png"))
    else:
        resid = y - pred
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes[0].scatter(pred, resid, s=10)
        axes[0].axhline(0, color="grey", linestyle="--")
        axes[0].set(
            xlabel="Predicted",
            ylabel="Residual (actual - predicted)",
            title="Residuals vs predicted",
        )
        axes[1].hist(resid, bins=30)
        axes[1].set(xlabel="Residual", ylabel="Rows", title="Residual distribution")
        written.append(_save(fig, out_dir / "residuals.png"))
    return written


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name

"""Model-quality metrics in SageMaker's layout, the quality gate, and evaluation plots."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics as skm

from steplib import contract
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.errors import DataError

LOG = logging.getLogger("pipeline_steps.metrics")

BOOTSTRAP_ROUNDS = 200


def _binary(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    pred = (score >= 0.5).astype(int)
    # One pass for the three (precision_score & co. each make this same call).
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, pred, average="binary", zero_division=0
    )
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": skm.roc_auc_score(y, score) if len(np.unique(y)) == 2 else float("nan"),
    }


def _multiclass(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, pred, average="weighted", zero_division=0
    )
    # Class-frequency weighted averages, under both names the contract gives them.
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": precision,
        "weighted_precision": precision,
        "recall": recall,
        "weighted_recall": recall,
        "f1": f1,
        "weighted_f1": f1,
    }


def _regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    mse = skm.mean_squared_error(y, pred)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, float]]] = {
    BINARY: _binary,
    MULTICLASS: _multiclass,
    REGRESSION: _regression,
}


def point_metrics(problem_type: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The contract's metrics for ``problem_type``, in its order (KeyError if one is missing):
    what Evaluate reports, without the bootstrap."""
    values = METRIC_FUNCTIONS[problem_type](y, pred)
    return {name: values[name] for name in contract.problem(problem_type).metrics}


def _undefined_reason(problem_type: str, metric: str, y: np.ndarray, pred: np.ndarray) -> str:
    """Why ``metric`` came out NaN or infinite on these test rows, in words.

    (Non-finite labels or predictions never get this far: scikit-learn refuses them.)
    """
    if problem_type == BINARY and metric == "auc" and len(np.unique(y)) < 2:
        return (
            f"all {len(y)} test rows have the same class (label index {int(y[0])}); ROC AUC "
            "needs test rows of both classes"
        )
    if len(y) < 2:
        return f"it needs at least 2 test rows, and there are {len(y)}"
    return "the computation gives no finite value on these test rows"


def _check_finite(
    point: dict[str, float], problem_type: str, y: np.ndarray, pred: np.ndarray, source: str
) -> None:
    """Raise a DataError for the first metric that is NaN or infinite.

    evaluation.json must hold finite numbers: JSON has no NaN, and the pipeline's condition
    step (JsonGet) cannot read the ``NaN`` that ``json.dumps`` would write.
    """
    for name, value in point.items():
        if not math.isfinite(value):
            raise DataError(
                source,
                None,
                f"metric {name!r} cannot be computed ({value}): "
                f"{_undefined_reason(problem_type, name, y, pred)}",
            )


def _spread(samples: list) -> float:
    """Standard deviation of the finite bootstrap values (0.0 when there are none)."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.std(values)) if values.size else 0.0


def model_quality_report(
    problem_type: str,
    y: np.ndarray,
    pred: np.ndarray,
    seed: int = 0,
    source: str = "<test split>",
) -> dict:
    """Metrics with a bootstrap standard deviation, in the model-quality JSON layout.

    ``{"<problem>_metrics": {"auc": {"value": v, "standard_deviation": s}, ...}}``. For
    classification it also holds ``confusion_matrix`` (actual -> predicted -> count) as
    SageMaker's layout does.

    Args:
        problem_type: One of the three problem types.
        y: True labels (class index) or values.
        pred: Positive-class score (binary), class probabilities (multiclass) or values.
        seed: Seed of the bootstrap resampling used for standard_deviation.
        source: The test data's file or directory, for messages.

    Raises:
        DataError: when a metric cannot be computed (it would be NaN or infinite), e.g. AUC
            on test rows of one class.
    """
    point = point_metrics(problem_type, y, pred)
    _check_finite(point, problem_type, y, pred, source)
    rng = np.random.default_rng(seed)
    samples: dict[str, list] = {k: [] for k in point}
    n = len(y)
    # The inputs were validated by the point estimate above; scikit-learn's per-call
    # parameter validation would be a third of the bootstrap's time.
    with sklearn.config_context(skip_parameter_validation=True):
        for _ in range(BOOTSTRAP_ROUNDS):
            idx = rng.integers(0, n, n)
            if problem_type != REGRESSION and len(np.unique(y[idx])) < 2:
                continue
            for k, v in point_metrics(problem_type, y[idx], pred[idx]).items():
                samples[k].append(v)
    section: dict = {
        k: {
            "value": float(v),
            "standard_deviation": _spread(samples[k]),
        }
        for k, v in point.items()
    }
    if problem_type != REGRESSION:
        labels_pred = (pred >= 0.5).astype(int) if problem_type == BINARY else pred.argmax(axis=1)
        k = 2 if problem_type == BINARY else pred.shape[1]
        cm = skm.confusion_matrix(y.astype(int), labels_pred, labels=list(range(k)))
        section["confusion_matrix"] = {
            str(a): {str(p): int(cm[a, p]) for p in range(k)} for a in range(k)
        }
    return {contract.problem(problem_type).report_section: section}


def gate_decision(report: dict, problem_type: str, metric: str, threshold: float) -> dict:
    """The quality gate as the pipeline's condition step applies it (see the contract)."""
    path = contract.metric_json_path(problem_type, metric)
    section = report[contract.problem(problem_type).report_section]
    if metric not in section:
        raise KeyError(f"metric {metric!r} not at {path} (have {sorted(section)})")
    value = section[metric]["value"]
    higher = contract.gate_metric(problem_type, metric).higher_is_better
    return {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "comparison": ">=" if higher else "<=",
        "passed": contract.gate_passes(problem_type, metric, value, threshold),
        "json_path": path,
    }


def write_plots(problem_type: str, y: np.ndarray, pred: np.ndarray, labels, out_dir: Path) -> list:
    """ROC curve and confusion matrix (classification) or residual plots (regression) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if problem_type == BINARY:
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
    if problem_type != REGRESSION:
        pred_cls = (pred >= 0.5).astype(int) if problem_type == BINARY else pred.argmax(axis=1)
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

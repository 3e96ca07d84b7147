"""The model list the local run uses: ``cdk.json`` -> ``context.mlops.models``, else the defaults.

Only what the step scripts need is checked here; the CDK app's config validator owns the
full validation of ``cdk.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from steplib.errors import DataError
from steplib.metrics import LOWER_IS_BETTER
from steplib.schema import PROBLEM_TYPES

LOG = logging.getLogger("pipeline_steps.config")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_FILE = REPO_ROOT / "data" / "models.example.json"
CLASSIFICATION_METRICS = ("auc", "accuracy", "f1", "precision", "recall")
MULTICLASS_METRICS = (
    "accuracy",
    "f1",
    "precision",
    "recall",
    "weighted_f1",
    "weighted_precision",
    "weighted_recall",
)
REGRESSION_METRICS = ("r2", "rmse", "mae", "mse")


def check_model(model: dict, where: str) -> None:
    """Raise one DataError listing every problem of one model entry."""
    problems = []
    for key in (
        "name",
        "problemType",
        "targetColumn",
        "schemaFile",
        "hyperparameters",
        "qualityGate",
    ):
        if key not in model:
            problems.append(f"'{key}' is required")
    pt = model.get("problemType")
    if pt is not None and pt not in PROBLEM_TYPES:
        problems.append(f"problemType {pt!r} is not one of {', '.join(PROBLEM_TYPES)}")
    gate = model.get("qualityGate") or {}
    allowed = {
        "regression": REGRESSION_METRICS,
        "multiclass_classification": MULTICLASS_METRICS,
    }.get(pt, CLASSIFICATION_METRICS)
    if gate and gate.get("metric") not in allowed:
        problems.append(
            f"qualityGate.metric {gate.get('metric')!r} is not one of {', '.join(allowed)}"
        )
    if gate and not isinstance(gate.get("threshold"), (int, float)):
        problems.append("qualityGate.threshold must be a number")
    if problems:
        raise DataError(where, None, "; ".join(problems))


def load_models(cdk_json: Path | None = None) -> tuple[list[dict], str]:
    """Models from ``cdk_json`` (``context.mlops.models``) when present, else the defaults.

    Returns:
        (models, where they came from).
    """
    source = None
    models = None
    if cdk_json is not None and Path(cdk_json).is_file():
        try:
            doc = json.loads(Path(cdk_json).read_text())
        except json.JSONDecodeError as err:
            raise DataError(cdk_json, None, f"not valid JSON ({err})") from None
        models = ((doc.get("context") or {}).get("mlops") or {}).get("models")
        source = f"{cdk_json} (context.mlops.models)"
    if not models:
        models = json.loads(DEFAULT_MODELS_FILE.read_text())
        source = f"{DEFAULT_MODELS_FILE} (defaults)"
    for i, model in enumerate(models):
        check_model(model, f"{source}[{i}]")
    return models, source


def drift_thresholds(model: dict):
    """DriftThresholds from the model's ``drift`` block; defaults for keys left out."""
    from steplib.drift import DriftThresholds

    d = model.get("drift") or {}
    base = DriftThresholds()
    return DriftThresholds(
        float(d.get("psiThreshold", base.psi)),
        float(d.get("ksPValueThreshold", base.p_value)),
        float(d.get("missingRateIncrease", base.missing_rate_increase)),
    )


__all__ = ["LOWER_IS_BETTER", "REPO_ROOT", "check_model", "drift_thresholds", "load_models"]

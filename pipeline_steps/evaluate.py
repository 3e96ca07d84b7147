"""Evaluation step: score the test split and write SageMaker model-quality metrics and plots.

Runs in the built-in XGBoost image as a processing job (it has xgboost, pandas, scikit-learn
and matplotlib; see containers.json). Loads the trained ``model.tar.gz``, the fitted
transform and the raw test rows, and writes to the output directory:

* ``evaluation.json``: ``{"binary_classification_metrics" | "multiclass_classification_metrics"
  | "regression_metrics": {"<metric>": {"value", "standard_deviation"}, ...}}``, the layout
  the pipeline's condition step (``<section>.<metric>.value``) and the model registry read;
  it is also the layout of SageMaker Model Monitor's model-quality statistics (AWS developer
  guide, "Model quality metrics");
* ``model_quality_constraints.json`` (with ``--quality-metric`` and ``--quality-threshold``):
  the quality gate as Model Monitor's model-quality constraints
  (``steplib.model_monitor.model_quality_constraints``); without them, none is written;
* ``roc_curve.png`` and ``confusion_matrix.png`` (classification) or ``residuals.png``;
* ``predictions.csv``: record id and prediction per test row (what the endpoint must return).

With ``--serving-dir`` it also writes ``<serving-dir>/model.tar.gz``, the version's
single-container form for serverless endpoints (the booster, the transform and ``code/``
running serve_single.py; see ``artifacts.write_serving_package``). Without it, none is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import pandas as pd
from steplib import artifacts, contract, metrics, model_monitor, rawio, transform
from steplib.contract import MULTICLASS
from steplib.errors import DataError, run_main
from steplib.schema import check_problem_type, load_schema

LOG = logging.getLogger("pipeline_steps.evaluate")


def predict_matrix(booster, matrix: np.ndarray, problem_type: str, source: str) -> np.ndarray:
    """Booster scores: positive-class probability, class probabilities, or values."""
    import xgboost as xgb

    pred = booster.predict(xgb.DMatrix(matrix))
    if problem_type == MULTICLASS and pred.ndim != 2:
        raise DataError(
            source,
            None,
            "multiclass evaluation needs class probabilities: train with objective "
            f"{contract.problem(MULTICLASS).objectives[0]}",
        )
    return pred


def check_transform_matches(spec: dict, schema, source: str) -> None:
    """The transform must have been fitted for this schema (same features, same target)."""
    if spec["schema"] != schema.to_json():
        raise DataError(
            source,
            None,
            "transform was fitted for a different schema than --schema; rerun preprocess",
        )


def evaluate(
    model_dir: Path,
    test_dir: Path,
    transform_dir: Path,
    schema_path: Path,
    problem_type: str,
    output_dir: Path,
    seed: int = 0,
    serving_dir: Path | None = None,
    quality_metric: str | None = None,
    quality_threshold: float | None = None,
) -> dict:
    """Run the step; returns the evaluation report. See the module docstring.

    ``serving_dir``: where the single-container ``model.tar.gz`` goes; None writes none.
    ``quality_metric``/``quality_threshold``: the model's quality gate, written as Model
    Monitor's ``model_quality_constraints.json``; both None writes none.
    Both output directories are written only if the whole step succeeds.
    """
    schema = load_schema(schema_path)
    check_problem_type(schema, problem_type, str(schema_path))
    quality_constraints = _quality_constraints(problem_type, quality_metric, quality_threshold)
    spec = artifacts.load_transform(transform_dir)
    check_transform_matches(spec, schema, str(transform_dir))
    booster = artifacts.load_booster(model_dir)
    frame = rawio.read_raw(test_dir, schema.as_written())  # Preprocess wrote the split
    source = rawio.describe_source(test_dir)
    frame = transform.validate_frame(frame, schema, problem_type, source, check_classes=False)
    y = transform.encode_labels(spec, frame[schema.target_name], source)
    pred = predict_matrix(
        booster, transform.apply_transform(spec, frame), problem_type, str(model_dir)
    )
    report = metrics.model_quality_report(problem_type, y, pred, seed=seed, source=source)
    serving_output = (
        rawio.atomic_output(serving_dir) if serving_dir is not None else contextlib.nullcontext()
    )
    with rawio.atomic_output(output_dir) as staging, serving_output as serving_staging:
        if serving_staging is not None:
            artifacts.write_serving_package(model_dir, spec, serving_staging)
        # allow_nan=False: the condition step's JsonGet cannot read NaN (not JSON); metrics
        # already refused non-finite values, so this only guards against a regression.
        (staging / "evaluation.json").write_text(json.dumps(report, indent=2, allow_nan=False))
        if quality_constraints is not None:
            (staging / "model_quality_constraints.json").write_text(
                model_monitor.dumps(quality_constraints)
            )
        plots = metrics.write_plots(problem_type, y, pred, spec["labels"], staging)
        preds = pd.DataFrame({schema.record_id_column: frame[schema.record_id_column].to_numpy()})
        if pred.ndim == 2:
            for i, label in enumerate(spec["labels"]):
                preds[f"score_{label}"] = pred[:, i]
        else:
            preds["prediction"] = pred
        preds.to_csv(staging / "predictions.csv", index=False, float_format="%.9g")
    section = report[contract.problem(problem_type).report_section]
    LOG.info(
        "evaluation: %s; plots: %s",
        {
            k: round(v["value"], 4)
            for k, v in section.items()
            if isinstance(v, dict) and "value" in v
        },
        plots,
    )
    return report


def _quality_constraints(
    problem_type: str, metric: str | None, threshold: float | None
) -> dict | None:
    """Model Monitor's constraints of the gate, None without one; checked before any work."""
    if metric is None and threshold is None:
        return None
    if metric is None or threshold is None:
        raise DataError(
            "--quality-metric" if metric is None else "--quality-threshold",
            None,
            "missing: --quality-metric and --quality-threshold go together (the quality gate)",
        )
    try:
        return model_monitor.model_quality_constraints(problem_type, metric, threshold)
    except ValueError as err:
        raise DataError("--quality-metric", None, str(err)) from None


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default="/opt/ml/processing/model")
    p.add_argument("--test-dir", default="/opt/ml/processing/test")
    p.add_argument("--transform-dir", default="/opt/ml/processing/transform")
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/schema.json")
    p.add_argument("--problem-type", required=True)
    p.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap for standard_deviation"
    )
    p.add_argument(
        "--serving-dir",
        default=None,
        help="write the single-container model.tar.gz (serve_single.py) here; default: none",
    )
    p.add_argument(
        "--quality-metric",
        default=None,
        help="the quality gate's metric: with --quality-threshold, also write Model Monitor's "
        "model_quality_constraints.json; default: none",
    )
    p.add_argument("--quality-threshold", type=float, default=None)
    args = p.parse_args(argv)
    evaluate(
        Path(args.model_dir),
        Path(args.test_dir),
        Path(args.transform_dir),
        Path(args.schema),
        args.problem_type,
        Path(args.output_dir),
        args.seed,
        Path(args.serving_dir) if args.serving_dir else None,
        args.quality_metric,
        args.quality_threshold,
    )


if __name__ == "__main__":
    sys.exit(run_main(main))

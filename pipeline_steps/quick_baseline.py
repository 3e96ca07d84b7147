"""A quick cross-validated baseline of a model on its raw data, for ``mlops add-model``.

Local tool (not a pipeline step). Runs Preprocess's checks on the data
(``preprocess.check_data``: the schema, every data check, every class in every split),
then k-fold cross-validation on every usable row: in each fold the transform is fitted on
the fold's training rows (``steplib.transform``), the built-in algorithm's hyperparameters
train XGBoost (``train_local.xgboost_params``), and the held-out rows are predicted. The
gate metric is computed as Evaluate computes it (``steplib.metrics.point_metrics``) on each
fold, and on the test splits the pipeline would draw with other seeds
(``steplib.transform.split_indices``), scored with those rows' held-out predictions: how
far the metric of a model this good moves by the luck of the split alone. Prints one JSON
document:

    {"metric": "auc", "folds": [0.991, 0.987, 0.993], "mean": ..., "rows": N,
     "splits": {"count": 200, "test_rows": n, "p01": ..., "p50": ..., "p99": ...},
     "check": {...Preprocess's row counts...}}

Bad data exits with code 2 and Preprocess's message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from evaluate import predict_matrix
from preprocess import TEST_FRACTION, VALIDATION_FRACTION, check_data
from steplib import metrics, transform
from steplib.contract import REGRESSION, gate_metric
from steplib.errors import DataError, run_main
from train_local import xgboost_params


def fold_indices(strata: np.ndarray, problem_type: str, folds: int, seed: int) -> list[np.ndarray]:
    """Seeded fold membership, stratified on the class for classification."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(strata))] if problem_type == REGRESSION else [
        np.flatnonzero(strata == c) for c in np.unique(strata)
    ]  # fmt: skip
    members: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for group in groups:
        shuffled = rng.permutation(group)
        for i, row in enumerate(shuffled):
            members[(offset + i) % folds].append(int(row))
        offset += len(shuffled)
    return [np.sort(np.array(m, dtype=int)) for m in members]


#: Test splits drawn (seeds 0..N-1) to see how the gate metric moves with the split.
SPLITS = 200


def baseline(
    data: Path,
    schema_path: Path,
    problem_type: str,
    hyperparameters: dict,
    metric: str,
    folds: int = 3,
    seed: int = 42,
) -> dict:
    """Cross-validated ``metric`` of the model on ``data`` (see the module docstring)."""
    import xgboost as xgb

    if folds < 2:
        raise DataError("--folds", None, f"got {folds}; cross-validation needs 2 or more")
    gate_metric(problem_type, metric)  # KeyError for a metric the problem type lacks
    checked = check_data(data, schema_path, problem_type, seed)
    schema, source, rows = checked.schema, checked.source, checked.frame
    target = rows[schema.target_name]
    strata = target.astype(str).to_numpy() if problem_type != REGRESSION else target.to_numpy()
    params, rounds, _ = xgboost_params(hyperparameters)
    values = []
    held_out_pred: np.ndarray | None = None
    labels = np.zeros(len(rows))
    for held_out in fold_indices(strata, problem_type, folds, seed):
        train = rows.drop(index=rows.index[held_out])
        test = rows.iloc[held_out]
        spec = transform.fit_transform_spec(train, schema, problem_type)
        dtrain = xgb.DMatrix(
            transform.apply_transform(spec, train),
            label=transform.encode_labels(spec, train[schema.target_name], source),
        )
        booster = xgb.train(params, dtrain, num_boost_round=rounds, verbose_eval=False)
        y = transform.encode_labels(spec, test[schema.target_name], source)
        pred = predict_matrix(booster, transform.apply_transform(spec, test), problem_type, source)
        values.append(float(metrics.point_metrics(problem_type, y, pred)[metric]))
        if held_out_pred is None:
            held_out_pred = np.zeros((len(rows), *pred.shape[1:]))
        held_out_pred[held_out] = pred
        labels[held_out] = y
    assert held_out_pred is not None
    on_splits = []
    for split_seed in range(SPLITS):
        _, _, test_idx = transform.split_indices(
            strata, problem_type, split_seed, VALIDATION_FRACTION, TEST_FRACTION, source
        )
        on_splits.append(
            float(metrics.point_metrics(problem_type, labels[test_idx], held_out_pred[test_idx])[metric])
        )  # fmt: skip
    quantiles = np.quantile(on_splits, [0.01, 0.5, 0.99])
    return {
        "metric": metric,
        "folds": values,
        "mean": float(np.mean(values)),
        "rows": len(rows),
        "splits": {
            "count": SPLITS,
            "test_rows": len(test_idx),
            "p01": float(quantiles[0]),
            "p50": float(quantiles[1]),
            "p99": float(quantiles[2]),
        },
        "check": checked.summary(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the model's raw file or directory")
    p.add_argument("--schema", required=True)
    p.add_argument("--problem-type", required=True)
    p.add_argument("--hyperparameters", required=True, help="JSON object")
    p.add_argument("--metric", required=True, help="the gate metric")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    result = baseline(
        Path(args.data), Path(args.schema), args.problem_type,
        json.loads(args.hyperparameters), args.metric, args.folds, args.seed,
    )  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(run_main(main))

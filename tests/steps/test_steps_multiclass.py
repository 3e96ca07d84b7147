"""Multiclass classification through the same scripts: scikit-learn's bundled wine data set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from steps_helpers import run_script


def test_wine_multiclass_end_to_end(tmp_path):
    from export_sklearn_data import feature_store_name, with_ids
    from sklearn.datasets import load_wine

    ds = load_wine(as_frame=True)
    x = ds.data.rename(columns=feature_store_name)
    y = ds.target.map(dict(enumerate(ds.target_names))).rename("cultivar")
    raw = tmp_path / "raw"
    raw.mkdir()
    # Two files under one prefix, one CSV and one Parquet.
    frame = with_ids(pd.concat([y, x], axis=1), "wn")
    frame.iloc[:100].to_csv(raw / "part-0.csv", index=False)
    frame.iloc[100:].to_parquet(raw / "part-1.parquet", index=False)
    schema = {
        "recordIdColumn": "record_id",
        "eventTimeColumn": "event_time",
        "target": {"name": "cultivar", "type": "categorical", "classes": list(ds.target_names)},
        "features": [{"name": c, "type": "numeric"} for c in x.columns],
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    pt = "multiclass_classification"
    out = tmp_path / "pre"
    steps = [
        ("preprocess.py", "--input-dir", raw, "--schema", tmp_path / "schema.json",
         "--problem-type", pt, "--output-dir", out),
        ("train_local.py", "--train-dir", out / "train", "--validation-dir", out / "validation",
         "--model-dir", tmp_path / "model", "--tarball-dir", tmp_path / "artifact", "--hyperparameters",
         json.dumps({"objective": "multi:softprob", "num_class": "3", "num_round": "50", "max_depth": "3"})),
        ("evaluate.py", "--model-dir", tmp_path / "artifact", "--test-dir", out / "test",
         "--transform-dir", out / "transform", "--schema", tmp_path / "schema.json",
         "--problem-type", pt, "--output-dir", tmp_path / "eval"),
    ]  # fmt: skip
    for script, *args in steps:
        proc = run_script(script, *args)
        assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "eval/evaluation.json").read_text())
    sec = report["multiclass_classification_metrics"]
    assert sec["accuracy"]["value"] >= 0.85
    assert (
        sec["weighted_f1"] == sec["f1"] and "weighted_recall" in sec and "weighted_precision" in sec
    )
    assert len(sec["confusion_matrix"]) == 3
    preds = pd.read_csv(tmp_path / "eval/predictions.csv")
    assert [c for c in preds.columns if c.startswith("score_")] == [
        "score_class_0",
        "score_class_1",
        "score_class_2",
    ]
    np.testing.assert_allclose(preds.filter(like="score_").sum(axis=1), 1.0, rtol=1e-6)

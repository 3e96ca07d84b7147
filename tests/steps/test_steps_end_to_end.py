"""The whole local DAG on the real data sets, and inference/evaluate parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from steps_helpers import REPO


def test_local_run_succeeds_and_prints_summary(local_run):
    proc = local_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "LOCAL RUN SUMMARY" in out and "RESULT: OK" in out
    for step in (
        "1/7 preprocess",
        "2/7 train",
        "3/7 evaluate",
        "4/7 quality gate",
        "5/7 register",
        "6/7 drift check, held-out",
        "7/7 drift check, shifted",
    ):
        assert f"[breast-cancer] {step}" in out and f"[diabetes] {step}" in out


def test_breast_cancer_auc_and_layout(local_run):
    ev = local_run["work"] / "breast-cancer/evaluate/opt/ml/processing/evaluation"
    report = json.loads((ev / "evaluation.json").read_text())
    sec = report["binary_classification_metrics"]
    assert sec["auc"]["value"] >= 0.95
    for k in ("auc", "accuracy", "precision", "recall", "f1"):
        assert isinstance(sec[k]["value"], float) and isinstance(
            sec[k]["standard_deviation"], float
        )
    for png in ("roc_curve.png", "confusion_matrix.png"):
        assert (ev / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_diabetes_regression_metrics_and_gate(local_run):
    ev = local_run["work"] / "diabetes/evaluate/opt/ml/processing/evaluation"
    sec = json.loads((ev / "evaluation.json").read_text())["regression_metrics"]
    assert set(sec) == {"mse", "rmse", "mae", "r2"}
    assert (ev / "residuals.png").read_bytes()[:4] == b"\x89PNG"
    row = next(r for r in local_run["summary"] if r["model"] == "diabetes")
    assert row["gate"]["metric"] == "r2" and row["gate"]["value"] == sec["r2"]["value"]
    assert row["gate"]["passed"] == (sec["r2"]["value"] >= row["gate"]["threshold"])


def test_training_artifact_layout(local_run):
    import tarfile

    for model in ("breast-cancer", "diabetes"):
        with tarfile.open(local_run["work"] / model / "train/opt/ml/output/model.tar.gz") as tar:
            assert tar.getnames() == ["xgboost-model"]
        train = (
            local_run["work"] / model / "preprocess/opt/ml/processing/output/train/train.csv"
        ).read_text()
        assert not train.splitlines()[0][0].isalpha()  # no header, label first


def test_registry_record_has_create_model_package_fields(local_run):
    for row in local_run["summary"]:
        rec = json.loads(Path(row["registered"]).read_text())
        assert rec["ModelPackageGroupName"] == row["model"]
        assert rec["ModelApprovalStatus"] == "PendingManualApproval"
        containers = rec["InferenceSpecification"]["Containers"]
        assert [c["Image"].split(":")[0] for c in containers] == [
            "sagemaker-scikit-learn",
            "sagemaker-xgboost",
        ]
        assert containers[0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
        assert (
            rec["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"
        )


def test_drift_results_as_expected(local_run):
    for row in local_run["summary"]:
        assert row["drift"]["held-out"]["detected"] is False
        assert row["drift"]["shifted"]["detected"] is True
        assert set(row["drift"]["shifted"]["features"]) == set(row["drift"]["shifted"]["shifted"])
        report = json.loads(Path(row["drift"]["shifted"]["report"]).read_text())
        names = {m["MetricName"] for m in report["metrics"]}
        assert {"DriftDetected", "FeaturePSI", "FeaturePValue", "FeatureMissingRate"} <= names


@pytest.mark.parametrize(
    "model,content_type",
    [
        ("breast-cancer", "text/csv"),
        ("breast-cancer", "application/json"),
        ("diabetes", "text/csv"),
        ("diabetes", "application/json"),
    ],
)
def test_inference_reproduces_evaluate_predictions_exactly(local_run, model, content_type):
    """Raw test rows (minus target) through the serving handlers, then the booster as the
    XGBoost container would read the CSV, give evaluate's predictions bit for bit."""
    import inference
    import xgboost as xgb
    from steplib import artifacts

    ev = local_run["work"] / model / "evaluate/opt/ml/processing"
    schema = json.loads((REPO / f"data/schemas/{model}.json").read_text())
    names = [f["name"] for f in schema["features"]]
    raw = pd.read_csv(ev / "test/test.csv", dtype=str, keep_default_na=False)
    if content_type == "text/csv":
        body = raw[names].to_csv(index=False, header=False)
    else:
        body = json.dumps(
            [
                {
                    n: (float(r[n]) if f["type"] == "numeric" else r[n])
                    for n, f in zip(names, schema["features"], strict=False)
                }
                for _, r in raw.iterrows()
            ]
        )
    served = inference.handle(inference.model_fn(str(ev / "transform")), body, content_type)
    assert served.status == 200 and served.content_type == "text/csv"
    matrix = np.loadtxt(served.body.splitlines(), delimiter=",", ndmin=2)
    scores = artifacts.load_booster(ev / "model").predict(xgb.DMatrix(matrix))
    expected = pd.read_csv(ev / "evaluation/predictions.csv")
    assert list(expected[schema["recordIdColumn"]]) == list(raw[schema["recordIdColumn"]])
    assert np.array_equal(
        scores.astype(np.float32), expected["prediction"].to_numpy().astype(np.float32)
    )


def test_inference_malformed_payload_is_400_with_reason(local_run):
    import inference

    model = inference.model_fn(
        str(local_run["work"] / "breast-cancer/evaluate/opt/ml/processing/transform")
    )
    resp = inference.handle(model, "1,2,3\n", "text/csv")
    assert resp.status == 400 and "expected 30 features" in json.loads(resp.body)["error"]
    row = ",".join(["abc"] + ["1"] * 29)
    resp = inference.handle(model, row, "text/csv")
    assert resp.status == 400 and "feature 'mean_radius'" in json.loads(resp.body)["error"]
    resp = inference.handle(model, "1", "application/octet-stream")
    assert resp.status == 400 and "not supported" in json.loads(resp.body)["error"]


def test_transform_artifact_is_a_sklearn_serving_package(local_run, tmp_path):
    import importlib.util
    import tarfile

    tar_path = (
        local_run["work"]
        / "breast-cancer/preprocess/opt/ml/processing/output/transform/model.tar.gz"
    )
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path, filter="data")
    assert (
        "transform.json" in names
        and "code/inference.py" in names
        and "code/steplib/transform.py" in names
    )
    # Load inference.py from the unpacked code/ dir, as the serving container does.
    spec = importlib.util.spec_from_file_location(
        "packaged_inference", tmp_path / "code/inference.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.model_fn(str(tmp_path))
    out = mod.output_fn(
        mod.predict_fn(mod.input_fn(",".join(["15"] * 30), "text/csv"), model), "text/csv"
    )
    assert out.status == 200 and len(out.body.strip().split(",")) == 30

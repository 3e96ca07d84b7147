"""The whole local DAG on the real data sets, and inference/evaluate parity."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from steps_helpers import REPO, job

sys.path.insert(0, str(REPO))  # the layout is the definition builder's (no CDK or SDK in it)
from mlops.pipeline_definition import registered_object_patterns

MODELS = ("breast-cancer", "diabetes")
STEPS_RUN = ["Preprocess", "Train", "Evaluate", "CheckQuality", "RegisterModel"]
#: Models of the default config with a feature group: their records are ingested too.
WITH_FEATURE_GROUP = {"breast-cancer": "dev-breast-cancer-features"}


def steps_run(model: str) -> list[str]:
    if model in WITH_FEATURE_GROUP:
        return ["Preprocess", "IngestFeatures", *STEPS_RUN[1:]]
    return STEPS_RUN


def test_the_ingestion_step_wrote_every_record_into_the_feature_group(local_run):
    summary = json.loads(
        (job(local_run["work"], "breast-cancer", "IngestFeatures")
         / "processing/output/ingestion/summary.json").read_text()
    )  # fmt: skip
    assert summary["feature_group"] == WITH_FEATURE_GROUP["breast-cancer"]
    assert (summary["rows_read"], summary["written"], summary["rejected"]) == (569, 569, 0)
    store = local_run["work"] / "feature-store" / "dev-breast-cancer-features.jsonl"
    lines = store.read_text().splitlines()
    assert len(lines) == 569 and json.loads(lines[0])["diagnosis"] in ("benign", "malignant")


def test_local_run_executes_the_synthesized_definitions(local_run):
    proc = local_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "synthesizing stage dev" in out
    assert "LOCAL RUN SUMMARY" in out and "RESULT: OK" in out
    for model in MODELS:
        steps = steps_run(model)
        for number, step in enumerate(steps, 1):
            assert f"[{model}] {number}. {step}: succeeded" in out, (model, step)
        row = local_run["summary"][model]
        assert row["status"] == "Succeeded" and row["error"] == ""
        assert [s["name"] for s in row["steps"]] == steps


def test_breast_cancer_auc_and_layout(local_run):
    ev = job(local_run["work"], "breast-cancer", "Evaluate") / "processing/evaluation"
    report = json.loads((ev / "evaluation.json").read_text())
    sec = report["binary_classification_metrics"]
    assert sec["auc"]["value"] >= 0.95
    for k in ("auc", "accuracy", "precision", "recall", "f1"):
        assert isinstance(sec[k]["value"], float)
        assert isinstance(sec[k]["standard_deviation"], float)
    for png in ("roc_curve.png", "confusion_matrix.png"):
        assert (ev / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_condition_read_what_evaluate_wrote(local_run):
    """The gate compared the value at the contract's JSON path of the report Evaluate
    wrote, with the model's threshold, in the contract's direction."""
    for model, metric, threshold, relation in (
        ("breast-cancer", "auc", 0.95, ">="),
        ("diabetes", "r2", 0.3, ">="),
    ):
        row = local_run["summary"][model]
        (condition,) = row["conditions"]
        report = row["property_files"]["Evaluate.EvaluationReport"]
        section = next(iter(report.values()))
        assert condition["left"] == section[metric]["value"]
        assert (condition["type"], condition["right"]) == (relation, threshold)
        assert condition["outcome"] is True


def test_diabetes_regression_metrics(local_run):
    ev = job(local_run["work"], "diabetes", "Evaluate") / "processing/evaluation"
    sec = json.loads((ev / "evaluation.json").read_text())["regression_metrics"]
    assert set(sec) == {"mse", "rmse", "mae", "r2"}
    assert (ev / "residuals.png").read_bytes()[:4] == b"\x89PNG"


def test_training_artifact_layout(local_run):
    import tarfile

    for model in MODELS:
        artifact = local_run["work"] / model / "execution/jobs/Train/output/model.tar.gz"
        with tarfile.open(artifact) as tar:
            assert tar.getnames() == ["xgboost-model"]
        train = job(local_run["work"], model, "Preprocess") / "processing/output/train/train.csv"
        assert not train.read_text().splitlines()[0][0].isalpha()  # no header, label first


def test_the_registered_request_is_the_definitions_create_model_package(local_run):
    for model in MODELS:
        row = local_run["summary"][model]
        request = json.loads(Path(row["registered"]).read_text())
        assert request["ModelPackageGroupName"].endswith(f":model-package-group/dev-{model}")
        assert request["ModelApprovalStatus"] == "PendingManualApproval"
        containers = request["InferenceSpecification"]["Containers"]
        assert [c["Image"].rsplit("/", 1)[1].split(":")[0] for c in containers] == [
            "sagemaker-scikit-learn",
            "sagemaker-xgboost",
        ]
        assert containers[0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
        assert all(c["ModelDataUrl"].startswith("s3://") for c in containers)
        quality = request["ModelMetrics"]["ModelQuality"]["Statistics"]
        assert quality["S3Uri"].endswith("/evaluation/evaluation.json")
        baseline = request["ModelMetrics"]["ModelDataQuality"]["Statistics"]
        assert baseline["S3Uri"].endswith("/baseline/statistics.json")
        model_monitor = request["DriftCheckBaselines"]["ModelDataQuality"]
        assert model_monitor["Statistics"]["S3Uri"].endswith(
            "/baseline/model-monitor/statistics.json"
        )
        assert model_monitor["Constraints"]["S3Uri"].endswith(
            "/baseline/model-monitor/constraints.json"
        )
        assert request["CustomerMetadataProperties"]["model_name"] == model
        # Accounts that deploy the model can read every object the version refers to.
        uris = [c["ModelDataUrl"] for c in containers] + [quality["S3Uri"], baseline["S3Uri"]]
        for uri in uris:
            key = uri.split("/", 3)[3]
            assert any(fnmatch.fnmatchcase(key, p) for p in registered_object_patterns()), key


def test_drift_results_as_expected(local_run):
    from steplib import monitoring

    for model in MODELS:
        drift = local_run["summary"][model]["drift"]
        assert drift["as sent"]["detected"] is False
        assert drift["shifted"]["detected"] is True
        assert set(drift["shifted"]["features"]) == set(drift["shifted"]["shifted"])
        report = json.loads(Path(drift["shifted"]["report"]).read_text())
        assert report["no_data"] is False and report["drift_score"] > 0
        names = {m["MetricName"] for m in report["metrics"]}
        assert {
            monitoring.DRIFT_DETECTED,
            monitoring.DRIFT_SCORE,
            monitoring.FEATURE_PSI,
            monitoring.FEATURE_P_VALUE,
            monitoring.FEATURE_MISSING_RATE,
            monitoring.MONITORING_RUNS,
        } <= names


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

    ev = job(local_run["work"], model, "Evaluate") / "processing"
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
        str(job(local_run["work"], "breast-cancer", "Evaluate") / "processing/transform")
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
        job(local_run["work"], "breast-cancer", "Preprocess")
        / "processing/output/transform/model.tar.gz"
    )
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        # Plain members only, inside the archive's root (what filter="data" enforces on
        # Python 3.11.4+; the README's floor, 3.11.0, has no extraction filters).
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())
        assert not any(n.startswith("/") or ".." in Path(n).parts for n in names)
        tar.extractall(tmp_path)
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


def test_a_model_trains_from_the_offline_store_as_of_the_executions_start(local_run, tmp_path):
    """A second local run, breast-cancer with ``trainingData: offlineStore``, on the feature
    store the session's run filled: BuildTrainingSet queries it (the DuckDB rendering of
    the Athena query) as of this execution's start, Preprocess reads that training set, and
    the model passes its gate; the records this run ingests are after its cutoff."""
    import shutil
    import subprocess

    from steps_helpers import CDK_PYTHON

    cdk_json = json.loads((REPO / "cdk.json").read_text())
    (model,) = [m for m in cdk_json["context"]["mlops"]["models"] if m["name"] == "breast-cancer"]
    model["trainingData"] = "offlineStore"
    (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    shutil.copytree(local_run["work"] / "feature-store", tmp_path / "dev" / "feature-store")
    store = tmp_path / "dev" / "feature-store" / "dev-breast-cancer-features.jsonl"
    before = len(store.read_text().splitlines())
    proc = subprocess.run(
        [CDK_PYTHON, "-m", "mlops.local_run", "--cdk-json", tmp_path / "cdk.json",
         "--work-dir", tmp_path, "--steps-python", sys.executable, "--model", "breast-cancer"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = ["BuildTrainingSet", "Preprocess", "IngestFeatures", *STEPS_RUN[1:]]
    for number, step in enumerate(steps, 1):
        assert f"[breast-cancer] {number}. {step}: succeeded" in proc.stdout, step
    built = pd.read_csv(
        job(tmp_path / "dev", "breast-cancer", "BuildTrainingSet")
        / "processing/output/training-set/training-set.csv"
    )
    raw = pd.read_csv(REPO / "data/raw/breast-cancer/breast-cancer.csv")
    assert len(built) == len(raw) == 569 and built["record_id"].is_unique
    assert len(store.read_text().splitlines()) == before + 569  # ingested after the cutoff

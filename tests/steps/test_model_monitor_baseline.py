"""The Model Monitor baseline files preprocess and evaluate write, against Model Monitor's
documented format (model_monitor_format.py), on the project's real data.

The example files under docs/monitoring/baselines/breast-cancer/ are what the steps write
for the default model; ``test_the_documented_examples_are_what_the_steps_write`` fails when
they differ. Regenerate them with
``UPDATE_BASELINE_DOCS=1 .venv-steps/bin/python -m pytest tests/steps/test_model_monitor_baseline.py``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from model_monitor_format import validate
from steplib import contract, model_monitor
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.schema import load_schema, parse_schema_doc
from steps_helpers import BC_RAW, BC_SCHEMA, DIABETES_SCHEMA, REPO, run_preprocess, run_script

DIABETES_RAW = REPO / "data/raw/diabetes"
DOCS = REPO / "docs/monitoring/baselines/breast-cancer"
DOC_FILES = ("statistics.json", "constraints.json", "model_quality_constraints.json")
MONITOR = Path("baseline/model-monitor")


def _default_model() -> dict:
    models = json.loads((REPO / "cdk.json").read_text())["context"]["mlops"]["models"]
    return next(m for m in models if m["name"] == "breast-cancer")


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory) -> dict:
    """The default model's preprocess, train and evaluate, with its config's drift and
    quality-gate settings (what the documented examples are made from)."""
    model = _default_model()
    work = tmp_path_factory.mktemp("breast-cancer")
    prep, trained, evaluation = work / "prep", work / "model", work / "evaluation"
    proc = run_preprocess(
        BC_RAW, prep, "--drift-comparison-threshold", model["drift"]["psiThreshold"]
    )
    assert proc.returncode == 0, proc.stderr
    hp = {"num_round": "10", "objective": "binary:logistic", "max_depth": "3", "eta": "0.3"}
    proc = run_script(
        "train_local.py",
        "--train-dir", prep / "train", "--validation-dir", prep / "validation",
        "--model-dir", trained, "--hyperparameters", json.dumps(hp),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = _evaluate(
        prep, trained, evaluation,
        "--quality-metric", model["qualityGate"]["metric"],
        "--quality-threshold", model["qualityGate"]["threshold"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    files = {
        "statistics.json": prep / MONITOR / "statistics.json",
        "constraints.json": prep / MONITOR / "constraints.json",
        "model_quality_constraints.json": evaluation / "model_quality_constraints.json",
    }
    return {
        "prep": prep,
        "model": trained,
        "files": files,
        "schema": load_schema(BC_SCHEMA),
        "threshold": model["drift"]["psiThreshold"],
    }


def _evaluate(prep: Path, trained: Path, out: Path, *extra: object):
    return run_script(
        "evaluate.py",
        "--model-dir", trained, "--test-dir", prep / "test", "--transform-dir",
        prep / "transform", "--schema", BC_SCHEMA, "--problem-type", BINARY,
        "--output-dir", out, *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory) -> dict:
    """Regression data with a categorical feature (sex), and a PSI threshold of 0.35."""
    prep = tmp_path_factory.mktemp("diabetes") / "prep"
    proc = run_script(
        "preprocess.py",
        "--input-dir", DIABETES_RAW, "--schema", DIABETES_SCHEMA, "--problem-type", REGRESSION,
        "--output-dir", prep, "--drift-comparison-threshold", 0.35,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {"prep": prep, "schema": load_schema(DIABETES_SCHEMA), "threshold": 0.35}


@pytest.fixture(params=["breast_cancer", "diabetes"])
def real(request) -> dict:
    """Each data set's preprocess output: the Model Monitor files, validated, and the
    project's own drift statistics beside them."""
    run = request.getfixturevalue(request.param)
    prep = run["prep"]
    return {
        **run,
        "statistics": validate("statistics", (prep / MONITOR / "statistics.json").read_text()),
        "constraints": validate("constraints", (prep / MONITOR / "constraints.json").read_text()),
        "drift": json.loads((prep / "baseline/statistics.json").read_text()),
    }


# --------------------------------------------------------------------------- real data


def test_feature_names_are_header_less_columns_in_schema_order(real):
    schema = real["schema"]
    for doc in (real["statistics"], real["constraints"]):
        assert [f["name"] for f in doc["features"]] == [
            f"_c{i}" for i in range(len(schema.features))
        ]
    types = [f["inferred_type"] for f in real["statistics"]["features"]]
    for feat, inferred in zip(schema.features, types, strict=True):
        assert inferred in (("Integral", "Fractional") if feat.type == "numeric" else ("String",))
    assert [f["inferred_type"] for f in real["constraints"]["features"]] == types


def test_counts_add_up_and_match_the_projects_own_statistics(real):
    stats, drift = real["statistics"], real["drift"]
    n = stats["dataset"]["item_count"]
    assert n == drift["row_count"] > 0
    for feat, entry in zip(real["schema"].features, stats["features"], strict=True):
        own = drift["features"][feat.name]
        numeric = "numerical_statistics" in entry
        block = entry["numerical_statistics" if numeric else "string_statistics"]
        present = block["common"]["num_present"]
        assert present + block["common"]["num_missing"] == n
        assert math.isclose(block["common"]["num_missing"] / n, own["missing_rate"])
        if numeric:
            kll = block["distribution"]["kll"]
            assert len(kll["buckets"]) == model_monitor.BUCKETS
            assert sum(b["count"] for b in kll["buckets"]) == present
            assert (kll["buckets"][0]["lower_bound"], kll["buckets"][-1]["upper_bound"]) == (
                block["min"],
                block["max"],
            )
            assert (block["min"], block["max"]) == (own["min"], own["max"])
            assert math.isclose(block["mean"], own["mean"]) and math.isclose(
                block["sum"], block["mean"] * present
            )
            assert sum(len(d) << h for h, d in enumerate(kll["sketch"]["data"])) == present
        else:
            buckets = block["distribution"]["categorical"]["buckets"]
            assert {b["value"]: b["count"] for b in buckets} == own["level_counts"]
            assert sum(b["count"] for b in buckets) == present
            assert block["distinct_count"] == len(buckets)


def test_constraints_follow_the_baseline(real):
    stats = {f["name"]: f for f in real["statistics"]["features"]}
    drift = real["drift"]["features"]
    for feat, entry in zip(real["schema"].features, real["constraints"]["features"], strict=True):
        own = drift[feat.name]
        assert math.isclose(entry["completeness"], 1 - own["missing_rate"])
        if feat.type == "numeric":
            assert entry["num_constraints"] == {"is_non_negative": own["min"] >= 0}
            assert "string_constraints" not in entry
        else:
            assert entry["string_constraints"]["domains"] == sorted(own["level_counts"])
            assert stats[entry["name"]]["inferred_type"] == "String"


def test_the_categorical_feature_is_a_string_with_its_levels_as_domain(diabetes):
    constraints = json.loads((diabetes["prep"] / MONITOR / "constraints.json").read_text())
    sex = constraints["features"][diabetes["schema"].feature_names.index("sex")]
    assert sex["inferred_type"] == "String"
    assert sex["string_constraints"]["domains"] == ["1", "2"]


def test_the_drift_threshold_argument_becomes_the_comparison_threshold(real):
    distribution = real["constraints"]["monitoring_config"]["distribution_constraints"]
    assert distribution["comparison_threshold"] == real["threshold"]
    assert distribution["categorical_comparison_threshold"] == real["threshold"]


def test_the_baseline_holds_the_schema_it_was_validated_against(real):
    copy = real["prep"] / "baseline/schema.json"
    assert load_schema(copy) == real["schema"]


def test_a_bad_drift_threshold_fails_before_writing_anything(tmp_path):
    out = tmp_path / "out"
    proc = run_preprocess(BC_RAW, out, "--drift-comparison-threshold", "nan")
    assert proc.returncode == 2
    assert "--drift-comparison-threshold" in proc.stderr and "must be a number >= 0" in proc.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- the format


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("statistics", lambda d: d["features"][0].update(inferred_type="Float")),
        ("statistics", lambda d: d["features"][0]["numerical_statistics"].pop("mean")),
        ("statistics", lambda d: d["dataset"].pop("item_count")),
        ("statistics", lambda d: d["features"][0]["numerical_statistics"]["common"].update(
            num_presnt=1)),
        ("constraints", lambda d: d["features"][0].update(inferred_type="Numeric")),
        ("constraints", lambda d: d["features"][0].pop("completeness")),
        ("constraints", lambda d: d["monitoring_config"]["distribution_constraints"].update(
            categorical_drift_method="PSI")),
        ("constraints", lambda d: d["monitoring_config"]["distribution_constraints"].update(
            comparison_threshold=1.5)),
        ("model_quality_constraints",
         lambda d: d["binary_classification_constraints"]["auc"].update(
             comparison_operator="LessThanOrEqualToThreshold")),
        ("model_quality_constraints",
         lambda d: d["binary_classification_constraints"]["auc"].pop("threshold")),
        ("model_quality_constraints",
         lambda d: d.update(regression_constraints={"rmse": {
             "threshold": 1.0, "comparison_operator": "GreaterThanThreshold"}})),
    ],
)  # fmt: skip
def test_the_schemas_refuse_a_wrong_enum_or_a_missing_field(breast_cancer, kind, change):
    doc = validate(kind, breast_cancer["files"][f"{kind}.json"].read_text())  # as written: valid
    change(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(kind, json.dumps(doc))


def test_nan_or_infinity_is_refused(breast_cancer):
    text = breast_cancer["files"]["statistics.json"].read_text()
    mean = json.loads(text)["features"][0]["numerical_statistics"]["mean"]
    for constant in ("NaN", "Infinity", "-Infinity"):
        broken = text.replace(f'"mean": {json.dumps(mean)}', f'"mean": {constant}', 1)
        assert broken != text
        with pytest.raises(ValueError, match=constant):
            validate("statistics", broken)


def test_nothing_non_finite_can_be_written():
    with pytest.raises(ValueError):
        model_monitor.dumps({"mean": float("nan")})


# --------------------------------------------------------------------------- model quality


@pytest.mark.parametrize("problem_type", contract.PROBLEM_TYPES)
def test_model_quality_constraints_of_every_gate_metric(problem_type):
    spec = contract.problem(problem_type)
    for name, gate in spec.metrics.items():
        threshold = 0.8 if gate.highest is not None else 12.5
        doc = validate(
            "model_quality_constraints",
            model_monitor.dumps(
                model_monitor.model_quality_constraints(problem_type, name, threshold)
            ),
        )
        (constraint,) = doc[f"{problem_type}_constraints"].values()
        # Model Monitor flags ``value <operator> threshold``: exactly when the gate fails.
        assert constraint == {
            "threshold": threshold,
            "comparison_operator": "LessThanThreshold"
            if gate.higher_is_better
            else "GreaterThanThreshold",
        }
        for value in (threshold - 0.1, threshold, threshold + 0.1):
            violated = (
                value < threshold
                if constraint["comparison_operator"] == "LessThanThreshold"
                else value > threshold
            )
            assert violated == (not contract.gate_passes(problem_type, name, value, threshold))


def test_multiclass_short_names_become_model_monitors_weighted_names():
    for short in ("f1", "precision", "recall"):
        doc = model_monitor.model_quality_constraints(MULTICLASS, short, 0.7)
        assert list(doc["multiclass_classification_constraints"]) == [f"weighted_{short}"]


def test_an_unknown_gate_is_refused():
    with pytest.raises(ValueError, match="no such metric"):
        model_monitor.model_quality_constraints(BINARY, "rmse", 1.0)
    with pytest.raises(ValueError, match="never above 1"):
        model_monitor.model_quality_constraints(BINARY, "auc", 1.5)


def test_evaluate_writes_the_gate_next_to_the_report_only_when_given_one(breast_cancer, tmp_path):
    written = breast_cancer["files"]["model_quality_constraints.json"]
    assert (written.parent / "evaluation.json").exists()
    doc = validate("model_quality_constraints", written.read_text())
    gate = _default_model()["qualityGate"]
    assert doc["binary_classification_constraints"] == {
        gate["metric"]: {"threshold": gate["threshold"], "comparison_operator": "LessThanThreshold"}
    }
    prep, trained = breast_cancer["prep"], breast_cancer["model"]
    proc = _evaluate(prep, trained, tmp_path / "plain")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "plain" / "model_quality_constraints.json").exists()
    proc = _evaluate(prep, trained, tmp_path / "half", "--quality-metric", "auc")
    assert proc.returncode == 2 and "go together" in proc.stderr
    proc = _evaluate(
        prep, trained, tmp_path / "wrong", "--quality-metric", "rmse", "--quality-threshold", 1
    )
    assert proc.returncode == 2 and "no such metric" in proc.stderr
    assert not (tmp_path / "half").exists() and not (tmp_path / "wrong").exists()


# --------------------------------------------------------------------------- small frames


def _frame_schema(kinds: dict[str, str]):
    return parse_schema_doc(
        {
            "recordIdColumn": "record_id",
            "eventTimeColumn": "event_time",
            "target": {"name": "label", "type": "categorical", "classes": ["no", "yes"]},
            "features": [{"name": k, "type": t} for k, t in kinds.items()],
        }
    )


def test_types_missing_values_and_constant_columns():
    schema = _frame_schema(
        {"count": "numeric", "ratio": "numeric", "flat": "numeric", "empty": "numeric",
         "colour": "categorical", "never": "categorical"}
    )  # fmt: skip
    frame = pd.DataFrame(
        {
            "count": [1.0, 2.0, np.nan, 4.0],
            "ratio": [0.5, -1.0, 2.0, 3.0],
            "flat": [7.0] * 4,
            "empty": [np.nan] * 4,
            "colour": ["red", None, "blue", "red"],
            "never": [None] * 4,
        }
    )
    stats = validate("statistics", model_monitor.dumps(
        model_monitor.data_quality_statistics(frame, schema)))  # fmt: skip
    constraints = validate("constraints", model_monitor.dumps(
        model_monitor.data_quality_constraints(frame, schema, comparison_threshold=5.0)))  # fmt: skip
    count, ratio, flat, empty, colour, never = stats["features"]
    assert [count["inferred_type"], ratio["inferred_type"]] == ["Integral", "Fractional"]
    assert count["numerical_statistics"]["common"] == {"num_present": 3, "num_missing": 1}
    assert count["numerical_statistics"]["std_dev"] == pytest.approx(np.std([1, 2, 4]))
    buckets = flat["numerical_statistics"]["distribution"]["kll"]["buckets"]
    assert [b["count"] for b in buckets] == [4] + [0] * 9
    assert set(empty["numerical_statistics"]) == {"common"}
    assert colour["string_statistics"]["distribution"]["categorical"]["buckets"] == [
        {"value": "blue", "count": 1},
        {"value": "red", "count": 2},
    ]
    assert never["string_statistics"]["distinct_count"] == 0
    by_name = constraints["features"]
    assert by_name[0]["completeness"] == 0.75
    assert by_name[1]["num_constraints"] == {"is_non_negative": False}
    assert "num_constraints" not in by_name[3] and "string_constraints" not in by_name[5]
    assert by_name[4]["string_constraints"] == {"domains": ["blue", "red"]}
    # Model Monitor's distance lies in [0, 1]: a larger PSI threshold is clipped to 1.
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 1
    with pytest.raises(ValueError, match="must be finite"):
        model_monitor.data_quality_constraints(frame, schema, comparison_threshold=float("nan"))


def test_the_bucket_edges_take_their_upper_bound():
    schema = _frame_schema({"x": "numeric"})
    frame = pd.DataFrame({"x": [0.0, 1.0, 1.0, 2.0, 10.0]})
    (x,) = model_monitor.data_quality_statistics(frame, schema)["features"]
    counts = [b["count"] for b in x["numerical_statistics"]["distribution"]["kll"]["buckets"]]
    assert counts == [3, 1, 0, 0, 0, 0, 0, 0, 0, 1]  # [0, 1], (1, 2], ..., (9, 10]


@pytest.mark.parametrize("n", [1, 2048, 2049, 10_001, 100_000])
def test_the_kll_sketch_weighs_every_value_once_and_keeps_its_quantiles(n):
    values = sorted(np.random.default_rng(n).normal(size=n).tolist())
    sketch = model_monitor.kll_sketch(values)
    data = sketch["data"]
    assert sketch["parameters"] == {"c": 0.64, "k": 2048.0}
    assert all(len(level) <= model_monitor.KLL_K for level in data)
    assert all(level == sorted(level) for level in data)
    weights = [(v, 1 << h) for h, level in enumerate(data) for v in level]
    assert sum(w for _, w in weights) == n
    if n <= model_monitor.KLL_K:
        assert data == [values]
        return
    items = sorted(weights)
    ranks = np.cumsum([w for _, w in items]) / n
    for q in (0.1, 0.5, 0.9):
        estimate = items[int(np.searchsorted(ranks, q))][0]
        assert abs(np.searchsorted(values, estimate) / n - q) < 0.01


def test_rewriting_gives_identical_bytes(tmp_path, breast_cancer):
    frame = pd.read_parquet(breast_cancer["prep"] / "baseline/baseline.parquet")
    for out in ("a", "b"):
        model_monitor.write_baselines(
            tmp_path / out, frame, breast_cancer["schema"], comparison_threshold=0.2
        )
    for name in ("statistics.json", "constraints.json"):
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes()
        assert first == breast_cancer["files"][name].read_bytes()


# --------------------------------------------------------------------------- documented examples


def test_the_documented_examples_are_what_the_steps_write(breast_cancer):
    """docs/monitoring/baselines/breast-cancer/ holds what preprocess and evaluate write for
    the default model. Regenerate with UPDATE_BASELINE_DOCS=1 (see the module docstring)."""
    if os.environ.get("UPDATE_BASELINE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for name in DOC_FILES:
            (DOCS / name).write_bytes(breast_cancer["files"][name].read_bytes())
    for name in DOC_FILES:
        written = breast_cancer["files"][name].read_text()
        assert (DOCS / name).read_text() == written, (
            f"{DOCS / name} is not what the steps write; rerun with UPDATE_BASELINE_DOCS=1"
        )

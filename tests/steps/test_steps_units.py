"""Unit tests of the pure functions of pipeline_steps/steplib on small in-memory frames."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from steplib import drift, metrics, monitoring, payload, rawio, transform
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.errors import DataError
from steplib.schema import parse_schema_doc


def frame(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "event_time": ["2026-01-01T00:00:00Z"] * n,
            "label": ["yes", "no"] * (n // 2),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "colour": ["red", "blue", "red", None] * (n // 4),
        }
    )


# --- schema -----------------------------------------------------------------------------


def test_schema_rejects_every_problem_at_once():
    with pytest.raises(DataError) as err:
        parse_schema_doc(
            {
                "recordIdColumn": "1bad",
                "eventTimeColumn": "t",
                "target": {"name": "y", "type": "text"},
                "features": [
                    {"name": "has space", "type": "numeric"},
                    {"name": "t", "type": "numeric"},
                ],
            }
        )
    msg = err.value.message
    assert "'1bad'" in msg and "target.type" in msg and "'has space'" in msg
    assert "features[1].name: got 't': the same column as eventTimeColumn" in msg


def test_schema_round_trips(small_schema):
    assert parse_schema_doc(small_schema.to_json()) == small_schema
    assert small_schema.numeric_features == ["x1", "x2"] and small_schema.categorical_features == [
        "colour"
    ]


# --- validation -------------------------------------------------------------------------


def test_validate_drops_rows_without_target(small_schema):
    df = frame()
    df.loc[0, "label"] = None
    out = transform.validate_frame(df, small_schema, BINARY, "f.csv")
    assert len(out) == len(df) - 1


def test_validate_duplicate_record_ids_named(small_schema):
    df = frame()
    df.loc[3, "record_id"] = "r1"
    with pytest.raises(DataError) as err:
        transform.validate_frame(df, small_schema, BINARY, "f.csv")
    assert (
        err.value.column == "record_id"
        and "duplicated" in err.value.problem
        and "'r1'" in err.value.problem
    )


def test_validate_all_missing_feature_named(small_schema):
    df = frame()
    df["x2"] = np.nan
    with pytest.raises(DataError) as err:
        transform.validate_frame(df, small_schema, BINARY, "f.csv")
    assert err.value.column == "x2" and "no values" in err.value.problem


def test_validate_rejects_a_class_the_schema_does_not_declare(small_schema):
    df = frame()
    df.loc[5, "label"] = "maybe"
    with pytest.raises(DataError) as err:
        transform.validate_frame(df, small_schema, BINARY, "f.csv")
    assert err.value.column == "label"
    assert "data row 6 has class 'maybe', which the schema does not declare" in err.value.problem


def test_validate_rejects_a_declared_class_without_rows(small_schema):
    df = frame()
    df["label"] = "yes"
    with pytest.raises(DataError, match=r"the schema's classes \['no'\] have no rows"):
        transform.validate_frame(df, small_schema, BINARY, "f.csv")
    # Evaluation data may lack a class.
    assert len(transform.validate_frame(df, small_schema, BINARY, "f.csv", check_classes=False))


# --- transform --------------------------------------------------------------------------


def test_transform_imputes_and_one_hot_encodes(small_schema):
    train = frame()
    train.loc[0, "x1"] = np.nan
    spec = transform.fit_transform_spec(train, small_schema, BINARY)
    assert spec["outputColumns"] == ["x1", "x2", "colour=blue", "colour=red"]
    assert spec["categorical"]["colour"]["impute"] == "red"  # most frequent
    assert spec["labels"] == ["no", "yes"]
    new = pd.DataFrame({"x1": [np.nan, 1.5], "x2": [0.0, 2.0], "colour": [None, "green"]})
    m = transform.apply_transform(spec, new)
    assert m[0, 0] == pytest.approx(np.nanmedian(train["x1"]))
    assert list(m[0, 2:]) == [0.0, 1.0]  # missing -> most frequent level
    assert list(m[1, 2:]) == [0.0, 0.0]  # unseen level -> all zeros
    assert json.loads(json.dumps(spec)) == spec  # JSON, not a pickle


def test_encode_labels_rejects_unseen_class(small_schema):
    spec = transform.fit_transform_spec(frame(), small_schema, BINARY)
    assert list(transform.encode_labels(spec, pd.Series(["no", "yes"]), "t.csv")) == [0.0, 1.0]
    with pytest.raises(DataError) as err:
        transform.encode_labels(spec, pd.Series(["no", "maybe"]), "t.csv")
    assert err.value.column == "label"
    assert "'maybe' is not one of the model's classes ['no', 'yes']" in err.value.problem


def test_labels_follow_the_schema_order_not_the_data(small_schema):
    reordered = parse_schema_doc(
        {
            **small_schema.to_json(),
            "target": {"name": "label", "type": "categorical", "classes": ["yes", "no"]},
        }
    )
    spec = transform.fit_transform_spec(frame(), reordered, BINARY)
    assert spec["labels"] == ["yes", "no"]  # the second declared class is the positive one


def test_split_is_seeded_disjoint_and_stratified():
    y = np.array(["a"] * 70 + ["b"] * 30)
    tr, va, te = transform.split_indices(y, BINARY, 7, 0.15, 0.15)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    assert (y[te] == "b").sum() in (4, 5) and (y[tr] == "b").mean() == pytest.approx(0.3, abs=0.02)
    again = transform.split_indices(y, BINARY, 7, 0.15, 0.15)
    assert all((a == b).all() for a, b in zip((tr, va, te), again, strict=False))


def test_split_rejects_bad_fractions():
    with pytest.raises(DataError, match="fractions"):
        transform.split_indices(np.zeros(10), REGRESSION, 0, 0.6, 0.5)


# --- raw io -----------------------------------------------------------------------------


def test_reads_csv_and_parquet_prefix(tmp_path, small_schema):
    df = frame()
    (tmp_path / "part").mkdir()
    df.iloc[:6].to_csv(tmp_path / "part" / "a.csv", index=False)
    df.iloc[6:].to_parquet(tmp_path / "part" / "b.parquet", index=False)
    (tmp_path / "part" / "_SUCCESS").write_text("")
    out = rawio.read_raw(tmp_path / "part", small_schema)
    assert len(out) == 12 and out["x1"].dtype == np.float64
    assert out["colour"].isna().sum() == 3


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), rawio.atomic_output(target) as staging:
        (staging / "half.csv").write_text("x")
        raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_matrix_csv_round_trips_exactly(tmp_path):
    m = np.random.default_rng(1).normal(size=(50, 4)) * 1e3
    rawio.write_matrix_csv(tmp_path / "m.csv", m)
    assert np.array_equal(rawio.read_matrix_csv(tmp_path / "m.csv"), m)


# --- drift statistics -------------------------------------------------------------------


def test_psi_zero_for_identical_and_positive_for_shift():
    e = np.array([0.25, 0.25, 0.25, 0.25])
    assert drift.psi(e, e) == 0.0
    assert drift.psi(e, np.array([0.1, 0.2, 0.3, 0.4])) == pytest.approx(0.2282, abs=1e-3)
    assert np.isfinite(drift.psi(e, np.array([0.0, 0.0, 0.5, 0.5])))


def test_bin_edges_collapse_ties():
    values = np.array([0.0] * 50 + list(np.arange(1, 51, dtype=float)))
    edges = drift.numeric_bin_edges(values)
    assert edges == sorted(set(edges)) and len(edges) < 9
    assert drift.bin_proportions(values, edges).sum() == pytest.approx(1.0)


def test_feature_report_flags_missing_rate_and_type_errors(small_schema):
    base = frame(40)
    st = drift.baseline_statistics(base, small_schema)
    window = base.copy()
    window.loc[:20, "x1"] = np.nan
    rep = drift.drift_report(st, base, window, {"x2": 3}, small_schema, drift.DriftThresholds())
    assert rep["features"]["x1"]["drift"] and "missing rate" in rep["features"]["x1"]["reasons"][0]
    assert rep["features"]["x2"]["drift"] and "wrong type" in rep["features"]["x2"]["reasons"][0]
    assert not rep["features"]["colour"]["drift"]


def test_categorical_drift_uses_chi_square_and_pools_unseen_levels():
    entry = {"type": "categorical", "missing_rate": 0.0, "level_counts": {"a": 500, "b": 500}}
    same = drift.categorical_drift(entry, pd.Series(["a", "b"] * 100))
    assert same["psi"] == pytest.approx(0.0, abs=1e-6) and same["chi2_p_value"] > 0.5
    moved = drift.categorical_drift(entry, pd.Series(["a"] * 150 + ["z"] * 50))
    assert (
        moved["psi"] > 0.2 and moved["chi2_p_value"] < 1e-6 and moved["unseen_level_rate"] == 0.25
    )


def test_drift_metrics_shape(small_schema):
    base = frame(40)
    rep = drift.drift_report(
        drift.baseline_statistics(base, small_schema),
        base,
        base,
        {},
        small_schema,
        drift.DriftThresholds(),
    )
    ms = monitoring.drift_metrics(rep, "dev", "m", monitoring.ENDPOINT_SOURCE)
    by_name = {m["MetricName"]: m for m in ms if len(m["Dimensions"]) == 3}
    assert by_name[monitoring.DRIFT_DETECTED]["Value"] == 0.0
    assert by_name[monitoring.NO_DATA]["Value"] == 0.0
    assert by_name[monitoring.ROWS_CHECKED]["Value"] == 40.0
    assert all(set(m) == {"MetricName", "Dimensions", "Value", "Unit"} for m in ms)
    assert {d["Name"] for m in ms for d in m["Dimensions"]} == {
        monitoring.STAGE,
        monitoring.MODEL,
        monitoring.SOURCE,
        monitoring.FEATURE,
    }


# --- metrics and gate ---------------------------------------------------------------------


def test_model_quality_layout_binary():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1] * 5, dtype=float)
    score = np.clip(y * 0.7 + np.linspace(0, 0.3, 40), 0, 1)
    rep = metrics.model_quality_report(BINARY, y, score)
    sec = rep["binary_classification_metrics"]
    for k in ("auc", "accuracy", "precision", "recall", "f1"):
        assert set(sec[k]) == {"value", "standard_deviation"}
    assert sec["auc"]["value"] == 1.0
    assert sum(sum(r.values()) for r in sec["confusion_matrix"].values()) == 40


def test_model_quality_layout_regression_and_multiclass():
    y = np.arange(20, dtype=float)
    sec = metrics.model_quality_report(REGRESSION, y, y + 1)["regression_metrics"]
    assert (
        sec["mae"]["value"] == 1.0
        and sec["rmse"]["value"] == 1.0
        and set(sec) == {"mse", "rmse", "mae", "r2"}
    )
    proba = np.eye(3)[np.arange(30) % 3]
    sec = metrics.model_quality_report(MULTICLASS, (np.arange(30) % 3).astype(float), proba)
    assert sec["multiclass_classification_metrics"]["accuracy"]["value"] == 1.0


def test_gate_direction():
    rep = {
        "regression_metrics": {
            "rmse": {"value": 3.0, "standard_deviation": 0},
            "r2": {"value": 0.5, "standard_deviation": 0},
        }
    }
    assert metrics.gate_decision(rep, REGRESSION, "rmse", 4.0)["passed"]
    assert not metrics.gate_decision(rep, REGRESSION, "rmse", 2.0)["passed"]
    assert (
        metrics.gate_decision(rep, REGRESSION, "r2", 0.4)["json_path"]
        == "regression_metrics.r2.value"
    )


# --- payloads and capture ---------------------------------------------------------------------


def test_csv_payload_with_and_without_header(small_schema):
    a = payload.parse_payload("1.5,2,red\n,3,\n", "text/csv", small_schema)
    b = payload.parse_payload(
        b"x1,x2,colour\n1.5,2,red\n,3,\n", "text/csv; charset=utf-8", small_schema
    )
    assert a.equals(b)
    typed, bad = payload.coerce_features(a, small_schema)
    assert bad == {} and np.isnan(typed.loc[1, "x1"]) and typed.loc[1, "colour"] is None


def test_json_payload_forms(small_schema):
    rec = {"x1": 1, "x2": None, "colour": "red"}
    one = payload.parse_payload(json.dumps(rec), "application/json", small_schema)
    many = payload.parse_payload(
        json.dumps({"instances": [rec, rec]}), "application/json", small_schema
    )
    assert len(one) == 1 and len(many) == 2


@pytest.mark.parametrize(
    "body,ctype,needle",
    [
        ("1,2\n", "text/csv", "has 2 fields; expected 3"),
        ("1,2,red,yes\n", "text/csv", "is the target column included"),
        ('{"x1": 1, "colour": "red"}', "application/json", "missing features ['x2']"),
        (
            '{"x1": 1, "x2": 2, "colour": "r", "label": "y"}',
            "application/json",
            "unknown fields ['label']",
        ),
        ("{not json", "application/json", "not valid JSON"),
        (b"\xff\xfe", "text/csv", "not valid UTF-8"),
        ("1,2,red", "application/x-npy", "not supported"),
        ("  ", "text/csv", "empty"),
    ],
)
def test_malformed_payloads_say_what_is_wrong(small_schema, body, ctype, needle):
    with pytest.raises(payload.PayloadError) as err:
        payload.parse_payload(body, ctype, small_schema)
    assert needle in str(err.value)


def test_capture_reader_handles_base64_and_names_bad_lines(tmp_path, small_schema):
    good = payload.capture_record("1,2,red", "text/csv", "0.9", "e1", "2026-01-01T00:00:00Z")
    b64 = payload.capture_record("", "text/csv", "0.1", "e2", "2026-01-01T00:00:01Z")
    b64["captureData"]["endpointInput"].update(
        data=base64.b64encode(b"3,abc,blue").decode(), encoding="BASE64"
    )
    (tmp_path / "a.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(b64) + "\n")
    frame_, type_errors, records = payload.read_capture(tmp_path, small_schema)
    assert records == 2 and len(frame_) == 2 and type_errors == {"x2": 1}
    (tmp_path / "b.jsonl").write_text(json.dumps(good) + "\n{truncated\n")
    with pytest.raises(DataError) as err:
        payload.read_capture(tmp_path, small_schema)
    assert err.value.file.endswith("b.jsonl:2") and "malformed capture line" in err.value.problem


# --- training hyperparameters -------------------------------------------------------------------


def test_builtin_hyperparameters_map_to_xgboost_train():
    import train_local

    params, rounds, esr = train_local.xgboost_params(
        {
            "objective": "binary:logistic",
            "num_round": "50",
            "eta": "0.1",
            "max_depth": 3,
            "eval_metric": "auc,logloss",
        }
    )
    assert rounds == 50 and esr is None and params["eta"] == 0.1 and params["max_depth"] == 3
    assert params["eval_metric"] == ["auc", "logloss"] and "num_round" not in params
    with pytest.raises(DataError, match="num_round"):
        train_local.xgboost_params({"objective": "reg:squarederror"})


def test_atomic_output_keeps_existing_output_directories(tmp_path):
    """SageMaker creates each output's directory up front; it must survive the final move."""
    out = tmp_path / "output"
    (out / "train").mkdir(parents=True)
    (out / "train" / "stale.csv").write_text("old")
    inode = (out / "train").stat().st_ino
    with rawio.atomic_output(out) as staging:
        (staging / "train").mkdir()
        (staging / "train" / "train.csv").write_text("new")
        (staging / "test").mkdir()
        (staging / "test" / "test.csv").write_text("t")
    assert (out / "train").stat().st_ino == inode
    assert sorted(p.name for p in (out / "train").iterdir()) == ["train.csv"]
    assert (out / "test" / "test.csv").read_text() == "t"

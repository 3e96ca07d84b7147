"""Data as users bring it: source column names, derived ids and times, and ``mlops add-model``
with the real step scripts (profile_data.py, quick_baseline.py, preprocess --check-only).

The session's one local-run (conftest.py) includes scikit-learn's wine data added by
``mlops add-model``: its test here checks that model end to end, through the synthesized
pipeline definition.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from steplib import rawio
from steplib.contract import ROW_HASH
from steplib.errors import DataError
from steplib.schema import parse_schema_doc
from steps_helpers import CDK_PYTHON, REPO, STEPS

SCHEMA = {
    "recordIdColumn": "record_id",
    "eventTimeColumn": "event_time",
    "target": {"name": "class_label", "type": "categorical", "classes": ["a", "b"]},
    "features": [
        {"name": "od280_od315", "type": "numeric"},
        {"name": "colour", "type": "categorical"},
    ],
    "sourceColumns": {"od280_od315": "od280/od315", "class_label": "class label"},
    "derived": {"recordId": ROW_HASH, "eventTime": "2026-01-01T00:00:00Z"},
}
FRAME = pd.DataFrame(
    {
        "od280/od315": [1.5, 2.0, 1.5, None],
        "colour": ["red", "blue", "red", "blue"],
        "class label": ["a", "b", "b", "a"],
    }
)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(STEPS / script), *map(str, args)], capture_output=True, text=True
    )


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_source_names_are_read_under_the_schemas_names_with_derived_columns(tmp_path, kind):
    path = tmp_path / f"data.{kind}"
    FRAME.to_csv(path, index=False) if kind == "csv" else FRAME.to_parquet(path, index=False)
    schema = parse_schema_doc(SCHEMA)
    frame = rawio.read_raw(path, schema)
    assert list(frame.columns) == [
        "record_id",
        "event_time",
        "class_label",
        "od280_od315",
        "colour",
    ]
    assert list(frame["class_label"]) == ["a", "b", "b", "a"]
    assert set(frame["event_time"]) == {"2026-01-01T00:00:00Z"}
    ids = list(frame["record_id"])
    # Rows 1 and 3 have the same features: the second copy is numbered; ids are 32 hex digits.
    assert ids[2] == ids[0] + "-2" and len(set(ids)) == 4
    # Pinned: the ids are the record identifiers of stored features; a change of the rule
    # would re-identify every row. sha256("2" U+001F "blue"), first 32 hex digits.
    assert ids[1] == "10922a62437af6e29e3c90cce2aed83a"


def test_derived_ids_are_the_same_from_csv_and_parquet(tmp_path):
    csv, parquet = tmp_path / "a.csv", tmp_path / "a.parquet"
    FRAME.to_csv(csv, index=False)
    FRAME.to_parquet(parquet, index=False)
    schema = parse_schema_doc(SCHEMA)
    assert list(rawio.read_raw(csv, schema)["record_id"]) == list(
        rawio.read_raw(parquet, schema)["record_id"]
    )


def test_a_missing_source_column_is_named_as_the_data_names_it(tmp_path):
    path = tmp_path / "data.csv"
    FRAME.drop(columns=["od280/od315"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'od280/od315'.*missing from the header"):
        rawio.read_raw(path, parse_schema_doc(SCHEMA))


def test_files_the_platform_wrote_are_read_with_the_schemas_names(tmp_path):
    schema = parse_schema_doc(SCHEMA)
    frame = rawio.read_raw(_write(tmp_path / "raw.csv"), schema)
    written = tmp_path / "test.csv"
    frame.to_csv(written, index=False)
    again = rawio.read_raw(written, schema.as_written())
    assert again["record_id"].tolist() == frame["record_id"].tolist()


def _write(path):
    FRAME.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- the tools


def test_preprocess_check_only_checks_and_writes_nothing(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    rows = pd.concat([FRAME.fillna(1.0)] * 10, ignore_index=True)
    rows["od280/od315"] = np.arange(len(rows), dtype=float)
    rows.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "out"
    done = _run("preprocess.py", "--check-only", "--input-dir", tmp_path / "data.csv",
                "--schema", schema, "--problem-type", "binary_classification",
                "--output-dir", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows_used"] == 40 and summary["test_rows"] == 6 and not out.exists()
    rows.iloc[:1].to_csv(tmp_path / "one.csv", index=False)  # one class: no split
    done = _run("preprocess.py", "--check-only", "--input-dir", tmp_path / "one.csv",
                "--schema", schema, "--problem-type", "binary_classification")  # fmt: skip
    assert done.returncode == 2 and "ERROR: " in done.stderr and "Traceback" not in done.stderr


def test_profile_reads_text_as_written_and_parquet_as_stored(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text(
        "n,word,when\n1,x,2026-01-01T00:00:00Z\n2.5,,2026-01-02T00:00:00Z\n7,y,2026-01-03T10:00:00Z\n"
    )
    done = _run("profile_data.py", "--data", csv)
    assert done.returncode == 0, done.stderr
    cols = {c["name"]: c for c in json.loads(done.stdout)["columns"]}
    assert cols["n"]["numbers"] == {"parsed": 3, "integers": 2, "first_text": None}
    assert cols["word"]["missing"] == 1 and cols["word"]["numbers"]["first_text"] == [1, "x"]
    assert cols["when"]["iso_times"] and cols["when"]["unique"]
    table = pa.table({"n": [1, 2, None], "flag": [True, False, True], "s": ["1", "2", "3"]})
    pq.write_table(table, tmp_path / "d.parquet")
    cols = {
        c["name"]: c
        for c in json.loads(_run("profile_data.py", "--data", tmp_path / "d.parquet").stdout)[
            "columns"
        ]
    }
    assert (cols["n"]["storage"], cols["n"]["missing"]) == ("number", 1)
    assert cols["flag"]["storage"] == "bool" and cols["s"]["storage"] == "text"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"a,b\n", "no data rows"), (b"a;b;c\n1;2;3\n", "semicolon")],
)
def test_profile_names_bad_files(tmp_path, content, message):
    (tmp_path / "d.csv").write_bytes(content)
    done = _run("profile_data.py", "--data", tmp_path / "d.csv")
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_profile_refuses_files_with_different_columns(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n1,2\n")
    done = _run("profile_data.py", "--data", tmp_path)
    assert done.returncode == 2 and "differ from a.csv" in done.stderr


def test_quick_baseline_is_seeded_and_reports_the_test_split_spread(tmp_path):
    from export_sklearn_data import export_raw

    export_raw("iris", tmp_path / "iris.csv")
    schema = {
        "recordIdColumn": "record_id", "eventTimeColumn": "event_time",
        "target": {"name": "target", "type": "categorical", "classes": ["0", "1", "2"]},
        "features": [{"name": f"f{i}", "type": "numeric"} for i in range(4)],
        "sourceColumns": {f"f{i}": c for i, c in enumerate(
            ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"])},
        "derived": {"recordId": ROW_HASH, "eventTime": "2026-01-01T00:00:00Z"},
    }  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps(schema))
    args = ["--data", tmp_path / "iris.csv", "--schema", tmp_path / "s.json",
            "--problem-type", "multiclass_classification", "--metric", "weighted_f1",
            "--hyperparameters", json.dumps({"objective": "multi:softprob", "num_class": 3,
                                             "num_round": 20, "max_depth": 3})]  # fmt: skip
    first, second = (json.loads(_run("quick_baseline.py", *args).stdout) for _ in range(2))
    assert first == second and len(first["folds"]) == 3 and first["rows"] == 150
    splits = first["splits"]
    assert splits["test_rows"] == 24 and splits["p01"] <= splits["p50"] <= splits["p99"] <= 1
    assert 0.85 < first["mean"] <= 1.0


# --------------------------------------------------------------------------- add-model


def test_add_model_on_wine_writes_a_schema_that_maps_and_derives(local_run):
    added, project = local_run["added"], local_run["project"]
    schema = json.loads((project / "data/schemas/wine.json").read_text())
    assert schema["sourceColumns"] == {
        "od280_od315_of_diluted_wines": "od280/od315_of_diluted_wines"
    }
    assert schema["derived"] == {"recordId": ROW_HASH, "eventTime": "2026-01-01T00:00:00Z"}
    assert schema["target"] == {"name": "target", "type": "categorical", "classes": ["0", "1", "2"]}
    entry = json.loads((project / "cdk.json").read_text())["context"]["mlops"]["models"][-1]
    assert entry["hyperparameters"]["num_class"] == 3
    assert entry["qualityGate"]["metric"] == "weighted_f1"
    assert 0.5 < entry["qualityGate"]["threshold"] < 1
    assert (project / "data/raw/wine/wine.csv").exists()
    assert "make local-run LOCAL_RUN_ARGS='--model wine'" in added.stdout


def test_the_added_model_passes_its_own_gate_in_local_run(local_run):
    row = local_run["summary"]["wine"]
    assert row["status"] == "Succeeded" and row["error"] == "", row
    assert [s["name"] for s in row["steps"]][-1] == "RegisterModel"
    assert row["gate"].endswith("PASS"), row["gate"]
    assert all(d["detected"] == d["expected"] for d in row["drift"].values())


def test_check_runs_preprocess_checks_on_every_models_local_data(local_run):
    done = subprocess.run(
        [CDK_PYTHON, "-m", "mlops.cli", "--project-root", local_run["project"],
         "--steps-python", sys.executable, "check"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wine           ok    178 rows" in done.stdout
    assert "breast-cancer  ok    569 rows" in done.stdout

"""quality_check.py: captured predictions joined with ground-truth labels, scored as Evaluate
scores, reported with the monitoring metrics.

Each problem type trains a small booster on real data (breast cancer, wine, diabetes),
serves the test split through the version's two containers as ``serve_local`` does (the
transform, then the booster), and writes what data capture records: the request, and the
built-in XGBoost container's CSV answer (``",".join(map(str, scores.tolist()))``).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from steplib import contract, metrics, monitoring
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.payload import capture_record
from steps_helpers import (
    BC_RAW,
    BC_SCHEMA,
    DIABETES_RAW,
    DIABETES_SCHEMA,
    run_script,
    train_small_model,
)

CSV, JSON = "text/csv", "application/json"
STAGE, MODEL = "staging", "quality-model"


def _wine_schema(work: Path) -> tuple[Path, Path]:
    from export_sklearn_data import feature_store_name, with_ids
    from sklearn.datasets import load_wine

    ds = load_wine(as_frame=True)
    x = ds.data.rename(columns=feature_store_name)
    y = ds.target.map(dict(enumerate(ds.target_names))).rename("cultivar")
    raw = work / "raw"
    raw.mkdir()
    with_ids(pd.concat([y, x], axis=1), "wn").to_csv(raw / "wine.csv", index=False)
    schema = {
        "recordIdColumn": "record_id",
        "eventTimeColumn": "event_time",
        "target": {"name": "cultivar", "type": "categorical", "classes": list(ds.target_names)},
        "features": [{"name": c, "type": "numeric"} for c in x.columns],
    }
    (work / "schema.json").write_text(json.dumps(schema))
    return raw, work / "schema.json"


class Served:
    """A trained version of one problem type and its test rows, scored by its containers."""

    def __init__(self, work: Path, problem_type: str) -> None:
        import serve_local

        if problem_type == BINARY:
            raw, schema, extra = BC_RAW, BC_SCHEMA, {}
        elif problem_type == MULTICLASS:
            (raw, schema), extra = _wine_schema(work), {"num_class": "3"}
        else:
            raw, schema, extra = DIABETES_RAW, DIABETES_SCHEMA, {}
        prep = train_small_model(work, raw, schema, problem_type, extra)
        self.problem_type = problem_type
        self.schema_path = Path(schema)
        self.schema = json.loads(self.schema_path.read_text())
        self.names = [f["name"] for f in self.schema["features"]]
        self.classes = self.schema["target"].get("classes", [])
        self.target = self.schema["target"]["name"]
        self.rows = pd.read_csv(prep / "test/test.csv", dtype=str, keep_default_na=False)
        self.endpoint = serve_local.LocalEndpoint(prep / "transform", work / "artifact")
        self.work = work

    def answer(self, body: str, content_type: str) -> tuple[str, np.ndarray]:
        """The pipeline's response to a request (container 2's CSV) and its scores."""
        response = self.endpoint.transform(body, content_type)
        assert response.status == 200, response.body
        scores = self.endpoint.score(response.body)
        return ",".join(map(str, scores.tolist())), np.asarray(scores.tolist(), dtype=np.float64)

    def body(self, rows: pd.DataFrame, content_type: str) -> str:
        """A request body of ``rows``' features (CSV lines, or a JSON list; blank -> null)."""
        if content_type == CSV:
            return rows[self.names].to_csv(index=False, header=False)
        numeric = {f["name"] for f in self.schema["features"] if f["type"] == "numeric"}

        def value(name: str, text: str):
            if text == "":
                return None
            return float(text) if name in numeric else text

        records = [{n: value(n, r[n]) for n in self.names} for _, r in rows.iterrows()]
        return json.dumps(records[0] if len(records) == 1 else records)

    def label_index(self, text: str) -> float:
        return float(self.classes.index(text)) if self.classes else float(text)


@pytest.fixture(scope="module", params=[BINARY, MULTICLASS, REGRESSION])
def served(request, tmp_path_factory):
    return Served(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return Served(tmp_path_factory.mktemp("binary-only"), BINARY)


def record(served: Served, rows: pd.DataFrame, content_type: str, event_id: str,
           inference_id: str | None = None) -> tuple[dict, np.ndarray]:  # fmt: skip
    """One capture record of a request of ``rows``, and the scores it answered."""
    body = served.body(rows, content_type)
    answer, scores = served.answer(body, content_type)
    rec = capture_record(body.strip(), content_type, answer, event_id, "2026-02-01T00:00:00Z")
    if inference_id is not None:
        rec["eventMetadata"]["inferenceId"] = inference_id
    return rec, scores


def label(event_id: str, data: str, encoding: str = "CSV") -> dict:
    """A ground-truth record in Model Monitor's layout."""
    return {
        "groundTruthData": {"data": data, "encoding": encoding},
        "eventMetadata": {"eventId": event_id},
        "eventVersion": "0",
    }


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_check(served: Served, tmp_path: Path, *extra: object, schema: bool = True):
    out = tmp_path / "out"
    args = [
        "--baseline-dir", tmp_path / "baseline", "--capture-dir", tmp_path / "capture",
        "--ground-truth-dir", tmp_path / "ground-truth", "--output-dir", out,
        "--problem-type", served.problem_type, "--model-name", MODEL, "--stage", STAGE,
        "--capture-source", monitoring.ENDPOINT_SOURCE, *extra,
    ]  # fmt: skip
    if schema:
        args += ["--schema", served.schema_path]
    proc = run_script("quality_check.py", *args)
    report_path = out / "quality_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return proc, report


def assert_metric_entries(report: dict, source: str = monitoring.ENDPOINT_SOURCE) -> None:
    """Every entry is one monitoring.py builds, with the run's dimension values."""
    entries = report["metrics"]
    assert entries == monitoring.quality_metrics(report, STAGE, MODEL, source)
    base = (monitoring.STAGE, monitoring.MODEL, monitoring.SOURCE)
    allowed = {
        (monitoring.QUALITY_NO_DATA, base),
        (monitoring.LABELED_ROWS, base),
        (monitoring.MODEL_QUALITY, (*base, monitoring.QUALITY_METRIC)),
    }
    assert monitoring.metric_names(entries) <= allowed
    for entry in entries:
        dims = {d["Name"]: d["Value"] for d in entry["Dimensions"]}
        assert (dims[monitoring.STAGE], dims[monitoring.MODEL], dims[monitoring.SOURCE]) == (
            STAGE,
            MODEL,
            source,
        )
        assert set(entry) == {"MetricName", "Dimensions", "Value", "Unit"}


def by_name(report: dict) -> dict:
    """(metric name, QualityMetric or None) -> value of the report's entries."""
    out = {}
    for entry in report["metrics"]:
        dims = {d["Name"]: d["Value"] for d in entry["Dimensions"]}
        out[(entry["MetricName"], dims.get(monitoring.QUALITY_METRIC))] = entry["Value"]
    return out


# --------------------------------------------------------------------------- metrics


def test_metrics_are_evaluates_on_the_labelled_rows(served, tmp_path):
    """Single-row and multi-row requests, CSV and JSON, keyed by inferenceId or eventId;
    labels for most rows (as the class, or its index), some for rows never captured."""
    rows = served.rows
    captured, scores, keys = [], [], []
    i, n = 0, 0
    while i < len(rows):
        size = (1, 3, 1, 2)[n % 4]
        part = rows.iloc[i : i + size]
        content_type = (CSV, JSON)[n % 2] if size == 1 else (CSV, JSON)[(n // 4) % 2]
        inference_id = f"inf-{n}" if n % 3 == 0 else None
        rec, s = record(served, part, content_type, f"evt-{n}", inference_id)
        captured.append(rec)
        base = inference_id or f"evt-{n}"
        ids = [base] if len(part) == 1 else [f"{base}:{j}" for j in range(len(part))]
        scores.extend(s)
        keys.extend(ids)
        i, n = i + size, n + 1
    # Captures in two files (and a nested prefix), as the window manifest delivers them.
    half = len(captured) // 2
    write_jsonl(tmp_path / "capture/2026/02/01/00/a.jsonl", captured[:half])
    write_jsonl(tmp_path / "capture/2026/02/01/01/b.jsonl", captured[half:])
    truth = rows[served.target].tolist()
    labelled = [j for j in range(len(keys)) if j % 5 != 4]  # every fifth row unlabelled
    labels = []
    for j in labelled:
        text = truth[j]
        if served.classes and j % 2:  # the class index, as Model Monitor users write it
            text = str(served.classes.index(text))
        labels.append(label(keys[j], text))
    labels += [label("never-captured-1", truth[0]), label("never-captured-2", truth[1])]
    write_jsonl(tmp_path / "ground-truth/2026/02/01/03/labels.jsonl", labels)
    (tmp_path / "baseline").mkdir()

    proc, report = run_check(served, tmp_path, "--window-end", "2026-02-01T04:00:00Z")

    assert proc.returncode == 0, proc.stderr
    assert (report["window_start"], report["window_end"]) == (None, "2026-02-01T04:00:00Z")
    y = np.asarray([served.label_index(truth[j]) for j in labelled])
    pred = np.asarray([scores[j] for j in labelled], dtype=np.float64)
    expected = metrics.point_metrics(served.problem_type, y, pred)
    assert list(report["quality"]) == list(contract.problem(served.problem_type).metrics)
    assert report["quality"] == pytest.approx(expected, rel=1e-12)
    assert report["capture_record_count"] == len(captured)
    assert report["prediction_count"] == len(keys) == len(rows)
    assert report["ground_truth_count"] == len(labelled) + 2
    assert report["labeled_row_count"] == len(labelled)
    assert report["unlabeled_prediction_count"] == len(keys) - len(labelled)
    assert report["unmatched_label_count"] == 2
    assert report["no_data"] is False
    assert report["problem_type"] == served.problem_type
    assert (report["model_name"], report["stage"], report["capture_source"]) == (
        MODEL,
        STAGE,
        monitoring.ENDPOINT_SOURCE,
    )
    assert_metric_entries(report)
    values = by_name(report)
    assert values[(monitoring.QUALITY_NO_DATA, None)] == 0.0
    assert values[(monitoring.LABELED_ROWS, None)] == len(labelled)
    for name, value in expected.items():
        assert values[(monitoring.MODEL_QUALITY, name)] == pytest.approx(value, rel=1e-12)


def test_the_whole_test_split_gives_evaluates_values(binary, tmp_path):
    """Every test row captured and labelled: the values of evaluation.json."""
    rows = binary.rows
    captured = []
    for i in range(len(rows)):
        captured.append(record(binary, rows.iloc[[i]], CSV, f"e{i}")[0])
    write_jsonl(tmp_path / "capture/c.jsonl", captured)
    labels = [label(f"e{i}", t) for i, t in enumerate(rows[binary.target])]
    write_jsonl(tmp_path / "ground-truth/g.jsonl", labels)
    (tmp_path / "baseline").mkdir()
    proc = run_script(
        "evaluate.py", "--model-dir", binary.work / "artifact",
        "--test-dir", binary.work / "prep/test", "--transform-dir", binary.work / "prep/transform",
        "--schema", binary.schema_path, "--problem-type", BINARY, "--output-dir", tmp_path / "eval",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evaluation = json.loads((tmp_path / "eval/evaluation.json").read_text())
    section = evaluation[contract.problem(BINARY).report_section]

    proc, report = run_check(binary, tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert report["labeled_row_count"] == len(rows)
    for name, value in report["quality"].items():
        assert value == pytest.approx(section[name]["value"], rel=1e-9), name


# --------------------------------------------------------------------------- the join


def test_inference_id_is_the_key_when_set_else_event_id(binary, tmp_path):
    rows = binary.rows
    with_id, s1 = record(binary, rows.iloc[[0]], CSV, "evt-a", inference_id="inf-a")
    without, s2 = record(binary, rows.iloc[[1]], JSON, "evt-b")
    write_jsonl(tmp_path / "capture/c.jsonl", [with_id, without])
    truth = rows[binary.target].tolist()
    write_jsonl(
        tmp_path / "ground-truth/g.jsonl",
        # evt-a is not the key of a record with an inferenceId
        [label("inf-a", truth[0]), label("evt-b", truth[1]), label("evt-a", truth[0])],
    )
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (report["labeled_row_count"], report["unmatched_label_count"]) == (2, 1)
    y = np.asarray([binary.label_index(t) for t in truth[:2]])
    expected = metrics.point_metrics(BINARY, y, np.concatenate([s1, s2]))
    assert report["quality"]["accuracy"] == expected["accuracy"]


def test_rows_of_a_multi_row_request_are_keyed_by_position(binary, tmp_path):
    rows = binary.rows
    rec, scores = record(binary, rows.iloc[:3], CSV, "evt-m", inference_id="batch-7")
    # A header line does not count as a row.
    rec["captureData"]["endpointInput"]["data"] = (
        ",".join(binary.names) + "\n" + rec["captureData"]["endpointInput"]["data"]
    )
    write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    truth = rows[binary.target].tolist()
    write_jsonl(
        tmp_path / "ground-truth/g.jsonl",
        [label("batch-7", truth[0]), label("batch-7:0", truth[0]), label("batch-7:2", truth[2])],
    )
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert report["prediction_count"] == 3
    assert report["labeled_row_count"] == 2
    assert report["unlabeled_prediction_count"] == 1  # batch-7:1
    assert report["unmatched_label_count"] == 1  # batch-7 names no row of a 3-row request
    y = np.asarray([binary.label_index(truth[0]), binary.label_index(truth[2])])
    expected = metrics.point_metrics(BINARY, y, scores[[0, 2]])
    assert report["quality"]["accuracy"] == expected["accuracy"]


def test_the_last_label_of_a_key_wins(binary, tmp_path):
    rows = binary.rows
    rec, _ = record(binary, rows.iloc[[0]], CSV, "e0")
    write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    truth = binary.rows[binary.target].iloc[0]
    wrong = next(c for c in binary.classes if c != truth)
    write_jsonl(tmp_path / "ground-truth/2026/02/01/00/g.jsonl", [label("e0", wrong)])
    # A later file corrects it, as a JSON-encoded label.
    write_jsonl(
        tmp_path / "ground-truth/2026/02/01/01/g.jsonl", [label("e0", json.dumps(truth), "JSON")]
    )
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (report["ground_truth_count"], report["duplicate_label_count"]) == (1, 1)
    score = binary.answer(binary.body(rows.iloc[[0]], CSV), CSV)[1]
    expected = metrics.point_metrics(BINARY, np.asarray([binary.label_index(truth)]), score)
    assert report["quality"]["accuracy"] == expected["accuracy"]


def test_responses_in_every_layout_the_container_answers(tmp_path, small_schema):
    """CSV on one line, one row a line (batch transform), JSON, BASE64; multiclass lists."""
    import quality_check

    assert list(quality_check.predictions("0.25,0.5", 2, BINARY, 2, "w")) == [0.25, 0.5]
    assert list(quality_check.predictions("0.25\n0.5\n", 2, BINARY, 2, "w")) == [0.25, 0.5]
    assert list(quality_check.predictions("[0.25, 0.5]", 2, BINARY, 2, "w")) == [0.25, 0.5]
    assert list(quality_check.predictions("151.5", 1, REGRESSION, 0, "w")) == [151.5]
    expected = [[0.25, 0.75], [0.5, 0.5]]
    for body in (
        "[0.25, 0.75],[0.5, 0.5]",
        "[0.25, 0.75]\n[0.5, 0.5]\n",
        "[[0.25, 0.75], [0.5, 0.5]]",
        "0.25,0.75,0.5,0.5",
    ):
        assert quality_check.predictions(body, 2, MULTICLASS, 2, "w").tolist() == expected, body
    rec = capture_record("1,2,red", CSV, "", "e1", "2026-01-01T00:00:00Z")
    rec["captureData"]["endpointOutput"].update(
        data=base64.b64encode(b"0.875").decode(), encoding="BASE64"
    )
    write_jsonl(tmp_path / "c.jsonl", [rec])
    keyed = quality_check.read_predictions(tmp_path / "c.jsonl", small_schema, BINARY)
    assert keyed.values == {"e1": 0.875} and keyed.records == 1


# --------------------------------------------------------------------------- no data


def assert_no_data(report: dict) -> None:
    assert report["no_data"] is True
    assert report["labeled_row_count"] == 0
    assert set(report["quality"].values()) == {None}
    assert_metric_entries(report)
    assert by_name(report) == {
        (monitoring.QUALITY_NO_DATA, None): 1.0,
        (monitoring.LABELED_ROWS, None): 0.0,
    }


def test_an_empty_window_is_no_data_not_an_error(binary, tmp_path):
    """What the window manifest delivers when nothing was captured: one empty file each."""
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture/empty.jsonl").write_text("")
    (tmp_path / "ground-truth").mkdir()
    (tmp_path / "ground-truth/empty").write_text("\n")
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    shutil.copy(binary.schema_path, baseline / "schema.json")  # the default --schema
    proc, report = run_check(binary, tmp_path, schema=False)
    assert proc.returncode == 0, proc.stderr
    assert_no_data(report)
    assert (report["capture_record_count"], report["ground_truth_count"]) == (0, 0)


def test_no_matching_label_is_no_data(binary, tmp_path):
    rec, _ = record(binary, binary.rows.iloc[[0]], CSV, "e0")
    write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    write_jsonl(tmp_path / "ground-truth/g.jsonl", [label("other", binary.classes[0])])
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_no_data(report)
    assert (report["unlabeled_prediction_count"], report["unmatched_label_count"]) == (1, 1)


def test_a_metric_undefined_on_the_window_is_left_out(binary, tmp_path):
    """Labelled rows of one class: AUC is undefined (null, no entry); the rest is reported."""
    rows = binary.rows[binary.rows[binary.target] == binary.classes[1]].iloc[:4]
    captured = [record(binary, rows.iloc[[i]], CSV, f"e{i}")[0] for i in range(len(rows))]
    write_jsonl(tmp_path / "capture/c.jsonl", captured)
    write_jsonl(
        tmp_path / "ground-truth/g.jsonl",
        [label(f"e{i}", binary.classes[1]) for i in range(len(rows))],
    )
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert report["no_data"] is False and report["quality"]["auc"] is None
    assert report["quality"]["accuracy"] is not None
    values = by_name(report)
    assert (monitoring.MODEL_QUALITY, "auc") not in values
    assert (monitoring.MODEL_QUALITY, "accuracy") in values
    assert_metric_entries(report)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "line,needle",
    [
        (b"{truncated", "not JSON"),
        (b'{"eventMetadata": {"eventId": "e0"}}', "no groundTruthData.data"),
        (b'{"groundTruthData": {"data": "benign", "encoding": "CSV"}}', "no eventMetadata.eventId"),
        (
            b'{"groundTruthData": {"data": "maybe", "encoding": "CSV"}, "eventMetadata": {"eventId": "e0"}}',
            "label 'maybe' is not one of the classes ['benign', 'malignant'] nor a class index 0..1",
        ),
        (
            b'{"groundTruthData": {"data": "2", "encoding": "CSV"}, "eventMetadata": {"eventId": "e0"}}',
            "label '2' is not one of the classes",
        ),
        (
            b'{"groundTruthData": {"data": "benign,malignant", "encoding": "CSV"}, "eventMetadata": {"eventId": "e0"}}',
            "holds 2 fields; expected one label",
        ),
        (
            b'{"groundTruthData": {"data": "benign", "encoding": "XML"}, "eventMetadata": {"eventId": "e0"}}',
            "encoding 'XML' is not one of",
        ),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe{}", "not valid UTF-8"),
    ],
)
def test_malformed_ground_truth_names_file_and_line(binary, tmp_path, line, needle):
    rec, _ = record(binary, binary.rows.iloc[[0]], CSV, "e0")
    write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    good = json.dumps(label("e0", binary.classes[0])).encode()
    gt = tmp_path / "ground-truth/2026/02/01/00/labels.jsonl"
    gt.parent.mkdir(parents=True)
    gt.write_bytes(good + b"\n\n" + line + b"\n")
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"ERROR: {gt}:3: " in proc.stderr and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert report is None and not (tmp_path / "out").exists()


def test_a_regression_label_must_be_a_number(tmp_path):
    schema = json.loads(DIABETES_SCHEMA.read_text())
    names = [f["name"] for f in schema["features"]]
    row = pd.read_csv(DIABETES_RAW, dtype=str, keep_default_na=False).iloc[0]
    rec = capture_record(",".join(row[names]), CSV, "150.5", "e0", "2026-02-01T00:00:00Z")
    write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    gt = write_jsonl(tmp_path / "ground-truth/g.jsonl", [label("e0", "high")])
    proc = run_script(
        "quality_check.py", "--baseline-dir", tmp_path, "--capture-dir", tmp_path / "capture",
        "--ground-truth-dir", tmp_path / "ground-truth", "--schema", DIABETES_SCHEMA,
        "--output-dir", tmp_path / "out", "--problem-type", REGRESSION,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{gt}:1: label 'high' is not a number" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "answer,needle",
    [
        ("0.5,0.5", "holds 2 values for 1 request row(s)"),
        ("", "endpointOutput.data is empty"),
        ("0.5;0.5", "not a list of numbers"),
        ("1.7", "outside [0, 1]"),
        ("nan", "not a finite number"),
    ],
)
def test_a_response_that_does_not_fit_the_request_names_file_and_line(
    binary, tmp_path, answer, needle
):
    good, _ = record(binary, binary.rows.iloc[[0]], CSV, "e0")
    bad = json.loads(json.dumps(good))
    bad["captureData"]["endpointOutput"]["data"] = answer
    cap = write_jsonl(tmp_path / "capture/c.jsonl", [good, bad])
    write_jsonl(tmp_path / "ground-truth/g.jsonl", [label("e0", binary.classes[0])])
    (tmp_path / "baseline").mkdir()
    proc, report = run_check(binary, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"ERROR: {cap}:2: " in proc.stderr and needle in proc.stderr, proc.stderr
    assert report is None and not (tmp_path / "out").exists()


def test_a_capture_without_responses_says_what_to_capture(binary, tmp_path):
    rec, _ = record(binary, binary.rows.iloc[[0]], CSV, "e0")
    del rec["captureData"]["endpointOutput"]
    cap = write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    write_jsonl(tmp_path / "ground-truth/g.jsonl", [])
    (tmp_path / "baseline").mkdir()
    proc, _ = run_check(binary, tmp_path)
    assert proc.returncode == 2
    assert f"{cap}:1: " in proc.stderr and "CaptureOptions Input and Output" in proc.stderr


def test_a_failed_rerun_keeps_the_previous_report(binary, tmp_path):
    rec, _ = record(binary, binary.rows.iloc[[0]], CSV, "e0")
    write_jsonl(tmp_path / "capture/c.jsonl", [rec])
    gt = write_jsonl(tmp_path / "ground-truth/g.jsonl", [label("e0", binary.classes[0])])
    (tmp_path / "baseline").mkdir()
    proc, before = run_check(binary, tmp_path)
    assert proc.returncode == 0, proc.stderr
    gt.write_text(gt.read_text() + "{truncated\n")
    proc, after = run_check(binary, tmp_path)
    assert proc.returncode == 2 and after == before


def test_missing_directories_and_bad_arguments_are_errors(binary, tmp_path):
    (tmp_path / "baseline").mkdir()
    (tmp_path / "ground-truth").mkdir()
    proc, _ = run_check(binary, tmp_path)
    assert proc.returncode == 2 and "capture directory does not exist" in proc.stderr
    (tmp_path / "capture").mkdir()
    proc, _ = run_check(binary, tmp_path, "--capture-source", "stream")
    assert proc.returncode == 2 and "invalid choice: 'stream'" in proc.stderr
    proc, _ = run_check(binary, tmp_path, "--window-start", "yesterday")
    assert proc.returncode == 2 and "invalid window_time value" in proc.stderr
    proc, _ = run_check(binary, tmp_path, schema=False)  # no baseline/schema.json
    assert proc.returncode == 2 and "schema file not found" in proc.stderr

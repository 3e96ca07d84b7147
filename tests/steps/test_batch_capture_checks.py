"""drift_check.py and quality_check.py with ``--capture-source batch``: what batch transform
data capture gives them.

Batch capture records no payloads: its manifests list the job's input and output files, and
the window step resolves them, so the drift check reads the job's input files (raw feature
rows, CSV or JSON Lines, any name, in subfolders) and the quality check its output files
(``<input>.out``: one line per input record, as the built-in XGBoost container writes it
with ``Accept`` ``text/csv``, followed by the inference ID and time ``GenerateInferenceId``
appends). Each problem type trains a small booster on real data, as test_quality_check.py
does, and its output lines are written by ``serve_single.encode_predictions`` with
``SAGEMAKER_BATCH`` set (the container's batch encoding, byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from steplib import contract, metrics, monitoring
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.payload import capture_record
from steplib.schema import parse_schema_doc
from steps_helpers import BC_RAW, BC_SCHEMA, run_preprocess, run_script
from test_quality_check import CSV, Served, label, write_jsonl

STAGE, MODEL = "prod", "batch-model"
TIME = "2026-02-01T00:49:15Z"


def inference_id(i: int) -> str:
    """An inference ID shaped as SageMaker's (a UUID)."""
    return f"1f1d57b1-2e6f-488c-8c30-{i:012x}"


# --------------------------------------------------------------------------- drift


@pytest.fixture(scope="module")
def bc(tmp_path_factory) -> dict:
    """preprocess's baseline of the breast-cancer data, the schema's features and raw rows."""
    work = tmp_path_factory.mktemp("batch-drift")
    proc = run_preprocess(BC_RAW, work / "prep")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(BC_SCHEMA.read_text())
    return {
        "baseline": work / "prep/baseline",
        "names": [f["name"] for f in schema["features"]],
        "raw": pd.read_csv(BC_RAW, dtype=str, keep_default_na=False),
        "stats": json.loads((work / "prep/baseline/statistics.json").read_text()),
    }


def drift(bc: dict, capture: Path, out: Path, source: str = monitoring.BATCH_SOURCE):
    proc = run_script(
        "drift_check.py", "--baseline-dir", bc["baseline"], "--schema", BC_SCHEMA,
        "--capture-dir", capture, "--output-dir", out, "--model-name", MODEL,
        "--stage", STAGE, "--capture-source", source,
    )  # fmt: skip
    path = out / "drift_report.json"
    return proc, json.loads(path.read_text()) if path.exists() else None


def csv_lines(rows: pd.DataFrame, names: list[str], header: bool) -> str:
    return rows[names].to_csv(index=False, header=header)


def json_lines(rows: pd.DataFrame, names: list[str]) -> str:
    """One object a line, numbers as JSON numbers (every breast-cancer feature is numeric)."""
    return "".join(json.dumps({n: float(r[n]) for n in names}) + "\n" for _, r in rows.iterrows())


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def without_source(report: dict) -> dict:
    """The report with what names the capture source taken out of it."""
    out = {k: v for k, v in report.items() if k not in ("capture_source", "metrics")}
    out["metrics"] = [
        {
            **e,
            "Dimensions": [d for d in e["Dimensions"] if d["Name"] != monitoring.SOURCE],
        }
        for e in report["metrics"]
    ]
    return out


@pytest.mark.parametrize("layout", ["header", "no-header-two-files", "json-lines"])
def test_batch_inputs_give_the_report_of_the_same_rows_captured_at_an_endpoint(
    bc, tmp_path, layout
):
    names, rows = bc["names"], bc["raw"].iloc[:90]
    endpoint = tmp_path / "endpoint"
    records = [
        capture_record(",".join(r[names]), CSV, "0.5", f"e{i}", TIME)
        for i, (_, r) in enumerate(rows.iterrows())
    ]
    write_jsonl(endpoint / "2026/02/01/00/capture.jsonl", records)
    batch = tmp_path / "batch"
    if layout == "header":
        write(batch / "part-0.csv", csv_lines(rows, names, header=True))
    elif layout == "no-header-two-files":  # two jobs' files, in subfolders, any name
        write(batch / "job-a/input/part-0.csv", csv_lines(rows.iloc[:40], names, False))
        write(batch / "job-b/input/rows", "\n" + csv_lines(rows.iloc[40:], names, False) + "\n")
    else:
        write(batch / "part-0.jsonl", json_lines(rows, names))
    # Hidden files and markers are not data.
    write(batch / ".DS_Store", b"\x00\x01")
    write(batch / "_SUCCESS", "")

    proc, from_endpoint = drift(bc, endpoint, tmp_path / "out-endpoint", monitoring.ENDPOINT_SOURCE)
    assert proc.returncode == 0, proc.stderr
    proc, from_batch = drift(bc, batch, tmp_path / "out-batch")
    assert proc.returncode == 0, proc.stderr

    assert from_batch["capture_source"] == monitoring.BATCH_SOURCE
    assert from_batch["window_row_count"] == from_batch["capture_record_count"] == len(rows)
    assert from_batch["no_data"] is False and from_batch["features"]
    assert without_source(from_batch) == without_source(from_endpoint)
    assert from_batch["metrics"] == [
        *monitoring.drift_metrics(from_batch, STAGE, MODEL, monitoring.BATCH_SOURCE),
        monitoring.run_metric(STAGE, MODEL, monitoring.BATCH_SOURCE),
    ]


def test_a_shifted_batch_input_is_drift(bc, tmp_path):
    names, rows = bc["names"], bc["raw"].iloc[:200].copy()
    shifted = names[:3]
    for name in shifted:
        std = bc["stats"]["features"][name]["std"]
        rows[name] = [repr(float(v) + 1.5 * std) for v in rows[name]]
    write(tmp_path / "batch/part-0.csv", csv_lines(rows, names, header=True))
    proc, report = drift(bc, tmp_path / "batch", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert report["drift_detected"] is True
    assert set(shifted) <= set(report["drifted_features"])
    assert report["drift_score"] == monitoring.drift_score(report) > 0
    values = {e["MetricName"]: e["Value"] for e in report["metrics"] if len(e["Dimensions"]) == 3}
    assert values[monitoring.DRIFT_DETECTED] == 1.0 and values[monitoring.ROWS_CHECKED] == 200


@pytest.mark.parametrize(
    "files",
    [
        {"empty/empty.jsonl": b""},  # the window step's placeholder
        {"part-0.csv": b""},
        {"part-0.csv": b"\n\n"},
        {"header-only.csv": None},
    ],
    ids=["placeholder", "empty-file", "blank-lines", "header-only"],
)
def test_an_empty_batch_input_window_is_no_data(bc, tmp_path, files):
    for name, content in files.items():
        write(
            tmp_path / "batch" / name, ",".join(bc["names"]) + "\n" if content is None else content
        )
    proc, report = drift(bc, tmp_path / "batch", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert report["no_data"] is True and report["capture_record_count"] == 0
    assert report["window_row_count"] == 0 and report["features"] == {}
    assert report["drift_score"] is None and report["drift_detected"] is False
    assert {e["MetricName"]: e["Value"] for e in report["metrics"]} == {
        monitoring.NO_DATA: 1.0,
        monitoring.ROWS_CHECKED: 0.0,
        monitoring.MONITORING_RUNS: 1.0,
    }


def _target_included(bc: dict) -> str:
    row = bc["raw"].iloc[0]
    return ",".join([row["diagnosis"], *row[bc["names"]]])


@pytest.mark.parametrize(
    "make_line,needle",
    [
        (lambda bc: ",".join(bc["raw"].iloc[0][bc["names"][:-1]]), "29 fields; expected 30"),
        (_target_included, "is the target column included?"),
        (lambda bc: "\xff".encode("latin-1"), "not valid UTF-8"),
    ],
    ids=["field-missing", "target-included", "not-utf-8"],
)
def test_a_malformed_csv_input_line_names_file_and_line(bc, tmp_path, make_line, needle):
    names, rows = bc["names"], bc["raw"]
    write(tmp_path / "batch/a/part-0.csv", csv_lines(rows.iloc[:5], names, header=True))
    line = make_line(bc)
    good = csv_lines(rows.iloc[5:6], names, header=True).encode()  # header, one row
    bad = write(
        tmp_path / "batch/b/part-1.csv",
        good + (line if isinstance(line, bytes) else line.encode()) + b"\n",
    )
    proc, report = drift(bc, tmp_path / "batch", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert f"ERROR: {bad}:3: " in proc.stderr and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert report is None and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "line,needle",
    [
        ("{truncated", "not a JSON line"),
        ('{"mean_radius": 1.0}', "missing features ['mean_texture'"),
        ("[1.0, 2.0]", "a JSON list; expected an object keyed by feature name"),
        (
            json.dumps(capture_record("1,2", CSV, "0.5", "e0", TIME)),
            "a real-time data-capture record (captureData)",
        ),
    ],
    ids=["not-json", "feature-missing", "not-an-object", "endpoint-capture"],
)
def test_a_malformed_json_lines_input_names_file_and_line(bc, tmp_path, line, needle):
    rows = bc["raw"].iloc[:2]
    bad = write(tmp_path / "batch/part-0.jsonl", json_lines(rows, bc["names"]) + line + "\n")
    proc, report = drift(bc, tmp_path / "batch", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert f"ERROR: {bad}:3: malformed batch input line: " in proc.stderr, proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert report is None and not (tmp_path / "out").exists()


def test_endpoint_capture_read_as_batch_says_which_source_it_is(bc, tmp_path):
    """A JSON object line is read as a batch input row, so a captureData record is named."""
    rec = capture_record(",".join(bc["raw"].iloc[0][bc["names"]]), CSV, "0.5", "e0", TIME)
    cap = write_jsonl(tmp_path / "batch/capture.jsonl", [rec])
    proc, _ = drift(bc, tmp_path / "batch", tmp_path / "out")
    assert proc.returncode == 2
    assert f"{cap}:1: " in proc.stderr and "--capture-source endpoint" in proc.stderr


def test_a_missing_batch_capture_directory_is_an_error(bc, tmp_path):
    proc, report = drift(bc, tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode == 2 and "capture directory does not exist" in proc.stderr
    assert report is None


# --------------------------------------------------------------------------- quality


@pytest.fixture(scope="module", params=[BINARY, MULTICLASS, REGRESSION])
def served(request, tmp_path_factory):
    return Served(tmp_path_factory.mktemp(f"batch-{request.param}"), request.param)


def batch_scores(served: Served, rows: pd.DataFrame) -> np.ndarray:
    """The version's scores of ``rows`` sent as one mini-batch (CSV lines, as batch
    transform's MultiRecord strategy sends them)."""
    response = served.endpoint.transform(served.body(rows, CSV), CSV)
    assert response.status == 200, response.body
    return np.asarray(served.endpoint.score(response.body).tolist(), dtype=np.float64)


def container_lines(scores: np.ndarray, monkeypatch) -> list[str]:
    """The built-in XGBoost container's batch CSV body of ``scores``, one line a record."""
    import serve_single

    monkeypatch.setenv("SAGEMAKER_BATCH", "true")
    body = serve_single.encode_predictions(scores.astype(np.float32), "text/csv").decode()
    lines = body.split("\n")
    assert lines[-1] == "" and len(lines) == len(scores) + 1
    return lines[:-1]


def output_line(layout: str, prediction: str, value: object, key: str) -> str:
    """An output line with the columns GenerateInferenceId appends, in ``layout``."""
    if layout == "csv":
        return f"{prediction},{key},{TIME}"
    if layout == "csv-spaces":  # as the developer guide's example shows it
        return f"{prediction}, {key},{TIME}"
    return json.dumps(
        {"output": value, "SageMakerInferenceId": key, "SageMakerInferenceTime": TIME}
    )


def run_quality(tmp_path: Path, schema: Path, problem_type: str):
    out = tmp_path / "out"
    (tmp_path / "baseline").mkdir(exist_ok=True)
    proc = run_script(
        "quality_check.py", "--baseline-dir", tmp_path / "baseline", "--schema", schema,
        "--capture-dir", tmp_path / "capture", "--ground-truth-dir", tmp_path / "ground-truth",
        "--output-dir", out, "--problem-type", problem_type, "--model-name", MODEL,
        "--stage", STAGE, "--capture-source", monitoring.BATCH_SOURCE,
    )  # fmt: skip
    path = out / "quality_report.json"
    return proc, json.loads(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("layout", ["csv", "csv-spaces", "json"])
def test_batch_outputs_joined_to_labels_give_evaluates_metrics(
    served, tmp_path, monkeypatch, layout
):
    """Two jobs' output files (the test split in two mini-batches each), every fifth row
    unlabelled, two labels for rows never scored; labels as the class or its index."""
    rows = served.rows
    size = -(-len(rows) // 4)  # four mini-batches
    parts = [rows.iloc[i : i + size] for i in range(0, len(rows), size)]
    scores = np.concatenate([batch_scores(served, part) for part in parts])
    texts = container_lines(scores, monkeypatch)
    # What the container writes for multi:softprob: one probability list a line.
    assert served.problem_type != MULTICLASS or texts[0].startswith("[")
    keys = [inference_id(i) for i in range(len(rows))]
    lines = [
        output_line(layout, text, json.loads(text) if "[" in text else float(text), key)
        for text, key in zip(texts, keys, strict=True)
    ]
    half = len(lines) // 2
    write(tmp_path / "capture/job-a/part-0.csv.out", "\n".join(lines[:half]) + "\n")
    write(tmp_path / "capture/job-b/part-0.csv.out", "\n".join(lines[half:]) + "\n")
    truth = rows[served.target].tolist()
    labelled = [j for j in range(len(rows)) if j % 5 != 4]
    labels = []
    for j in labelled:
        text = truth[j]
        if served.classes and j % 2:
            text = str(served.classes.index(text))
        labels.append(label(keys[j], text))
    labels += [label("never-scored-1", truth[0]), label("never-scored-2", truth[1])]
    write_jsonl(tmp_path / "ground-truth/2026/02/01/01/labels.jsonl", labels)

    proc, report = run_quality(tmp_path, served.schema_path, served.problem_type)

    assert proc.returncode == 0, proc.stderr
    y = np.asarray([served.label_index(truth[j]) for j in labelled])
    expected = metrics.point_metrics(served.problem_type, y, scores[labelled])
    assert list(report["quality"]) == list(contract.problem(served.problem_type).metrics)
    assert report["quality"] == pytest.approx(expected, rel=1e-12)
    assert report["capture_record_count"] == report["prediction_count"] == len(rows)
    assert report["labeled_row_count"] == len(labelled)
    assert report["unlabeled_prediction_count"] == len(rows) - len(labelled)
    assert report["unmatched_label_count"] == 2
    assert report["duplicate_prediction_count"] == 0 and report["no_data"] is False
    assert report["capture_source"] == monitoring.BATCH_SOURCE
    assert report["metrics"] == monitoring.quality_metrics(
        report, STAGE, MODEL, monitoring.BATCH_SOURCE
    )


def test_multiclass_output_in_every_layout_the_container_may_write(tmp_path):
    """The class probabilities of a row as a list (the container's batch CSV), as plain CSV,
    and as JSON; blanks around the appended columns."""
    import quality_check

    schema_doc = json.loads(BC_SCHEMA.read_text())
    schema_doc["target"]["classes"] = ["a", "b", "c"]
    schema = parse_schema_doc(schema_doc)
    lines = [
        f"[0.25, 0.5, 0.25],{inference_id(0)},{TIME}",
        f"0.5,0.25,0.25 , {inference_id(1)} , {TIME}",
        json.dumps(
            {
                "output": [0.125, 0.125, 0.75],
                "SageMakerInferenceId": inference_id(2),
                "SageMakerInferenceTime": TIME,
            }
        ),
        json.dumps(
            {
                "output": "[0.75, 0.125, 0.125]",
                "SageMakerInferenceId": inference_id(3),
                "SageMakerInferenceTime": TIME,
            }
        ),
    ]
    write(tmp_path / "part-0.csv.out", "\r\n".join(lines) + "\r\n")
    keyed = quality_check.read_batch_predictions(tmp_path, schema, MULTICLASS)
    assert {k: v.tolist() for k, v in keyed.values.items()} == {
        inference_id(0): [0.25, 0.5, 0.25],
        inference_id(1): [0.5, 0.25, 0.25],
        inference_id(2): [0.125, 0.125, 0.75],
        inference_id(3): [0.75, 0.125, 0.125],
    }
    assert keyed.records == 4


def test_a_rerun_job_s_prediction_replaces_the_earlier_one(tmp_path):
    """The last line of an inference ID wins, files by path (as for endpoint capture)."""
    import quality_check

    schema = parse_schema_doc(json.loads(BC_SCHEMA.read_text()))
    write(tmp_path / "a/part-0.csv.out", f"0.25,{inference_id(0)},{TIME}\n")
    write(tmp_path / "b/part-0.csv.out", f"0.75,{inference_id(0)},{TIME}\n")
    keyed = quality_check.read_batch_predictions(tmp_path, schema, BINARY)
    assert keyed.values == {inference_id(0): 0.75}
    assert (keyed.records, keyed.duplicates) == (2, 1)


@pytest.mark.parametrize(
    "files",
    [{"empty/empty.jsonl": b""}, {}, {"job/part-0.csv.out": b"\n \n"}],
    ids=["placeholder", "no-file", "blank-lines"],
)
def test_an_empty_batch_output_window_is_no_data(tmp_path, files):
    (tmp_path / "capture").mkdir()
    for name, content in files.items():
        write(tmp_path / "capture" / name, content)
    write(tmp_path / "ground-truth/empty/empty.jsonl", b"")
    proc, report = run_quality(tmp_path, BC_SCHEMA, BINARY)
    assert proc.returncode == 0, proc.stderr
    assert report["no_data"] is True and report["capture_record_count"] == 0
    assert report["prediction_count"] == report["labeled_row_count"] == 0
    assert set(report["quality"].values()) == {None}
    assert {e["MetricName"]: e["Value"] for e in report["metrics"]} == {
        monitoring.QUALITY_NO_DATA: 1.0,
        monitoring.LABELED_ROWS: 0.0,
    }


@pytest.mark.parametrize(
    "line,needle",
    [
        (b"0.93", "expected <prediction>,<inference id>,<inference time>"),
        (b"0.93," + inference_id(9).encode(), "must set GenerateInferenceId"),
        (b"0.5,0.5," + inference_id(9).encode() + b"," + TIME.encode(), "holds 2 values"),
        (b"high," + inference_id(9).encode() + b"," + TIME.encode(), "not a list of numbers"),
        (b"1.7," + inference_id(9).encode() + b"," + TIME.encode(), "outside [0, 1]"),
        (b'{"output": 0.5, "SageMakerInferenceTime": "t"}', "no SageMakerInferenceId"),
        (b'{"SageMakerInferenceId": "x"}', "no 'output'"),
        (b'{"output": null, "SageMakerInferenceId": "x"}', "is a NoneType"),
        (b"{truncated", "not JSON"),
        (json.dumps(capture_record("1", CSV, "0.5", "e0", TIME)).encode(), "captureData"),
        (b"\xff0.5,id,time", "not valid UTF-8"),
    ],
    ids=[
        "no-columns", "no-time", "two-values", "not-a-number", "not-a-probability",
        "json-no-id", "json-no-output", "json-null-output", "not-json", "endpoint-capture",
        "not-utf-8",
    ],
)  # fmt: skip
def test_a_malformed_batch_output_line_names_file_and_line(tmp_path, line, needle):
    good = f"0.25,{inference_id(0)},{TIME}\n".encode()
    write(tmp_path / "capture/a/part-0.csv.out", good)
    bad = write(tmp_path / "capture/b/part-1.csv.out", good + b"\n" + line + b"\n")
    write_jsonl(tmp_path / "ground-truth/g.jsonl", [label(inference_id(0), "benign")])
    proc, report = run_quality(tmp_path, BC_SCHEMA, BINARY)
    assert proc.returncode == 2, proc.stderr
    assert f"ERROR: {bad}:3: " in proc.stderr and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert report is None and not (tmp_path / "out").exists()


def test_a_missing_batch_output_directory_is_an_error(tmp_path):
    (tmp_path / "ground-truth").mkdir()
    proc, report = run_quality(tmp_path, BC_SCHEMA, BINARY)
    assert proc.returncode == 2 and "capture directory does not exist" in proc.stderr
    assert report is None

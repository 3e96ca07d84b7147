"""drift_check.py on an empty window (no data, not an error), and its metrics on a normal one:
every entry built by steplib/monitoring.py, with the run's Stage, ModelName and
CaptureSource."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from steplib import drift, monitoring
from steplib.payload import capture_record
from steps_helpers import BC_RAW, BC_SCHEMA, run_preprocess, run_script

STAGE, MODEL = "prod", "breast-cancer"
BASE_DIMS = (monitoring.STAGE, monitoring.MODEL, monitoring.SOURCE)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """preprocess's baseline/ of the breast-cancer data, with the schema in it."""
    work = tmp_path_factory.mktemp("drift-no-data")
    proc = run_preprocess(BC_RAW, work / "prep")
    assert proc.returncode == 0, proc.stderr
    base = work / "prep/baseline"
    if not (base / "schema.json").exists():  # the default --schema
        shutil.copy(BC_SCHEMA, base / "schema.json")
    return base


def check(baseline: Path, capture: Path, out: Path, *extra: object):
    proc = run_script(
        "drift_check.py", "--baseline-dir", baseline, "--capture-dir", capture,
        "--output-dir", out, "--model-name", MODEL, "--stage", STAGE, *extra,
    )  # fmt: skip
    path = out / "drift_report.json"
    return proc, json.loads(path.read_text()) if path.exists() else None


def dims_of(entry: dict) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in entry["Dimensions"]}


def assert_entries_are_monitorings(report: dict, source: str) -> None:
    entries = report["metrics"]
    assert entries == [
        *monitoring.drift_metrics(report, STAGE, MODEL, source),
        monitoring.run_metric(STAGE, MODEL, source),
    ]
    allowed = {
        (name, BASE_DIMS)
        for name in (
            monitoring.NO_DATA,
            monitoring.ROWS_CHECKED,
            monitoring.DRIFT_DETECTED,
            monitoring.DRIFTED_FEATURES,
            monitoring.DRIFT_SCORE,
            monitoring.MONITORING_RUNS,
        )
    } | {
        (name, (*BASE_DIMS, monitoring.FEATURE))
        for name in (
            monitoring.FEATURE_PSI,
            monitoring.FEATURE_P_VALUE,
            monitoring.FEATURE_MISSING_RATE,
        )
    }
    assert monitoring.metric_names(entries) <= allowed
    for entry in entries:
        dims = dims_of(entry)
        assert (dims[monitoring.STAGE], dims[monitoring.MODEL], dims[monitoring.SOURCE]) == (
            STAGE,
            MODEL,
            source,
        )


@pytest.mark.parametrize(
    "files",
    [
        {},  # no file at all
        {"empty": b""},  # the manifest's one empty file, not named .jsonl
        {"2026/02/01/00/window.jsonl": b""},
        {"a.jsonl": b"\n  \n", "b.jsonl": b""},  # blank lines are no records
    ],
    ids=["no-file", "one-empty-file", "empty-jsonl", "blank-lines"],
)
@pytest.mark.parametrize("source", monitoring.SOURCES)
def test_an_empty_window_is_no_data_not_an_error(baseline, tmp_path, files, source):
    capture = tmp_path / "capture"
    capture.mkdir()
    for name, content in files.items():
        (capture / name).parent.mkdir(parents=True, exist_ok=True)
        (capture / name).write_bytes(content)
    proc, report = check(baseline, capture, tmp_path / "out", "--capture-source", source)
    assert proc.returncode == 0, proc.stderr
    assert report["no_data"] is True
    assert report["window_row_count"] == 0 and report["capture_record_count"] == 0
    assert report["drift_detected"] is False and report["drifted_features"] == []
    assert report["drift_score"] is None and report["features"] == {}
    assert report["window_start"] is None and report["window_end"] is None
    assert (report["stage"], report["model_name"], report["capture_source"]) == (
        STAGE,
        MODEL,
        source,
    )
    assert_entries_are_monitorings(report, source)
    values = {e["MetricName"]: e["Value"] for e in report["metrics"]}
    assert values == {
        monitoring.NO_DATA: 1.0,
        monitoring.ROWS_CHECKED: 0.0,
        monitoring.MONITORING_RUNS: 1.0,
    }


def _records(rows: pd.DataFrame, names: list[str]) -> str:
    lines = []
    for i, (_, row) in enumerate(rows.iterrows()):
        body = ",".join(row[names])
        lines.append(json.dumps(capture_record(body, "text/csv", "0.5", f"e{i}", "2026-02-01")))
    return "\n".join(lines) + "\n"


def test_a_window_with_rows_reports_monitorings_metrics(baseline, tmp_path):
    schema = json.loads(BC_SCHEMA.read_text())
    names = [f["name"] for f in schema["features"]]
    rows = pd.read_csv(BC_RAW, dtype=str, keep_default_na=False).iloc[:60]
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "window.jsonl").write_text(_records(rows, names))
    (capture / "empty.jsonl").write_text("")  # an empty file beside records is fine
    window = ("--window-start", "2026-02-01T00:00:00Z", "--window-end", "2026-02-01T01:00:00Z")
    proc, report = check(baseline, capture, tmp_path / "out", *window)
    assert proc.returncode == 0, proc.stderr
    assert report["no_data"] is False and report["window_row_count"] == 60
    assert (report["window_start"], report["window_end"]) == (window[1], window[3])
    assert report["capture_source"] == monitoring.ENDPOINT_SOURCE  # the default
    assert report["drift_score"] == monitoring.drift_score(report) > 0
    assert_entries_are_monitorings(report, monitoring.ENDPOINT_SOURCE)
    base = {e["MetricName"]: e["Value"] for e in report["metrics"] if len(e["Dimensions"]) == 3}
    assert base[monitoring.NO_DATA] == 0.0 and base[monitoring.ROWS_CHECKED] == 60.0
    assert base[monitoring.DRIFT_SCORE] == report["drift_score"]
    assert base[monitoring.MONITORING_RUNS] == 1.0
    psi = {
        dims_of(e)[monitoring.FEATURE]: e["Value"]
        for e in report["metrics"]
        if e["MetricName"] == monitoring.FEATURE_PSI
    }
    assert set(psi) == set(names)
    assert not hasattr(drift, "cloudwatch_metrics")  # one definition of the metrics


def test_a_malformed_line_is_an_error_with_no_output(baseline, tmp_path):
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "empty.jsonl").write_text("")
    (capture / "window.jsonl").write_text("\n{truncated\n")
    out = tmp_path / "out"
    proc, report = check(baseline, capture, out)
    assert proc.returncode == 2
    assert f"ERROR: {capture / 'window.jsonl'}:2: malformed capture line" in proc.stderr
    assert report is None and not out.exists()


def test_a_missing_capture_directory_or_source_is_an_error(baseline, tmp_path):
    proc, _ = check(baseline, tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode == 2 and "capture directory does not exist" in proc.stderr
    (tmp_path / "capture").mkdir()
    proc, _ = check(baseline, tmp_path / "capture", tmp_path / "out", "--capture-source", "x")
    assert proc.returncode == 2 and "invalid choice: 'x'" in proc.stderr
    proc, _ = check(baseline, tmp_path / "capture", tmp_path / "out", "--window-end", "noon")
    assert proc.returncode == 2 and "--window-end: invalid window_time value" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_empty_window_still_needs_the_baseline(tmp_path):
    (tmp_path / "capture").mkdir()
    (tmp_path / "baseline").mkdir()
    shutil.copy(BC_SCHEMA, tmp_path / "baseline/schema.json")
    proc, report = check(tmp_path / "baseline", tmp_path / "capture", tmp_path / "out")
    assert proc.returncode == 2 and "baseline statistics not found" in proc.stderr
    assert report is None

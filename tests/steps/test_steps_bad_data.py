"""Bad input: each case exits non-zero with one message naming file, column and problem,
prints no traceback, and leaves no output behind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from steps_helpers import BC_RAW, BC_SCHEMA, job, run_preprocess, run_script


def raw_frame() -> pd.DataFrame:
    return pd.read_csv(BC_RAW, dtype=str, keep_default_na=False).head(60)


def preprocess(tmp_path: Path, input_path: Path):
    out = tmp_path / "out"
    return run_preprocess(input_path, out), out


def assert_clean_failure(proc, out: Path, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR: ")]
    assert len(line) == 1, proc.stderr
    for needle in needles:
        assert needle in line[0], line[0]
    assert not out.exists(), "partial output left behind"
    assert not [p for p in out.parent.iterdir() if ".staging-" in p.name], (
        "staging directory left behind"
    )


def write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        data.to_csv(path, index=False)
    return path


def test_missing_target_column(tmp_path):
    path = write(tmp_path, "a.csv", raw_frame().drop(columns=["diagnosis"]))
    assert_clean_failure(
        *preprocess(tmp_path, path), "a.csv", "column 'diagnosis'", "target column is missing"
    )


def test_wrong_column_type(tmp_path):
    df = raw_frame()
    df.loc[7, "mean_area"] = "large"
    path = write(tmp_path, "a.csv", df)
    assert_clean_failure(
        *preprocess(tmp_path, path),
        "a.csv",
        "column 'mean_area'",
        "line 9",
        "'large' is not numeric",
    )


def test_wrong_parquet_column_type(tmp_path):
    df = raw_frame()  # every column a string
    path = tmp_path / "raw" / "a.parquet"
    path.parent.mkdir(parents=True)
    df.to_parquet(path, index=False)
    assert_clean_failure(
        *preprocess(tmp_path, path), "a.parquet", "column 'mean_radius'", "not numeric"
    )


def test_all_nan_feature(tmp_path):
    df = raw_frame()
    df["worst_symmetry"] = ""
    path = write(tmp_path, "a.csv", df)
    assert_clean_failure(
        *preprocess(tmp_path, path), "column 'worst_symmetry'", "every row is missing"
    )


def test_empty_file(tmp_path):
    path = write(tmp_path, "a.csv", b"")
    assert_clean_failure(*preprocess(tmp_path, path), "a.csv", "file is empty")


def test_header_only(tmp_path):
    path = write(tmp_path, "a.csv", BC_RAW.read_bytes().split(b"\n", 1)[0] + b"\n")
    assert_clean_failure(*preprocess(tmp_path, path), "a.csv", "header but no data rows")


def test_undecodable_bytes(tmp_path):
    lines = BC_RAW.read_bytes().split(b"\n")[:40]
    fields = lines[5].split(b",")
    fields[1] = b"2026-01-01T05:00:00Z\xff\xfe"
    lines[5] = b",".join(fields)
    path = write(tmp_path, "a.csv", b"\n".join(lines) + b"\n")
    assert_clean_failure(
        *preprocess(tmp_path, path), "a.csv", "column 'event_time'", "line 6", "not valid UTF-8"
    )


def test_duplicate_record_ids(tmp_path):
    df = raw_frame()
    df.loc[10, "record_id"] = df.loc[3, "record_id"]
    path = write(tmp_path, "a.csv", df)
    assert_clean_failure(
        *preprocess(tmp_path, path), "column 'record_id'", "duplicated", "'bc-000003'"
    )


def test_class_never_seen_in_training(tmp_path, local_run):
    ev = job(local_run["work"], "breast-cancer", "Evaluate") / "processing"
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    df = pd.read_csv(ev / "test/test.csv", dtype=str, keep_default_na=False)
    df.loc[4, "diagnosis"] = "borderline"
    df.to_csv(test_dir / "test.csv", index=False)
    out = tmp_path / "out"
    proc = run_script(
        "evaluate.py",
        "--model-dir",
        ev / "model",
        "--test-dir",
        test_dir,
        "--transform-dir",
        ev / "transform",
        "--schema",
        BC_SCHEMA,
        "--problem-type",
        "binary_classification",
        "--output-dir",
        out,
    )
    assert_clean_failure(
        proc,
        out,
        "test.csv",
        "column 'diagnosis'",
        "class 'borderline', which the schema does not declare",
    )


@pytest.mark.parametrize(
    "bad_line,needle",
    [
        (b"{truncated", "not JSON"),
        (b'{"captureData": {}}', "no captureData.endpointInput"),
        (
            b'{"captureData": {"endpointInput": {"observedContentType": "text/csv", "data": "1,2", "encoding": "CSV"}}}',
            "has 2 fields",
        ),
        (b"\xff\xfe{}", "not valid UTF-8"),
    ],
)
def test_malformed_capture_lines(tmp_path, local_run, bad_line, needle):
    base = local_run["work"] / "breast-cancer/serving"
    cap = tmp_path / "capture"
    cap.mkdir()
    good = (base / "as-sent/capture/capture.jsonl").read_bytes().splitlines()[:3]
    (cap / "window.jsonl").write_bytes(b"\n".join([*good, bad_line]) + b"\n")
    out = tmp_path / "out"
    proc = run_script(
        "drift_check.py",
        "--baseline-dir",
        base / "baseline",
        "--capture-dir",
        cap,
        "--schema",
        BC_SCHEMA,
        "--output-dir",
        out,
    )
    assert_clean_failure(proc, out, "window.jsonl:4", "malformed capture", needle)


def test_failed_rerun_keeps_previous_output(tmp_path):
    good = write(tmp_path, "good.csv", raw_frame())
    proc, out = preprocess(tmp_path, good)
    assert proc.returncode == 0, proc.stderr
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = write(tmp_path, "bad.csv", raw_frame().drop(columns=["diagnosis"]))
    proc, _ = preprocess(tmp_path, bad)
    assert proc.returncode == 2
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

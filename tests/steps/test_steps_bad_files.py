"""Bad raw files: each case exits with code 2 and one message naming the file, the line (and
column where it applies) and the problem, prints no traceback, and adds nothing to the output
directory.

Covers malformed CSV structure, broken gzip, non-finite numbers, metrics that cannot be
computed (never NaN in evaluation.json), the stratified split of rare classes, and files
whose bytes are not what their name says.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from steplib import metrics, rawio, transform
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.errors import DataError
from steps_helpers import BC_RAW, BC_SCHEMA, run_preprocess, run_script

#: Fields per row of the breast-cancer export: id, event time, target, 30 features.
WIDTH = 33
PREVIOUS = "previous-run.txt"


# --------------------------------------------------------------------------- helpers


def raw_lines(rows: int = 60) -> list[bytes]:
    """The header and the first ``rows`` data lines of the real export, as bytes."""
    return BC_RAW.read_bytes().split(b"\n")[: rows + 1]


def with_field(lines: list[bytes], line_no: int, field: int, value: bytes) -> list[bytes]:
    """``lines`` with one field of 1-based line ``line_no`` replaced."""
    out = list(lines)
    fields = out[line_no - 1].split(b",")
    fields[field] = value
    out[line_no - 1] = b",".join(fields)
    return out


def csv_bytes(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def output_dir(tmp_path: Path) -> Path:
    """An output directory that exists already (as SageMaker creates it) with one old file."""
    out = tmp_path / "out"
    out.mkdir()
    (out / PREVIOUS).write_text("from an earlier run\n")
    return out


def preprocess(tmp_path: Path, input_path: Path, *extra: object):
    out = output_dir(tmp_path)
    return run_preprocess(input_path, out, *extra), out


def error_line(proc) -> str:
    """The one ``ERROR:`` line a failed step prints (asserting there is exactly one)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def assert_clean_failure(proc, out: Path, *needles: str) -> str:
    """Exit code 2, one message holding every needle, nothing new in ``out``."""
    assert proc.returncode == 2, proc.stderr
    message = error_line(proc)
    for needle in needles:
        assert needle in message, message
    assert sorted(p.name for p in out.iterdir()) == [PREVIOUS], "partial output left behind"
    assert not [p for p in out.parent.iterdir() if ".staging-" in p.name], (
        "staging directory left behind"
    )
    return message


# --------------------------------------------------------------------------- 1. CSV structure


@pytest.mark.parametrize(
    "edit,needles",
    [
        (lambda ls: [*ls[:5], ls[5] + b",0.5", *ls[6:]], [f"expected {WIDTH} fields", "found 34"]),
        (
            lambda ls: [*ls[:5], b",".join(ls[5].split(b",")[:20]), *ls[6:]],
            [f"expected {WIDTH} fields", "found 20", "incomplete"],
        ),
        (
            lambda ls: [*ls[:5], b",".join(ls[5].split(b",")[:-1]), *ls[6:]],
            [f"expected {WIDTH} fields", f"found {WIDTH - 1}"],
        ),
    ],
    ids=["extra-field", "too-few-fields", "one-field-short"],
)
def test_wrong_field_count_names_line_and_counts(tmp_path, edit, needles):
    path = write(tmp_path, "a.csv", csv_bytes(edit(raw_lines())))
    assert_clean_failure(*preprocess(tmp_path, path), "a.csv", "line 6:", *needles)


def test_extra_field_line_counts_blank_lines(tmp_path):
    lines = raw_lines()
    # pyarrow skips blank lines; the line number must still be the one an editor shows.
    lines = [*lines[:3], b"", b"", *lines[3:10], lines[10] + b",x", *lines[11:]]
    path = write(tmp_path, "a.csv", csv_bytes(lines))
    assert_clean_failure(*preprocess(tmp_path, path), "a.csv", "line 13:", "found 34")


def test_unterminated_quote_to_end_of_file(tmp_path):
    path = write(tmp_path, "a.csv", csv_bytes(with_field(raw_lines(), 6, 2, b'"benign')))
    assert_clean_failure(
        *preprocess(tmp_path, path),
        "a.csv",
        "column 'diagnosis'",
        "line 6:",
        "quoted value",
        "end of the file",
        "closing quote missing",
    )


def test_unclosed_quote_does_not_silently_swallow_rows(tmp_path):
    # Two stray quotes: pyarrow would read lines 6-10 as one row of 33 fields, losing 4 rows.
    lines = with_field(with_field(raw_lines(), 6, 2, b'"benign'), 10, 2, b'"benign')
    path = write(tmp_path, "a.csv", csv_bytes(lines))
    assert_clean_failure(
        *preprocess(tmp_path, path), "a.csv", "column 'diagnosis'", "line 6:", "line 10"
    )


def test_crlf_line_endings_still_read(tmp_path):
    path = write(tmp_path, "a.csv", b"\r\n".join(raw_lines()) + b"\r\n")
    proc = run_preprocess(path, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- 2. gzip


def test_truncated_gzip(tmp_path):
    data = gzip.compress(csv_bytes(raw_lines(200)))
    path = write(tmp_path, "a.csv.gz", data[: len(data) // 2])
    message = assert_clean_failure(
        *preprocess(tmp_path, path), "a.csv.gz", "not a complete gzip stream", "after line"
    )
    line = int(message.split("after line ")[1].split()[0].replace(",", ""))
    assert 1 < line < 200, message


def test_gzip_cut_inside_the_header(tmp_path):
    path = write(tmp_path, "a.csv.gz", gzip.compress(csv_bytes(raw_lines()))[:40])
    assert_clean_failure(
        *preprocess(tmp_path, path), "a.csv.gz", "not a complete gzip stream", "first line"
    )


def test_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(csv_bytes(raw_lines(200))))
    data[len(data) // 2] ^= 0xFF
    path = write(tmp_path, "a.csv.gz", bytes(data))
    assert_clean_failure(*preprocess(tmp_path, path), "a.csv.gz", "not a valid gzip stream")


def test_complete_multi_member_gzip_is_read(tmp_path):
    lines = raw_lines()
    data = gzip.compress(csv_bytes(lines[:20])) + gzip.compress(csv_bytes(lines[20:]))
    proc = run_preprocess(write(tmp_path, "a.csv.gz", data), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- 3. non-finite numbers


@pytest.mark.parametrize("value", [b"inf", b"-inf", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_feature_value(tmp_path, value):
    path = write(tmp_path, "a.csv", csv_bytes(with_field(raw_lines(), 9, 6, value)))
    assert_clean_failure(
        *preprocess(tmp_path, path),
        "a.csv",
        "column 'mean_area'",
        "line 9:",
        repr(value.decode()),
        "not a finite number",
    )


def test_non_finite_value_in_gzip_csv(tmp_path):
    data = gzip.compress(csv_bytes(with_field(raw_lines(), 12, 3, b"inf")))
    assert_clean_failure(
        *preprocess(tmp_path, write(tmp_path, "a.csv.gz", data)),
        "a.csv.gz",
        "column 'mean_radius'",
        "line 12:",
        "not a finite number",
    )


def test_non_finite_parquet_value(tmp_path):
    df = pd.read_csv(BC_RAW).head(60)
    df.loc[4, "worst_area"] = -np.inf
    path = tmp_path / "raw" / "a.parquet"
    path.parent.mkdir()
    df.to_parquet(path, index=False)
    assert_clean_failure(
        *preprocess(tmp_path, path),
        "a.parquet",
        "column 'worst_area'",
        "row 5:",
        "not a finite number",
    )


def regression_schema(tmp_path: Path) -> Path:
    """The breast-cancer columns as a regression problem: predict mean_area."""
    doc = json.loads(BC_SCHEMA.read_text())
    doc["target"] = {"name": "mean_area", "type": "numeric"}
    doc["features"] = [f for f in doc["features"] if f["name"] != "mean_area"] + [
        {"name": "diagnosis", "type": "categorical"}
    ]
    path = tmp_path / "regression.json"
    path.write_text(json.dumps(doc))
    return path


def test_non_finite_numeric_target(tmp_path):
    path = write(tmp_path, "a.csv", csv_bytes(with_field(raw_lines(), 20, 6, b"Infinity")))
    out = output_dir(tmp_path)
    proc = run_script(
        "preprocess.py",
        "--input-dir", path, "--schema", regression_schema(tmp_path),
        "--problem-type", "regression", "--output-dir", out,
    )  # fmt: skip
    assert_clean_failure(
        proc, out, "a.csv", "column 'mean_area'", "line 20:", "'Infinity'", "not a finite number"
    )


def test_nan_and_blank_stay_missing_values(tmp_path):
    lines = with_field(raw_lines(), 5, 4, b"NaN")
    lines = with_field(lines, 7, 4, b"")
    lines = with_field(lines, 8, 5, b"nan")
    out = tmp_path / "out"
    proc = run_preprocess(write(tmp_path, "a.csv", csv_bytes(lines)), out)
    assert proc.returncode == 0, proc.stderr
    stats = (out / "baseline" / "statistics.json").read_text()
    json.loads(stats, parse_constant=_reject_constant)  # strict JSON: no NaN or Infinity


def _reject_constant(name: str):
    raise AssertionError(f"non-JSON constant {name} written")


# --------------------------------------------------------------------------- 4. evaluate metrics


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Preprocess outputs and a small model trained on them (the evaluate step's inputs)."""
    work = tmp_path_factory.mktemp("trained")
    prep = work / "prep"
    proc = run_preprocess(BC_RAW, prep)
    assert proc.returncode == 0, proc.stderr
    hp = {"num_round": "10", "objective": "binary:logistic", "max_depth": "3", "eta": "0.3"}
    proc = run_script(
        "train_local.py",
        "--train-dir", prep / "train", "--validation-dir", prep / "validation",
        "--model-dir", work / "model", "--hyperparameters", json.dumps(hp),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {"prep": prep, "model": work / "model"}


def run_evaluate(trained, test_dir: Path, out: Path):
    return run_script(
        "evaluate.py",
        "--model-dir", trained["model"], "--test-dir", test_dir,
        "--transform-dir", trained["prep"] / "transform", "--schema", BC_SCHEMA,
        "--problem-type", "binary_classification", "--output-dir", out,
    )  # fmt: skip


def test_evaluation_json_is_strict_json(tmp_path, trained):
    out = tmp_path / "eval"
    proc = run_evaluate(trained, trained["prep"] / "test", out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "evaluation.json").read_text(), parse_constant=_reject_constant)
    assert 0.5 < report["binary_classification_metrics"]["auc"]["value"] <= 1.0


def test_auc_on_one_class_fails_instead_of_writing_nan(tmp_path, trained):
    test = pd.read_csv(trained["prep"] / "test" / "test.csv", dtype=str, keep_default_na=False)
    one_class = tmp_path / "test"
    one_class.mkdir()
    test[test["diagnosis"] == "benign"].to_csv(one_class / "benign-only.csv", index=False)
    out = output_dir(tmp_path)
    assert_clean_failure(
        run_evaluate(trained, one_class, out),
        out,
        "benign-only.csv",
        "metric 'auc' cannot be computed",
        "same class",
        "both classes",
    )


@pytest.mark.filterwarnings("ignore:R\\^2 score is not well-defined")
def test_report_refuses_non_finite_metrics():
    y = np.zeros(20)
    with pytest.raises(DataError, match=r"metric 'auc'.*both classes") as err:
        metrics.model_quality_report(BINARY, y, np.linspace(0, 1, 20), source="t.csv")
    assert err.value.file == "t.csv"
    with pytest.raises(DataError, match=r"metric 'r2'.*at least 2 test rows"):
        metrics.model_quality_report(REGRESSION, np.array([1.0]), np.array([2.0]))
    sec = metrics.model_quality_report(MULTICLASS, np.zeros(6), np.eye(3)[[0] * 6])
    json.dumps(sec, allow_nan=False)  # one class is fine where every metric is defined


# --------------------------------------------------------------------------- 5. stratified split


@pytest.mark.parametrize("fraction", [0.15, 0.1, 0.08])
@pytest.mark.parametrize("rare", [3, 4, 5, 6])
def test_every_class_in_every_split(rare, fraction):
    # Rounding alone gives such a class no test or validation row: round(0.15 * 3) == 0,
    # round(0.1 * 5) == 0, round(0.08 * 6) == 0.
    y = np.array(["common"] * 80 + ["rare"] * rare)
    for seed in range(5):
        parts = transform.split_indices(y, BINARY, seed, fraction, fraction)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
        for part in parts:
            assert set(y[part]) == {"common", "rare"}, (rare, seed)
        again = transform.split_indices(y, BINARY, seed, fraction, fraction)
        assert all((a == b).all() for a, b in zip(parts, again, strict=True))


def rounded_split(y: np.ndarray, seed: int, val: float, test: float) -> tuple:
    """The split as it was before every class got a row in each part (rounding only)."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for cls in sorted(set(y)):
        perm = rng.permutation(np.flatnonzero(y == cls))
        n_test, n_val = round(test * len(perm)), round(val * len(perm))
        for part, rows in zip(
            parts,
            (perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]),
            strict=True,
        ):
            part.append(rows)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_split_of_common_classes_is_unchanged(seed):
    # Classes big enough for rounding alone keep exactly the rows they had.
    y = np.array(["a"] * 70 + ["b"] * 30 + ["c"] * 7)
    got = transform.split_indices(y, MULTICLASS, seed, 0.15, 0.15)
    for new, old in zip(got, rounded_split(y, seed, 0.15, 0.15), strict=True):
        assert np.array_equal(new, old)


def test_large_fractions_still_leave_a_training_row():
    y = np.array(["a"] * 40 + ["b"] * 4)
    tr, va, te = transform.split_indices(y, BINARY, 0, 0.45, 0.45)
    for part in (tr, va, te):
        assert (y[part] == "b").sum() >= 1


def test_regression_split_rounding_unchanged():
    tr, va, te = transform.split_indices(np.arange(20.0), REGRESSION, 0, 0.15, 0.15)
    assert (len(tr), len(va), len(te)) == (14, 3, 3)


def test_class_of_three_rows_reaches_the_test_split(tmp_path):
    df = pd.read_csv(BC_RAW, dtype=str, keep_default_na=False)
    rare = pd.concat(
        [df[df.diagnosis == "benign"].head(57), df[df.diagnosis == "malignant"].head(3)]
    )
    out = tmp_path / "out"
    path = tmp_path / "raw" / "a.csv"
    path.parent.mkdir()
    rare.to_csv(path, index=False)
    proc = run_preprocess(path, out)
    assert proc.returncode == 0, proc.stderr
    test = pd.read_csv(out / "test" / "test.csv")
    validation = np.loadtxt(out / "validation" / "validation.csv", delimiter=",", ndmin=2)
    assert set(test["diagnosis"]) == {"benign", "malignant"}
    assert set(validation[:, 0]) == {0.0, 1.0}


# --------------------------------------------------------------------------- 6. misnamed formats


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pd.read_csv(BC_RAW).head(60).to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name,data,needle",
    [
        ("a.csv", parquet_bytes, "looks like a Parquet file; name it .parquet"),
        ("a.csv", lambda: gzip.compress(csv_bytes(raw_lines())), "looks like a gzip-compressed file; name it .csv.gz"),
        ("a.parquet", lambda: csv_bytes(raw_lines()), "looks like text (CSV?), not a Parquet file"),
        ("a.csv.gz", lambda: csv_bytes(raw_lines()), "is not gzip-compressed"),
        ("a.csv.gz", parquet_bytes, "looks like a Parquet file"),
        ("a.csv", lambda: "\n".join(ln.decode() for ln in raw_lines()).encode("utf-16"), "looks like UTF-16 text"),
        ("a.csv", lambda: b"PK\x03\x04" + bytes(200), "looks like a ZIP archive"),
    ],
    ids=["parquet-as-csv", "gzip-as-csv", "csv-as-parquet", "text-as-gz", "parquet-as-gz", "utf16", "zip"],
)  # fmt: skip
def test_format_does_not_match_name(tmp_path, name, data, needle):
    path = write(tmp_path, name, data())
    assert_clean_failure(*preprocess(tmp_path, path), name, needle)


@pytest.mark.parametrize("delimiter,word", [(b";", "semicolon"), (b"\t", "tab"), (b"|", "pipe")])
def test_other_delimiter(tmp_path, delimiter, word):
    lines = [ln.replace(b",", delimiter) for ln in raw_lines()]
    path = write(tmp_path, "a.csv", csv_bytes(lines))
    assert_clean_failure(
        *preprocess(tmp_path, path),
        "a.csv",
        f"looks like {word}-delimited text; the platform reads comma-separated CSV",
    )


def test_semicolon_csv_inside_gzip(tmp_path):
    data = gzip.compress(csv_bytes([ln.replace(b",", b";") for ln in raw_lines()]))
    assert_clean_failure(
        *preprocess(tmp_path, write(tmp_path, "a.csv.gz", data)),
        "a.csv.gz",
        "looks like semicolon-delimited text",
    )


def test_sniffing_is_by_content_not_name():
    assert rawio.sniff_kind(b"PAR1\x15\x04\x15\x00") == "parquet"
    assert rawio.sniff_kind(b"PAR1,record_id\n") == "text"  # a header that starts "PAR1"
    assert rawio.sniff_kind("año,x\n".encode()[:2]) == "text"  # cut inside a character
    assert rawio.format_problem("a.csv", b"record_id,event_time\n") is None
    assert rawio.format_problem("a.CSV.GZ", gzip.compress(b"x")) is None
    assert rawio.format_problem("a.pq", b"PAR1\x15\x04\x00") is None
    assert rawio.delimiter_problem("a,b;c\n", ["a", "b;c"]) is None

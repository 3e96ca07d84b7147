"""The training-set step against stubbed Athena and S3 clients (botocore Stubber), and its
local path: the same query with DuckDB over a jsonl the local feature store wrote."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import build_training_set as build
import ingest_features as ingest
import pandas as pd
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from steplib.contract import BINARY, LOCAL_FEATURE_STORE_VARIABLE
from steplib.errors import DataError
from steplib.local_feature_store import LocalFeatureStore
from steplib.schema import parse_schema_doc
from steps_helpers import run_script

SCHEMA = {
    "recordIdColumn": "record_id",
    "eventTimeColumn": "event_time",
    "target": {"name": "label", "type": "categorical", "classes": ["no", "yes"]},
    "features": [{"name": "x", "type": "numeric"}, {"name": "colour", "type": "categorical"}],
}
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
CUTOFF = "2026-12-02T17:00:00Z"
DATABASE, TABLE, WORKGROUP = "sagemaker_featurestore", "dev_fg_1764000000", "dev-training-set"
RESULT_URI = "s3://dev-feature-store/athena-results/q-1.csv"
#: Athena's result: every value quoted, a NULL as an empty unquoted value.
ATHENA_CSV = (
    '"record_id","event_time","label","x","colour"\n'
    '"r1","2026-01-01T00:00:00Z","no","1.5","red"\n'
    '"r2","2026-01-01T00:00:01Z","yes",,"blue"\n'
    '"r3","2026-01-01T00:00:02.500Z","no","3.0E-4",\n'
)
#: What the step writes from it (and from the same records in the local store).
EXPECTED_CSV = (
    '"record_id","event_time","label","x","colour"\n'
    '"r1","2026-01-01T00:00:00Z","no",1.5,"red"\n'
    '"r2","2026-01-01T00:00:01Z","yes",,"blue"\n'
    '"r3","2026-01-01T00:00:02.500Z","no",0.0003,\n'
)


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCAL_FEATURE_STORE_VARIABLE, raising=False)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    return tmp_path


def _clients():
    kw = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client("athena", **kw), boto3.client("s3", **kw)


def _sql(cutoff: str = CUTOFF) -> str:
    return build.training_set_sql(parse_schema_doc(SCHEMA), TABLE, cutoff, "athena")


def _start(stub: Stubber, cutoff: str = CUTOFF) -> None:
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {
            "QueryString": _sql(cutoff), "QueryExecutionContext": {"Database": DATABASE},
            "WorkGroup": WORKGROUP,
        },
    )  # fmt: skip


def _state(stub: Stubber, state: str, **status: str) -> None:
    execution: dict = {"QueryExecutionId": "q-1", "Status": {"State": state, **status}}
    if state == "SUCCEEDED":
        execution["ResultConfiguration"] = {"OutputLocation": RESULT_URI}
    stub.add_response(
        "get_query_execution", {"QueryExecution": execution}, {"QueryExecutionId": "q-1"}
    )


def _result(stub: Stubber, text: str) -> None:
    data = text.encode()
    stub.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(data), len(data))},
        {"Bucket": "dev-feature-store", "Key": "athena-results/q-1.csv"},
    )


class FakeClock:
    """``sleep`` and ``monotonic`` of a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _build(files, athena, s3, clock=None, **kw):
    clock = clock or FakeClock()
    args = {
        "schema_path": files / "schema.json", "feature_group": "dev-fg", "database": DATABASE,
        "table": TABLE, "workgroup": WORKGROUP, "cutoff": CUTOFF, "execution_start": "",
        "output_dir": files / "out", "athena": athena, "s3": s3, "sleep": clock.sleep,
        "clock": clock.monotonic, "now": NOW, **kw,
    }  # fmt: skip
    return build.build_training_set(**args)


def test_the_query_is_polled_until_it_succeeds_and_its_result_written(files) -> None:
    (athena, s3), clock = _clients(), FakeClock()
    with Stubber(athena) as a, Stubber(s3) as s:
        _start(a)
        for state in ("QUEUED", "RUNNING", "SUCCEEDED"):
            _state(a, state)
        _result(s, ATHENA_CSV)
        summary = _build(files, athena, s3, clock, poll_seconds=3)
        a.assert_no_pending_responses()
        s.assert_no_pending_responses()
    assert clock.sleeps == [3, 3]
    assert (files / "out" / "training-set.csv").read_text() == EXPECTED_CSV
    assert [p.name for p in (files / "out").iterdir()] == ["training-set.csv"]
    assert summary == {
        "feature_group": "dev-fg", "cutoff": CUTOFF, "rows": 3, "query_execution_id": "q-1",
    }  # fmt: skip


def test_the_query_asks_for_each_records_latest_version_as_of_the_cutoff() -> None:
    sql = _sql()
    assert f"from_iso8601_timestamp('{CUTOFF}')" in sql and f'FROM "{TABLE}" f' in sql
    assert 'SELECT v."record_id", v."event_time", v."label", v."x", v."colour"' in sql


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_a_failed_query_names_athenas_reason_and_writes_nothing(files, state) -> None:
    athena, s3 = _clients()
    with Stubber(athena) as a:
        _start(a)
        _state(a, "RUNNING")
        _state(
            a, state, StateChangeReason="COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved"
        )
        with pytest.raises(DataError, match=rf"Athena query q-1 .*{state}: COLUMN_NOT_FOUND"):
            _build(files, athena, s3)
        a.assert_no_pending_responses()
    assert not (files / "out").exists()


def test_a_query_past_the_timeout_is_stopped(files) -> None:
    (athena, s3), clock = _clients(), FakeClock()
    with Stubber(athena) as a:
        _start(a)
        for _ in range(4):  # at 0, 2, 4 and 6 seconds
            _state(a, "RUNNING")
        a.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})
        with pytest.raises(DataError, match=r"still RUNNING after 5 s .*the query was stopped"):
            _build(files, athena, s3, clock, poll_seconds=2, timeout_seconds=5)
        a.assert_no_pending_responses()
    assert clock.sleeps == [2, 2, 2] and not (files / "out").exists()


def test_no_record_as_of_the_cutoff_names_the_group_the_table_and_the_cutoff(files) -> None:
    athena, s3 = _clients()
    with Stubber(athena) as a, Stubber(s3) as s:
        _start(a)
        _state(a, "SUCCEEDED")
        _result(s, ATHENA_CSV.splitlines(keepends=True)[0])
        with pytest.raises(DataError) as err:
            _build(files, athena, s3)
    message = err.value.message
    assert f"feature group dev-fg (table {DATABASE}.{TABLE})" in message
    assert f"no record as of {CUTOFF}" in message and "some minutes after ingestion" in message
    assert not (files / "out").exists()


def test_a_result_with_other_columns_is_refused(files) -> None:
    athena, s3 = _clients()
    other = ATHENA_CSV.replace('"colour"\n', '"color"\n', 1)
    with Stubber(athena) as a, Stubber(s3) as s:
        _start(a)
        _state(a, "SUCCEEDED")
        _result(s, other)
        with pytest.raises(DataError, match=r"q-1.csv: the query result's columns are .*'color'"):
            _build(files, athena, s3)
    assert not (files / "out").exists()


def test_athenas_lowercased_column_names_are_written_as_the_schema_names_them(files) -> None:
    doc = {**SCHEMA, "features": [{"name": "X", "type": "numeric"}, SCHEMA["features"][1]]}
    (files / "schema.json").write_text(json.dumps(doc))
    athena, s3 = _clients()
    with Stubber(athena) as a, Stubber(s3) as s:
        sql = build.training_set_sql(parse_schema_doc(doc), TABLE, CUTOFF, "athena")
        a.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, {
            "QueryString": sql, "QueryExecutionContext": {"Database": DATABASE},
            "WorkGroup": WORKGROUP,
        })  # fmt: skip
        _state(a, "SUCCEEDED")
        _result(s, ATHENA_CSV)  # Athena answers "x" for the column "X"
        _build(files, athena, s3)
    assert (files / "out" / "training-set.csv").read_text() == EXPECTED_CSV.replace('"x"', '"X"', 1)


def test_an_empty_string_is_a_value_and_an_empty_unquoted_field_a_null(tmp_path) -> None:
    (tmp_path / "r.csv").write_text('"a","b"\n"",\n"1","2"\n')
    result = build.read_athena_csv(tmp_path / "r.csv", "r.csv")
    assert result.header == ["a", "b"]
    assert result.rows.to_pydict() == {"a": ["", "1"], "b": [None, "2"]}


@pytest.mark.parametrize(
    ("cutoff", "problem"),
    [
        ("2026-12-02", "not an ISO-8601 UTC time"),
        ("2026-12-02 17:00:00Z", "not an ISO-8601 UTC time"),
        ("2026-12-02T17:00:00+02:00", "not an ISO-8601 UTC time"),
        ("2026-12-02T17:00:00Z' OR '1'='1", "not an ISO-8601 UTC time"),
        ("2026-02-30T17:00:00Z", "not a valid time"),
        ("2026-12-02T18:01:01Z", "is in the future"),
    ],
)
def test_a_bad_cutoff_is_refused_before_any_query(files, cutoff, problem) -> None:
    athena, s3 = _clients()
    with Stubber(athena), pytest.raises(DataError, match=rf"^--cutoff: .*{problem}"):
        _build(files, athena, s3, cutoff=cutoff)  # any AWS call would fail: none is stubbed
    assert not (files / "out").exists()


def test_a_cutoff_within_a_minute_of_now_is_clock_skew_not_the_future() -> None:
    almost = (NOW + timedelta(seconds=59)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert build.choose_cutoff(almost, "", NOW) == almost


@pytest.mark.parametrize(
    ("start", "cutoff"),
    [
        ("2026-11-02T17:30:05Z", "2026-11-02T17:30:05Z"),
        ("2026-11-02T17:30:05.123Z", "2026-11-02T17:30:05.123Z"),
        ("2026-11-02T17:30:05.123456+00:00", "2026-11-02T17:30:05.123Z"),
        ("2026-11-02T17:30:05.000+00:00", "2026-11-02T17:30:05Z"),
        ("2026-11-02T17:30:05.5Z", "2026-11-02T17:30:05.500Z"),
    ],
)
def test_an_empty_cutoff_means_the_executions_start(files, start, cutoff) -> None:
    """Through main(), with the arguments as the pipeline definition passes them."""
    athena, s3 = _clients()
    with Stubber(athena) as a, Stubber(s3) as s:
        _start(a, cutoff)
        _state(a, "SUCCEEDED")
        _result(s, ATHENA_CSV)
        build.main(
            [
                "--schema", str(files), "--feature-group", "dev-fg", "--database", DATABASE,
                "--table", TABLE, "--workgroup", WORKGROUP, "--region", "us-east-1",
                "--cutoff=", f"--execution-start={start}", "--output-dir", str(files / "out"),
            ],
            athena=athena, s3=s3,
        )  # fmt: skip
        a.assert_no_pending_responses()
    assert (files / "out" / "training-set.csv").read_text() == EXPECTED_CSV


def test_without_a_cutoff_or_an_execution_start_nothing_is_asked() -> None:
    with pytest.raises(DataError, match=r"^--execution-start: is needed when --cutoff is empty"):
        build.choose_cutoff("", "", NOW)


def test_a_failure_leaves_an_existing_output_as_it_was(files) -> None:
    (files / "out").mkdir()
    (files / "out" / "training-set.csv").write_text("the previous run's\n")
    athena, s3 = _clients()
    with Stubber(athena) as a:
        _start(a)
        _state(a, "FAILED", StateChangeReason="boom")
        proc = _run_main(files, athena, s3)
    assert proc == 2
    assert (files / "out" / "training-set.csv").read_text() == "the previous run's\n"


def _run_main(files, athena, s3, *extra: str) -> int:
    from steplib.errors import run_main

    argv = [
        "--schema", str(files / "schema.json"), "--feature-group", "dev-fg",
        "--database", DATABASE, "--table", TABLE, "--workgroup", WORKGROUP,
        f"--cutoff={CUTOFF}", "--output-dir", str(files / "out"), *extra,
    ]  # fmt: skip
    return run_main(lambda a: build.main(a, athena=athena, s3=s3), argv)


# ------------------------------------------------------------------------------ local path

ROWS = pd.DataFrame(
    {
        "record_id": ["r1", "r2", "r3"],
        "event_time": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02.500Z"],
        "label": ["no", "yes", "no"],
        "x": [1.5, None, 3e-4],
        "colour": ["red", "blue", None],
    }
)


def _ingest(store: LocalFeatureStore, frame: pd.DataFrame) -> None:
    schema = parse_schema_doc(SCHEMA)
    summary = ingest.put_all(store, "dev-fg", ingest.records(frame, schema, "rows"))
    assert summary.written == len(frame)


def _local_store(files, written_at: list[datetime]) -> LocalFeatureStore:
    times = iter(written_at)
    return LocalFeatureStore(files / "store", parse_schema_doc(SCHEMA), clock=lambda: next(times))


def test_the_local_path_runs_the_same_query_with_duckdb(files, monkeypatch, caplog) -> None:
    before = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    after = datetime(2026, 12, 2, 17, 0, 0, 1000, tzinfo=UTC)  # one millisecond past the cutoff
    store = _local_store(files, [before] * 6 + [after] * 4)
    _ingest(store, ROWS)  # before the cutoff: these are the training set
    late = pd.DataFrame(
        {
            "record_id": ["r1", "r4"], "event_time": ["2026-06-01T00:00:00Z"] * 2,
            "label": ["yes", "yes"], "x": [9.0, 4.0], "colour": ["red", "red"],
        }
    )  # fmt: skip
    _ingest(store, late)  # a newer version of r1 and a new r4, written after the cutoff
    lines = [
        json.loads(line) for line in (files / "store" / "dev-fg.jsonl").read_text().splitlines()
    ]
    assert lines[0]["write_time"] == "2026-12-02T16:00:00.000Z" and lines[0]["is_deleted"] is False
    assert lines[-1]["api_invocation_time"] == "2026-12-02T17:00:00.001Z"
    monkeypatch.setenv(LOCAL_FEATURE_STORE_VARIABLE, str(files / "store"))
    caplog.set_level("INFO", "pipeline_steps.build_training_set")
    code = run_script(
        "build_training_set.py", "--schema", files / "schema.json", "--feature-group", "dev-fg",
        "--database", DATABASE, "--table", TABLE, "--workgroup", WORKGROUP,
        f"--cutoff={CUTOFF}", "--output-dir", files / "out",
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    assert (files / "out" / "training-set.csv").read_text() == EXPECTED_CSV  # as from Athena
    assert "3 rows of dev-fg as of 2026-12-02T17:00:00Z (query execution local)" in caplog.text


def test_the_local_path_without_the_groups_file_names_it(files) -> None:
    with pytest.raises(DataError, match=r"dev-fg.jsonl: the local feature store holds no record"):
        _build(files, None, None, local_store=files / "store")
    assert not (files / "out").exists()


def test_the_local_path_with_nothing_by_the_cutoff_is_the_zero_row_error(files) -> None:
    _ingest(_local_store(files, [NOW] * 6), ROWS)  # all written after the cutoff
    with pytest.raises(DataError, match=r"dev-fg \(.*dev-fg.jsonl\): no record as of"):
        _build(files, None, None, local_store=files / "store")


# ------------------------------------------------------------------- Preprocess reads it

#: Raw data with a derived id and time and a raw column name of its own: only the
#: training set's layout (the schema's names, id and time as columns) reads as written.
RAW_NAMED = {
    **SCHEMA,
    "sourceColumns": {"colour": "Colour Name"},
    "derived": {"recordId": "row_hash", "eventTime": "2026-01-01T00:00:00Z"},
}


def test_preprocess_trains_on_the_training_set_with_written_layout(files, monkeypatch) -> None:
    (files / "schema.json").write_text(json.dumps(RAW_NAMED))
    n = 80
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i:03d}" for i in range(n)],
            "event_time": ["2026-01-01T00:00:00Z"] * n,
            "label": ["yes" if i % 3 else "no" for i in range(n)],
            "x": [float(i % 7) if i % 11 else None for i in range(n)],
            "colour": [("red", "blue", "green")[i % 3] for i in range(n)],
        }
    )
    store = LocalFeatureStore(
        files / "store", parse_schema_doc(RAW_NAMED),
        clock=lambda: datetime(2026, 11, 1, tzinfo=UTC),
    )  # fmt: skip
    ingest.put_all(store, "dev-fg", ingest.records(frame, parse_schema_doc(RAW_NAMED), "rows"))
    monkeypatch.setenv(LOCAL_FEATURE_STORE_VARIABLE, str(files / "store"))
    built = _run_main(files, None, None)
    assert built == 0
    args = [
        "--input-dir", files / "out", "--schema", files / "schema.json",
        "--problem-type", BINARY, "--output-dir", files / "pre",
    ]  # fmt: skip
    proc = run_script("preprocess.py", *args, "--written-layout")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((files / "pre" / "transform" / "preprocess_summary.json").read_text())
    assert summary["rows_read"] == n and summary["labels"] == ["no", "yes"]
    test_rows = pd.read_csv(files / "pre" / "test" / "test.csv")
    assert set(test_rows["record_id"]) <= set(frame["record_id"])  # the ids as stored
    raw = run_script("preprocess.py", *args[:-1], files / "raw-layout")
    assert raw.returncode == 2 and "'Colour Name'" in raw.stderr  # read as raw, it is not

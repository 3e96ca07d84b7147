"""The feature-ingestion step against a stubbed Feature Store runtime (botocore Stubber;
moto has no Feature Store runtime): throttling, partial failures, idempotence, bad input."""

from __future__ import annotations

import json
import random
import threading

import boto3
import ingest_features as ingest
import pandas as pd
import pytest
from botocore.stub import Stubber
from steplib.errors import DataError

SCHEMA = {
    "recordIdColumn": "record_id",
    "eventTimeColumn": "event_time",
    "target": {"name": "label", "type": "categorical", "classes": ["no", "yes"]},
    "features": [{"name": "x", "type": "numeric"}, {"name": "colour", "type": "categorical"}],
}
ROWS = pd.DataFrame(
    {
        "record_id": ["r1", "r2", "r3"],
        "event_time": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02.500Z"],
        "label": ["no", "yes", "no"],
        "x": [1.5, None, 3.0],
        "colour": ["red", "blue", None],
    }
)


def _record(i: int) -> list[dict[str, str]]:
    row = ROWS.iloc[i]
    return [
        {"FeatureName": k, "ValueAsString": ingest._text(v)}
        for k, v in row.items() if not ingest._missing(v)
    ]  # fmt: skip


@pytest.fixture
def files(tmp_path):
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "in").mkdir()
    ROWS.to_csv(tmp_path / "in" / "records.csv", index=False)
    return tmp_path


def _client():
    return boto3.client(
        "sagemaker-featurestore-runtime", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip


def _expect(stub: Stubber, i: int) -> None:
    stub.add_response("put_record", {}, {"FeatureGroupName": "dev-fg", "Record": _record(i)})


def _run(files, client, **kw):
    return ingest.ingest(
        files / "in", files / "schema.json", "dev-fg", files / "out", client,
        concurrency=1, sleep=lambda s: None, **kw,
    )  # fmt: skip


def test_every_record_is_put_and_missing_values_are_left_out(files) -> None:
    client = _client()
    with Stubber(client) as stub:
        for i in range(3):
            _expect(stub, i)
        summary = _run(files, client)
        stub.assert_no_pending_responses()
    assert summary["written"] == 3 and summary["rejected"] == 0
    assert {"FeatureName": "x", "ValueAsString": "3.0"} in _record(2)
    assert not any(f["FeatureName"] == "x" for f in _record(1))  # r2 has no x
    assert json.loads((files / "out" / "summary.json").read_text()) == summary


def test_throttling_is_retried_with_back_off(files) -> None:
    client, waits = _client(), []
    with Stubber(client) as stub:
        stub.add_client_error("put_record", "ThrottlingException", "Rate exceeded", 400)
        stub.add_client_error("put_record", "ServiceUnavailable", "try again", 503)
        for i in range(3):
            _expect(stub, i)
        summary = ingest.ingest(
            files / "in", files / "schema.json", "dev-fg", files / "out", client,
            concurrency=1, sleep=waits.append,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert (summary["written"], summary["retries"]) == (3, 2)
    assert len(waits) == 2 and 0 <= waits[0] <= 0.2 and 0 <= waits[1] <= 0.4


def test_a_refused_record_is_rejected_the_others_are_written(files) -> None:
    client = _client()
    with Stubber(client) as stub:
        _expect(stub, 0)
        stub.add_client_error("put_record", "ValidationError", "bad value for x", 400)
        _expect(stub, 2)
        with pytest.raises(DataError, match="1 of 3 records were rejected"):
            _run(files, client)
        stub.assert_no_pending_responses()
    summary = json.loads((files / "out" / "summary.json").read_text())
    assert (summary["written"], summary["rejected"]) == (2, 1)
    assert summary["rejections"] == ["record r2: ValidationError: bad value for x"]


def test_throttled_past_the_last_attempt_is_a_rejection_and_allowed_ones_pass(files) -> None:
    client = _client()
    with Stubber(client) as stub:
        _expect(stub, 0)
        for _ in range(3):
            stub.add_client_error("put_record", "ThrottlingException", "Rate exceeded", 400)
        _expect(stub, 2)
        summary = _run(files, client, max_attempts=3, max_rejected=1)
    assert summary["rejected"] == 1 and "gave up after retries" in summary["rejections"][0]


def test_one_write_per_record_id_and_event_time_the_last_row_wins(files) -> None:
    rows = pd.concat([ROWS, ROWS.iloc[[0]].assign(x=9.0)], ignore_index=True)
    rows.to_csv(files / "in" / "records.csv", index=False)
    client = _client()
    with Stubber(client) as stub:
        for i in (1, 2):
            _expect(stub, i)
        stub.add_response("put_record", {}, {
            "FeatureGroupName": "dev-fg",
            "Record": [{"FeatureName": "record_id", "ValueAsString": "r1"},
                       {"FeatureName": "event_time", "ValueAsString": "2026-01-01T00:00:00Z"},
                       {"FeatureName": "label", "ValueAsString": "no"},
                       {"FeatureName": "x", "ValueAsString": "9.0"},
                       {"FeatureName": "colour", "ValueAsString": "red"}],
        })  # fmt: skip
        summary = _run(files, client)
    assert (summary["rows_read"], summary["duplicates_skipped"], summary["written"]) == (4, 1, 3)


@pytest.mark.parametrize("bad", ["2026-01-01", "2026-01-01 00:00:00", "2026-01-01T00:00:00+02:00"])
def test_an_event_time_feature_store_would_refuse_names_the_row(files, bad) -> None:
    ROWS.assign(event_time=["2026-01-01T00:00:00Z", bad, "2026-01-01T00:00:02Z"]).to_csv(
        files / "in" / "records.csv", index=False
    )
    with pytest.raises(DataError, match=r"column 'event_time'.*data row 2"):
        _run(files, _client())
    assert not (files / "out").exists()


def test_a_record_without_an_id_names_its_row(files) -> None:
    ROWS.assign(record_id=["r1", None, "r3"]).to_csv(files / "in" / "records.csv", index=False)
    with pytest.raises(DataError, match=r"column 'record_id'.*data row 2: no record id"):
        _run(files, _client())


def test_a_type_mismatch_names_file_line_and_column(files) -> None:
    ROWS.assign(x=["1.5", "lots", "3"]).to_csv(files / "in" / "records.csv", index=False)
    with pytest.raises(DataError, match=r"records.csv.*'x'.*lots"):
        _run(files, _client())


def test_records_go_concurrently(files) -> None:
    seen, lock = [], threading.Lock()

    class Client:
        class exceptions:
            ClientError = Exception

        def put_record(self, **kw):
            with lock:
                seen.append(kw["Record"][0]["ValueAsString"])

    rows = pd.DataFrame({**{c: ROWS[c].tolist() * 50 for c in ROWS}})
    rows["record_id"] = [f"r{i}" for i in range(len(rows))]
    rows.to_csv(files / "in" / "records.csv", index=False)
    summary = ingest.ingest(files / "in", files / "schema.json", "dev-fg", files / "out", Client(),
                            concurrency=8)  # fmt: skip
    assert summary["written"] == 150 and sorted(seen) == sorted(rows["record_id"])
    assert random.Random(0).random() == random.Random(0).random()  # seeded jitter

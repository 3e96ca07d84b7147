"""The point-in-time query, run with DuckDB over a Parquet fixture laid out like a feature
group's offline store (features, ``write_time``, ``api_invocation_time``, ``is_deleted``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_steps.steplib.point_in_time import TIMESTAMP_OF, point_in_time_sql, snapshot_sql


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def iso(day: int, hour: int = 0) -> str:
    return t(day, hour).strftime("%Y-%m-%dT%H:%M:%SZ")


# (record id, event time, x, label, written at, deleted): the store's history.
HISTORY = [
    ("a", iso(1), 1.0, "no", t(1, 1), False),
    ("a", iso(3), 3.0, "yes", t(3, 1), False),  # a newer version
    ("a", iso(5), 5.0, "yes", t(5, 1), False),  # after every as-of time but one
    ("b", iso(2), 20.0, "no", t(2, 1), False),
    ("b", iso(2), 21.0, "no", t(2, 2), False),  # the same event time, written again: wins
    ("c", iso(2), 30.0, "no", t(9, 0), False),  # late-arriving: written on day 9
    ("d", iso(1), 40.0, "yes", t(1, 1), False),
    ("d", iso(4), None, None, t(4, 1), True),  # deleted on day 4
    ("e", iso(6), 60.0, "no", t(6, 1), False),  # only after its entity's time
]
# (record id, as-of time): the entity table.
ENTITIES = [
    ("a", iso(4)),  # -> day-3 version
    ("a", iso(2)),  # -> day-1 version (the same record at another time)
    ("a", iso(6)),  # -> day-5 version
    ("b", iso(3)),  # -> the second write of day 2
    ("c", iso(3)),  # -> nothing: the day-2 record was not written until day 9
    ("c", iso(10)),  # -> written by then
    ("d", iso(3)),  # -> the day-1 version (the deletion comes later)
    ("d", iso(5)),  # -> nothing: deleted on day 4
    ("e", iso(2)),  # -> nothing before its time
    ("z", iso(2)),  # -> an id the store has never seen
]
EXPECTED = [
    ("a", iso(4), 3.0, "yes"), ("a", iso(2), 1.0, "no"), ("a", iso(6), 5.0, "yes"),
    ("b", iso(3), 21.0, "no"), ("c", iso(3), None, None), ("c", iso(10), 30.0, "no"),
    ("d", iso(3), 40.0, "yes"), ("d", iso(5), None, None), ("e", iso(2), None, None),
    ("z", iso(2), None, None),
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    root: Path = tmp_path_factory.mktemp("offline-store")
    columns = list(zip(*HISTORY, strict=True))
    pq.write_table(
        pa.table({
            "record_id": pa.array(columns[0]), "event_time": pa.array(columns[1]),
            "x": pa.array(columns[2], pa.float64()), "label": pa.array(columns[3], pa.string()),
            "write_time": pa.array(columns[4], pa.timestamp("us", tz="UTC")),
            # Feature Store stamps the API call a moment before the write lands.
            "api_invocation_time": pa.array(columns[4], pa.timestamp("us", tz="UTC")),
            "is_deleted": pa.array(columns[5]),
        }),
        root / "part-0.parquet",
    )  # fmt: skip
    ids, times = zip(*ENTITIES, strict=True)
    pq.write_table(pa.table({"record_id": ids, "as_of": times}), root / "entities.parquet")
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute(f"CREATE VIEW store AS SELECT * FROM read_parquet('{root}/part-*.parquet')")
    db.execute(f"CREATE VIEW entities_in AS SELECT * FROM read_parquet('{root}/entities.parquet')")
    return db


def _query(dialect: str, **kw: object) -> str:
    return point_in_time_sql(
        feature_table="store", entity_table="entities_in", record_id="record_id",
        event_time="event_time", features=["x", "label"], dialect=dialect, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_each_entity_row_gets_its_features_as_they_stood_at_its_time(store) -> None:
    rows = store.execute(_query("duckdb")).fetchall()
    assert rows == sorted(EXPECTED, key=lambda r: (r[0], r[1]))


def test_a_label_from_the_entity_table_comes_after_the_time(store) -> None:
    store.execute("CREATE OR REPLACE VIEW labelled AS SELECT *, 'L' AS y FROM entities_in")
    sql = point_in_time_sql(
        feature_table="store", entity_table="labelled", record_id="record_id",
        event_time="event_time", features=["x"], label="y", dialect="duckdb",
    )  # fmt: skip
    rows = store.execute(sql).fetchall()
    assert [r[2] for r in rows] == ["L"] * len(ENTITIES)
    assert [r[3] for r in rows] == [e[2] for e in sorted(EXPECTED, key=lambda r: (r[0], r[1]))]


def test_athena_and_duckdb_run_the_same_query_but_for_the_time_parsing() -> None:
    athena, duck = _query("athena"), _query("duckdb")
    assert "from_iso8601_timestamp(" in athena and "from_iso8601_timestamp(" not in duck
    normalised = duck
    for expression in ('f."event_time"', 'a."as_of"'):
        normalised = normalised.replace(
            TIMESTAMP_OF["duckdb"].format(expression), TIMESTAMP_OF["athena"].format(expression)
        )
    assert normalised == athena


def test_names_are_quoted_and_anything_else_is_refused() -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        point_in_time_sql(
            feature_table="store; DROP TABLE x", entity_table="e", record_id="id",
            event_time="t", features=["x"],
        )  # fmt: skip
    sql = _query("athena")
    assert '"sagemaker_featurestore"' not in sql and 'JOIN "store" f' in sql


def test_a_repeated_entity_row_gets_one_result_each(store) -> None:
    store.execute(
        "CREATE OR REPLACE VIEW twice AS SELECT * FROM entities_in UNION ALL "
        "SELECT * FROM entities_in WHERE record_id = 'a'"
    )
    sql = point_in_time_sql(
        feature_table="store", entity_table="twice", record_id="record_id",
        event_time="event_time", features=["x"], dialect="duckdb",
    )  # fmt: skip
    rows = store.execute(sql).fetchall()
    assert len(rows) == len(ENTITIES) + 3
    assert sorted(r[2] for r in rows if r[0] == "a") == [1.0, 1.0, 3.0, 3.0, 5.0, 5.0]


# ---------------------------------------------------------------- one cutoff for every record


def _snapshot_sql(as_of: str, dialect: str) -> str:
    return snapshot_sql(
        feature_table="store", record_id="record_id", event_time="event_time",
        columns=["x", "label"], as_of=as_of, dialect=dialect,
    )  # fmt: skip


def _snapshot(store: duckdb.DuckDBPyConnection, as_of: str) -> list[tuple]:
    return store.execute(_snapshot_sql(as_of, "duckdb")).fetchall()


def test_a_snapshot_holds_each_record_as_it_stood_at_the_cutoff(store) -> None:
    assert _snapshot(store, iso(4)) == [
        ("a", iso(3), 3.0, "yes"),  # day 5's version comes later
        ("b", iso(2), 21.0, "no"),  # the second write of one record and event time wins
        ("d", iso(1), 40.0, "yes"),  # the deletion (event day 4) was written after 00:00
    ]  # c: written on day 9 (late-arriving); e: only a version after the cutoff


def test_a_later_event_time_wins_over_a_version_written_later(store) -> None:
    rows = _snapshot(store, iso(10))
    assert rows[0] == ("a", iso(5), 5.0, "yes")
    assert [r[0] for r in rows] == ["a", "b", "c", "e"]  # c has arrived; d was deleted


def test_a_record_deleted_by_the_cutoff_is_left_out(store) -> None:
    assert [r[0] for r in _snapshot(store, iso(5))] == ["a", "b"]
    assert _snapshot(store, iso(5))[0] == ("a", iso(3), 3.0, "yes")  # day 5's not yet written


def test_a_record_written_after_the_cutoff_is_not_in_it_until_it_was_written(store) -> None:
    assert "c" not in [r[0] for r in _snapshot(store, "2026-01-08T23:59:59.999Z")]
    assert ("c", iso(2), 30.0, "no") in _snapshot(store, "2026-01-09T00:00:00.000Z")


def test_a_cutoff_before_every_version_is_empty(store) -> None:
    assert _snapshot(store, "2025-12-31T23:59:59Z") == []


def test_the_snapshot_runs_the_same_query_on_both_engines_but_for_the_time_parsing() -> None:
    athena, duck = _snapshot_sql(iso(4), "athena"), _snapshot_sql(iso(4), "duckdb")
    normalised = duck
    for expression in ('f."event_time"', f"'{iso(4)}'"):
        normalised = normalised.replace(
            TIMESTAMP_OF["duckdb"].format(expression), TIMESTAMP_OF["athena"].format(expression)
        )
    assert normalised == athena and "from_iso8601_timestamp(" not in duck


@pytest.mark.parametrize(
    "bad",
    [
        "", "2026-01-04", "2026-01-04 00:00:00Z", "2026-01-04T00:00:00", "2026-01-04T00:00:00+00:00",
        "2026-01-04T00:00:00.1234Z", "2026-13-04T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-01-04T24:00:00Z", "2026-01-04T00:00:00Z' OR '1'='1", "2026-01-04T00:00:00Z\n",
    ],
)  # fmt: skip
def test_an_as_of_that_is_not_a_utc_time_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not"):
        snapshot_sql(
            feature_table="store", record_id="record_id", event_time="event_time",
            columns=["x"], as_of=bad,
        )  # fmt: skip


def test_snapshot_names_are_checked_too() -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        snapshot_sql(
            feature_table="store", record_id="record_id", event_time="event_time",
            columns=["x; --"], as_of=iso(4),
        )  # fmt: skip
    with pytest.raises(ValueError, match="must not repeat"):
        snapshot_sql(
            feature_table="store", record_id="record_id", event_time="event_time",
            columns=["record_id", "x"], as_of=iso(4),
        )  # fmt: skip

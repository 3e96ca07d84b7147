"""Point-in-time ("time travel") training sets from a feature group's offline store.

Given an entity table (a record id and an as-of time per row, optionally a label), the
query picks, for each entity row, the feature values of that record as they stood at the
row's time:

* only records whose event time is at or before the as-of time, and that had been written
  to the store by then (``write_time``): data that arrived later was not known then;
* of those, the latest event time; of several writes of one record and event time, the
  latest write (``write_time``, then ``api_invocation_time``);
* a record whose latest version is a deletion (``is_deleted``) has no features then;
* an entity row without features at its time is kept, its features NULL (Preprocess treats
  them as missing values; its label decides whether it is used).

:func:`snapshot_sql` asks the same of every record at one time (a training set as of a
cutoff): each record's latest version by then, by the same rules, and no row for a record
without one.

Standard library only: the pipeline's training-set step renders it for Athena over the
Iceberg offline store (and, under ``make local-run``, for DuckDB over the local stand-in),
and the tests run the DuckDB rendering of the same query over a Parquet fixture laid out
like the offline store. The two renderings differ in one function only, the parsing of an
ISO-8601 time (:data:`TIMESTAMP_OF`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

#: How each engine turns an ISO-8601 string into a timestamp with time zone.
TIMESTAMP_OF = {
    "athena": "from_iso8601_timestamp({})",
    "duckdb": "CAST({} AS TIMESTAMPTZ)",
}
#: Columns Feature Store adds to every offline-store row.
WRITE_TIME, API_INVOCATION_TIME, IS_DELETED = "write_time", "api_invocation_time", "is_deleted"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: An as-of time :func:`snapshot_sql` inlines as a SQL literal: ISO-8601 in UTC, to the
#: second or the millisecond (``2026-12-02T17:00:00Z``, ``2026-12-02T17:00:00.250Z``).
AS_OF = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,3})?Z",
    re.ASCII,
)


def _quote(name: str) -> str:
    """A column or table name, double-quoted (both engines' identifier quoting)."""
    parts = name.split(".")
    for part in parts:
        if not _IDENTIFIER.fullmatch(part):
            raise ValueError(f"{name!r} is not a plain identifier")
    return ".".join(f'"{p}"' for p in parts)


def point_in_time_sql(
    *,
    feature_table: str,
    entity_table: str,
    record_id: str,
    event_time: str,
    features: Sequence[str],
    entity_time: str = "as_of",
    label: str | None = None,
    dialect: str = "athena",
) -> str:
    """The query (see the module docstring).

    Args:
        feature_table: the offline store's table (``database.table``).
        entity_table: a table or view with ``record_id`` and ``entity_time`` columns (and
            ``label`` when given).
        record_id, event_time: the feature group's record identifier and event time names.
        features: the feature columns to return, in order.
        entity_time: the entity table's as-of time column (ISO-8601 strings).
        label: the entity table's label column, returned after the time; None when the
            label is one of ``features``.
        dialect: ``athena`` or ``duckdb``.

    Returns one row per entity row, ordered by record id and as-of time: record id, as-of
    time (named as the feature group's event time), the label (if any), the features.
    """
    ts = TIMESTAMP_OF[dialect].format
    rid, et, at = _quote(record_id), _quote(event_time), _quote(entity_time)
    feature_list = ", ".join(f"c.{_quote(f)}" for f in features)
    label_column = f"e.{_quote(label)}, " if label else ""
    # Keyed by (record id, as-of time), not by a row number: Athena (Trino) may evaluate
    # a CTE once per reference, and an unordered ROW_NUMBER() need not agree with itself.
    return f"""WITH asked AS (
  SELECT DISTINCT {rid}, {at} FROM {_quote(entity_table)}
),
candidates AS (
  SELECT a.{rid} AS "__asked_id", a.{at} AS "__asked_at", f.*,
    ROW_NUMBER() OVER (
      PARTITION BY a.{rid}, a.{at}
      ORDER BY {ts(f"f.{et}")} DESC, f.{_quote(WRITE_TIME)} DESC, f.{_quote(API_INVOCATION_TIME)} DESC
    ) AS "__rank"
  FROM asked a
  JOIN {_quote(feature_table)} f
    ON f.{rid} = a.{rid}
   AND {ts(f"f.{et}")} <= {ts(f"a.{at}")}
   AND f.{_quote(WRITE_TIME)} <= {ts(f"a.{at}")}
)
SELECT e.{rid}, e.{at} AS {et}, {label_column}{feature_list}
FROM {_quote(entity_table)} e
LEFT JOIN candidates c
  ON c."__asked_id" = e.{rid} AND c."__asked_at" = e.{at} AND c."__rank" = 1
 AND NOT c.{_quote(IS_DELETED)}
ORDER BY e.{rid}, e.{at}
"""


def _as_of_literal(as_of: str) -> str:
    """``as_of`` as a SQL string literal, once it is known to be nothing but a UTC time."""
    if not isinstance(as_of, str) or not AS_OF.fullmatch(as_of):
        raise ValueError(
            f"{as_of!r} is not an ISO-8601 UTC time such as 2026-12-02T17:00:00Z "
            "(optionally with .fff milliseconds before the Z)"
        )
    try:  # the pattern admits a day the calendar lacks (February 30)
        datetime.strptime(as_of[:10], "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"{as_of!r}: {as_of[:10]} is not a date") from None
    return f"'{as_of}'"


def snapshot_sql(
    *,
    feature_table: str,
    record_id: str,
    event_time: str,
    columns: Sequence[str],
    as_of: str,
    dialect: str = "athena",
) -> str:
    """The training set as of one time: each record's latest version by then.

    By the rules of the module docstring: only versions whose event time is at or before
    ``as_of`` and that were written by then (``write_time``); the latest event time, then
    the latest write (``write_time``, then ``api_invocation_time``); a record whose latest
    version is a deletion (``is_deleted``) is left out, as is a record with no version by
    then.

    Args:
        feature_table: the offline store's table (``table`` or ``database.table``).
        record_id, event_time: the feature group's record identifier and event time names.
        columns: the other columns to return (target and features), in order.
        as_of: the cutoff, an ISO-8601 UTC time (``2026-12-02T17:00:00Z``, optionally with
            milliseconds); it is inlined as a literal, so anything else is refused.
        dialect: ``athena`` or ``duckdb``.

    Returns one row per record, ordered by record id: record id, event time, ``columns``.

    Raises:
        ValueError: ``as_of`` is not such a time, a name is not a plain identifier, or
            ``columns`` repeats the record id or event time.
    """
    ts = TIMESTAMP_OF[dialect].format
    literal = _as_of_literal(as_of)
    if record_id in columns or event_time in columns:
        raise ValueError("columns must not repeat the record id or the event time")
    rid, et = _quote(record_id), _quote(event_time)
    column_list = "".join(f", v.{_quote(c)}" for c in columns)
    return f"""WITH versions AS (
  SELECT f.*,
    ROW_NUMBER() OVER (
      PARTITION BY f.{rid}
      ORDER BY {ts(f"f.{et}")} DESC, f.{_quote(WRITE_TIME)} DESC, f.{_quote(API_INVOCATION_TIME)} DESC
    ) AS "__rank"
  FROM {_quote(feature_table)} f
  WHERE {ts(f"f.{et}")} <= {ts(literal)}
    AND f.{_quote(WRITE_TIME)} <= {ts(literal)}
)
SELECT v.{rid}, v.{et}{column_list}
FROM versions v
WHERE v."__rank" = 1 AND NOT v.{_quote(IS_DELETED)}
ORDER BY v.{rid}
"""

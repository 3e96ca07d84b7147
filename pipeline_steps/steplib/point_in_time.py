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

Standard library only: the pipeline's training-set step renders it for Athena over the
Iceberg offline store, and the tests run the DuckDB rendering of the same query over a
Parquet fixture laid out like the offline store. The two renderings differ in one
function only, the parsing of an ISO-8601 time (:data:`TIMESTAMP_OF`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: How each engine turns an ISO-8601 string into a timestamp with time zone.
TIMESTAMP_OF = {
    "athena": "from_iso8601_timestamp({})",
    "duckdb": "CAST({} AS TIMESTAMPTZ)",
}
#: Columns Feature Store adds to every offline-store row.
WRITE_TIME, API_INVOCATION_TIME, IS_DELETED = "write_time", "api_invocation_time", "is_deleted"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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

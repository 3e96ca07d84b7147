"""Training-set step: a model's training data from its feature group's offline store, as of a cutoff.

Runs in the SageMaker scikit-learn processing image (boto3 ships there), with the training
set's own role, in the stage's VPC with a path to Athena and S3. Runs the query of
:func:`steplib.point_in_time.snapshot_sql` on the offline store's Glue table ``--table`` in
``--database``, through Athena workgroup ``--workgroup``: for each record id, its latest
version as of the cutoff:

* only versions whose event time is at or before the cutoff and that had reached the
  offline store by then (``write_time``): what arrived later was not known then;
* of those, the latest event time, then the latest write;
* a record whose latest version is a deletion is left out.

The cutoff is ``--cutoff``, or the pipeline execution's start (``--execution-start``) when
``--cutoff`` is empty; a cutoff more than a minute in the future is refused, since later
writes would change what it selects. The same cutoff gives the same training set.

Polls the query every ``--poll-seconds``; after ``--timeout-seconds`` it stops the query.
Reads Athena's CSV result from S3 (every value quoted; an empty unquoted value is NULL) and
writes ``training-set.csv`` to ``--output-dir``: header record id, event time, target,
features (the schema's names), one row per record ordered by record id, a NULL as an empty
cell. Preprocess reads it with ``--written-layout``.

Under ``make local-run`` (``MLOPS_LOCAL_FEATURE_STORE`` set) the same query runs with
DuckDB over the local stand-in's ``<dir>/<feature group>.jsonl`` instead.

Exits 2, writing nothing, when the cutoff is malformed or in the future, the query fails,
is cancelled or times out, the result's columns are not the expected ones, or no record
qualifies.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyarrow as pa
import pyarrow.csv as pacsv
from steplib import rawio
from steplib.contract import NUMERIC, Schema, feature_definitions
from steplib.errors import DataError, run_main
from steplib.local_feature_store import ENVIRONMENT_VARIABLE as LOCAL_STORE_VARIABLE
from steplib.point_in_time import API_INVOCATION_TIME, IS_DELETED, WRITE_TIME, snapshot_sql
from steplib.schema import load_schema

LOG = logging.getLogger("pipeline_steps.build_training_set")
OUTPUT_FILE = "training-set.csv"
#: A cutoff given as ISO-8601 UTC, to the second or with a fraction, ``Z`` or ``+00:00``
#: (as SageMaker renders ``ExecutionVariables.START_DATETIME``, and as people write it).
CUTOFF = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|\+00:00)", re.ASCII)
#: How far in the future a cutoff may lie (clock skew), no further.
CUTOFF_TOLERANCE = timedelta(minutes=1)
#: Athena query states that end a query.
SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
#: Offline-store column types of the local stand-in, by Feature Store type.
DUCKDB_TYPES = {"String": "VARCHAR", "Fractional": "DOUBLE", "Integral": "BIGINT"}
OFFLINE_STORE_COLUMNS = {
    WRITE_TIME: "TIMESTAMPTZ",
    API_INVOCATION_TIME: "TIMESTAMPTZ",
    IS_DELETED: "BOOLEAN",
}


def parse_cutoff(value: str, argument: str, now: datetime) -> str:
    """``value`` as the cutoff the query takes (``...T...Z``, milliseconds when it has a
    fraction, truncated to them); raises :class:`DataError` naming ``argument`` when it is
    not an ISO-8601 UTC time or lies more than a minute after ``now``."""
    match = CUTOFF.fullmatch(value)
    if match is None:
        raise DataError(
            argument,
            None,
            f"{value!r} is not an ISO-8601 UTC time (2026-12-02T17:00:00Z, optionally with a "
            "fraction of a second, Z or +00:00)",
        )
    seconds, fraction, _ = match.groups()
    millis = int((fraction or "0").ljust(3, "0")[:3])  # truncated: never after the time given
    try:
        moment = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as err:
        raise DataError(argument, None, f"{value!r} is not a valid time ({err})") from None
    if moment + timedelta(milliseconds=millis) > now + CUTOFF_TOLERANCE:
        raise DataError(
            argument,
            None,
            f"{value!r} is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ}): records written "
            "after this step would change the training set; give a time that has passed",
        )
    return f"{seconds}.{millis:03d}Z" if millis else f"{seconds}Z"


def choose_cutoff(cutoff: str, execution_start: str, now: datetime) -> str:
    """``--cutoff`` when it is not empty, else ``--execution-start``; checked and
    normalised by :func:`parse_cutoff`."""
    if cutoff:
        return parse_cutoff(cutoff, "--cutoff", now)
    if not execution_start:
        raise DataError(
            "--execution-start", None, "is needed when --cutoff is empty (the pipeline's start)"
        )
    return parse_cutoff(execution_start, "--execution-start", now)


def training_set_sql(schema: Schema, table: str, cutoff: str, dialect: str) -> str:
    """The query for ``schema``'s columns (:func:`rawio.required_columns`) on ``table``."""
    columns = rawio.required_columns(schema)[2:]  # record id and event time come first
    try:
        return snapshot_sql(
            feature_table=table, record_id=schema.record_id_column,
            event_time=schema.event_time_column, columns=columns, as_of=cutoff,
            dialect=dialect,
        )  # fmt: skip
    except ValueError as err:
        raise DataError("--table", None, str(err)) from None


@dataclass(frozen=True)
class QueryResult:
    """A query's result: its column names and its rows as an Arrow table of strings (or,
    from DuckDB, of the offline store's types)."""

    header: list[str]
    rows: pa.Table
    source: str
    query_id: str = ""


# ------------------------------------------------------------------------------ Athena


def run_athena_query(
    athena: Any,
    sql: str,
    *,
    database: str,
    workgroup: str,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str, str]:
    """Start the query and wait for it; returns (query execution id, result S3 URI).

    Raises :class:`DataError` with Athena's reason when the query fails or is cancelled,
    and stops it (then raises) when it has not ended after ``timeout_seconds``.
    """
    started = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": database}, WorkGroup=workgroup
    )
    query_id = started["QueryExecutionId"]
    where = f"Athena query {query_id} (workgroup {workgroup}, database {database})"
    LOG.info("started %s", where)
    deadline = clock() + timeout_seconds
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        status = execution["Status"]
        state = status["State"]
        if state == SUCCEEDED:
            return query_id, execution["ResultConfiguration"]["OutputLocation"]
        if state in (FAILED, CANCELLED):
            reason = status.get("StateChangeReason") or "no reason given"
            raise DataError(where, None, f"{state}: {reason}")
        if clock() >= deadline:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise DataError(
                where,
                None,
                f"still {state} after {timeout_seconds:g} s (--timeout-seconds); the query was "
                "stopped",
            )
        sleep(poll_seconds)


def download(s3: Any, uri: str, target: Path) -> None:
    """Stream the S3 object ``uri`` to ``target``."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", uri)
    if match is None:
        raise DataError(uri, None, "the query's OutputLocation is not an s3://bucket/key URI")
    body = s3.get_object(Bucket=match[1], Key=match[2])["Body"]
    with target.open("wb") as out:
        shutil.copyfileobj(body, out, 1 << 20)


def read_athena_csv(path: Path, source: str) -> QueryResult:
    """Athena's CSV result: every value quoted, a NULL as an empty unquoted value."""
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise DataError(source, None, "the query result is empty (not even a header)")
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=header),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,  # "" is an empty string, not a NULL
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise DataError(source, None, f"cannot parse the query result as CSV: {err}") from None
    return QueryResult(header, table, source)


def query_athena(
    athena: Any,
    s3: Any,
    sql: str,
    *,
    database: str,
    workgroup: str,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> QueryResult:
    """:func:`run_athena_query`, then its result read from S3."""
    query_id, location = run_athena_query(
        athena, sql, database=database, workgroup=workgroup, poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds, sleep=sleep, clock=clock,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="athena-result-") as scratch:
        local = Path(scratch) / "result.csv"
        download(s3, location, local)
        result = read_athena_csv(local, location)
    return QueryResult(result.header, result.rows, location, query_id)


# ----------------------------------------------------------------- local stand-in (DuckDB)


def query_local(directory: Path, feature_group: str, schema: Schema, cutoff: str) -> QueryResult:
    """The same query with DuckDB over the local stand-in's ``<group>.jsonl``, read as a
    table with the offline store's columns and types."""
    import duckdb  # local tools only: not in the processing image

    store = Path(directory) / f"{feature_group}.jsonl"
    if not store.is_file():
        raise DataError(
            store, None, f"the local feature store holds no record of {feature_group} (no file)"
        )
    columns = {
        name: DUCKDB_TYPES[kind] for name, kind in feature_definitions(schema).items()
    } | OFFLINE_STORE_COLUMNS
    db = duckdb.connect()
    try:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(
            "CREATE TABLE offline_store AS SELECT * FROM "
            "read_json(?, format = 'newline_delimited', columns = ?)",
            [str(store), columns],
        )
        cursor = db.execute(training_set_sql(schema, "offline_store", cutoff, "duckdb"))
        header = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    except duckdb.Error as err:
        raise DataError(store, None, f"cannot query the local feature store: {err}") from None
    finally:
        db.close()
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(header)})
    return QueryResult(header, table, str(store), "local")


# ------------------------------------------------------------------------------ the step


def training_table(result: QueryResult, schema: Schema) -> pa.Table:
    """The result under the schema's column names, numeric columns as numbers; raises
    :class:`DataError` when its columns are not the expected ones."""
    expected = rawio.required_columns(schema)
    # Athena (Trino) lowercases identifiers, its result's column names too.
    if [h.lower() for h in result.header] != [c.lower() for c in expected]:
        raise DataError(
            result.source,
            None,
            f"the query result's columns are {result.header}, expected {expected}",
        )
    numeric = {schema.target_name} if schema.target_type == NUMERIC else set()
    numeric |= set(schema.numeric_features)
    columns = []
    for index, name in enumerate(expected):
        column = result.rows.column(index)
        try:
            column = column.cast(pa.float64() if name in numeric else pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise DataError(
                result.source, name, f"not numeric in the offline store: {err}"
            ) from None
        columns.append(column)
    return pa.table(columns, names=expected)


def build_training_set(
    *,
    schema_path: Path,
    feature_group: str,
    database: str,
    table: str,
    workgroup: str,
    cutoff: str,
    execution_start: str,
    output_dir: Path,
    athena: Any = None,
    s3: Any = None,
    local_store: Path | None = None,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The whole step (see the module docstring); returns what it logged.

    ``local_store``: the local stand-in's directory, queried with DuckDB instead of Athena
    (``athena`` and ``s3`` are then not used). ``now``: the current time the cutoff is
    checked against (the clock's when left out).
    """
    schema = load_schema(schema_path)
    as_of = choose_cutoff(cutoff, execution_start, now or datetime.now(UTC))
    if local_store is not None:
        result = query_local(local_store, feature_group, schema, as_of)
    else:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result = query_athena(
                athena, s3, training_set_sql(schema, table, as_of, "athena"), database=database,
                workgroup=workgroup, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds,
                sleep=sleep, clock=clock,
            )  # fmt: skip
        except (BotoCoreError, ClientError) as error:
            raise DataError(
                f"table {database}.{table} (workgroup {workgroup})",
                None,
                f"Athena or S3 refused or could not be reached: {error}. Fix: the job's role "
                "needs the feature group's grant_query_offline, and the job a path to Athena",
            ) from None
    rows = training_table(result, schema)
    if rows.num_rows == 0:
        where = f"table {database}.{table}" if local_store is None else result.source
        raise DataError(
            f"feature group {feature_group} ({where})",
            None,
            f"no record as of {as_of}: nothing had reached the offline store by then. The "
            "offline store receives records some minutes after ingestion; run again later, "
            "or give a later --cutoff",
        )
    with rawio.atomic_output(output_dir) as staging:
        rawio.write_table_csv(staging / OUTPUT_FILE, rows)
    summary = {
        "feature_group": feature_group, "cutoff": as_of, "rows": rows.num_rows,
        "query_execution_id": result.query_id,
    }  # fmt: skip
    LOG.info(
        "training set: %d rows of %s as of %s (query execution %s) -> %s",
        rows.num_rows, feature_group, as_of, result.query_id, output_dir / OUTPUT_FILE,
    )  # fmt: skip
    return summary


def _clients(region: str | None) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 10})
    return (
        boto3.client("athena", region_name=region, config=config),
        boto3.client("s3", region_name=region, config=config),
    )


def main(argv: Sequence[str] | None = None, athena: Any = None, s3: Any = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/schema.json")
    p.add_argument("--feature-group", required=True)
    p.add_argument("--database", required=True, help="the offline store's Glue database")
    p.add_argument("--table", required=True, help="the offline store's Glue table")
    p.add_argument("--workgroup", required=True, help="the Athena workgroup")
    p.add_argument("--cutoff", default="", help="ISO-8601 UTC; empty: the execution's start")
    p.add_argument(
        "--execution-start", default="", help="the pipeline execution's start (ISO-8601 UTC)"
    )
    p.add_argument("--output-dir", default="/opt/ml/processing/output/training-set")
    p.add_argument("--region", default=None)
    p.add_argument("--poll-seconds", type=float, default=2.0)
    p.add_argument("--timeout-seconds", type=float, default=3600.0)
    args = p.parse_args(argv)
    local = os.environ.get(LOCAL_STORE_VARIABLE) if athena is None else None
    if not local and athena is None:
        athena, s3 = _clients(args.region)
    build_training_set(
        schema_path=Path(args.schema), feature_group=args.feature_group,
        database=args.database, table=args.table, workgroup=args.workgroup,
        cutoff=args.cutoff, execution_start=args.execution_start,
        output_dir=Path(args.output_dir), athena=athena, s3=s3,
        local_store=Path(local) if local else None, poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_seconds,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Feature ingestion step: write a model's prepared records into its feature group.

Runs in the SageMaker scikit-learn processing image (boto3 ships there), in the stage's
VPC with a path to the Feature Store runtime (an interface endpoint), after Preprocess has
validated the same data. Reads the model's raw data (CSV or Parquet under ``--input-dir``,
with the schema's ``sourceColumns`` and ``derived`` columns, as Preprocess reads it),
checks each record's event time (ISO-8601, as Feature Store takes it), and calls
``PutRecord`` for each, ``--concurrency`` at a time:

* throttling and transient service errors are retried with exponential back-off and full
  jitter, up to ``--max-attempts`` per record;
* a record Feature Store refuses (a validation error) is rejected and counted, with the
  reason; the others still go;
* idempotent: a record id and event time is written once per run (the last row wins), and
  writing the same record again overwrites it with the same values;
* a missing value is left out of the record (Feature Store stores no null).

Writes ``summary.json`` (rows read, written, rejected with the first reasons, retries) to
``--output-dir``. Exits 2 when the input is bad (a file, line and column named) or when
more than ``--max-rejected`` records were rejected.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pandas as pd
from steplib import rawio
from steplib.contract import Schema
from steplib.errors import DataError, run_main
from steplib.local_feature_store import ENVIRONMENT_VARIABLE as LOCAL_STORE_VARIABLE
from steplib.local_feature_store import LocalFeatureStore
from steplib.schema import load_schema

LOG = logging.getLogger("pipeline_steps.ingest_features")
#: Event times Feature Store accepts: yyyy-MM-dd'T'HH:mm:ssZ, optionally with milliseconds.
EVENT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z")
#: Error codes worth another attempt (throttling and transient service faults).
RETRYABLE = frozenset(
    {
        "ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure",
        "RequestTimeout", "RequestTimeoutException", "TooManyRequestsException",
    }
)  # fmt: skip
#: Rejections kept in the summary.
MAX_REASONS = 20


@dataclass
class Summary:
    rows_read: int = 0
    duplicates_skipped: int = 0
    written: int = 0
    rejected: int = 0
    retries: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read, "duplicates_skipped": self.duplicates_skipped,
            "written": self.written, "rejected": self.rejected, "retries": self.retries,
            "rejections": self.reasons,
        }  # fmt: skip


def records(frame: pd.DataFrame, schema: Schema, source: str) -> list[list[dict[str, str]]]:
    """The frame's rows as ``PutRecord`` records, one per record id and event time (the
    last row wins); raises :class:`DataError` naming the line of a bad event time."""
    ids = frame[schema.record_id_column]
    if ids.isna().any():
        row = int(ids.isna().to_numpy().nonzero()[0][0])
        raise DataError(source, schema.record_id_column, f"data row {row + 1}: no record id")
    times = frame[schema.event_time_column]
    for index, value in enumerate(times):
        if not isinstance(value, str) or not EVENT_TIME.fullmatch(value):
            raise DataError(
                source,
                schema.event_time_column,
                f"data row {index + 1}: {value!r} is not an event time Feature Store takes "
                "(yyyy-MM-ddTHH:mm:ssZ, optionally .SSS before the Z)",
            )
    keys = [schema.record_id_column, schema.event_time_column]
    unique = frame.drop_duplicates(subset=keys, keep="last")
    columns = list(frame.columns)
    out = []
    for row in unique.itertuples(index=False, name=None):
        out.append(
            [
                {"FeatureName": name, "ValueAsString": _text(value)}
                for name, value in zip(columns, row, strict=True)
                if not _missing(value)
            ]
        )
    return out


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return repr(float(value))  # "3.0": a Fractional feature keeps its decimal point
    return str(value)


def put_all(
    client: Any,
    feature_group: str,
    batch: Sequence[list[dict[str, str]]],
    *,
    concurrency: int = 8,
    max_attempts: int = 8,
    base_delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Summary:
    """``PutRecord`` for each record (see the module docstring); returns the counts."""
    rng = rng or random.Random(0)
    summary = Summary()

    def put(record: list[dict[str, str]]) -> tuple[bool, int, str]:
        retries = 0
        for attempt in range(1, max_attempts + 1):
            try:
                client.put_record(FeatureGroupName=feature_group, Record=record)
                return True, retries, ""
            except client.exceptions.ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                message = error.response.get("Error", {}).get("Message", "")
                if code not in RETRYABLE or attempt == max_attempts:
                    rid = record[0]["ValueAsString"] if record else "?"
                    why = "gave up after retries: " if code in RETRYABLE else ""
                    return False, retries, f"record {rid}: {why}{code}: {message}"
                retries += 1
                # Full jitter: a random wait up to base * 2^attempt, capped at 20 s.
                sleep(rng.uniform(0, min(20.0, base_delay * 2**attempt)))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for ok, retries, reason in pool.map(put, batch):
            summary.retries += retries
            if ok:
                summary.written += 1
            else:
                summary.rejected += 1
                if len(summary.reasons) < MAX_REASONS:
                    summary.reasons.append(reason)
    return summary


def ingest(
    input_dir: Path,
    schema_path: Path,
    feature_group: str,
    output_dir: Path,
    client: Any,
    *,
    concurrency: int = 8,
    max_attempts: int = 8,
    max_rejected: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The whole step; returns the summary it wrote."""
    schema = load_schema(schema_path)
    frame = rawio.read_raw(input_dir, schema)  # the model's raw data, checked as Preprocess does
    source = rawio.describe_source(input_dir)
    batch = records(frame, schema, source)
    summary = put_all(
        client, feature_group, batch, concurrency=concurrency, max_attempts=max_attempts,
        sleep=sleep,
    )  # fmt: skip
    summary.rows_read = len(frame)
    summary.duplicates_skipped = len(frame) - len(batch)
    result = {"feature_group": feature_group, **summary.as_json()}
    with rawio.atomic_output(output_dir) as staging:
        (staging / "summary.json").write_text(json.dumps(result, indent=2))
    LOG.info("ingestion: %s", json.dumps(result))
    if summary.rejected > max_rejected:
        raise DataError(
            source,
            None,
            f"{summary.rejected} of {len(batch)} records were rejected by Feature Store "
            f"(at most {max_rejected} allowed), e.g. {summary.reasons[:3]}",
        )
    return result


def _client(schema_path: Path) -> Any:
    """The Feature Store runtime; under ``make local-run``, its local stand-in."""
    local = os.environ.get(LOCAL_STORE_VARIABLE)
    if local:
        return LocalFeatureStore(Path(local), load_schema(schema_path))
    import boto3

    return boto3.client("sagemaker-featurestore-runtime")


def main(argv: Sequence[str] | None = None, client: Any = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input-dir", default="/opt/ml/processing/input/raw")
    p.add_argument("--schema", default="/opt/ml/processing/input/schema/schema.json")
    p.add_argument("--feature-group", required=True)
    p.add_argument("--output-dir", default="/opt/ml/processing/output/ingestion")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--max-rejected", type=int, default=0)
    args = p.parse_args(argv)
    ingest(
        Path(args.input_dir), Path(args.schema), args.feature_group, Path(args.output_dir),
        client if client is not None else _client(Path(args.schema)), concurrency=args.concurrency,
        max_attempts=args.max_attempts, max_rejected=args.max_rejected,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_main(main))

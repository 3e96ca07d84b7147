"""A local stand-in for the Feature Store runtime's ``PutRecord``, for ``make local-run``.

``make local-run`` sets ``MLOPS_LOCAL_FEATURE_STORE`` to a directory; the ingestion step
then writes here instead of calling AWS: each record is checked against the feature
group's definition as the platform derives it from the schema
(:func:`steplib.contract.feature_definitions`: known names, the record id and event time
present, Fractional values parse as numbers) and appended to ``<group>.jsonl``. A record
that fails is refused with Feature Store's error code (``ValidationError``).

Each line also carries the columns Feature Store adds to an offline-store row:
``api_invocation_time`` (when the call came), ``write_time`` (when the record was stored;
ISO-8601 UTC with milliseconds) and ``is_deleted`` (false: there is no ``DeleteRecord``
here), so that the training-set step's point-in-time query runs over this file as it runs
over the offline store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steplib.contract import LOCAL_FEATURE_STORE_VARIABLE as ENVIRONMENT_VARIABLE
from steplib.contract import Schema, feature_definitions
from steplib.point_in_time import API_INVOCATION_TIME, IS_DELETED, WRITE_TIME

__all__ = ["ENVIRONMENT_VARIABLE", "LocalFeatureStore"]


class _ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


class LocalFeatureStore:
    """``put_record`` as the runtime client has it (and its ``exceptions.ClientError``)."""

    class exceptions:
        ClientError = _ClientError

    def __init__(
        self,
        directory: Path,
        schema: Schema,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """A store writing under ``directory``; ``clock`` gives the write times (UTC now
        when left out)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.definitions = feature_definitions(schema)
        self.required = (schema.record_id_column, schema.event_time_column)
        self.clock = clock
        self._lock = threading.Lock()

    def _now(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"

    def put_record(self, *, FeatureGroupName: str, Record: list[dict[str, str]]) -> dict[str, Any]:
        invoked = self._now()
        values = {f["FeatureName"]: f["ValueAsString"] for f in Record}
        unknown = sorted(set(values) - set(self.definitions))
        if unknown:
            raise _ClientError("ValidationError", f"features {unknown} are not in the group")
        missing = [n for n in self.required if n not in values]
        if missing:
            raise _ClientError("ValidationError", f"record lacks {missing}")
        for name, value in values.items():
            if self.definitions[name] == "Fractional":
                try:
                    float(value)
                except ValueError:
                    raise _ClientError(
                        "ValidationError", f"{name}: {value!r} is not a Fractional value"
                    ) from None
        with self._lock, (self.directory / f"{FeatureGroupName}.jsonl").open("a") as out:
            # Stamped under the lock, so the file's lines are in write-time order.
            stored = {**values, API_INVOCATION_TIME: invoked, WRITE_TIME: self._now()}
            out.write(json.dumps({**stored, IS_DELETED: False}, sort_keys=True) + "\n")
        return {}

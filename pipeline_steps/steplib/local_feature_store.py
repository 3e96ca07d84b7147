"""A local stand-in for the Feature Store runtime's ``PutRecord``, for ``make local-run``.

``make local-run`` sets ``MLOPS_LOCAL_FEATURE_STORE`` to a directory; the ingestion step
then writes here instead of calling AWS: each record is checked against the feature
group's definition as the platform derives it from the schema
(:func:`steplib.contract.feature_definitions`: known names, the record id and event time
present, Fractional values parse as numbers) and appended to ``<group>.jsonl``. A record
that fails is refused with Feature Store's error code (``ValidationError``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from steplib.contract import LOCAL_FEATURE_STORE_VARIABLE as ENVIRONMENT_VARIABLE
from steplib.contract import Schema, feature_definitions

__all__ = ["ENVIRONMENT_VARIABLE", "LocalFeatureStore"]


class _ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


class LocalFeatureStore:
    """``put_record`` as the runtime client has it (and its ``exceptions.ClientError``)."""

    class exceptions:
        ClientError = _ClientError

    def __init__(self, directory: Path, schema: Schema) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.definitions = feature_definitions(schema)
        self.required = (schema.record_id_column, schema.event_time_column)
        self._lock = threading.Lock()

    def put_record(self, *, FeatureGroupName: str, Record: list[dict[str, str]]) -> dict[str, Any]:
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
            out.write(json.dumps(values, sort_keys=True) + "\n")
        return {}

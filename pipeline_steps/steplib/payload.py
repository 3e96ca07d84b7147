"""Request payloads (CSV and JSON rows of raw features) and SageMaker data-capture records.

Used by the serving handlers (inference.py) and by the drift check, so the endpoint and the
monitor read a request the same way.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from steplib.contract import NUMERIC, Schema
from steplib.errors import DataError
from steplib.rawio import NULL_VALUES

CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines")


class PayloadError(ValueError):
    """A request body the endpoint cannot score; the message says what is wrong."""


def _media_type(content_type: str) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_payload(body: str | bytes, content_type: str, schema: Schema) -> pd.DataFrame:
    """Rows of raw features (as in the raw data, without the target) as a frame of raw values.

    CSV: one row per line, the schema's features in schema order, no target; a header row
    naming the features is accepted. JSON: an object (one row), a list of objects, or
    ``{"instances": [...]}``; each object keyed by feature name. JSON Lines: one object a line.

    Raises:
        PayloadError: undecodable bytes, unsupported content type, wrong number of fields,
            unknown or missing feature names, empty body.
    """
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as err:
            raise PayloadError(f"body is not valid UTF-8 (byte {err.start})") from None
    media = _media_type(content_type)
    if not body.strip():
        raise PayloadError("body is empty")
    names = schema.feature_names
    if media in CSV_TYPES:
        rows = [r for r in csv.reader(io.StringIO(body)) if r and any(cell.strip() for cell in r)]
        if rows and [c.strip() for c in rows[0]] == names:
            rows = rows[1:]
        if not rows:
            raise PayloadError("CSV body has no data rows")
        for i, row in enumerate(rows):
            if len(row) != len(names):
                extra = (
                    " (is the target column included? send features only)"
                    if len(row) == len(names) + 1
                    else ""
                )
                raise PayloadError(
                    f"CSV row {i + 1} has {len(row)} fields; expected {len(names)} features in order {names}{extra}"
                )
        return pd.DataFrame(rows, columns=names, dtype=object)
    if media in JSON_TYPES:
        try:
            if media == "application/jsonlines":
                doc = [json.loads(line) for line in body.splitlines() if line.strip()]
            else:
                doc = json.loads(body)
        except json.JSONDecodeError as err:
            raise PayloadError(f"body is not valid JSON: {err}") from None
        if isinstance(doc, dict) and "instances" in doc:
            doc = doc["instances"]
        if isinstance(doc, dict):
            doc = [doc]
        if not isinstance(doc, list) or not doc:
            raise PayloadError(
                'JSON body must be an object, a non-empty list of objects, or {"instances": [...]}'
            )
        for i, rec in enumerate(doc):
            if not isinstance(rec, dict):
                raise PayloadError(
                    f"JSON record {i + 1} is {type(rec).__name__}; expected an object keyed by feature name"
                )
            missing = [n for n in names if n not in rec]
            unknown = [k for k in rec if k not in names]
            if missing or unknown:
                parts = []
                if missing:
                    parts.append(f"missing features {missing}")
                if unknown:
                    parts.append(f"unknown fields {unknown}")
                raise PayloadError(f"JSON record {i + 1}: {'; '.join(parts)}")
        return pd.DataFrame([[rec[n] for n in names] for rec in doc], columns=names, dtype=object)
    raise PayloadError(
        f"content type {content_type!r} is not supported; use text/csv or application/json"
    )


def coerce_features(raw: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """Convert raw values to the schema's types.

    Numeric features become float64 (blank/NA/null are missing); categorical ones become
    strings (None stays missing; JSON numbers are written as in the raw CSV, e.g. 2 -> "2").

    Returns:
        The typed frame, and for each feature the row indices whose value had the wrong type
        (those values are set missing).
    """
    out = {}
    bad: dict[str, list[int]] = {}
    for feat in schema.features:
        col = raw[feat.name]
        if feat.type == NUMERIC:
            values = np.full(len(col), np.nan)
            errors = []
            for i, v in enumerate(col.tolist()):
                if v is None or (isinstance(v, float) and np.isnan(v)):
                    continue
                if isinstance(v, bool):
                    errors.append(i)
                    continue
                if isinstance(v, (int, float)):
                    values[i] = float(v)
                    continue
                text = str(v).strip()
                if text in NULL_VALUES:
                    continue
                try:
                    values[i] = float(text)
                except ValueError:
                    errors.append(i)
            if errors:
                bad[feat.name] = errors
            out[feat.name] = values
        else:
            out[feat.name] = [
                None
                if v is None or (isinstance(v, str) and v.strip() in NULL_VALUES)
                else _category_text(v)
                for v in col.tolist()
            ]
    return pd.DataFrame(out, columns=schema.feature_names), bad


def _category_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def capture_record(
    request_body: str, content_type: str, response_body: str, event_id: str, inference_time: str
) -> dict:
    """One SageMaker data-capture record (the JSON Lines layout the endpoint writes to S3)."""
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": request_body,
                "encoding": "CSV" if content_type == "text/csv" else "JSON",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": response_body,
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": inference_time},
        "eventVersion": "0",
    }


def read_capture(path: Path, schema: Schema) -> tuple[pd.DataFrame, dict[str, int], int]:
    """Read every ``*.jsonl`` capture file under ``path`` into one frame of typed features.

    Returns:
        (features frame, wrong-type value count per feature, number of capture records).

    Raises:
        DataError: naming file and line for a malformed line (not JSON, no endpointInput,
            unknown encoding, payload not parseable as feature rows); empty window.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    if not files:
        raise DataError(path, None, "no *.jsonl data-capture files found")
    frames = []
    records = 0
    for file in files:
        with open(file, "rb") as fh:
            for line_no, raw_line in enumerate(fh, start=1):
                if not raw_line.strip():
                    continue
                where = f"{file}:{line_no}"
                try:
                    rec = json.loads(raw_line.decode("utf-8"))
                    inp = rec["captureData"]["endpointInput"]
                    data, encoding = inp["data"], inp.get("encoding", "CSV").upper()
                    content_type = inp["observedContentType"]
                except UnicodeDecodeError as err:
                    raise DataError(
                        where, None, f"malformed capture line: not valid UTF-8 (byte {err.start})"
                    ) from None
                except json.JSONDecodeError as err:
                    raise DataError(
                        where, None, f"malformed capture line: not JSON ({err.msg})"
                    ) from None
                except (KeyError, TypeError) as err:
                    raise DataError(
                        where,
                        None,
                        f"malformed capture line: no captureData.endpointInput field {err}",
                    ) from None
                if encoding == "BASE64":
                    try:
                        data = base64.b64decode(data, validate=True).decode("utf-8")
                    except (ValueError, UnicodeDecodeError):
                        raise DataError(
                            where,
                            None,
                            "malformed capture line: BASE64 data does not decode to UTF-8 text",
                        ) from None
                elif encoding not in ("CSV", "JSON"):
                    raise DataError(
                        where, None, f"malformed capture line: unknown encoding {encoding!r}"
                    )
                try:
                    frames.append(parse_payload(data, content_type, schema))
                except PayloadError as err:
                    raise DataError(where, None, f"malformed capture payload: {err}") from None
                records += 1
    if not frames:
        raise DataError(path, None, "capture window has no records")
    raw = pd.concat(frames, ignore_index=True)
    typed, bad = coerce_features(raw, schema)
    return typed, {k: len(v) for k, v in bad.items()}, records

"""Request payloads (CSV and JSON rows of raw features), SageMaker data-capture records, and
the files batch transform data capture points at.

Used by the serving handlers (inference.py) and by the drift and quality checks, so the
endpoint, the batch transform and the monitor read a request the same way.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

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


#: What a capture or ground-truth ``data`` field may be encoded as.
ENCODINGS = ("CSV", "JSON", "BASE64")


def jsonl_records(files: Sequence[Path], problem: str = "") -> Iterator[tuple[str, dict]]:
    """(``file:line``, record) of every non-blank line of ``files``; a line that is not a
    JSON object is a DataError naming it (its message after ``problem``)."""
    for file in files:
        with open(file, "rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                where = f"{file}:{line_no}"
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as err:
                    raise DataError(
                        where, None, f"{problem}not valid UTF-8 (byte {err.start})"
                    ) from None
                except json.JSONDecodeError as err:
                    raise DataError(where, None, f"{problem}not JSON ({err.msg})") from None
                if not isinstance(rec, dict):
                    raise DataError(
                        where, None, f"{problem}a {type(rec).__name__}, not a JSON object"
                    )
                yield where, rec


def decoded_data(section: object, name: str, where: str, problem: str = "") -> tuple[str, str]:
    """(text, encoding) of a capture or ground-truth section's ``data``, BASE64 decoded;
    a DataError naming ``where`` otherwise (its message after ``problem``)."""
    if not isinstance(section, dict) or not isinstance(section.get("data"), str):
        raise DataError(where, None, f"{problem}no {name}.data text")
    data = section["data"]
    encoding = str(section.get("encoding", "CSV")).upper()
    if encoding not in ENCODINGS:
        raise DataError(
            where, None,
            f"{problem}{name}.encoding {encoding!r} is not one of {', '.join(ENCODINGS)}",
        )  # fmt: skip
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise DataError(
                where, None, f"{problem}{name}.data: BASE64 does not decode to UTF-8"
            ) from None
    return data, encoding


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
    for where, rec in jsonl_records(files, "malformed capture line: "):
        try:
            inp = rec["captureData"]["endpointInput"]
            content_type = inp["observedContentType"]
        except (KeyError, TypeError) as err:
            raise DataError(
                where, None, f"malformed capture line: no captureData.endpointInput field {err}"
            ) from None
        data, _ = decoded_data(inp, "captureData.endpointInput", where, "malformed capture line: ")
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


# --------------------------------------------------------------------------- batch transform
#
# Batch transform data capture records no payloads: it writes manifests of the job's input
# and output files, which the monitoring pipeline's SelectWindow step resolves, so a check
# receives the files themselves (named as in the job's input and output prefixes, in
# subfolders, any name; or the empty window's one empty ``empty/empty.jsonl``).

#: What a batch output line of the built-in XGBoost container (``Accept`` ``text/csv``) is
#: with ``GenerateInferenceId``: the prediction, then the two columns batch capture appends.
BATCH_OUTPUT_CSV = "<prediction>,<inference id>,<inference time>"
#: The keys of a JSON batch output line with ``GenerateInferenceId``.
BATCH_OUTPUT_KEY = "output"
BATCH_INFERENCE_ID_KEY = "SageMakerInferenceId"
BATCH_INFERENCE_TIME_KEY = "SageMakerInferenceTime"
_ENDPOINT_CAPTURE_HINT = (
    "a real-time data-capture record (captureData), not batch transform data: read endpoint "
    "capture with --capture-source endpoint"
)


class BatchOutput(NamedTuple):
    """One line of a batch transform output file: the prediction of one input record."""

    #: ``file:line``, for messages.
    where: str
    #: The inference ID batch capture appended (``GenerateInferenceId``): the join key.
    inference_id: str
    #: The model's answer for the record as text: CSV values (``0.93``, ``0.1,0.2,0.7``) or
    #: a JSON list (``[0.1, 0.2, 0.7]``, multi:softprob as the XGBoost container writes it).
    prediction: str


def batch_files(path: Path) -> list[Path]:
    """The files of a batch capture window: every file under ``path`` (or ``path`` itself when
    it is a file), sorted by path, whatever its name, but hidden files and markers (a name,
    or a folder above it, starting with ``.`` or ``_``).

    Raises:
        DataError: ``path`` does not exist (a wrong path, not an empty window).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "capture directory does not exist")
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )


def _batch_lines(file: Path) -> Iterator[tuple[str, str]]:
    """(``file:line``, text) of every non-blank line of ``file``: lines end at ``\\n``, as
    batch transform's ``SplitType`` ``Line`` splits them; bytes that are not UTF-8 are a
    DataError naming the line."""
    with open(file, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{file}:{line_no}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(where, None, f"not valid UTF-8 text (byte {err.start})") from None
            yield where, text.rstrip("\r\n")


def _csv_cells(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _csv_row_problem(cells: list[str], names: list[str]) -> str | None:
    """What is wrong with one CSV input line's fields as a row of raw features (None:
    nothing): the rule :func:`parse_payload` applies to each row of a CSV body."""
    if len(cells) == len(names):
        return None
    extra = (
        " (is the target column included? batch input holds features only)"
        if len(cells) == len(names) + 1
        else ""
    )
    return f"{len(cells)} fields; expected {len(names)} features in order {names}{extra}"


def _json_row_problem(line: str, names: list[str]) -> str | None:
    """What is wrong with one JSON Lines input line as a row of raw features (None:
    nothing): the rules :func:`parse_payload` applies to each record of a JSON body."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        return f"not a JSON line ({err.msg})"
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}; expected an object keyed by feature name"
    if "captureData" in rec:
        return _ENDPOINT_CAPTURE_HINT
    missing = [n for n in names if n not in rec]
    unknown = [k for k in rec if k not in names]
    if missing or unknown:
        parts = [f"missing features {missing}"] if missing else []
        parts += [f"unknown fields {unknown}"] if unknown else []
        return "; ".join(parts)
    return None


def read_batch_input_file(file: Path, schema: Schema) -> pd.DataFrame | None:
    """The raw feature rows of one batch transform input file (None: it holds no row).

    A file is CSV, or JSON Lines when its first non-blank line starts with ``{``. Each line
    is one record (``SplitType`` ``Line``) and must be a row :func:`parse_payload` accepts in
    a body of that type: CSV, the schema's features in schema order, no target, a first row
    naming the features being a header (rows of blank cells only are skipped, as there);
    JSON Lines, one object keyed by feature name. The frame is :func:`parse_payload`'s of
    those lines.

    Raises:
        DataError: naming ``file:line`` for a line that is not such a row or not UTF-8.
    """
    names = schema.feature_names
    media = None
    lines: list[str] = []
    header = False
    for where, line in _batch_lines(file):
        if media is None:
            media = JSON_TYPES[1] if line.lstrip().startswith("{") else CSV_TYPES[0]
        if media in CSV_TYPES:
            try:
                cells = _csv_cells(line)
            except csv.Error as err:
                problem = f"not a CSV line ({err})"
            else:
                if not any(c.strip() for c in cells):
                    continue  # no value at all: parse_payload skips such a row too
                header = header or (not lines and [c.strip() for c in cells] == names)
                problem = _csv_row_problem(cells, names)
        else:
            problem = _json_row_problem(line, names)
        if problem is not None:
            raise DataError(where, None, f"malformed batch input line: {problem}")
        lines.append(line)
    if len(lines) == int(header):  # no line, or the header alone
        return None
    try:
        return parse_payload("\n".join(lines), media, schema)
    except (PayloadError, csv.Error) as err:  # a quoted field across lines, say
        raise DataError(file, None, f"malformed batch input: {err}") from None


def read_batch_inputs(path: Path, schema: Schema) -> tuple[pd.DataFrame, dict[str, int], int]:
    """Read every batch transform input file under ``path`` (see :func:`batch_files` and
    :func:`read_batch_input_file`) into one frame of typed features.

    Unlike :func:`read_capture`, a window without a row (no file, empty files, headers only)
    is not an error: the frame is empty and the count 0.

    Returns:
        (features frame, wrong-type value count per feature, number of input records: rows).

    Raises:
        DataError: the directory does not exist; naming ``file:line`` for a malformed line.
    """
    frames = []
    for file in batch_files(path):
        frame = read_batch_input_file(file, schema)
        if frame is not None:
            frames.append(frame)
    if frames:
        raw = pd.concat(frames, ignore_index=True)
    else:
        raw = pd.DataFrame({n: pd.Series(dtype=object) for n in schema.feature_names})
    typed, bad = coerce_features(raw, schema)
    return typed, {k: len(v) for k, v in bad.items()}, len(typed)


def parse_batch_output_line(line: str, where: str) -> BatchOutput:
    """One batch transform output line, with the inference ID and time batch capture appends
    (``GenerateInferenceId``).

    CSV (``Accept`` ``text/csv``): ``<prediction>,<inference id>,<inference time>``, blanks
    around the commas allowed (``0, 1f1d57b1-...,2022-08-30T00:49:15Z``); the prediction is
    everything before the last two fields (``0.93``; ``[0.1, 0.2, 0.7]``; ``0.1,0.2,0.7``).
    JSON: an object with ``output`` (a number, a list, or text as in CSV),
    ``SageMakerInferenceId`` and ``SageMakerInferenceTime``.

    Raises:
        DataError: naming ``where`` when the line is neither.
    """
    text = line.strip()
    if text.startswith("{"):
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                where, None, f"malformed batch output line: not JSON ({err.msg})"
            ) from None
        if not isinstance(rec, dict):
            raise DataError(where, None, "malformed batch output line: not a JSON object")
        if "captureData" in rec:
            raise DataError(where, None, f"malformed batch output line: {_ENDPOINT_CAPTURE_HINT}")
        inference_id = rec.get(BATCH_INFERENCE_ID_KEY)
        if not isinstance(inference_id, str) or not inference_id.strip():
            raise DataError(
                where,
                None,
                f"malformed batch output line: no {BATCH_INFERENCE_ID_KEY} text (the transform "
                "job's DataCaptureConfig must set GenerateInferenceId)",
            )
        if BATCH_OUTPUT_KEY not in rec:
            raise DataError(where, None, f"malformed batch output line: no {BATCH_OUTPUT_KEY!r}")
        value = rec[BATCH_OUTPUT_KEY]
        if isinstance(value, str):
            prediction = value
        elif isinstance(value, (int, float, list)) and not isinstance(value, bool):
            prediction = json.dumps(value)
        else:
            raise DataError(
                where,
                None,
                f"malformed batch output line: {BATCH_OUTPUT_KEY!r} is a "
                f"{type(value).__name__}, not a number, a list or text",
            )
        return BatchOutput(where, inference_id.strip(), prediction)
    parts = [p.strip() for p in text.rsplit(",", 2)]
    if len(parts) < 3 or not all(parts):
        raise DataError(
            where,
            None,
            f"malformed batch output line: expected {BATCH_OUTPUT_CSV} (the transform job's "
            f"DataCaptureConfig must set GenerateInferenceId), got {_clip(text)!r}",
        )
    prediction, inference_id, _time = parts
    return BatchOutput(where, inference_id, prediction)


def read_batch_outputs(path: Path) -> list[BatchOutput]:
    """Every line of every batch transform output file under ``path`` (see
    :func:`batch_files` and :func:`parse_batch_output_line`), files by path, lines in file
    order. No line (no file, empty files) is an empty list, not an error.

    Raises:
        DataError: the directory does not exist; naming ``file:line`` for a malformed line.
    """
    return [
        parse_batch_output_line(line, where)
        for file in batch_files(path)
        for where, line in _batch_lines(file)
    ]


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""Reading raw data (CSV or Parquet, one file or a prefix of many) and writing outputs atomically.

The fast path reads with pyarrow using the schema's column types. When pyarrow refuses a
file, or accepts a value the platform must not (an infinite number, a line break left by
an unclosed quote), a slower diagnostic pass finds the line, column and value at fault so
the message says exactly what to fix. Before either, the file's first bytes are checked
against its name (Parquet named ``.csv``, plain text named ``.csv.gz``, ...).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import logging
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from steplib.contract import NUMERIC, Schema
from steplib.errors import DataError

LOG = logging.getLogger("pipeline_steps.rawio")

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]

#: Magic numbers: the first bytes of a Parquet, gzip or ZIP file, and UTF-16 byte order marks.
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: Bytes read to tell a file's format: enough to see that text is text.
SNIFF_BYTES = 512
#: zlib's window-bits value for a gzip container (header and CRC checked).
GZIP_WBITS = 16 + zlib.MAX_WBITS
#: Compressed bytes fed to zlib at a time: small, so a corrupt stream's message can say
#: closely where decompression stopped.
GZIP_CHUNK_BYTES = 1 << 16
#: Delimiters recognised in a header that does not split at commas.
DELIMITER_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe"}
_KIND_ADVICE = {
    "parquet": "looks like a Parquet file; name it .parquet",
    "gzip": "looks like a gzip-compressed file; name it .csv.gz",
    "zip": "looks like a ZIP archive (an Excel .xlsx workbook?); export the data as "
    "comma-separated CSV in UTF-8",
    "utf-16": "looks like UTF-16 text (as Excel's 'Unicode Text' export writes); export the "
    "data as comma-separated CSV in UTF-8",
}


def list_data_files(path: Path) -> list[Path]:
    """The CSV/Parquet files at ``path``: the file itself, or every such file under a directory.

    Files are sorted by path so the row order (and so the seeded split) is reproducible.
    Hidden files and markers such as ``_SUCCESS`` are skipped.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, None, "input path does not exist")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not p.name.startswith((".", "_"))
        and p.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)
    )
    if not files:
        raise DataError(path, None, "no .csv, .csv.gz or .parquet files found")
    return files


def _arrow_types(schema: Schema, include_target: bool) -> dict[str, pa.DataType]:
    """The type of each column read from a raw file, by the raw data's column names."""
    types: dict[str, pa.DataType] = {}
    if schema.record_id_derivation is None:
        types[schema.source_of(schema.record_id_column)] = pa.string()
    if schema.event_time_value is None:
        types[schema.source_of(schema.event_time_column)] = pa.string()
    for feat in schema.features:
        types[schema.source_of(feat.name)] = pa.float64() if feat.type == NUMERIC else pa.string()
    if include_target:
        target = pa.float64() if schema.target_type == NUMERIC else pa.string()
        types[schema.source_of(schema.target_name)] = target
    return types


def required_columns(schema: Schema, include_target: bool = True) -> list[str]:
    """The schema's columns, as the platform writes them: record id, event time, [target],
    features."""
    cols = [schema.record_id_column, schema.event_time_column]
    if include_target:
        cols.append(schema.target_name)
    return cols + schema.feature_names


def _check_columns(file: Path, found: Sequence[str], schema: Schema, include_target: bool) -> None:
    missing = [c for c in schema.raw_columns(include_target) if c not in found]
    if not missing:
        return
    first = missing[0]
    role = "target column" if first == schema.source_of(schema.target_name) else "column"
    more = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    raise DataError(
        file,
        first,
        f"{role} is missing from the header{more}; columns found: {', '.join(found) or '(none)'}",
    )


def sniff_kind(head: bytes) -> str:
    """What a file's first bytes look like: parquet, gzip, zip, utf-16, text or binary.

    Judged from magic numbers, not the name, so that a misnamed file is reported as what it
    is instead of being misread as what its name says.
    """
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(UTF16_BOMS):
        return "utf-16"
    text = _looks_like_text(head)
    # A CSV header could in theory start with "PAR1"; Parquet's next bytes are binary.
    if head.startswith(PARQUET_MAGIC) and not text:
        return "parquet"
    return "text" if text else "binary"


def _looks_like_text(head: bytes) -> bool:
    """True when ``head`` is UTF-8 without NUL bytes (a character cut off at the end is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # The sniffed prefix may end in the middle of a multi-byte character.
        return err.reason == "unexpected end of data"
    return True


def _expected_kind(name: str) -> str:
    """The :func:`sniff_kind` a file's name promises."""
    name = name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "gzip" if name.endswith(".gz") else "text"


def format_problem(name: str, head: bytes) -> str | None:
    """Why a file's first bytes do not fit its name (``a.csv`` holding Parquet), or None.

    Args:
        name: The file name; its suffix says what the file should hold.
        head: The file's first bytes (a few hundred are enough).
    """
    expected, kind = _expected_kind(name), sniff_kind(head)
    # Unknown binary is left to the reader, which names the offending line and byte.
    if kind in (expected, "binary"):
        return None
    if kind == "text":
        if expected == "gzip":
            return "is not gzip-compressed (it looks like plain text); name it .csv"
        return "looks like text (CSV?), not a Parquet file; name a CSV file .csv"
    return _KIND_ADVICE[kind]


def check_format(file: Path) -> None:
    with open(file, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    problem = format_problem(file.name, head)
    if problem:
        raise DataError(file, None, problem)


def delimiter_problem(header_text: str, required: Sequence[str]) -> str | None:
    """Say which delimiter a header uses when it is not the comma, or None.

    A header counts as, say, semicolon-delimited when splitting it at semicolons finds more
    of the required columns than splitting at commas does.

    Args:
        header_text: The header line as read from the file.
        required: The columns the file must have.
    """

    def found(delimiter: str) -> int:
        fields = set(next(csv.reader([header_text], delimiter=delimiter), []))
        return sum(c in fields for c in required)

    comma = found(",")
    for delimiter, name in DELIMITER_NAMES.items():
        if found(delimiter) > comma:
            return (
                f"looks like {name}-delimited text; the platform reads comma-separated CSV "
                "(export it with ',' as the delimiter)"
            )
    return None


def _open_binary(file: Path):
    if file.name.lower().endswith(".gz"):
        return gzip.open(file, "rb")
    return open(file, "rb")


def _gzip_error(file: Path, err: Exception, recovered: bytes) -> DataError:
    """Say that a gzip stream is broken and how far its text got."""
    lines = recovered.count(b"\n")
    if isinstance(err, EOFError):
        where = f"after line {lines:,}" if lines else "within the first line"
        return DataError(
            file,
            None,
            f"is not a complete gzip stream: the compressed data stops {where} (an upload or "
            "copy cut short?); compress and upload it again",
        )
    # zlib raises for a whole input chunk, so the damage is somewhere after what was recovered.
    where = f"; decompression fails after line {lines:,}" if lines else ""
    return DataError(
        file,
        None,
        f"is not a valid gzip stream ({err}{where}); the file is corrupt, compress and upload "
        "it again",
    )


def _read_bytes(file: Path) -> bytes:
    """The whole file, decompressed when its name ends in ``.gz``.

    Decompresses with :mod:`zlib` directly (not :mod:`gzip`) so that, when the stream is
    broken, the text recovered up to that point is known and the message can say where.

    Raises:
        DataError: when the gzip stream is cut short or corrupt.
    """
    if not file.name.lower().endswith(".gz"):
        return file.read_bytes()
    out: list[bytes] = []
    decoder = zlib.decompressobj(wbits=GZIP_WBITS)
    with open(file, "rb") as fh:
        while chunk := fh.read(GZIP_CHUNK_BYTES):
            try:
                out.append(decoder.decompress(chunk))
                # A .gz may hold several members back to back (`cat a.gz b.gz`), as gzip
                # and pyarrow accept; trailing NUL padding ends the stream.
                while decoder.eof and decoder.unused_data.strip(b"\x00"):
                    rest = decoder.unused_data
                    decoder = zlib.decompressobj(wbits=GZIP_WBITS)
                    out.append(decoder.decompress(rest))
            except zlib.error as err:
                raise _gzip_error(file, err, b"".join(out)) from None
    if not decoder.eof:
        raise _gzip_error(file, EOFError(), b"".join(out))
    return b"".join(out)


def read_csv_header(file: Path) -> tuple[str, list[str]]:
    """The header line of a CSV file (decoded, BOM removed) and its comma-separated fields."""
    try:
        with _open_binary(file) as fh:
            first = fh.readline()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise _gzip_error(file, err, b"") from None
    if not first.strip():
        raise DataError(file, None, "file is empty (no header row)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(file, None, f"header row is not valid UTF-8 (byte {err.start})") from None
    return text, next(csv.reader([text]))


def _decode_utf8(file: Path, raw: bytes) -> str:
    """``raw`` as text; a DataError names the line and column of the first undecodable byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_no = raw.count(b"\n", 0, err.start) + 1
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace")]))
        col_idx = raw.count(b",", line_start, err.start)
        column = header[col_idx] if col_idx < len(header) else None
        raise DataError(
            file,
            column,
            f"line {line_no}: bytes are not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})",
        ) from None


def _row_fault(row: Sequence[str], width: int, read: set[int]) -> tuple[str, int | None] | None:
    """Why a parsed row is malformed: ``("quote", field)``, ``("count", None)``, or None.

    A line break inside a value means a quote opened and (usually) never closed: the reader
    then swallows the following lines, which is also why the field count is off.
    Line breaks in columns the schema does not read are left alone, as pyarrow leaves them.
    """
    spans = [i for i, value in enumerate(row) if "\n" in value or "\r" in value]
    if len(row) != width:
        return ("quote", spans[0]) if spans else ("count", None)
    spans = [i for i in spans if i in read]
    return ("quote", spans[0]) if spans else None


def _row_fault_message(
    kind: str, found: int, width: int, start: int, end: int, last_line: int
) -> str:
    """The message for a :func:`_row_fault` of a row on lines ``start``..``end``."""
    if kind == "quote":
        until = "the end of the file" if end >= last_line else f"line {end}"
        return (
            f"line {start}: a quoted value starts on this line and runs on to {until}; "
            "values may not span lines (is a closing quote missing?)"
        )
    hint = "quote values that contain a comma" if found > width else "the row is incomplete"
    return f"line {start}: expected {width} fields (as in the header), found {found}; {hint}"


def _scan_rows(
    file: Path, text: str, types: dict[str, pa.DataType]
) -> tuple[list[str], list[list[str]], list[int]]:
    """Parse CSV text row by row, checking each row's shape.

    Returns:
        The header, the data rows, and the line each row starts on (1-based, the header is
        line 1). Blank lines are skipped, as pyarrow skips them.

    Raises:
        DataError: at the first row with the wrong number of fields or with a line break in
            a value the schema reads.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    read = {i for i, name in enumerate(header) if name in types}
    rows: list[list[str]] = []
    lines: list[int] = []
    start = reader.line_num + 1
    try:
        for row in reader:
            fault = _row_fault(row, len(header), read) if row else None
            if fault is not None:
                kind, index = fault
                last_line = text.count("\n") + (not text.endswith("\n"))
                raise DataError(
                    file,
                    header[index] if index is not None and index < len(header) else None,
                    _row_fault_message(
                        kind, len(row), len(header), start, reader.line_num, last_line
                    ),
                )
            if row:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(file, None, f"line {start}: cannot parse CSV ({err})") from None
    return header, rows, lines


def _classify_number(text: str) -> str:
    """``number``, ``missing`` (NaN), ``non-finite`` or ``text``: a numeric column's cell."""
    try:
        value = float(text)
    except ValueError:
        return "text"
    if math.isnan(value):
        return "missing"  # pyarrow reads spellings such as "NAN" as NaN: a missing value
    return "number" if math.isfinite(value) else "non-finite"


def _numeric_fault(values: pd.Series) -> tuple[int, str, int] | None:
    """The first cell of a numeric column that is neither a finite number nor missing.

    Returns:
        (row index, ``text`` or ``non-finite``, how many cells have that fault), or None.
    """
    stripped = values.str.strip()
    blank = stripped.isin(NULL_VALUES).to_numpy()
    numbers = pd.to_numeric(stripped.where(~blank), errors="coerce").to_numpy(dtype=np.float64)
    # pandas coerces what it cannot parse to NaN and reads "inf" as inf; the few cells it
    # flags get a closer look, so that, e.g., "1e400" counts as non-finite, not as text.
    candidates = np.flatnonzero((np.isnan(numbers) & ~blank) | np.isinf(numbers))
    kinds = [_classify_number(stripped.iloc[i]) for i in candidates]
    faults = [
        (int(i), k) for i, k in zip(candidates, kinds, strict=True) if k in ("text", "non-finite")
    ]
    if not faults:
        return None
    row, kind = faults[0]
    return row, kind, sum(k == kind for _, k in faults)


def _value_problem(
    file: Path,
    header: list[str],
    rows: list[list[str]],
    lines: list[int],
    types: dict[str, pa.DataType],
) -> None:
    """Raise a DataError at the first value of a numeric column that is not a finite number."""
    for name, typ in types.items():
        if not pa.types.is_floating(typ) or name not in header:
            continue
        index = header.index(name)
        values = pd.Series([row[index] for row in rows], dtype=object)
        fault = _numeric_fault(values)
        if fault is None:
            continue
        row, kind, count = fault
        if kind == "text":
            problem = "is not numeric, but the schema declares this column numeric"
        else:
            problem = (
                "is not a finite number; a numeric column holds finite numbers, or a blank "
                "or NA for a missing value"
            )
        raise DataError(
            file,
            name,
            f"line {lines[row]}: value {values.iloc[row]!r} {problem} "
            f"({count} such value{'s' if count != 1 else ''})",
        )


def diagnose_csv(file: Path, types: dict[str, pa.DataType], reason: str) -> DataError:
    """Find why a CSV file is unreadable (or suspect) and name its line and column.

    Runs only after the fast read failed or found a suspect value, so it may be slow: it
    re-reads the whole file in Python to know the line every row starts on.

    Args:
        file: The CSV file.
        types: The column types the fast read asked for.
        reason: What the fast read said; the message when nothing more precise is found.
    """
    try:
        text = _decode_utf8(file, _read_bytes(file))
        header, rows, lines = _scan_rows(file, text, types)
        _value_problem(file, header, rows, lines, types)
    except DataError as err:
        return err
    return DataError(file, None, f"cannot parse CSV: {reason}")


def _first_infinite(column: pa.ChunkedArray) -> tuple[int, int] | None:
    """(first row, count) of infinite values in a float column, or None."""
    mask = pc.fill_null(pc.is_inf(column), False)
    count = pc.sum(mask).as_py() or 0
    if not count:
        return None
    return int(np.flatnonzero(mask.to_numpy())[0]), count


def _has_line_break(column: pa.ChunkedArray) -> bool:
    """True when a string column holds a value with a line break."""
    for chunk in column.chunks:
        data = chunk.buffers()[2]
        # A byte search of the value buffer takes microseconds where a compute kernel takes
        # milliseconds; a hit is confirmed exactly (a buffer may hold bytes outside the chunk).
        if data is None:
            continue
        raw = data.to_pybytes()
        for eol in ("\n", "\r"):
            if eol.encode() in raw and pc.any(pc.match_substring(chunk, eol)).as_py():
                return True
    return False


def _suspect_column(table: pa.Table, types: dict[str, pa.DataType]) -> str | None:
    """The first column holding a value pyarrow accepted but the platform must not, or None.

    pyarrow parses ``inf`` and ``Infinity`` as numbers, and reads a stray quote as opening a
    value that runs on to the next quote, silently joining the lines in between into one
    row. Both are found column-wise here (a few milliseconds for a million rows), so only
    such files pay for the row-by-row diagnostic pass.
    """
    for name, typ in types.items():
        column = table.column(name)
        if pa.types.is_floating(typ):
            suspect = pc.any(pc.is_inf(column)).as_py()
        else:
            suspect = _has_line_break(column)
        if suspect:
            return name
    return None


def _read_csv(file: Path, schema: Schema, include_target: bool) -> pa.Table:
    header_text, header = read_csv_header(file)
    required = schema.raw_columns(include_target)
    if not set(required) <= set(header):
        delimiter = delimiter_problem(header_text, required)
        if delimiter:
            raise DataError(file, None, delimiter)
    _check_columns(file, header, schema, include_target)
    types = _arrow_types(schema, include_target)
    try:
        table = pacsv.read_csv(
            file,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(types),
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as err:
        # OSError: pyarrow's report of a truncated or corrupt .gz.
        raise diagnose_csv(file, types, str(err)) from None
    suspect = _suspect_column(table, types)
    if suspect is not None:
        raise diagnose_csv(
            file,
            types,
            f"column {suspect!r} holds an infinite number or a line break inside a value",
        )
    return table


def _read_parquet(file: Path, schema: Schema, include_target: bool) -> pa.Table:
    try:
        pschema = pq.read_schema(file)
    except (pa.ArrowInvalid, OSError) as err:
        if file.stat().st_size == 0:
            raise DataError(file, None, "file is empty") from None
        raise DataError(file, None, f"not a readable Parquet file ({err})") from None
    _check_columns(file, pschema.names, schema, include_target)
    types = _arrow_types(schema, include_target)
    try:
        table = pq.read_table(file, columns=list(types))
    except (pa.ArrowInvalid, OSError) as err:
        # A readable footer does not make readable pages (a truncated or damaged file).
        raise DataError(file, None, f"not a readable Parquet file ({err})") from None
    columns = []
    for name, typ in types.items():
        col = table.column(name)
        numeric_source = (
            pa.types.is_integer(col.type)
            or pa.types.is_floating(col.type)
            or pa.types.is_decimal(col.type)
            or pa.types.is_null(col.type)
        )
        if pa.types.is_floating(typ) and not numeric_source:
            raise DataError(
                file,
                name,
                f"Parquet type {col.type} is not numeric, but the schema declares this column numeric",
            )
        col = col.cast(typ)
        infinite = _first_infinite(col) if pa.types.is_floating(typ) else None
        if infinite is not None:
            row, count = infinite
            raise DataError(
                file,
                name,
                f"row {row + 1}: value {col[row].as_py()} is not a finite number; a numeric "
                f"column holds finite numbers, or null/NaN for a missing value "
                f"({count} such value{'s' if count != 1 else ''})",
            )
        columns.append(col)
    return pa.table(columns, names=list(types))


def read_table(path: Path, schema: Schema, include_target: bool = True) -> pa.Table:
    """Read every raw file under ``path`` into one Arrow table with the schema's columns.

    Numeric features (and a numeric target) become float64; ids, event times and categorical
    columns become strings. Blank, ``NA``, ``NaN`` and ``null`` cells are missing values.

    Args:
        path: A file, or a directory (an S3 prefix as SageMaker mounts it).
        schema: The model's declared schema.
        include_target: When False the target column is neither required nor read.

    Raises:
        DataError: naming file, line, column and problem: empty file, header only, missing
            column, a file whose bytes do not fit its name (Parquet named .csv, ...) or that
            is not comma-delimited, a truncated or corrupt .gz, a row with too many or too
            few fields, an unclosed quote, a non-numeric or infinite value in a numeric
            column, undecodable bytes.
    """
    tables = []
    files = list_data_files(path)
    for file in files:
        if file.stat().st_size == 0:
            raise DataError(file, None, "file is empty")
        check_format(file)
        if file.name.lower().endswith(PARQUET_SUFFIXES):
            table = _read_parquet(file, schema, include_target)
        else:
            table = _read_csv(file, schema, include_target)
        if table.num_rows == 0:
            if len(files) == 1:
                raise DataError(file, None, "file has a header but no data rows")
            LOG.warning("%s: no data rows; skipped", file)
            continue
        tables.append(table)
        LOG.info("read %s: %d rows", file, table.num_rows)
    if not tables:
        raise DataError(path, None, "no data rows in any input file")
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return _as_schema_columns(table, schema, include_target)


def _as_schema_columns(table: pa.Table, schema: Schema, include_target: bool) -> pa.Table:
    """The raw table under the schema's names, with derived columns added, in the order
    of :func:`required_columns`."""
    renamed = table.rename_columns([_schema_name(schema, c) for c in table.column_names])
    if schema.record_id_derivation is not None:
        renamed = renamed.append_column(
            schema.record_id_column, row_hash_ids(renamed, schema.feature_names)
        )
    if schema.event_time_value is not None:
        renamed = renamed.append_column(
            schema.event_time_column,
            pa.array([schema.event_time_value] * renamed.num_rows, pa.string()),
        )
    return renamed.select(required_columns(schema, include_target))


def _schema_name(schema: Schema, source: str) -> str:
    for name, src in schema.sources.items():
        if src == source:
            return name
    return source


#: Between a row's values in the text its id is hashed from (cannot occur in a CSV cell
#: that pyarrow reads as one value without quoting, and is rare in any data).
_ROW_HASH_SEPARATOR = "\x1f"


def row_hash_ids(table: pa.Table, columns: Sequence[str]) -> pa.Array:
    """Record ids derived from ``columns`` of each row (the contract's ``row_hash``):
    SHA-256 of the values as text (a missing value as empty), first 32 hex digits; the
    second and later copies of a repeated row get ``-2``, ``-3``, ... in row order."""
    texts = [
        pc.fill_null(pc.cast(table.column(c), pa.string()), "") for c in columns
    ]  # fmt: skip
    joined = pc.binary_join_element_wise(*texts, _ROW_HASH_SEPARATOR).to_pylist()
    seen: dict[str, int] = {}
    ids = []
    for text in joined:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
        count = seen.get(digest, 0) + 1
        seen[digest] = count
        ids.append(digest if count == 1 else f"{digest}-{count}")
    return pa.array(ids, pa.string())


def describe_source(path: Path) -> str:
    """The file name when ``path`` holds one data file, else the directory (for messages)."""
    files = list_data_files(path)
    return str(files[0]) if len(files) == 1 else str(path)


def read_raw(path: Path, schema: Schema, include_target: bool = True) -> pd.DataFrame:
    """:func:`read_table` as a pandas DataFrame (strings as Python objects, missing as None/NaN)."""
    return read_table(path, schema, include_target).to_pandas()


@contextlib.contextmanager
def atomic_output(output_dir: Path) -> Iterator[Path]:
    """Yield a private staging directory; on success move its contents into ``output_dir``.

    On any exception the staging directory is deleted and ``output_dir`` is left as it was,
    so a failed step never leaves half-written output for the next step to pick up.
    The staging directory is a sibling of ``output_dir`` so the final move is a rename.
    """
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=output_dir.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    output_dir.mkdir(parents=True, exist_ok=True)
    for child in sorted(staging.iterdir()):
        _move_into_place(child, output_dir / child.name)
    shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(src: Path, target: Path) -> None:
    """Replace ``target`` with ``src``.

    An existing target directory is kept and only its contents are replaced: SageMaker
    creates each ProcessingOutput's local directory before the job starts, and it must stay
    the directory SageMaker uploads from.
    """
    if src.is_dir() and target.is_dir() and not target.is_symlink():
        for old in target.iterdir():
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        for child in sorted(src.iterdir()):
            _move(child, target / child.name)
        return
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    _move(src, target)


def _move(src: Path, target: Path) -> None:
    if _same_device(src, target.parent):
        os.replace(src, target)
    else:
        shutil.move(str(src), str(target))


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def matrix_csv_buffer(matrix: np.ndarray) -> pa.Buffer:
    """A float matrix as header-less CSV bytes (built-in XGBoost's training layout).

    pyarrow writes the shortest text that reads back to the same float64, so values
    round-trip exactly. Releases the GIL, so chunks can be encoded in parallel threads.
    """
    matrix = np.asfortranarray(matrix, dtype=np.float64)
    table = pa.table({f"c{i}": matrix[:, i] for i in range(matrix.shape[1])})
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def write_matrix_csv(
    path: Path, matrix: np.ndarray, pool: Executor | None = None, chunk_rows: int = 100_000
) -> None:
    """Write a float matrix as header-less CSV; with ``pool``, encode row chunks in parallel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = (
        np.array_split(matrix, max(1, -(-len(matrix) // chunk_rows))) if len(matrix) else [matrix]
    )
    if pool is None:
        buffers = [matrix_csv_buffer(c) for c in chunks]
    else:
        buffers = [f.result() for f in [pool.submit(matrix_csv_buffer, c) for c in chunks]]
    with open(path, "wb") as fh:
        for buf in buffers:
            fh.write(memoryview(buf))


def write_table_csv(path: Path, table: pa.Table, include_header: bool = True) -> None:
    """Write an Arrow table as CSV (missing values as empty cells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=include_header))


def read_matrix_csv(path: Path) -> np.ndarray:
    """Read a header-less numeric CSV (as written by :func:`write_matrix_csv`)."""
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    return np.column_stack(
        [
            table.column(i).to_numpy(zero_copy_only=False).astype(np.float64)
            for i in range(table.num_columns)
        ]
    )

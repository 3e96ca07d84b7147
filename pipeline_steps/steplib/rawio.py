"""Reading raw data (CSV or Parquet, one file or a prefix of many) and writing outputs atomically.

The fast path reads with pyarrow using the schema's column types. When pyarrow refuses a
file, a slower diagnostic pass finds the row, column and value at fault so the message
says exactly what to fix.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from steplib.errors import DataError
from steplib.schema import Schema

LOG = logging.getLogger("pipeline_steps.rawio")

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


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
    types: dict[str, pa.DataType] = {
        schema.record_id_column: pa.string(),
        schema.event_time_column: pa.string(),
    }
    for feat in schema.features:
        types[feat.name] = pa.float64() if feat.type == "numeric" else pa.string()
    if include_target:
        types[schema.target_name] = pa.float64() if schema.target_type == "numeric" else pa.string()
    return types


def required_columns(schema: Schema, include_target: bool = True) -> list[str]:
    """Columns a raw file must have: record id, event time, [target], features."""
    cols = [schema.record_id_column, schema.event_time_column]
    if include_target:
        cols.append(schema.target_name)
    return cols + schema.feature_names


def _check_columns(file: Path, found: Sequence[str], schema: Schema, include_target: bool) -> None:
    missing = [c for c in required_columns(schema, include_target) if c not in found]
    if not missing:
        return
    first = missing[0]
    role = "target column" if first == schema.target_name else "column"
    more = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    raise DataError(
        file,
        first,
        f"{role} is missing from the header{more}; columns found: {', '.join(found) or '(none)'}",
    )


def _read_csv_header(file: Path) -> list[str]:
    opener = _open_binary(file)
    with opener as fh:
        first = fh.readline()
    if not first.strip():
        raise DataError(file, None, "file is empty (no header row)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(file, None, f"header row is not valid UTF-8 (byte {err.start})") from None
    return next(csv.reader([text]))


def _open_binary(file: Path):
    if file.name.lower().endswith(".gz"):
        import gzip

        return gzip.open(file, "rb")
    return open(file, "rb")


def _diagnose_csv(file: Path, types: dict[str, pa.DataType], arrow_message: str) -> DataError:
    """Find the first undecodable byte or non-numeric value and name its line and column."""
    with _open_binary(file) as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_no = raw.count(b"\n", 0, err.start) + 1
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace")]))
        col_idx = raw.count(b",", line_start, err.start)
        column = header[col_idx] if col_idx < len(header) else None
        return DataError(
            file,
            column,
            f"line {line_no}: bytes are not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})",
        )
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col, typ in types.items():
        if col not in frame.columns or not pa.types.is_floating(typ):
            continue
        values = frame[col].str.strip()
        blank = values.isin(NULL_VALUES)
        numeric = pd.to_numeric(values.where(~blank), errors="coerce")
        bad = numeric.isna() & ~blank
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            return DataError(
                file,
                col,
                f"line {row + 2}: value {frame[col].iloc[row]!r} is not numeric, but the schema "
                f"declares this column numeric ({int(bad.sum())} such values)",
            )
    return DataError(file, None, f"cannot parse CSV: {arrow_message}")


def _read_csv(file: Path, schema: Schema, include_target: bool) -> pa.Table:
    header = _read_csv_header(file)
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
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise _diagnose_csv(file, types, str(err)) from None
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
    table = pq.read_table(file, columns=list(types))
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
        columns.append(col.cast(typ))
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
        DataError: naming file, column and problem: empty file, header only, missing column,
            a non-numeric value in a numeric column, undecodable bytes.
    """
    tables = []
    files = list_data_files(path)
    for file in files:
        if file.stat().st_size == 0:
            raise DataError(file, None, "file is empty")
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
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


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

"""Profile raw data for ``mlops add-model``: what each column holds, as Preprocess would read it.

Local tool (not a pipeline step). Reads a CSV (``.csv``, ``.csv.gz``) or Parquet file, or
every such file under a directory, with the same file checks as Preprocess (format sniffing,
delimiters, malformed rows: :mod:`steplib.rawio`), and prints one JSON document:

    {"source": ..., "files": [...], "rows": N,
     "columns": [{"name", "storage", "missing", "distinct", "values",
                  "numbers": {"parsed", "integers", "first_text": [row, value] | null},
                  "unique", "iso_times"}, ...]}

``storage`` is ``text`` (CSV, or a Parquet string column), ``number``, ``bool`` or
``time``; ``values`` are up to 20 distinct values as Preprocess reads a categorical column
(text); ``numbers.parsed`` counts the values that are finite numbers. The decisions (which
type, which problem) are made from this profile by ``mlops/add_model.py``.

Bad data exits with code 2 and a message naming the file and the problem.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from steplib import rawio
from steplib.errors import DataError, run_main

#: Distinct values listed per column (the class list of a target is read from these).
MAX_VALUES = 20
#: An ISO-8601 date-time, as Feature Store takes event times (a date alone does not count).
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?")


def _read_file(file: Path) -> pa.Table:
    """One raw file: CSV with every column as text (as written), Parquet as stored."""
    if file.stat().st_size == 0:
        raise DataError(file, None, "file is empty")
    rawio.check_format(file)
    if file.name.lower().endswith(rawio.PARQUET_SUFFIXES):
        try:
            return pq.read_table(file)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(file, None, f"not a readable Parquet file ({err})") from None
    header_text, header = rawio.read_csv_header(file)
    if len(header) < 2:
        # Any other delimiter that splits the header into columns is named.
        problems = (
            rawio.delimiter_problem(header_text, next(csv.reader([header_text], delimiter=d)))
            for d in rawio.DELIMITER_NAMES
        )
        problem = next((p for p in problems if p), None)
        raise DataError(file, None, problem or "the header has fewer than two columns")
    types = {name: pa.string() for name in header}
    try:
        return pacsv.read_csv(
            file,
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=rawio.NULL_VALUES, strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as err:
        raise rawio.diagnose_csv(file, types, str(err)) from None


def _storage(column: pa.ChunkedArray) -> str:
    kind = column.type
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_temporal(kind):
        return "time"
    return "text"


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def profile_column(name: str, column: pa.ChunkedArray) -> dict:
    """What one column holds (see the module docstring)."""
    storage = _storage(column)
    present = column.drop_null()
    if storage == "number":
        present = present.filter(pc.is_finite(present.cast(pa.float64())))
    as_text = present.cast(pa.string())
    distinct = pc.unique(as_text)
    profile = {
        "name": name,
        "storage": storage,
        "missing": len(column) - len(present),
        "distinct": len(distinct),
        "values": sorted(distinct.to_pylist())[:MAX_VALUES],
        "unique": len(distinct) == len(column) and len(present) == len(column),
    }
    if storage in ("number", "text"):
        parsed, integers, first_text = 0, 0, None
        if storage == "number":
            values = present.cast(pa.float64()).to_pylist()
            parsed = len(values)
            integers = sum(1 for v in values if float(v).is_integer())
        else:
            for row, text in enumerate(column.to_pylist()):
                if text is None:
                    continue
                value = _as_number(text.strip())
                if value is None:
                    if first_text is None:
                        first_text = [row + 1, text]
                    continue
                parsed += 1
                integers += value.is_integer()
        profile["numbers"] = {"parsed": parsed, "integers": integers, "first_text": first_text}
    texts = distinct.to_pylist() if storage == "text" else []
    profile["iso_times"] = storage == "time" or (
        bool(texts) and all(ISO_TIME.fullmatch(t.strip()) for t in texts)
    )
    return profile


def profile(path: Path) -> dict:
    """The profile of every raw file under ``path``; files must share one header."""
    files = rawio.list_data_files(path)
    tables = []
    for file in files:
        table = _read_file(file)
        if tables and table.column_names != tables[0].column_names:
            raise DataError(
                file,
                None,
                f"its columns {table.column_names} differ from {files[0].name}'s "
                f"{tables[0].column_names}; every file of a model has the same columns",
            )
        tables.append(table)
    table = pa.concat_tables(tables, promote_options="permissive")
    if table.num_rows == 0:
        raise DataError(path, None, "no data rows (a header only)")
    return {
        "source": str(path),
        "files": [str(f) for f in files],
        "rows": table.num_rows,
        "columns": [profile_column(n, table.column(n)) for n in table.column_names],
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a CSV or Parquet file, or a directory of them")
    args = p.parse_args(argv)
    print(json.dumps(profile(Path(args.data))))


if __name__ == "__main__":
    sys.exit(run_main(main))

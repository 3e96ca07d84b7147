"""On SageMaker the schema arrives as the only file of a processing input directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from steplib.errors import DataError
from steplib.schema import load_schema

SCHEMA = Path(__file__).resolve().parents[2] / "data" / "schemas" / "breast-cancer.json"


def test_a_directory_with_one_json_file_is_read(tmp_path: Path) -> None:
    shutil.copy(SCHEMA, tmp_path / "0f3c9e.json")  # named like a CDK asset
    assert load_schema(tmp_path) == load_schema(SCHEMA)


def test_a_directory_with_two_json_files_is_rejected(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(json.loads(SCHEMA.read_text())))
    with pytest.raises(DataError, match="expected one schema"):
        load_schema(tmp_path)

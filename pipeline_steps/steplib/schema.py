"""Reading a model's data schema file (``data/schemas/*.json``) inside a step.

The schema format and every rule about it live in :mod:`steplib.contract`; this module
reads the file and reports the contract's problems as a :class:`DataError` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

from steplib.contract import ContractError, Feature, Schema, parse_schema, schema_fit_problems
from steplib.errors import DataError

__all__ = ["Feature", "Schema", "check_problem_type", "load_schema", "parse_schema_doc"]


def parse_schema_doc(doc: object, source: str = "<schema>") -> Schema:
    """The contract's :func:`parse_schema`, with its problems raised as one DataError."""
    try:
        return parse_schema(doc, source)
    except ContractError as err:
        raise DataError(
            source, None, "invalid schema: " + "; ".join(p.render() for p in err.problems)
        ) from None


def load_schema(path: Path) -> Schema:
    """Read and check a schema file; a missing or undecodable file is a :class:`DataError`.

    ``path`` may also be a directory holding exactly one ``*.json`` file: on SageMaker the
    schema arrives as a processing input whose file name is the CDK asset's hash.
    """
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.json"))
        if len(candidates) != 1:
            raise DataError(
                path, None, f"expected one schema *.json in the directory, found {len(candidates)}"
            )
        path = candidates[0]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, "schema file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, None, f"schema is not valid JSON ({err})") from None
    return parse_schema_doc(doc, str(path))


def check_problem_type(schema: Schema, problem_type: str, source: str) -> None:
    """The problem type must be known and fit the schema (target type, class count)."""
    try:
        problems = schema_fit_problems(schema, problem_type)
    except KeyError as err:
        raise DataError(source, None, f"problem type {err.args[0]}") from None
    if problems:
        raise DataError(source, None, "; ".join(p.render() for p in problems))

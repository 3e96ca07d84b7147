"""The model's declared data schema (``data/schemas/*.json``) and problem types."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from steplib.errors import DataError

PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")
FEATURE_TYPES = ("numeric", "categorical")
# Feature Store feature-name rule: a letter first, then letters, digits, underscores; <= 64.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Feature:
    """One input column: its name and whether it is numeric or categorical."""

    name: str
    type: str


@dataclass(frozen=True)
class Schema:
    """What the raw data of one model looks like.

    Attributes:
        record_id_column: Unique id of a row (the Feature Store record identifier).
        event_time_column: Event time of a row (the Feature Store event time feature).
        target_name: The label column.
        target_type: ``categorical`` (classification) or ``numeric`` (regression).
        features: Model inputs, in the order the model sees them.
    """

    record_id_column: str
    event_time_column: str
    target_name: str
    target_type: str
    features: tuple[Feature, ...]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "categorical"]

    def to_json(self) -> dict:
        """The schema in its file layout."""
        return {
            "recordIdColumn": self.record_id_column,
            "eventTimeColumn": self.event_time_column,
            "target": {"name": self.target_name, "type": self.target_type},
            "features": [{"name": f.name, "type": f.type} for f in self.features],
        }


def parse_schema(doc: object, source: str = "<schema>") -> Schema:
    """Check a schema document and build a :class:`Schema`.

    Every problem found is listed in one :class:`DataError`.

    Args:
        doc: The decoded JSON document.
        source: Where it came from, for messages.
    """
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise DataError(source, None, "schema must be a JSON object")
    target = doc.get("target")
    if not isinstance(target, dict):
        problems.append("'target' must be an object with 'name' and 'type'")
        target = {}
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        problems.append("'features' must be a non-empty list of {name, type}")
        features = []
    names: list[tuple[str, str]] = [
        ("recordIdColumn", doc.get("recordIdColumn")),
        ("eventTimeColumn", doc.get("eventTimeColumn")),
        ("target.name", target.get("name")),
    ]
    if target.get("type") not in ("categorical", "numeric"):
        problems.append(f"target.type is {target.get('type')!r}; allowed: 'categorical', 'numeric'")
    parsed: list[Feature] = []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            problems.append(f"features[{i}] must be an object")
            continue
        names.append((f"features[{i}].name", feat.get("name")))
        if feat.get("type") not in FEATURE_TYPES:
            problems.append(
                f"features[{i}].type is {feat.get('type')!r}; allowed: {', '.join(FEATURE_TYPES)}"
            )
        parsed.append(Feature(str(feat.get("name")), str(feat.get("type"))))
    seen = set()
    for path, name in names:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            problems.append(
                f"{path} is {name!r}; a Feature Store name starts with a letter and has only "
                "letters, digits and underscores (max 64)"
            )
        elif name in seen:
            problems.append(f"{path} {name!r} is used twice")
        seen.add(name)
    if problems:
        raise DataError(source, None, "invalid schema: " + "; ".join(problems))
    return Schema(
        record_id_column=doc["recordIdColumn"],
        event_time_column=doc["eventTimeColumn"],
        target_name=target["name"],
        target_type=target["type"],
        features=tuple(parsed),
    )


def load_schema(path: Path) -> Schema:
    """Read and check a schema file; a missing or undecodable file is a :class:`DataError`.

    ``path`` may also be a directory holding exactly one ``*.json`` file: on SageMaker the
    schema arrives as a processing input whose file name is the CDK asset's hash.
    """
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.json"))
        if len(candidates) != 1:
            raise DataError(path, None, f"expected one schema *.json in the directory, found {len(candidates)}")
        path = candidates[0]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, "schema file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, None, f"schema is not valid JSON ({err})") from None
    return parse_schema(doc, str(path))


def check_problem_type(schema: Schema, problem_type: str, source: str) -> None:
    """The problem type must be known and agree with the target's type."""
    if problem_type not in PROBLEM_TYPES:
        raise DataError(
            source, None, f"problem type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}"
        )
    expected = "numeric" if problem_type == "regression" else "categorical"
    if schema.target_type != expected:
        raise DataError(
            source,
            schema.target_name,
            f"target type is {schema.target_type!r} but problem type {problem_type} needs {expected!r}",
        )

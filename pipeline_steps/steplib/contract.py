"""The model contract: the one definition of what a model is, read by every part of the platform.

The CDK app (``mlops/config.py``, the pipeline-definition builder, the constructs), the step
scripts (preprocess, evaluate, the serving handlers) and local-run all import this module;
none of them defines a problem type, an objective, a gate metric, a metric's JSON path, a
schema rule or a hyperparameter rule of its own (``tests/test_contract_single_source.py``
fails if one does).

Standard library only: it ships inside ``pipeline_steps/`` to the SageMaker containers
(imported there as ``steplib.contract``) and the CDK app imports the same file as
``pipeline_steps.steplib.contract``.

Validation functions return :class:`Problem` lists instead of raising, so that a caller can
report every problem at once, each under its own field path: config errors name the
``cdk.json`` field, step errors name the file.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

# --------------------------------------------------------------------------- problem types

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (BINARY, MULTICLASS, REGRESSION)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)


@dataclass(frozen=True)
class GateMetric:
    """A metric Evaluate writes and the quality gate may compare.

    Attributes:
        name: key inside the report section (``auc``, ``rmse``, ...).
        higher_is_better: the gate passes on ``value >= threshold`` when true, else ``<=``.
        lowest, highest: the range a threshold may take (None: unbounded on that side).
        meaning: one line for documentation and messages.
    """

    name: str
    higher_is_better: bool
    lowest: float | None
    highest: float | None
    meaning: str

    def threshold_problem(self, threshold: float) -> str | None:
        """Why ``threshold`` cannot be this metric's gate, or None when it can."""
        if not math.isfinite(threshold):
            return "a threshold must be a finite number"
        if self.lowest is not None and threshold < self.lowest:
            return f"{self.name} is never below {self.lowest:g}"
        if self.highest is not None and threshold > self.highest:
            return f"{self.name} is never above {self.highest:g}"
        if not self.higher_is_better and threshold <= 0:
            return f"the error metric {self.name} must stay below a positive threshold"
        return None


def _metrics(*items: GateMetric) -> Mapping[str, GateMetric]:
    return {m.name: m for m in items}


_UNIT = (0.0, 1.0)
_CLASSIFICATION_COMMON = (
    GateMetric("accuracy", True, *_UNIT, "share of test rows classified correctly"),
)


@dataclass(frozen=True)
class ProblemSpec:
    """Everything the platform treats differently per problem type.

    Attributes:
        name: the problem type.
        target_type: the schema type its target column must have.
        task: the Model Registry ``Task`` of its model packages.
        report_section: the top-level key of ``evaluation.json``.
        metrics: what Evaluate writes under ``report_section``, by name.
        objectives: built-in XGBoost objectives whose output Evaluate and the endpoint
            read correctly (see :data:`UNSCOREABLE_OBJECTIVES` for the others).
        eval_metrics: ``eval_metric`` values the built-in algorithm accepts for it.
        default_gate: the gate metric a new model gets (``mlops add-model``).
        default_eval_metric: the ``eval_metric`` a new model gets.
    """

    name: str
    target_type: str
    task: str
    report_section: str
    metrics: Mapping[str, GateMetric]
    objectives: tuple[str, ...]
    eval_metrics: frozenset[str]
    default_gate: str
    default_eval_metric: str

    @property
    def is_classification(self) -> bool:
        return self.target_type == CATEGORICAL


PROBLEMS: Mapping[str, ProblemSpec] = {
    BINARY: ProblemSpec(
        name=BINARY,
        target_type=CATEGORICAL,
        task="CLASSIFICATION",
        report_section=f"{BINARY}_metrics",
        metrics=_metrics(
            GateMetric("auc", True, *_UNIT, "area under the ROC curve of the positive class"),
            *_CLASSIFICATION_COMMON,
            GateMetric("f1", True, *_UNIT, "F1 of the positive class at probability 0.5"),
            GateMetric("precision", True, *_UNIT, "precision of the positive class at 0.5"),
            GateMetric("recall", True, *_UNIT, "recall of the positive class at 0.5"),
        ),
        objectives=("binary:logistic",),
        eval_metrics=frozenset(
            {"auc", "aucpr", "logloss", "error", "accuracy", "balanced_accuracy"}
            | {"f1", "f1_binary", "precision", "recall"}
        ),
        default_gate="auc",
        default_eval_metric="auc",
    ),
    MULTICLASS: ProblemSpec(
        name=MULTICLASS,
        target_type=CATEGORICAL,
        task="CLASSIFICATION",
        report_section=f"{MULTICLASS}_metrics",
        metrics=_metrics(
            *_CLASSIFICATION_COMMON,
            # SageMaker's model-quality layout names the class-frequency weighted averages
            # weighted_*; f1/precision/recall are the same values under their short names.
            GateMetric("weighted_f1", True, *_UNIT, "F1 averaged over classes, by frequency"),
            GateMetric("weighted_precision", True, *_UNIT, "precision averaged by frequency"),
            GateMetric("weighted_recall", True, *_UNIT, "recall averaged by frequency"),
            GateMetric("f1", True, *_UNIT, "the same value as weighted_f1"),
            GateMetric("precision", True, *_UNIT, "the same value as weighted_precision"),
            GateMetric("recall", True, *_UNIT, "the same value as weighted_recall"),
        ),
        objectives=("multi:softprob",),
        eval_metrics=frozenset(
            {"mlogloss", "merror", "accuracy", "balanced_accuracy", "f1", "f1_macro"}
            | {"precision_macro", "precision_micro", "recall_macro", "recall_micro"}
        ),
        default_gate="weighted_f1",
        default_eval_metric="mlogloss",
    ),
    REGRESSION: ProblemSpec(
        name=REGRESSION,
        target_type=NUMERIC,
        task="REGRESSION",
        report_section=f"{REGRESSION}_metrics",
        metrics=_metrics(
            GateMetric("r2", True, None, 1.0, "coefficient of determination"),
            GateMetric("rmse", False, 0.0, None, "root mean squared error"),
            GateMetric("mae", False, 0.0, None, "mean absolute error"),
            GateMetric("mse", False, 0.0, None, "mean squared error"),
        ),
        objectives=(
            "reg:squarederror",
            "reg:squaredlogerror",
            "reg:pseudohubererror",
            "reg:tweedie",
            "reg:gamma",
        ),
        eval_metrics=frozenset({"rmse", "rmsle", "mae", "mape", "mphe", "mse", "r2"}),
        default_gate="r2",
        default_eval_metric="rmse",
    ),
}

#: Objectives the built-in algorithm accepts whose predictions the platform would misread,
#: with what to use instead.
UNSCOREABLE_OBJECTIVES: Mapping[str, str] = {
    "binary:logitraw": "it predicts raw margins, but Evaluate, the quality gate and the "
    "endpoint read positive-class probabilities; use binary:logistic",
    "binary:hinge": "it predicts 0/1 labels, so AUC and any probability threshold are "
    "meaningless; use binary:logistic",
    "multi:softmax": "it predicts one class index per row, but Evaluate and the endpoint "
    "read class probabilities; use multi:softprob",
}
#: eval_metric values valid only with one objective.
OBJECTIVE_EVAL_METRICS: Mapping[str, frozenset[str]] = {
    "reg:gamma": frozenset({"gamma-nloglik", "gamma-deviance"}),
    "reg:tweedie": frozenset({"tweedie-nloglik"}),
}
#: eval_metric names that take ``@<threshold>`` (``error@0.7``).
_EVAL_METRIC_WITH_THRESHOLD = {"error"}


def problem(problem_type: str) -> ProblemSpec:
    """The spec of ``problem_type``; ``KeyError`` naming the allowed ones otherwise."""
    try:
        return PROBLEMS[problem_type]
    except KeyError:
        raise KeyError(f"{problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}") from None


def metric_json_path(problem_type: str, metric: str) -> str:
    """Where ``metric`` sits in ``evaluation.json`` (what the Condition step's JsonGet reads)."""
    return f"{problem(problem_type).report_section}.{metric}.value"


def gate_metric(problem_type: str, metric: str) -> GateMetric:
    """The gate metric called ``metric`` for ``problem_type``; ``KeyError`` if none."""
    return problem(problem_type).metrics[metric]


def gate_passes(problem_type: str, metric: str, value: float, threshold: float) -> bool:
    """The quality gate's decision, as the pipeline's Condition step makes it."""
    if gate_metric(problem_type, metric).higher_is_better:
        return value >= threshold
    return value <= threshold


#: The approval status every registered model version starts with; only an approver
#: (UpdateModelPackage) changes it.
REGISTERED_APPROVAL_STATUS = "PendingManualApproval"


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class DriftThresholds:
    """When the drift check flags a feature (a model's ``drift`` settings; defaults here).

    Attributes:
        psi: population stability index above which a shift is large.
        p_value: family-wise significance of the check's KS / chi-square tests.
        missing_rate_increase: rise of a feature's missing rate that counts as drift.
    """

    psi: float = 0.2
    p_value: float = 0.01
    missing_rate_increase: float = 0.1


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a model's definition.

    Attributes:
        path: where, relative to what was checked (``features[3].type``, ``num_round``).
        value: what was found there (``MISSING`` when absent).
        message: what is wrong, including what is allowed.
        fix: what to do about it.
    """

    path: str
    value: Any
    message: str
    fix: str

    def render(self, prefix: str = "") -> str:
        path = self.path
        if prefix.endswith(".") and path.startswith("["):
            prefix = prefix[:-1]
        where = f"{prefix}{path}" if prefix and path else (prefix or path)
        where = where.rstrip(".")
        if self.value is MISSING:
            return f"{where}: missing: {self.message}. Fix: {self.fix}"
        return f"{where}: got {_show(self.value)}: {self.message}. Fix: {self.fix}"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Stands for an absent value in a :class:`Problem`.
MISSING: Any = _Missing()


def field_path(key: str) -> str:
    """A mapping key as a path segment: plain when it is a plain name, else quoted
    (``["max depth"]``), so a key with spaces or dots cannot be misread."""
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_@:-]*", key) else f"[{key!r}]"


def _show(value: Any) -> str:
    text = "{...}" if isinstance(value, dict) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ContractError(ValueError):
    """Raised by the ``load``/``parse`` helpers; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(p.render() for p in problems))


# --------------------------------------------------------------------------- schema

#: Column names: a letter first, then letters, digits and underscores, at most 64. This is
#: stricter than Feature Store's own rule (``^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}``) so that
#: every name is also an Athena column of the offline store that needs no quoting.
COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
#: Feature Store adds these columns to every offline-store record; a feature cannot use them.
RESERVED_COLUMN_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})
#: Most classes a classification target may declare.
MAX_CLASSES = 1000


@dataclass(frozen=True)
class Feature:
    """One input column: its name and whether it is numeric or categorical."""

    name: str
    type: str


@dataclass(frozen=True)
class Schema:
    """What the raw data of one model looks like (``data/schemas/<model>.json``).

    Attributes:
        record_id_column: unique id of a row (the Feature Store record identifier).
        event_time_column: ISO-8601 time of a row (the Feature Store event time feature).
        target_name: the label column.
        target_type: ``categorical`` (classification) or ``numeric`` (regression).
        classes: classification only: every class label, in encoding order (the second
            of two is the positive class); empty for regression.
        features: model inputs, in the order the model sees them.
        sources: the raw data's name for a column whose name there is not valid here
            (``{"od280_od315": "od280/od315 of diluted wines"}``); only the raw data uses
            it: every file the platform writes, and every payload, uses the schema's names.
        record_id_derivation: ``row_hash`` when the raw data has no record id column and
            each row's id is derived from its feature values (see :data:`ROW_HASH`).
        event_time_value: a fixed ISO-8601 UTC time given to every row when the raw data
            has no event time column (the time the data was taken in).
    """

    record_id_column: str
    event_time_column: str
    target_name: str
    target_type: str
    features: tuple[Feature, ...]
    classes: tuple[str, ...] = field(default=())
    sources: Mapping[str, str] = field(default_factory=dict)
    record_id_derivation: str | None = None
    event_time_value: str | None = None

    def source_of(self, name: str) -> str:
        """The raw data's name for the schema's column ``name``."""
        return self.sources.get(name, name)

    def raw_columns(self, include_target: bool = True) -> list[str]:
        """The raw data's names of the columns a raw file must have (derived ones aside):
        record id, event time, [target], features."""
        names = []
        if self.record_id_derivation is None:
            names.append(self.record_id_column)
        if self.event_time_value is None:
            names.append(self.event_time_column)
        if include_target:
            names.append(self.target_name)
        return [self.source_of(n) for n in names + self.feature_names]

    def as_written(self) -> Schema:
        """This schema for files the platform itself wrote (the splits): the schema's own
        names, and the record id and event time as columns."""
        return replace(self, sources={}, record_id_derivation=None, event_time_value=None)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == NUMERIC]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == CATEGORICAL]

    def to_json(self) -> dict[str, Any]:
        """The schema in its file layout."""
        target: dict[str, Any] = {"name": self.target_name, "type": self.target_type}
        if self.classes:
            target["classes"] = list(self.classes)
        doc: dict[str, Any] = {
            "recordIdColumn": self.record_id_column,
            "eventTimeColumn": self.event_time_column,
            "target": target,
            "features": [{"name": f.name, "type": f.type} for f in self.features],
        }
        if self.sources:
            doc["sourceColumns"] = dict(self.sources)
        derived = {}
        if self.record_id_derivation is not None:
            derived["recordId"] = self.record_id_derivation
        if self.event_time_value is not None:
            derived["eventTime"] = self.event_time_value
        if derived:
            doc["derived"] = derived
        return doc


#: ``derived.recordId``: a row's id is the SHA-256 of its feature values as the raw data
#: holds them (numbers as read, a missing value as empty, joined by U+001F), first 32 hex
#: digits; a repeated row gets ``-2``, ``-3``, ... in the order rows are read. Features
#: only, so the same row gets the same id in training data and in scoring data.
ROW_HASH = "row_hash"
#: ``derived.eventTime``: an ISO-8601 UTC time, as Feature Store accepts event times.
DERIVED_EXAMPLE = f'"derived": {{"recordId": "{ROW_HASH}", "eventTime": "2026-01-01T00:00:00Z"}}'
EVENT_TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")

_SCHEMA_KEYS = {
    "recordIdColumn", "eventTimeColumn", "target", "features", "sourceColumns", "derived",
}  # fmt: skip
_DERIVED_KEYS = {"recordId", "eventTime"}
_TARGET_KEYS = {"name", "type", "classes"}
_FEATURE_KEYS = {"name", "type"}


def schema_problems(doc: Any) -> list[Problem]:
    """Every problem of a decoded schema document (empty when it is valid)."""
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        return [Problem("", doc, "a schema is a JSON object", "see data/schemas/*.json")]
    problems += _unknown_keys(doc, _SCHEMA_KEYS, "")
    columns: list[tuple[str, Any]] = []
    for key in ("recordIdColumn", "eventTimeColumn"):
        if key not in doc:
            problems.append(
                Problem(
                    key,
                    MISSING,
                    "every row needs one (the Feature Store record identifier and event time)",
                    f"name the column in {key}; if the data has none, name the column to "
                    f"create and say how it is derived: {DERIVED_EXAMPLE}",
                )
            )
        else:
            columns.append((key, doc[key]))
    target = doc.get("target", MISSING)
    if not isinstance(target, dict):
        problems.append(
            Problem(
                "target",
                target,
                "an object with name, type and (classification) classes",
                'e.g. {"name": "label", "type": "categorical", "classes": ["no", "yes"]}',
            )
        )
    else:
        problems += _unknown_keys(target, _TARGET_KEYS, "target.")
        columns.append(("target.name", target.get("name", MISSING)))
        problems += _target_problems(target)
    features = doc.get("features", MISSING)
    if not isinstance(features, list) or not features:
        problems.append(
            Problem(
                "features",
                features,
                "a non-empty list of {name, type}",
                'e.g. [{"name": "age", "type": "numeric"}]',
            )
        )
        features = []
    for i, item in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    where,
                    item,
                    "each feature is an object {name, type}",
                    'e.g. {"name": "age", "type": "numeric"}',
                )
            )
            continue
        problems += _unknown_keys(item, _FEATURE_KEYS, f"{where}.")
        columns.append((f"{where}.name", item.get("name", MISSING)))
        kind = item.get("type", MISSING)
        if kind not in FEATURE_TYPES:
            problems.append(
                Problem(
                    f"{where}.type",
                    kind,
                    f"allowed types are {', '.join(FEATURE_TYPES)}",
                    "use numeric for numbers (integers too), categorical for labels",
                )
            )
    problems += _column_problems(columns)
    problems += _derived_problems(doc.get("derived", {}))
    problems += _source_problems(doc.get("sourceColumns", {}), columns, doc.get("derived", {}))
    return problems


def _derived_problems(derived: Any) -> list[Problem]:
    if not isinstance(derived, dict):
        return [
            Problem(
                "derived",
                derived,
                "an object saying how columns missing from the data are derived",
                f"e.g. {DERIVED_EXAMPLE}",
            )
        ]
    problems = _unknown_keys(derived, _DERIVED_KEYS, "derived.")
    if "recordId" in derived and derived["recordId"] != ROW_HASH:
        problems.append(
            Problem(
                "derived.recordId",
                derived["recordId"],
                f"the one derivation of a record id is {ROW_HASH!r} (a hash of the row's "
                "feature values)",
                f'use "{ROW_HASH}", or remove it when the data has an id column',
            )
        )
    if "eventTime" in derived:
        value = derived["eventTime"]
        if not isinstance(value, str) or not EVENT_TIME_FORMAT.fullmatch(value):
            problems.append(
                Problem(
                    "derived.eventTime",
                    value,
                    "a fixed event time is an ISO-8601 UTC time (YYYY-MM-DDThh:mm:ssZ)",
                    'e.g. "2026-01-01T00:00:00Z": when the data was taken in',
                )
            )
    return problems


def _source_problems(sources: Any, columns: list[tuple[str, Any]], derived: Any) -> list[Problem]:
    if not isinstance(sources, dict):
        return [
            Problem(
                "sourceColumns",
                sources,
                "an object mapping a schema column name to the raw data's column name",
                'e.g. {"od280_od315": "od280/od315_of_diluted_wines"}',
            )
        ]
    derived = derived if isinstance(derived, dict) else {}
    names = {name: path for path, name in columns if isinstance(name, str)}
    skipped = {
        p for p, key in (("recordIdColumn", "recordId"), ("eventTimeColumn", "eventTime"))
        if key in derived
    }  # fmt: skip
    problems = []
    for name, source in sources.items():
        where = f"sourceColumns.{field_path(name)}"
        if name not in names:
            problems.append(
                Problem(where, source, f"{name!r} is not a column of this schema",
                        "map the name a feature, the target, the record id or the event "
                        "time has in this schema")
            )  # fmt: skip
        elif names[name] in skipped:
            problems.append(
                Problem(where, source, f"{name!r} is derived (see derived), not read",
                        "remove the mapping or the derivation")
            )  # fmt: skip
        if not isinstance(source, str) or not source or source != source.strip():
            problems.append(
                Problem(where, source, "a source column name is a non-empty string without "
                        "surrounding spaces", "write the column's name as the data's header has it")
            )  # fmt: skip
    read_from: dict[str, str] = {}
    for path, name in columns:
        if not isinstance(name, str) or path in skipped:
            continue
        source = sources.get(name, name)
        if isinstance(source, str) and source in read_from:
            problems.append(
                Problem(
                    path,
                    name,
                    f"read from the data's column {source!r}, as {read_from[source]} is",
                    "map each schema column to its own column of the data (sourceColumns)",
                )
            )
        elif isinstance(source, str):
            read_from[source] = path
    return problems


def _unknown_keys(obj: Mapping[str, Any], allowed: set[str], prefix: str) -> list[Problem]:
    out = []
    for key in sorted(set(obj) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"remove it (allowed: {sorted(allowed)})"
        out.append(Problem(f"{prefix}{key}", obj[key], "is not a schema key", fix))
    return out


def _target_problems(target: Mapping[str, Any]) -> list[Problem]:
    problems = []
    kind = target.get("type", MISSING)
    if kind not in FEATURE_TYPES:
        problems.append(
            Problem(
                "target.type",
                kind,
                f"allowed: {', '.join(FEATURE_TYPES)}",
                "categorical for classification, numeric for regression",
            )
        )
    classes = target.get("classes", MISSING)
    if kind == CATEGORICAL:
        if classes is MISSING:
            problems.append(
                Problem(
                    "target.classes",
                    MISSING,
                    "a categorical target lists its class labels (the second of two is "
                    "the positive class)",
                    'e.g. "classes": ["benign", "malignant"]',
                )
            )
        elif not isinstance(classes, list) or not all(
            isinstance(c, str) and c.strip() == c and c for c in classes
        ):
            problems.append(
                Problem(
                    "target.classes",
                    classes,
                    "a list of class labels as they appear in the data, as non-empty "
                    "strings without surrounding spaces",
                    'e.g. ["0", "1"] or ["no", "yes"]',
                )
            )
        else:
            repeated = sorted({c for c in classes if classes.count(c) > 1})
            if repeated:
                problems.append(
                    Problem(
                        "target.classes",
                        classes,
                        f"{repeated} appear twice",
                        "list each class once",
                    )
                )
            if not 2 <= len(classes) <= MAX_CLASSES:
                problems.append(
                    Problem(
                        "target.classes",
                        classes,
                        f"{len(classes)} classes; classification needs 2 to {MAX_CLASSES}",
                        "list every class the target takes",
                    )
                )
    elif classes is not MISSING and kind == NUMERIC:
        problems.append(
            Problem(
                "target.classes",
                classes,
                "a numeric target has no classes",
                "remove it, or make the target categorical",
            )
        )
    return problems


def _column_problems(columns: list[tuple[str, Any]]) -> list[Problem]:
    problems = []
    seen: dict[str, str] = {}
    for path, name in columns:
        if not isinstance(name, str) or not COLUMN_NAME.fullmatch(name):
            suggestion = suggest_column_name(name) if isinstance(name, str) else None
            problems.append(
                Problem(
                    path,
                    name,
                    "a column name starts with a letter and has only letters, digits "
                    "and underscores, at most 64 (Feature Store and Athena rules)",
                    f"rename the column, e.g. to {suggestion!r}"
                    if suggestion
                    else "use a name like 'mean_radius'",
                )
            )
            continue
        if name.lower() in RESERVED_COLUMN_NAMES:
            problems.append(
                Problem(
                    path,
                    name,
                    "Feature Store reserves this name for its own column",
                    f"rename it, e.g. to {name + '_value'!r}",
                )
            )
        # The offline store's Athena table is case-insensitive: 'Age' and 'age' collide.
        key = name.lower()
        if key in seen:
            problems.append(
                Problem(
                    path,
                    name,
                    f"the same column as {seen[key]} (names are compared "
                    "without case, as Athena does)",
                    "give every column its own name",
                )
            )
        else:
            seen[key] = path
    return problems


def suggest_column_name(name: str) -> str:
    """A valid column name close to ``name`` (``od280/od315`` -> ``od280_od315``)."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", name.strip()).strip("_")
    if not cleaned:
        cleaned = "column"
    if not cleaned[0].isalpha():
        cleaned = f"c_{cleaned}"
    if cleaned.lower() in RESERVED_COLUMN_NAMES:
        cleaned += "_value"
    return cleaned[:64]


def parse_schema(doc: Any, source: str = "<schema>") -> Schema:
    """A :class:`Schema` from a decoded document; :class:`ContractError` lists every problem."""
    problems = schema_problems(doc)
    if problems:
        raise ContractError(source, problems)
    target = doc["target"]
    return Schema(
        record_id_column=doc["recordIdColumn"],
        event_time_column=doc["eventTimeColumn"],
        target_name=target["name"],
        target_type=target["type"],
        classes=tuple(target.get("classes", ())),
        features=tuple(Feature(f["name"], f["type"]) for f in doc["features"]),
        sources=dict(doc.get("sourceColumns", {})),
        record_id_derivation=doc.get("derived", {}).get("recordId"),
        event_time_value=doc.get("derived", {}).get("eventTime"),
    )


#: The Feature Store feature type of each schema column type (the record id and the event
#: time are strings: ids as written, times as ISO-8601).
FEATURE_STORE_TYPES: Mapping[str, str] = {NUMERIC: "Fractional", CATEGORICAL: "String"}


def feature_definitions(schema: Schema) -> dict[str, str]:
    """A feature group's features for ``schema``, name -> Feature Store type, in the order
    the prepared records carry them: record id, event time, target, features."""
    definitions = {schema.record_id_column: "String", schema.event_time_column: "String"}
    definitions[schema.target_name] = FEATURE_STORE_TYPES[schema.target_type]
    for feature in schema.features:
        definitions[feature.name] = FEATURE_STORE_TYPES[feature.type]
    return definitions


def schema_fit_problems(schema: Schema, problem_type: str) -> list[Problem]:
    """Problems of using ``schema`` for a model of ``problem_type``."""
    spec = problem(problem_type)
    problems = []
    if schema.target_type != spec.target_type:
        problems.append(
            Problem(
                "target.type",
                schema.target_type,
                f"{problem_type} needs a {spec.target_type} target",
                f"declare the target as {spec.target_type!r} or change the model's problemType",
            )
        )
    if problem_type == BINARY and len(schema.classes) not in (0, 2):
        problems.append(
            Problem(
                "target.classes",
                list(schema.classes),
                f"{BINARY} needs exactly 2 classes",
                f"use {MULTICLASS} for {len(schema.classes)} classes",
            )
        )
    return problems


# --------------------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of the built-in SageMaker XGBoost algorithm.

    Attributes:
        name: as the algorithm reads it.
        kind: ``int``, ``float``, ``choice`` or ``text`` (free-form, checked elsewhere).
        lowest, highest: the allowed range; ``open_low``/``open_high`` exclude the bound.
        choices: allowed values of a ``choice``.
    """

    name: str
    kind: str
    lowest: float | None = None
    highest: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        low = "" if self.lowest is None else f"{'>' if self.open_low else '>='} {self.lowest:g}"
        high = "" if self.highest is None else f"{'<' if self.open_high else '<='} {self.highest:g}"
        bound = " and ".join(b for b in (low, high) if b)
        noun = "a whole number" if self.kind == "int" else "a number"
        return f"{noun} {bound}".strip()

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (None when it is)."""
        if self.kind == "text":
            return None if isinstance(value, str) else "must be a string"
        if self.kind == "choice":
            text = str(value).lower() if isinstance(value, bool) else str(value)
            return None if text in self.choices else f"must be {self.describe()}"
        number = _number(value)
        if number is None or (self.kind == "int" and number != int(number)):
            return f"must be {self.describe()}"
        if self.lowest is not None and (
            number < self.lowest or (self.open_low and number == self.lowest)
        ):
            return f"must be {self.describe()}"
        if self.highest is not None and (
            number > self.highest or (self.open_high and number == self.highest)
        ):
            return f"must be {self.describe()}"
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _hp(name: str, kind: str, *args: Any, **kwargs: Any) -> Hyperparameter:
    return Hyperparameter(name, kind, *args, **kwargs)


# From the built-in algorithm's own validation (sagemaker-xgboost-container,
# algorithm_mode/hyperparameter_validation.py): names, types and ranges.
XGBOOST_HYPERPARAMETERS: Mapping[str, Hyperparameter] = {
    h.name: h
    for h in (
        _hp("num_round", "int", 1),
        _hp("num_class", "int", 2),
        _hp("objective", "text"),
        _hp("eval_metric", "text"),
        _hp("csv_weights", "int", 0, 1),
        _hp("early_stopping_rounds", "int", 1),
        _hp("booster", "choice", choices=("gbtree", "gblinear", "dart")),
        _hp("verbosity", "int", 0, 3),
        _hp("nthread", "int", 1),
        _hp("eta", "float", 0, 1),
        _hp("gamma", "float", 0),
        _hp("max_depth", "int", 0),
        _hp("min_child_weight", "float", 0),
        _hp("max_delta_step", "float", 0),
        _hp("subsample", "float", 0, 1, open_low=True),
        _hp("colsample_bytree", "float", 0, 1, open_low=True),
        _hp("colsample_bylevel", "float", 0, 1, open_low=True),
        _hp("colsample_bynode", "float", 0, 1, open_low=True),
        _hp("lambda", "float", 0),
        _hp("alpha", "float", 0),
        _hp("tree_method", "choice", choices=("auto", "exact", "approx", "hist")),
        _hp("sketch_eps", "float", 0, 1, open_low=True, open_high=True),
        _hp("scale_pos_weight", "float", 0, open_low=True),
        _hp("refresh_leaf", "int", 0, 1),
        _hp("process_type", "choice", choices=("default", "update")),
        _hp("grow_policy", "choice", choices=("depthwise", "lossguide")),
        _hp("max_leaves", "int", 0),
        _hp("max_bin", "int", 2),
        _hp("sample_type", "choice", choices=("uniform", "weighted")),
        _hp("normalize_type", "choice", choices=("tree", "forest")),
        _hp("rate_drop", "float", 0, 1),
        _hp("one_drop", "int", 0, 1),
        _hp("skip_drop", "float", 0, 1),
        _hp("tweedie_variance_power", "float", 1, 2, open_low=True, open_high=True),
        _hp("base_score", "float", 0),
        _hp("seed", "int", -(2**31), 2**31 - 1, open_low=True, open_high=True),
        _hp("num_parallel_tree", "int", 1),
        _hp("save_model_on_termination", "choice", choices=("true", "false")),
        _hp("sampling_method", "choice", choices=("uniform", "gradient_based")),
    )
}
#: Names the algorithm also accepts for a hyperparameter above.
XGBOOST_ALIASES: Mapping[str, str] = {
    "learning_rate": "eta",
    "min_split_loss": "gamma",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
}
#: Hyperparameters the pipeline sets itself: a value in config would be overridden.
PIPELINE_OWNED_HYPERPARAMETERS: Mapping[str, str] = {
    "nthread": "the algorithm uses every core of the training instance",
}


def hyperparameter_problems(
    hyperparameters: Mapping[str, Any], problem_type: str, classes: Iterable[str] = ()
) -> list[Problem]:
    """Every problem of a model's built-in XGBoost hyperparameters.

    Args:
        hyperparameters: as written in config (strings or numbers).
        problem_type: the model's problem type.
        classes: the schema's class labels (classification), for ``num_class``.
    """
    spec = problem(problem_type)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        name = XGBOOST_ALIASES.get(key, key)
        key = field_path(key)
        if name in values:
            problems.append(
                Problem(
                    key,
                    value,
                    f"sets {name} a second time (an alias)",
                    f"keep one of {name!r} and {key!r}",
                )
            )
            continue
        if name not in XGBOOST_HYPERPARAMETERS:
            close = difflib.get_close_matches(
                key, [*XGBOOST_HYPERPARAMETERS, *XGBOOST_ALIASES], n=1
            )
            problems.append(
                Problem(
                    key,
                    value,
                    "is not a hyperparameter of the built-in XGBoost algorithm "
                    "(it rejects unknown ones)",
                    f"did you mean {close[0]!r}?" if close else "remove it",
                )
            )
            continue
        if not isinstance(value, (str, int, float)) or (
            isinstance(value, bool) and (XGBOOST_HYPERPARAMETERS[name].kind != "choice")
        ):
            problems.append(
                Problem(
                    key,
                    value,
                    "a hyperparameter value is a JSON string or number",
                    'write it as a number or a string, e.g. 0.1 or "hist"',
                )
            )
            continue
        if name in PIPELINE_OWNED_HYPERPARAMETERS:
            problems.append(Problem(key, value, PIPELINE_OWNED_HYPERPARAMETERS[name], "remove it"))
            continue
        reason = XGBOOST_HYPERPARAMETERS[name].problem(value)
        if reason:
            problems.append(Problem(key, value, reason, "correct the value"))
            continue
        values[name] = value
    if "num_round" not in values and not any(p.path == "num_round" for p in problems):
        problems.append(
            Problem(
                "num_round",
                MISSING,
                "the built-in XGBoost algorithm requires it",
                "set it, e.g. 100",
            )
        )
    problems += _objective_problems(values, spec, tuple(classes))
    return problems


def _objective_problems(
    values: Mapping[str, Any], spec: ProblemSpec, classes: tuple[str, ...]
) -> list[Problem]:
    problems: list[Problem] = []
    objective = values.get("objective", MISSING)
    if objective is MISSING:
        problems.append(
            Problem(
                "objective",
                MISSING,
                f"{spec.name} models need one",
                f"set it to {spec.objectives[0]!r}",
            )
        )
    elif objective in UNSCOREABLE_OBJECTIVES:
        problems.append(
            Problem(
                "objective",
                objective,
                UNSCOREABLE_OBJECTIVES[objective],
                f"set it to {spec.objectives[0]!r}",
            )
        )
    elif objective not in spec.objectives:
        problems.append(
            Problem(
                "objective",
                objective,
                f"does not fit {spec.name} (allowed: {', '.join(spec.objectives)})",
                f"use {spec.objectives[0]!r}, or change the model's problemType",
            )
        )
    num_class = values.get("num_class", MISSING)
    if spec.name == MULTICLASS:
        if num_class is MISSING:
            problems.append(
                Problem(
                    "num_class",
                    MISSING,
                    "multi:softprob needs the number of classes",
                    f"set it to {len(classes)} (the schema's target.classes)"
                    if classes
                    else "set it to the number of classes",
                )
            )
        elif classes and int(float(num_class)) != len(classes):
            problems.append(
                Problem(
                    "num_class",
                    num_class,
                    f"the schema declares {len(classes)} classes "
                    f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''})",
                    f"set it to {len(classes)}",
                )
            )
    elif num_class is not MISSING:
        problems.append(
            Problem(
                "num_class",
                num_class,
                f"only multiclass models take it, not {spec.name}",
                "remove it",
            )
        )
    eval_metric = values.get("eval_metric", MISSING)
    if eval_metric is not MISSING:
        allowed = spec.eval_metrics | OBJECTIVE_EVAL_METRICS.get(str(objective), frozenset())
        for metric in str(eval_metric).split(","):
            name, _, threshold = metric.strip().partition("@")
            bad_threshold = threshold and (
                name not in _EVAL_METRIC_WITH_THRESHOLD or _number(threshold) is None
            )
            if name not in allowed or bad_threshold:
                problems.append(
                    Problem(
                        "eval_metric",
                        eval_metric,
                        f"{metric.strip()!r} is not an evaluation metric of {objective} "
                        f"(allowed: {', '.join(sorted(allowed))})",
                        f"use e.g. {sorted(allowed)[0]!r}",
                    )
                )
    return problems


def hyperparameters_as_sent(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """The values as CreateTrainingJob sends them: strings, sorted by name.

    Whole numbers of integer hyperparameters are sent without a decimal point (the
    algorithm parses ``num_round`` with ``int()``); booleans as ``true``/``false``.
    """
    out = {}
    for key, value in sorted(hyperparameters.items()):
        spec = XGBOOST_HYPERPARAMETERS.get(XGBOOST_ALIASES.get(key, key))
        if isinstance(value, bool):
            out[key] = str(value).lower()
        elif spec is not None and spec.kind == "int" and _number(value) is not None:
            out[key] = str(int(_number(value)))  # type: ignore[arg-type]
        else:
            out[key] = str(value)
    return out


def gate_problems(problem_type: str, metric: Any, threshold: Any) -> list[Problem]:
    """Problems of a quality gate (``metric`` compared to ``threshold``)."""
    spec = problem(problem_type)
    if metric not in spec.metrics:
        return [
            Problem(
                "metric",
                metric,
                f"Evaluate writes no such metric for {problem_type} "
                f"(it writes {', '.join(spec.metrics)})",
                f"use one of {list(spec.metrics)}",
            )
        ]
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        return [Problem("threshold", threshold, "must be a number", "e.g. 0.9")]
    reason = spec.metrics[metric].threshold_problem(float(threshold))
    if reason:
        gate = spec.metrics[metric]
        fix = (
            f"use a value between {gate.lowest:g} and {gate.highest:g}"
            if gate.lowest is not None and gate.highest is not None
            else "use a value > 0"
            if not gate.higher_is_better
            else "use a smaller value"
        )
        return [Problem("threshold", threshold, reason, fix)]
    return []


# --------------------------------------------------------------------------- local run

#: Set by ``make local-run`` for the steps: the directory of its stand-in for the Feature
#: Store runtime (``steplib.local_feature_store``), instead of AWS.
LOCAL_FEATURE_STORE_VARIABLE = "MLOPS_LOCAL_FEATURE_STORE"

#: A version's single-container form (what serverless endpoints serve: SageMaker Serverless
#: Inference serves no inference pipeline): the built-in XGBoost image in framework mode,
#: running this user module from the ``code/`` directory of its model.tar.gz.
SINGLE_CONTAINER_ENVIRONMENT: Mapping[str, str] = MappingProxyType(
    {"SAGEMAKER_PROGRAM": "serve_single.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
)

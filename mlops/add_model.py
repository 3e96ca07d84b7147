"""What ``mlops add-model`` decides from a profile of the user's data, and how it writes it.

The data is profiled by ``pipeline_steps/profile_data.py`` (in the steps venv, reading files
as Preprocess does); everything here is a pure function of that profile and the command's
options, so each inference rule is tested on its own (``tests/infra/test_add_model.py``).
The rules:

* **Column types**: a column is ``numeric`` when every present value is a finite number
  (CSV text that parses, or a Parquet number), else ``categorical``; the evidence says
  which. Columns with no values, Parquet date/time columns, and text that differs on every
  row (an identifier, not a feature) are left out, with the reason.
* **Problem type** (unless given): a target with one value is an error; two values are
  ``binary_classification`` (the second in sorted order is the positive class unless
  ``--positive-class`` says otherwise); text, or at most :data:`MAX_INTEGER_CLASSES`
  distinct whole numbers, is ``multiclass_classification``; other numbers ``regression``.
* **Names**: a column name that the contract refuses is replaced by the contract's
  suggestion (``od280/od315`` -> ``od280_od315``), made unique; the schema's
  ``sourceColumns`` records the data's own name, and the user's file is not touched.
* **Record id and event time**: a column given by ``--id-column``/``--time-column``, else
  one named like :data:`ID_NAMES`/:data:`TIME_NAMES` whose values fit (unique for an id,
  ISO-8601 for a time), else derived: the contract's ``row_hash`` id and a fixed event time
  (``--event-time``, default the time of the command).
* **Hyperparameters**: the contract's first objective and default ``eval_metric`` for the
  problem type, ``num_class`` from the data, rounds and depth by row count.
* **Quality gate**: the contract's default gate metric; its threshold from a quick k-fold
  cross-validation (``pipeline_steps/quick_baseline.py``): the metric's 1st percentile
  over 200 test splits the pipeline could draw, scored with held-out predictions, less
  one hundredth, rounded down to a hundredth (for an error metric: the 99th percentile
  plus 1%, rounded up), within the metric's range. A model as good as the baseline fails
  the gate on about one split in a hundred; a smaller data set gets a looser gate, since
  its test split moves the metric more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_steps.steplib import contract

#: Column names taken as the record id / event time when their values fit.
ID_NAMES = ("record_id", "id", "row_id", "uuid")
TIME_NAMES = ("event_time", "timestamp", "datetime", "time")
#: A numeric target with at most this many distinct whole numbers is classification.
MAX_INTEGER_CLASSES = 10
#: A text column with a different value on every row is an identifier once it has at
#: least this many rows (below it, a few distinct labels are still categories).
IDENTIFIER_MIN_ROWS = 50
#: Names for derived columns when the data has none.
DERIVED_ID = "record_id"
DERIVED_TIME = "event_time"


class AddModelError(ValueError):
    """A mistake in the command or the data; nothing has been written."""


@dataclass(frozen=True)
class Column:
    """One decision about one column of the data."""

    source: str
    name: str
    role: str  # feature, target, record id, event time, left out
    type: str | None
    evidence: str


@dataclass(frozen=True)
class Proposal:
    """Everything ``add-model`` will write, before the baseline sets the gate's threshold."""

    name: str
    problem_type: str
    problem_evidence: str
    schema: dict[str, Any]
    columns: tuple[Column, ...]
    hyperparameters: dict[str, Any]
    gate_metric: str
    rows: int
    classes: tuple[str, ...] = field(default=())


def _numeric(col: Mapping[str, Any], rows: int) -> bool:
    """Every present value is a number."""
    present = rows - col["missing"]
    parsed = col.get("numbers", {}).get("parsed", 0)
    return col["storage"] == "number" or (col["storage"] == "text" and 0 < parsed == present)


def column_type(col: Mapping[str, Any], rows: int) -> tuple[str | None, str]:
    """``numeric``, ``categorical`` or None (left out), and the evidence for it."""
    present = rows - col["missing"]
    missing = f", {col['missing']} missing" if col["missing"] else ""
    if present == 0:
        return None, "no values on any row"
    if col["storage"] == "time":
        return None, "a date/time column: not a feature (use it as --time-column)"
    if col["storage"] == "number":
        return contract.NUMERIC, f"stored as numbers ({col['distinct']} distinct{missing})"
    if col["storage"] == "bool":
        return contract.CATEGORICAL, f"stored as true/false{missing}"
    numeric = col["numbers"]
    if numeric["parsed"] == present:
        return (
            contract.NUMERIC,
            f"all {present} values are numbers ({col['distinct']} distinct{missing})",
        )
    if col["distinct"] == present and present >= IDENTIFIER_MIN_ROWS and not col["missing"]:
        return (
            None,
            f"text with a different value on each of its {present} rows: an identifier, not a feature",
        )
    row, text = numeric["first_text"]
    return (
        contract.CATEGORICAL,
        f"text: {text!r} on data row {row} is not a number ({col['distinct']} distinct{missing})",
    )


def _sort_classes(values: Sequence[str], numeric: bool) -> list[str]:
    if numeric:
        return sorted(values, key=lambda v: (float(v), v))
    return sorted(values)


def problem_type(
    target: Mapping[str, Any], rows: int, given: str | None, positive: str | None
) -> tuple[str, tuple[str, ...], str]:
    """The problem type, the class labels (classification) and the evidence."""
    name = target["name"]
    present = rows - target["missing"]
    if present == 0:
        raise AddModelError(f"--target {name!r}: the column has no values")
    distinct = target["distinct"]
    if distinct < 2:
        raise AddModelError(
            f"--target {name!r}: every row has the same value ({target['values'][0]!r}); a "
            "model needs a target that varies. Fix: choose another column"
        )
    numeric = _numeric(target, rows)
    whole = numeric and target.get("numbers", {}).get("integers", 0) == present
    if given is None:
        if distinct == 2:
            chosen, why = contract.BINARY, "2 distinct values"
        elif not numeric or (whole and distinct <= MAX_INTEGER_CLASSES):
            kind = "text values" if not numeric else "whole numbers"
            chosen, why = contract.MULTICLASS, f"{distinct} distinct {kind}"
        else:
            chosen, why = contract.REGRESSION, f"numbers, {distinct} distinct"
    else:
        if given not in contract.PROBLEM_TYPES:
            raise AddModelError(
                f"--problem-type: got {given!r}. Fix: use one of {list(contract.PROBLEM_TYPES)}"
            )
        chosen, why = given, "given with --problem-type"
        if given == contract.REGRESSION and not numeric:
            first = target.get("numbers", {}).get("first_text")
            where = f" ({first[1]!r} on data row {first[0]})" if first else ""
            raise AddModelError(
                f"--problem-type regression: the target {name!r} is not numeric{where}. "
                "Fix: choose a classification type"
            )
        if given == contract.BINARY and distinct != 2:
            raise AddModelError(
                f"--problem-type binary_classification: the target {name!r} has {distinct} "
                f"distinct values. Fix: use {contract.MULTICLASS}"
            )
    if chosen == contract.REGRESSION:
        return chosen, (), f"{why}{_missing(target)}"
    if distinct > len(target["values"]) or distinct > contract.MAX_CLASSES:
        raise AddModelError(
            f"--target {name!r}: {distinct} distinct values are too many classes to list. "
            f"Fix: use --problem-type regression, or a target with at most "
            f"{len(target['values'])} classes"
        )
    classes = _sort_classes(target["values"], numeric)
    if chosen == contract.BINARY:
        if positive is not None:
            if positive not in classes:
                raise AddModelError(
                    f"--positive-class: got {positive!r}; the target's values are {classes}"
                )
            classes = [c for c in classes if c != positive] + [positive]
        why += f"; positive class {classes[1]!r}"
    elif positive is not None:
        raise AddModelError("--positive-class: only a binary target has a positive class")
    return chosen, tuple(classes), f"{why}{_missing(target)}"


def _missing(col: Mapping[str, Any]) -> str:
    return f"; {col['missing']} rows without a target are left out" if col["missing"] else ""


def schema_names(sources: Sequence[str], derived: Sequence[str]) -> dict[str, str]:
    """Contract-valid names, unique without case, for the data's columns ``sources`` and
    then for the columns to derive: a valid name stays as it is; an invalid one becomes the
    contract's suggestion, with ``_2``, ``_3``, ... where that is taken."""

    def valid(name: str) -> bool:
        return bool(contract.COLUMN_NAME.fullmatch(name)) and (
            name.lower() not in contract.RESERVED_COLUMN_NAMES
        )

    names: dict[str, str] = {}
    taken: set[str] = set()
    for source in sources:  # valid names first: they are never renamed
        if valid(source) and source.lower() not in taken:
            names[source] = source
            taken.add(source.lower())
    for source in [*sources, *derived]:
        if source in names:
            continue
        base = source if valid(source) else contract.suggest_column_name(source)
        name, n = base, 2
        while name.lower() in taken:
            suffix = f"_{n}"
            name, n = base[: 64 - len(suffix)] + suffix, n + 1
        names[source] = name
        taken.add(name.lower())
    return names


def _find(
    columns: Mapping[str, Mapping[str, Any]], given: str | None, option: str
) -> Mapping[str, Any] | None:
    if given is None:
        return None
    if given not in columns:
        raise AddModelError(
            f"{option}: no column {given!r} in the data. {_closest(given, columns)}"
        )
    return columns[given]


def _closest(name: str, columns: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(columns), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"Fix: {hint}columns are {', '.join(columns)}"


def check_name(name: str) -> None:
    """A model name as the config takes it (``NAME_PATTERN``)."""
    from mlops.config import NAME_PATTERN

    if not NAME_PATTERN.fullmatch(name):
        raise AddModelError(
            f"NAME: got {name!r}: a model name is 2-32 lowercase letters, digits and "
            'hyphens, starting with a letter and not ending with a hyphen. Fix: e.g. "wine-quality"'
        )


def propose(
    name: str,
    profile: Mapping[str, Any],
    target: str,
    *,
    problem: str | None = None,
    positive_class: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    event_time: str,
    drop: Sequence[str] = (),
) -> Proposal:
    """The model's schema, hyperparameters and gate metric from ``profile``."""
    check_name(name)
    rows = int(profile["rows"])
    columns = {c["name"]: c for c in profile["columns"]}
    target_col = _find(columns, target, "--target")
    assert target_col is not None
    for column in drop:
        _find(columns, column, "--drop")
    chosen, classes, why = problem_type(target_col, rows, problem, positive_class)
    decided: list[Column] = []
    sources: dict[str, str] = {}
    derived: dict[str, str] = {}
    # The derived columns' keys cannot be a data column's name (they are not valid ones).
    names = schema_names(list(columns), [f"({DERIVED_ID})", f"({DERIVED_TIME})"])

    def take(source: str, role: str, kind: str | None, evidence: str) -> str:
        schema_col = names[source]
        if schema_col != source:
            sources[schema_col] = source
        decided.append(Column(source, schema_col, role, kind, evidence))
        return schema_col

    # Record id: given, or a column named like one whose values are unique, else derived.
    rid = _find(columns, id_column, "--id-column")
    if rid is not None and not rid["unique"]:
        raise AddModelError(
            f"--id-column {id_column!r}: values repeat or are missing "
            f"({rid['distinct']} distinct in {rows} rows, {rid['missing']} missing). Fix: "
            "name a column that is unique on every row, or leave it out to derive ids"
        )
    if rid is None:
        rid = next(
            (columns[n] for n in columns if n.lower() in ID_NAMES and columns[n]["unique"]), None
        )
    time = _find(columns, time_column, "--time-column")
    if time is not None and (time["missing"] or not time["iso_times"]):
        raise AddModelError(
            f"--time-column {time_column!r}: not an ISO-8601 date-time on every row "
            f"(e.g. {time['values'][:1]}). Fix: name another column, or leave it out to "
            "use a fixed event time"
        )
    if time is None:
        time = next(
            (
                columns[n] for n in columns
                if n.lower() in TIME_NAMES and columns[n]["iso_times"] and not columns[n]["missing"]
            ),
            None,
        )  # fmt: skip
    special = {target} | {c["name"] for c in (rid, time) if c is not None}
    if rid is not None:
        id_name = take(rid["name"], "record id", None, "unique on every row")
    else:
        id_name = names[f"({DERIVED_ID})"]
        derived["recordId"] = contract.ROW_HASH
        decided.append(
            Column(
                "(derived)",
                id_name,
                "record id",
                None,
                "no id column: a hash of each row's feature values",
            )
        )
    if time is not None:
        time_name = take(time["name"], "event time", None, "ISO-8601 on every row")
    else:
        time_name = names[f"({DERIVED_TIME})"]
        derived["eventTime"] = event_time
        decided.append(
            Column(
                "(derived)",
                time_name,
                "event time",
                None,
                f"no time column: {event_time} on every row",
            )
        )
    kind = contract.problem(chosen).target_type
    target_name = take(target, "target", kind, why)
    features = []
    for source, col in columns.items():
        if source in special:
            continue
        if source in drop:
            decided.append(Column(source, "", "left out", None, "--drop"))
            continue
        ftype, evidence = column_type(col, rows)
        if ftype is None:
            decided.append(Column(source, "", "left out", None, evidence))
            continue
        features.append({"name": take(source, "feature", ftype, evidence), "type": ftype})
    if not features:
        raise AddModelError(
            "the data has no feature columns besides the target, id and time. Fix: check "
            "--data, or the columns left out above"
        )
    target_doc: dict[str, Any] = {"name": target_name, "type": kind}
    if classes:
        target_doc["classes"] = list(classes)
    schema: dict[str, Any] = {
        "recordIdColumn": id_name,
        "eventTimeColumn": time_name,
        "target": target_doc,
        "features": features,
    }
    if sources:
        schema["sourceColumns"] = sources
    if derived:
        schema["derived"] = derived
    problems = contract.schema_problems(schema)
    assert not problems, [p.render() for p in problems]  # the rules above only make valid ones
    return Proposal(
        name=name,
        problem_type=chosen,
        problem_evidence=why,
        schema=schema,
        columns=tuple(decided),
        hyperparameters=hyperparameters(chosen, rows, classes),
        gate_metric=contract.problem(chosen).default_gate,
        rows=rows,
        classes=classes,
    )


def hyperparameters(problem_type: str, rows: int, classes: Sequence[str]) -> dict[str, Any]:
    """Built-in XGBoost hyperparameters for the problem type and the data's size."""
    spec = contract.problem(problem_type)
    hp: dict[str, Any] = {
        "objective": spec.objectives[0],
        "eval_metric": spec.default_eval_metric,
    }
    if problem_type == contract.MULTICLASS:
        hp["num_class"] = len(classes)
    hp.update(
        num_round=100 if rows < 1_000 else 200 if rows < 100_000 else 300,
        max_depth=4 if rows < 10_000 else 6,
        eta=0.1,
        subsample=0.8,
        min_child_weight=1,
    )
    problems = contract.hyperparameter_problems(hp, problem_type, tuple(classes))
    assert not problems, [p.render() for p in problems]
    return hp


def gate_threshold(problem_type: str, metric: str, splits: Mapping[str, float]) -> float:
    """The gate's threshold from the baseline's test-split quantiles (see the module
    docstring): a model as good as the baseline fails it on about 1 split in 100."""
    gate = contract.gate_metric(problem_type, metric)
    if gate.higher_is_better:
        value = math.floor((splits["p01"] - 0.01) * 100) / 100
        if gate.lowest is not None:
            value = max(value, gate.lowest)
    else:
        value = splits["p99"] * 1.01
        digits = max(0, 2 - math.floor(math.log10(value))) if value > 0 else 2
        value = math.ceil(value * 10**digits) / 10**digits
    if gate.highest is not None:
        value = min(value, gate.highest)
    return value


def drift_settings() -> dict[str, float]:
    """The contract's default drift thresholds, written out so the user sees and tunes them."""
    d = contract.DriftThresholds()
    return {
        "psiThreshold": d.psi,
        "ksPValueThreshold": d.p_value,
        "missingRateIncrease": d.missing_rate_increase,
    }


def model_entry(proposal: Proposal, threshold: float, xgboost_version: str) -> dict[str, Any]:
    """The ``models[]`` entry of ``cdk.json``."""
    return {
        "name": proposal.name,
        "problemType": proposal.problem_type,
        "targetColumn": proposal.schema["target"]["name"],
        "schemaFile": f"data/schemas/{proposal.name}.json",
        "dataPrefix": f"{proposal.name}/",
        "algorithm": {"name": "xgboost", "version": xgboost_version},
        "hyperparameters": proposal.hyperparameters,
        "qualityGate": {"metric": proposal.gate_metric, "threshold": threshold},
        "drift": drift_settings(),
    }

"""Check a pipeline definition's step arguments against the SageMaker API request shapes.

The public pipeline-definition JSON schema is stale (it rejects valid current
definitions). What the pipeline service does with a step's ``Arguments`` is send them
to a SageMaker API (``CreateProcessingJob``, ``CreateTrainingJob``,
``CreateModelPackage``, ...), so this module validates each step's ``Arguments``
against that operation's input shape from botocore's bundled service model (AWS's
own, loaded offline), with:

* pipeline expressions (``{"Get": ...}``, ``{"Std:Join": ...}``, ``{"Std:JsonGet": ...}``)
  replaced by a dummy of the type the shape expects at that position;
* ``${Name}`` Fn::Sub placeholders (a whole string) replaced by a valid dummy string;
* the fields the pipeline service fills in at run time (job names) added.

Beyond botocore's ``ParamValidator`` (required members, unknown members, types,
minimums), concrete values are also checked against enums, maximum lengths/values
and the model's string patterns.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mlops.pipeline_definition import all_steps

__all__ = ["OPERATION_BY_STEP_TYPE", "ShapeProblem", "check_definition"]

#: Step ``Type`` -> SageMaker API the pipeline service calls with ``Arguments``.
OPERATION_BY_STEP_TYPE = {
    "Processing": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "Transform": "CreateTransformJob",
    "Tuning": "CreateHyperParameterTuningJob",
    "RegisterModel": "CreateModelPackage",
    "Model": "CreateModel",
}

#: Members the pipeline service supplies at run time (the SDK leaves them out).
_SERVICE_SUPPLIED = {
    "CreateProcessingJob": {"ProcessingJobName": "pipelines-processing-job"},
    "CreateTrainingJob": {"TrainingJobName": "pipelines-training-job"},
    "CreateTransformJob": {"TransformJobName": "pipelines-transform-job"},
    "CreateHyperParameterTuningJob": {"HyperParameterTuningJobName": "pipelines-tuning"},
    "CreateModel": {"ModelName": "pipelines-model"},
}

_EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}
_PLACEHOLDER = re.compile(r"^\$\{[A-Za-z0-9_]+\}$")
# Dummy for a placeholder / expression in a string position.
_DUMMY_STRING = "placeholder-dummy-value"


@dataclass(frozen=True)
class ShapeProblem:
    """One mismatch between a step's arguments and its API request shape."""

    step: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.step}: {self.path}: {self.problem}"


@lru_cache(maxsize=1)
def _service_model() -> Any:
    """botocore's SageMaker service model, read from the package's data files (no network)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def check_definition(definition: dict[str, Any] | str) -> list[ShapeProblem]:
    """Validate every step (conditions' nested steps included) of a definition.

    Args:
        definition: the definition as a dict, or JSON text (a body with ``${!``
            Fn::Sub escapes is accepted too).

    Returns:
        Every problem found, in step order; empty when the definition is valid.
    """
    parsed: dict[str, Any] = (
        json.loads(definition.replace("${!", "${")) if isinstance(definition, str) else definition
    )
    problems: list[ShapeProblem] = []
    for step in all_steps(parsed.get("Steps", [])):
        operation = OPERATION_BY_STEP_TYPE.get(step.get("Type", ""))
        if operation is None:
            continue
        problems.extend(check_step_arguments(step["Name"], operation, step.get("Arguments", {})))
    return problems


def check_step_arguments(
    step_name: str, operation: str, arguments: dict[str, Any]
) -> list[ShapeProblem]:
    """Validate one step's ``Arguments`` against ``operation``'s input shape."""
    from botocore.validate import ParamValidator

    shape = _service_model().operation_model(operation).input_shape
    problems: list[ShapeProblem] = []
    params = {**_SERVICE_SUPPLIED.get(operation, {}), **arguments}
    concrete = _concretise(params, shape, "", step_name, problems)
    report = ParamValidator().validate(concrete, shape)
    for error_type, name, additional in report._errors:
        detail = report._format_error((error_type, name, additional))
        path = (name or "").lstrip(".")
        if error_type == "missing required field":
            path = ".".join(p for p in (path, additional["required_name"]) if p)
        problems.append(ShapeProblem(step_name, path or "(root)", f"{error_type}: {detail}"))
    return problems


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _EXPRESSION_KEYS


def _dummy(shape: Any) -> Any:
    """A value of ``shape``'s type that satisfies its minimums."""
    kind = shape.type_name
    minimum = shape.metadata.get("min")
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        value = _DUMMY_STRING
        if minimum and len(value) < minimum:
            value = value.ljust(int(minimum), "x")
        return value
    if kind in ("integer", "long"):
        return max(int(minimum or 1), 1)
    if kind in ("float", "double"):
        return float(max(minimum or 1.0, 1.0))
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
    if kind == "list":
        return [_dummy(shape.member) for _ in range(int(minimum or 0))]
    if kind == "map":
        return {}
    if kind == "blob":
        return b"x"
    return {}


def _concretise(value: Any, shape: Any, path: str, step: str, problems: list[ShapeProblem]) -> Any:
    """Replace expressions/placeholders by dummies; check concrete leaves' constraints."""
    if shape is None:
        return value
    if _is_expression(value):
        return _dummy(shape)
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {
            key: _concretise(
                item,
                shape.members.get(key),
                f"{path}.{key}" if path else key,
                step,
                problems,
            )
            for key, item in value.items()
        }
    if kind == "list" and isinstance(value, list):
        return [
            _concretise(item, shape.member, f"{path}[{i}]", step, problems)
            for i, item in enumerate(value)
        ]
    if kind == "map" and isinstance(value, dict):
        return {
            key: _concretise(item, shape.value, f"{path}.{key}", step, problems)
            for key, item in value.items()
        }
    if kind == "string" and isinstance(value, str):
        if _PLACEHOLDER.match(value):
            return _dummy(shape)
        _check_string(value, shape, path, step, problems)
    if kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        maximum = shape.metadata.get("max")
        if maximum is not None and not isinstance(value, bool) and value > maximum:
            problems.append(ShapeProblem(step, path, f"value {value} above maximum {maximum}"))
    return value


def _check_string(
    value: str, shape: Any, path: str, step: str, problems: list[ShapeProblem]
) -> None:
    if "${" in value:  # partly a placeholder: the final value is only known at deploy time
        return
    if shape.enum and value not in shape.enum:
        problems.append(
            ShapeProblem(step, path, f"value {value!r} not one of {', '.join(shape.enum)}")
        )
        return
    maximum = shape.metadata.get("max")
    if maximum is not None and len(value) > maximum:
        problems.append(ShapeProblem(step, path, f"length {len(value)} above maximum {maximum}"))
    pattern = _compiled(shape.metadata.get("pattern"))
    if pattern is not None and not pattern.fullmatch(value):
        problems.append(
            ShapeProblem(step, path, f"value {value!r} does not match {pattern.pattern!r}")
        )


@lru_cache(maxsize=512)
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: skip rather than guess
        return None

"""SageMaker Model Monitor's baseline file formats as JSON Schemas, for the tests.

Written from the AWS developer guide (SageMaker AI), Model Monitor:

* "Schema for Statistics (statistics.json file)" (model-monitor-byoc-statistics);
* "Schema for Constraints (constraints.json file)" (model-monitor-byoc-constraints); the
  ``categorical_comparison_threshold`` and ``categorical_drift_method`` (``LInfinity`` |
  ``ChiSquared``) keys of ``distribution_constraints`` and the ``Disabled`` alternative of
  the switches are the SageMaker Python SDK's (``DataQualityDistributionConstraints``);
* "Model quality metrics" (model-monitor-model-quality-metrics) for the metric names of each
  problem type; the constraints layout (``<problem type>_constraints``, each metric
  ``{"threshold", "comparison_operator"}``) is what the model-quality baselining job suggests
  ("Create a model quality baseline", model-monitor-model-quality-baseline).

Where a page lists a block's fields completely (counts, buckets, sketch parameters,
monitoring_config), other keys are refused, so a misspelt key fails; where it leaves room
("provision for custom stats"), they are allowed.
"""

from __future__ import annotations

import json

import jsonschema

_NUMBER = {"type": "number"}
_COUNT = {"type": "number", "minimum": 0}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_SWITCH = {"enum": ["Enabled", "Disabled"]}


def _closed(properties: dict, required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_COMMON = _closed({"num_present": _COUNT, "num_missing": _COUNT})

_KLL = _closed(
    {
        "buckets": {
            "type": "array",
            "items": _closed({"lower_bound": _NUMBER, "upper_bound": _NUMBER, "count": _COUNT}),
        },
        "sketch": _closed(
            {
                "parameters": _closed({"c": _NUMBER, "k": _NUMBER}),
                "data": {"type": "array", "items": {"type": "array", "items": _NUMBER}},
            }
        ),
    }
)

_NUMERICAL_STATISTICS = {
    "type": "object",
    "properties": {
        "common": _COMMON,
        "mean": _NUMBER,
        "sum": _NUMBER,
        "std_dev": {"type": "number", "minimum": 0},
        "min": _NUMBER,
        "max": _NUMBER,
        "distribution": _closed({"kll": _KLL}),
    },
    "required": ["common"],
    # A feature with values has every statistic (one without has only its counts).
    "if": {"properties": {"common": {"properties": {"num_present": {"exclusiveMinimum": 0}}}}},
    "then": {"required": ["mean", "sum", "std_dev", "min", "max", "distribution"]},
}

_STRING_STATISTICS = {
    "type": "object",
    "properties": {
        "common": _COMMON,
        "distinct_count": _COUNT,
        "distribution": _closed(
            {
                "categorical": _closed(
                    {
                        "buckets": {
                            "type": "array",
                            "items": _closed({"value": {"type": "string"}, "count": _COUNT}),
                        }
                    }
                )
            }
        ),
    },
    "required": ["common", "distinct_count", "distribution"],
}

STATISTICS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "version": {"const": 0},
        "dataset": {
            "type": "object",
            "properties": {"item_count": _COUNT},
            "required": ["item_count"],
        },
        "features": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "inferred_type": {"enum": ["Fractional", "Integral"]},
                            "numerical_statistics": _NUMERICAL_STATISTICS,
                        },
                        "required": ["name", "inferred_type", "numerical_statistics"],
                    },
                    {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "inferred_type": {"const": "String"},
                            "string_statistics": _STRING_STATISTICS,
                        },
                        "required": ["name", "inferred_type", "string_statistics"],
                    },
                ]
            },
        },
    },
    "required": ["version", "dataset", "features"],
}

CONSTRAINTS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "version": {"const": 0},
        "features": {
            "type": "array",
            "items": _closed(
                {
                    "name": {"type": "string"},
                    "inferred_type": {"enum": ["Integral", "Fractional", "String", "Unknown"]},
                    "completeness": _SHARE,
                    "num_constraints": _closed({"is_non_negative": {"type": "boolean"}}),
                    "string_constraints": _closed(
                        {"domains": {"type": "array", "items": {"type": "string"}}}
                    ),
                    "monitoringConfigOverrides": {"type": "object"},
                },
                required=["name", "inferred_type", "completeness"],
            ),
        },
        "monitoring_config": _closed(
            {
                "evaluate_constraints": _SWITCH,
                "emit_metrics": _SWITCH,
                "datatype_check_threshold": _NUMBER,
                "domain_content_threshold": _NUMBER,
                "distribution_constraints": _closed(
                    {
                        "perform_comparison": _SWITCH,
                        "comparison_threshold": _SHARE,
                        "comparison_method": {"enum": ["Simple", "Robust"]},
                        "categorical_comparison_threshold": _SHARE,
                        "categorical_drift_method": {"enum": ["LInfinity", "ChiSquared"]},
                    },
                    required=["perform_comparison", "comparison_threshold", "comparison_method"],
                ),
            },
            required=["evaluate_constraints", "emit_metrics", "distribution_constraints"],
        ),
    },
    "required": ["version", "features", "monitoring_config"],
}

#: The scalar metrics "Model quality metrics" lists per problem type (curves and the
#: confusion matrix take no threshold).
MODEL_QUALITY_METRICS = {
    "regression": ["mae", "mse", "rmse", "r2"],
    "binary_classification": [
        "recall", "precision", "accuracy", "recall_best_constant_classifier",
        "precision_best_constant_classifier", "accuracy_best_constant_classifier",
        "true_positive_rate", "true_negative_rate", "false_positive_rate",
        "false_negative_rate", "auc", "f0_5", "f1", "f2", "f0_5_best_constant_classifier",
        "f1_best_constant_classifier", "f2_best_constant_classifier",
    ],
    "multiclass_classification": [
        "accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5", "weighted_f1",
        "weighted_f2", "accuracy_best_constant_classifier",
        "weighted_recall_best_constant_classifier",
        "weighted_precision_best_constant_classifier",
        "weighted_f0_5_best_constant_classifier", "weighted_f1_best_constant_classifier",
        "weighted_f2_best_constant_classifier",
    ],
}  # fmt: skip

_METRIC_CONSTRAINT = _closed(
    {
        "threshold": _NUMBER,
        "comparison_operator": {"enum": ["LessThanThreshold", "GreaterThanThreshold"]},
    }
)

MODEL_QUALITY_CONSTRAINTS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "version": {"const": 0},
        **{
            f"{problem}_constraints": {
                "type": "object",
                "propertyNames": {"enum": names},
                "additionalProperties": _METRIC_CONSTRAINT,
                "minProperties": 1,
            }
            for problem, names in MODEL_QUALITY_METRICS.items()
        },
    },
    "required": ["version"],
    "additionalProperties": False,
    # One problem type per file.
    "oneOf": [{"required": [f"{problem}_constraints"]} for problem in MODEL_QUALITY_METRICS],
}

SCHEMAS = {
    "statistics": STATISTICS,
    "constraints": CONSTRAINTS,
    "model_quality_constraints": MODEL_QUALITY_CONSTRAINTS,
}


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (Model Monitor's reader refuses it)")


def validate(kind: str, text: str) -> dict:
    """Parse ``text`` as strict JSON (no NaN or Infinity, which a JSON Schema cannot see:
    NaN is a number that passes every range check) and validate it as ``kind``.

    Raises:
        ValueError: not strict JSON.
        jsonschema.ValidationError: not of Model Monitor's format.
    """
    document = json.loads(text, parse_constant=_refuse_constant)
    jsonschema.Draft202012Validator(SCHEMAS[kind]).validate(document)
    return document

"""Fixtures for the pipeline-definition tests: each definition is built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from mlops.pipeline_definition import (  # noqa: E402 - needs the sys.path entry above
    BuiltDefinition,
    PipelineInputs,
    build_definition,
)

BINARY = PipelineInputs(
    model_name="breast-cancer",
    problem_type="binary_classification",
    region="eu-west-1",
    hyperparameters={
        "objective": "binary:logistic",
        "num_round": "100",
        "max_depth": "5",
    },
    quality_metric="auc",
    quality_threshold=0.9,
)
MULTICLASS = PipelineInputs(
    model_name="wine",
    problem_type="multiclass_classification",
    region="us-east-1",
    hyperparameters={
        "objective": "multi:softprob",
        "num_class": "3",
        "num_round": "50",
    },
    quality_metric="accuracy",
    quality_threshold=0.8,
    training_instance_count=2,
    use_spot_training=True,
    max_wait_seconds=7200,
    subnet_count=2,
    security_group_count=1,
    use_mlflow=True,
    enable_network_isolation=False,
    enable_step_caching=False,
)
REGRESSION = PipelineInputs(
    model_name="diabetes",
    problem_type="regression",
    region="eu-central-1",
    hyperparameters={"objective": "reg:squarederror", "num_round": "80"},
    quality_metric="rmse",
    quality_threshold=65.0,
)
ALL_INPUTS = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}


@pytest.fixture(scope="session")
def built() -> dict[str, BuiltDefinition]:
    """The three reference definitions, keyed binary / multiclass / regression."""
    return {key: build_definition(value) for key, value in ALL_INPUTS.items()}


@pytest.fixture(scope="session")
def definitions(built: dict[str, BuiltDefinition]) -> dict[str, dict]:
    """The same definitions parsed to dicts."""
    return {key: value.definition() for key, value in built.items()}


def steps_by_name(definition: dict) -> dict[str, dict]:
    """All steps, including the condition's nested branches, keyed by name."""
    found: dict[str, dict] = {}

    def walk(steps: list[dict]) -> None:
        for step in steps:
            found[step["Name"]] = step
            if step["Type"] == "Condition":
                walk(step["Arguments"]["IfSteps"])
                walk(step["Arguments"]["ElseSteps"])

    walk(definition["Steps"])
    return found

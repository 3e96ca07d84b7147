"""Many models per stage: every template stays under 80% of CloudFormation's limits, and a
stage with more models than fit fails before anything is written, saying how many fit."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_helpers import make_app, mlops_config

import app as platform_app
from constructs import Construct, template_budget

SCALE_MODELS = 100


def stage_with_models(count: int) -> dict[str, Any]:
    """The dev stage alone, with ``count`` copies of the first model."""
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    first = config["models"][0]
    config["models"] = [
        {**copy.deepcopy(first), "name": f"{first['name']}-{i}"} for i in range(count)
    ]
    config["featureGroups"] = []
    return config


def test_a_hundred_models_fit_with_headroom(tmp_path: Path) -> None:
    app = make_app(stage_with_models(SCALE_MODELS), tmp_path)
    platform_app.build(app)
    app.synth()
    measured = {p.name: template_budget.measure(p) for p in tmp_path.rglob("*.template.json")}
    assert len(measured) == SCALE_MODELS + 2  # Data, Training and one nested stack per model
    for name, values in measured.items():
        for kind, value in values.items():
            assert value <= template_budget.budget(kind), (name, kind, value)


def _bare_stage(
    models: int, per_model: int, shared: int
) -> tuple[cdk.Stack, dict[str, list[Construct]]]:
    stack = cdk.Stack(cdk.App(), "Bare")
    for i in range(shared):
        cdk.CfnResource(stack, f"Shared{i}", type="AWS::SNS::Topic")
    scopes: dict[str, list[Construct]] = {}
    for m in range(models):
        scope = Construct(stack, f"Model{m}")
        for i in range(per_model):
            cdk.CfnResource(scope, f"R{i}", type="AWS::SNS::Topic")
        scopes[f"m{m}"] = [scope]
    return stack, scopes


def test_the_budget_counts_each_template_and_says_how_many_models_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack, scopes = _bare_stage(models=12, per_model=3, shared=5)
    assert template_budget.count([stack])["resources"] == 41
    monkeypatch.setitem(template_budget.LIMITS, "resources", 50)  # budget 40
    problems = template_budget.TemplateBudget(stack, lambda: scopes).validate()
    assert problems == [
        "41 resources with 12 models (3 per model, 5 shared); CloudFormation allows 50 per "
        "template and the platform keeps 20% headroom (40): at most 11 models fit in one "
        "stage. Fix: configure fewer models, or split them across stages"
    ]
    monkeypatch.setitem(template_budget.LIMITS, "resources", 52)  # budget 41: fits
    assert template_budget.TemplateBudget(stack, lambda: scopes).validate() == []


def test_nested_stacks_count_as_one_resource_of_their_parent() -> None:
    stack = cdk.Stack(cdk.App(), "Parent")
    nested = cdk.NestedStack(stack, "Child")
    for i in range(7):
        cdk.CfnResource(nested, f"R{i}", type="AWS::SNS::Topic")
    assert template_budget.count([stack])["resources"] == 1  # its AWS::CloudFormation::Stack
    assert template_budget.count([nested])["resources"] == 7


def test_a_stage_over_budget_fails_before_writing_templates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = make_app(stage_with_models(3), tmp_path)
    stages = platform_app.build(app)
    data = template_budget.count([stages["dev"].data])["resources"]
    # One resource (a model package group) per model in the data stack: allow one model.
    monkeypatch.setitem(template_budget.LIMITS, "resources", int((data - 2) / 0.8) + 1)
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    message = str(raised.value)
    assert "[dev/Data] " in message and "at most 1 models fit in one stage" in message
    assert not list(tmp_path.rglob("*.template.json"))

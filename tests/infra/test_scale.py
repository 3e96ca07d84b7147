"""Many models per stage: every template stays under 80% of CloudFormation's limits, and a
stage with more models than fit fails before anything is written, saying how many fit."""

from __future__ import annotations

import copy
import json
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


def test_a_hundred_models_fit_with_headroom(default_stages: dict[str, Any]) -> None:
    """Each template grows linearly with the models of its stage: what a model adds (its
    model package group in the data stack, its nested-stack resource in the training
    stack, each measured in the default app) times 100, plus what is shared, stays within
    80% of every CloudFormation limit; each nested stack is one model's and does not grow.
    The synth of a real 100-model stage is measured by ``benchmarks/synth_bench.py``."""
    for stage in default_stages.values():
        for stack in (stage.data, stage.training):
            template = cdk.assertions.Template.from_stack(stack).to_json()
            scopes = stack.model_scopes()
            prefixes = tuple(_prefix(scope) for scope in scopes.values())
            per_model = {
                logical_id: resource
                for logical_id, resource in template["Resources"].items()
                if logical_id.startswith(prefixes)
            }
            assert len(per_model) == len(scopes), (stack.node.path, sorted(per_model))
            each = {
                "resources": len(per_model) / len(scopes),
                "bytes": len(json.dumps(per_model)) / len(scopes),
            }
            total = {"resources": len(template["Resources"]), "bytes": len(json.dumps(template))}
            for kind, per in each.items():
                projected = total[kind] - per * len(scopes) + per * SCALE_MODELS
                assert projected <= template_budget.budget(kind), (stack.node.path, kind, projected)
        for pipeline in stage.training.pipelines.values():
            nested = cdk.assertions.Template.from_stack(cdk.Stack.of(pipeline)).to_json()
            assert len(json.dumps(nested)) <= template_budget.budget("bytes") / 10
            assert len(nested["Resources"]) <= template_budget.budget("resources") / 10


def _prefix(scope: list[Construct]) -> str:
    """The logical-ID prefix CDK gives the resources under a model's construct."""
    return "".join(part for part in scope[0].node.path.split("/")[2:] if part).replace(".", "")


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

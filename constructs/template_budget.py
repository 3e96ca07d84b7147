"""CloudFormation's template limits, checked before and after templates are written.

CloudFormation refuses a template over 1,048,576 bytes (from S3), 500 resources, 200
outputs or 200 parameters. The platform keeps 20% headroom on each, so a stage that fits
today still fits after the next release adds a resource or two per model.

* :class:`TemplateBudget` (a construct validation) counts resources, outputs and
  parameters of each stack of a stage before anything is written; over budget, it says
  how many models fit, from what each model adds.
* :class:`CloudFormationLimits` (a policy-validation plugin) measures every written
  template, nested ones included, and fails synth on any template over budget.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
import jsii

import constructs
from constructs import Construct

#: CloudFormation's limits per template.
LIMITS: Mapping[str, int] = {
    "bytes": 1_048_576,
    "resources": 500,
    "outputs": 200,
    "parameters": 200,
}
#: Share of each limit a template may use.
HEADROOM = 0.8


def budget(kind: str) -> int:
    """The most of ``kind`` a template may hold: 80% of CloudFormation's limit."""
    return math.floor(LIMITS[kind] * HEADROOM)


def count(scopes: Sequence[Construct]) -> Counter[str]:
    """Resources, outputs and parameters under ``scopes`` (the scopes included), not
    descending into nested stacks (each is a template of its own).

    One ``find_all`` per scope and per nested stack: each jsii call costs about a
    millisecond, so walking children one by one would add seconds to a large stage.
    """
    found: Counter[str] = Counter()
    for scope in scopes:
        members = scope.node.find_all()
        nested = {
            _identity(c)
            for stack in members[1:]  # find_all lists the scope itself first
            if isinstance(stack, cdk.Stack)
            for c in stack.node.find_all()
        }
        for node in members:
            if _identity(node) in nested:
                continue
            if isinstance(node, cdk.CfnResource):
                found["resources"] += 1
            elif isinstance(node, cdk.CfnOutput):
                found["outputs"] += 1
            elif isinstance(node, cdk.CfnParameter):
                found["parameters"] += 1
    return found


def _identity(construct: constructs.IConstruct) -> str:
    """The jsii object reference (proxies of one JS object are not the same Python object)."""
    return construct.__jsii_ref__.ref  # type: ignore[attr-defined]


@jsii.implements(constructs.IValidation)
class TemplateBudget:
    """Fails synth before anything is written when a stack would exceed its budget.

    Args:
        stack: the stack to check.
        model_scopes: a function returning, per model name, the constructs of ``stack``
            that hold that model's resources (called at validation, after the tree is
            complete), so the message can say how many models fit.
    """

    def __init__(
        self, stack: cdk.Stack, model_scopes: Callable[[], Mapping[str, Sequence[Construct]]]
    ) -> None:
        self._stack = stack
        self._model_scopes = model_scopes

    def validate(self) -> list[str]:
        total = count([self._stack])
        per_model = {name: count(scopes) for name, scopes in self._model_scopes().items()}
        problems = []
        for kind in ("resources", "outputs", "parameters"):
            if total[kind] <= budget(kind):
                continue
            each = max((c[kind] for c in per_model.values()), default=0)
            shared = total[kind] - sum(c[kind] for c in per_model.values())
            fits = (budget(kind) - shared) // each if each else 0
            problems.append(
                f"{total[kind]} {kind} with {len(per_model)} models ({each} per model, "
                f"{shared} shared); CloudFormation allows {LIMITS[kind]} per template and "
                f"the platform keeps 20% headroom ({budget(kind)}): at most {max(fits, 0)} "
                "models fit in one stage. Fix: configure fewer models, or split them "
                "across stages"
            )
        return problems


@jsii.implements(cdk.IPolicyValidationPlugin)
class CloudFormationLimits:
    """Measures every synthesized template against :data:`LIMITS` with 20% headroom."""

    @property
    def name(self) -> str:
        return "CloudFormationLimits"

    @property
    def version(self) -> str:
        return "1"

    @property
    def rule_ids(self) -> list[str]:
        return [f"Max{kind.capitalize()}" for kind in LIMITS]

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        violations = []
        # The context lists top-level templates; nested ones are written beside them.
        paths = sorted(
            {str(p) for t in context.template_paths for p in Path(t).parent.glob("*.template.json")}
        )
        for path in paths:
            for kind, value in measure(Path(path)).items():
                if value > budget(kind):
                    violations.append(
                        cdk.PolicyViolation(
                            rule_name=f"Max{kind.capitalize()}",
                            description=(
                                f"{Path(path).name} has {value:,} {kind}; CloudFormation "
                                f"allows {LIMITS[kind]:,} and the platform keeps 20% "
                                f"headroom ({budget(kind):,})"
                            ),
                            fix="configure fewer models per stage",
                            violating_resources=[
                                cdk.PolicyViolatingResource(
                                    resource_logical_id="(template)",
                                    template_path=path,
                                    locations=[kind],
                                )
                            ],
                            severity="error",
                        )
                    )
        return cdk.PolicyValidationPluginReport(success=not violations, violations=violations)


def measure(template_path: Path) -> dict[str, int]:
    """Bytes, resources, outputs and parameters of one written template."""
    text = template_path.read_bytes()
    template = json.loads(text)
    return {
        "bytes": len(text),
        "resources": len(template.get("Resources", {})),
        "outputs": len(template.get("Outputs", {})),
        "parameters": len(template.get("Parameters", {})),
    }

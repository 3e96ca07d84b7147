"""Mermaid flowchart of a SageMaker Pipeline definition.

Edges come from the definition itself, as the pipeline service derives them:

* ``DependsOn`` lists (drawn ``-.->`` labelled ``depends on``);
* data dependencies: any ``{"Get": "Steps.<Name>...."}`` or
  ``{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.<Name>.PropertyFiles..."}}}`` inside a
  step's arguments (drawn ``-->``);
* condition branches: ``IfSteps`` (``-- true -->``) and ``ElseSteps`` (``-- false -->``).

Output is deterministic (sorted), so it can be committed and diffed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlops.pipeline_definition import all_steps

__all__ = ["dag_edges", "to_mermaid"]

_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)")
_SHAPES = {"Condition": ("{", "}"), "Fail": ("[[", "]]"), "RegisterModel": ("[/", "/]")}


def _load(definition: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(definition, str):
        return json.loads(definition.replace("${!", "${"))
    return definition


def _references(value: Any) -> set[str]:
    """Names of steps referenced by Get expressions anywhere inside ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str):
            match = _STEP_REF.match(get)
            if match:
                found.add(match.group(1))
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def dag_edges(definition: dict[str, Any] | str) -> list[tuple[str, str, str]]:
    """Return sorted ``(source, target, kind)`` edges; kind is data|depends_on|true|false."""
    steps = all_steps(_load(definition).get("Steps", []))
    edges: set[tuple[str, str, str]] = set()
    for step in steps:
        name = step["Name"]
        args = step.get("Arguments", {})
        branches = {}
        if step.get("Type") == "Condition":
            branches = {
                "IfSteps": args.get("IfSteps", []),
                "ElseSteps": args.get("ElseSteps", []),
            }
            for kind, key in (("true", "IfSteps"), ("false", "ElseSteps")):
                for child in branches[key]:
                    edges.add((name, child["Name"], kind))
            # A condition's own data inputs are its Conditions, not its nested steps.
            args = {k: v for k, v in args.items() if k not in branches}
        for source in sorted(_references(args)):
            if source != name:
                edges.add((source, name, "data"))
        for source in step.get("DependsOn", []) or []:
            edges.add((source, name, "depends_on"))
    return sorted(edges)


def to_mermaid(definition: dict[str, Any] | str) -> str:
    """Return a Mermaid ``flowchart TD`` for the definition (ends with a newline)."""
    steps = all_steps(_load(definition).get("Steps", []))
    lines = ["flowchart TD"]
    for step in steps:
        name = step["Name"]
        opening, closing = _SHAPES.get(step.get("Type", ""), ("[", "]"))
        label = f"{name}<br/><small>{step.get('Type', '?')}</small>"
        lines.append(f'    {_node_id(name)}{opening}"{label}"{closing}')
    arrows = {
        "data": "-->",
        "depends_on": "-. depends on .->",
        "true": "-- true -->",
        "false": "-- false -->",
    }
    for source, target, kind in dag_edges(definition):
        lines.append(f"    {_node_id(source)} {arrows[kind]} {_node_id(target)}")
    return "\n".join(lines) + "\n"


def _node_id(step_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", step_name)

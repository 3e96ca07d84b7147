"""cfn-lint for the gate tests, in a module of its own: worker processes import it without
importing CDK (each would start a jsii kernel)."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint


def lint_findings(template: dict[str, Any], region: str) -> list[str]:
    """cfn-lint findings of every level (errors, warnings, informational) for one region."""
    matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}" for m in matches]

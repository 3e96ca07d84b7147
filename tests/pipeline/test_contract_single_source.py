"""The model contract lives in one module: nothing else in the app or the steps restates it.

``pipeline_steps/steplib/contract.py`` defines the problem types, feature types, objectives,
gate metrics with their direction and JSON path, the report layout, the schema rules and
the hyperparameter rules. These tests read every other source file of the CDK app and of
the step scripts and fail when one writes one of those facts itself: a string literal of a
contract value (outside docstrings), a module-level name the contract owns, or a copy of
the column-name rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_steps.steplib import contract

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipeline_steps" / "steplib" / "contract.py"
SOURCES = sorted(
    p
    for p in [
        ROOT / "app.py",
        *ROOT.glob("stacks/*.py"),
        *ROOT.glob("constructs/*.py"),
        *ROOT.glob("mlops/*.py"),
        *ROOT.glob("pipeline_steps/**/*.py"),
    ]
    if p != CONTRACT
)

#: Values only the contract may spell out.
OWNED_VALUES = {
    *contract.PROBLEM_TYPES,
    *contract.FEATURE_TYPES,
    *(spec.report_section for spec in contract.PROBLEMS.values()),
    *(o for spec in contract.PROBLEMS.values() for o in spec.objectives),
    *contract.UNSCOREABLE_OBJECTIVES,
    contract.REGISTERED_APPROVAL_STATUS,
}
#: Literals equal to a contract value that are another format's word, by file: Model
#: Monitor's statistics format names a string feature's distribution ``categorical``.
OTHER_FORMATS = {"pipeline_steps/steplib/model_monitor.py": {"categorical"}}
#: Names under which a second copy would most likely be written.
OWNED_NAMES = {
    "PROBLEM_TYPES", "FEATURE_TYPES", "GATE_METRICS", "OBJECTIVES", "LOWER_IS_BETTER",
    "METRICS_KEY", "CLASSIFICATION_METRICS", "MULTICLASS_METRICS", "REGRESSION_METRICS",
    "RESERVED_COLUMN_NAMES", "XGBOOST_HYPERPARAMETERS",
}  # fmt: skip


def _literals(tree: ast.AST) -> Iterator[ast.Constant]:
    """String constants that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


def copies(path: Path) -> list[str]:
    """Every place ``path`` restates the contract, as ``file:line: what``."""
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT)
    found = [
        f"{where}:{node.lineno}: the literal {node.value!r}"
        for node in _literals(tree)
        if (node.value in OWNED_VALUES and node.value not in OTHER_FORMATS.get(str(where), ()))
        or contract.COLUMN_NAME.pattern in node.value
    ]
    for node in ast.walk(tree):
        targets = (
            node.targets if isinstance(node, ast.Assign)
            else [node.target] if isinstance(node, ast.AnnAssign) else []
        )  # fmt: skip
        found += [
            f"{where}:{node.lineno}: defines {t.id}"
            for t in targets
            if isinstance(t, ast.Name) and t.id in OWNED_NAMES
        ]
    return found


def test_the_app_and_the_steps_define_no_copy_of_the_contract() -> None:
    assert len(SOURCES) > 25  # the scan covers the app, its constructs and the steps
    found = [copy for path in SOURCES for copy in copies(path)]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'PROBLEM = "regression"\n',
        'GATE_METRICS = {"auc": True}\n',
        'if objective == "binary:logistic":\n    pass\n',
        'NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")\n',
        'report["regression_metrics"]\n',
    ],
)
def test_a_copy_is_caught(tmp_path: Path, source: str) -> None:
    """Negative test: each kind of restatement is reported."""
    path = ROOT / "mlops" / "_probe_contract_copy.py"
    try:
        path.write_text(f'"""A docstring may say "regression"."""\nimport re\n{source}')
        assert copies(path), source
    finally:
        path.unlink()


def test_docstrings_may_name_contract_values(tmp_path: Path) -> None:
    path = ROOT / "mlops" / "_probe_contract_docstring.py"
    try:
        path.write_text('"""Trains binary_classification models with binary:logistic."""\n')
        assert copies(path) == []
    finally:
        path.unlink()

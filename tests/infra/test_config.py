"""The typed config: the default parses; each mistake is rejected naming field, value and fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_helpers import ROOT, make_app, mlops_config

import app as platform_app
from mlops.config import ConfigError, parse_config

Edit = Callable[[dict[str, Any]], None]


def stage(c: dict[str, Any]) -> dict[str, Any]:
    return c["stages"]["dev"]


def model(c: dict[str, Any]) -> dict[str, Any]:
    return c["models"][0]


# (case id, edit of the default config, text the message must contain: field path first)
BAD_CONFIGS: list[tuple[str, Edit, tuple[str, ...]]] = [
    (
        "unknown-stage-key",
        lambda c: stage(c).update(regoin="us-east-1"),
        ("stages.dev.regoin", "remove it or correct its spelling"),
    ),
    (
        "bad-region",
        lambda c: stage(c).update(region="us-east-9"),
        ("stages.dev.region", '"us-east-9"', "not a region where SageMaker is available"),
    ),
    (
        "region-missing",
        lambda c: stage(c).pop("region"),
        ("stages.dev.region: missing", "add this field"),
    ),
    (
        "account-not-12-digits",
        lambda c: stage(c).update(account="12345"),
        ("stages.dev.account", "12-digit"),
    ),
    (
        "account-as-number",
        lambda c: stage(c).update(account=123456789012),
        ("stages.dev.account", "123456789012", "JSON string"),
    ),
    (
        "bool-as-string",
        lambda c: stage(c).update(terminationProtection="false"),
        ("stages.dev.terminationProtection", "true or false"),
    ),
    (
        "bad-removal-policy",
        lambda c: stage(c).update(removalPolicy="delete"),
        ("stages.dev.removalPolicy", '"delete"', "'retain' or 'destroy'"),
    ),
    (
        "bad-training-instance",
        lambda c: stage(c)["pipeline"].update(trainingInstanceType="ml.m5.huge"),
        ("stages.dev.pipeline.trainingInstanceType", "ml.m5.huge", "training instance type"),
    ),
    (
        "bad-endpoint-instance",
        lambda c: stage(c)["endpoint"].update(instanceType="m5.large"),
        ("stages.dev.endpoint.instanceType", "endpoint instance type"),
    ),
    (
        "count-as-string",
        lambda c: stage(c)["endpoint"].update(initialInstanceCount="2"),
        ("stages.dev.endpoint.initialInstanceCount", "whole number"),
    ),
    (
        "count-zero",
        lambda c: stage(c)["pipeline"].update(trainingInstanceCount=0),
        ("stages.dev.pipeline.trainingInstanceCount", "greater than or equal to 1"),
    ),
    (
        "bad-cidr",
        lambda c: stage(c)["vpc"].update(cidr="10.0.0.0/33"),
        ("stages.dev.vpc.cidr", "IPv4 CIDR"),
    ),
    (
        "spot-without-wait",
        lambda c: stage(c)["pipeline"].update(maxWaitSeconds=None),
        ("stages.dev.pipeline", "maxWaitSeconds"),
    ),
    (
        "bad-schedule",
        lambda c: stage(c)["pipeline"].update(scheduleExpression="every monday"),
        ("stages.dev.pipeline.scheduleExpression", "cron("),
    ),
    (
        "bad-reader-account",
        lambda c: stage(c).update(modelReaderAccounts=["prod"]),
        ("stages.dev.modelReaderAccounts", "12-digit"),
    ),
    (
        "missing-target",
        lambda c: model(c).pop("targetColumn"),
        ("models[0:breast-cancer].targetColumn: missing",),
    ),
    (
        "target-not-in-schema",
        lambda c: model(c).update(targetColumn="label"),
        ("models[0:breast-cancer].targetColumn", "'label'", "declares target 'diagnosis'"),
    ),
    (
        "duplicate-model-names",
        lambda c: c["models"].append(dict(model(c))),
        ("duplicate names ['breast-cancer']",),
    ),
    (
        "threshold-out-of-range",
        lambda c: model(c)["qualityGate"].update(threshold=1.5),
        ("models[0:breast-cancer]", "threshold 1.5 is out of range", "0.0 to 1.0"),
    ),
    (
        "metric-wrong-for-problem",
        lambda c: model(c)["qualityGate"].update(metric="rmse"),
        ("models[0:breast-cancer]", "'rmse' is not written for binary_classification"),
    ),
    (
        "objective-wrong-for-problem",
        lambda c: model(c)["hyperparameters"].update(objective="reg:squarederror"),
        ("models[0:breast-cancer]", "objective 'reg:squarederror' does not fit"),
    ),
    (
        "hyperparameter-value-too-long",
        lambda c: model(c)["hyperparameters"].update(eval_metric="auc," * 700),
        ("models[0:breast-cancer].hyperparameters", "'eval_metric' is 2800 characters", "2,500"),
    ),
    (
        "too-many-hyperparameters",
        lambda c: model(c)["hyperparameters"].update({f"p{i}": 1 for i in range(100)}),
        ("models[0:breast-cancer].hyperparameters", "entries; at most 100"),
    ),
    (
        "bad-problem-type",
        lambda c: model(c).update(problemType="classification"),
        ("models[0:breast-cancer].problemType", "binary_classification"),
    ),
    (
        "bad-model-name",
        lambda c: model(c).update(name="Breast_Cancer"),
        ("models[0:Breast_Cancer].name", "lowercase letters"),
    ),
    (
        "schema-file-missing",
        lambda c: model(c).update(schemaFile="data/schemas/nope.json"),
        ("models[0:breast-cancer].schemaFile", "no such file"),
    ),
    (
        "bad-data-prefix",
        lambda c: model(c).update(dataPrefix="s3://bucket/key"),
        ("models[0:breast-cancer].dataPrefix", "S3 key prefix"),
    ),
    (
        "unknown-xgboost-version",
        lambda c: model(c)["algorithm"].update(version="9.9-9"),
        ("models[0:breast-cancer].algorithm.version", "9.9-9"),
    ),
    (
        "feature-group-unknown-model",
        lambda c: c["featureGroups"][0].update(model="churn"),
        ("featureGroups", "'churn' is not a configured model"),
    ),
    (
        "default-stage-undefined",
        lambda c: c.update(defaultStages=["dev", "qa"]),
        ("defaultStages: got ['dev', 'qa']", "undefined stages ['qa']"),
    ),
    (
        "psi-threshold-negative",
        lambda c: model(c)["drift"].update(psiThreshold=-1),
        ("models[0:breast-cancer].drift.psiThreshold", "greater than 0"),
    ),
    (
        "bad-tag-key",
        lambda c: stage(c)["tags"].update({"aws:owner": "x"}),
        ("stages.dev.tags", "aws:"),
    ),
]


def test_default_config_parses() -> None:
    config = parse_config(mlops_config(), project_root=ROOT)
    assert config.default_stages == ("dev", "staging", "prod")
    assert config.stages["prod"].removal_policy == "retain"
    assert config.stages["prod"].termination_protection is True
    assert config.stages["dev"].removal_policy == "destroy"
    assert [m.name for m in config.models] == ["breast-cancer"]


def test_matrix_has_at_least_fifteen_distinct_mistakes() -> None:
    assert len({case for case, _, _ in BAD_CONFIGS}) >= 15


@pytest.mark.parametrize(("case", "edit", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_naming_the_field(
    case: str, edit: Edit, expected: tuple[str, ...]
) -> None:
    config = mlops_config()
    edit(config)
    with pytest.raises(ConfigError) as caught:
        parse_config(config, project_root=ROOT)
    message = str(caught.value)
    for text in expected:
        assert text in message, f"{case}: {text!r} not in:\n{message}"
    assert "Fix:" in message or "allowed" in message or "Fix" in message


def test_all_problems_are_reported_at_once() -> None:
    config = mlops_config()
    stage(config)["region"] = "mars-1"
    stage(config)["endpoint"]["instanceType"] = "big"
    config["stages"]["prod"]["account"] = "x"
    with pytest.raises(ConfigError) as caught:
        parse_config(config, project_root=ROOT)
    assert len(caught.value.problems) == 3
    assert "3 problem(s)" in str(caught.value)


def test_bad_config_fails_before_any_construct_is_built() -> None:
    config = mlops_config()
    stage(config)["region"] = "nowhere-1"
    app = make_app(config)
    with pytest.raises(ConfigError):
        platform_app.build(app)
    assert app.node.children == []


def test_unknown_stage_selection_is_rejected() -> None:
    app = cdk.App(
        context={**json.loads((ROOT / "cdk.json").read_text())["context"], "stages": "dev,qa"}
    )
    with pytest.raises(ConfigError, match=r"stages \(from -c stages=...\): got 'dev,qa'"):
        platform_app.build(app)
    assert app.node.children == []


def test_regression_model_with_error_metric_parses(tmp_path: Path) -> None:
    config = mlops_config()
    config["models"].append(
        {
            "name": "diabetes",
            "problemType": "regression",
            "targetColumn": "disease_progression",
            "schemaFile": "data/schemas/diabetes.json",
            "dataPrefix": "diabetes/",
            "hyperparameters": {"objective": "reg:squarederror", "num_round": 100},
            "qualityGate": {"metric": "rmse", "threshold": 70.0},
        }
    )
    parsed = parse_config(config, project_root=ROOT)
    assert parsed.model("diabetes").quality_gate.metric == "rmse"


def test_cli_exits_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["mlops"]["stages"]["dev"]["region"] = "us-east-9"
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(tmp_path),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "stages.dev.region" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir()), "nothing is synthesized"

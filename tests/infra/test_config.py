"""The typed config: the default parses; each mistake is rejected naming field, value and fix."""

from __future__ import annotations

import json
import re
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
        "instance-family-of-unknown-storage",
        lambda c: stage(c)["pipeline"].update(trainingInstanceType="ml.g7e.2xlarge"),
        ("stages.dev.pipeline.trainingInstanceType", "local NVMe storage is not known"),
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
        (
            "models[0:breast-cancer].qualityGate.threshold: got 1.5",
            "auc is never above 1",
            "use a value between 0 and 1",
        ),
    ),
    (
        "metric-wrong-for-problem",
        lambda c: model(c)["qualityGate"].update(metric="rmse"),
        (
            "models[0:breast-cancer].qualityGate.metric: got 'rmse'",
            "Evaluate writes no such metric for binary_classification",
        ),
    ),
    (
        "objective-wrong-for-problem",
        lambda c: model(c)["hyperparameters"].update(objective="reg:squarederror"),
        (
            "models[0:breast-cancer].hyperparameters.objective: got 'reg:squarederror'",
            "does not fit binary_classification",
            "use 'binary:logistic'",
        ),
    ),
    (
        "hyperparameter-value-too-long",
        lambda c: model(c)["hyperparameters"].update(eval_metric="auc," * 700),
        ("models[0:breast-cancer].hyperparameters.eval_metric: 2800 characters", "2,500"),
    ),
    (
        "too-many-hyperparameters",
        lambda c: model(c)["hyperparameters"].update({f"p{i}": 1 for i in range(100)}),
        ("models[0:breast-cancer].hyperparameters: 107 entries", "at most 100"),
    ),
    (
        "bad-problem-type",
        lambda c: model(c).update(problemType="classification"),
        (
            "models[0:breast-cancer].problemType",
            "'classification' is not a problem type",
            "binary_classification",
        ),
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
        "num-round-negative",
        lambda c: model(c)["hyperparameters"].update(num_round=-5),
        (
            "models[0:breast-cancer].hyperparameters.num_round: got -5",
            "must be a whole number >= 1",
        ),
    ),
    (
        "num-round-missing",
        lambda c: model(c)["hyperparameters"].pop("num_round"),
        ("models[0:breast-cancer].hyperparameters.num_round: missing",),
    ),
    (
        "eta-out-of-range",
        lambda c: model(c)["hyperparameters"].update(eta=1.5),
        ("models[0:breast-cancer].hyperparameters.eta: got 1.5", "<= 1"),
    ),
    (
        "unknown-hyperparameter",
        lambda c: model(c)["hyperparameters"].update(max_dept=4),
        ("models[0:breast-cancer].hyperparameters.max_dept", "did you mean 'max_depth'?"),
    ),
    (
        "eval-metric-wrong-for-objective",
        lambda c: model(c)["hyperparameters"].update(eval_metric="rmse"),
        (
            "models[0:breast-cancer].hyperparameters.eval_metric: got 'rmse'",
            "not an evaluation metric of binary:logistic",
        ),
    ),
    (
        "objective-evaluate-cannot-score",
        lambda c: model(c)["hyperparameters"].update(objective="binary:logitraw"),
        (
            "models[0:breast-cancer].hyperparameters.objective: got 'binary:logitraw'",
            "raw margins",
            "'binary:logistic'",
        ),
    ),
    (
        "num-class-on-binary",
        lambda c: model(c)["hyperparameters"].update(num_class=2),
        ("models[0:breast-cancer].hyperparameters.num_class", "only multiclass models take it"),
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


# --- the schema file and the contract, checked at synth ---------------------------------

SchemaEdit = Callable[[dict[str, Any]], None]
BC_SCHEMA = ROOT / "data" / "schemas" / "breast-cancer.json"

# (case id, edit of the breast-cancer schema, text the message must contain)
BAD_SCHEMAS: list[tuple[str, SchemaEdit, tuple[str, ...]]] = [
    (
        "duplicate-feature",
        lambda s: s["features"].append(dict(s["features"][0])),
        ("features[30].name: got 'mean_radius'", "the same column as features[0].name"),
    ),
    (
        "case-insensitive-duplicate",
        lambda s: s["features"].append({"name": "Mean_Radius", "type": "numeric"}),
        ("features[30].name: got 'Mean_Radius'", "without case, as Athena does"),
    ),
    (
        "unknown-feature-type",
        lambda s: s["features"][3].update(type="Decimal"),
        ("features[3].type: got 'Decimal'", "allowed types are numeric, categorical"),
    ),
    (
        "no-event-time",
        lambda s: s.pop("eventTimeColumn"),
        ("eventTimeColumn: missing", "Feature Store record identifier and event time"),
    ),
    (
        "name-not-feature-store-valid",
        lambda s: s["features"][0].update(name="od280/od315"),
        ("features[0].name: got 'od280/od315'", "rename the column, e.g. to 'od280_od315'"),
    ),
    (
        "reserved-name",
        lambda s: s["features"][0].update(name="write_time"),
        ("features[0].name: got 'write_time'", "Feature Store reserves this name"),
    ),
    (
        "classes-missing",
        lambda s: s["target"].pop("classes"),
        ("target.classes: missing", "a categorical target lists its class labels"),
    ),
    (
        "three-classes-for-binary",
        lambda s: s["target"].update(classes=["a", "b", "c"]),
        ("target.classes: got ['a', 'b', 'c']", "binary_classification needs exactly 2 classes"),
    ),
    (
        "unknown-schema-key",
        lambda s: s.update(recordIdColum="x"),
        ("recordIdColum: got 'x'", "did you mean 'recordIdColumn'?"),
    ),
    (
        "source-for-no-column",
        lambda s: s.update(sourceColumns={"nope": "Nope"}),
        ("sourceColumns.nope: got 'Nope'", "'nope' is not a column of this schema"),
    ),
    (
        "two-columns-from-one-source",
        lambda s: s.update(sourceColumns={"mean_radius": "r", "mean_texture": "r"}),
        ("features[1].name: got 'mean_texture'", "read from the data's column 'r'"),
    ),
    (
        "source-for-a-derived-column",
        lambda s: s.update(sourceColumns={"record_id": "id"}, derived={"recordId": "row_hash"}),
        ("sourceColumns.record_id: got 'id'", "is derived (see derived), not read"),
    ),
    (
        "unknown-derivation",
        lambda s: s.update(derived={"recordId": "uuid4"}),
        ("derived.recordId: got 'uuid4'", "the one derivation of a record id is 'row_hash'"),
    ),
    (
        "event-time-not-iso",
        lambda s: s.update(derived={"eventTime": "2026-01-01"}),
        ("derived.eventTime: got '2026-01-01'", "an ISO-8601 UTC time"),
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), BAD_SCHEMAS, ids=[c[0] for c in BAD_SCHEMAS])
def test_bad_schema_is_rejected_at_synth_naming_file_and_field(
    case: str, edit: SchemaEdit, expected: tuple[str, ...], tmp_path: Path
) -> None:
    schema = json.loads(BC_SCHEMA.read_text())
    edit(schema)
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    config = mlops_config()
    model(config)["schemaFile"] = str(path)
    with pytest.raises(ConfigError) as caught:
        parse_config(config, project_root=ROOT)
    message = str(caught.value)
    assert f"models[0:breast-cancer].schemaFile ({path}) " in message
    for text in expected:
        assert text in message, f"{case}: {text!r} not in:\n{message}"


def _wine(tmp_path: Path, **hyperparameters: Any) -> dict[str, Any]:
    """A multiclass model (3 classes) added to the default config."""
    schema = {
        "recordIdColumn": "record_id",
        "eventTimeColumn": "event_time",
        "target": {"name": "cultivar", "type": "categorical", "classes": ["a", "b", "c"]},
        "features": [{"name": "alcohol", "type": "numeric"}],
    }
    (tmp_path / "wine.json").write_text(json.dumps(schema))
    config = mlops_config()
    config["models"].append(
        {
            "name": "wine",
            "problemType": "multiclass_classification",
            "targetColumn": "cultivar",
            "schemaFile": str(tmp_path / "wine.json"),
            "dataPrefix": "wine/",
            "hyperparameters": {"objective": "multi:softprob", "num_round": 50, **hyperparameters},
            "qualityGate": {"metric": "f1", "threshold": 0.8},
        }
    )
    return config


def test_multiclass_accepts_every_metric_evaluate_writes(tmp_path: Path) -> None:
    """f1 (an Evaluate metric for multiclass too) is a valid gate: config and steps agree."""
    parsed = parse_config(_wine(tmp_path, num_class=3), project_root=ROOT)
    assert parsed.model("wine").quality_gate.metric == "f1"


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        ({"num_class": 4}, "num_class: got 4: the schema declares 3 classes (a, b, c)"),
        ({}, "num_class: missing: multi:softprob needs the number of classes"),
        (
            {"num_class": 3, "objective": "multi:softmax"},
            "objective: got 'multi:softmax': it predicts one class index per row",
        ),
        (
            {"num_class": 3, "eval_metric": "auc"},
            "eval_metric: got 'auc': 'auc' is not an evaluation metric of multi:softprob",
        ),
    ],
)
def test_multiclass_hyperparameters_are_checked_with_the_schema(
    tmp_path: Path, hyperparameters: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_wine(tmp_path, **hyperparameters), project_root=ROOT)
    assert f"models[1:wine].hyperparameters.{expected}" in str(caught.value)


def test_keys_with_spaces_are_quoted_and_nested_values_get_one_fix() -> None:
    config = mlops_config()
    model(config)["hyperparameters"]["max depth"] = 4
    model(config)["hyperparameters"]["eta"] = {"value": 0.1}
    with pytest.raises(ConfigError) as caught:
        parse_config(config, project_root=ROOT)
    problems = caught.value.problems
    assert (
        "models[0:breast-cancer].hyperparameters['max depth']: got 4: is not a hyperparameter "
        "of the built-in XGBoost algorithm (it rejects unknown ones). Fix: did you mean "
        "'max_depth'?"
    ) in problems
    (eta,) = [p for p in problems if ".eta:" in p]
    assert eta == (
        "models[0:breast-cancer].hyperparameters.eta: got {...}: a hyperparameter value is a "
        'JSON string or number. Fix: write it as a number or a string, e.g. 0.1 or "hist"'
    )


def test_a_tag_value_cdk_would_refuse_is_a_config_error() -> None:
    config = mlops_config()
    stage(config)["tags"]["cost center"] = "x" * 300
    with pytest.raises(ConfigError, match=r"stages.dev.tags: .*\['cost center'\].*at most 256"):
        parse_config(config, project_root=ROOT)


@pytest.mark.parametrize(
    ("vpc", "account", "expected"),
    [
        ({"cidr": "10.0.0.0/24", "maxAzs": 2}, None,
         "a /24 holds 1, fewer than maxAzs (2). Fix: use a /23 or larger block"),
        ({"cidr": "10.0.0.0/16", "maxAzs": 3}, None,
         "stages.dev.vpc.maxAzs: got 3: without an account CDK cannot look up"),
    ],
)  # fmt: skip
def test_network_settings_that_cannot_be_built_are_rejected(
    vpc: dict[str, Any], account: str | None, expected: str
) -> None:
    config = mlops_config()
    stage(config)["vpc"] = vpc
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_config(config, project_root=ROOT)


def test_three_zones_with_an_account_are_accepted() -> None:
    config = mlops_config()
    stage(config).update(vpc={"cidr": "10.0.0.0/22", "maxAzs": 3}, account="111122223333")
    assert parse_config(config, project_root=ROOT).stages["dev"].vpc.max_azs == 3

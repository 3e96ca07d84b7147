"""Shape check, placeholder hygiene, size limit, Mermaid output, input validation."""

from __future__ import annotations

import copy
import json
import re

import pytest
from pipeline_helpers import ALL_INPUTS, BINARY, steps_by_name

from mlops.dag_diagram import to_mermaid
from mlops.pipeline_definition import (
    MAX_BODY_CHARS,
    SUBSTITUTIONS,
    DefinitionTooLargeError,
    PipelineInputs,
    build_definition,
    check_body_size,
)
from mlops.shape_check import check_definition


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_shape_check_passes(built, key):
    assert check_definition(built[key].body) == []


def test_shape_check_reports_wrong_type_and_missing_field(definitions):
    broken = copy.deepcopy(definitions["binary"])
    steps = steps_by_name(broken)
    cluster = steps["Preprocess"]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    cluster["InstanceCount"] = "2"
    del steps["Train"]["Arguments"]["RoleArn"]
    steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Image"] = (
        "has spaces"
    )
    steps["Evaluate"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3DataType"] = "Bogus"
    problems = {(p.step, p.path): p.problem for p in check_definition(broken)}
    assert (
        "invalid type"
        in problems[("Preprocess", "ProcessingResources.ClusterConfig.InstanceCount")]
    )
    assert "missing required field" in problems[("Train", "RoleArn")]
    assert (
        "does not match"
        in problems[("RegisterModel", "InferenceSpecification.Containers[0].Image")]
    )
    assert "not one of" in problems[("Evaluate", "ProcessingInputs[0].S3Input.S3DataType")]
    assert len(problems) == 4


def test_shape_check_unknown_member(definitions):
    broken = copy.deepcopy(definitions["regression"])
    steps_by_name(broken)["Train"]["Arguments"]["NotAField"] = 1
    (problem,) = check_definition(broken)
    assert problem.step == "Train"
    assert "unknown field" in problem.problem


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_placeholder_hygiene(built, key):
    body = built[key].body
    assert "${Token[" not in body
    assert "Token[" not in body
    assert "zzph" not in body  # no inert stand-in left behind
    referenced = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", body))
    assert referenced == set(built[key].substitutions)
    # Every other "${" is escaped for Fn::Sub.
    assert not re.findall(r"\$\{(?![A-Za-z0-9_]+\}|!)", body)
    assert set(built[key].substitutions) <= set(SUBSTITUTIONS) | {
        n for n in referenced if re.fullmatch(r"(SubnetId|SecurityGroupId)\d+", n)
    }


def test_substitution_names(built):
    assert set(built["binary"].substitutions) == {
        "ExecutionRoleArn",
        "ArtifactsBucket",
        "KmsKeyArn",
        "ModelPackageGroupArn",
        "CodeUri",
        "SourceUri",
        "SchemaUri",
        "RawDataUri",
    }
    assert set(built["multiclass"].substitutions) >= {
        "SubnetId0",
        "SubnetId1",
        "SecurityGroupId0",
        "MlflowResourceArn",
    }


def test_literal_dollar_brace_is_escaped():
    """A literal ``${`` (none is written today: every free-text input is validated) would
    reach CloudFormation as ``${!``, which Fn::Sub turns back into ``${``."""
    from mlops.pipeline_definition import _substitute_placeholders

    body, used = _substitute_placeholders('{"note":"${x}","role":"ROLE"}', {"Role": "ROLE"})
    assert body == '{"note":"${!x}","role":"${Role}"}' and used == {"Role"}


def test_body_is_canonical_json(built):
    body = built["binary"].body
    assert body.isascii()
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    assert len(body) < MAX_BODY_CHARS


def test_check_body_size():
    check_body_size("x" * MAX_BODY_CHARS)
    with pytest.raises(DefinitionTooLargeError, match="1,048,577 characters"):
        check_body_size("x" * (MAX_BODY_CHARS + 1))


def test_invalid_inputs_list_every_problem():
    bad = PipelineInputs(
        **{
            **BINARY.__dict__,
            "model_name": "Breast_Cancer",
            "problem_type": "clustering",
            "region": "${Token[AWS.Region.1]}",
            "training_instance_count": 0,
            "subnet_count": 1,
            "cache_expire_after": "30 days",
            "mlflow_experiment_name": "dev experiment",
        }
    )
    with pytest.raises(ValueError) as error:
        build_definition(bad)
    message = str(error.value)
    for field in (
        "model_name",
        "problem_type",
        "region",
        "training_instance_count",
        "subnet_count",
        "cache_expire_after",
        "mlflow_experiment_name",
    ):
        assert field in message


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_mermaid(built, key):
    chart = to_mermaid(built[key].body)
    assert chart.startswith("flowchart TD\n")
    for name in ("Preprocess", "Train", "Evaluate", "CheckQuality", "RegisterModel"):
        assert f"    {name}" in chart
    assert "QualityFailed[[" in chart
    assert "    Preprocess --> Train\n" in chart
    assert "    Train --> Evaluate\n" in chart
    assert "    Evaluate --> CheckQuality\n" in chart
    assert "    CheckQuality -- true --> RegisterModel\n" in chart
    assert "    CheckQuality -- false --> QualityFailed\n" in chart


def test_mermaid_depends_on():
    definition = {
        "Steps": [
            {"Name": "A", "Type": "Processing", "Arguments": {}},
            {"Name": "B", "Type": "Processing", "Arguments": {}, "DependsOn": ["A"]},
        ]
    }
    assert "    A -. depends on .-> B\n" in to_mermaid(definition)

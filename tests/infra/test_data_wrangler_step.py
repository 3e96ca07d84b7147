"""A model's Data Wrangler flow as the first step of its training pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cdk_helpers import all_templates, make_app, mlops_config, resources_of
from lint_helpers import lint_findings

import app as platform_app
from mlops import data_wrangler
from mlops.config import ConfigError, parse_config
from mlops.pipeline_definition import STEP_DATA_WRANGLER, STEP_INGEST, STEP_PREPROCESS
from mlops.pipeline_docs import FLOW_EXAMPLE, flow_example_config, render_flow_example
from mlops.shape_check import check_definition

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / FLOW_EXAMPLE[1]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The docs' example app: the default model with the fixture flow, in dev."""
    app = make_app(flow_example_config(mlops_config()), tmp_path_factory.mktemp("flow"))
    stages = platform_app.build(app)
    app.synth()
    return stages


@pytest.fixture(scope="module")
def steps(example: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pipeline = example["dev"].training.pipelines[FLOW_EXAMPLE[0]]
    body = pipeline.definition.definition()
    return {s["Name"]: s for s in body["Steps"]}


def test_the_flow_runs_first_in_the_data_wrangler_container(
    steps: dict[str, dict[str, Any]],
) -> None:
    flow = data_wrangler.load_flow(FLOW)
    step = steps[STEP_DATA_WRANGLER]
    args = step["Arguments"]
    assert "sagemaker-data-wrangler-container" in args["AppSpecification"]["ImageUri"]
    assert ".dkr.ecr.us-east-1.amazonaws.com/" in args["AppSpecification"]["ImageUri"]
    assert args["AppSpecification"]["ContainerArguments"] == data_wrangler.job_arguments(flow)
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert list(inputs) == [data_wrangler.FLOW_INPUT_NAME, *(s.name for s in flow.sources)]
    assert inputs["flow"]["S3Uri"] == "${FlowUri}"
    assert inputs["flow"]["LocalPath"] == data_wrangler.FLOW_DIR
    (source,) = flow.sources
    assert inputs[source.name]["S3Uri"] == {"Get": "Parameters.InputDataUri"}
    assert inputs[source.name]["LocalPath"] == data_wrangler.source_dir(source.name)
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == flow.output_name
    assert output["S3Output"]["LocalPath"] == data_wrangler.OUTPUT_DIR
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
    network = args["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True
    assert network["VpcConfig"]["Subnets"] and network["VpcConfig"]["SecurityGroupIds"]


def test_every_step_that_read_raw_files_reads_the_flow_output(
    steps: dict[str, dict[str, Any]],
) -> None:
    output = data_wrangler.load_flow(FLOW).output_name
    expected = {
        "Get": f"Steps.{STEP_DATA_WRANGLER}.ProcessingOutputConfig.Outputs['{output}']"
        ".S3Output.S3Uri"
    }
    for name in (STEP_PREPROCESS, STEP_INGEST):
        inputs = {
            i["InputName"]: i["S3Input"] for i in steps[name]["Arguments"]["ProcessingInputs"]
        }
        assert inputs["raw"]["S3Uri"] == expected, name


def test_the_definition_is_shape_checked_and_lint_clean(example: dict[str, Any]) -> None:
    pipeline = example["dev"].training.pipelines[FLOW_EXAMPLE[0]]
    assert check_definition(pipeline.definition.definition()) == []
    templates = all_templates(example.values())
    nested = templates["dev/Training/BreastCancerTraining"]
    assert lint_findings(nested, "us-east-1") == []
    # The flow file ships as an asset the pipeline's role reads, and only that object.
    (pipeline_resource,) = resources_of(nested, "AWS::SageMaker::Pipeline").values()
    body = json.dumps(pipeline_resource["Properties"]["PipelineDefinition"])
    assert "FlowUri" in body
    policies = json.dumps(resources_of(nested, "AWS::IAM::Policy"))
    assert ".flow" in policies


def test_the_example_diagram_is_current_and_shows_the_flow(example: dict[str, Any]) -> None:
    (page,) = render_flow_example(example["dev"].training.pipelines).items()
    path, text = page
    assert path.exists(), f"{path} is missing: run `make docs`"
    assert path.read_text() == text, f"{path} is stale: run `make docs`"
    assert f"{STEP_DATA_WRANGLER} --> {STEP_PREPROCESS}" in text
    assert f"{STEP_DATA_WRANGLER} --> {STEP_INGEST}" in text


def _config_with_flow(flow: str) -> dict[str, Any]:
    config = mlops_config()
    config["models"][0]["dataWranglerFlow"] = flow
    return config


def test_a_missing_flow_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_config_with_flow("data/flows/nope.flow"), project_root=ROOT)
    (problem,) = error.value.problems
    assert problem.startswith(
        "models[0:breast-cancer].dataWranglerFlow: got 'data/flows/nope.flow'"
    )
    assert "no such file" in problem


def test_a_flow_whose_output_misses_schema_columns_is_a_config_error(tmp_path: Path) -> None:
    """The flow's output is checked against the model's schema before anything is built."""
    shutil.copytree(ROOT / "data", tmp_path / "data")
    doc = json.loads(FLOW.read_text())
    drop = next(n for n in doc["nodes"] if n["parameters"].get("operator") == "Drop column")
    drop["parameters"]["drop_column_parameters"]["column_to_drop"] = ["sample_batch", "diagnosis"]
    (tmp_path / "my.flow").write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as error:
        parse_config(_config_with_flow("my.flow"), project_root=tmp_path)
    (problem,) = error.value.problems
    assert problem.startswith("models[0:breast-cancer].dataWranglerFlow: ")
    assert "'diagnosis'" in problem and "target column" in problem


def test_a_flow_with_custom_code_is_a_config_error(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "data", tmp_path / "data")
    doc = json.loads(FLOW.read_text())
    transform = next(n for n in doc["nodes"] if n["parameters"].get("operator") == "Drop column")
    transform["operator"] = "sagemaker.spark.custom_pyspark_0.1"
    (tmp_path / "my.flow").write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as error:
        parse_config(_config_with_flow("my.flow"), project_root=tmp_path)
    (problem,) = error.value.problems
    assert transform["node_id"] in problem and "custom_pyspark" in problem

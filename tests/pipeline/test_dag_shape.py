"""The DAG: step names, dependencies, condition direction, parameters, job settings."""

from __future__ import annotations

import pytest
from pipeline_helpers import ALL_INPUTS, steps_by_name

from mlops.dag_diagram import dag_edges
from mlops.pipeline_definition import PROCESSING_SOURCE_DIR
from pipeline_steps.steplib.contract import REGISTERED_APPROVAL_STATUS, metric_json_path

EXPECTED_STEPS = {
    "Preprocess": "Processing",
    "Train": "Training",
    "Evaluate": "Processing",
    "CheckQuality": "Condition",
    "RegisterModel": "RegisterModel",
    "QualityFailed": "Fail",
}
EXPECTED_PARAMETERS = [
    "InputDataUri",
    "ProcessingInstanceType",
    "ProcessingInstanceCount",
    "TrainingInstanceType",
    "TrainingInstanceCount",
]


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_steps_and_types(definitions, key):
    steps = steps_by_name(definitions[key])
    assert {name: step["Type"] for name, step in steps.items()} == EXPECTED_STEPS
    assert [s["Name"] for s in definitions[key]["Steps"]] == [
        "Preprocess",
        "Train",
        "Evaluate",
        "CheckQuality",
    ]


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_edges(definitions, key):
    edges = set(dag_edges(definitions[key]))
    assert {
        ("Preprocess", "Train", "data"),
        ("Train", "Evaluate", "data"),
        ("Preprocess", "Evaluate", "data"),
        ("Evaluate", "CheckQuality", "data"),
        ("CheckQuality", "RegisterModel", "true"),
        ("CheckQuality", "QualityFailed", "false"),
        ("Train", "RegisterModel", "data"),
        ("Preprocess", "RegisterModel", "data"),
    } <= edges
    # nothing flows backwards into preprocessing
    assert not [e for e in edges if e[1] == "Preprocess"]


@pytest.mark.parametrize(
    ("key", "condition_type"),
    [
        ("binary", "GreaterThanOrEqualTo"),
        ("multiclass", "GreaterThanOrEqualTo"),
        ("regression", "LessThanOrEqualTo"),
    ],
)
def test_condition_direction_and_json_path(definitions, key, condition_type):
    inputs = ALL_INPUTS[key]
    check = steps_by_name(definitions[key])["CheckQuality"]["Arguments"]
    (condition,) = check["Conditions"]
    assert condition["Type"] == condition_type
    # A literal, not a start-time parameter: starting the pipeline cannot lower the bar.
    assert condition["RightValue"] == inputs.quality_threshold
    json_get = condition["LeftValue"]["Std:JsonGet"]
    assert json_get["Path"] == f"{inputs.problem_type}_metrics.{inputs.quality_metric}.value"
    assert json_get["Path"] == metric_json_path(inputs.problem_type, inputs.quality_metric)
    assert json_get["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    assert [s["Name"] for s in check["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in check["ElseSteps"]] == ["QualityFailed"]


def test_fail_message_shows_metric_and_threshold(definitions):
    fail = steps_by_name(definitions["regression"])["QualityFailed"]["Arguments"]
    values = fail["ErrorMessage"]["Std:Join"]["Values"]
    assert str(ALL_INPUTS["regression"].quality_threshold) in values
    assert any("Std:JsonGet" in v for v in values if isinstance(v, dict))
    assert any("rmse <=" in v for v in values if isinstance(v, str))


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_parameters(definitions, key):
    params = {p["Name"]: p for p in definitions[key]["Parameters"]}
    assert list(params) == EXPECTED_PARAMETERS
    inputs = ALL_INPUTS[key]
    assert params["InputDataUri"]["DefaultValue"] == "${RawDataUri}"
    assert params["TrainingInstanceCount"]["DefaultValue"] == inputs.training_instance_count


def test_evaluate_property_file(definitions):
    evaluate = steps_by_name(definitions["binary"])["Evaluate"]
    assert evaluate["PropertyFiles"] == [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]


@pytest.mark.parametrize("name", ["Preprocess", "Train", "Evaluate"])
def test_job_steps_retry_kms_role(definitions, name):
    step = steps_by_name(definitions["binary"])[name]
    exception_types = [set(p["ExceptionType"]) for p in step["RetryPolicies"]]
    assert {"Step.SERVICE_FAULT", "Step.THROTTLING"} in exception_types
    assert {
        "SageMaker.CAPACITY_ERROR",
        "SageMaker.RESOURCE_LIMIT",
        "SageMaker.JOB_INTERNAL_ERROR",
    } in exception_types
    args = step["Arguments"]
    assert args["RoleArn"] == "${ExecutionRoleArn}"
    if step["Type"] == "Processing":
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert "VpcConfig" not in args["NetworkConfig"]
    else:
        assert args["ResourceConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
        assert args["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        assert args["EnableNetworkIsolation"] is True
    assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}


def test_processing_runner_contract(definitions):
    steps = steps_by_name(definitions["binary"])
    # Evaluate loads the XGBoost booster, so it runs in the XGBoost image.
    for name, script, image in (
        ("Preprocess", "preprocess.py", "sagemaker-scikit-learn:1.4-2-py312"),
        ("Evaluate", "evaluate.py", "sagemaker-xgboost:3.0-5"),
    ):
        args = steps[name]["Arguments"]
        app = args["AppSpecification"]
        assert app["ContainerEntrypoint"][:2] == ["/bin/sh", "-c"]
        # The runner gets the source directory, then the script: every container path
        # a step uses is written in the definition.
        assert app["ContainerArguments"][:2] == [PROCESSING_SOURCE_DIR, script]
        assert image in app["ImageUri"]
        inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
        assert inputs["code"]["S3Uri"] == "${CodeUri}"
        assert inputs["source"] == {
            "S3Uri": "${SourceUri}",
            "LocalPath": "/opt/ml/processing/input/source",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        }
        assert inputs["schema"]["S3Uri"] == "${SchemaUri}"
    pre = steps["Preprocess"]["Arguments"]
    outputs = [o["OutputName"] for o in pre["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["train", "validation", "test", "baseline", "transform"]
    for output in pre["ProcessingOutputConfig"]["Outputs"]:
        values = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
        assert values[0] == "s3://${ArtifactsBucket}/pipelines/breast-cancer/executions"
        assert values[1] == {"Get": "Execution.PipelineExecutionId"}


def test_training_settings(definitions):
    plain = steps_by_name(definitions["binary"])["Train"]["Arguments"]
    assert "sagemaker-xgboost:3.0-5" in plain["AlgorithmSpecification"]["TrainingImage"]
    assert plain["HyperParameters"] == ALL_INPUTS["binary"].hyperparameters
    channels = {c["ChannelName"]: c for c in plain["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    assert all(c["ContentType"] == "text/csv" for c in channels.values())
    assert "CheckpointConfig" not in plain
    assert "EnableManagedSpotTraining" not in plain

    spot = steps_by_name(definitions["multiclass"])["Train"]["Arguments"]
    assert spot["EnableManagedSpotTraining"] is True
    assert spot["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    checkpoint = spot["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"]
    assert checkpoint[0] == "s3://${ArtifactsBucket}/pipelines/wine/executions"
    channels = {c["ChannelName"]: c for c in spot["InputDataConfig"]}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == (
        "ShardedByS3Key"
    )
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == (
        "FullyReplicated"
    )
    assert spot["VpcConfig"] == {
        "SecurityGroupIds": ["${SecurityGroupId0}"],
        "Subnets": ["${SubnetId0}", "${SubnetId1}"],
    }
    # MLflow: SageMaker logs the training job and the execution (no container calls out).
    mlflow = {"MlflowResourceArn": "${MlflowResourceArn}", "MlflowExperimentName": "wine"}
    assert spot["MlflowConfig"] == mlflow
    assert definitions["multiclass"]["MlflowConfig"] == mlflow
    assert "Environment" not in spot or not any("MLFLOW" in k for k in spot["Environment"])
    assert definitions["binary"]["MlflowConfig"] is None
    assert "MlflowConfig" not in steps_by_name(definitions["binary"])["Train"]["Arguments"]
    assert "CacheConfig" not in steps_by_name(definitions["multiclass"])["Train"]


def test_register_model(definitions):
    register = steps_by_name(definitions["binary"])["RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "${ModelPackageGroupArn}"
    # Always pending: no start-time parameter can register a version as approved.
    assert register["ModelApprovalStatus"] == REGISTERED_APPROVAL_STATUS
    spec = register["InferenceSpecification"]
    sklearn, xgboost = spec["Containers"]
    assert "sagemaker-scikit-learn" in sklearn["Image"]
    assert sklearn["ModelDataUrl"]["Std:Join"]["Values"] == [
        {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['transform'].S3Output.S3Uri"},
        "model.tar.gz",
    ]
    assert "sagemaker-xgboost" in xgboost["Image"]
    assert xgboost["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert spec["SupportedResponseMIMETypes"] == ["text/csv", "application/json"]
    metrics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert metrics["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    baseline_dir = {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"
    }
    evaluation_dir = metrics["S3Uri"]["Std:Join"]["Values"][0]
    # The project's own baseline: what the scheduled drift checks read.
    own = register["ModelMetrics"]["ModelDataQuality"]["Statistics"]
    assert own["S3Uri"]["Std:Join"]["Values"] == [baseline_dir, "statistics.json"]
    # Model Monitor's files of the same rows, and the gate's model-quality constraints.
    drift = register["DriftCheckBaselines"]
    assert {k: v["S3Uri"]["Std:Join"]["Values"] for k, v in drift["ModelDataQuality"].items()} == {
        "Statistics": [baseline_dir, "model-monitor/statistics.json"],
        "Constraints": [baseline_dir, "model-monitor/constraints.json"],
    }
    assert {k: v["S3Uri"]["Std:Join"]["Values"] for k, v in drift["ModelQuality"].items()} == {
        "Statistics": [evaluation_dir, "evaluation.json"],
        "Constraints": [evaluation_dir, "model_quality_constraints.json"],
    }


@pytest.mark.parametrize("key", list(ALL_INPUTS))
def test_scaling_past_one_instance(definitions, key):
    """Preprocess writes one training file per training instance (ShardedByS3Key needs as
    many) and runs on ProcessingInstanceCount instances; Evaluate on one (global metrics)."""
    steps = steps_by_name(definitions[key])
    pre = steps["Preprocess"]["Arguments"]
    args = pre["AppSpecification"]["ContainerArguments"]
    shards = args[args.index("--train-shards") + 1]
    assert shards == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.TrainingInstanceCount"}]}
    }
    assert pre["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {
        "Get": "Parameters.ProcessingInstanceCount"
    }
    evaluate = steps["Evaluate"]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert evaluate["InstanceCount"] == 1


def test_instance_type_overrides_keep_the_configured_storage_kind(definitions):
    params = {p["Name"]: p for p in definitions["binary"]["Parameters"]}
    for name in ("ProcessingInstanceType", "TrainingInstanceType"):
        allowed = params[name]["EnumValues"]
        assert params[name]["DefaultValue"] in allowed and "ml.m5.2xlarge" in allowed
        # No type with local NVMe storage: the job volumes carry the stage's key.
        assert not [t for t in allowed if t.startswith(("ml.g4dn.", "ml.r5d.", "ml.p4d."))]
    train = steps_by_name(definitions["binary"])["Train"]["Arguments"]
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"


def test_a_type_with_local_storage_gets_no_volume_key():
    """SageMaker refuses VolumeKmsKeyId on instance types with local NVMe storage (the
    hardware encrypts it); such a pipeline offers only such types as overrides."""
    import dataclasses

    from mlops.pipeline_definition import build_definition

    inputs = dataclasses.replace(
        ALL_INPUTS["binary"], model_name="gpu", training_instance_type="ml.g4dn.xlarge"
    )
    definition = build_definition(inputs).definition()
    train = steps_by_name(definition)["Train"]["Arguments"]
    assert "VolumeKmsKeyId" not in train["ResourceConfig"]
    assert train["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"  # outputs still are
    (param,) = [p for p in definition["Parameters"] if p["Name"] == "TrainingInstanceType"]
    assert "ml.g4dn.2xlarge" in param["EnumValues"] and "ml.m5.xlarge" not in param["EnumValues"]

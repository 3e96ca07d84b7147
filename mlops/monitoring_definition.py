"""The definition of a stage's monitoring pipeline (the scheduled engine; ADR 0006).

One SageMaker Pipeline per stage; each schedule starts it for one model and one capture
source with that model's parameters. Four steps:

1. ``SelectWindow`` (Lambda, ``handlers/monitoring_window``): the version the stage serves,
   its registered baseline, and manifests of the window's captured records and ground-truth
   labels.
2. ``DriftCheck`` and 3. ``QualityCheck`` (processing jobs, network-isolated in the VPC,
   the stage's key on volumes and outputs): ``pipeline_steps/drift_check.py`` and
   ``quality_check.py``, each writing a report with its CloudWatch ``MetricData`` entries
   under the run's report prefix.
4. ``PublishMetrics`` (Lambda, ``handlers/monitoring_publish``): those entries to
   CloudWatch. The jobs reach no AWS API themselves.

Built as plain JSON (like the batch inference pipeline's): no SDK call, no upload; CDK
values arrive through ``Fn::Sub`` variables named in :data:`SUBSTITUTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mlops.pipeline_definition import PROCESSING_SOURCE_DIR

STEP_SELECT_WINDOW = "SelectWindow"
STEP_DRIFT_CHECK = "DriftCheck"
STEP_QUALITY_CHECK = "QualityCheck"
STEP_PUBLISH = "PublishMetrics"

#: Where each check writes under the run's report prefix, and the report file in it
#: (the publish handler reads ``<ReportUri><DRIFT_OUTPUT>/<DRIFT_REPORT>``).
DRIFT_OUTPUT, DRIFT_REPORT = "drift", "drift_report.json"
QUALITY_OUTPUT, QUALITY_REPORT = "quality", "quality_report.json"

#: What SelectWindow returns (the handler's keys).
WINDOW_OUTPUTS = (
    "ModelPackageArn",
    "BaselineUri",
    "CaptureManifestUri",
    "QualityCaptureManifestUri",
    "GroundTruthManifestUri",
    "ReportUri",
    "WindowStart",
    "WindowEnd",
    "CaptureObjectCount",
    "GroundTruthObjectCount",
)

#: Pipeline parameters a schedule sets (all strings: each is passed on as text).
PARAMETERS = (
    "ModelName",
    "CaptureSource",
    "ProblemType",
    "PsiThreshold",
    "KsPValueThreshold",
    "MissingRateIncrease",
    "WindowMinutes",
    "GroundTruthDelayMinutes",
)

#: Fn::Sub variables of the body, with what the construct supplies.
SUBSTITUTIONS: Mapping[str, str] = MappingProxyType(
    {
        "ExecutionRoleArn": "ARN of the role the processing jobs run as",
        "WindowFunctionArn": "ARN of the SelectWindow function",
        "PublishFunctionArn": "ARN of the PublishMetrics function",
        "KmsKeyArn": "ARN of the stage's data key (job outputs, and volumes unless on instance storage)",
        "CodeUri": "s3:// URI of the POSIX sh runner file (pipeline_steps/run_step.sh)",
        "SourceUri": "s3:// URI of the zipped pipeline_steps/ directory",
    }
)

BASELINE_DIR = "/opt/ml/processing/baseline"
CAPTURE_DIR = "/opt/ml/processing/input/capture"
GROUND_TRUTH_DIR = "/opt/ml/processing/input/ground-truth"
OUTPUT_DIR = "/opt/ml/processing/output"
CODE_DIR = "/opt/ml/processing/input/code"
#: Runs the one *.sh file the code input delivers (asset keys are hashes).
ENTRYPOINT = ["/bin/sh", "-c", f'exec /bin/sh {CODE_DIR}/*.sh "$@"', f"{CODE_DIR}/run_step.sh"]


def _get(name: str) -> dict[str, str]:
    return {"Get": f"Parameters.{name}"}


def _window(output: str) -> dict[str, str]:
    return {"Get": f"Steps.{STEP_SELECT_WINDOW}.OutputParameters['{output}']"}


def _s3_input(name: str, uri: Any, local: str, data_type: str = "S3Prefix") -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": data_type,
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def monitoring_definition(
    *,
    stage_name: str,
    image_uri: str,
    instance_type: str,
    volume_encrypted: bool,
    subnets: list[str],
    security_groups: list[str],
    max_runtime_seconds: int = 3600,
) -> dict[str, Any]:
    """The pipeline definition; ``subnets``/``security_groups`` may be ``${...}`` variables."""
    resources: dict[str, Any] = {
        "InstanceCount": 1,
        "InstanceType": instance_type,
        "VolumeSizeInGB": 30,
    }
    if volume_encrypted:
        resources["VolumeKmsKeyId"] = "${KmsKeyArn}"
    common_args = [
        "--baseline-dir", BASELINE_DIR, "--capture-dir", CAPTURE_DIR,
        "--output-dir", OUTPUT_DIR, "--model-name", _get("ModelName"),
        "--stage", stage_name, "--capture-source", _get("CaptureSource"),
        # The run's window: the metrics' timestamp (the quality check's labels may be of an
        # earlier window, but its metrics land in this run's period, where the alarm looks).
        "--window-start", _window("WindowStart"), "--window-end", _window("WindowEnd"),
    ]  # fmt: skip
    code_inputs = [
        _s3_input("source", "${SourceUri}", PROCESSING_SOURCE_DIR),
        _s3_input("code", "${CodeUri}", CODE_DIR),
        _s3_input("baseline", _window("BaselineUri"), BASELINE_DIR),
    ]

    def job(step: str, script: str, inputs: list[dict], output: str, args: list) -> dict:
        return {
            "Name": step,
            "Type": "Processing",
            "Arguments": {
                "ProcessingResources": {"ClusterConfig": resources},
                "AppSpecification": {
                    "ImageUri": image_uri,
                    "ContainerEntrypoint": ENTRYPOINT,
                    "ContainerArguments": [PROCESSING_SOURCE_DIR, script, *common_args, *args],
                },
                "RoleArn": "${ExecutionRoleArn}",
                "ProcessingInputs": [*code_inputs, *inputs],
                "ProcessingOutputConfig": {
                    "KmsKeyId": "${KmsKeyArn}",
                    "Outputs": [
                        {
                            "OutputName": output,
                            "S3Output": {
                                "S3Uri": {
                                    "Std:Join": {"On": "", "Values": [_window("ReportUri"), output]}
                                },
                                "LocalPath": OUTPUT_DIR,
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ],
                },
                "NetworkConfig": {
                    "EnableNetworkIsolation": True,
                    "EnableInterContainerTrafficEncryption": True,
                    "VpcConfig": {"Subnets": subnets, "SecurityGroupIds": security_groups},
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
            },
        }

    drift = job(
        STEP_DRIFT_CHECK,
        "drift_check.py",
        [_s3_input("capture", _window("CaptureManifestUri"), CAPTURE_DIR, "ManifestFile")],
        DRIFT_OUTPUT,
        [
            "--psi-threshold", _get("PsiThreshold"),
            "--ks-p-value-threshold", _get("KsPValueThreshold"),
            "--missing-rate-increase", _get("MissingRateIncrease"),
        ],
    )  # fmt: skip
    quality = job(
        STEP_QUALITY_CHECK,
        "quality_check.py",
        [
            _s3_input("capture", _window("QualityCaptureManifestUri"), CAPTURE_DIR, "ManifestFile"),
            _s3_input(
                "ground-truth", _window("GroundTruthManifestUri"), GROUND_TRUTH_DIR, "ManifestFile"
            ),
        ],
        QUALITY_OUTPUT,
        ["--ground-truth-dir", GROUND_TRUTH_DIR, "--problem-type", _get("ProblemType")],
    )
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [{"Name": name, "Type": "String"} for name in PARAMETERS],
        "Steps": [
            {
                "Name": STEP_SELECT_WINDOW,
                "Type": "Lambda",
                "FunctionArn": "${WindowFunctionArn}",
                "Arguments": {
                    "ModelName": _get("ModelName"),
                    "CaptureSource": _get("CaptureSource"),
                    "WindowMinutes": _get("WindowMinutes"),
                    "GroundTruthDelayMinutes": _get("GroundTruthDelayMinutes"),
                    "ExecutionId": {"Get": "Execution.PipelineExecutionId"},
                },
                "OutputParameters": [
                    {"OutputName": name, "OutputType": "String"} for name in WINDOW_OUTPUTS
                ],
            },
            drift,
            quality,
            {
                "Name": STEP_PUBLISH,
                "Type": "Lambda",
                "DependsOn": [STEP_DRIFT_CHECK, STEP_QUALITY_CHECK],
                "FunctionArn": "${PublishFunctionArn}",
                "Arguments": {
                    "ModelName": _get("ModelName"),
                    "CaptureSource": _get("CaptureSource"),
                    "ReportUri": _window("ReportUri"),
                },
                "OutputParameters": [
                    {"OutputName": "MetricCount", "OutputType": "String"},
                    {"OutputName": "DriftDetected", "OutputType": "String"},
                ],
            },
        ],
    }

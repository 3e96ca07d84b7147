"""Offline, deterministic SageMaker Pipeline definition builder.

A pure library (no CDK imports). :func:`build_definition` drives the SageMaker Python
SDK v3 with inert, well-formed placeholder values, renders the pipeline definition
JSON, then swaps each placeholder for an ``Fn::Sub`` variable reference (``${Name}``).
The CDK construct embeds the returned body as ``PipelineDefinitionBody`` with
``Fn::Sub(body, {Name: cdk_value, ...})`` for every name in
:attr:`BuiltDefinition.substitutions`.

Why placeholders: CDK tokens break the SDK (a token in an ``s3://`` URI raises, a token
role ARN makes the SDK call IAM). See ``docs/adr/0002-pipeline-definition-built-offline.md``.

DAG (step names are a contract: other code and operators refer to them)::

    Preprocess -> Train -> Evaluate -> CheckQuality --true--> RegisterModel
                                                    \\-false-> QualityFailed
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any

from mlops import data_wrangler
from mlops.instance_storage import has_instance_storage, same_storage_types
from mlops.pipeline_sdk_env import SDK_CONFIG, offline_sdk
from pipeline_steps.steplib import contract

__all__ = [
    "MAX_BODY_CHARS",
    "PROCESSING_SOURCE_DIR",
    "STEP_BUILD_TRAINING_SET",
    "STEP_CHECK_QUALITY",
    "STEP_DATA_WRANGLER",
    "STEP_EVALUATE",
    "STEP_FAIL",
    "STEP_INGEST",
    "STEP_PREPROCESS",
    "STEP_REGISTER",
    "STEP_TRAIN",
    "SUBSTITUTIONS",
    "BuiltDefinition",
    "DefinitionTooLargeError",
    "PipelineInputs",
    "all_steps",
    "build_definition",
    "check_body_size",
]

# Step names: stable, PascalCase.
STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_CHECK_QUALITY = "CheckQuality"
STEP_REGISTER = "RegisterModel"
STEP_FAIL = "QualityFailed"
STEP_INGEST = "IngestFeatures"
STEP_BUILD_TRAINING_SET = "BuildTrainingSet"
STEP_DATA_WRANGLER = "DataWranglerFlow"

# --- where a pipeline writes, under the artifacts bucket (one layout; the data stack's
# grants for model readers derive from it) ---------------------------------------------
ARTIFACTS_ROOT = "pipelines"
EXECUTIONS = "executions"  # <root>/<model>/executions/<execution id>/<step>/<output>/
TRAINING = "training"  # <root>/<model>/training/<job name>/output/model.tar.gz
#: Evaluate's second output: the version's single-container model.tar.gz.
SERVING_OUTPUT = "serving"
#: The name of that form's additional inference specification in a model package.
SINGLE_CONTAINER_SPECIFICATION = "single-container"
STEP_OUTPUTS = {
    STEP_PREPROCESS: ("preprocess", ("train", "validation", "test", "baseline", "transform")),
    STEP_EVALUATE: ("evaluation", ()),
    STEP_INGEST: ("ingestion", ("ingestion",)),
    STEP_BUILD_TRAINING_SET: ("training-set", ("training-set",)),
    STEP_DATA_WRANGLER: ("data-wrangler", ("prepared",)),
}


def all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step of a definition's ``Steps``, the Condition steps' branches included."""
    found: list[dict[str, Any]] = []
    for step in steps:
        found.append(step)
        if step.get("Type") == "Condition":
            args = step.get("Arguments", {})
            found.extend(all_steps(args.get("IfSteps", [])))
            found.extend(all_steps(args.get("ElseSteps", [])))
    return found


def model_prefix(model_name: str) -> str:
    """The key prefix of everything one model's pipeline writes (``pipelines/<model>/``)."""
    return f"{ARTIFACTS_ROOT}/{model_name}/"


def baseline_key_pattern(model_name: str = "*") -> str:
    """The keys of the drift baselines a model's versions register (preprocess's
    ``baseline/`` output of any execution)."""
    preprocess = STEP_OUTPUTS[STEP_PREPROCESS][0]
    return f"{model_prefix(model_name)}{EXECUTIONS}/*/{preprocess}/baseline/*"


def registered_object_patterns(model_name: str = "*") -> list[str]:
    """Key patterns of the objects a registered model version refers to: the two
    containers' model artifacts, its single-container form, its evaluation report and its
    drift baseline. Not the
    data splits or checkpoints. What an account that deploys the model must read."""
    base = f"{model_prefix(model_name)}"
    preprocess = STEP_OUTPUTS[STEP_PREPROCESS][0]
    return [
        f"{base}{TRAINING}/*/output/model.tar.gz",
        f"{base}{EXECUTIONS}/*/{preprocess}/transform/*",
        baseline_key_pattern(model_name),
        f"{base}{EXECUTIONS}/*/{STEP_OUTPUTS[STEP_EVALUATE][0]}/*",
        f"{base}{EXECUTIONS}/*/{SERVING_OUTPUT}/*",
    ]


#: Model Monitor's baseline files a version registers, under preprocess's ``baseline/``
#: output and Evaluate's output.
MODEL_MONITOR_STATISTICS = "model-monitor/statistics.json"
MODEL_MONITOR_CONSTRAINTS = "model-monitor/constraints.json"
MODEL_QUALITY_CONSTRAINTS = "model_quality_constraints.json"

#: Where a processing job finds the zipped pipeline_steps/ (the runner's first argument).
PROCESSING_SOURCE_DIR = "/opt/ml/processing/input/source"

#: ``PipelineDefinitionBody`` maximum length (CloudFormation resource schema).
MAX_BODY_CHARS = 1_048_576

#: Fn::Sub variables the body may reference, with what the construct must supply.
SUBSTITUTIONS: Mapping[str, str] = MappingProxyType(
    {
        "ExecutionRoleArn": "ARN of the pipeline execution role (every job but ingestion runs as it)",
        "IngestionRoleArn": "ARN of the feature ingestion job's role (with a feature group)",
        "TrainingSetRoleArn": "ARN of the training-set job's role (training from the offline store)",
        "ArtifactsBucket": "Name (not ARN) of the S3 bucket holding pipeline artifacts",
        "KmsKeyArn": "ARN of the KMS key for job volumes and S3 outputs",
        "ModelPackageGroupArn": "ARN of the model package group models register into",
        "CodeUri": "s3:// URI of the POSIX sh runner file (pipeline_steps/run_step.sh)",
        "SourceUri": "s3:// URI of the zipped pipeline_steps/ directory",
        "SchemaUri": "s3:// URI of the data schema JSON file",
        "RawDataUri": "s3:// URI (prefix) of the raw data; default of InputDataUri",
        "MlflowResourceArn": "ARN of the stage's SageMaker managed MLflow app",
        "FlowUri": "s3:// URI of the model's Data Wrangler .flow file (with a flow)",
        # SubnetId<i> / SecurityGroupId<i> / IngestionSecurityGroupId<i> are added per
        # PipelineInputs counts (the ingestion groups also carry the training-set job).
    }
)

_PLACEHOLDER_ACCOUNT = "000000000000"
_MARK = "zzph"  # marks a placeholder value; never appears in real values we emit


@dataclass(frozen=True)
class PipelineInputs:
    """Everything the construct supplies to build one model's training pipeline.

    Values that are CDK tokens at synth time (role, bucket, key, URIs, subnets, ...)
    are NOT fields here: they become ``${Name}`` placeholders listed in
    :attr:`BuiltDefinition.substitutions`.

    Attributes:
        model_name: kebab-case model name, e.g. ``breast-cancer``; used in S3 paths.
        problem_type: one of the contract's problem types.
        region: concrete AWS region, used for the image URI lookups.
        hyperparameters: built-in XGBoost hyperparameters, as sent (strings).
        quality_metric: a gate metric of the contract for ``problem_type``; the contract
            says where Evaluate writes it and whether higher is better.
        quality_threshold: what the quality gate compares the metric with. It is written
            into the condition, not a start-time parameter: whoever may start the pipeline
            cannot lower the bar.
        subnet_count: 0 means no VPC config; otherwise ``SubnetId0..`` placeholders.
        security_group_count: number of ``SecurityGroupId0..`` placeholders.
        use_mlflow: track in SageMaker managed MLflow (``${MlflowResourceArn}``): the
            pipeline's ``MlflowConfig`` (one run per execution) and the training job's
            (its hyperparameters and metrics). SageMaker logs them itself, so this works
            with network isolation: no container talks to MLflow.
        mlflow_experiment_name: MLflow experiment; defaults to ``model_name``.
        use_spot_training: managed spot training; checkpoints go to S3.
        max_wait_seconds: spot only; defaults to ``max_runtime_seconds`` when None.
        cache_expire_after: ISO 8601 duration, used when ``enable_step_caching``.
        feature_group_name: when set, an ``IngestFeatures`` step after Preprocess writes
            the model's records into this feature group. It runs with its own role
            (``${IngestionRoleArn}``), not network-isolated (it calls the Feature Store
            runtime), in ``IngestionSecurityGroupId0..`` (its own security groups).
        offline_store_table: when set (with ``feature_group_name``), the model trains from
            the group's offline store: a ``BuildTrainingSet`` step queries this Glue table
            of ``offline_store_database`` through Athena workgroup ``athena_workgroup`` as
            of the cutoff (parameter ``TrainingCutoffTime``, the execution's start when
            empty) and Preprocess reads its output instead of the raw files. It runs with
            its own role (``${TrainingSetRoleArn}``), not network-isolated (it calls
            Athena), in the ingestion security groups; IngestFeatures then no longer waits
            for Preprocess (it validates the raw files as it reads them), and what it writes
            reaches the offline store after this execution's cutoff: it trains the next.
        flow_output_name: when set, a ``DataWranglerFlow`` step runs the model's Data
            Wrangler flow (``${FlowUri}``) in the Data Wrangler container first, on the raw
            data (``InputDataUri``; with several ``flow_source_names``, each source reads
            ``<InputDataUri><source name>/``), and every step that read the raw files reads
            its output instead. The job's output must be named ``flow_output_name`` (the
            exported node's ``<node id>.<output>``): that is how the container finds it;
            ``flow_job_arguments`` tell the container to write it (``--output-config``).
    """

    model_name: str
    problem_type: str
    region: str
    hyperparameters: Mapping[str, str]
    quality_metric: str
    quality_threshold: float
    #: The model's drift PSI threshold (also Model Monitor's, in its baseline constraints).
    drift_psi_threshold: float = contract.DriftThresholds().psi
    processing_instance_type: str = "ml.m5.large"
    processing_instance_count: int = 1
    training_instance_type: str = "ml.m5.large"
    training_instance_count: int = 1
    max_runtime_seconds: int = 3600
    use_spot_training: bool = False
    max_wait_seconds: int | None = None
    enable_network_isolation: bool = True
    subnet_count: int = 0
    security_group_count: int = 0
    use_mlflow: bool = False
    mlflow_experiment_name: str = ""
    enable_step_caching: bool = True
    cache_expire_after: str = "P30D"
    xgboost_version: str = "3.0-5"
    sklearn_version: str = "1.4-2-py312"
    processing_volume_size_gb: int = 30
    training_volume_size_gb: int = 30
    feature_group_name: str | None = None
    ingestion_security_group_count: int = 0
    offline_store_database: str = ""
    offline_store_table: str | None = None
    athena_workgroup: str = ""
    flow_source_names: tuple[str, ...] = ()
    flow_output_name: str = ""
    flow_job_arguments: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        """Return every problem with these inputs (empty when valid)."""
        found: list[str] = []
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", self.model_name or ""):
            found.append(f"model_name {self.model_name!r}: must be kebab-case ([a-z0-9-])")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region or ""):
            found.append(f"region {self.region!r}: must be a concrete region like eu-west-1")
        if self.problem_type not in contract.PROBLEM_TYPES:
            found.append(
                f"problem_type {self.problem_type!r}: allowed {', '.join(contract.PROBLEM_TYPES)}"
            )
        else:  # the contract's rules for this problem type
            found += [
                p.render("quality_")
                for p in contract.gate_problems(
                    self.problem_type, self.quality_metric, self.quality_threshold
                )
            ]
            found += [
                p.render("hyperparameters.")
                for p in contract.hyperparameter_problems(self.hyperparameters, self.problem_type)
            ]
        for name in ("processing_instance_type", "training_instance_type"):
            if has_instance_storage(getattr(self, name)) is None:
                found.append(
                    f"{name} {getattr(self, name)!r}: its storage kind is unknown "
                    "(mlops/instance_storage.py)"
                )
        for name in ("processing_instance_count", "training_instance_count"):
            if getattr(self, name) < 1:
                found.append(f"{name} {getattr(self, name)!r}: must be >= 1")
        if self.max_runtime_seconds < 1:
            found.append(f"max_runtime_seconds {self.max_runtime_seconds!r}: must be >= 1")
        if (
            self.use_spot_training
            and self.max_wait_seconds is not None
            and self.max_wait_seconds < self.max_runtime_seconds
        ):
            found.append(
                f"max_wait_seconds {self.max_wait_seconds!r}: must be >= "
                f"max_runtime_seconds ({self.max_runtime_seconds})"
            )
        if self.flow_output_name and not self.flow_source_names:
            found.append("flow_output_name: a Data Wrangler flow needs flow_source_names")
        if self.mlflow_experiment_name and not re.fullmatch(
            r"[a-zA-Z0-9\-_./]{1,256}", self.mlflow_experiment_name
        ):
            found.append(
                f"mlflow_experiment_name {self.mlflow_experiment_name!r}: 1-256 letters, "
                "digits and -_./"
            )
        if self.offline_store_table is not None and not (
            self.feature_group_name and self.offline_store_database and self.athena_workgroup
        ):
            found.append(
                "offline_store_table: training from the offline store needs "
                "feature_group_name, offline_store_database and athena_workgroup"
            )
        if self.subnet_count < 0 or self.security_group_count < 0:
            found.append("subnet_count/security_group_count: must be >= 0")
        if (self.subnet_count == 0) != (self.security_group_count == 0):
            found.append(
                "subnet_count/security_group_count: give both (VPC) or neither (no VPC), "
                f"got {self.subnet_count}/{self.security_group_count}"
            )
        if not re.fullmatch(
            r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?",
            self.cache_expire_after or "",
        ):
            found.append(
                f"cache_expire_after {self.cache_expire_after!r}: must be an ISO 8601 "
                "duration such as P30D or PT12H"
            )
        return found

    def key(self) -> str:
        """Canonical JSON of every field: equal keys build byte-identical definitions."""
        fields = {**self.__dict__, "hyperparameters": dict(self.hyperparameters)}
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class BuiltDefinition:
    """A rendered pipeline definition.

    Attributes:
        body: canonical JSON (sorted keys, compact separators) ready for ``Fn::Sub``:
            ``${Name}`` for each substitution, every other literal ``${`` written ``${!``.
        substitutions: variable name -> description of the value the construct supplies.
            Every name is referenced by the body; the body references no other name.
    """

    body: str
    substitutions: dict[str, str] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """Return the body parsed back to a dict (``${!`` escapes undone)."""
        return json.loads(self.body.replace("${!", "${"))


class DefinitionTooLargeError(ValueError):
    """The pipeline definition exceeds the ``PipelineDefinitionBody`` limit."""


def check_body_size(body: str) -> None:
    """Raise :class:`DefinitionTooLargeError` when ``body`` exceeds 1,048,576 characters."""
    if len(body) > MAX_BODY_CHARS:
        raise DefinitionTooLargeError(
            f"Pipeline definition is {len(body):,} characters; AWS::SageMaker::Pipeline "
            f"PipelineDefinitionBody allows at most {MAX_BODY_CHARS:,}. Reduce hyperparameters"
            " or environment, or upload the body to S3 (PipelineDefinitionS3Location)."
        )


# --------------------------------------------------------------------------- placeholders


def _placeholder_values(inputs: PipelineInputs) -> dict[str, str]:
    """Inert, well-formed stand-ins the SDK sees, keyed by substitution name."""
    region = inputs.region
    acct = _PLACEHOLDER_ACCOUNT
    values = {
        "ExecutionRoleArn": f"arn:aws:iam::{acct}:role/{_MARK}-executionrolearn",
        "ArtifactsBucket": f"{_MARK}-artifactsbucket",
        "KmsKeyArn": f"arn:aws:kms:{region}:{acct}:key/{_MARK}-kmskeyarn",
        "ModelPackageGroupArn": (
            f"arn:aws:sagemaker:{region}:{acct}:model-package-group/{_MARK}-modelpackagegrouparn"
        ),
        "CodeUri": f"s3://{_MARK}-codeuri/run_step.sh",
        "SourceUri": f"s3://{_MARK}-sourceuri/source.zip",
        "SchemaUri": f"s3://{_MARK}-schemauri/schema.json",
        "RawDataUri": f"s3://{_MARK}-rawdatauri/raw",
        "MlflowResourceArn": (
            f"arn:aws:sagemaker:{region}:{acct}:mlflow-app/{_MARK}-mlflowresourcearn"
        ),
    }
    for i in range(inputs.subnet_count):
        values[f"SubnetId{i}"] = f"subnet-{_MARK}subnetid{i}"
    for i in range(inputs.security_group_count):
        values[f"SecurityGroupId{i}"] = f"sg-{_MARK}securitygroupid{i}"
    if inputs.feature_group_name is not None:
        values["IngestionRoleArn"] = f"arn:aws:iam::{acct}:role/{_MARK}-ingestionrolearn"
        for i in range(inputs.ingestion_security_group_count):
            values[f"IngestionSecurityGroupId{i}"] = f"sg-{_MARK}ingestionsecuritygroupid{i}"
    if inputs.offline_store_table is not None:
        values["TrainingSetRoleArn"] = f"arn:aws:iam::{acct}:role/{_MARK}-trainingsetrolearn"
    if inputs.flow_output_name:
        values["FlowUri"] = f"s3://{_MARK}-flowuri/model.flow"
    return values


def _substitute_placeholders(raw_json: str, values: Mapping[str, str]) -> tuple[str, set[str]]:
    """Escape literal ``${`` for Fn::Sub, then swap placeholder values for ``${Name}``."""
    body = raw_json.replace("${", "${!")
    used: set[str] = set()
    # Longest first so that e.g. SubnetId1 never eats into SubnetId10.
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[1])):
        if value in body:
            used.add(name)
            body = body.replace(value, "${" + name + "}")
    if _MARK in body:
        raise AssertionError(f"unreplaced placeholder marker {_MARK!r} left in definition")
    return body, used


# --------------------------------------------------------------------------- the DAG


def build_definition(inputs: PipelineInputs) -> BuiltDefinition:
    """Build the training pipeline definition for one model, offline and deterministically.

    Args:
        inputs: the model's settings. Validated first; all problems are reported at once.

    Returns:
        The canonical JSON body and the Fn::Sub variables it references.

    Raises:
        ValueError: ``inputs`` are invalid (message lists every problem).
        DefinitionTooLargeError: the body exceeds the CloudFormation limit.
    """
    problems = inputs.problems()
    if problems:
        raise ValueError("Invalid PipelineInputs:\n  - " + "\n  - ".join(problems))
    values = _placeholder_values(inputs)
    with offline_sdk(inputs.region):
        raw = _render_with_sdk(inputs, values)
    # Canonical form: sorted keys, compact, ASCII only, so two builds are byte-identical.
    canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    body, used = _substitute_placeholders(canonical, values)
    check_body_size(body)
    descriptions = dict(SUBSTITUTIONS)
    for name in used:
        if name.startswith("SubnetId"):
            descriptions[name] = f"ID of VPC subnet number {name[len('SubnetId') :]} for jobs"
        elif name.startswith("IngestionSecurityGroupId"):
            descriptions[name] = (
                "ID of the ingestion (and training-set) jobs' security group number "
                f"{name[len('IngestionSecurityGroupId') :]}"
            )
        elif name.startswith("SecurityGroupId"):
            descriptions[name] = f"ID of security group number {name[len('SecurityGroupId') :]}"
    return BuiltDefinition(body=body, substitutions={n: descriptions[n] for n in sorted(used)})


#: The SDK modules a build imports (``_render_with_sdk`` and ``offline_sdk``); the
#: definition worker imports them up front.
SDK_MODULES = (
    "sagemaker.core.processing",
    "sagemaker.core.model_registry",
    "sagemaker.core.workflow.pipeline_context",
    "sagemaker.mlops.workflow.pipeline",
    "sagemaker.mlops.workflow.steps",
    "sagemaker.mlops.workflow.model_step",
    "sagemaker.train.model_trainer",
)


@functools.lru_cache(maxsize=64)
def _image_uri(framework: str, region: str, version: str, scope: str) -> str:
    """ECR image URI from the SDK's bundled tables (offline). Cached: ~0.1 s a lookup."""
    from sagemaker.core import image_uris

    return str(
        image_uris.retrieve(
            framework=framework,
            region=region,
            version=version,
            py_version="py3" if framework == "sklearn" else None,
            image_scope=scope,
        )
    )


def lookup_image_uri(framework: str, region: str, version: str = "", scope: str = "") -> str:
    """:func:`_image_uri` for any caller (``definition_builds.image_uri``): the SDK imported
    offline for ``region``; ``version``/``scope`` empty for images without them."""
    with offline_sdk(region):
        from sagemaker.core import image_uris

        if not version:
            return str(image_uris.retrieve(framework=framework, region=region))
        return _image_uri(framework, region, version, scope)


@functools.lru_cache(maxsize=16)
def _data_wrangler_image(region: str) -> str:
    """The Data Wrangler processing image from the SDK's bundled tables (offline)."""
    from sagemaker.core import image_uris

    return str(image_uris.retrieve(framework="data-wrangler", region=region))


def _render_with_sdk(inputs: PipelineInputs, ph: Mapping[str, str]) -> str:
    """Drive the SDK and return ``Pipeline.definition()`` (placeholders still inert)."""
    # SDK imports happen inside offline_sdk(): region and opt-outs must be set first.
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.model_registry import create_model_package_from_containers
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor, ScriptProcessor
    from sagemaker.core.shapes import (
        MlflowConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        S3DataSource,
    )
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.core.workflow.conditions import (
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import (
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    from mlops.pipeline_sdk_env import offline_boto_session

    session = PipelineSession(
        boto_session=offline_boto_session(inputs.region),
        default_bucket=ph["ArtifactsBucket"],
        sagemaker_config=copy.deepcopy(SDK_CONFIG),
    )
    # Pre-set: passing default_bucket= alone still makes the SDK call s3:ListBuckets.
    session._default_bucket = ph["ArtifactsBucket"]

    role = ph["ExecutionRoleArn"]
    kms = ph["KmsKeyArn"]
    prefix = f"s3://{ph['ArtifactsBucket']}/{model_prefix(inputs.model_name).rstrip('/')}"
    execution_id = ExecutionVariables.PIPELINE_EXECUTION_ID

    def run_path(*parts: str) -> Any:
        """Per-execution S3 URI: <prefix>/executions/<execution id>/<parts...>."""
        return Join(on="/", values=[f"{prefix}/{EXECUTIONS}", execution_id, *parts])

    # ---- parameters (operators may override at start time)
    p_input = ParameterString("InputDataUri", default_value=ph["RawDataUri"])
    # Start-time overrides: only types with the configured type's kind of storage (job
    # volumes carry the stage's key only on EBS-backed types; SageMaker refuses it on
    # types with local NVMe storage, which the hardware encrypts).
    p_proc_type = ParameterString(
        "ProcessingInstanceType",
        default_value=inputs.processing_instance_type,
        enum_values=same_storage_types("ProcessingInstanceType", inputs.processing_instance_type),
    )
    p_proc_count = ParameterInteger(
        "ProcessingInstanceCount", default_value=inputs.processing_instance_count
    )
    p_train_type = ParameterString(
        "TrainingInstanceType",
        default_value=inputs.training_instance_type,
        enum_values=same_storage_types("TrainingInstanceType", inputs.training_instance_type),
    )
    processing_volume_key = None if has_instance_storage(inputs.processing_instance_type) else kms
    training_volume_key = None if has_instance_storage(inputs.training_instance_type) else kms
    p_train_count = ParameterInteger(
        "TrainingInstanceCount", default_value=inputs.training_instance_count
    )
    parameters = [
        p_input,
        p_proc_type,
        p_proc_count,
        p_train_type,
        p_train_count,
    ]
    from_offline_store = inputs.offline_store_table is not None
    if from_offline_store:
        # Empty: the execution's start. A time given here rebuilds an earlier training set.
        p_cutoff = ParameterString("TrainingCutoffTime", default_value="")
        parameters.append(p_cutoff)

    # ---- shared job settings
    retry = [
        StepRetryPolicy(
            exception_types=[
                StepExceptionTypeEnum.SERVICE_FAULT,
                StepExceptionTypeEnum.THROTTLING,
            ],
            interval_seconds=10,
            backoff_rate=2.0,
            max_attempts=5,
        ),
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
            ],
            interval_seconds=60,
            backoff_rate=2.0,
            max_attempts=5,
        ),
    ]
    cache = (
        CacheConfig(enable_caching=True, expire_after=inputs.cache_expire_after)
        if inputs.enable_step_caching
        else None
    )
    subnets = [ph[f"SubnetId{i}"] for i in range(inputs.subnet_count)]
    security_groups = [ph[f"SecurityGroupId{i}"] for i in range(inputs.security_group_count)]
    env: dict[str, Any] = {}

    sklearn_image = _image_uri("sklearn", inputs.region, inputs.sklearn_version, "training")
    sklearn_inference_image = _image_uri(
        "sklearn", inputs.region, inputs.sklearn_version, "inference"
    )
    xgboost_image = _image_uri("xgboost", inputs.region, inputs.xgboost_version, "training")
    xgboost_inference_image = _image_uri(
        "xgboost", inputs.region, inputs.xgboost_version, "inference"
    )

    def processor(
        base_job_name: str,
        image_uri: str,
        instance_count: Any = p_proc_count,
        *,
        job_role: str | None = None,
        isolated: bool = inputs.enable_network_isolation,
        groups: list[str] = security_groups,
    ) -> Any:
        return ScriptProcessor(
            role=job_role or role,
            image_uri=image_uri,
            # Runs the one *.sh file the code input delivers, whatever its S3 key is
            # (CDK file assets are stored under a hash, not under run_step.sh).
            command=[
                "/bin/sh",
                "-c",
                'exec /bin/sh /opt/ml/processing/input/code/*.sh "$@"',
            ],
            instance_count=instance_count,
            instance_type=p_proc_type,
            volume_size_in_gb=inputs.processing_volume_size_gb,
            volume_kms_key=processing_volume_key,
            output_kms_key=kms,
            max_runtime_in_seconds=inputs.max_runtime_seconds,
            base_job_name=base_job_name,
            sagemaker_session=session,
            env=dict(env) or None,
            network_config=NetworkConfig(
                enable_network_isolation=isolated,
                security_group_ids=groups or None,
                subnets=subnets or None,
                encrypt_inter_container_traffic=True,
            ),
        )

    def s3_in(name: str, source: Any, local: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=source,
                local_path=local,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    def s3_out(name: str, destination: Any, local: str) -> Any:
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=destination, local_path=local, s3_upload_mode="EndOfJob"
            ),
        )

    source_input = s3_in("source", ph["SourceUri"], PROCESSING_SOURCE_DIR)
    schema_input = s3_in("schema", ph["SchemaUri"], "/opt/ml/processing/input/schema")
    # The schema file's S3 key is a CDK asset hash, so scripts get the directory and read
    # the one *.json in it.
    schema_path = "/opt/ml/processing/input/schema"

    ingestion_groups = [
        ph[f"IngestionSecurityGroupId{i}"]
        for i in range(inputs.ingestion_security_group_count)
        if inputs.feature_group_name is not None
    ]

    # ---- DataWranglerFlow (the model's .flow, before everything that reads raw files)
    raw_input: Any = p_input
    if inputs.flow_output_name:
        flow_step, flow_outputs = STEP_OUTPUTS[STEP_DATA_WRANGLER]
        names = inputs.flow_source_names
        sources = [
            s3_in(name, p_input if len(names) == 1 else Join(on="", values=[p_input, f"{name}/"]),
                  data_wrangler.source_dir(name))
            for name in names
        ]  # fmt: skip
        wrangler = Processor(
            role=role,
            image_uri=_data_wrangler_image(inputs.region),
            instance_count=p_proc_count,
            instance_type=p_proc_type,
            volume_size_in_gb=inputs.processing_volume_size_gb,
            volume_kms_key=processing_volume_key,
            output_kms_key=kms,
            max_runtime_in_seconds=inputs.max_runtime_seconds,
            base_job_name=f"{inputs.model_name}-data-wrangler",
            sagemaker_session=session,
            network_config=NetworkConfig(
                enable_network_isolation=inputs.enable_network_isolation,
                security_group_ids=security_groups or None,
                subnets=subnets or None,
                encrypt_inter_container_traffic=True,
            ),
        )
        step_flow = ProcessingStep(
            name=STEP_DATA_WRANGLER,
            step_args=wrangler.run(
                inputs=[
                    s3_in(data_wrangler.FLOW_INPUT_NAME, ph["FlowUri"], data_wrangler.FLOW_DIR),
                    *sources,
                ],
                outputs=[
                    s3_out(inputs.flow_output_name, run_path(flow_step, flow_outputs[0]),
                           data_wrangler.OUTPUT_DIR)
                ],
                arguments=list(inputs.flow_job_arguments),
            ),
            cache_config=cache,
            retry_policies=retry,
        )  # fmt: skip
        raw_input = step_flow.properties.ProcessingOutputConfig.Outputs[
            inputs.flow_output_name
        ].S3Output.S3Uri

    # ---- BuildTrainingSet (offline store as of the cutoff) -> Preprocess
    training_input: Any = raw_input
    layout_arguments: list[Any] = []
    if from_offline_store:
        build_step, build_outputs = STEP_OUTPUTS[STEP_BUILD_TRAINING_SET]
        step_build = ProcessingStep(
            name=STEP_BUILD_TRAINING_SET,
            # Its own role (the only one that may query the offline store), not
            # network-isolated: it calls Athena through the VPC's interface endpoint.
            step_args=processor(
                f"{inputs.model_name}-training-set", sklearn_image, 1,
                job_role=ph["TrainingSetRoleArn"], isolated=False, groups=ingestion_groups,
            ).run(
                code=ph["CodeUri"],
                inputs=[source_input, schema_input],
                outputs=[
                    s3_out(n, run_path(build_step, n), f"/opt/ml/processing/output/{n}")
                    for n in build_outputs
                ],
                arguments=[
                    PROCESSING_SOURCE_DIR, "build_training_set.py",
                    "--schema", schema_path,
                    "--feature-group", inputs.feature_group_name,
                    "--database", inputs.offline_store_database,
                    "--table", inputs.offline_store_table,
                    "--workgroup", inputs.athena_workgroup,
                    "--region", inputs.region,
                    # One argument each, so that an empty cutoff is still a value.
                    Join(on="", values=["--cutoff=", p_cutoff]),
                    Join(on="", values=["--execution-start=", ExecutionVariables.START_DATETIME]),
                    "--output-dir", f"/opt/ml/processing/output/{build_outputs[0]}",
                ],
            ),
            retry_policies=retry,
        )  # fmt: skip
        training_input = step_build.properties.ProcessingOutputConfig.Outputs[
            build_outputs[0]
        ].S3Output.S3Uri
        layout_arguments = ["--written-layout"]

    # ---- Preprocess
    pre_step, pre_outputs = STEP_OUTPUTS[STEP_PREPROCESS]
    step_pre = ProcessingStep(
        name=STEP_PREPROCESS,
        step_args=processor(f"{inputs.model_name}-preprocess", sklearn_image).run(
            code=ph["CodeUri"],
            inputs=[
                source_input,
                schema_input,
                s3_in("raw", training_input, "/opt/ml/processing/input/raw"),
            ],
            outputs=[
                s3_out(n, run_path(pre_step, n), f"/opt/ml/processing/output/{n}")
                for n in pre_outputs
            ],
            arguments=[
                PROCESSING_SOURCE_DIR,
                "preprocess.py",
                "--input-dir",
                "/opt/ml/processing/input/raw",
                "--schema",
                schema_path,
                "--problem-type",
                inputs.problem_type,
                "--output-dir",
                "/opt/ml/processing/output",
                # One training file per training instance (ShardedByS3Key needs as many).
                "--train-shards",
                Join(on="", values=[p_train_count]),
                "--drift-comparison-threshold",
                repr(float(inputs.drift_psi_threshold)),
                *layout_arguments,
            ],
        ),
        cache_config=cache,
        retry_policies=retry,
    )

    def pre_out(name: str) -> Any:
        return step_pre.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    # ---- IngestFeatures (beside Train): the validated records into the feature group
    steps_after_preprocess: list[Any] = []
    if inputs.feature_group_name is not None:
        ingest_step, ingest_outputs = STEP_OUTPUTS[STEP_INGEST]
        step_ingest = ProcessingStep(
            name=STEP_INGEST,
            # Its own role (the only one that may write records) and its own security
            # group; not network-isolated: it calls the Feature Store runtime through the
            # VPC's interface endpoint. One instance: records go out concurrently.
            step_args=processor(
                f"{inputs.model_name}-ingest", sklearn_image, 1,
                job_role=ph["IngestionRoleArn"], isolated=False, groups=ingestion_groups,
            ).run(
                code=ph["CodeUri"],
                inputs=[source_input, schema_input,
                        s3_in("raw", raw_input, "/opt/ml/processing/input/raw")],
                outputs=[
                    s3_out(n, run_path(ingest_step, n), f"/opt/ml/processing/output/{n}")
                    for n in ingest_outputs
                ],
                arguments=[
                    PROCESSING_SOURCE_DIR, "ingest_features.py",
                    "--input-dir", "/opt/ml/processing/input/raw",
                    "--schema", schema_path,
                    "--feature-group", inputs.feature_group_name,
                    "--output-dir", "/opt/ml/processing/output/ingestion",
                ],
            ),
            # From raw files, Preprocess validates the data first; from the offline store,
            # Preprocess reads other data and ingestion need not wait.
            depends_on=None if from_offline_store else [step_pre],
            retry_policies=retry,
        )  # fmt: skip
        steps_after_preprocess.append(step_ingest)

    # ---- Train (built-in XGBoost, no script mode: it would upload at definition time)
    distributed = inputs.training_instance_count > 1
    hyperparameters = dict(sorted(inputs.hyperparameters.items()))
    trainer = ModelTrainer(
        training_image=xgboost_image,
        role=role,
        sagemaker_session=session,
        base_job_name=f"{inputs.model_name}-train",
        hyperparameters=hyperparameters,
        environment=dict(env),
        compute=Compute(
            instance_type=p_train_type,
            instance_count=p_train_count,
            volume_size_in_gb=inputs.training_volume_size_gb,
            volume_kms_key_id=training_volume_key,
            enable_managed_spot_training=inputs.use_spot_training or None,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=inputs.max_runtime_seconds,
            max_wait_time_in_seconds=(
                (inputs.max_wait_seconds or inputs.max_runtime_seconds)
                if inputs.use_spot_training
                else None
            ),
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=f"{prefix}/{TRAINING}", kms_key_id=kms, compression_type="GZIP"
        ),
        checkpoint_config=(
            # Per execution: a spot job must never resume from another execution's state.
            CheckpointConfig(s3_uri=run_path("checkpoints"), local_path="/opt/ml/checkpoints")
            if inputs.use_spot_training
            else None
        ),
        networking=Networking(
            enable_network_isolation=inputs.enable_network_isolation,
            enable_inter_container_traffic_encryption=True,
            security_group_ids=security_groups or None,
            subnets=subnets or None,
        ),
    )

    def channel(name: str, sharded: bool) -> Any:
        return InputData(
            channel_name=name,
            data_source=S3DataSource(
                s3_data_type="S3Prefix",
                s3_uri=pre_out(name),
                s3_data_distribution_type="ShardedByS3Key" if sharded else "FullyReplicated",
            ),
            content_type="text/csv",
        )

    step_train = TrainingStep(
        name=STEP_TRAIN,
        step_args=trainer.train(
            input_data_config=[
                channel("train", distributed),
                channel("validation", False),
            ]
        ),
        cache_config=cache,
        retry_policies=retry,
    )
    model_artifact = step_train.properties.ModelArtifacts.S3ModelArtifacts

    # ---- Evaluate
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    step_eval = ProcessingStep(
        name=STEP_EVALUATE,
        # Evaluate loads the booster, so it runs in the XGBoost image (the scikit-learn
        # image has no xgboost); the same image trains the model.
        # One instance: the metrics are computed over the whole test split.
        step_args=processor(f"{inputs.model_name}-evaluate", xgboost_image, 1).run(
            code=ph["CodeUri"],
            inputs=[
                source_input,
                schema_input,
                s3_in("model", model_artifact, "/opt/ml/processing/model"),
                s3_in("test", pre_out("test"), "/opt/ml/processing/test"),
                s3_in("transform", pre_out("transform"), "/opt/ml/processing/transform"),
            ],
            outputs=[
                s3_out(
                    "evaluation",
                    run_path(STEP_OUTPUTS[STEP_EVALUATE][0]),
                    "/opt/ml/processing/evaluation",
                ),
                s3_out(SERVING_OUTPUT, run_path(SERVING_OUTPUT), "/opt/ml/processing/serving"),
            ],
            arguments=[
                PROCESSING_SOURCE_DIR,
                "evaluate.py",
                "--model-dir",
                "/opt/ml/processing/model",
                "--test-dir",
                "/opt/ml/processing/test",
                "--transform-dir",
                "/opt/ml/processing/transform",
                "--schema",
                schema_path,
                "--problem-type",
                inputs.problem_type,
                "--output-dir",
                "/opt/ml/processing/evaluation",
                "--serving-dir",
                "/opt/ml/processing/serving",
                "--quality-metric",
                inputs.quality_metric,
                "--quality-threshold",
                repr(float(inputs.quality_threshold)),
            ],
        ),
        property_files=[report],
        cache_config=cache,
        retry_policies=retry,
    )
    evaluation_uri = step_eval.properties.ProcessingOutputConfig.Outputs[
        "evaluation"
    ].S3Output.S3Uri
    # The version's single-container form (what serverless endpoints serve), registered
    # beside the inference pipeline as an additional inference specification.
    single_container = {
        "Name": SINGLE_CONTAINER_SPECIFICATION,
        "Description": "The transform and the booster in one XGBoost container (serverless)",
        "Containers": [
            {
                "Image": xgboost_inference_image,
                "ModelDataUrl": Join(
                    on="/",
                    values=[
                        step_eval.properties.ProcessingOutputConfig.Outputs[
                            SERVING_OUTPUT
                        ].S3Output.S3Uri,
                        "model.tar.gz",
                    ],
                ).expr,
                "Environment": dict(contract.SINGLE_CONTAINER_ENVIRONMENT),
            }
        ],
        "SupportedContentTypes": ["text/csv", "application/json"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }

    # ---- RegisterModel: sklearn transform container, then XGBoost
    session.init_model_step_arguments(SimpleNamespace(sagemaker_session=session))
    register_args = create_model_package_from_containers(
        session,
        containers=[
            {
                "Image": sklearn_inference_image,
                "ModelDataUrl": Join(on="/", values=[pre_out("transform"), "model.tar.gz"]),
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                },
            },
            {"Image": xgboost_inference_image, "ModelDataUrl": model_artifact},
        ],
        content_types=["text/csv", "application/json"],
        response_types=["text/csv", "application/json"],
        inference_instances=None,
        transform_instances=None,
        model_package_group_name=ph["ModelPackageGroupArn"],
        # The project's own baseline (the scheduled engine's drift checks read it) is the
        # version's data-quality statistics; its drift-check baselines are Model Monitor's
        # files of the same rows and the quality gate's constraints (the model_monitor engine).
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[evaluation_uri, "evaluation.json"]),
            ),
            model_data_statistics=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[pre_out("baseline"), "statistics.json"]),
            ),
        )._to_request_dict(),
        drift_check_baselines=DriftCheckBaselines(
            model_data_statistics=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[pre_out("baseline"), MODEL_MONITOR_STATISTICS]),
            ),
            model_data_constraints=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[pre_out("baseline"), MODEL_MONITOR_CONSTRAINTS]),
            ),
            model_statistics=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[evaluation_uri, "evaluation.json"]),
            ),
            model_constraints=MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[evaluation_uri, MODEL_QUALITY_CONSTRAINTS]),
            ),
        )._to_request_dict(),
        # Always pending: only an approver (UpdateModelPackage) approves a version. The
        # execution role may create versions with this status only (an IAM condition).
        approval_status=contract.REGISTERED_APPROVAL_STATUS,
        customer_metadata_properties={
            "model_name": inputs.model_name,
            "problem_type": inputs.problem_type,
            "quality_metric": inputs.quality_metric,
        },
        domain="MACHINE_LEARNING",
        task=contract.problem(inputs.problem_type).task,
    )
    session.context = None
    step_register = ModelStep(
        name=STEP_REGISTER,
        step_args=register_args,
        retry_policies=[retry[0]],
    )

    # ---- CheckQuality -> RegisterModel | QualityFailed
    metric_value = JsonGet(
        step_name=step_eval.name,
        property_file=report,
        json_path=contract.metric_json_path(inputs.problem_type, inputs.quality_metric),
    )
    higher_is_better = contract.gate_metric(
        inputs.problem_type, inputs.quality_metric
    ).higher_is_better
    comparison = ConditionGreaterThanOrEqualTo if higher_is_better else ConditionLessThanOrEqualTo
    relation = ">=" if higher_is_better else "<="
    step_fail = FailStep(
        name=STEP_FAIL,
        error_message=Join(
            on=" ",
            values=[
                f"Model quality gate failed: {inputs.quality_metric} =",
                metric_value,
                f"but the pipeline requires {inputs.quality_metric} {relation}",
                str(inputs.quality_threshold),
            ],
        ),
    )
    step_check = ConditionStep(
        name=STEP_CHECK_QUALITY,
        conditions=[comparison(left=metric_value, right=inputs.quality_threshold)],
        if_steps=[step_register],
        else_steps=[step_fail],
    )

    mlflow = None
    if inputs.use_mlflow:
        mlflow = MlflowConfig(
            mlflow_resource_arn=ph["MlflowResourceArn"],
            mlflow_experiment_name=inputs.mlflow_experiment_name or inputs.model_name,
        )
    pipeline = Pipeline(
        name=f"{inputs.model_name}-training",
        parameters=parameters,
        steps=[
            *([step_build] if from_offline_store else []),
            step_pre,
            *steps_after_preprocess,
            step_train,
            step_eval,
            step_check,
        ],
        sagemaker_session=session,
        mlflow_config=mlflow,
    )
    definition = json.loads(pipeline.definition())
    # The SDK's registration has no additional inference specifications; the request has.
    (register,) = [s for s in all_steps(definition["Steps"]) if s["Name"] == STEP_REGISTER]
    register["Arguments"]["AdditionalInferenceSpecifications"] = [single_container]
    if mlflow is not None:
        # ModelTrainer has no MLflow option; CreateTrainingJob has (SageMaker logs the
        # job's hyperparameters and metrics to the experiment).
        (train,) = [s for s in definition["Steps"] if s["Name"] == STEP_TRAIN]
        train["Arguments"]["MlflowConfig"] = definition["MlflowConfig"]
    return json.dumps(definition)

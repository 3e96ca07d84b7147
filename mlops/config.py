"""Typed, validated platform configuration read from the ``mlops`` key of the CDK context.

Every stage (``dev``, ``staging``, ``prod`` by default) and every model is parsed once, in
``app.py``, before any construct is built. A bad value never reaches CDK: :func:`load_config`
collects every problem and raises one :class:`ConfigError` that lists, for each, the field
path, the value received, what is allowed and how to fix it.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import botocore.session
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from mlops.instance_storage import has_instance_storage
from mlops.names import pascal_case
from pipeline_steps.steplib import contract, monitoring

CONTEXT_KEY = "mlops"

# Versions of the built-in XGBoost algorithm image that the SDK's offline tables know.
XGBOOST_VERSIONS = ("1.7-1", "3.0-5")

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
#: An IAM role ARN (what a user profile's ExecutionRole accepts).
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z\-]*:iam::(\d{12}):role/?[a-zA-Z_0-9+=,.@\-_/]+")
#: SageMaker's UserProfileName pattern (CreateUserProfile).
USER_PROFILE_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
TAG_KEY_PATTERN = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
TAG_VALUE_PATTERN = re.compile(r"^[\w.:/=+\-@ ]{0,256}$")
#: Every subnet the stage's VPC gets is a /24, one per Availability Zone.
SUBNET_PREFIX = 24


class ConfigError(ValueError):
    """Raised when the configuration has one or more problems; ``problems`` lists them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"cdk.json context '{CONTEXT_KEY}' has {len(problems)} problem(s); "
            f"nothing was built:\n{lines}"
        )


@cache
def _botocore() -> botocore.session.Session:
    """One botocore session: it caches the data files (service model, endpoints) it reads."""
    return botocore.session.get_session()


@cache
def _sagemaker_regions() -> frozenset[str]:
    return frozenset(_botocore().get_available_regions("sagemaker"))


@cache
def _instance_types(shape: str) -> frozenset[str]:
    return frozenset(_botocore().get_service_model("sagemaker").shape_for(shape).enum)


def _region(value: str) -> str:
    regions = _sagemaker_regions()
    if value not in regions:
        raise ValueError(
            f"{value!r} is not a region where SageMaker is available "
            f"(known: {', '.join(sorted(regions)[:6])}, ...). "
            'Fix: set a concrete region such as "us-east-1" or "eu-west-1"'
        )
    return value


def _instance_type_validator(shape: str, use: str, jobs: bool = False):
    def check(value: str) -> str:
        allowed = _instance_types(shape)
        if value not in allowed:
            examples = ", ".join(
                t for t in ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge") if t in allowed
            )
            raise ValueError(
                f"{value!r} is not a SageMaker {use} instance type. "
                f"Fix: use one of the {len(allowed)} types SageMaker accepts for {use}, e.g. {examples}"
            )
        if jobs and has_instance_storage(value) is None:
            raise ValueError(
                f"{value!r}: whether its family has local NVMe storage is not known to the "
                "platform, and job volumes are encrypted with the stage's key only where "
                "SageMaker allows it (EBS-backed types). Fix: use a known family (e.g. "
                "ml.m5.xlarge), or add this one to mlops/instance_storage.py"
            )
        return value

    return AfterValidator(check)


ProcessingInstanceType = Annotated[
    str, _instance_type_validator("ProcessingInstanceType", "processing", jobs=True)
]
TrainingInstanceType = Annotated[
    str, _instance_type_validator("TrainingInstanceType", "training", jobs=True)
]


def _schedule_expression(value: str) -> str:
    if not re.fullmatch(r"(cron|rate)\(.+\)", value):
        raise ValueError(
            f"{value!r} is not an EventBridge Scheduler expression. "
            'Fix: use "cron(0 3 ? * MON *)" or "rate(7 days)", or null for no schedule'
        )
    return value


ScheduleExpressionText = Annotated[str, AfterValidator(_schedule_expression)]
EndpointInstanceType = Annotated[
    str, _instance_type_validator("ProductionVariantInstanceType", "endpoint")
]


def _name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name. Fix: use 2-32 lowercase letters, digits and "
            'hyphens, starting with a letter and not ending with a hyphen (e.g. "breast-cancer")'
        )
    return value


ResourceName = Annotated[str, AfterValidator(_name)]


def _user_profile_name(value: str) -> str:
    if not USER_PROFILE_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Studio user profile name. Fix: 1-63 letters, digits and "
            'hyphens, starting and ending with a letter or digit (e.g. "ana-garcia")'
        )
    return value


def _account(value: str | None) -> str | None:
    if value is not None and not ACCOUNT_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an AWS account ID. Fix: use the 12-digit ID as a string, "
            "or null for the account of your current credentials"
        )
    return value


#: A 12-digit account ID, or null (the account of the credentials that deploy).
AccountId = Annotated[str | None, AfterValidator(_account)]


class _Model(BaseModel):
    """Base for config objects: camelCase keys in cdk.json, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )


class VpcConfig(_Model):
    """The stage's VPC. Jobs, endpoints and the Studio domain run in its isolated subnets."""

    cidr: str = "10.0.0.0/16"
    max_azs: int = Field(default=2, ge=2, le=6)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(
                f'{value!r} is not an IPv4 CIDR block ({exc}). Fix: e.g. "10.0.0.0/16"'
            ) from None
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(
                f"{value!r} has prefix /{network.prefixlen}; a VPC CIDR must be /16 to /24. "
                'Fix: e.g. "10.0.0.0/16"'
            )
        return value


class PipelineSettings(_Model):
    """Defaults for the training pipeline's parameters in a stage."""

    processing_instance_type: ProcessingInstanceType = "ml.m5.xlarge"
    processing_instance_count: int = Field(default=1, ge=1, le=100)
    training_instance_type: TrainingInstanceType = "ml.m5.xlarge"
    training_instance_count: int = Field(default=1, ge=1, le=100)
    max_runtime_seconds: int = Field(default=3600, ge=60, le=432000)
    use_spot_training: bool = False
    max_wait_seconds: int | None = Field(default=None, ge=60, le=432000)
    schedule_expression: ScheduleExpressionText | None = None


class ServerlessSettings(_Model):
    """Serverless inference: no instance runs between requests."""

    #: SageMaker's allowed sizes (CreateEndpointConfig ServerlessConfig.MemorySizeInMB).
    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(default=5, ge=1, le=200)
    #: Warm capacity kept ready (billed while provisioned); at most ``maxConcurrency``.
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200)


class AutoscalingSettings(_Model):
    """Instance count follows invocations per instance (target tracking)."""

    min_instances: int = Field(default=1, ge=1, le=100)
    max_instances: int = Field(default=4, ge=1, le=100)
    #: Invocations per instance per minute the policy keeps the fleet at.
    target_invocations_per_instance: int = Field(default=100, ge=1, le=1_000_000)
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)


class RollbackAlarmSettings(_Model):
    """The alarms that roll a blue/green deployment back (on the endpoint's variant)."""

    #: 5xx errors per minute, in each of two consecutive minutes.
    invocation_5xx_errors: int = Field(default=5, ge=1, le=1_000_000)
    #: Model latency p99, milliseconds, in each of two consecutive minutes.
    model_latency_p99_ms: int = Field(default=1000, ge=1, le=3_600_000)


class EndpointSettings(_Model):
    """How a stage serves approved models: on instances (blue/green roll-outs, autoscaling,
    data capture, in the VPC with network isolation) or serverless (none of those: SageMaker
    Serverless Inference supports neither VPC, network isolation, data capture nor
    traffic-shifting deployments)."""

    instance_type: EndpointInstanceType = "ml.m5.large"
    initial_instance_count: int = Field(default=1, ge=1, le=100)
    deployment: Literal["all_at_once", "canary", "linear"] = "canary"
    canary_percent: int = Field(default=10, ge=1, le=50)
    bake_minutes: int = Field(default=10, ge=0, le=60)
    #: Default 100 on instances; serverless endpoints capture nothing.
    data_capture_percent: int | None = Field(default=None, ge=0, le=100)
    serverless: ServerlessSettings | None = None
    #: Default: min = initialInstanceCount, max = 4x it (instances only).
    autoscaling: AutoscalingSettings | None = None
    #: Default thresholds on instances; not for serverless endpoints.
    rollback_alarms: RollbackAlarmSettings | None = None
    #: Alarm when invocations drop to zero (a stage whose endpoints always get traffic).
    traffic_expected: bool = False

    @property
    def capture_percent(self) -> int:
        """What is captured: 0 on serverless endpoints, else the setting (default 100)."""
        if self.serverless is not None:
            return 0
        return 100 if self.data_capture_percent is None else self.data_capture_percent

    @property
    def scaling(self) -> AutoscalingSettings:
        """The autoscaling in effect on instances (the defaults follow the initial count)."""
        if self.autoscaling is not None:
            return self.autoscaling
        return AutoscalingSettings(
            min_instances=self.initial_instance_count,
            max_instances=min(100, 4 * self.initial_instance_count),
        )

    @property
    def rollback(self) -> RollbackAlarmSettings:
        return self.rollback_alarms or RollbackAlarmSettings()


class BatchSettings(_Model):
    """A stage's batch inference pipelines (one per model)."""

    instance_type: EndpointInstanceType = "ml.m5.xlarge"
    instance_count: int = Field(default=1, ge=1, le=100)
    #: EventBridge Scheduler expression; without it, pipelines start only by hand.
    schedule_expression: ScheduleExpressionText | None = None


class MlflowSettings(_Model):
    """Managed MLflow for experiment tracking; ``enabled: false`` leaves it out."""

    enabled: bool = True


#: The stage whose Studio domain (and Canvas direct deployment) is on unless configured.
STUDIO_DEFAULT_STAGE = "dev"


class UserProfileConfig(_Model):
    """One person's Studio user profile: their own private spaces and Canvas."""

    name: Annotated[str, AfterValidator(_user_profile_name)]
    #: An IAM role of the stage's account to run this person's apps and jobs (default:
    #: the domain's execution role).
    execution_role_arn: str | None = None

    @field_validator("execution_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an IAM role ARN. Fix: e.g. "
                '"arn:aws:iam::123456789012:role/data-scientist", or leave it out for the '
                "domain's execution role"
            )
        return value


class StudioConfig(_Model):
    """A SageMaker Studio domain with Canvas (Data Wrangler) for browser-based data prep.

    Default: on in a stage called ``dev``, off elsewhere. Nothing in it runs (or bills
    compute) until a user opens an app; idle apps shut down after ``idleTimeoutMinutes``.
    """

    enabled: bool | None = None
    user_profiles: tuple[UserProfileConfig, ...] = ()
    #: JupyterLab apps stop after this long without activity (SageMaker allows 60-525600).
    idle_timeout_minutes: int = Field(default=60, ge=60, le=525600)
    #: Canvas may deploy models to endpoints itself (default: only in a stage called
    #: ``dev``; elsewhere models reach endpoints through the registry and approval).
    canvas_direct_deploy: bool | None = None

    def is_enabled(self, stage_name: str) -> bool:
        """Whether the stage called ``stage_name`` has a domain."""
        return self.enabled if self.enabled is not None else stage_name == STUDIO_DEFAULT_STAGE

    def allows_direct_deploy(self, stage_name: str) -> bool:
        """Whether Canvas may deploy models itself in the stage called ``stage_name``."""
        if self.canvas_direct_deploy is not None:
            return self.canvas_direct_deploy
        return stage_name == STUDIO_DEFAULT_STAGE


#: The most frequent cadence of each engine, in minutes. A scheduled run starts up to three
#: jobs of a few minutes each, so runs closer than 15 minutes would overlap; Model Monitor
#: schedules are hourly cron expressions at the most.
MIN_CADENCE_MINUTES = {"scheduled": 15, "model_monitor": 60}
#: CloudWatch's evaluation range of an alarm (period x periods): one day for a period
#: under an hour, seven days otherwise (PutMetricAlarm).
ALARM_RANGE_SECONDS = {"under_an_hour": 86_400, "hourly": 604_800}
GROUND_TRUTH_PREFIX_PATTERN = re.compile(r"^([A-Za-z0-9!_.*'()-]+/)+$")


class RetrainSettings(_Model):
    """Retraining when drift is sustained: drift in ``driftWindows`` of the last
    ``ofLastWindows`` monitoring windows starts the model's training pipeline, unless a run
    of it is in progress or ``maxPerDay`` drift retrains started today (UTC)."""

    enabled: bool = True
    drift_windows: int = Field(default=3, ge=1, le=100)
    of_last_windows: int = Field(default=4, ge=1, le=100)
    max_per_day: int = Field(default=1, ge=1, le=24)


class MonitoringConfig(_Model):
    """Drift and model-quality checks of what a stage serves, with alarms and retraining.

    ``engine``: ``scheduled`` (default) runs the project's checks on the endpoint's data
    capture and on batch transform capture; ``model_monitor`` adds SageMaker Model Monitor
    data-quality and model-quality schedules per endpoint (closed to new AWS customers), and
    batch drift stays on the scheduled checks.
    """

    enabled: bool = True
    engine: Literal["scheduled", "model_monitor"] = "scheduled"
    #: How often a check runs; each run checks the window since the previous one.
    cadence_minutes: int = Field(default=60, ge=1, le=1440)
    #: Checks of batch transform capture (the batch inference pipeline's), on the cadence.
    batch: bool = True
    #: Ground-truth labels for model quality: ``<prefix><model>/yyyy/mm/dd/hh/*.jsonl`` in
    #: the raw-data bucket, in Model Monitor's ground-truth format.
    ground_truth_prefix: str = "ground-truth/"
    #: How long after a prediction its label arrives: model quality checks the predictions
    #: of the window that ended this long ago, with the labels dropped since.
    ground_truth_delay_minutes: int = Field(default=0, ge=0, le=10_080)
    retrain: RetrainSettings = RetrainSettings()

    @field_validator("ground_truth_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not GROUND_TRUTH_PREFIX_PATTERN.fullmatch(value):
            raise ValueError(
                f'{value!r} is not an S3 key prefix of folders. Fix: e.g. "ground-truth/" '
                "(letters, digits and !_.*'()- in each folder, ending with /)"
            )
        return value


class StageConfig(_Model):
    """One deployment environment: where it goes and how it behaves."""

    account: AccountId = None
    region: Annotated[str, AfterValidator(_region)]
    removal_policy: Literal["retain", "destroy"] = "retain"
    termination_protection: bool = True
    vpc: VpcConfig = VpcConfig()
    tags: dict[str, str] = Field(default_factory=dict)
    model_reader_accounts: tuple[str, ...] = ()
    log_retention_days: int = Field(default=365, ge=1, le=3653)
    capture_expiration_days: int = Field(default=90, ge=1, le=3650)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1, le=3650)
    pipeline: PipelineSettings = PipelineSettings()
    endpoint: EndpointSettings = EndpointSettings()
    batch: BatchSettings = BatchSettings()
    mlflow: MlflowSettings = MlflowSettings()
    studio: StudioConfig = StudioConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    #: Create SageMaker's job log groups (/aws/sagemaker/ProcessingJobs, /TrainingJobs)
    #: with the stage's key and retention. They are one per account and region: default
    #: true for a stage with its own ``account``, false otherwise.
    job_log_groups: bool | None = None

    @property
    def owns_job_log_groups(self) -> bool:
        return self.job_log_groups if self.job_log_groups is not None else self.account is not None

    @field_validator("model_reader_accounts")
    @classmethod
    def _readers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not ACCOUNT_PATTERN.fullmatch(v)]
        if bad:
            raise ValueError(
                f"{bad!r} are not AWS account IDs. Fix: list 12-digit account IDs as strings"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not TAG_KEY_PATTERN.fullmatch(k) or k.lower().startswith("aws:")]
        if bad:
            raise ValueError(
                f"tag keys {bad!r} are not allowed. Fix: use 1-128 letters, digits, spaces and "
                "_.:/=+-@, not starting with 'aws:'"
            )
        bad = [k for k, v in value.items() if not TAG_VALUE_PATTERN.fullmatch(v)]
        if bad:
            raise ValueError(
                f"the values of tags {bad!r} are not allowed. Fix: use at most 256 letters, "
                "digits, spaces and _.:/=+-@"
            )
        return value


class QualityGate(_Model):
    """The evaluation metric a model must reach before it is registered (see the contract's
    gate metrics for the names and directions)."""

    metric: str
    threshold: float = Field(allow_inf_nan=False)


_DRIFT = contract.DriftThresholds()


class DriftSettings(_Model):
    """Thresholds for the scheduled drift check (defaults: the contract's)."""

    psi_threshold: float = Field(default=_DRIFT.psi, gt=0, le=10)
    ks_p_value_threshold: float = Field(default=_DRIFT.p_value, gt=0, lt=1)
    missing_rate_increase: float = Field(default=_DRIFT.missing_rate_increase, gt=0, le=1)

    def thresholds(self) -> contract.DriftThresholds:
        """The contract's form, as the drift check takes them."""
        return contract.DriftThresholds(
            self.psi_threshold, self.ks_p_value_threshold, self.missing_rate_increase
        )


class AlgorithmConfig(_Model):
    """The built-in SageMaker algorithm that trains the model."""

    name: Literal["xgboost"] = "xgboost"
    version: str = "3.0-5"

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in XGBOOST_VERSIONS:
            raise ValueError(
                f"XGBoost version {value!r} is not supported. Fix: use one of {list(XGBOOST_VERSIONS)}"
            )
        return value


def _problem_type(value: str) -> str:
    if value not in contract.PROBLEM_TYPES:
        raise ValueError(
            f"{value!r} is not a problem type. Fix: use one of {list(contract.PROBLEM_TYPES)}"
        )
    return value


#: Where a model's batch inference reads and writes, unless configured (``{model}``).
DEFAULT_BATCH_INPUT = "batch/{model}/input/"
DEFAULT_BATCH_OUTPUT = "batch/{model}/output/"


class ModelConfig(_Model):
    """One model the platform trains, registers, serves and monitors.

    ``hyperparameters`` are checked against the built-in algorithm's rules (the contract's
    :func:`~pipeline_steps.steplib.contract.hyperparameter_problems`) together with the
    schema, by :func:`parse_config`.
    """

    name: ResourceName
    problem_type: Annotated[str, AfterValidator(_problem_type)]
    target_column: str
    schema_file: str
    data_prefix: str
    algorithm: AlgorithmConfig = AlgorithmConfig()
    # Any JSON value here: the contract names a wrong type with the hyperparameter's path.
    hyperparameters: dict[str, Any]
    quality_gate: QualityGate
    drift: DriftSettings = DriftSettings()
    #: Where training data comes from: ``rawFiles`` (the files under ``dataPrefix``) or
    #: ``offlineStore`` (the model's feature group as of the execution's cutoff time: each
    #: record's latest version written by then; the raw files still feed the group).
    training_data: Literal["rawFiles", "offlineStore"] = "rawFiles"
    #: Batch inference: the raw rows to score (raw-data bucket) and where results go
    #: (artifacts bucket); defaults ``batch/<name>/input/`` and ``batch/<name>/output/``.
    batch_input_prefix: str | None = None
    batch_output_prefix: str | None = None
    #: A Data Wrangler flow (``.flow`` file in the project) the training pipeline runs
    #: before Preprocess, on the raw data under ``dataPrefix``; its output must have the
    #: schema's raw columns.
    data_wrangler_flow: str | None = None

    @property
    def batch_input(self) -> str:
        return self.batch_input_prefix or DEFAULT_BATCH_INPUT.format(model=self.name)

    @property
    def batch_output(self) -> str:
        return self.batch_output_prefix or DEFAULT_BATCH_OUTPUT.format(model=self.name)

    @field_validator("data_prefix", "batch_input_prefix", "batch_output_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.fullmatch(r"[A-Za-z0-9!_.*'()\-]+(/[A-Za-z0-9!_.*'()\-]+)*/", value):
            raise ValueError(
                f"{value!r} is not an S3 key prefix. Fix: a relative prefix ending in '/', "
                'e.g. "breast-cancer/"'
            )
        return value


class FeatureGroupConfig(_Model):
    """A Feature Store feature group built from one model's data schema (its features,
    target, record id and event time), named ``<stage>-<name>`` in each stage."""

    name: ResourceName
    model: str
    online_store: bool = True
    offline_store: bool = True
    online_ttl_days: int | None = Field(default=None, ge=1, le=3650)
    #: ``Standard`` or ``InMemory`` (very low latency; on-demand throughput only).
    online_storage_type: Literal["Standard", "InMemory"] = "Standard"
    throughput_mode: Literal["OnDemand", "Provisioned"] = "OnDemand"
    provisioned_read_capacity_units: int | None = Field(default=None, ge=1, le=10_000_000)
    provisioned_write_capacity_units: int | None = Field(default=None, ge=1, le=10_000_000)
    #: Accounts given read-only access (discovery and reads) through AWS RAM.
    share_with_accounts: tuple[str, ...] = ()

    @field_validator("share_with_accounts")
    @classmethod
    def _share(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not ACCOUNT_PATTERN.fullmatch(v)]
        if bad:
            raise ValueError(
                f"{bad!r} are not AWS account IDs. Fix: list 12-digit account IDs as strings"
            )
        return value


#: A CodeConnections connection (or its older CodeStar Connections name).
CONNECTION_ARN = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):(codeconnections|codestar-connections):"
    r"([a-z0-9-]+):(\d{12}):connection/[0-9a-f-]{36}$"
)
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")


class ReleaseSource(_Model):
    """Where the release pipeline gets the project: a repository through a CodeConnections
    connection (GitHub, GitLab, Bitbucket; created and authorized once in the console), or a
    zip of the project in a versioned S3 bucket. Exactly one of the two."""

    connection_arn: str | None = None
    repository: str | None = None
    branch: str = "main"
    bucket: str | None = None
    object_key: str | None = None

    @property
    def kind(self) -> Literal["connection", "s3"]:
        return "connection" if self.connection_arn is not None else "s3"

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and not REPOSITORY_PATTERN.fullmatch(value):
            raise ValueError(
                f'{value!r} is not a repository. Fix: use owner/name, e.g. "my-org/mlops"'
            )
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
            raise ValueError(f"{value!r} is not an S3 bucket name. Fix: use the bucket's name")
        return value


class ReleaseConfig(_Model):
    """The release pipeline (``cdk synth -c release=true``): where it runs, its source, and
    the order in which it deploys the stages."""

    #: The tooling account the pipeline runs in (null: the account of the credentials).
    account: AccountId = None
    region: Annotated[str, AfterValidator(_region)]
    source: ReleaseSource
    #: Deploy waves in order; the stages of a wave deploy side by side.
    waves: tuple[tuple[str, ...], ...]
    #: Stages that wait for a person's approval before they deploy (default: prod, if
    #: released).
    approval_before: tuple[str, ...] | None = None
    #: Stages served by promotion: ``{"prod": "staging"}`` serves in prod only versions that
    #: staging served, passed staging's smoke test, and a person approved.
    promotions: dict[str, str] = Field(default_factory=dict)

    @property
    def approvals(self) -> tuple[str, ...]:
        """The stages that wait for a person."""
        if self.approval_before is not None:
            return self.approval_before
        return ("prod",) if "prod" in self.stages else ()

    @property
    def stages(self) -> tuple[str, ...]:
        """Every released stage, in release order."""
        return tuple(name for wave in self.waves for name in wave)


class PlatformConfig(_Model):
    """The whole ``mlops`` context: shared models and feature groups, and per-stage settings."""

    stages: dict[str, StageConfig]
    default_stages: tuple[str, ...] = ("dev", "staging", "prod")
    models: tuple[ModelConfig, ...]
    feature_groups: tuple[FeatureGroupConfig, ...] = ()
    release: ReleaseConfig | None = None

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: dict[str, StageConfig]) -> dict[str, StageConfig]:
        bad = [name for name in value if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", name)]
        if bad:
            raise ValueError(
                f"stage names {bad!r} are not allowed. Fix: use 1-16 lowercase letters and "
                'digits, starting with a letter (e.g. "dev")'
            )
        if not value:
            raise ValueError('no stages are defined. Fix: add at least one, e.g. "dev"')
        return value

    def model(self, name: str) -> ModelConfig:
        """Returns the model called ``name``; raises ``KeyError`` if there is none."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


def _location(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    """Renders a pydantic error location as a dotted path, naming list items by their name."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            name = (
                node[item].get("name")
                if isinstance(node, list) and item < len(node) and isinstance(node[item], dict)
                else None
            )
            parts.append(f"[{item}]" if name is None else f"[{item}:{name}]")
        else:
            if item.startswith("function-") or item in {
                "str",
                "int",
                "float",
                "literal",
                "constrained-int",
            }:
                continue
            segment = contract.field_path(str(item))
            parts.append(segment if segment.startswith("[") or not parts else f".{segment}")
        if isinstance(node, dict):
            node = node.get(item)  # type: ignore[arg-type]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            node = None
    return "".join(parts) or "(root)"


_HINTS = {
    "greater_than": "Fix: use a larger value",
    "greater_than_equal": "Fix: use a larger value",
    "less_than": "Fix: use a smaller value",
    "less_than_equal": "Fix: use a smaller value",
    "literal_error": "Fix: use one of the values listed",
    "missing": "Fix: add this field",
    "extra_forbidden": "Fix: remove it or correct its spelling (keys are camelCase)",
    "bool_type": "Fix: use true or false (JSON booleans, not strings)",
    "int_type": "Fix: use a JSON whole number, not a string",
    "float_type": "Fix: use a JSON number, not a string",
    "string_type": "Fix: use a JSON string",
    "dict_type": "Fix: use a JSON object",
    "tuple_type": "Fix: use a JSON list",
}


def _format(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    path = _location(tuple(error["loc"]), raw)
    message = str(error["msg"]).removeprefix("Value error, ")
    received = error.get("input")
    hint = _HINTS.get(error["type"], "")
    if error["type"] == "missing":
        return f"{path}: missing. {hint}"
    shown = json.dumps(received, default=str) if not isinstance(received, dict) else "{...}"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{path}: got {shown}: {message}. {hint}".rstrip(". ")


def parse_config(
    raw: Any, *, project_root: Path, schema_documents: Mapping[str, Any] | None = None
) -> PlatformConfig:
    """Parses and validates the ``mlops`` context value.

    Args:
        raw: the JSON value of ``context.mlops`` from cdk.json (or ``-c`` overrides).
        project_root: where model ``schemaFile`` paths are resolved from.
        schema_documents: decoded schemas by ``schemaFile`` path, checked instead of the
            files (``mlops add-model`` checks a schema before it writes it).

    Raises:
        ConfigError: listing every problem found.
    """
    if not isinstance(raw, dict):
        raise ConfigError(
            [
                f"{CONTEXT_KEY}: got {type(raw).__name__}; expected a JSON object. Fix: see cdk.json in the repository"
            ]
        )
    try:
        config = PlatformConfig.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise ConfigError([_format(e, raw) for e in exc.errors()]) from None
    problems = _cross_checks(config) + _check_models(config, project_root, schema_documents or {})
    if problems:
        raise ConfigError(problems)
    return config


def _cross_checks(config: PlatformConfig) -> list[str]:
    """Checks that need several fields at once; each problem names its field path."""
    problems: list[str] = []
    unknown = [s for s in config.default_stages if s not in config.stages]
    if unknown:
        problems.append(
            f"defaultStages: got {list(config.default_stages)}: names undefined stages {unknown}. "
            f"Fix: define them under stages or list only {sorted(config.stages)}"
        )
    for name, stage in config.stages.items():
        problems += _network_problems(name, stage)
        problems += _studio_problems(name, stage)
        problems += _monitoring_problems(name, stage, config.models)
        problems += _endpoint_problems(f"stages.{name}.endpoint", stage.endpoint)
        pipeline = stage.pipeline
        wait = pipeline.max_wait_seconds
        if pipeline.use_spot_training and (wait is None or wait < pipeline.max_runtime_seconds):
            problems.append(
                f"stages.{name}.pipeline.maxWaitSeconds: got {wait}: useSpotTraining needs "
                f"maxWaitSeconds >= maxRuntimeSeconds ({pipeline.max_runtime_seconds}). "
                f"Fix: set it to e.g. {2 * pipeline.max_runtime_seconds}, or turn spot off"
            )
    owners: dict[tuple[str | None, str], str] = {}
    for name, stage in config.stages.items():
        if not stage.owns_job_log_groups:
            continue
        place = (stage.account, stage.region)
        if place in owners:
            problems.append(
                f"stages.{name}.jobLogGroups: stages {owners[place]} and {name} both create "
                f"SageMaker's job log groups in account {stage.account or '(of the credentials)'}"
                f" and {stage.region}, which has one of each. Fix: set jobLogGroups to false "
                "on one of them"
            )
        owners.setdefault(place, name)
    names = [m.name for m in config.models]
    if not names:
        problems.append("models: got []: no models. Fix: define at least one model")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"models: duplicate names {duplicates}. Fix: give each model its own name")
    ids: dict[str, str] = {}
    for index, name in enumerate(names):
        other = ids.setdefault(pascal_case(name), name)
        if other != name:
            problems.append(
                f"models[{index}:{name}].name: {name!r} and {other!r} give the same construct "
                f"ID ({pascal_case(name)}). Fix: names that differ in more than hyphens"
            )
    groups = [g.name for g in config.feature_groups]
    duplicate_groups = sorted({n for n in groups if groups.count(n) > 1})
    if duplicate_groups:
        problems.append(
            f"featureGroups: duplicate names {duplicate_groups}. Fix: give each group its own name"
        )
    for index, group in enumerate(config.feature_groups):
        problems += _feature_group_problems(f"featureGroups[{index}:{group.name}]", group, names)
    for index, model in enumerate(config.models):
        if model.training_data != "offlineStore":
            continue
        stores = [g for g in config.feature_groups if g.model == model.name and g.offline_store]
        if not stores:
            problems.append(
                f"models[{index}:{model.name}].trainingData: got 'offlineStore': no feature "
                f"group of {model.name!r} has an offline store. Fix: add one to featureGroups "
                f'({{"name": "{model.name}-features", "model": "{model.name}"}}), or use '
                "'rawFiles'"
            )
    if config.release is not None:
        problems += _release_problems(config, config.release)
    return problems


def _monitoring_problems(
    name: str, stage: StageConfig, models: tuple[ModelConfig, ...]
) -> list[str]:
    """A stage's monitoring: a cadence the engine allows, N of M windows CloudWatch can
    evaluate, something to monitor, and Model Monitor only where it can monitor."""
    settings = stage.monitoring
    if not settings.enabled:
        return []
    where = f"stages.{name}.monitoring"
    problems: list[str] = []
    cadence, engine = settings.cadence_minutes, settings.engine
    lowest = MIN_CADENCE_MINUTES[engine]
    if cadence < lowest:
        problems.append(
            f"{where}.cadenceMinutes: got {cadence}: the {engine} engine runs at most every "
            f"{lowest} minutes. Fix: set cadenceMinutes to {lowest} or more"
        )
    elif engine == "model_monitor" and (cadence % 60 or 24 % (cadence // 60)):
        problems.append(
            f"{where}.cadenceMinutes: got {cadence}: Model Monitor schedules run every N "
            "hours, N dividing 24. Fix: one of 60, 120, 180, 240, 360, 480, 720, 1440"
        )
    elif engine == "scheduled" and cadence % 15:
        problems.append(
            f"{where}.cadenceMinutes: got {cadence}: the scheduled engine runs on 15-minute "
            f"steps. Fix: e.g. {max(15, cadence - cadence % 15)}"
        )
    retrain = settings.retrain
    if retrain.drift_windows > retrain.of_last_windows:
        problems.append(
            f"{where}.retrain.driftWindows: got {retrain.drift_windows}: more than "
            f"ofLastWindows ({retrain.of_last_windows}). Fix: driftWindows <= ofLastWindows"
        )
    limit = ALARM_RANGE_SECONDS["hourly" if cadence >= 60 else "under_an_hour"]
    if cadence * 60 * retrain.of_last_windows > limit:
        problems.append(
            f"{where}.retrain.ofLastWindows: got {retrain.of_last_windows}: "
            f"{retrain.of_last_windows} windows of {cadence} minutes exceed the "
            f"{limit // 86_400} day(s) a CloudWatch alarm evaluates. Fix: at most "
            f"{limit // (cadence * 60)} windows, or a longer cadence"
        )
    captures = stage.endpoint.capture_percent > 0
    if not captures and not settings.batch:
        problems.append(
            f"{where}.enabled: got true: nothing to monitor: the stage's endpoints capture no "
            "data (serverless, or dataCapturePercent 0) and batch is false. Fix: serve on "
            "instances with data capture, set batch to true, or set enabled to false"
        )
    if engine == "model_monitor":
        if stage.endpoint.serverless is not None or not captures:
            problems.append(
                f"{where}.engine: got 'model_monitor': Model Monitor monitors endpoints on "
                "instances that capture data; this stage's endpoints are serverless or "
                "capture nothing. Fix: serve on instances with dataCapturePercent above 0, "
                "or use the 'scheduled' engine"
            )
        for index, model in enumerate(models):
            if model.problem_type not in monitoring.MODEL_MONITOR_PROBLEM_TYPES:
                problems.append(
                    f"{where}.engine: got 'model_monitor': models[{index}:{model.name}] is "
                    f"{model.problem_type}: its endpoint returns class probabilities, and "
                    "Model Monitor's model quality needs the predicted label. Fix: use the "
                    "'scheduled' engine (it checks every problem type)"
                )
    return problems


def _studio_problems(name: str, stage: StageConfig) -> list[str]:
    """A stage's Studio settings: profiles only with a domain, unique, roles of its account."""
    studio = stage.studio
    where = f"stages.{name}.studio"
    problems: list[str] = []
    if studio.user_profiles and not studio.is_enabled(name):
        problems.append(
            f"{where}.userProfiles: got {len(studio.user_profiles)} profiles, but the stage has "
            'no Studio domain. Fix: set "enabled": true, or remove userProfiles'
        )
    names = [p.name for p in studio.user_profiles]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(
            f"{where}.userProfiles: duplicate names {duplicates}. Fix: one profile per person"
        )
    ids: dict[str, str] = {}
    for name in dict.fromkeys(names):
        other = ids.setdefault(pascal_case(name), name)
        if other != name:
            problems.append(
                f"{where}.userProfiles: {other!r} and {name!r} give the same construct ID "
                f"({pascal_case(name)}). Fix: names that differ in more than hyphens and the "
                "case of the letter after one"
            )
    for index, profile in enumerate(studio.user_profiles):
        match = ROLE_ARN_PATTERN.fullmatch(profile.execution_role_arn or "")
        if match and stage.account is not None and match.group(1) != stage.account:
            problems.append(
                f"{where}.userProfiles[{index}:{profile.name}].executionRoleArn: got "
                f"{profile.execution_role_arn!r}, a role of account {match.group(1)}; the "
                f"stage's account is {stage.account}. Fix: a role of {stage.account}, or leave "
                "it out for the domain's execution role"
            )
    return problems


def _release_problems(config: PlatformConfig, release: ReleaseConfig) -> list[str]:
    """A release must deploy every default stage once, in waves, and promote only forward."""
    problems: list[str] = []
    released = release.stages
    unknown = sorted({s for s in released if s not in config.stages})
    if unknown:
        problems.append(
            f"release.waves: got {[list(w) for w in release.waves]}: names undefined stages "
            f"{unknown}. Fix: use only {sorted(config.stages)}"
        )
    if not released or any(not wave for wave in release.waves):
        problems.append(
            f"release.waves: got {[list(w) for w in release.waves]}: an empty wave. Fix: list "
            'the stages in order, e.g. [["dev"], ["staging"], ["prod"]]'
        )
    repeated = sorted({s for s in released if released.count(s) > 1})
    if repeated:
        problems.append(
            f"release.waves: stages {repeated} appear more than once. Fix: release each once"
        )
    skipped = [s for s in config.default_stages if s not in released]
    if skipped:
        problems.append(
            f"release.waves: got {[list(w) for w in release.waves]}: skips {skipped} of "
            f"defaultStages {list(config.default_stages)}. Fix: add them to a wave"
        )
    order = {name: index for index, wave in enumerate(release.waves) for name in wave}
    for name in release.approvals:
        if name not in order:
            problems.append(
                f"release.approvalBefore: got {name!r}, which no wave deploys. Fix: use one "
                f"of {list(released)}"
            )
    for target, source in sorted(release.promotions.items()):
        where = f"release.promotions.{target}"
        if target not in order or source not in order:
            problems.append(
                f"{where}: got {source!r} -> {target!r}: both must be released stages "
                f"({list(released)}). Fix: name stages of release.waves"
            )
            continue
        if order[source] >= order[target]:
            problems.append(
                f"{where}: got {source!r}: it deploys in wave {order[source] + 1}, not before "
                f"{target!r} (wave {order[target] + 1}). Fix: promote from an earlier wave"
            )
        if target not in release.approvals:
            problems.append(
                f"{where}: {target!r} is served by promotion but no person approves it. "
                f'Fix: add "{target}" to release.approvalBefore'
            )
        if source in release.promotions:
            problems.append(
                f"{where}: {source!r} is itself promoted. Fix: promote from a stage that "
                "serves its own approvals"
            )
        if config.stages[source].region != config.stages[target].region:
            problems.append(
                f"{where}: {source!r} is in {config.stages[source].region}, {target!r} in "
                f"{config.stages[target].region}: a promotion copies a version within one region "
                "(its images and key are regional). Fix: promote between stages of one region"
            )
        source_account = config.stages[source].account or release.account
        target_account = config.stages[target].account or release.account
        readers = config.stages[source].model_reader_accounts
        if source_account != target_account and target_account not in readers:
            problems.append(
                f"stages.{source}.modelReaderAccounts: got {list(readers)}: {target!r} "
                f"({target_account or 'the release account'}) copies {source!r}'s versions "
                f'but may not read them. Fix: add "{target_account}"'
            )
    origin = release.source
    connection = (origin.connection_arn, origin.repository)
    bucket = (origin.bucket, origin.object_key)
    if any(v is not None for v in connection) == any(v is not None for v in bucket):
        problems.append(
            "release.source: give either connectionArn and repository (a CodeConnections "
            "connection) or bucket and objectKey (an S3 object), not both or neither. Fix: e.g. "
            '{"connectionArn": "arn:aws:codeconnections:...", "repository": "my-org/mlops"}'
        )
    elif None in connection and None in bucket:
        missing = "repository" if origin.connection_arn else "connectionArn"
        if origin.connection_arn is None and origin.repository is None:
            missing = "objectKey" if origin.bucket else "bucket"
        problems.append(f"release.source.{missing}: missing. Fix: add this field")
    elif origin.connection_arn is not None:
        match = CONNECTION_ARN.fullmatch(origin.connection_arn)
        if match is None:
            problems.append(
                f"release.source.connectionArn: got {origin.connection_arn!r}: not a "
                "CodeConnections connection ARN. Fix: copy it from the console (Developer "
                "Tools > Settings > Connections): arn:aws:codeconnections:<region>:<account>:"
                "connection/<id>"
            )
        else:
            if match.group(3) != release.region:
                problems.append(
                    f"release.source.connectionArn: got a connection in {match.group(3)}, but "
                    f"the pipeline runs in {release.region}. Fix: create the connection in "
                    f"{release.region}, or set release.region to {match.group(3)}"
                )
            if release.account is not None and match.group(4) != release.account:
                problems.append(
                    f"release.source.connectionArn: got a connection of account "
                    f"{match.group(4)}, but the pipeline runs in {release.account}. Fix: create "
                    "the connection in the release account"
                )
    if release.account is None:
        elsewhere = [
            s
            for s in released
            if s in config.stages
            and (config.stages[s].region != release.region or config.stages[s].account)
        ]
        if elsewhere:
            problems.append(
                f"release.account: got null, but stages {elsewhere} deploy to another region "
                "or a named account: a pipeline that deploys across accounts or regions needs "
                "its own account. Fix: set release.account to the tooling account's 12-digit ID"
            )
    return problems


def _feature_group_problems(where: str, group: FeatureGroupConfig, models: list[str]) -> list[str]:
    """Combinations Feature Store refuses (CreateFeatureGroup's own rules)."""
    problems = []
    if group.model not in models:
        problems.append(
            f"{where}.model: got {group.model!r}: {group.model!r} is not a configured model. "
            f"Fix: use one of {models}"
        )
    if not (group.online_store or group.offline_store):
        problems.append(
            f"{where}: onlineStore and offlineStore are both false: a feature group needs a "
            "store. Fix: turn one on"
        )
    if not group.online_store and group.online_ttl_days is not None:
        problems.append(
            f"{where}.onlineTtlDays: got {group.online_ttl_days}: a TTL applies to the "
            "online store, which is off. Fix: remove it or turn onlineStore on"
        )
    provisioned = group.throughput_mode == "Provisioned"
    if provisioned and group.online_store and group.online_storage_type == "InMemory":
        problems.append(
            f"{where}.throughputMode: got 'Provisioned': Feature Store provisions throughput "
            "only for offline-only groups and Standard online stores. Fix: use 'OnDemand' or "
            "onlineStorageType 'Standard'"
        )
    units = {
        "provisionedReadCapacityUnits": group.provisioned_read_capacity_units,
        "provisionedWriteCapacityUnits": group.provisioned_write_capacity_units,
    }
    for key, value in units.items():
        if not provisioned and value is not None:
            problems.append(
                f"{where}.{key}: got {value}: capacity units apply to throughputMode "
                "'Provisioned'. Fix: remove it, or set throughputMode to 'Provisioned'"
            )
    needed = ["provisionedWriteCapacityUnits"] + (
        ["provisionedReadCapacityUnits"] if group.online_store else []
    )
    for key in needed:
        if provisioned and units[key] is None:
            problems.append(
                f"{where}.{key}: missing: a provisioned group sets its capacity. Fix: e.g. 10"
            )
    return problems


#: UpdateEndpoint's limit on a blue/green deployment's duration (seconds).
MAX_DEPLOYMENT_SECONDS = 28_800
#: The smallest linear step SageMaker takes (LinearStepSize, % of the fleet).
MIN_LINEAR_STEP_PERCENT = 10
#: What a deployment's time-out allows for the new fleet to start (the construct's too).
DEPLOYMENT_START_SECONDS = 1800


def _endpoint_problems(where: str, endpoint: EndpointSettings) -> list[str]:
    """Endpoint settings SageMaker would refuse, or that contradict each other."""
    problems = []
    serverless = endpoint.serverless
    if serverless is not None:
        if endpoint.deployment != "all_at_once":
            problems.append(
                f"{where}.deployment: got {endpoint.deployment!r}: a serverless endpoint takes "
                "no canary or linear traffic shifting. Fix: use 'all_at_once', or serve on "
                "instances (remove serverless)"
            )
        if endpoint.rollback_alarms is not None:
            problems.append(
                f"{where}.rollbackAlarms: a serverless endpoint has no blue/green deployment "
                "with alarm rollback. Fix: remove rollbackAlarms, or remove serverless"
            )
        if endpoint.data_capture_percent:
            problems.append(
                f"{where}.dataCapturePercent: got {endpoint.data_capture_percent}: SageMaker "
                "Serverless Inference does not capture data. Fix: remove it, or remove serverless"
            )
        if endpoint.autoscaling is not None:
            problems.append(
                f"{where}.autoscaling: a serverless endpoint scales itself "
                "(serverless.maxConcurrency). Fix: remove autoscaling"
            )
        provisioned = serverless.provisioned_concurrency
        if provisioned is not None and provisioned > serverless.max_concurrency:
            problems.append(
                f"{where}.serverless.provisionedConcurrency: got {provisioned}: more than "
                f"maxConcurrency ({serverless.max_concurrency}). Fix: at most {serverless.max_concurrency}"
            )
        return problems
    scaling = endpoint.scaling
    if scaling.max_instances < scaling.min_instances:
        problems.append(
            f"{where}.autoscaling.maxInstances: got {scaling.max_instances}: below minInstances "
            f"({scaling.min_instances}). Fix: at least {scaling.min_instances}"
        )
    elif not scaling.min_instances <= endpoint.initial_instance_count <= scaling.max_instances:
        problems.append(
            f"{where}.initialInstanceCount: got {endpoint.initial_instance_count}: outside "
            f"autoscaling's {scaling.min_instances}..{scaling.max_instances}. Fix: a count in "
            "that range"
        )
    if endpoint.deployment == "linear" and endpoint.canary_percent < MIN_LINEAR_STEP_PERCENT:
        problems.append(
            f"{where}.canaryPercent: got {endpoint.canary_percent}: a linear step is "
            f"{MIN_LINEAR_STEP_PERCENT}-50% of the fleet. Fix: at least {MIN_LINEAR_STEP_PERCENT}"
        )
    if endpoint.deployment != "all_at_once":
        steps = -(-100 // endpoint.canary_percent) if endpoint.deployment == "linear" else 2
        # Traffic shifting, the final bake and half an hour for the new fleet to start.
        seconds = (steps + 1) * endpoint.bake_minutes * 60 + DEPLOYMENT_START_SECONDS
        if seconds > MAX_DEPLOYMENT_SECONDS:
            problems.append(
                f"{where}.bakeMinutes: got {endpoint.bake_minutes}: {steps} steps of "
                f"{endpoint.canary_percent}%, each baked, and a final bake take {seconds // 60} "
                f"minutes with the fleet's start, over SageMaker's {MAX_DEPLOYMENT_SECONDS // 60}."
                " Fix: a larger canaryPercent or fewer minutes"
            )
    return problems


def _network_problems(name: str, stage: StageConfig) -> list[str]:
    """A VPC that CDK and EC2 can build as configured."""
    problems = []
    vpc = stage.vpc
    network = ipaddress.IPv4Network(vpc.cidr)
    fits = 2 ** (SUBNET_PREFIX - network.prefixlen)
    if fits < vpc.max_azs:
        needed = SUBNET_PREFIX - math.ceil(math.log2(vpc.max_azs))
        problems.append(
            f"stages.{name}.vpc.cidr: got {vpc.cidr!r}: the VPC gets one /{SUBNET_PREFIX} subnet "
            f"per Availability Zone, and a /{network.prefixlen} holds {fits}, fewer than maxAzs "
            f"({vpc.max_azs}). Fix: use a /{needed} or larger block, or lower maxAzs"
        )
    if stage.account is None and vpc.max_azs > 2:
        problems.append(
            f"stages.{name}.vpc.maxAzs: got {vpc.max_azs}: without an account CDK cannot look "
            "up the region's Availability Zones and builds an account-agnostic stack, which "
            "spans 2 of them. Fix: set stages."
            f"{name}.account (then up to {vpc.max_azs} zones are used), or set maxAzs to 2"
        )
    return problems


def _check_models(config: PlatformConfig, root: Path, documents: Mapping[str, Any]) -> list[str]:
    """The contract's checks of each model: its schema file, its fit with the model's
    settings, its hyperparameters (with the schema's classes) and its quality gate."""
    problems: list[str] = []
    schemas: dict[str, contract.Schema] = {}
    for index, model in enumerate(config.models):
        where = f"models[{index}:{model.name}]"
        schema = _load_schema(model, f"{where}.schemaFile", root, problems, documents)
        if schema is not None:
            schemas[model.name] = schema
        classes = schema.classes if schema is not None else ()
        if schema is not None:
            if schema.target_name != model.target_column:
                problems.append(
                    f"{where}.targetColumn: got {model.target_column!r}, but {model.schema_file} "
                    f"declares target {schema.target_name!r}. Fix: make them the same"
                )
            problems += [
                p.render(f"{where}.schemaFile ({model.schema_file}) ")
                for p in contract.schema_fit_problems(schema, model.problem_type)
            ]
        problems += [
            p.render(f"{where}.hyperparameters.")
            for p in contract.hyperparameter_problems(
                model.hyperparameters, model.problem_type, classes
            )
        ]
        problems += _sent_hyperparameter_limits(model, where)
        if model.data_wrangler_flow is not None:
            problems += _flow_problems(model, f"{where}.dataWranglerFlow", root, schema)
        gate = model.quality_gate
        problems += [
            p.render(f"{where}.qualityGate.")
            for p in contract.gate_problems(model.problem_type, gate.metric, gate.threshold)
        ]
    return problems + _feature_lock_problems(config, root, schemas)


def _flow_problems(
    model: ModelConfig, where: str, root: Path, schema: contract.Schema | None
) -> list[str]:
    """A model's Data Wrangler flow: readable, runnable in the pipeline, and producing the
    schema's raw columns (checked offline; the container does not run at synth)."""
    from mlops import data_wrangler

    path = root / str(model.data_wrangler_flow)
    if not path.is_file():
        return [
            f"{where}: got {model.data_wrangler_flow!r}: no such file under the project. Fix: "
            "commit the .flow file exported from Data Wrangler and give its path from the "
            'project root, e.g. "data/flows/breast-cancer.flow"'
        ]
    try:
        flow = data_wrangler.load_flow(path)
    except data_wrangler.FlowError as error:
        return [f"{where}: {error}"]
    if schema is None:
        return []
    return [f"{where}: {problem}" for problem in data_wrangler.schema_problems(flow, schema)]


def _feature_lock_problems(
    config: PlatformConfig, root: Path, schemas: Mapping[str, contract.Schema]
) -> list[str]:
    """Changes that would make CloudFormation replace a deployed feature group (see
    :mod:`mlops.feature_lock`)."""
    from mlops import feature_lock

    locked = feature_lock.read(root / feature_lock.LOCK_FILE)
    problems = []
    for index, group in enumerate(config.feature_groups):
        schema = schemas.get(group.model)
        if schema is None:
            continue
        proposed = feature_lock.definition(
            schema, online_store=group.online_store,
            online_storage_type=group.online_storage_type, offline_store=group.offline_store,
        )  # fmt: skip
        for stage in config.stages:
            deployed = locked.get(stage, {}).get(group.name)
            if deployed is None:
                continue
            for change in feature_lock.replacing_changes(deployed, proposed):
                problems.append(
                    f"featureGroups[{index}:{group.name}]: stage {stage}: {change}: "
                    "CloudFormation would replace the deployed feature group (a new, empty "
                    f"group; see {feature_lock.LOCK_FILE}). Fix: add features under new "
                    "names instead (added features keep the group), or give the group a new "
                    "name and retire the old one; after a deliberate replacement, run "
                    "`mlops lock-feature-groups`"
                )
    return problems


def _load_schema(
    model: ModelConfig,
    where: str,
    root: Path,
    problems: list[str],
    documents: Mapping[str, Any],
) -> contract.Schema | None:
    """The model's schema, or None after adding its problems to ``problems``."""
    path = root / model.schema_file
    try:
        if model.schema_file in documents:
            doc = documents[model.schema_file]
        else:
            doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(
            f"{where}: got {model.schema_file!r}: no such file. Fix: point it at a schema JSON "
            "under data/schemas/"
        )
        return None
    except (OSError, ValueError) as exc:
        problems.append(
            f"{where}: got {model.schema_file!r}: not readable JSON ({exc}). Fix: repair the file"
        )
        return None
    found = contract.schema_problems(doc)
    if found:
        problems += [p.render(f"{where} ({model.schema_file}) ") for p in found]
        return None
    return contract.parse_schema(doc, model.schema_file)


def _sent_hyperparameter_limits(model: ModelConfig, where: str) -> list[str]:
    """CreateTrainingJob's limits (botocore HyperParameters): at most 100 entries, keys up
    to 256 characters, values (as sent: strings) up to 2,500."""
    problems = []
    sent = contract.hyperparameters_as_sent(
        {k: v for k, v in model.hyperparameters.items() if isinstance(v, (str, int, float))}
    )
    if len(model.hyperparameters) > 100:
        problems.append(
            f"{where}.hyperparameters: {len(model.hyperparameters)} entries; CreateTrainingJob "
            "accepts at most 100. Fix: drop unused ones"
        )
    for key, value in sent.items():
        if len(value) > 2500:
            problems.append(
                f"{where}.hyperparameters.{key}: {len(value)} characters; CreateTrainingJob "
                "accepts at most 2,500. Fix: shorten the value"
            )
    return problems


def load_config(raw: Any, *, project_root: Path) -> PlatformConfig:
    """Parses the ``mlops`` context value (``None`` if absent); see :func:`parse_config`."""
    if raw is None:
        raise ConfigError(
            [f"{CONTEXT_KEY}: missing from the CDK context. Fix: restore it in cdk.json"]
        )
    return parse_config(raw, project_root=project_root)

"""``mlops recommend``: which endpoint instance type to serve a model on, measured by
SageMaker Inference Recommender on the version a stage serves.

Usage::

  mlops recommend --model breast-cancer --stage dev [--instance-types ml.c5.large,ml.m5.large]
  mlops recommend --model breast-cancer --stage dev --wait-only --job-name NAME

It reads the model package the stage serves (SSM ``/mlops/<stage>/serving/<model>/model-package-arn``,
the version record ``mlops serve`` writes) and the job's role (``/mlops/<stage>/serving/recommender-role-arn``),
starts a ``Default`` (instance recommendation) job, waits for it, prints the benchmarks by cost
per inference and the ``cdk.json`` change that serves the cheapest instance type.

Exit codes: 0 the job completed, 1 it failed or AWS refused a call, 2 a mistake in the command
or config, or a prerequisite missing (no approved version, no sample payload, no role),
3 the job was still running when the wait ended (resume with ``--wait-only``).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from mlops import serving_record
from mlops.config import (
    CONTEXT_KEY,
    ConfigError,
    EndpointSettings,
    ModelConfig,
    PlatformConfig,
    StageConfig,
    load_config,
)
from pipeline_steps.steplib import contract

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: For ``mlops --help`` (the subcommand's one-line help) and its description.
HELP = "benchmark endpoint instance types for a stage's served version (Inference Recommender)"
DESCRIPTION = " ".join((__doc__ or "").split("\n\n")[0].split()).replace("``", "")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STILL_RUNNING = 3

#: The version record (``mlops/serving_record.py``): the model package a stage serves,
#: ``none`` until a version of the model is approved.
SERVING_VERSION_PARAMETER = serving_record.record_name("{stage}", "{model}")
NO_VERSION = serving_record.NO_VERSION
#: Written by the serving stack: the role Inference Recommender jobs of the stage run as.
RECOMMENDER_ROLE_PARAMETER = serving_record.recommender_role_parameter("{stage}")
#: Written by the data stack: where the sample payload is uploaded.
ARTIFACTS_BUCKET_PARAMETER = f"{serving_record.NAMESPACE}/{serving_record.ARTIFACTS_BUCKET_KEY}"

OPERATION = "CreateInferenceRecommendationsJob"
#: An instance recommendation job; ``Advanced`` (a custom load test) is not needed to limit
#: the instance types: a Default job takes them as ``ContainerConfig.SupportedInstanceTypes``.
JOB_TYPE = "Default"
JOB_NAME_LENGTH = 63
DOMAIN = "MACHINE_LEARNING"
FRAMEWORK = "XGBOOST"
#: The sample payload's requests: raw feature rows, as the endpoint accepts them.
PAYLOAD_CONTENT_TYPE = "text/csv"
#: Only real-time endpoints: the stage's endpoint has an instance type (no serverless).
ENDPOINT_TYPE = "RealTime"
PAYLOAD_REQUESTS = 20
#: Inference Recommender does not load-test burstable types (its troubleshooting guide:
#: they give no consistent performance).
UNSUPPORTED_FAMILIES = ("ml.t2.",)

RUNNING = frozenset({"PENDING", "IN_PROGRESS", "STOPPING"})
COMPLETED = "COMPLETED"

#: ``service, region -> client``: everything that talks to AWS gets its clients from one.
ClientFactory = Callable[[str, str], Any]


class RecommendError(Exception):
    """A mistake in the command or config, or a missing prerequisite: exit 2, one message."""


def boto3_clients(service: str, region: str) -> Any:
    """The default client factory: boto3 with the caller's credentials."""
    import boto3

    return boto3.session.Session().client(service, region_name=region)


@cache
def _service_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


# --------------------------------------------------------------------------- config


def read_config(project_root: Path) -> PlatformConfig:
    """The validated platform config of ``<project_root>/cdk.json``."""
    path = project_root / "cdk.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecommendError(f"{path}: no such file. Fix: run from the project") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecommendError(f"{path}: not valid JSON ({error}). Fix: repair it") from None
    try:
        return load_config(doc.get("context", {}).get(CONTEXT_KEY), project_root=project_root)
    except ConfigError as error:
        raise RecommendError(f"config:\n{error}") from None


def select(
    config: PlatformConfig, model_name: str, stage_name: str
) -> tuple[ModelConfig, StageConfig]:
    """The model and the stage named on the command line; unknown names list the known ones."""
    problems = []
    try:
        model = config.model(model_name)
    except KeyError:
        problems.append(
            f"--model: no model named {model_name!r} in cdk.json; models are "
            f"{[m.name for m in config.models]}"
        )
    if stage_name not in config.stages:
        problems.append(
            f"--stage: no stage named {stage_name!r} in cdk.json; stages are {list(config.stages)}"
        )
    if problems:
        raise RecommendError("\n".join(problems))
    return model, config.stages[stage_name]


def config_key(stage_name: str, field: str) -> str:
    """The cdk.json path of an endpoint setting of a stage, in cdk.json's own (camelCase) keys."""
    stages = PlatformConfig.model_fields["stages"].alias or "stages"
    endpoint = StageConfig.model_fields["endpoint"].alias or "endpoint"
    key = EndpointSettings.model_fields[field].alias or field
    return f"context.{CONTEXT_KEY}.{stages}.{stage_name}.{endpoint}.{key}"


# --------------------------------------------------------------------------- the request


def default_job_name(model_name: str, stage_name: str, now: datetime) -> str:
    """``<model>-<stage>-<UTC yyyymmddHHMMSS>``, the prefix shortened to fit 63 characters."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    prefix = f"{model_name}-{stage_name}"[: JOB_NAME_LENGTH - len(stamp) - 1].rstrip("-")
    return f"{prefix}-{stamp}"


def parse_instance_types(text: str | None) -> list[str]:
    """``--instance-types``: a comma list of endpoint instance types, in order, without repeats.

    Left out (``None``), the job picks the types itself (an empty list).
    """
    if text is None:
        return []
    types = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not types:
        raise RecommendError("--instance-types: empty. Fix: e.g. ml.c5.large,ml.m5.large")
    allowed = set(_service_model().shape_for("ProductionVariantInstanceType").enum)
    unknown = [t for t in types if t not in allowed]
    if unknown:
        raise RecommendError(
            f"--instance-types: {unknown} are not SageMaker endpoint instance types. "
            "Fix: use types such as ml.c5.large, ml.m5.large, ml.c6i.large"
        )
    burstable = [t for t in types if t.startswith(UNSUPPORTED_FAMILIES)]
    if burstable:
        raise RecommendError(
            f"--instance-types: {burstable}: Inference Recommender does not load-test "
            "burstable instances (no consistent performance). Fix: leave them out"
        )
    return types


def container_config(
    model: ModelConfig, sample_payload_url: str, instance_types: Sequence[str]
) -> dict[str, Any]:
    """What the job needs to know about the model (it overrides the model package's fields).

    Args:
        instance_types: the types to benchmark; empty: the job chooses them.
    """
    config: dict[str, Any] = {
        "Domain": DOMAIN,
        "Task": contract.problem(model.problem_type).task,
        "Framework": FRAMEWORK,
        "FrameworkVersion": model.algorithm.version,
        "PayloadConfig": {
            "SamplePayloadUrl": sample_payload_url,
            "SupportedContentTypes": [PAYLOAD_CONTENT_TYPE],
        },
        "SupportedEndpointType": ENDPOINT_TYPE,
    }
    if instance_types:
        config["SupportedInstanceTypes"] = list(instance_types)
    return config


def job_request(
    *,
    job_name: str,
    role_arn: str,
    model_package_arn: str,
    model: ModelConfig,
    stage_name: str,
    stage: StageConfig,
    sample_payload_url: str,
    instance_types: Sequence[str] = (),
) -> dict[str, Any]:
    """The CreateInferenceRecommendationsJob request (tagged with the stage's tags)."""
    request: dict[str, Any] = {
        "JobName": job_name,
        "JobType": JOB_TYPE,
        "RoleArn": role_arn,
        "InputConfig": {
            "ModelPackageVersionArn": model_package_arn,
            "ContainerConfig": container_config(model, sample_payload_url, instance_types),
        },
        "JobDescription": f"mlops recommend: instance types for {model.name} in {stage_name}"[:128],
    }
    if stage.tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(stage.tags.items())]
    return request


def shape_problems(value: Any, shape: Any, path: str) -> list[str]:
    """Where ``value`` breaks the lengths, enums and patterns of botocore's ``shape`` (which
    botocore's own validation does not check). A pattern Python cannot compile is skipped."""
    problems: list[str] = []
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                problems += shape_problems(value[name], member, f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            problems += shape_problems(item, shape.member, f"{path}[{i}]")
    elif kind == "string" and isinstance(value, str):
        meta = shape.metadata
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of the API's values")
        low, high = meta.get("min", 0), meta.get("max")
        if len(value) < low or (high is not None and len(value) > high):
            problems.append(
                f"{path}: {value!r} has {len(value)} characters; the API allows "
                f"{low} to {high if high is not None else 'any number'}"
            )
        pattern = meta.get("pattern")
        if pattern:
            try:
                matches = re.fullmatch(pattern, value) is not None
            except re.error:
                matches = True
            if not matches:
                problems.append(f"{path}: {value!r} does not match the API's pattern {pattern}")
    return problems


def request_problems(request: Mapping[str, Any]) -> list[str]:
    """Every way ``request`` breaks CreateInferenceRecommendationsJob's input shape."""
    from botocore.validate import ParamValidator

    shape = _service_model().operation_model(OPERATION).input_shape
    report = ParamValidator().validate(request, shape)
    problems = [line for line in report.generate_report().splitlines() if line.strip()]
    return problems + shape_problems(request, shape, "")


def check_argument(value: str, shape_name: str, flag: str, fix: str) -> None:
    """Refuses a command-line value that the API's shape ``shape_name`` would reject."""
    problems = shape_problems(value, _service_model().shape_for(shape_name), flag)
    if problems:
        raise RecommendError(f"{problems[0]}. Fix: {fix}")


def check_job_name(name: str) -> None:
    check_argument(
        name, "RecommendationJobName", "--job-name",
        "1-64 letters, digits and hyphens, starting and ending with a letter or digit",
    )  # fmt: skip


def check_payload_url(url: str) -> None:
    if not re.fullmatch(r"s3://[^/]+/.+\.tar\.gz", url):
        raise RecommendError(
            f"--sample-payload-url: {url!r}: Inference Recommender reads one gzip-compressed "
            "tar archive from S3. Fix: s3://BUCKET/KEY.tar.gz"
        )


# --------------------------------------------------------------------------- AWS reads


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def approve_hint(model_name: str, region: str, stage_name: str) -> str:
    group = serving_record.model_package_group_name(stage_name, model_name)
    return (
        "Fix: approve a version, then record it as served (mlops serve):\n"
        f"  aws sagemaker list-model-packages --region {region} --model-package-group-name "
        f"{group} --sort-by CreationTime --sort-order Descending\n"
        f"  aws sagemaker update-model-package --region {region} --model-package-arn "
        "<ModelPackageArn> --model-approval-status Approved\n"
        f"  mlops serve --stage {stage_name} --model {model_name}\n"
        "or pass --model-package-arn"
    )


def served_version(ssm: Any, stage_name: str, model_name: str, region: str) -> str:
    """The model package ARN the stage serves, from the serving stack's SSM parameter."""
    name = SERVING_VERSION_PARAMETER.format(stage=stage_name, model=model_name)
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"].strip()
    except ClientError as error:
        if _error_code(error) != "ParameterNotFound":
            raise
        raise RecommendError(
            f"no version of {model_name} is approved for {stage_name}: SSM parameter {name} does "
            f"not exist in {region} (is the data stack of {stage_name} deployed? it creates it).\n"
            + approve_hint(model_name, region, stage_name)
        ) from None
    if value == NO_VERSION:
        raise RecommendError(
            f"no version of {model_name} is approved for {stage_name} ({name} is "
            f"{NO_VERSION!r}).\n" + approve_hint(model_name, region, stage_name)
        )
    return value


def recommender_role(ssm: Any, stage_name: str, region: str) -> str:
    """The role the stage's Inference Recommender jobs run as (written by the serving stack)."""
    name = RECOMMENDER_ROLE_PARAMETER.format(stage=stage_name)
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"]).strip()
    except ClientError as error:
        if _error_code(error) != "ParameterNotFound":
            raise
        raise RecommendError(
            f"SSM parameter {name} does not exist in {region}. Fix: deploy the serving stack "
            f"of {stage_name}, or pass --role-arn"
        ) from None


def package_payload_url(package: Mapping[str, Any]) -> str | None:
    """The sample payload registered with a model package (DescribeModelPackage), if any."""
    url = package.get("SamplePayloadUrl")
    return str(url) if url else None


def payload_instructions(
    *,
    model: ModelConfig,
    stage_name: str,
    region: str,
    model_package_arn: str,
    project_root: Path,
    requests: int = PAYLOAD_REQUESTS,
) -> str:
    """How to make and upload a sample payload for ``model``: exact shell commands."""
    schema = contract.parse_schema(
        json.loads((project_root / model.schema_file).read_text(encoding="utf-8")),
        model.schema_file,
    )
    columns = [schema.source_of(name) for name in schema.feature_names]
    raw_dir = f"data/raw/{model.data_prefix.rstrip('/')}"
    key = f"recommender/{model.name}/payload.tar.gz"
    bucket_parameter = ARTIFACTS_BUCKET_PARAMETER.format(stage=stage_name)
    script = "\n".join(
        [
            "import csv, glob, os, sys",
            f"columns = {json.dumps(columns)}",
            f"files = sorted(glob.glob({json.dumps(raw_dir + '/**/*.csv')}, recursive=True))",
            f"if not files: sys.exit({json.dumps('no CSV files under ' + raw_dir)})",
            'with open(files[0], newline="", encoding="utf-8") as source:',
            f"    for i, row in zip(range({requests}), csv.DictReader(source)):",
            '        path = os.path.join(sys.argv[1], f"request-{i:03d}.csv")',
            '        with open(path, "w", newline="", encoding="utf-8") as out:',
            "            csv.writer(out).writerow([row[c] for c in columns])",
        ]
    )
    return "\n".join(
        [
            f"no sample payload: the model package {model_package_arn} has no "
            "SamplePayloadUrl and --sample-payload-url was not given.",
            "Inference Recommender sends requests from a .tar.gz of request files. Each file "
            f"here is one {PAYLOAD_CONTENT_TYPE} request: one raw row of the schema's "
            f"{len(columns)} features in schema order, without the target "
            f"({schema.target_name}), the record id or the event time. From the project "
            f"root, with the local raw data ({raw_dir}/):",
            "",
            '  PAYLOAD="$(mktemp -d)"',
            "  python3 - \"$PAYLOAD\" <<'EOF'",
            *(f"  {line}" for line in script.splitlines()),
            "  EOF",
            '  tar -czf "$PAYLOAD.tar.gz" -C "$PAYLOAD" .',
            f'  BUCKET="$(aws ssm get-parameter --region {region} --name {bucket_parameter} '
            '--query Parameter.Value --output text | cut -d: -f6)"',
            f'  aws s3 cp "$PAYLOAD.tar.gz" "s3://$BUCKET/{key}" --region {region}',
            f"  mlops recommend --model {model.name} --stage {stage_name} "
            f'--sample-payload-url "s3://$BUCKET/{key}"',
        ]
    )


# --------------------------------------------------------------------------- waiting


def wait_for_job(
    sagemaker: Any,
    job_name: str,
    *,
    max_wait_seconds: float,
    poll_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict[str, Any] | None:
    """Polls the job until it ends; ``None`` if it is still running after ``max_wait_seconds``.

    Logs one line per poll: the status and the minutes waited.
    """
    start = clock()
    while True:
        job = sagemaker.describe_inference_recommendations_job(JobName=job_name)
        waited = clock() - start
        log(f"{job_name}: {job['Status']} ({waited / 60:.1f} min waited)")
        if job["Status"] not in RUNNING:
            return dict(job)
        if waited >= max_wait_seconds:
            return None
        sleep(min(poll_seconds, max_wait_seconds - waited))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Recommendation:
    """One benchmarked endpoint configuration of a completed job."""

    instance_type: str | None
    serverless: str | None
    instance_count: int | None
    cost_per_hour: float | None
    cost_per_inference: float | None
    model_latency_ms: int | None
    max_invocations_per_minute: int | None
    cpu_utilization: float | None
    memory_utilization: float | None
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return self.instance_type or f"serverless {self.serverless}"


def recommendations(job: Mapping[str, Any]) -> list[Recommendation]:
    """The job's InferenceRecommendations, cheapest per inference first (unknown costs last,
    then by latency)."""
    rows = []
    for item in job.get("InferenceRecommendations", []):
        metrics = item.get("Metrics", {})
        endpoint = item.get("EndpointConfiguration", {})
        serverless = endpoint.get("ServerlessConfig")
        environment = item.get("ModelConfiguration", {}).get("EnvironmentParameters", [])
        rows.append(
            Recommendation(
                instance_type=endpoint.get("InstanceType"),
                serverless=(
                    f"{serverless['MemorySizeInMB']} MB x{serverless['MaxConcurrency']}"
                    if serverless
                    else None
                ),
                instance_count=endpoint.get("InitialInstanceCount"),
                cost_per_hour=metrics.get("CostPerHour"),
                cost_per_inference=metrics.get("CostPerInference"),
                model_latency_ms=metrics.get("ModelLatency"),
                max_invocations_per_minute=metrics.get("MaxInvocations"),
                cpu_utilization=metrics.get("CpuUtilization"),
                memory_utilization=metrics.get("MemoryUtilization"),
                environment=tuple((e["Key"], e["Value"]) for e in environment),
            )
        )

    def order(row: Recommendation) -> tuple:
        latency = row.model_latency_ms
        return (
            row.cost_per_inference is None,
            row.cost_per_inference or 0.0,
            latency is None,
            latency or 0,
            row.label,
        )

    return sorted(rows, key=order)


def _or_dash(value: Any, fmt: Callable[[Any], str]) -> str:
    return "-" if value is None else fmt(value)


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns two spaces apart, under a header and a rule."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def render(rows: Sequence[Recommendation]) -> str:
    """The recommendations as a table; CPU, memory and environment columns only when a row
    has them."""
    columns: list[tuple[str, Callable[[Recommendation], str]]] = [
        ("instance type", lambda r: r.label),
        ("count", lambda r: _or_dash(r.instance_count, str)),
        ("cost/hour", lambda r: _or_dash(r.cost_per_hour, lambda v: f"${v:.4f}")),
        ("cost/inference", lambda r: _or_dash(r.cost_per_inference, lambda v: f"${v:.2e}")),
        ("latency ms", lambda r: _or_dash(r.model_latency_ms, str)),
        ("max invocations/min", lambda r: _or_dash(r.max_invocations_per_minute, "{:,}".format)),
    ]
    if any(r.cpu_utilization is not None for r in rows):
        columns.append(("CPU", lambda r: _or_dash(r.cpu_utilization, lambda v: f"{v:.1f}%")))
    if any(r.memory_utilization is not None for r in rows):
        columns.append(("memory", lambda r: _or_dash(r.memory_utilization, lambda v: f"{v:.1f}%")))
    if any(r.environment for r in rows):
        columns.append(
            ("environment", lambda r: " ".join(f"{k}={v}" for k, v in r.environment) or "-")
        )
    return table([[cell(r) for _, cell in columns] for r in rows], [h for h, _ in columns])


def choose(rows: Sequence[Recommendation], max_latency_ms: int | None) -> Recommendation | None:
    """The cheapest instance-backed row (rows come sorted) within ``max_latency_ms``
    (any latency when ``None``)."""
    for row in rows:
        if row.instance_type is None:
            continue
        if max_latency_ms is None or (
            row.model_latency_ms is not None and row.model_latency_ms <= max_latency_ms
        ):
            return row
    return None


def feedback(
    rows: Sequence[Recommendation], stage_name: str, stage: StageConfig, max_latency_ms: int | None
) -> str:
    """How to serve the chosen instance type: the cdk.json key, then ``make synth``."""
    within = f" within {max_latency_ms} ms" if max_latency_ms is not None else ""
    best = choose(rows, max_latency_ms)
    key = config_key(stage_name, "instance_type")
    current = stage.endpoint.instance_type
    if best is None:
        return (
            f"no instance type met the latency{within}; {key} stays {current!r}. "
            "Fix: raise --max-latency-ms, or benchmark other --instance-types"
        )
    assert best.instance_type is not None
    if best.instance_type == current:
        return f"cheapest per inference{within}: {current}, which {key} already is."
    count = config_key(stage_name, "initial_instance_count")
    return "\n".join(
        [
            f"cheapest per inference{within}: {best.instance_type} "
            f"({_or_dash(best.model_latency_ms, str)} ms model latency). To serve it in "
            f"{stage_name}, set in cdk.json",
            f'  {key}: "{best.instance_type}"   (now "{current}")',
            f"and keep {count} at {stage.endpoint.initial_instance_count} (the job measured "
            f"{_or_dash(best.instance_count, str)} instance(s) at peak load), then run",
            "  make synth",
        ]
    )


# --------------------------------------------------------------------------- the command


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: use a value > 0")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's arguments to ``parser`` and sets its ``run`` default to :func:`run`."""
    parser.add_argument("--model", required=True, help="the model's name in cdk.json")
    parser.add_argument("--stage", required=True, help="the stage whose served version to test")
    parser.add_argument("--region", help="default: the stage's region in cdk.json")
    parser.add_argument(
        "--model-package-arn",
        help="the version to test (default: the one the stage serves, from SSM)",
    )
    parser.add_argument(
        "--role-arn", help="the job's role (default: the serving stack's, from SSM)"
    )
    parser.add_argument(
        "--job-name", help="default: <model>-<stage>-<UTC yyyymmddHHMMSS> (63 characters at most)"
    )
    parser.add_argument(
        "--instance-types",
        help="comma list of instance types to benchmark (default: the job chooses)",
    )
    parser.add_argument(
        "--sample-payload-url",
        help="s3:// .tar.gz of sample requests (default: the model package's SamplePayloadUrl)",
    )
    parser.add_argument(
        "--max-latency-ms",
        type=_positive(int),
        help="suggest the cheapest type within this model latency (default: any latency)",
    )
    parser.add_argument(
        "--max-wait-minutes",
        type=_positive(float),
        default=90.0,
        help="stop waiting after this long; the job keeps running (default 90)",
    )
    parser.add_argument("--poll-seconds", type=_positive(float), default=30.0, help="default 30")
    parser.add_argument(
        "--wait-only",
        action="store_true",
        help="wait for the job --job-name started earlier, without starting one",
    )
    parser.set_defaults(run=run)


def _resume_command(args: argparse.Namespace, job_name: str) -> str:
    parts = ["mlops", "recommend", "--model", args.model, "--stage", args.stage]
    if args.region:
        parts += ["--region", args.region]
    if args.max_latency_ms is not None:
        parts += ["--max-latency-ms", str(args.max_latency_ms)]
    parts += ["--wait-only", "--job-name", job_name]
    return shlex.join(parts)


def _start(
    args: argparse.Namespace,
    *,
    model: ModelConfig,
    stage: StageConfig,
    region: str,
    job_name: str,
    clients: ClientFactory,
    project_root: Path,
) -> None:
    """Reads the version, its payload and the role, then starts the job."""
    instance_types = parse_instance_types(args.instance_types)
    if args.sample_payload_url:
        check_payload_url(args.sample_payload_url)
    if args.model_package_arn:
        check_argument(
            args.model_package_arn, "ModelPackageArn", "--model-package-arn",
            "a versioned model package ARN, arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/N",
        )  # fmt: skip
    if args.role_arn:
        check_argument(
            args.role_arn,
            "RoleArn",
            "--role-arn",
            "an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME",
        )
    ssm = clients("ssm", region)
    sagemaker = clients("sagemaker", region)
    arn = args.model_package_arn or served_version(ssm, args.stage, model.name, region)
    payload = args.sample_payload_url
    if not payload:
        payload = package_payload_url(sagemaker.describe_model_package(ModelPackageName=arn))
    if not payload:
        raise RecommendError(
            payload_instructions(
                model=model,
                stage_name=args.stage,
                region=region,
                model_package_arn=arn,
                project_root=project_root,
            )
        )
    role = args.role_arn or recommender_role(ssm, args.stage, region)
    request = job_request(
        job_name=job_name, role_arn=role, model_package_arn=arn, model=model,
        stage_name=args.stage, stage=stage, sample_payload_url=payload,
        instance_types=instance_types,
    )  # fmt: skip
    problems = request_problems(request)
    if problems:
        raise RecommendError(
            f"the {OPERATION} request is not valid:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    started = sagemaker.create_inference_recommendations_job(**request)
    print(
        f"started Inference Recommender job {job_name} ({started['JobArn']}) on {arn}",
        file=sys.stderr,
    )


def run(
    args: argparse.Namespace,
    *,
    clients: ClientFactory = boto3_clients,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Runs ``mlops recommend`` with parsed arguments; returns the exit code.

    Args:
        clients: makes the AWS clients (``service, region``); boto3's by default.
        clock, sleep: what the wait measures time with and sleeps with.
        now: the time the default job name carries.
    """
    try:
        project_root = Path(getattr(args, "project_root", None) or PROJECT_ROOT).resolve()
        config = read_config(project_root)
        model, stage = select(config, args.model, args.stage)
        region = args.region or stage.region
        if args.wait_only and not args.job_name:
            raise RecommendError("--wait-only needs --job-name (the job to wait for)")
        job_name = args.job_name or default_job_name(model.name, args.stage, now())
        check_job_name(job_name)
        if not args.wait_only:
            _start(
                args, model=model, stage=stage, region=region, job_name=job_name,
                clients=clients, project_root=project_root,
            )  # fmt: skip
        job = wait_for_job(
            clients("sagemaker", region), job_name,
            max_wait_seconds=args.max_wait_minutes * 60, poll_seconds=args.poll_seconds,
            clock=clock, sleep=sleep,
        )  # fmt: skip
    except RecommendError as error:
        print(f"mlops recommend: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ParamValidationError as error:
        print(f"mlops recommend: invalid request: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as error:
        operation = error.operation_name
        print(f"mlops recommend: AWS refused {operation}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except BotoCoreError as error:
        print(f"mlops recommend: {error}", file=sys.stderr)
        return EXIT_FAILED
    if job is None:
        print(
            f"mlops recommend: job {job_name} is still running after {args.max_wait_minutes:g} "
            f"minutes; it keeps running. Resume waiting with:\n  {_resume_command(args, job_name)}\n"
            f"or stop it: aws sagemaker stop-inference-recommendations-job --region {region} "
            f"--job-name {job_name}",
            file=sys.stderr,
        )
        return EXIT_STILL_RUNNING
    if job["Status"] != COMPLETED:
        reason = job.get("FailureReason") or "no reason given"
        print(
            f"mlops recommend: job {job_name} ended {job['Status']}: {reason}\n"
            f"details: aws sagemaker describe-inference-recommendations-job --region {region} "
            f"--job-name {job_name}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    rows = recommendations(job)
    if not rows:
        print(f"mlops recommend: job {job_name} completed with no recommendations", file=sys.stderr)
        return EXIT_FAILED
    print(f"{model.name} in {args.stage}: Inference Recommender job {job_name}")
    print(render(rows))
    print()
    print(feedback(rows, args.stage, stage, args.max_latency_ms))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops recommend", description=DESCRIPTION)
    p.add_argument("--project-root", default=str(PROJECT_ROOT), help=argparse.SUPPRESS)
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None, **overrides: Any) -> int:
    """``mlops recommend`` on its own. ``overrides`` go to :func:`run` (clients, clock,
    sleep, now)."""
    args = parser().parse_args(argv)
    return run(args, **overrides)


if __name__ == "__main__":
    sys.exit(main())

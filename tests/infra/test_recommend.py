"""``mlops recommend`` against stubbed SSM and SageMaker clients (botocore Stubber on real
boto3 clients, fake credentials, no network) and the project's cdk.json."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlops import recommend
from pipeline_steps.steplib import contract

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
MODEL = "breast-cancer"
STAGE = "dev"
ARN = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/dev-breast-cancer/3"
ROLE = "arn:aws:iam::123456789012:role/dev-recommender"
PAYLOAD = "s3://dev-artifacts/recommender/breast-cancer/payload.tar.gz"
NOW = datetime(2026, 11, 3, 4, 5, 6, tzinfo=UTC)
JOB = "breast-cancer-dev-20261103040506"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:inference-recommendations-job/{JOB}"
VERSION_PARAMETER = f"/mlops/{STAGE}/serving/{MODEL}/model-package-arn"
ROLE_PARAMETER = f"/mlops/{STAGE}/serving/recommender-role-arn"


class FakeClock:
    """A monotonic clock that only ``sleep`` advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Aws:
    """Stubbed clients by service, and the factory ``run`` takes."""

    def __init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        self.ssm = session.client("ssm")
        self.sagemaker = session.client("sagemaker")
        self.ssm_stub = Stubber(self.ssm)
        self.sm_stub = Stubber(self.sagemaker)
        self.regions: list[tuple[str, str]] = []

    def __call__(self, service: str, region: str) -> Any:
        self.regions.append((service, region))
        return {"ssm": self.ssm, "sagemaker": self.sagemaker}[service]

    def parameter(self, name: str, value: str) -> None:
        self.ssm_stub.add_response(
            "get_parameter",
            {"Parameter": {"Name": name, "Type": "String", "Value": value}},
            {"Name": name},
        )

    def missing_parameter(self, name: str) -> None:
        self.ssm_stub.add_client_error(
            "get_parameter",
            service_error_code="ParameterNotFound",
            http_status_code=400,
            expected_params={"Name": name},
        )

    def package(self, arn: str = ARN, sample_payload_url: str | None = None) -> None:
        response: dict[str, Any] = {
            "ModelPackageName": "dev-breast-cancer",
            "ModelPackageArn": arn,
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": "Approved",
            "Domain": "MACHINE_LEARNING",
            "Task": "CLASSIFICATION",
        }
        if sample_payload_url:
            response["SamplePayloadUrl"] = sample_payload_url
        self.sm_stub.add_response("describe_model_package", response, {"ModelPackageName": arn})

    def create(self, request: dict[str, Any]) -> None:
        self.sm_stub.add_response(
            "create_inference_recommendations_job", {"JobArn": JOB_ARN}, request
        )

    def describe(self, status: str, job: str = JOB, **extra: Any) -> None:
        response = {
            "JobName": job,
            "JobType": "Default",
            "JobArn": JOB_ARN,
            "RoleArn": ROLE,
            "Status": status,
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
            "InputConfig": {"ModelPackageVersionArn": ARN},
            **extra,
        }
        self.sm_stub.add_response(
            "describe_inference_recommendations_job", response, {"JobName": job}
        )


@pytest.fixture
def aws() -> Iterator[Aws]:
    fake = Aws()
    with fake.ssm_stub, fake.sm_stub:
        yield fake
        fake.ssm_stub.assert_no_pending_responses()
        fake.sm_stub.assert_no_pending_responses()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def run(aws: Aws, clock: FakeClock, *argv: str) -> int:
    return recommend.main(
        ["--model", MODEL, "--stage", STAGE, *argv],
        clients=aws,
        clock=clock,
        sleep=clock.sleep,
        now=lambda: NOW,
    )


def expected_request(
    *, arn: str = ARN, payload: str = PAYLOAD, instance_types: list[str] | None = None
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "Domain": "MACHINE_LEARNING",
        "Task": "CLASSIFICATION",
        "Framework": "XGBOOST",
        "FrameworkVersion": "3.0-5",
        "PayloadConfig": {"SamplePayloadUrl": payload, "SupportedContentTypes": ["text/csv"]},
        "SupportedEndpointType": "RealTime",
    }
    if instance_types:
        container["SupportedInstanceTypes"] = instance_types
    return {
        "JobName": JOB,
        "JobType": "Default",
        "RoleArn": ROLE,
        "InputConfig": {"ModelPackageVersionArn": arn, "ContainerConfig": container},
        "JobDescription": "mlops recommend: instance types for breast-cancer in dev",
        "Tags": [{"Key": "Project", "Value": "sagemaker-mlops"}, {"Key": "Stage", "Value": "dev"}],
    }


def benchmark(
    instance_type: str,
    cost_per_hour: float,
    cost_per_inference: float,
    latency: int,
    invocations: int,
    **metrics: float,
) -> dict[str, Any]:
    return {
        "RecommendationId": f"{instance_type}-id",
        "Metrics": {
            "CostPerHour": cost_per_hour,
            "CostPerInference": cost_per_inference,
            "ModelLatency": latency,
            "MaxInvocations": invocations,
            **metrics,
        },
        "EndpointConfiguration": {
            "EndpointName": f"ir-{instance_type.replace('.', '-')}",
            "VariantName": "AllTraffic",
            "InstanceType": instance_type,
            "InitialInstanceCount": 1,
        },
        "ModelConfiguration": {
            "EnvironmentParameters": [{"Key": "OMP_NUM_THREADS", "ValueType": "str", "Value": "2"}]
        },
    }


BENCHMARKS = [
    benchmark("ml.m5.xlarge", 0.23, 2.4e-06, 4, 1600, CpuUtilization=31.25, MemoryUtilization=8.5),
    benchmark("ml.c5.large", 0.102, 1.1e-06, 9, 1550, CpuUtilization=72.0, MemoryUtilization=20.0),
    benchmark("ml.m5.large", 0.115, 1.9e-06, 6, 1000, CpuUtilization=60.5, MemoryUtilization=14.0),
]


# --------------------------------------------------------------------------- starting a job


def test_approved_version_starts_the_exact_request_and_prints_sorted_table(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.parameter(VERSION_PARAMETER, ARN)
    aws.package(sample_payload_url=PAYLOAD)
    aws.parameter(ROLE_PARAMETER, ROLE)
    aws.create(expected_request())
    aws.describe("IN_PROGRESS")
    aws.describe("IN_PROGRESS")
    aws.describe("COMPLETED", InferenceRecommendations=BENCHMARKS)

    assert run(aws, clock) == 0

    out, err = capsys.readouterr()
    assert clock.sleeps == [30.0, 30.0]
    assert {region for _, region in aws.regions} == {REGION}  # the stage's region in cdk.json
    assert f"started Inference Recommender job {JOB} ({JOB_ARN}) on {ARN}" in err
    assert f"{JOB}: IN_PROGRESS (0.0 min waited)" in err
    assert f"{JOB}: IN_PROGRESS (0.5 min waited)" in err
    assert f"{JOB}: COMPLETED (1.0 min waited)" in err
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("instance type")))
    assert lines[header].split("  ")[0] == "instance type"
    for column in ("cost/hour", "cost/inference", "latency ms", "max invocations/min", "CPU"):
        assert column in lines[header]
    rows = lines[header + 2 : header + 5]
    assert [row.split()[0] for row in rows] == ["ml.c5.large", "ml.m5.large", "ml.m5.xlarge"]
    assert rows[0].split() == [
        "ml.c5.large", "1", "$0.1020", "$1.10e-06", "9", "1,550", "72.0%", "20.0%",
        "OMP_NUM_THREADS=2",
    ]  # fmt: skip
    assert rows[2].split()[2:8] == ["$0.2300", "$2.40e-06", "4", "1,600", "31.2%", "8.5%"]
    assert (
        f'  context.mlops.stages.{STAGE}.endpoint.instanceType: "ml.c5.large"   (now "ml.m5.large")'
    ) in lines
    assert "context.mlops.stages.dev.endpoint.initialInstanceCount at 1" in out
    assert lines[-1] == "  make synth"


def test_instance_types_go_to_a_default_job_as_supported_instance_types(
    aws: Aws, clock: FakeClock
) -> None:
    aws.parameter(VERSION_PARAMETER, ARN)
    aws.parameter(ROLE_PARAMETER, ROLE)
    aws.create(expected_request(instance_types=["ml.c5.large", "ml.m5.large"]))
    aws.describe("COMPLETED", InferenceRecommendations=BENCHMARKS[1:])

    code = run(
        aws, clock, "--sample-payload-url", PAYLOAD,
        "--instance-types", " ml.c5.large, ml.m5.large ,ml.c5.large",
    )  # fmt: skip

    assert code == 0


def test_override_arn_and_role_skip_ssm(aws: Aws, clock: FakeClock) -> None:
    other = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/dev-breast-cancer/7"
    aws.package(arn=other, sample_payload_url=PAYLOAD)
    aws.create(expected_request(arn=other))
    aws.describe("COMPLETED", InferenceRecommendations=BENCHMARKS)

    assert run(aws, clock, "--model-package-arn", other, "--role-arn", ROLE) == 0


def test_the_payload_option_overrides_the_packages(aws: Aws, clock: FakeClock) -> None:
    mine = "s3://my-bucket/payloads/bc.tar.gz"
    aws.parameter(VERSION_PARAMETER, ARN)
    aws.parameter(ROLE_PARAMETER, ROLE)
    aws.create(expected_request(payload=mine))
    aws.describe("COMPLETED", InferenceRecommendations=BENCHMARKS)

    assert run(aws, clock, "--sample-payload-url", mine) == 0


def test_the_request_passes_botocores_input_shape() -> None:
    assert recommend.request_problems(expected_request(instance_types=["ml.c5.large"])) == []
    bad = expected_request()
    bad["JobName"] = "-starts-with-a-hyphen"
    bad["InputConfig"]["ModelPackageVersionArn"] = "not-an-arn"
    problems = recommend.request_problems(bad)
    assert any(p.startswith("JobName:") for p in problems)
    assert any(p.startswith("InputConfig.ModelPackageVersionArn:") for p in problems)


# --------------------------------------------------------------------------- prerequisites


@pytest.mark.parametrize("missing", [False, True], ids=["none", "ParameterNotFound"])
def test_no_approved_version_exits_2_with_how_to_approve(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str], missing: bool
) -> None:
    if missing:
        aws.missing_parameter(VERSION_PARAMETER)
    else:
        aws.parameter(VERSION_PARAMETER, "none")

    assert run(aws, clock) == 2

    err = capsys.readouterr().err
    assert f"no version of {MODEL} is approved for {STAGE}" in err
    assert VERSION_PARAMETER in err
    assert "aws sagemaker update-model-package" in err
    assert "--model-approval-status Approved" in err
    assert ("does not exist" in err) is missing


def test_missing_role_parameter_exits_2(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.parameter(VERSION_PARAMETER, ARN)
    aws.missing_parameter(ROLE_PARAMETER)

    assert run(aws, clock, "--sample-payload-url", PAYLOAD) == 2
    assert f"{ROLE_PARAMETER} does not exist" in capsys.readouterr().err


def test_missing_payload_exits_2_with_the_commands_to_make_one(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.parameter(VERSION_PARAMETER, ARN)
    aws.package()

    assert run(aws, clock) == 2

    err = capsys.readouterr().err
    assert "no sample payload" in err
    assert "without the target (diagnosis)" in err
    assert 'tar -czf "$PAYLOAD.tar.gz"' in err
    assert f"--name /mlops/{STAGE}/data/artifacts-bucket-arn" in err
    assert 's3://$BUCKET/recommender/breast-cancer/payload.tar.gz"' in err
    assert "--sample-payload-url" in err


def test_the_payload_script_writes_one_feature_row_per_request(tmp_path: Path) -> None:
    """The printed script, run on the project's raw data, writes the features only."""
    config = recommend.read_config(ROOT)
    model = config.model(MODEL)
    text = recommend.payload_instructions(
        model=model, stage_name=STAGE, region=REGION, model_package_arn=ARN, project_root=ROOT
    )
    lines = text.splitlines()
    start = lines.index("  python3 - \"$PAYLOAD\" <<'EOF'")
    script = "\n".join(line[2:] for line in lines[start + 1 : lines.index("  EOF")])
    out = tmp_path / "payload"
    out.mkdir()
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, check=True)

    files = sorted(out.iterdir())
    schema = contract.parse_schema(json.loads((ROOT / model.schema_file).read_text()))
    assert len(files) == recommend.PAYLOAD_REQUESTS
    fields = files[0].read_text().strip().split(",")
    assert len(fields) == len(schema.feature_names)
    assert [float(v) for v in fields]  # numbers only: no id, time or label


# --------------------------------------------------------------------------- waiting


def test_failed_job_exits_1_with_the_reason(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.describe("IN_PROGRESS")
    aws.describe("FAILED", FailureReason="Payload did not match the model's input")

    assert run(aws, clock, "--wait-only", "--job-name", JOB) == 1

    err = capsys.readouterr().err
    assert f"job {JOB} ended FAILED: Payload did not match the model's input" in err


def test_timeout_prints_how_to_resume(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.parameter(VERSION_PARAMETER, ARN)
    aws.parameter(ROLE_PARAMETER, ROLE)
    aws.create(expected_request())
    for _ in range(3):  # at 0, 30 and 60 s: the wait ends at the one-minute mark
        aws.describe("IN_PROGRESS")

    code = run(aws, clock, "--sample-payload-url", PAYLOAD, "--max-wait-minutes", "1")

    assert code == recommend.EXIT_STILL_RUNNING
    assert clock.sleeps == [30.0, 30.0]
    err = capsys.readouterr().err
    assert "still running after 1 minutes" in err
    assert f"mlops recommend --model {MODEL} --stage {STAGE} --wait-only --job-name {JOB}" in err
    assert f"stop-inference-recommendations-job --region {REGION} --job-name {JOB}" in err


def test_wait_only_skips_creation(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.describe("COMPLETED", job="earlier-job", InferenceRecommendations=BENCHMARKS)

    assert run(aws, clock, "--wait-only", "--job-name", "earlier-job", "--region", REGION) == 0

    assert [service for service, _ in aws.regions] == ["sagemaker"]
    assert "ml.c5.large" in capsys.readouterr().out


def test_wait_only_needs_a_job_name(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(aws, clock, "--wait-only") == 2
    assert "--wait-only needs --job-name" in capsys.readouterr().err


def test_latency_limit_picks_the_cheapest_within_it(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.describe("COMPLETED", InferenceRecommendations=BENCHMARKS)

    assert run(aws, clock, "--wait-only", "--job-name", JOB, "--max-latency-ms", "5") == 0

    out = capsys.readouterr().out
    assert "cheapest per inference within 5 ms: ml.m5.xlarge" in out
    assert 'endpoint.instanceType: "ml.m5.xlarge"' in out


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "wine", "--stage", STAGE], "--model: no model named 'wine'"),
        (["--model", MODEL, "--stage", "qa"], "--stage: no stage named 'qa'"),
        (
            [*("--model", MODEL, "--stage", STAGE), "--instance-types", "ml.m5.huge"],
            "not SageMaker endpoint instance types",
        ),
        (
            [*("--model", MODEL, "--stage", STAGE), "--instance-types", "ml.t2.medium"],
            "does not load-test burstable instances",
        ),
        (
            [*("--model", MODEL, "--stage", STAGE), "--job-name", "bad_name"],
            "--job-name: 'bad_name' does not match",
        ),
        (
            [*("--model", MODEL, "--stage", STAGE), "--sample-payload-url", "s3://b/p.zip"],
            "gzip-compressed tar archive",
        ),
    ],
)
def test_mistakes_exit_2_before_any_aws_call(
    aws: Aws, clock: FakeClock, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = recommend.main(argv, clients=aws, clock=clock, sleep=clock.sleep, now=lambda: NOW)

    assert code == 2
    assert message in capsys.readouterr().err
    assert aws.regions == []


def test_unknown_model_and_stage_are_both_named(tmp_path: Path) -> None:
    shutil.copy(ROOT / "cdk.json", tmp_path / "cdk.json")
    shutil.copytree(ROOT / "data" / "schemas", tmp_path / "data" / "schemas")
    config = recommend.read_config(tmp_path)
    with pytest.raises(recommend.RecommendError) as error:
        recommend.select(config, "wine", "qa")
    assert "models are ['breast-cancer']" in str(error.value)
    assert "stages are ['dev', 'staging', 'prod']" in str(error.value)


# --------------------------------------------------------------------------- pure parts


def test_default_job_name_fits_the_api() -> None:
    name = recommend.default_job_name("m" * 32, "s" * 16, NOW)
    assert len(name) <= 63 and name.endswith("-20261103040506")
    recommend.check_job_name(name)
    assert recommend.default_job_name(MODEL, STAGE, NOW) == JOB


def test_rows_without_metrics_sort_last_and_render_dashes() -> None:
    job = {
        "InferenceRecommendations": [
            {
                "Metrics": {},
                "EndpointConfiguration": {
                    "EndpointName": "e",
                    "VariantName": "v",
                    "InstanceType": "ml.r5.large",
                },
                "ModelConfiguration": {},
            },
            benchmark("ml.c5.large", 0.102, 1.1e-06, 9, 1550),
        ]
    }
    rows = recommend.recommendations(job)
    assert [r.label for r in rows] == ["ml.c5.large", "ml.r5.large"]
    text = recommend.render(rows)
    assert "CPU" not in text and "memory" not in text
    assert text.splitlines()[-1].split() == ["ml.r5.large", *["-"] * 6]


def test_add_arguments_wires_run_as_the_default() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    recommend.add_arguments(parser)
    args = parser.parse_args(["--model", MODEL, "--stage", STAGE])
    assert args.run is recommend.run
    assert (args.max_wait_minutes, args.poll_seconds, args.wait_only) == (90.0, 30.0, False)

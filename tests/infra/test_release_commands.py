"""``mlops release-smoke-test`` and ``mlops promote`` against stubbed STS, SSM, CloudFormation,
SageMaker and S3 clients (botocore Stubber on real boto3 clients, fake credentials, no network),
with small stand-in configs and an injected smoke test runner."""

from __future__ import annotations

import copy
import fnmatch
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from mlops import cli, pipeline_definition, release, serving_record, shape_check
from mlops.local_run import STEPS_DIR
from mlops.serving_record import PROMOTED_FROM_KEY

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
RELEASE_ACCOUNT = "999999999999"
ACCOUNTS = {"staging": "111111111111", "prod": "222222222222"}
BUCKETS = {"staging": "mlops-staging-artifacts", "prod": "mlops-prod-artifacts"}
MODEL = "breast-cancer"
SOURCE_ARN = f"arn:aws:sagemaker:{REGION}:111111111111:model-package/staging-{MODEL}/4"
TARGET_ARN = f"arn:aws:sagemaker:{REGION}:222222222222:model-package/prod-{MODEL}/7"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
RUN = "k2x9p4q7w1z3"  # the pipeline execution's id
JOB = f"pipelines-{RUN}-Train-Ab12Cd34Ef"  # its training job's name
DIGEST = "sha256:" + "0123456789abcdef" * 4
#: Where the training pipeline writes a version's objects (pipeline_definition's layout).
KEYS = {
    "transform": f"pipelines/{MODEL}/executions/{RUN}/preprocess/transform/model.tar.gz",
    "booster": f"pipelines/{MODEL}/training/{JOB}/output/model.tar.gz",
    "single": f"pipelines/{MODEL}/executions/{RUN}/serving/model.tar.gz",
    "evaluation": f"pipelines/{MODEL}/executions/{RUN}/evaluation/evaluation.json",
    "baseline": f"pipelines/{MODEL}/executions/{RUN}/preprocess/baseline/statistics.json",
}
#: The serving stack's outputs of what each endpoint was deployed with.
SERVES = {MODEL: "BreastCancerRecordServes", "diabetes": "DiabetesRecordServes"}


def record(stage: str, model: str = MODEL) -> str:
    return f"/mlops/{stage}/serving/{model}/model-package-arn"


def bucket_parameter(stage: str) -> str:
    return f"/mlops/{stage}/data/artifacts-bucket-arn"


def unapproved(stage: str, model: str) -> str:
    """The serving stack's output while no version of ``model`` is approved."""
    return (
        f"nothing yet: no version of {model} is approved in {stage} "
        f"(approve one, then: make serve STAGE={stage} MODEL={model})"
    )


def config(**accounts: str | None) -> SimpleNamespace:
    """A stand-in PlatformConfig: the attributes the release commands read."""
    stages = {
        name: SimpleNamespace(account=accounts.get(name, ACCOUNTS.get(name)), region=REGION)
        for name in ("dev", "staging", "prod")
    }
    return SimpleNamespace(
        stages=stages,
        models=[
            SimpleNamespace(
                name=MODEL, schema_file=f"data/schemas/{MODEL}.json",
                problem_type="binary_classification", data_prefix=f"{MODEL}/",
            ),
            SimpleNamespace(
                name="diabetes", schema_file="data/schemas/diabetes.json",
                problem_type="regression", data_prefix="diabetes/",
            ),
        ],
        release=SimpleNamespace(account=RELEASE_ACCOUNT, region=REGION),
    )  # fmt: skip


# --------------------------------------------------------------------------- fake AWS


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def key_id(stage: str) -> str:
    return f"ASIA{stage.upper()}EXAMPLE0000"[:20].ljust(16, "X")


class Role:
    """One stage's clients, as its release role makes them, with their stubs."""

    def __init__(
        self, stage: str, calls: list[tuple[str, str]], session: boto3.session.Session
    ) -> None:
        self.stage = stage
        self.clients = {s: session.client(s) for s in ("ssm", "cloudformation", "sagemaker", "s3")}
        self.stubs = {s: Stubber(c) for s, c in self.clients.items()}
        for client in self.clients.values():

            def note(model: Any, stage: str = stage, **_: Any) -> None:
                calls.append((stage, model.name))

            client.meta.events.register("before-parameter-build.*.*", note)

    @property
    def ssm(self) -> Stubber:
        return self.stubs["ssm"]

    @property
    def sagemaker(self) -> Stubber:
        return self.stubs["sagemaker"]

    @property
    def s3(self) -> Stubber:
        return self.stubs["s3"]

    def parameter(self, name: str, value: str) -> None:
        self.ssm.add_response(
            "get_parameter",
            {"Parameter": {"Name": name, "Type": "String", "Value": value}},
            {"Name": name},
        )

    def bucket(self) -> None:
        self.parameter(bucket_parameter(self.stage), f"arn:aws:s3:::{BUCKETS[self.stage]}")

    def serving_stack(self, outputs: Mapping[str, str]) -> None:
        """DescribeStacks of the stage's serving stack, with these outputs."""
        name = f"{self.stage}-Serving"
        self.stubs["cloudformation"].add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": name,
                        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNTS.get(self.stage)}"
                        f":stack/{name}/0f0e0d0c",
                        "CreationTime": NOW,
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    }
                ]
            },
            {"StackName": name},
        )

    def describe(self, response: Mapping[str, Any]) -> None:
        self.sagemaker.add_response(
            "describe_model_package",
            dict(response),
            {"ModelPackageName": response["ModelPackageArn"]},
        )

    def versions(self, group: str, *pages: list[str]) -> None:
        """ListModelPackages of ``group``: one page per list of ARNs."""
        for i, arns in enumerate(pages):
            response: dict[str, Any] = {
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageArn": arn,
                        "ModelPackageGroupName": group,
                        "ModelPackageVersion": int(arn.rsplit("/", 1)[-1]),
                        "CreationTime": NOW,
                        "ModelPackageStatus": "Completed",
                        "ModelApprovalStatus": "Approved",
                    }
                    for arn in arns
                ]
            }
            expected: dict[str, Any] = {"ModelPackageGroupName": group}
            if i + 1 < len(pages):
                response["NextToken"] = f"page-{i + 1}"
            if i:
                expected["NextToken"] = f"page-{i}"
            self.sagemaker.add_response("list_model_packages", response, expected)


class Aws:
    """The release account's STS client, and the roles its credentials assume."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        session = _session()  # one session: the service models are loaded once
        self.sts = session.client("sts")
        self.sts_stub = Stubber(self.sts)
        self.roles = {s: Role(s, self.calls, session) for s in ("dev", "staging", "prod")}
        self.made: list[tuple[str, str, str]] = []

    def make_client(self, service: str, region: str, credentials: Mapping[str, Any]) -> Any:
        self.made.append((service, region, credentials["AccessKeyId"]))
        stage = next(s for s in self.roles if key_id(s) == credentials["AccessKeyId"])
        return self.roles[stage].clients[service]

    def assume(self, stage: str, account: str | None = None) -> None:
        account = account or ACCOUNTS[stage]
        role = f"arn:aws:iam::{account}:role/mlops-{stage}-release"
        self.sts_stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": key_id(stage),
                    "SecretAccessKey": f"secret-{stage}",
                    "SessionToken": f"token-{stage}",
                    "Expiration": NOW,
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": f"AROAEXAMPLE:mlops-release-{stage}",
                    "Arn": f"arn:aws:sts::{account}:assumed-role/mlops-{stage}-release/x",
                },
            },
            {"RoleArn": role, "RoleSessionName": f"mlops-release-{stage}"},
        )

    def tooling(self, cfg: Any) -> release.Tooling:
        return release.Tooling(cfg, self.sts, make_client=self.make_client)

    def operations(self, stage: str) -> list[str]:
        return [op for s, op in self.calls if s == stage]

    def stubs(self) -> Iterator[Stubber]:
        yield self.sts_stub
        for role in self.roles.values():
            yield from role.stubs.values()


def actions(operations: list[str]) -> set[str]:
    """The IAM actions behind the calls."""
    return {action for op in operations for action in release.IAM_ACTIONS[op]}


@pytest.fixture
def aws() -> Iterator[Aws]:
    fake = Aws()
    stubs = list(fake.stubs())
    for stub in stubs:
        stub.activate()
    yield fake
    for stub in stubs:
        stub.assert_no_pending_responses()
        stub.deactivate()


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", "arn:aws:iam::111111111111:role/mlops-prod-release"),
        ("eu-west-1", "arn:aws:iam::111111111111:role/mlops-prod-release"),
        ("cn-north-1", "arn:aws-cn:iam::111111111111:role/mlops-prod-release"),
        ("cn-northwest-1", "arn:aws-cn:iam::111111111111:role/mlops-prod-release"),
        ("us-gov-west-1", "arn:aws-us-gov:iam::111111111111:role/mlops-prod-release"),
    ],
)
def test_the_release_role_arn_is_in_the_stages_account_and_partition(
    region: str, expected: str
) -> None:
    assert release.release_role_arn("111111111111", "prod", region) == expected


def test_a_stage_without_an_account_uses_the_release_account_then_the_callers(aws: Aws) -> None:
    cfg = config(dev=None)
    assert aws.tooling(cfg).account("staging") == ACCOUNTS["staging"]
    assert aws.tooling(cfg).account("dev") == RELEASE_ACCOUNT

    cfg.release.account = None
    aws.sts_stub.add_response(
        "get_caller_identity",
        {
            "UserId": "AROAEXAMPLE",
            "Account": "333333333333",
            "Arn": "arn:aws:sts::333333333333:assumed-role/codebuild/x",
        },
        {},
    )
    tooling = aws.tooling(cfg)
    assert tooling.account("dev") == "333333333333"
    assert tooling.account("dev") == "333333333333"  # asked once


def test_assuming_a_role_gives_clients_and_env_of_its_temporary_credentials(aws: Aws) -> None:
    aws.assume("prod")

    access = release.assume_release_role(
        aws.sts, account=ACCOUNTS["prod"], stage="prod", region=REGION,
        make_client=aws.make_client,
    )  # fmt: skip

    assert access.role_arn == "arn:aws:iam::222222222222:role/mlops-prod-release"
    assert access.clients("ssm") is aws.roles["prod"].clients["ssm"]
    assert access.clients("ssm") is access.clients("ssm")
    assert aws.made == [("ssm", REGION, key_id("prod"))]
    assert access.env == {
        "AWS_ACCESS_KEY_ID": key_id("prod"),
        "AWS_SECRET_ACCESS_KEY": "secret-prod",
        "AWS_SESSION_TOKEN": "token-prod",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


# --------------------------------------------------------------------------- smoke test


class Runner:
    """Records the smoke tests run; answers each model's status."""

    def __init__(self, **statuses: int) -> None:
        self.statuses = statuses
        self.runs: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, command: Sequence[str], env: Mapping[str, str]) -> int:
        self.runs.append((list(command), dict(env)))
        endpoint = command[command.index("--endpoint-name") + 1]
        return self.statuses.get(endpoint, 0)


def smoke(
    aws: Aws,
    runner: Runner,
    stage: str = "staging",
    cfg: Any = None,
    tested_file: Path | None = None,
) -> int:
    return release.run_smoke_test(
        SimpleNamespace(
            stage=stage,
            rows=5,
            project_root=str(ROOT),
            steps_python=sys.executable,
            tested_file=str(tested_file) if tested_file else None,
        ),
        config=cfg or config(),
        tooling=aws.tooling(cfg or config()),
        runner=runner,
        base_env={"PATH": "/usr/bin", "AWS_PROFILE": "tooling", "AWS_ACCESS_KEY_ID": "AKIATOOL"},
    )


def test_the_serving_stack_and_its_outputs_are_named_as_the_stubs_name_them() -> None:
    assert serving_record.serving_stack_name("staging") == "staging-Serving"
    assert {m: serving_record.served_output_key(m) for m in SERVES} == SERVES


def test_smoke_test_skips_an_unserved_model_and_tests_the_served_one_as_the_stage_role(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the serving stack was deployed with, not the version records (no SSM stubbed:
    a record read would fail the test)."""
    aws.assume("staging")
    aws.roles["staging"].serving_stack(
        {
            "Other": "x",
            SERVES[MODEL]: SOURCE_ARN,
            SERVES["diabetes"]: unapproved("staging", "diabetes"),
        }
    )
    runner = Runner()

    assert smoke(aws, runner) == 0

    [(command, env)] = runner.runs
    assert command == [
        sys.executable, str(STEPS_DIR / "smoke_test.py"),
        "--endpoint-name", f"staging-{MODEL}",
        "--schema", str(ROOT / "data" / "schemas" / f"{MODEL}.json"),
        "--problem-type", "binary_classification",
        "--data", str(ROOT / "data" / "raw" / MODEL),
        "--rows", "5", "--region", REGION,
    ]  # fmt: skip
    assert env == {
        "PATH": "/usr/bin",  # kept; AWS_PROFILE dropped, the tooling keys replaced
        "AWS_ACCESS_KEY_ID": key_id("staging"),
        "AWS_SECRET_ACCESS_KEY": "secret-staging",
        "AWS_SESSION_TOKEN": "token-staging",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"staging/{MODEL}: passed ({SOURCE_ARN})",
        "staging/diabetes: skipped, no version approved",
    ]
    assert aws.operations("staging") == ["DescribeStacks"]
    # the role's policy allows what the command calls (InvokeEndpoint is the smoke test's)
    assert actions(aws.operations("staging")) | {"sagemaker:InvokeEndpoint"} == set(
        release.SMOKE_TEST_ACTIONS
    )


DIABETES_ARN = SOURCE_ARN.replace(MODEL, "diabetes")


def test_a_failing_smoke_test_exits_nonzero_naming_the_model_and_writes_no_tested_file(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    aws.assume("staging")
    aws.roles["staging"].serving_stack(
        {SERVES[MODEL]: SOURCE_ARN, SERVES["diabetes"]: DIABETES_ARN}
    )
    runner = Runner(**{"staging-diabetes": 2})
    tested = tmp_path / "release" / "tested.json"

    assert smoke(aws, runner, tested_file=tested) == 1

    assert len(runner.runs) == 2  # every served model is tested
    captured = capsys.readouterr()
    assert f"staging/{MODEL}: passed ({SOURCE_ARN})" in captured.out
    assert f"staging/diabetes: FAILED (exit 2) ({DIABETES_ARN})" in captured.out
    assert "diabetes failed" in captured.err
    assert "reject the served version" in captured.err
    assert not tested.exists() and not tested.with_name("tested.json.partial").exists()


def test_a_passing_smoke_test_writes_the_tested_file_with_exactly_the_served_models(
    aws: Aws, tmp_path: Path
) -> None:
    aws.assume("staging")
    aws.roles["staging"].serving_stack(
        {SERVES[MODEL]: SOURCE_ARN, SERVES["diabetes"]: unapproved("staging", "diabetes")}
    )
    tested = tmp_path / "release" / "tested.json"  # its folder made

    assert smoke(aws, Runner(), tested_file=tested) == 0

    assert json.loads(tested.read_text()) == {MODEL: SOURCE_ARN}  # the skipped one left out
    assert [p.name for p in tested.parent.iterdir()] == ["tested.json"]  # no partial left
    assert release.read_tested(tested) == {MODEL: SOURCE_ARN}


def test_the_tested_file_holds_every_served_model_and_replaces_an_older_one(
    aws: Aws, tmp_path: Path
) -> None:
    aws.assume("staging")
    aws.roles["staging"].serving_stack(
        {SERVES[MODEL]: SOURCE_ARN, SERVES["diabetes"]: DIABETES_ARN}
    )
    tested = tmp_path / "tested.json"
    tested.write_text(json.dumps({MODEL: SOURCE_ARN.replace("/4", "/3")}))

    assert smoke(aws, Runner(), tested_file=tested) == 0

    assert json.loads(tested.read_text()) == {MODEL: SOURCE_ARN, "diabetes": DIABETES_ARN}


def test_a_serving_stack_without_a_models_output_exits_2_naming_it_with_nothing_run(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    aws.assume("staging")
    aws.roles["staging"].serving_stack({SERVES[MODEL]: SOURCE_ARN})  # deployed before diabetes
    runner = Runner()
    tested = tmp_path / "tested.json"

    assert smoke(aws, runner, tested_file=tested) == 2

    err = capsys.readouterr().err
    assert "staging-Serving has no output DiabetesRecordServes" in err
    assert "predates diabetes. Fix: deploy it" in err
    assert runner.runs == [] and not tested.exists()


def test_a_serving_stack_that_does_not_exist_exits_1_naming_describe_stacks(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    aws.assume("staging")
    aws.roles["staging"].stubs["cloudformation"].add_client_error(
        "describe_stacks", service_error_code="ValidationError",
        service_message="Stack with id staging-Serving does not exist", http_status_code=400,
        expected_params={"StackName": "staging-Serving"},
    )  # fmt: skip
    runner = Runner()
    tested = tmp_path / "tested.json"

    assert smoke(aws, runner, tested_file=tested) == 1

    err = capsys.readouterr().err
    assert (
        "AWS refused DescribeStacks as arn:aws:iam::111111111111:role/mlops-staging-release" in err
    )
    assert "must allow cloudformation:DescribeStacks" in err
    assert "Traceback" not in err and runner.runs == [] and not tested.exists()


def test_smoke_test_of_an_unknown_stage_is_refused_naming_the_known_ones(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = Runner()
    assert smoke(aws, runner, stage="qa") == 2
    assert "--stage: no stage named 'qa' in cdk.json; stages are ['dev', 'staging', 'prod']" in (
        capsys.readouterr().err
    )
    assert runner.runs == [] and aws.calls == []


def test_a_role_that_cannot_be_assumed_exits_1_naming_assume_role_and_the_fix(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.sts_stub.add_client_error(
        "assume_role", service_error_code="AccessDenied", service_message="not authorized",
        http_status_code=403,
    )  # fmt: skip
    runner = Runner()

    assert smoke(aws, runner) == 1

    err = capsys.readouterr().err
    assert "AWS refused AssumeRole as staging's release role " in err
    assert "arn:aws:iam::111111111111:role/mlops-staging-release" in err
    assert "(AccessDenied: not authorized). Fix: " in err and "trust the release account" in err
    assert "Traceback" not in err and runner.runs == []


def test_mlops_smoke_test_runs_the_same_command_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(
        cli.subprocess, "run", lambda c, check: ran.append(c) or SimpleNamespace(returncode=0)
    )
    argv = ["--steps-python", sys.executable, "smoke-test", "--stage", "dev", "--model", MODEL]

    assert cli.main([*argv, "--rows", "3", "--data", "rows.csv"]) == 0

    assert ran == [
        [
            sys.executable, str(STEPS_DIR / "smoke_test.py"), "--endpoint-name", f"dev-{MODEL}",
            "--schema", str(cli.PROJECT_ROOT / "data/schemas/breast-cancer.json"),
            "--problem-type", "binary_classification", "--data", "rows.csv", "--rows", "3",
            "--region", "us-east-1",
        ]
    ]  # fmt: skip


# --------------------------------------------------------------------------- promote


def container(image: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"Image": image, "ModelDataUrl": f"s3://{BUCKETS['staging']}/{key}", **extra}


def source_package(**changes: Any) -> dict[str, Any]:
    """DescribeModelPackage of the version staging serves (as the training pipeline
    registers it, with the describe-only members)."""
    package: dict[str, Any] = {
        "ModelPackageName": f"staging-{MODEL}",
        "ModelPackageGroupName": f"staging-{MODEL}",
        "ModelPackageVersion": 4,
        "ModelPackageArn": SOURCE_ARN,
        "ModelPackageDescription": "breast-cancer, trained by the staging pipeline",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "looks good",
        "CreatedBy": {"UserProfileName": "pipeline"},
        "InferenceSpecification": {
            "Containers": [
                container(
                    SKLEARN,
                    KEYS["transform"],
                    Environment={"SAGEMAKER_PROGRAM": "inference.py"},
                    ModelDataETag="etag-1",
                ),
                container(XGBOOST, KEYS["booster"], ImageDigest=DIGEST),
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
        },
        "AdditionalInferenceSpecifications": [
            {
                "Name": "single-container",
                "Description": "serverless",
                "Containers": [container(XGBOOST, KEYS["single"])],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            }
        ],
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKETS['staging']}/{KEYS['evaluation']}",
                }
            }
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKETS['staging']}/{KEYS['baseline']}",
                }
            }
        },
        "Domain": "MACHINE_LEARNING",
        "Task": "CLASSIFICATION",
        "CustomerMetadataProperties": {"model_name": MODEL, "problem_type": "binary"},
        "SecurityConfig": {"KmsKeyId": "arn:aws:kms:us-east-1:111111111111:key/staging"},
    }
    package.update(changes)
    return package


def target_uri(key: str) -> str:
    return f"s3://{BUCKETS['prod']}/{KEYS[key]}"


def expected_create_request() -> dict[str, Any]:
    return {
        "ModelPackageGroupName": f"prod-{MODEL}",
        "ModelPackageDescription": "breast-cancer, trained by the staging pipeline",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": SKLEARN,
                    "ModelDataUrl": target_uri("transform"),
                    "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                },
                {"Image": XGBOOST, "ModelDataUrl": target_uri("booster"), "ImageDigest": DIGEST},
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
        },
        "AdditionalInferenceSpecifications": [
            {
                "Name": "single-container",
                "Description": "serverless",
                "Containers": [{"Image": XGBOOST, "ModelDataUrl": target_uri("single")}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            }
        ],
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": target_uri("evaluation")}
            }
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": target_uri("baseline")}
            }
        },
        "Domain": "MACHINE_LEARNING",
        "Task": "CLASSIFICATION",
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": {
            "model_name": MODEL,
            "problem_type": "binary",
            PROMOTED_FROM_KEY: SOURCE_ARN,
        },
    }


def promote(
    aws: Aws,
    source: str = "staging",
    target: str = "prod",
    cfg: Any = None,
    tested: Path | None = None,
) -> int:
    cfg = cfg or config()
    return release.run_promote(
        SimpleNamespace(
            source_stage=source,
            target_stage=target,
            project_root=str(ROOT),
            tested=str(tested) if tested else None,
        ),
        config=cfg,
        tooling=aws.tooling(cfg),
    )


def served(aws: Aws, package: Mapping[str, Any]) -> None:
    """Both roles assumed; staging serves ``package`` for breast-cancer, nothing for diabetes."""
    aws.assume("staging")
    aws.assume("prod")
    staging = aws.roles["staging"]
    staging.parameter(record("staging"), package["ModelPackageArn"])
    staging.describe(package)
    staging.parameter(record("staging", "diabetes"), "none")


def stub_first_promotion(aws: Aws, *, records: bool = True) -> None:
    """The promotion of SOURCE_ARN; ``records=False``: with ``--tested`` (no source record
    read, breast-cancer's tested version is SOURCE_ARN and diabetes's none)."""
    aws.assume("staging")
    aws.assume("prod")
    staging, prod = aws.roles["staging"], aws.roles["prod"]
    # the plan, breast-cancer: source record, version, target group, target record, buckets
    if records:
        staging.parameter(record("staging"), SOURCE_ARN)
    staging.describe(source_package())
    older = f"arn:aws:sagemaker:{REGION}:222222222222:model-package/prod-{MODEL}/6"
    prod.versions(f"prod-{MODEL}", [older])
    prod.describe(
        {
            **source_package(), "ModelPackageArn": older, "ModelPackageVersion": 6,
            "CustomerMetadataProperties": {PROMOTED_FROM_KEY: SOURCE_ARN.replace("/4", "/3")},
        }
    )  # fmt: skip
    prod.parameter(record("prod"), older)
    staging.bucket()
    prod.bucket()
    # diabetes: nothing served in staging
    if records:
        staging.parameter(record("staging", "diabetes"), "none")
    # then the promotion: copies, the version, the record, the approval
    for name in ("transform", "booster", "single", "evaluation", "baseline"):
        prod.s3.add_response(
            "copy_object",
            {"CopyObjectResult": {"ETag": '"e"'}},
            {
                "Bucket": BUCKETS["prod"],
                "Key": KEYS[name],
                "CopySource": {"Bucket": BUCKETS["staging"], "Key": KEYS[name]},
            },
        )
    prod.sagemaker.add_response(
        "create_model_package", {"ModelPackageArn": TARGET_ARN}, expected_create_request()
    )
    prod.ssm.add_response(
        "put_parameter",
        {"Version": 3, "Tier": "Standard"},
        {"Name": record("prod"), "Value": TARGET_ARN, "Type": "String", "Overwrite": True},
    )
    prod.sagemaker.add_response(
        "update_model_package",
        {"ModelPackageArn": TARGET_ARN},
        {
            "ModelPackageArn": TARGET_ARN,
            "ModelApprovalStatus": "Approved",
            "ApprovalDescription": f"promoted from {SOURCE_ARN} by the release pipeline",
        },
    )


def test_a_first_promotion_copies_every_artifact_registers_records_then_approves(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_first_promotion(aws)

    assert promote(aws) == 0

    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{MODEL}: staging version 4 -> prod version 7 (recorded)",
        "diabetes: nothing to promote, staging serves no version (none)",
    ]
    writes = [op for op in aws.operations("prod") if op not in ("GetParameter",)]
    assert writes == [
        "ListModelPackages", "DescribeModelPackage",
        "CopyObject", "CopyObject", "CopyObject", "CopyObject", "CopyObject",
        "CreateModelPackage", "PutParameter", "UpdateModelPackage",
    ]  # fmt: skip
    assert aws.operations("staging") == [
        "GetParameter",
        "DescribeModelPackage",
        "GetParameter",
        "GetParameter",
    ]
    # the roles' policies allow exactly what the promotion calls
    assert actions(aws.operations("staging")) == set(release.SOURCE_ROLE_ACTIONS)
    assert actions(aws.operations("prod")) == set(release.TARGET_ROLE_ACTIONS)


def test_promote_with_tested_promotes_the_files_version_without_reading_the_source_records(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The staging records may name another version by now (an approval after the smoke
    test): they are not read at all (not stubbed), the file's version is promoted."""
    stub_first_promotion(aws, records=False)
    tested = tmp_path / "tested.json"
    release.write_tested(tested, {MODEL: SOURCE_ARN})  # diabetes: not in the file

    assert promote(aws, tested=tested) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"{MODEL}: staging version 4 -> prod version 7 (recorded)",
        "diabetes: nothing to promote, staging's smoke test tested no version",
    ]
    assert aws.operations("staging") == ["DescribeModelPackage", "GetParameter"]  # the bucket
    assert actions(aws.operations("staging")) <= set(release.SOURCE_ROLE_ACTIONS)
    assert "CreateModelPackage" in aws.operations("prod")


def test_promote_with_an_empty_tested_file_promotes_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    aws.assume("staging")
    aws.assume("prod")
    tested = tmp_path / "tested.json"
    release.write_tested(tested, {})  # the smoke test skipped every model

    assert promote(aws, tested=tested) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"{MODEL}: nothing to promote, staging's smoke test tested no version",
        "diabetes: nothing to promote, staging's smoke test tested no version",
    ]
    assert aws.operations("staging") == [] and aws.operations("prod") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file or directory"),
        ("{", "Expecting property name"),
        ("", "Expecting value"),
        (json.dumps([SOURCE_ARN]), "not a JSON object of model name -> version ARN"),
        (json.dumps({MODEL: "none"}), "not a JSON object of model name -> version ARN"),
        (json.dumps({MODEL: 4}), "not a JSON object of model name -> version ARN"),
        (json.dumps({MODEL: [SOURCE_ARN]}), "not a JSON object of model name -> version ARN"),
    ],
)
def test_a_malformed_tested_file_is_refused_with_exit_2_before_any_call(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, message: str
) -> None:
    tested = tmp_path / "tested.json"
    if content is not None:
        tested.write_text(content)

    assert promote(aws, tested=tested) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"mlops promote: --tested {tested}: ")
    assert message in err and "Traceback" not in err
    assert aws.calls == []
    with pytest.raises(release.ReleaseError, match="--tested"):
        release.read_tested(tested)


def test_the_create_request_passes_botocores_create_model_package_shape() -> None:
    request, copies = release.promotion_request(
        source_package(), group=f"prod-{MODEL}", source_bucket=BUCKETS["staging"],
        target_bucket=BUCKETS["prod"],
    )  # fmt: skip

    assert request == expected_create_request()
    assert shape_check.check_step_arguments("promote", "CreateModelPackage", request) == []
    members = set(
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateModelPackage")
        .input_shape.members
    )
    assert set(request) <= members
    assert [c.key for c in copies] == list(KEYS.values())
    assert [c.field for c in copies] == [
        "InferenceSpecification.Containers[0].ModelDataUrl",
        "InferenceSpecification.Containers[1].ModelDataUrl",
        "AdditionalInferenceSpecifications[0].Containers[0].ModelDataUrl",
        "ModelMetrics.ModelQuality.Statistics.S3Uri",
        "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
    ]


def test_an_artifact_named_twice_is_copied_once() -> None:
    package = source_package()
    package["AdditionalInferenceSpecifications"][0]["Containers"][0]["ModelDataUrl"] = (
        f"s3://{BUCKETS['staging']}/{KEYS['booster']}"
    )
    _, copies = release.promotion_request(
        package, group="g", source_bucket=BUCKETS["staging"], target_bucket=BUCKETS["prod"]
    )
    assert [c.key for c in copies] == [KEYS[k] for k in ("transform", "booster", "evaluation", "baseline")]  # fmt: skip


def test_a_version_promoted_before_is_left_alone(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    served(aws, source_package())
    prod = aws.roles["prod"]
    newer = f"arn:aws:sagemaker:{REGION}:222222222222:model-package/prod-{MODEL}/9"
    promoted = f"arn:aws:sagemaker:{REGION}:222222222222:model-package/prod-{MODEL}/8"
    first = f"arn:aws:sagemaker:{REGION}:222222222222:model-package/prod-{MODEL}/1"
    prod.versions(f"prod-{MODEL}", [first, promoted], [newer])  # two pages, oldest first
    prod.describe({**source_package(), "ModelPackageArn": newer, "ModelPackageVersion": 9,
                   "CustomerMetadataProperties": {"model_name": MODEL}})  # fmt: skip
    prod.describe(
        {
            **source_package(), "ModelPackageArn": promoted, "ModelPackageVersion": 8,
            "ModelApprovalStatus": "Rejected",
            "CustomerMetadataProperties": {PROMOTED_FROM_KEY: SOURCE_ARN},
        }
    )  # fmt: skip

    assert promote(aws) == 0

    out = capsys.readouterr().out
    assert (
        f"{MODEL}: staging version 4 was promoted before, as prod version 8 (Rejected); "
        "prod's record is left as it is"
    ) in out
    assert aws.operations("prod") == [
        "ListModelPackages", "ListModelPackages", "DescribeModelPackage", "DescribeModelPackage"
    ]  # fmt: skip


def test_nothing_is_promoted_when_the_source_serves_no_version(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.assume("staging")
    aws.assume("prod")
    aws.roles["staging"].parameter(record("staging"), "none")
    aws.roles["staging"].parameter(record("staging", "diabetes"), "none")

    assert promote(aws) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"{MODEL}: nothing to promote, staging serves no version (none)",
        "diabetes: nothing to promote, staging serves no version (none)",
    ]
    assert aws.operations("prod") == []


def test_a_source_version_that_is_not_approved_is_refused(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.assume("staging")
    aws.assume("prod")
    aws.roles["staging"].parameter(record("staging"), SOURCE_ARN)
    aws.roles["staging"].describe(source_package(ModelApprovalStatus="Rejected"))

    assert promote(aws) == 2

    err = capsys.readouterr().err
    assert f"staging serves {SOURCE_ARN} (version 4), which is Rejected, not Approved" in err
    assert "nothing was promoted" in err
    assert aws.operations("prod") == []


def _promote_until_the_artifacts_are_checked(aws: Aws, package: dict[str, Any]) -> int:
    """``mlops promote`` of ``package`` (staging's approved version) into an empty prod,
    answered up to the artifacts' check; its exit code."""
    aws.assume("staging")
    aws.assume("prod")
    staging, prod = aws.roles["staging"], aws.roles["prod"]
    staging.parameter(record("staging"), SOURCE_ARN)
    staging.describe(package)
    prod.versions(f"prod-{MODEL}", [])
    prod.parameter(record("prod"), "none")
    staging.bucket()
    prod.bucket()
    return promote(aws)


@pytest.mark.parametrize(
    ("where", "uri"),
    [
        ("InferenceSpecification.Containers[1].ModelDataUrl", "s3://someone-elses-bucket/m.tar.gz"),
        ("DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri", "s3://mlops-dev-artifacts/s.json"),
    ],
)  # fmt: skip
def test_a_uri_outside_the_source_bucket_is_refused_before_any_copy_or_create(
    aws: Aws, capsys: pytest.CaptureFixture[str], where: str, uri: str
) -> None:
    package = source_package()
    if where.startswith("Inference"):
        package["InferenceSpecification"]["Containers"][1]["ModelDataUrl"] = uri
    else:
        package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"] = uri
    assert _promote_until_the_artifacts_are_checked(aws, package) == 2

    err = capsys.readouterr().err
    assert f"{where} is {uri}, outside the source stage's artifacts bucket" in err
    assert "nothing was promoted" in err
    assert not {"CopyObject", "CreateModelPackage", "PutParameter", "UpdateModelPackage"} & set(
        aws.operations("prod")
    )


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("booster", f"models/{MODEL}/model.tar.gz"),  # not the pipeline's
        ("baseline", f"pipelines/{MODEL}/executions/{RUN}/preprocess/train/train.csv"),  # a split
        ("single", f"pipelines/{MODEL}/training/{JOB}/checkpoints/model.tar.gz"),
    ],
)
def test_an_artifact_outside_the_registered_model_keys_is_refused_before_any_copy_or_create(
    aws: Aws, capsys: pytest.CaptureFixture[str], name: str, key: str
) -> None:
    keys = {**KEYS, name: key}
    package = source_package()
    spec = package["InferenceSpecification"]["Containers"]
    spec[0]["ModelDataUrl"] = f"s3://{BUCKETS['staging']}/{keys['transform']}"
    spec[1]["ModelDataUrl"] = f"s3://{BUCKETS['staging']}/{keys['booster']}"
    package["AdditionalInferenceSpecifications"][0]["Containers"][0]["ModelDataUrl"] = (
        f"s3://{BUCKETS['staging']}/{keys['single']}"
    )
    package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"] = (
        f"s3://{BUCKETS['staging']}/{keys['baseline']}"
    )
    assert _promote_until_the_artifacts_are_checked(aws, package) == 2

    err = capsys.readouterr().err
    assert (
        f"{MODEL}: {SOURCE_ARN}: " in err
        and f" is s3://{BUCKETS['staging']}/{key}, not a registered-model key (" in err
    )
    assert "pipelines/*/training/*/output/model.tar.gz" in err
    assert "nothing was promoted" in err
    assert not {"CopyObject", "CreateModelPackage", "PutParameter", "UpdateModelPackage"} & set(
        aws.operations("prod")
    )


def test_the_fixtures_keys_are_registered_model_keys() -> None:
    patterns = pipeline_definition.registered_object_patterns()
    assert all(any(fnmatch.fnmatchcase(k, p) for p in patterns) for k in KEYS.values())
    assert all(k.startswith(pipeline_definition.model_prefix(MODEL)) for k in KEYS.values())


def test_another_s3_location_in_the_version_is_refused_naming_it() -> None:
    package = source_package()
    package["InferenceSpecification"]["Containers"][0]["Environment"]["CODE"] = "s3://b/c.tgz"
    with pytest.raises(release.ReleaseError, match=r"Containers\[0\]\.Environment\.CODE is s3://"):
        release.promotion_request(
            package, group="g", source_bucket=BUCKETS["staging"], target_bucket=BUCKETS["prod"]
        )


def test_an_aws_error_exits_1_naming_the_call_and_the_fix_with_nothing_created(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.assume("staging")
    aws.assume("prod")
    staging, prod = aws.roles["staging"], aws.roles["prod"]
    staging.parameter(record("staging"), SOURCE_ARN)
    staging.describe(source_package())
    prod.versions(f"prod-{MODEL}", [])
    prod.parameter(record("prod"), "none")
    staging.bucket()
    prod.bucket()
    staging.parameter(record("staging", "diabetes"), "none")
    prod.s3.add_client_error(
        "copy_object", service_error_code="AccessDenied", service_message="Access Denied",
        http_status_code=403,
    )  # fmt: skip

    assert promote(aws) == 1

    err = capsys.readouterr().err
    assert (
        "AWS refused CopyObject as arn:aws:iam::222222222222:role/mlops-prod-release "
        "(AccessDenied: Access Denied). Fix: " in err
    )
    assert "KMS key's policy must allow the target's release role" in err
    assert "Traceback" not in err
    assert "CreateModelPackage" not in aws.operations("prod")


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("staging", "staging", "--source-stage and --target-stage are both 'staging'"),
        ("qa", "prod", "--source-stage: no stage named 'qa' in cdk.json; stages are "
         "['dev', 'staging', 'prod']"),
        ("staging", "live", "--target-stage: no stage named 'live'"),
    ],
)  # fmt: skip
def test_unknown_or_equal_stages_are_refused(
    aws: Aws, capsys: pytest.CaptureFixture[str], source: str, target: str, message: str
) -> None:
    assert promote(aws, source, target) == 2
    assert message in capsys.readouterr().err
    assert aws.calls == []


def test_both_verbs_are_registered_with_the_project_root_defaulting_as_for_the_others() -> None:
    args = cli.parser().parse_args(
        ["promote", "--source-stage", "staging", "--target-stage", "prod"]
    )
    assert args.run is release.run_promote
    assert (args.source_stage, args.target_stage) == ("staging", "prod")
    assert args.project_root == str(cli.PROJECT_ROOT)

    assert args.tested is None
    args = cli.parser().parse_args(
        ["promote", "--source-stage", "staging", "--target-stage", "prod", "--tested", "t.json"]
    )
    assert args.tested == "t.json"

    args = cli.parser().parse_args(["release-smoke-test", "--stage", "prod", "--project-root", "x"])
    assert args.run is release.run_smoke_test
    assert (args.stage, args.rows, args.project_root) == ("prod", 5, "x")
    assert args.steps_python == str(cli.DEFAULT_STEPS_PYTHON)
    assert args.tested_file is None
    args = cli.parser().parse_args(["release-smoke-test", "--stage", "prod", "--tested-file", "t"])
    assert args.tested_file == "t"


def test_the_promotion_request_is_independent_of_the_description() -> None:
    package = source_package()
    before = copy.deepcopy(package)
    release.promotion_request(
        package, group="g", source_bucket=BUCKETS["staging"], target_bucket=BUCKETS["prod"]
    )
    assert package == before


def test_an_unwritable_tested_file_exits_2_naming_it_without_a_traceback(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.assume("staging")
    aws.roles["staging"].serving_stack(
        {SERVES[MODEL]: SOURCE_ARN, SERVES["diabetes"]: unapproved("staging", "diabetes")}
    )
    blocker = tmp_path / "tested"
    blocker.write_text("a file where the folder should be")

    assert smoke(aws, Runner(), tested_file=blocker / "staging.json") == 2

    err = capsys.readouterr().err
    assert f"--tested-file {blocker / 'staging.json'}" in err and "Fix: a writable path" in err
    assert "Traceback" not in err

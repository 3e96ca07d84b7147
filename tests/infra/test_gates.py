"""Hard gates and their negative tests: offline synth, determinism, cdk-nag, cfn-lint."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import botocore.endpoint
import pytest
from aws_cdk import aws_s3 as s3
from cdk_helpers import ROOT, make_app, normalize_template
from lint_helpers import lint_findings

import app as platform_app
from mlops.config import load_config

# --- offline synth -------------------------------------------------------------------


class NetworkAttempt(AssertionError):
    """Raised by the guards when synth tries to reach the network or an AWS API."""


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails any socket connection or botocore request made from this process."""
    attempts: list[str] = []

    def refuse_socket(self: socket.socket, address: Any, *args: Any) -> None:
        attempts.append(f"socket connect {address!r}")
        raise NetworkAttempt(f"network access during synth: {address!r}")

    def refuse_aws(self: Any, request: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append(f"AWS API {request.url}")
        raise NetworkAttempt(f"AWS API call during synth: {request.url}")

    monkeypatch.setattr(socket.socket, "connect", refuse_socket)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_socket)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", refuse_aws)
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in ("AWS_DEFAULT_REGION",):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return attempts


def test_every_stage_synthesizes_offline(network_guard: list[str], tmp_path: Path) -> None:
    app = make_app(outdir=tmp_path)
    stages = platform_app.build(app)
    app.synth()
    assert set(stages) == {"dev", "staging", "prod"}
    assert all((tmp_path / f"assembly-{name}").is_dir() for name in stages)
    assert network_guard == []


def test_network_guard_catches_an_aws_call_at_synth(
    network_guard: list[str], tmp_path: Path
) -> None:
    """Negative test: a construct that looks up the account at synth is caught."""
    app = make_app(outdir=tmp_path)
    stack = cdk.Stack(app, "Leaky", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(Exception):  # noqa: B017 - botocore wraps the guard's error
        account = boto3.client(
            "sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        ).get_caller_identity()["Account"]
        s3.Bucket(stack, "Named", bucket_name=f"data-{account}")
    assert network_guard and "sts" in network_guard[0]


def test_network_guard_catches_a_socket(network_guard: list[str]) -> None:
    with pytest.raises(NetworkAttempt):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def _cli_synth(outdir: Path, *, hash_seed: str, no_network: bool) -> subprocess.Popen[str]:
    """Starts `cdk synth` the way `make synth` does, optionally in a namespace with no network."""
    npx = shutil.which("npx")
    assert npx, "Node.js (npx) is required"
    env = {
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "PYTHONHASHSEED": hash_seed,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [npx, "cdk", "synth", "--quiet", "--output", str(outdir)]
    if no_network:
        command = ["unshare", "--net", *command]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _can_unshare_network() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def _templates(outdir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*.template.json"))
    }


@pytest.fixture(scope="module")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cdk synth` of this commit in a network namespace with no network at all."""
    if not _can_unshare_network():
        pytest.skip("unshare --net is not permitted here; the in-process guard still runs")
    outdir = tmp_path_factory.mktemp("cli-synth")
    run = _cli_synth(outdir, hash_seed="1", no_network=True)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output
    return outdir


def test_cli_synth_works_with_no_network_and_no_credentials(cli_synth: Path) -> None:
    names = _templates(cli_synth)
    assert {n.split("/")[0] for n in names} == {"assembly-dev", "assembly-staging", "assembly-prod"}


def test_two_synths_are_byte_identical(cli_synth: Path, default_app: cdk.App) -> None:
    """The CLI's synth (its own process and hash seed) and this process's session synth
    write the same bytes: synth is deterministic, and the templates every other test
    checks are the ones `cdk synth` writes."""
    one, two = _templates(cli_synth), _templates(Path(default_app.outdir))
    assert one.keys() == two.keys()
    for name in one:
        assert one[name] == two[name], f"{name} differs between two synths"


# --- snapshots ------------------------------------------------------------------------


def test_templates_match_snapshot(templates: dict[str, Any], snapshot: Any) -> None:
    for name in sorted(templates):
        assert normalize_template(templates[name]) == snapshot(name=name)


# --- cdk-nag --------------------------------------------------------------------------


def _nag_report(outdir: Path) -> dict[str, Any]:
    return json.loads((outdir / "validation-report.json").read_text())


def test_default_app_has_no_unacknowledged_findings(default_stages: Any, tmp_path: Path) -> None:
    app = make_app(outdir=tmp_path)
    platform_app.build(app)
    app.synth()
    report = _nag_report(tmp_path)
    assert {r["pluginName"] for r in report["pluginReports"]} >= {"NIST.800.53.R5"}
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]


def test_every_acknowledgement_is_on_one_resource_with_a_compensating_control(
    tmp_path: Path,
) -> None:
    app = make_app(outdir=tmp_path)
    platform_app.build(app)
    app.synth()
    suppressed = [
        v
        for plugin in _nag_report(tmp_path)["pluginReports"]
        for v in plugin["suppressedViolations"]
    ]
    assert suppressed
    for finding in suppressed:
        where = finding["acknowledgedAt"]
        # Acknowledged on the resource itself, never on a stack or stage.
        assert where.endswith("/Resource"), f"{finding['ruleName']} acknowledged on {where}"
        assert [c["constructPath"] for c in finding["violatingConstructs"]] == [where]
        reason = finding["reason"].lower()
        assert "false positive" not in reason
        assert "compensating controls:" in reason, finding["reason"]


def test_cdk_nag_fails_synth_on_a_non_compliant_bucket(tmp_path: Path) -> None:
    """Negative test: an unencrypted bucket without SSL enforcement stops synth."""
    app = make_app(outdir=tmp_path)
    platform_app.build(app)
    stack = cdk.Stack(app.node.find_child("dev"), "Insecure")
    s3.Bucket(stack, "Open", encryption=s3.BucketEncryption.UNENCRYPTED, enforce_ssl=False)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    rules = {
        v["ruleName"]
        for plugin in _nag_report(tmp_path)["pluginReports"]
        for v in plugin["violations"]
        if any("Insecure/Open" in c["constructPath"] for c in v["violatingConstructs"])
    }
    assert "AwsSolutions-S10" in rules
    assert "NIST.800.53.R5-S3BucketSSLRequestsOnly" in rules


def test_cdk_nag_fails_the_cli(tmp_path: Path) -> None:
    """The app run by the CDK CLI fails on findings (the CLI itself asks apps not to)."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["@aws-cdk/core:failSynthOnValidationErrors"] = False
    context["stages"] = "dev"
    code = (
        "import sys; sys.argv=['app.py']\n"
        "from mlops import definition_builds; definition_builds.start()  # as app.py does\n"
        "import aws_cdk as cdk, aws_cdk.aws_s3 as s3\n"
        "import app as a\n"
        "real = a.build\n"
        "def build(app, **kw):\n"
        "    stages = real(app, **kw)\n"
        "    s3.Bucket(cdk.Stack(stages['dev'], 'Insecure'), 'Open', enforce_ssl=False)\n"
        "    return stages\n"
        "a.build = build\n"
        "a.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "AwsSolutions-S10" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr  # CDK's own errors are reported, not raised


# --- cfn-lint -------------------------------------------------------------------------


_lint = lint_findings


def test_cfn_lint_is_clean_on_every_template(templates: dict[str, Any]) -> None:
    config = load_config(
        json.loads((ROOT / "cdk.json").read_text())["context"]["mlops"], project_root=ROOT
    )
    names = sorted(templates)
    regions = [config.stages[name.split("/")[0]].region for name in names]
    # cfn-lint is CPU-bound Python: one process per core ("spawn": this process runs jsii).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=context) as pool:
        findings = dict(
            zip(names, pool.map(_lint, [templates[n] for n in names], regions), strict=True)
        )
    assert {name: found for name, found in findings.items() if found} == {}


def test_cfn_lint_fails_on_an_invalid_property(templates: dict[str, Any]) -> None:
    """Negative test: a bad enum value CDK's L1 typing lets through is reported."""
    template = json.loads(json.dumps(templates["dev/Data"]))
    template["Resources"]["BadEndpointConfig"] = {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.huge",
                    "InitialVariantWeight": 1,
                }
            ]
        },
    }
    problems = _lint(template, "us-east-1")
    assert any("ml.m5.huge" in p for p in problems), problems


# --- stacks share values without CloudFormation exports ------------------------------


def _exports_and_imports(templates: dict[str, Any]) -> list[str]:
    found = []
    for name, template in templates.items():
        found += [
            f"{name}: export {k}" for k, o in template.get("Outputs", {}).items() if "Export" in o
        ]
        if "Fn::ImportValue" in json.dumps(template):
            found.append(f"{name}: Fn::ImportValue")
    return found


def test_stacks_share_values_without_exports(templates: dict[str, Any]) -> None:
    """An export cannot change while another stack imports it ("export in use"): the data
    stack hands values over through SSM parameters instead."""
    assert _exports_and_imports(templates) == []


def test_turning_mlflow_off_and_using_fewer_zones_is_an_ordinary_update(synth: Any) -> None:
    """The change sequence that failed with exports: a stage with MLflow and three zones,
    then without MLflow and with two. Neither state exports or imports anything, so
    CloudFormation can update the data stack first (as `cdk deploy` orders it)."""
    from cdk_helpers import all_templates, mlops_config

    before, after = mlops_config(), mlops_config()
    for config, zones, mlflow in ((before, 3, True), (after, 2, False)):
        config["defaultStages"] = ["dev"]
        config["stages"]["dev"].update(account="111122223333", mlflow={"enabled": mlflow})
        config["stages"]["dev"]["vpc"] = {"cidr": "10.10.0.0/16", "maxAzs": zones}
    states = [all_templates(synth(c).values()) for c in (before, after)]
    for templates in states:
        assert _exports_and_imports(templates) == []
    pipelines = [t["dev/Training/BreastCancerTraining"] for t in states]
    subs = [
        r["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][1]
        for p in pipelines
        for r in p["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Pipeline"
    ]
    assert [sorted(k for k in s if k.startswith("SubnetId")) for s in subs] == [
        ["SubnetId0", "SubnetId1", "SubnetId2"],
        ["SubnetId0", "SubnetId1"],
    ]
    assert "MlflowResourceArn" in subs[0] and "MlflowResourceArn" not in subs[1]

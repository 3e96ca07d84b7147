"""The release pipeline (`-c release=true`): its stages and waves, the approval before prod,
the promotion and smoke-test steps, the synth commands, cross-account deploys, the rule that
starts it, and what each released stage gets (the approval rule and the release role)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_helpers import ROOT, all_templates, make_app, mlops_config, resources_of
from lint_helpers import lint_findings

import app as platform_app
from mlops import serving_record
from mlops.config import ConfigError, parse_config
from stacks.release_stack import RUNTIMES, SYNTH_COMMANDS, cli_version

TOOLING, STAGING, PROD = "111111111111", "222222222222", "333333333333"
CONNECTION = (
    f"arn:aws:codeconnections:us-east-1:{TOOLING}:connection/0f3c1a2b-1234-4abc-8def-0123456789ab"
)


def release_config() -> dict[str, Any]:
    """The default config released from a tooling account to dev (there), staging and prod."""
    config = mlops_config()
    config["release"] = {
        "account": TOOLING,
        "region": "us-east-1",
        "source": {"connectionArn": CONNECTION, "repository": "my-org/mlops"},
        "waves": [["dev"], ["staging"], ["prod"]],
        "promotions": {"prod": "staging"},
    }
    config["stages"]["dev"]["account"] = TOOLING
    config["stages"]["staging"].update(account=STAGING, modelReaderAccounts=[PROD])
    config["stages"]["prod"]["account"] = PROD
    return config


@pytest.fixture(scope="module")
def release_app(tmp_path_factory: pytest.TempPathFactory) -> cdk.App:
    app = make_app(release_config(), tmp_path_factory.mktemp("release.out"))
    app.node.set_context("release", "true")
    platform_app.build(app)
    app.synth()  # fails on any unacknowledged cdk-nag finding
    return app


@pytest.fixture(scope="module")
def release_template(release_app: cdk.App) -> dict[str, Any]:
    stack = release_app.node.find_child("Release")
    return cdk.assertions.Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def stage_templates(release_app: cdk.App) -> dict[str, dict[str, Any]]:
    return all_templates(c for c in release_app.node.children if isinstance(c, cdk.Stage))


def pipeline_of(template: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = resources_of(template, "AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]


def actions(template: dict[str, Any], stage_name: str) -> list[dict[str, Any]]:
    (stage,) = [s for s in pipeline_of(template)["Stages"] if s["Name"] == stage_name]
    return sorted(stage["Actions"], key=lambda a: a["RunOrder"])


def project_of(template: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    name = action["Configuration"]["ProjectName"]["Ref"]
    return template["Resources"][name]["Properties"]


def buildspec(project: dict[str, Any]) -> dict[str, Any]:
    return json.loads(project["Source"]["BuildSpec"])


def test_the_pipeline_releases_the_waves_in_order_after_source_synth_and_self_mutation(
    release_template: dict[str, Any],
) -> None:
    properties = pipeline_of(release_template)
    assert [s["Name"] for s in properties["Stages"]] == [
        "Source", "Build", "UpdatePipeline", "Assets", "dev", "staging", "prod",
    ]  # fmt: skip
    assert properties["PipelineType"] == "V2"
    assert properties["ExecutionMode"] == "QUEUED"
    (source,) = actions(release_template, "Source")
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["FullRepositoryId"] == "my-org/mlops"
    assert source["Configuration"]["BranchName"] == "main"


def test_synth_runs_make_test_then_the_release_synth_with_the_readmes_runtimes(
    release_template: dict[str, Any],
) -> None:
    (synth,) = actions(release_template, "Build")
    spec = buildspec(project_of(release_template, synth))
    assert spec["phases"]["build"]["commands"] == list(SYNTH_COMMANDS)
    assert SYNTH_COMMANDS[0] == "make test" and "-c release=true" in SYNTH_COMMANDS[1]
    assert spec["phases"]["install"]["runtime-versions"] == RUNTIMES
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    (mutate,) = actions(release_template, "UpdatePipeline")
    commands = buildspec(project_of(release_template, mutate))["phases"]
    text = json.dumps(commands)
    assert f"aws-cdk@{cli_version(ROOT)}" in text  # the CLI package.json pins
    assert "cdk -a . deploy Release " in text  # the release stack itself (self-mutation)


def test_prod_waits_for_a_person_then_promotes_what_staging_tested_before_its_serving_stack(
    release_template: dict[str, Any],
) -> None:
    prod = actions(release_template, "prod")
    order = {a["Name"]: a["RunOrder"] for a in prod}
    assert prod[0]["Name"] == "Approve-prod" and prod[0]["ActionTypeId"]["Provider"] == "Manual"
    assert order["Approve-prod"] < order["Data.Deploy"]
    # after the data stack (records, release role), before the endpoints
    assert (
        order["Data.Deploy"] < order["Serving.Promote-staging-to-prod"] < order["Serving.Prepare"]
    )
    assert order["Serving.Deploy"] < order["SmokeTest-prod"] == max(order.values())
    (promote,) = [a for a in prod if a["Name"] == "Serving.Promote-staging-to-prod"]
    commands = buildspec(project_of(release_template, promote))["phases"]["build"]["commands"]
    assert commands[-1] == (
        ".venv/bin/mlops promote --source-stage staging --target-stage prod "
        "--tested tested/staging.json"
    )
    # the versions come from staging's smoke test of this run (its output artifact)
    (staging_smoke,) = [
        a for a in actions(release_template, "staging") if a["Name"] == "SmokeTest-staging"
    ]
    (tested,) = staging_smoke["OutputArtifacts"]
    assert tested["Name"] in [i["Name"] for i in promote["InputArtifacts"]]
    for name in ("dev", "staging"):
        stage = actions(release_template, name)
        assert not [a for a in stage if a["ActionTypeId"]["Provider"] == "Manual"]
        smoke = buildspec(project_of(release_template, stage[-1]))["phases"]["build"]["commands"]
        assert smoke[-1] == (
            f".venv/bin/mlops release-smoke-test --stage {name} --tested-file tested/{name}.json"
        )


def test_each_stage_deploys_through_its_accounts_bootstrap_role(
    release_template: dict[str, Any],
) -> None:
    for name, account in (("dev", TOOLING), ("staging", STAGING), ("prod", PROD)):
        roles = {
            json.dumps(a["RoleArn"])
            for a in actions(release_template, name)
            if a["ActionTypeId"]["Provider"] == "CloudFormation"
        }
        assert roles == {
            json.dumps(
                {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                 f":iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-us-east-1"]]}
            )
        }  # fmt: skip
    (key,) = resources_of(release_template, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    principals = json.dumps(key["Properties"]["KeyPolicy"])
    for account in (STAGING, PROD):
        assert f"cdk-hnb659fds-deploy-role-{account}-us-east-1" in principals


def test_the_steps_assume_only_the_release_roles_of_their_stages(
    release_template: dict[str, Any],
) -> None:
    def assumed(step: str) -> list[str]:
        (policy,) = [
            p for k, p in resources_of(release_template, "AWS::IAM::Policy").items()
            if step.replace("-", "") in k
        ]  # fmt: skip
        found = []
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Action"] == "sts:AssumeRole":
                resources = statement["Resource"]
                for r in resources if isinstance(resources, list) else [resources]:
                    found.append(json.dumps(r))
        return found

    def role(account: str, stage: str) -> str:
        name = serving_record.release_role_name(stage)
        return json.dumps(f"arn:aws:iam::{account}:role/{name}")

    assert assumed("SmokeTestprod") == [role(PROD, "prod")]
    assert assumed("SmokeTestdev") == [role(TOOLING, "dev")]
    assert sorted(assumed("Promotestagingtoprod")) == sorted(
        [role(STAGING, "staging"), role(PROD, "prod")]
    )


def test_a_changed_version_record_in_any_stage_starts_the_release(
    release_template: dict[str, Any],
) -> None:
    (rule,) = resources_of(release_template, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "account": [TOOLING, STAGING, PROD],
        "detail-type": [serving_record.RECORD_CHANGED],
        "source": [serving_record.RELEASE_EVENT_SOURCE],
    }
    (target,) = rule["Properties"]["Targets"]
    assert "codepipeline" in json.dumps(target["Arn"])
    policies = resources_of(release_template, "AWS::Events::EventBusPolicy")
    statements = sorted(
        (p["Properties"]["Statement"] for p in policies.values()),
        key=lambda s: s["Principal"]["AWS"],
    )
    assert [s["Principal"]["AWS"] for s in statements] == [
        f"arn:aws:iam::{STAGING}:root", f"arn:aws:iam::{PROD}:root",
    ]  # fmt: skip
    for statement in statements:
        assert statement["Condition"] == {
            "StringEquals": {"events:source": [serving_record.RELEASE_EVENT_SOURCE]}
        }


def serving(stage_templates: dict[str, dict[str, Any]], stage: str) -> dict[str, Any]:
    return stage_templates[f"{stage}/Serving"]


def test_each_stage_acts_on_approvals_of_its_own_groups_and_sends_to_the_release_bus(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    for stage, promoted in (("dev", "false"), ("staging", "false"), ("prod", "true")):
        template = serving(stage_templates, stage)
        (rule,) = resources_of(template, "AWS::Events::Rule").values()
        assert rule["Properties"]["EventPattern"] == {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {
                "ModelPackageGroupName": [{"prefix": serving_record.group_prefix(stage)}],
                "ModelApprovalStatus": ["Approved", "Rejected"],
                "ModelPackageStatus": ["Completed"],
            },
        }
        (target,) = rule["Properties"]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4
        assert "DeadLetterConfig" in target
        (handler,) = [
            f for f in resources_of(template, "AWS::Lambda::Function").values()
            if "ApprovalDeploys" in json.dumps(f["Properties"]["Role"])
        ]  # fmt: skip
        env = handler["Properties"]["Environment"]["Variables"]
        assert env["RECORD_NAME_TEMPLATE"].format(model="breast-cancer") == (
            serving_record.record_name(stage, "breast-cancer")
        )
        assert env["RELEASE_EVENT_BUS_ARN"] == (
            f"arn:aws:events:us-east-1:{TOOLING}:event-bus/default"
        )
        assert env["PROMOTED_ONLY"] == promoted
        assert env["PROMOTED_FROM_KEY"] == serving_record.PROMOTED_FROM_KEY
        assert handler["Properties"]["ReservedConcurrentExecutions"] == 1
        assert "Powertools" in handler["Properties"]["Layers"][0]


def test_the_release_role_trusts_only_the_release_stacks_roles_and_only_promoted_stages_write_versions(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    for stage, promoted in (("staging", False), ("prod", True)):
        template = stage_templates[f"{stage}/Data"]
        (role,) = [
            r for r in resources_of(template, "AWS::IAM::Role").values()
            if r["Properties"].get("RoleName") == serving_record.release_role_name(stage)
        ]  # fmt: skip
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"AWS": f"arn:aws:iam::{TOOLING}:root"}
        assert trust["Condition"] == {
            "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{TOOLING}:role/mlops-release-*"}
        }
        policy = json.dumps(
            [
                p
                for k, p in resources_of(template, "AWS::IAM::Policy").items()
                if "ReleaseAccess" in k
            ]
        )
        assert ("sagemaker:CreateModelPackage" in policy) is promoted
        assert ("s3:ResourceAccount" in policy) is promoted
        if promoted:
            assert f'"s3:ResourceAccount": "{STAGING}"' in policy


def test_the_release_template_and_the_released_stages_are_cfn_lint_clean(
    release_template: dict[str, Any], stage_templates: dict[str, dict[str, Any]]
) -> None:
    assert lint_findings(release_template, "us-east-1") == []
    for stage in ("staging", "prod"):
        assert lint_findings(serving(stage_templates, stage), "us-east-1") == []


def test_without_a_release_section_no_stage_has_release_resources(
    templates: dict[str, dict[str, Any]],
) -> None:
    for path, template in templates.items():
        assert not [k for k in template.get("Resources", {}) if k.startswith("Release")], path


def test_release_true_without_a_release_section_is_a_config_error() -> None:
    app = make_app()
    app.node.set_context("release", "true")
    with pytest.raises(ConfigError, match=r"release: missing.*Fix: add a release section"):
        platform_app.build(app)
    assert not [c for c in app.node.children if isinstance(c, cdk.Stage)]


def _edit(change: Any) -> dict[str, Any]:
    config = release_config()
    change(config)
    return config


BAD_RELEASES = [
    ("unknown-stage", lambda c: c["release"].update(waves=[["dev"], ["qa"], ["staging"], ["prod"]]),
     ("release.waves", "undefined stages ['qa']")),
    ("skips-a-stage", lambda c: c["release"].update(waves=[["dev"], ["prod"]]),
     ("release.waves", "skips ['staging']")),
    ("a-stage-twice", lambda c: c["release"].update(waves=[["dev"], ["staging", "dev"], ["prod"]]),
     ("release.waves", "more than once")),
    ("wrong-service", lambda c: c["release"]["source"].update(
        connectionArn="arn:aws:codecommit:us-east-1:111111111111:connection/0f3c1a2b-1234-4abc-8def-0123456789ab"),
     ("release.source.connectionArn", "not a CodeConnections connection ARN")),
    ("wrong-region", lambda c: c["release"]["source"].update(connectionArn=CONNECTION.replace("us-east-1", "eu-west-1")),
     ("release.source.connectionArn", "in eu-west-1", "runs in us-east-1")),
    ("account-not-12-digits", lambda c: c["release"].update(account="12345"),
     ("release.account", "12-digit")),
    ("stage-account-not-12-digits", lambda c: c["stages"]["prod"].update(account="33333333333a"),
     ("stages.prod.account", "12-digit")),
    ("promote-backwards", lambda c: c["release"].update(promotions={"staging": "prod"}, approvalBefore=["staging", "prod"]),
     ("release.promotions.staging", "promote from an earlier wave")),
    ("promote-without-a-person", lambda c: c["release"].update(approvalBefore=[]),
     ("release.promotions.prod", 'add "prod" to release.approvalBefore')),
    ("promote-without-read-access", lambda c: c["stages"]["staging"].update(modelReaderAccounts=[]),
     ("stages.staging.modelReaderAccounts", f'add "{PROD}"')),
    ("two-sources", lambda c: c["release"]["source"].update(bucket="my-bucket", objectKey="mlops.zip"),
     ("release.source", "not both or neither")),
    ("promote-across-regions", lambda c: c["stages"]["prod"].update(region="eu-west-1"),
     ("release.promotions.prod", "within one region")),
    ("no-account-across-accounts", lambda c: c["release"].update(account=None),
     ("release.account", "needs its own account")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "edit", "expected"), BAD_RELEASES, ids=[c[0] for c in BAD_RELEASES]
)
def test_a_bad_release_config_is_rejected_naming_the_field(
    case: str, edit: Any, expected: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_edit(edit), project_root=ROOT)
    message = str(error.value)
    for text in expected:
        assert text in message, (case, message)


def test_a_release_without_prod_needs_no_approval_by_default() -> None:
    config = _edit(lambda c: c["release"].update(waves=[["dev"], ["staging"]], promotions={}))
    config["defaultStages"] = ["dev", "staging"]
    release = parse_config(config, project_root=ROOT).release
    assert release is not None and release.approvals == ()
    assert parse_config(release_config(), project_root=ROOT).release.approvals == ("prod",)  # type: ignore[union-attr]


def test_an_s3_source_release_config_parses(tmp_path: Path) -> None:
    config = _edit(
        lambda c: c["release"].update(source={"bucket": "my-src", "objectKey": "mlops.zip"})
    )
    assert parse_config(config, project_root=ROOT).release.source.kind == "s3"  # type: ignore[union-attr]

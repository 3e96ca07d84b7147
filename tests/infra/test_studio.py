"""The Studio domain with Canvas: its template, its network, its role and its config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from cdk_helpers import all_templates, mlops_config, resources_of
from lint_helpers import lint_findings

from constructs.network import STUDIO_ENDPOINTS
from constructs.studio_domain import CANVAS_NAMES, canvas_app_settings
from mlops.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[2]


def _one(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (item,) = resources_of(template, kind).items()
    return item


def _joined(value: Any) -> str:
    """A template string value with every token replaced by ``TOKEN``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_joined(p) for p in parts)
    return "TOKEN"


@pytest.fixture(scope="module")
def retained(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Templates of a config whose staging (removalPolicy retain) has Studio too, with a
    profile that brings its own role."""
    config = mlops_config()
    config["stages"]["staging"]["account"] = "222222222222"
    config["stages"]["staging"]["studio"] = {
        "enabled": True,
        "idleTimeoutMinutes": 120,
        "userProfiles": [
            {"name": "ana", "executionRoleArn": "arn:aws:iam::222222222222:role/ana-work"},
            {"name": "ben"},
        ],
    }
    return all_templates(synth(config, tmp_path_factory.mktemp("retained")).values())


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from cdk_helpers import make_app

    import app as platform_app

    def run(mlops: dict[str, Any], outdir: Path) -> dict[str, Any]:
        app = make_app(mlops, outdir)
        stages = platform_app.build(app)
        app.synth()
        return stages

    return run


def test_only_dev_has_a_domain_by_default(templates: dict[str, Any]) -> None:
    assert [name for name in templates if name.endswith("/Studio")] == ["dev/Studio"]


def test_dev_domain_is_vpc_only_with_iam_sign_in_the_key_and_idle_shutdown(
    templates: dict[str, Any],
) -> None:
    template = templates["dev/Studio"]
    _, domain = _one(template, "AWS::SageMaker::Domain")
    props = domain["Properties"]
    assert props["AppNetworkAccessType"] == "VpcOnly"
    assert props["AuthMode"] == "IAM"
    assert "datakeyarn" in props["KmsKeyId"]["Ref"]
    assert "networkvpcid" in props["VpcId"]["Ref"]
    assert len(props["SubnetIds"]) == 2
    groups = props["DomainSettings"]["SecurityGroupIds"]
    assert "networkstudiosecuritygroupid" in groups[0]["Ref"]
    assert props["DefaultUserSettings"]["SecurityGroups"] == groups
    assert props["DomainSettings"]["ExecutionRoleIdentityConfig"] == "USER_PROFILE_NAME"
    assert props["DomainSettings"]["DockerSettings"] == {"EnableDockerAccess": "DISABLED"}
    idle = {
        "IdleSettings": {
            "LifecycleManagement": "ENABLED", "IdleTimeoutInMinutes": 60,
            "MinIdleTimeoutInMinutes": 60, "MaxIdleTimeoutInMinutes": 60,
        }
    }  # fmt: skip
    user = props["DefaultUserSettings"]
    for app in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
        assert user[app]["AppLifecycleManagement"] == idle
    assert props["DefaultSpaceSettings"]["JupyterLabAppSettings"]["AppLifecycleManagement"] == idle
    assert user["SharingSettings"] == {"NotebookOutputOption": "Disabled"}
    # dev is destroyed with its stage: no EFS home left behind to block the VPC's deletion.
    assert props["HomeEfsFileSystemCreation"] == "Disabled"
    assert user["AutoMountHomeEFS"] == "Disabled"
    assert domain["DeletionPolicy"] == "Delete"


def test_a_retained_stage_keeps_its_domain_and_its_home_volume(retained: dict[str, Any]) -> None:
    _, domain = _one(retained["staging/Studio"], "AWS::SageMaker::Domain")
    assert domain["DeletionPolicy"] == domain["UpdateReplacePolicy"] == "Retain"
    assert domain["Properties"]["HomeEfsFileSystemCreation"] == "Enabled"
    assert domain["Properties"]["DefaultUserSettings"]["AutoMountHomeEFS"] == "Enabled"
    lifecycle = domain["Properties"]["DefaultUserSettings"]["JupyterLabAppSettings"]
    assert lifecycle["AppLifecycleManagement"]["IdleSettings"]["IdleTimeoutInMinutes"] == 120
    # Retained: the profiles and their spaces too (users' work), so nothing tears down.
    assert resources_of(retained["staging/Studio"], "Custom::StudioTeardown") == {}
    functions = resources_of(retained["staging/Studio"], "AWS::Lambda::Function").values()
    assert not [f for f in functions if f["Properties"].get("Runtime") == "python3.13"]
    profiles = resources_of(retained["staging/Studio"], "AWS::SageMaker::UserProfile")
    assert {p["DeletionPolicy"] for p in profiles.values()} == {"Retain"}


def test_user_profiles_come_from_config(
    templates: dict[str, Any], retained: dict[str, Any]
) -> None:
    (profile,) = resources_of(templates["dev/Studio"], "AWS::SageMaker::UserProfile").values()
    assert profile["Properties"]["UserProfileName"] == "data-scientist"
    assert "DomainExecutionRole" in json.dumps(profile["Properties"]["UserSettings"])
    profiles = {
        p["Properties"]["UserProfileName"]: p["Properties"]["UserSettings"]["ExecutionRole"]
        for p in resources_of(retained["staging/Studio"], "AWS::SageMaker::UserProfile").values()
    }
    assert profiles["ana"] == "arn:aws:iam::222222222222:role/ana-work"
    assert "DomainExecutionRole" in json.dumps(profiles["ben"])


def test_teardown_runs_before_the_domain_and_profiles_are_deleted(
    templates: dict[str, Any],
) -> None:
    template = templates["dev/Studio"]
    teardowns = resources_of(template, "Custom::StudioTeardown")
    domain_key, _ = _one(template, "AWS::SageMaker::Domain")
    profile_key, _ = _one(template, "AWS::SageMaker::UserProfile")
    by_scope = {t["Properties"].get("UserProfileName", "*"): (k, t) for k, t in teardowns.items()}
    assert set(by_scope) == {"*", "data-scientist"}
    _, domain_teardown = by_scope["*"]
    # CloudFormation deletes dependents first: the domain's teardown, then each profile's,
    # then the profiles, then the domain.
    assert profile_key in domain_teardown["DependsOn"]
    assert by_scope["data-scientist"][0] in domain_teardown["DependsOn"]
    assert profile_key in by_scope["data-scientist"][1]["DependsOn"]
    assert domain_teardown["Properties"]["DomainId"] == {"Fn::GetAtt": [domain_key, "DomainId"]}
    assert domain_teardown["Properties"]["ManagedUserProfiles"] == ["data-scientist"]
    assert domain_teardown["Properties"]["ServiceTimeout"] == "3600"
    (handler,) = [
        f for f in resources_of(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Runtime") == "python3.13"
    ]  # fmt: skip
    assert "AWSLambdaPowertoolsPythonV3-python313" in json.dumps(handler["Properties"]["Layers"])
    assert handler["Properties"]["Timeout"] == 900
    # It may continue itself (invoke its own ARN), and the teardowns wait for that policy.
    handler_key = next(k for k, f in resources_of(template, "AWS::Lambda::Function").items()
                       if f is handler)  # fmt: skip
    (cont_key, cont) = next(
        (k, p) for k, p in resources_of(template, "AWS::IAM::Policy").items()
        if "TeardownContinuePolicy" in k
    )  # fmt: skip
    assert cont["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow",
         "Resource": {"Fn::GetAtt": [handler_key, "Arn"]}}
    ]  # fmt: skip
    for teardown in teardowns.values():
        assert cont_key in teardown["DependsOn"]
    # Canvas's settings are in place before the profile is created.
    (canvas_key,) = resources_of(template, "Custom::CanvasSettings")
    assert (
        canvas_key
        in resources_of(template, "AWS::SageMaker::UserProfile")[profile_key]["DependsOn"]
    )


def test_canvas_settings_are_set_through_update_domain(templates: dict[str, Any]) -> None:
    """The deploy-time call's request, as the template sends it, is a valid UpdateDomain
    request (botocore's own shape) with the workspace under canvas/ with the key."""
    (call,) = resources_of(templates["dev/Studio"], "Custom::CanvasSettings").values()
    create = json.loads(_joined(call["Properties"]["Create"]))
    assert create["service"] == "SageMaker" and create["action"] == "updateDomain"
    settings = create["parameters"]["DefaultUserSettings"]["CanvasAppSettings"]
    workspace = settings["WorkspaceSettings"]
    assert re.fullmatch(r"s3://TOKEN/canvas/", workspace["S3ArtifactPath"])
    assert workspace["S3KmsKeyId"] == "TOKEN"
    assert settings["ModelRegisterSettings"] == {"Status": "ENABLED"}
    assert settings["DirectDeploySettings"] == {"Status": "ENABLED"}  # dev
    # The template's request, its tokens given well-formed values, is a valid UpdateDomain.
    request = json.loads(
        json.dumps(create["parameters"])
        .replace('"s3://TOKEN/canvas/"', '"s3://bucket/canvas/"')
        .replace('"TOKEN"', '"d-abcdefghijkl"')
    )
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model("UpdateDomain").input_shape)
    assert not report.has_errors(), report.generate_report()
    # ... and the function that builds it gives every other stage the same, deploy off.
    assert canvas_app_settings(
        artifacts_uri="s3://bucket/canvas/", key_arn="d-abcdefghijkl", direct_deploy=False
    ) == {
        **request["DefaultUserSettings"]["CanvasAppSettings"],
        "DirectDeploySettings": {"Status": "DISABLED"},
    }  # fmt: skip


def test_direct_deploy_is_off_outside_dev(retained: dict[str, Any]) -> None:
    (call,) = resources_of(retained["staging/Studio"], "Custom::CanvasSettings").values()
    create = json.loads(_joined(call["Properties"]["Create"]))
    settings = create["parameters"]["DefaultUserSettings"]["CanvasAppSettings"]
    assert settings["DirectDeploySettings"] == {"Status": "DISABLED"}
    policies = json.dumps(resources_of(retained["staging/Studio"], "AWS::IAM::ManagedPolicy"))
    assert "sagemaker:CreateEndpoint" not in policies


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for key, policy in resources_of(template, kind).items():
            if key.startswith("DomainExecutionRole") or key.startswith("DomainAppsPolicy"):
                found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_each_user_works_in_their_own_private_spaces(templates: dict[str, Any]) -> None:
    statements = {s.get("Sid"): s for s in _statements(templates["dev/Studio"])}
    own = "user-profile/${sagemaker:DomainId}/${sagemaker:UserProfileName}"
    for sid in ("OwnPrivateSpaces", "AppsInOwnPrivateSpaces"):
        condition = statements[sid]["Condition"]
        assert own in json.dumps(condition["ArnLike"]["sagemaker:OwnerUserProfileArn"])
        assert condition["StringEquals"] == {"sagemaker:SpaceSharingType": "Private"}
    assert "${sagemaker:UserProfileName}/*" in json.dumps(statements["OwnProfileApps"]["Resource"])
    # Shared spaces are never allowed: no statement grants space actions without the owner.
    for statement in statements.values():
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if "sagemaker:CreateSpace" in actions:
            assert "sagemaker:OwnerUserProfileArn" in json.dumps(statement["Condition"])


def test_the_execution_role_is_least_privilege(templates: dict[str, Any]) -> None:
    template = templates["dev/Studio"]
    (role,) = [r for k, r in resources_of(template, "AWS::IAM::Role").items()
               if k.startswith("DomainExecutionRole")]  # fmt: skip
    assert "ManagedPolicyArns" not in role["Properties"] or not any(
        "arn:aws:iam::aws:policy" in json.dumps(a) for a in role["Properties"]["ManagedPolicyArns"]
    )
    statements = _statements(template)
    text = json.dumps(statements)
    assert "FullAccess" not in text
    assert '"Action": "*"' not in text and '"sagemaker:*"' not in text
    register = [s for s in statements if "sagemaker:CreateModelPackage" in json.dumps(s["Action"])]
    assert register and all(
        s["Condition"]
        == {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}
        for s in register
    )
    assert "model-package-group/dev-*" in json.dumps(register)
    canvas = next(s for s in statements if s.get("Sid") == "CanvasJobsInTheDomainSubnets")
    names = {_joined(r).rsplit("/", 1)[1] for r in canvas["Resource"]}
    assert names == set(CANVAS_NAMES)
    (passing,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    # The workspace prefix, read and write; raw data read only.
    assert "/canvas/*" in text
    raw = [s for s in statements if "rawdatabucketarn" in json.dumps(s["Resource"])]
    assert raw, "the raw-data bucket's grant"
    assert not [s for s in raw if "s3:PutObject" in json.dumps(s["Action"])]
    # Canvas's jobs only in the domain's subnets; the key only through S3 and SageMaker.
    in_vpc = next(s for s in statements if s.get("Sid") == "CanvasJobsInTheDomainSubnets")
    assert in_vpc["Condition"]["Null"] == {"sagemaker:VpcSubnets": "false"}
    assert "networkjobsubnetids" in json.dumps(
        in_vpc["Condition"]["ForAllValues:StringEquals"]["sagemaker:VpcSubnets"]
    )
    creates = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list)
               else [s["Action"]]) if a.startswith("sagemaker:Create") and "Job" in a}  # fmt: skip
    assert creates - set(in_vpc["Action"]) == {"sagemaker:CreateTransformJob"}
    keys = [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]
    assert keys and all("kms:ViaService" in json.dumps(s.get("Condition", {})) for s in keys)


def test_the_domain_policy_does_not_grow_with_models(synth: Any, tmp_path: Path) -> None:
    config = mlops_config()
    base = config["models"][0]
    config["models"] = [
        {**base, "name": f"model-{i}", "dataPrefix": f"model-{i}/"} for i in range(6)
    ]
    config["featureGroups"] = [
        {"name": f"model-{i}-features", "model": f"model-{i}"} for i in range(6)
    ]
    config["defaultStages"] = ["dev"]
    config["stages"] = {"dev": config["stages"]["dev"]}
    many = all_templates(synth(config, tmp_path).values())["dev/Studio"]
    assert len(json.dumps(_statements(many))) == len(
        json.dumps(_statements(all_templates(synth(mlops_config() | {
            "defaultStages": ["dev"], "stages": {"dev": config["stages"]["dev"]}
        }, tmp_path / "one").values())["dev/Studio"]))
    )  # fmt: skip


def test_the_vpc_has_the_endpoints_a_vpc_only_domain_needs(templates: dict[str, Any]) -> None:
    template = templates["dev/Data"]
    endpoints = resources_of(template, "AWS::EC2::VPCEndpoint")
    services = {_joined(e["Properties"]["ServiceName"]) for e in endpoints.values()}
    assert not any(s.endswith(".studio") for s in services)
    for service in ("sagemaker.api", "sagemaker.runtime", "sts", "logs", "monitoring",
                    "ecr.api", "ecr.dkr", "glue", "kms", "experiments", "athena",
                    "featurestore-runtime"):  # fmt: skip
        assert any(s.endswith(f".{service}") for s in services), service
    groups = resources_of(template, "AWS::EC2::SecurityGroup")
    shared = next(k for k in groups if "StudioEndpointSecurityGroup" in k)
    studio = next(k for k in groups if "NetworkStudioSecurityGroup" in k)
    for endpoint in endpoints.values():
        props = endpoint["Properties"]
        if props["VpcEndpointType"] != "Interface":
            continue
        assert props["PrivateDnsEnabled"] is True
        for statement in props["PolicyDocument"]["Statement"]:
            assert statement["Condition"]["StringEquals"]["aws:PrincipalAccount"] == {
                "Ref": "AWS::AccountId"
            }
            assert statement["Principal"] == {"AWS": "*"}
    ingress = [
        i["Properties"] for i in resources_of(template, "AWS::EC2::SecurityGroupIngress").values()
        if i["Properties"]["GroupId"] == {"Fn::GetAtt": [shared, "GroupId"]}
    ]  # fmt: skip
    assert [i["SourceSecurityGroupId"]["Fn::GetAtt"][0] for i in ingress] == [studio]
    assert {(i["IpProtocol"], i["FromPort"], i["ToPort"]) for i in ingress} == {("tcp", 443, 443)}
    egress = json.dumps(groups[studio]["Properties"].get("SecurityGroupEgress", [])) + json.dumps(
        [e for e in resources_of(template, "AWS::EC2::SecurityGroupEgress").values()
         if e["Properties"]["GroupId"] == {"Fn::GetAtt": [studio, "GroupId"]}]
    )  # fmt: skip
    assert "0.0.0.0/0" not in egress


def test_the_endpoints_and_their_reasons_are_written_down() -> None:
    """docs/studio.md lists exactly the endpoints the network creates."""
    doc = (ROOT / "docs" / "studio.md").read_text().split("## Interface endpoints")[1]
    listed = re.findall(r"^\| `([A-Za-z]+)` \|", doc, flags=re.MULTILINE)
    assert listed == [e.id for e in STUDIO_ENDPOINTS] + ["FeatureStoreRuntime", "Athena"]


def test_studio_templates_are_cfn_lint_clean(
    templates: dict[str, Any], retained: dict[str, Any]
) -> None:
    assert lint_findings(templates["dev/Studio"], "us-east-1") == []
    assert lint_findings(retained["staging/Studio"], "us-east-1") == []
    assert lint_findings(retained["staging/Data"], "us-east-1") == []


@pytest.mark.parametrize(
    ("studio", "field", "message"),
    [
        ({"enabled": False, "userProfiles": [{"name": "ana"}]}, "studio.userProfiles",
         "no Studio domain"),
        ({"userProfiles": [{"name": "ana"}, {"name": "ana"}]}, "studio.userProfiles",
         "duplicate names"),
        ({"userProfiles": [{"name": "-ana"}]}, "studio.userProfiles[0:-ana].name",
         "not a Studio user profile name"),
        ({"userProfiles": [{"name": "ana", "executionRoleArn": "ana"}]},
         "studio.userProfiles[0:ana].executionRoleArn", "not an IAM role ARN"),
        ({"userProfiles": [{"name": "ana",
                            "executionRoleArn": "arn:aws:iam::999999999999:role/x"}]},
         "studio.userProfiles[0:ana].executionRoleArn", "the stage's account is 111111111111"),
        ({"userProfiles": [{"name": "ana-b"}, {"name": "anaB"}]}, "studio.userProfiles",
         "give the same construct ID (AnaB)"),
        ({"idleTimeoutMinutes": 30}, "studio.idleTimeoutMinutes", "greater than or equal to 60"),
        ({"canvas": {}}, "studio.canvas", "Extra inputs"),
    ],
)  # fmt: skip
def test_a_bad_studio_config_is_rejected_naming_the_field(
    studio: dict[str, Any], field: str, message: str
) -> None:
    config = mlops_config()
    config["stages"]["dev"]["account"] = "111111111111"
    config["stages"]["dev"]["studio"] = studio
    with pytest.raises(ConfigError) as error:
        parse_config(config, project_root=ROOT)
    (problem,) = [p for p in error.value.problems if p.startswith(f"stages.dev.{field}")]
    assert message in problem


def test_the_construct_composes_in_a_bare_stack() -> None:
    """StudioDomain takes CDK types only; grant_sign_in lets one person open their own
    profile, nothing else."""
    import aws_cdk as cdk
    from aws_cdk import assertions
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

    from constructs.studio_domain import StudioDomain

    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(account="111111111111",
                                                              region="eu-west-1"))  # fmt: skip
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0, subnet_configuration=[
        ec2.SubnetConfiguration(name="Apps", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    ])  # fmt: skip
    domain = StudioDomain(
        stack, "Studio", domain_name="bare", vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        security_group=ec2.SecurityGroup(stack, "Apps", vpc=vpc),
        encryption_key=kms.Key(stack, "Key"), artifacts_bucket=s3.Bucket(stack, "Artifacts"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )  # fmt: skip
    domain.add_user_profile("ana")
    person = iam.User(stack, "Ana")
    domain.grant_sign_in(person, "ana")
    template = assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::SageMaker::UserProfile", 1)
    template.has_resource_properties("AWS::IAM::Policy", {
        "Users": [{"Ref": assertions.Match.string_like_regexp("^Ana")}],
        "PolicyDocument": {"Statement": [{
            "Action": "sagemaker:CreatePresignedDomainUrl", "Effect": "Allow",
            "Resource": {"Fn::Join": ["", assertions.Match.array_with([
                {"Fn::GetAtt": [assertions.Match.string_like_regexp("^Studio"), "DomainId"]},
                "/ana",
            ])]},
        }]},
    })  # fmt: skip

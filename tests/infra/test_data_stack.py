"""Security properties of the stateful DataStack, per stage, and pinned logical IDs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from cdk_helpers import ROOT, mlops_config

from mlops.pipeline_definition import registered_object_patterns

STAGES = ("dev", "staging", "prod")


def resources(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def data_buckets(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v
        for k, v in resources(template, "AWS::S3::Bucket").items()
        if not k.startswith("AccessLogs")
    }


@pytest.mark.parametrize("stage", STAGES)
def test_keys_rotate(templates: dict[str, Any], stage: str) -> None:
    keys = resources(templates[f"{stage}/Data"], "AWS::KMS::Key")
    assert keys, "the stage has a customer-managed key"
    for key in keys.values():
        assert key["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("stage", STAGES)
def test_data_buckets_use_the_customer_key(templates: dict[str, Any], stage: str) -> None:
    template = templates[f"{stage}/Data"]
    (key_id,) = resources(template, "AWS::KMS::Key")
    buckets = data_buckets(template)
    assert {k[: -len("BucketXXXXXXXX")] for k in buckets} == {
        "RawData",
        "Artifacts",
        "DataCapture",
        "FeatureStore",
    }
    for bucket in buckets.values():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
        }
        assert rule["BucketKeyEnabled"] is True
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": next(
                iter(
                    k for k in resources(template, "AWS::S3::Bucket") if k.startswith("AccessLogs")
                )
            )
        }


@pytest.mark.parametrize("stage", STAGES)
def test_every_bucket_blocks_public_access_and_is_versioned(
    templates: dict[str, Any], stage: str
) -> None:
    for bucket in resources(templates[f"{stage}/Data"], "AWS::S3::Bucket").values():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
        assert bucket["Properties"]["LifecycleConfiguration"]["Rules"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_bucket_denies_plain_http(templates: dict[str, Any], stage: str) -> None:
    template = templates[f"{stage}/Data"]
    policies = resources(template, "AWS::S3::BucketPolicy")
    covered = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                assert statement["Action"] == "s3:*"
                covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(resources(template, "AWS::S3::Bucket"))


def test_prod_retains_stateful_resources_and_is_protected(default_stages: dict[str, Any]) -> None:
    stack = default_stages["prod"].data
    assert stack.termination_protection is True
    template = Template.from_stack(stack).to_json()
    stateful = {"AWS::KMS::Key", "AWS::S3::Bucket", "AWS::SageMaker::ModelPackageGroup"}
    found = {k: v for k, v in template["Resources"].items() if v["Type"] in stateful}
    assert {v["Type"] for v in found.values()} == stateful
    for logical_id, resource in found.items():
        assert resource.get("DeletionPolicy") == "Retain", logical_id
        assert resource.get("UpdateReplacePolicy") == "Retain", logical_id
    # No bucket-emptying handler in a retained stage.
    assert not resources(template, "Custom::S3AutoDeleteObjects")


def test_dev_opts_into_destroy_with_buckets_emptied(templates: dict[str, Any]) -> None:
    template = templates["dev/Data"]
    for bucket in resources(template, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert len(resources(template, "Custom::S3AutoDeleteObjects")) == len(
        resources(template, "AWS::S3::Bucket")
    )  # one each


def test_one_model_package_group_per_model(templates: dict[str, Any]) -> None:
    models = [m["name"] for m in mlops_config()["models"]]
    for stage in STAGES:
        groups = resources(templates[f"{stage}/Data"], "AWS::SageMaker::ModelPackageGroup")
        names = sorted(g["Properties"]["ModelPackageGroupName"] for g in groups.values())
        assert names == sorted(f"{stage}-{m}" for m in models)
        for group in groups.values():
            assert "ModelPackageGroupPolicy" not in group["Properties"]


def test_reader_accounts_get_a_group_policy_and_artifact_read(synth: Any) -> None:
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    config["stages"]["dev"]["modelReaderAccounts"] = ["111122223333"]
    stages = synth(config)
    template = Template.from_stack(stages["dev"].data)
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {
            "ModelPackageGroupPolicy": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Action": Match.array_with(["sagemaker:CreateModel"]),
                                    "Principal": {"AWS": Match.any_value()},
                                }
                            )
                        ]
                    )
                }
            )
        },
    )
    text = str(template.to_json())
    assert "111122223333" in text
    # The reader can decrypt artifacts: the key policy names the account too.
    key = next(iter(resources(template.to_json(), "AWS::KMS::Key").values()))
    assert "111122223333" in str(key["Properties"]["KeyPolicy"])
    # ... and read what a registered version refers to: the patterns of the layout the
    # pipeline writes (tests/steps checks the registered URIs against them), no more.
    policies = resources(template.to_json(), "AWS::S3::BucketPolicy").values()
    granted = {
        resource["Fn::Join"][1][-1].lstrip("/")
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "111122223333" in json.dumps(statement.get("Principal"))
        for resource in statement["Resource"]
        if isinstance(resource, dict) and "Fn::Join" in resource
    }
    assert granted == set(registered_object_patterns())


# Logical IDs of stateful resources are a contract: changing one replaces the resource
# (a new, empty bucket; a new key that cannot decrypt old data). Update this list only
# with a migration plan.
PINNED_LOGICAL_IDS = {
    "AWS::KMS::Key": {"DataKey17AFBB84"},
    "AWS::S3::Bucket": {
        "AccessLogsBucketCD784A59",
        "RawDataBucket46CFA8FB",
        "ArtifactsBucket88671897",
        "DataCaptureBucketA9343715",
        "FeatureStoreBucketCD97C24C",
    },
    "AWS::SageMaker::ModelPackageGroup": {"BreastCancerModelPackageGroup832E55C2"},
    "AWS::SageMaker::FeatureGroup": {"BreastCancerFeaturesFeatureGroup4E271810"},
    "AWS::Athena::WorkGroup": {"OfflineStoreWorkgroup1F7999F6"},
}


@pytest.mark.parametrize("stage", STAGES)
def test_stateful_logical_ids_are_pinned(templates: dict[str, Any], stage: str) -> None:
    template = templates[f"{stage}/Data"]
    for type_name, expected in PINNED_LOGICAL_IDS.items():
        assert set(resources(template, type_name)) == expected, type_name


@pytest.mark.parametrize("stage", STAGES)
def test_job_instances_can_speak_encrypted_inter_container_traffic(
    templates: dict[str, Any], stage: str
) -> None:
    """Inter-container traffic encryption is on for every job: IPsec (IKE on UDP 500 and
    ESP, IP protocol 50) between the job's instances, besides TCP."""
    ingress = [
        r["Properties"]
        for r in templates[f"{stage}/Data"]["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    allowed = {(i["IpProtocol"], i.get("FromPort"), i.get("ToPort")) for i in ingress}
    assert {("tcp", 0, 65535), ("udp", 500, 500), ("50", None, None)} <= allowed


def test_the_feature_store_runtime_is_reached_by_ingestion_jobs_and_studio_only(
    templates: dict[str, Any],
) -> None:
    """Only the ingestion job's group and the Studio domain's reach the interface endpoint
    (HTTPS), and it takes only record calls on the stage's feature groups by this account."""
    template = templates["dev/Data"]
    (endpoint,) = [
        e["Properties"] for e in resources(template, "AWS::EC2::VPCEndpoint").values()
        if "featurestore-runtime" in json.dumps(e["Properties"]["ServiceName"])
    ]  # fmt: skip
    assert endpoint["PrivateDnsEnabled"] is True
    assert "sagemaker.featurestore-runtime" in json.dumps(endpoint["ServiceName"])
    (statement,) = endpoint["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) == {
        "sagemaker:PutRecord", "sagemaker:GetRecord", "sagemaker:BatchGetRecord",
        "sagemaker:DeleteRecord",
    }  # fmt: skip
    assert "feature-group/dev-breast-cancer-features" in json.dumps(statement["Resource"])
    groups = resources(template, "AWS::EC2::SecurityGroup")
    ingestion = next(k for k in groups if "IngestionSecurityGroup" in k)
    endpoint_group = next(k for k in groups if "FeatureStoreEndpointSecurityGroup" in k)
    ingress = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
               if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_group, "GroupId"]}]  # fmt: skip
    studio = next(k for k in groups if "NetworkStudioSecurityGroup" in k)
    assert sorted(
        (i["FromPort"], i["SourceSecurityGroupId"]["Fn::GetAtt"][0]) for i in ingress
    ) == [(443, ingestion), (443, studio)]
    egress = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupEgress").values()
              if r["Properties"]["GroupId"] == {"Fn::GetAtt": [ingestion, "GroupId"]}]  # fmt: skip
    assert sorted(e["FromPort"] for e in egress) == [443, 443]
    assert not any("CidrIp" in e for e in egress)
    assert {
        "DestinationPrefixListId" in e or "DestinationSecurityGroupId" in e for e in egress
    } == {True}


def stage_region(stage: str) -> str:
    return json.loads((ROOT / "cdk.json").read_text())["context"]["mlops"]["stages"][stage][
        "region"
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_jobs_send_https_to_s3s_prefix_list_and_nowhere_else(
    templates: dict[str, Any], stage: str
) -> None:
    """The job security group's only way out is HTTPS to the region's S3 prefix list (the
    gateway endpoint's route), looked up at deploy time; the rest stays within the group."""
    template = templates[f"{stage}/Data"]
    (group_id,) = [
        k for k, r in resources(template, "AWS::EC2::SecurityGroup").items()
        if "JobSecurityGroup" in k
    ]  # fmt: skip
    (group,) = [template["Resources"][group_id]["Properties"]]
    assert "SecurityGroupEgress" not in group  # no inline (0.0.0.0/0) rule
    egress = [
        r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]  # fmt: skip
    assert egress and not any("CidrIp" in e or "CidrIpv6" in e for e in egress)
    outside = [e for e in egress if "DestinationSecurityGroupId" not in e]
    (lookup_id,) = resources(template, "Custom::S3PrefixList")
    assert outside == [
        {
            "GroupId": {"Fn::GetAtt": [group_id, "GroupId"]},
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "DestinationPrefixListId": {"Fn::GetAtt": [lookup_id, "PrefixLists.0.PrefixListId"]},
            "Description": "HTTPS to S3 via the gateway endpoint",
        }
    ]  # fmt: skip
    lookup = template["Resources"][lookup_id]["Properties"]
    call = json.loads(lookup["Create"])
    assert (call["service"], call["action"]) == ("EC2", "describeManagedPrefixLists")
    assert call["parameters"]["Filters"] == [
        {"Name": "prefix-list-name", "Values": [f"com.amazonaws.{stage_region(stage)}.s3"]}
    ]


def test_a_stage_with_its_own_account_creates_the_job_log_groups_encrypted(synth: Any) -> None:
    config = mlops_config()
    config["defaultStages"] = ["prod"]
    config["stages"]["prod"]["account"] = "111122223333"
    template = Template.from_stack(synth(config)["prod"].data).to_json()
    groups = {
        r["Properties"]["LogGroupName"]: r
        for r in resources(template, "AWS::Logs::LogGroup").values()
        if r["Properties"].get("LogGroupName", "").startswith("/aws/sagemaker/")
    }
    assert set(groups) == {"/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs"}
    for group in groups.values():
        assert "KmsKeyId" in group["Properties"] and group["Properties"]["RetentionInDays"] == 365
        assert group["DeletionPolicy"] == "Retain"


def test_account_less_stages_leave_the_job_log_groups_alone(templates: dict[str, Any]) -> None:
    """They share the account of the credentials: none of them owns its job log groups."""
    for stage in STAGES:
        names = [
            r["Properties"].get("LogGroupName")
            for r in resources(templates[f"{stage}/Data"], "AWS::Logs::LogGroup").values()
        ]
        assert "/aws/sagemaker/TrainingJobs" not in names


def test_two_stages_cannot_both_own_one_accounts_job_log_groups() -> None:
    from mlops.config import ConfigError, parse_config

    config = mlops_config()
    for name in ("staging", "prod"):
        config["stages"][name]["account"] = "111122223333"
    with pytest.raises(ConfigError, match=r"stages\.prod\.jobLogGroups: stages staging and prod"):
        parse_config(config, project_root=ROOT)


def test_the_s3_endpoint_reaches_only_this_accounts_buckets(templates: dict[str, Any]) -> None:
    (endpoint,) = [
        e for e in resources(templates["dev/Data"], "AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
    ]  # fmt: skip
    statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
    assert {s["Sid"] for s in statements} == {"CdkAssets", "EcrImageLayers", "StageBuckets"}
    for statement in statements:
        if statement["Sid"] != "EcrImageLayers":
            assert "aws:PrincipalAccount" in statement["Condition"]["StringEquals"]

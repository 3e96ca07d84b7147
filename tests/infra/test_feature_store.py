"""Feature Store: feature groups from config and schema, the offline store, Athena, sharing."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_helpers import ROOT, mlops_config

from constructs.feature_group import FeatureGroup, OfflineStoreRole, OfflineStoreWorkgroup
from mlops.config import ConfigError, parse_config
from pipeline_steps.steplib import contract

STAGES = ("dev", "staging", "prod")


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("stage", STAGES)
def test_each_configured_group_is_a_feature_group_with_kms_on_both_stores_and_iceberg(
    templates: dict[str, Any], stage: str
) -> None:
    template = templates[f"{stage}/Data"]
    (group,) = _of_type(template, "AWS::SageMaker::FeatureGroup").values()
    props = group["Properties"]
    assert props["FeatureGroupName"] == f"{stage}-breast-cancer-features"
    key = {"Fn::GetAtt": ["DataKey17AFBB84", "Arn"]}
    assert props["OnlineStoreConfig"]["SecurityConfig"]["KmsKeyId"] == key
    offline = props["OfflineStoreConfig"]
    assert offline["S3StorageConfig"]["KmsKeyId"] == key and offline["TableFormat"] == "Iceberg"
    assert offline["DataCatalogConfig"]["TableName"] == f"{stage}_breast_cancer_features"
    assert props["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}
    retained = "Delete" if stage == "dev" else "Retain"
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == retained


def test_features_come_from_the_schema_never_typed_twice(templates: dict[str, Any]) -> None:
    (group,) = _of_type(templates["dev/Data"], "AWS::SageMaker::FeatureGroup").values()
    schema = contract.parse_schema(
        json.loads((ROOT / "data/schemas/breast-cancer.json").read_text())
    )
    definitions = {
        d["FeatureName"]: d["FeatureType"] for d in group["Properties"]["FeatureDefinitions"]
    }
    assert definitions == contract.feature_definitions(schema)
    assert definitions["diagnosis"] == "String" and definitions["mean_radius"] == "Fractional"
    assert group["Properties"]["RecordIdentifierFeatureName"] == schema.record_id_column
    assert group["Properties"]["EventTimeFeatureName"] == schema.event_time_column


def test_the_offline_store_role_writes_only_its_prefix_and_tables(
    templates: dict[str, Any],
) -> None:
    template = templates["dev/Data"]
    roles = {
        k: v
        for k, v in _of_type(template, "AWS::IAM::Role").items()
        if k.startswith("OfflineStoreRole")
    }
    (role,) = roles.values()
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "feature-group/*" in json.dumps(trust["Condition"]["ArnLike"])
    (policy,) = [
        p
        for k, p in _of_type(template, "AWS::IAM::Policy").items()
        if k.startswith("OfflineStoreRole")
    ]
    text = json.dumps(policy["Properties"]["PolicyDocument"])
    assert "/offline-store/*" in text and "sagemaker_featurestore/dev_*" in text
    assert '"s3:*"' not in text and '"glue:*"' not in text


def test_the_athena_workgroup_enforces_kms_encrypted_results(templates: dict[str, Any]) -> None:
    (workgroup,) = _of_type(templates["prod" + "/Data"], "AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert "athena-results" in json.dumps(results["OutputLocation"])
    assert workgroup["DeletionPolicy"] == "Retain"


def test_sharing_gives_read_only_access_and_discovery(synth: Any) -> None:
    config = mlops_config()
    config["defaultStages"] = ["dev"]
    config["featureGroups"][0]["shareWithAccounts"] = ["111122223333"]
    template = Template.from_stack(synth(config)["dev"].data).to_json()
    shares = {
        v["Properties"]["Name"]: v["Properties"]
        for v in _of_type(template, "AWS::RAM::ResourceShare").values()
    }
    (group_share,) = [s for n, s in shares.items() if n.endswith("-read-only")]
    assert group_share["Principals"] == ["111122223333"]
    assert group_share["PermissionArns"][0].endswith(
        "AWSRAMPermissionSageMakerFeatureGroupReadOnly"
    )
    (catalog,) = [s for n, s in shares.items() if n.endswith("feature-group-discovery")]
    assert "DefaultFeatureGroupCatalog" in json.dumps(catalog["ResourceArns"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (dict(onlineStore=False, offlineStore=False), "a feature group needs a store"),
        (dict(onlineStore=False, onlineTtlDays=7), "onlineTtlDays: got 7: a TTL applies"),
        (dict(throughputMode="Provisioned", onlineStorageType="InMemory",
              provisionedReadCapacityUnits=5, provisionedWriteCapacityUnits=5),
         "throughputMode: got 'Provisioned'"),
        (dict(throughputMode="Provisioned"), "provisionedWriteCapacityUnits: missing"),
        (dict(provisionedWriteCapacityUnits=5), "capacity units apply to throughputMode"),
        (dict(onlineStorageType="Fast"), "onlineStorageType"),
        (dict(onlineTtlDays=0), "onlineTtlDays"),
        (dict(shareWithAccounts=["12345"]), "are not AWS account IDs"),
        (dict(name="Bad_Name"), "is not a valid name"),
    ],
)  # fmt: skip
def test_settings_feature_store_would_refuse_are_config_errors(edit: dict, message: str) -> None:
    config = mlops_config()
    config["featureGroups"][0].update(edit)
    with pytest.raises(ConfigError) as caught:
        parse_config(config, project_root=ROOT)
    assert message in str(caught.value) and "featureGroups[0" in str(caught.value)


# --------------------------------------------------------------------------- the construct


@pytest.fixture(scope="module")
def bare() -> tuple[cdk.Stack, FeatureGroup, OfflineStoreWorkgroup]:
    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(region="eu-west-1"))
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Store", encryption_key=key)
    role = OfflineStoreRole(
        stack, "Offline", bucket=bucket, prefix="fs/", table_prefix="bare_"
    ).role
    group = FeatureGroup(
        stack, "Group", feature_group_name="bare-features", record_identifier="id",
        event_time_feature="t", features={"id": "String", "t": "String", "x": "Fractional"},
        encryption_key=key, ttl=cdk.Duration.days(30), offline_store_bucket=bucket,
        offline_store_prefix="fs/", offline_store_role=role,
    )  # fmt: skip
    workgroup = OfflineStoreWorkgroup(
        stack, "Athena", workgroup_name="bare", bucket=bucket, results_prefix="results/",
        encryption_key=key, removal_policy=cdk.RemovalPolicy.DESTROY,
    )  # fmt: skip
    return stack, group, workgroup


def _statements(stack: cdk.Stack, role: iam.Role) -> list[dict[str, Any]]:
    return stack.resolve(role.node.find_child("DefaultPolicy").document)["Statement"]


def test_the_construct_exposes_names_grants_and_metrics(bare: tuple) -> None:
    stack, group, workgroup = bare
    assert group.feature_group_name == "bare-features"
    assert group.offline_store_table == "bare_features"
    writer = iam.Role(stack, "Writer", assumed_by=iam.AccountRootPrincipal())
    group.grant_write_records(writer)
    text = json.dumps(_statements(stack, writer))
    assert "sagemaker:PutRecord" in text and "feature-group/bare-features" in text
    assert "kms:ViaService" in text and "sagemaker:GetRecord" not in text
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    group.grant_read_records(reader)
    assert "sagemaker:PutRecord" not in json.dumps(_statements(stack, reader))
    analyst = iam.Role(stack, "Analyst", assumed_by=iam.AccountRootPrincipal())
    group.grant_query_offline(analyst, workgroup)
    text = json.dumps(_statements(stack, analyst))
    assert (
        "athena:StartQueryExecution" in text
        and "table/sagemaker_featurestore/bare_features" in text
    )
    assert "fs/*" in text and "results/*" in text
    metric = stack.resolve(
        group.metric_throttled_requests().to_metric_config().metric_stat.dimensions
    )
    assert {"name": "FeatureGroupName", "value": "bare-features"} in metric
    ttl = Template.from_stack(stack).to_json()
    assert '"TtlDuration": {"Unit": "Days", "Value": 30}' in json.dumps(ttl)


def test_the_construct_refuses_what_feature_store_would() -> None:
    stack = cdk.Stack(cdk.App(), "Refused")
    key = kms.Key(stack, "Key")
    with pytest.raises(ValueError, match="'id' is not among the features"):
        FeatureGroup(stack, "A", feature_group_name="a", record_identifier="id",
                     event_time_feature="t", features={"t": "String"}, encryption_key=key)  # fmt: skip
    with pytest.raises(ValueError, match="feature types"):
        FeatureGroup(stack, "B", feature_group_name="b", record_identifier="id",
                     event_time_feature="t", features={"id": "Text", "t": "String"},
                     encryption_key=key)  # fmt: skip


# --------------------------------------------------------------------------- schema safety


@pytest.fixture
def locked_project(tmp_path: Any) -> Any:
    """A project whose dev and prod feature groups are locked as deployed."""
    import shutil

    from mlops import cli

    shutil.copy(ROOT / "cdk.json", tmp_path / "cdk.json")
    shutil.copytree(ROOT / "data" / "schemas", tmp_path / "data" / "schemas")
    assert cli.main(["--project-root", str(tmp_path), "lock-feature-groups",
                     "--stage", "dev", "--stage", "prod"]) == 0  # fmt: skip
    return tmp_path


def _edit_schema(project: Any, edit: Any) -> None:
    path = project / "data/schemas/breast-cancer.json"
    schema = json.loads(path.read_text())
    edit(schema)
    path.write_text(json.dumps(schema))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["features"].pop(0), "features removed or renamed: ['mean_radius']"),
        (lambda s: s["features"][0].update(name="radius_mean"), "removed or renamed: ['mean_radius']"),
        (lambda s: s["features"][1].update(type="categorical"),
         "features retyped: ['mean_texture Fractional -> String']"),
        (lambda s: s.update(recordIdColumn="id"), "record identifier 'record_id' -> 'id'"),
    ],
)  # fmt: skip
def test_a_change_that_would_replace_a_deployed_group_is_refused(
    locked_project: Any, edit: Any, message: str
) -> None:
    _edit_schema(locked_project, edit)
    raw = json.loads((locked_project / "cdk.json").read_text())["context"]["mlops"]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, project_root=locked_project)
    text = str(caught.value)
    assert message in text and "featureGroups[0:breast-cancer-features]: stage dev" in text
    assert "stage prod" in text and "stage staging" not in text  # staging is not locked
    assert "add features under new names" in text


def test_added_features_and_store_settings_that_update_in_place_pass(locked_project: Any) -> None:
    _edit_schema(
        locked_project, lambda s: s["features"].append({"name": "extra", "type": "numeric"})
    )
    raw = json.loads((locked_project / "cdk.json").read_text())["context"]["mlops"]
    raw["featureGroups"][0]["onlineTtlDays"] = 30  # TTL and throughput update in place
    parse_config(raw, project_root=locked_project)
    raw["featureGroups"][0]["onlineStore"] = False
    raw["featureGroups"][0].pop("onlineTtlDays")
    with pytest.raises(ConfigError, match="online store True -> False"):
        parse_config(raw, project_root=locked_project)


def test_the_lock_records_each_stage_and_no_lock_means_nothing_deployed(
    locked_project: Any,
) -> None:
    locked = json.loads((locked_project / "feature-groups.lock.json").read_text())
    assert sorted(locked) == ["dev", "prod"]
    entry = locked["dev"]["breast-cancer-features"]
    assert entry["recordIdentifier"] == "record_id" and entry["features"]["diagnosis"] == "String"
    (locked_project / "feature-groups.lock.json").unlink()
    _edit_schema(locked_project, lambda s: s["features"].pop(0))
    parse_config(json.loads((locked_project / "cdk.json").read_text())["context"]["mlops"],
                 project_root=locked_project)  # fmt: skip


@pytest.fixture(scope="module")
def offline_trained() -> dict[str, Any]:
    """The dev stage with breast-cancer training from its offline store."""
    from cdk_helpers import all_templates, make_app

    import app as platform_app

    config = mlops_config()
    config["defaultStages"] = ["dev"]
    config["models"][0]["trainingData"] = "offlineStore"
    app = make_app(config)
    stages = platform_app.build(app)
    app.synth()
    return all_templates(stages.values())


def _definition(template: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = _of_type(template, "AWS::SageMaker::Pipeline").values()
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return json.loads(body[0].replace("${!", "${"))


def test_a_model_trained_from_the_offline_store_builds_its_training_set_first(
    offline_trained: dict[str, Any],
) -> None:
    definition = _definition(offline_trained["dev/Training/BreastCancerTraining"])
    steps = {s["Name"]: s for s in definition["Steps"]}
    build = steps["BuildTrainingSet"]["Arguments"]
    arguments = build["AppSpecification"]["ContainerArguments"]
    assert arguments[1] == "build_training_set.py"
    assert arguments[arguments.index("--table") + 1] == "dev_breast_cancer_features"
    assert arguments[arguments.index("--workgroup") + 1] == "dev-feature-store"
    assert "Execution.StartDateTime" in json.dumps(arguments)
    assert "Parameters.TrainingCutoffTime" in json.dumps(arguments)
    assert build["RoleArn"] == "${TrainingSetRoleArn}"
    assert build["NetworkConfig"]["EnableNetworkIsolation"] is False
    # Preprocess reads the training set (written layout), not the raw prefix.
    preprocess = steps["Preprocess"]["Arguments"]
    (raw,) = [i for i in preprocess["ProcessingInputs"] if i["InputName"] == "raw"]
    assert "Steps.BuildTrainingSet" in json.dumps(raw["S3Input"]["S3Uri"])
    assert "--written-layout" in preprocess["AppSpecification"]["ContainerArguments"]
    # Ingestion still feeds the group from the raw files, without waiting.
    assert "DependsOn" not in steps["IngestFeatures"]
    assert {p["Name"] for p in definition["Parameters"]} >= {"TrainingCutoffTime"}


def test_only_the_training_set_role_may_query_the_offline_store(
    offline_trained: dict[str, Any],
) -> None:
    template = offline_trained["dev/Training/BreastCancerTraining"]
    policies = _of_type(template, "AWS::IAM::Policy")
    querying = [k for k, p in policies.items() if "athena:StartQueryExecution" in json.dumps(p)]
    assert len(querying) == 1 and "TrainingSetRole" in querying[0]
    text = json.dumps(policies[querying[0]])
    assert "workgroup/dev-feature-store" in text
    assert "dev_breast_cancer_features" in text  # the Glue table, not every table
    assert "PutRecord" not in text


def test_the_athena_endpoint_admits_only_the_feature_jobs_group(
    offline_trained: dict[str, Any],
) -> None:
    template = offline_trained["dev/Data"]
    endpoints = [
        e["Properties"]
        for e in _of_type(template, "AWS::EC2::VPCEndpoint").values()
        if "athena" in json.dumps(e["Properties"]["ServiceName"])
    ]
    (athena,) = endpoints
    statement = athena["PolicyDocument"]["Statement"][0]
    assert "workgroup/dev-feature-store" in json.dumps(statement["Resource"])
    assert statement["Condition"]["StringEquals"]["aws:PrincipalAccount"]


def test_an_athena_endpoint_exists_only_for_offline_training_or_studio(
    templates: dict[str, Any],
) -> None:
    """No default model trains from the offline store: only dev, whose Studio domain
    imports from it through Athena, has the endpoint."""
    for stage in STAGES:
        names = json.dumps(
            [e["Properties"]["ServiceName"] for e in _of_type(
                templates[f"{stage}/Data"], "AWS::EC2::VPCEndpoint").values()]
        )  # fmt: skip
        assert ("athena" in names) == (stage == "dev"), stage


def test_training_from_the_offline_store_needs_a_group_with_one() -> None:
    config = mlops_config()
    config["models"][0]["trainingData"] = "offlineStore"
    config["featureGroups"][0]["offlineStore"] = False
    with pytest.raises(ConfigError, match=r"trainingData: got 'offlineStore': no feature group"):
        parse_config(config, project_root=ROOT)
    config["models"][0]["trainingData"] = "offline"
    with pytest.raises(ConfigError, match="trainingData"):
        parse_config(config, project_root=ROOT)


def test_training_from_the_offline_store_is_cfn_lint_clean(
    offline_trained: dict[str, Any],
) -> None:
    from lint_helpers import lint_findings

    for name in ("dev/Data", "dev/Training/BreastCancerTraining"):
        assert lint_findings(offline_trained[name], "us-east-1") == [], name

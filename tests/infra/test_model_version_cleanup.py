"""Destroying a dev stage: its model versions are deleted before their groups.

The handler (handlers/model_package_cleanup) runs against a stubbed SageMaker client; the
template test checks it is wired in destroy stages only, deleted before the groups.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cdk_helpers import load_handler, resources_of

cleanup = load_handler("model_package_cleanup")

EVENT = {
    "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/dev-Data/x",
    "RequestId": "r-1",
    "LogicalResourceId": "ModelVersionCleanup",
    "PhysicalResourceId": "ModelVersionCleanup",
    "ResponseURL": "https://example.invalid/response",
    "ResourceProperties": {"ModelPackageGroupNames": ["dev-a", "dev-b"]},
}


def _arn(group: str, version: int) -> str:
    return f"arn:aws:sagemaker:us-east-1:111122223333:model-package/{group}/{version}"


def _summary(group: str, version: int) -> dict[str, Any]:
    import datetime

    return {
        "ModelPackageArn": _arn(group, version),
        "ModelPackageName": group,
        "CreationTime": datetime.datetime(2026, 1, 1),
        "ModelPackageStatus": "Completed",
    }


@pytest.fixture
def client() -> Any:
    sagemaker = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(sagemaker) as stub:
        sagemaker.stub = stub  # type: ignore[attr-defined]
        yield sagemaker
        stub.assert_no_pending_responses()


def test_delete_removes_every_version_of_every_group_page_by_page(client: Any) -> None:
    stub = client.stub
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary("dev-a", 1)],
                      "NextToken": "t"}, {"ModelPackageGroupName": "dev-a"})  # fmt: skip
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary("dev-a", 2)]},
                      {"ModelPackageGroupName": "dev-a", "NextToken": "t"})  # fmt: skip
    for version in (1, 2):
        stub.add_response("delete_model_package", {}, {"ModelPackageName": _arn("dev-a", version)})
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []},
                      {"ModelPackageGroupName": "dev-b"})  # fmt: skip
    response = cleanup.handle({**EVENT, "RequestType": "Delete"}, client)
    assert response["Status"] == "SUCCESS" and response["Data"] == {"Deleted": 2}


def test_a_group_or_version_already_gone_is_skipped(client: Any) -> None:
    stub = client.stub
    gone = "ModelPackageGroup dev-a does not exist."
    stub.add_client_error("list_model_packages", "ValidationException", gone)
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary("dev-b", 1)]})
    stub.add_client_error(
        "delete_model_package", "ValidationException", "Model package does not exist."
    )
    response = cleanup.handle({**EVENT, "RequestType": "Delete"}, client)
    assert response["Status"] == "SUCCESS" and response["Data"] == {"Deleted": 0}


def test_any_other_error_is_reported_as_failed_not_raised(client: Any) -> None:
    client.stub.add_client_error("list_model_packages", "AccessDeniedException", "no")
    response = cleanup.handle({**EVENT, "RequestType": "Delete"}, client)
    assert response["Status"] == "FAILED" and "AccessDenied" in response["Reason"]


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_do_nothing(client: Any, request_type: str) -> None:
    response = cleanup.handle({**EVENT, "RequestType": request_type}, client)
    assert response["Status"] == "SUCCESS" and response["Data"] == {}


def test_the_answer_is_put_to_the_response_url() -> None:
    sent = []

    class _Response:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *args: Any) -> None:
            return None

    def opener(request: Any, timeout: int) -> _Response:
        sent.append((request.get_method(), request.full_url, json.loads(request.data)))
        return _Response()

    cleanup.send(EVENT["ResponseURL"], {"Status": "SUCCESS"}, opener=opener)
    assert sent == [("PUT", EVENT["ResponseURL"], {"Status": "SUCCESS"})]


def test_only_destroy_stages_clean_up_and_before_their_groups(templates: dict[str, Any]) -> None:
    for stage, expected in (("dev", 1), ("staging", 0), ("prod", 0)):
        template = templates[f"{stage}/Data"]
        found = resources_of(template, "Custom::ModelVersionCleanup")
        assert len(found) == expected, stage
    (cleanup_resource,) = resources_of(
        templates["dev/Data"], "Custom::ModelVersionCleanup"
    ).values()
    groups = resources_of(templates["dev/Data"], "AWS::SageMaker::ModelPackageGroup")
    assert set(groups) <= set(cleanup_resource["DependsOn"])


def test_many_groups_share_one_delete_pattern() -> None:
    """A hundred groups must not outgrow the role's inline policy (the benchmark's
    100-model stage found CDK splitting it into an unacknowledged overflow policy)."""
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_logs as logs

    from constructs.model_registry import ModelPackageGroup, ModelVersionCleanup

    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(region="us-east-1"))
    groups = [
        ModelPackageGroup(stack, f"G{i}", model_package_group_name=f"dev-model-{i}",
                          description="d", removal_policy=cdk.RemovalPolicy.DESTROY)
        for i in range(100)
    ]  # fmt: skip
    ModelVersionCleanup(stack, "Cleanup", groups=groups, encryption_key=kms.Key(stack, "K"),
                        log_retention=logs.RetentionDays.ONE_WEEK)  # fmt: skip
    template = cdk.assertions.Template.from_stack(stack).to_json()
    statements = [
        s
        for p in resources_of(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "sagemaker:DeleteModelPackage"
    ]
    assert len(statements) == 1
    assert json.dumps(statements[0]["Resource"]).endswith(':model-package/dev-model-*/*"]]}')
    assert resources_of(template, "AWS::IAM::ManagedPolicy") == {}

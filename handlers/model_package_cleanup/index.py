"""CloudFormation custom resource: delete a model package group's versions before the group.

CloudFormation cannot delete a model package group that still holds versions, so deleting a
stage with ``removalPolicy: destroy`` would fail once a pipeline has registered a model. On
Delete this handler deletes every version of the groups named in its properties (they are
deleted with the stage anyway); Create and Update do nothing. It answers CloudFormation
itself (the pre-signed ``ResponseURL``), with no library beyond the runtime's boto3.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)


def versions(client: Any, group: str) -> Iterator[str]:
    """ARNs of every version of ``group`` (all approval states); none if it is gone."""
    paginator = client.get_paginator("list_model_packages")
    try:
        for page in paginator.paginate(ModelPackageGroupName=group):
            for summary in page["ModelPackageSummaryList"]:
                yield summary["ModelPackageArn"]
    except client.exceptions.ClientError as error:
        if _is_missing(error):
            return
        raise


def delete_versions(client: Any, groups: list[str]) -> int:
    """Deletes every version of ``groups``; returns how many. Idempotent: a version or a
    group already gone is skipped."""
    deleted = 0
    for group in groups:
        for arn in list(versions(client, group)):
            try:
                client.delete_model_package(ModelPackageName=arn)
                deleted += 1
            except client.exceptions.ClientError as error:
                if not _is_missing(error):
                    raise
    return deleted


def _is_missing(error: Any) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in ("ResourceNotFound", "ValidationException") and (
        "does not exist" in message or "not found" in message.lower()
    )


def handle(event: dict[str, Any], client: Any) -> dict[str, Any]:
    """The response body for one CloudFormation request (never raises)."""
    response = {
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
        "Status": "SUCCESS",
        "Data": {},
    }
    try:
        if event["RequestType"] == "Delete":
            groups = list(event["ResourceProperties"].get("ModelPackageGroupNames", []))
            response["Data"] = {"Deleted": delete_versions(client, groups)}
            LOG.info("deleted %s versions of %s", response["Data"]["Deleted"], groups)
    except Exception as error:  # reported to CloudFormation, which then rolls back
        LOG.exception("cleanup failed")
        response.update(Status="FAILED", Reason=f"{type(error).__name__}: {error}"[:1000])
    return response


def send(
    url: str, body: dict[str, Any], opener: Callable[..., Any] = urllib.request.urlopen
) -> None:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
    )
    with opener(request, timeout=30):
        pass


def handler(event: dict[str, Any], context: Any) -> None:  # pragma: no cover - Lambda entry
    import boto3

    send(event["ResponseURL"], handle(event, boto3.client("sagemaker")))

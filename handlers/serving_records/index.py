"""CloudFormation custom resource: the stage's version records exist.

A version record is the SSM parameter that says which model package version a stage
serves for a model (``none`` until one is approved). The serving stack reads it at every
deployment, so it must exist before that stack's first deployment, and CloudFormation must
never write it afterwards (a template value would reset what the approval tooling wrote).
So on Create and Update this handler creates each named parameter that is missing, with
``none``, and leaves existing ones as they are; on Delete it deletes them only when the
stage is destroyed with its resources (``DeleteOnRemoval``). Idempotent; the runtime's
boto3 only; it answers CloudFormation's pre-signed ``ResponseURL`` itself.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

#: What a record holds while no version is approved for its stage.
NO_VERSION = "none"
#: DeleteParameters takes at most this many names a call.
DELETE_BATCH = 10


def ensure(client: Any, names: Iterable[str], description: str) -> list[str]:
    """Creates each missing record with :data:`NO_VERSION`; returns the names created."""
    created = []
    for name in names:
        try:
            client.put_parameter(
                Name=name, Value=NO_VERSION, Type="String", Overwrite=False,
                Description=description,
            )  # fmt: skip
            created.append(name)
        except client.exceptions.ParameterAlreadyExists:
            LOG.info("%s exists: kept", name)
    return created


def remove(client: Any, names: list[str]) -> None:
    """Deletes the records (those already gone are skipped by the API)."""
    for start in range(0, len(names), DELETE_BATCH):
        client.delete_parameters(Names=names[start : start + DELETE_BATCH])


def handle(event: dict[str, Any], client: Any) -> dict[str, Any]:
    """The response body for one CloudFormation request (never raises)."""
    properties = event["ResourceProperties"]
    names = list(properties["Names"])
    status: dict[str, Any] = {"Status": "SUCCESS"}
    try:
        if event["RequestType"] in ("Create", "Update"):
            created = ensure(client, names, properties.get("Description", "Version record"))
            LOG.info("created %d of %d records", len(created), len(names))
        elif properties.get("DeleteOnRemoval") == "true":
            remove(client, names)
    except Exception as error:  # reported to CloudFormation, which then rolls back
        LOG.exception("version records failed")
        status = {"Status": "FAILED", "Reason": f"{type(error).__name__}: {error}"[:1000]}
    return {
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": properties["Namespace"],
        "Data": {},
        **status,
    }


def answer(
    url: str, body: dict[str, Any], opener: Callable[..., Any] = urllib.request.urlopen
) -> None:
    """PUTs the response to CloudFormation's pre-signed URL."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "", "Content-Length": str(len(data))}
    with opener(urllib.request.Request(url, data=data, method="PUT", headers=headers), timeout=30):
        pass


def handler(event: dict[str, Any], context: Any) -> None:  # pragma: no cover - Lambda entry
    import boto3

    answer(event["ResponseURL"], handle(event, boto3.client("ssm")))

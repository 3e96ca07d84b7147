"""The stage's version records exist before anything reads them, and CloudFormation never
writes them (see ``mlops/serving_record.py`` for what a record is)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.log_groups import custom_resource_handler

HANDLER = Path(__file__).resolve().parents[1] / "handlers" / "serving_records"


class VersionRecords(Construct):
    """Creates each missing record as ``none`` and keeps existing ones (a custom resource
    backed by ``handlers/serving_records``); with ``delete_on_removal``, deletes them with
    the stack.

    Attributes:
        names: the records' parameter names.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namespace: str,
        names: Sequence[str],
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
        delete_on_removal: bool,
    ) -> None:
        """
        Args:
            namespace: the records' common path (``/mlops/<stage>/serving``); the handler
                may write nothing else.
            names: full parameter names, each under ``namespace``.
            encryption_key: encrypts the handler's log group.
            log_retention: how long its logs are kept.
            delete_on_removal: delete the records when the stack deletes this resource.
        """
        super().__init__(scope, id)
        bad = [n for n in names if not n.startswith(namespace.rstrip("/") + "/")]
        if bad:
            raise ValueError(f"{self.node.path}: {bad} are not under {namespace}")
        self.names = list(names)
        stack = cdk.Stack.of(self)
        function = custom_resource_handler(
            self,
            handler_dir=HANDLER,
            description="Creates the stage's missing version records (never overwrites)",
            role_description="Creates the stage's missing version records",
            statements=[
                iam.PolicyStatement(
                    actions=["ssm:PutParameter", "ssm:DeleteParameters"],
                    resources=[
                        stack.format_arn(
                            service="ssm",
                            resource="parameter",
                            resource_name=f"{namespace.strip('/')}/*",
                        )
                    ],
                )
            ],
            encryption_key=encryption_key,
            retention=log_retention,
            invoked_when="when the stage's models change",
            controls=f"create or delete this stage's version records ({namespace}/*), never "
            "overwriting one (Overwrite=false)",
            timeout=cdk.Duration.minutes(2),
        )
        resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=function.function_arn,
            resource_type="Custom::VersionRecords",
            properties={
                "Namespace": namespace,
                "Names": self.names,
                "Description": "Model package version this stage serves (none: not yet)",
                "DeleteOnRemoval": "true" if delete_on_removal else "false",
            },
        )
        resource.node.add_dependency(function.role.node.find_child("DefaultPolicy"))  # type: ignore[union-attr]

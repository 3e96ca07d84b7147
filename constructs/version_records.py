"""The stage's version records exist before anything reads them, and CloudFormation never
writes them (see ``mlops/serving_record.py`` for what a record is)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.log_groups import handler_log_group
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)

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
        log_group = handler_log_group(
            self, "Logs", encryption_key=encryption_key, retention=log_retention
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Creates the stage's missing version records",
        )
        log_group.grant_write(role)
        role.add_to_principal_policy(
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
        )
        function = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER)),
            role=role,
            timeout=cdk.Duration.minutes(2),
            log_group=log_group,
            reserved_concurrent_executions=1,
            description="Creates the stage's missing version records (never overwrites)",
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
        resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
        policy = default_policy_resource(role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Compensating controls: PutParameter and DeleteParameters only under this "
            f"stage's version records ({namespace}/*), and the handler never overwrites one "
            "(Overwrite=false); logs only to the handler's own log group.",
        )
        handler_resource = function.node.default_child
        handler_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[union-attr]
        acknowledge(
            handler_resource,  # type: ignore[arg-type]
            [
                "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
                "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
            ],
            "A CloudFormation custom resource, invoked synchronously by CloudFormation only "
            "when the stage's models change. Compensating controls: it must reach the SSM API "
            "and CloudFormation's pre-signed response URL (no VPC); CloudFormation retries and "
            "reports a failure itself (no DLQ); reserved concurrency 1; its role can only "
            f"create or delete this stage's version records (stack {stack.stack_name}).",
        )

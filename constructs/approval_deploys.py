"""Model approval deploys: an approval (or rejection) in a stage's model package groups
updates the stage's version record and starts the release.

An EventBridge rule on SageMaker's "SageMaker Model Package State Change" events of the
named groups, to ``Approved`` or ``Rejected``, invokes ``handlers/model_approval`` (Powertools
for AWS Lambda, from its public layer). The handler writes the record of the version the
stage should serve and, only when that changed it, sends one event to the release account's
default event bus, whose rule starts the release pipeline (``stacks/release_stack.py``).
Invocations run one at a time (reserved concurrency 1); a failed one is retried, then kept in
a KMS-encrypted dead-letter queue.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.log_groups import (
    POWERTOOLS_LAYER,
    POWERTOOLS_RUNTIME,
    acknowledge_powertools_runtime,
    dead_letter_queue,
    handler_log_group,
)
from constructs.model_registry import grant_read_versions
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from mlops import serving_record

HANDLER_DIR = Path(__file__).resolve().parent.parent / "handlers" / "model_approval"
RUNTIME = POWERTOOLS_RUNTIME
STATE_CHANGE = "SageMaker Model Package State Change"
ACTED_ON = (serving_record.APPROVED, serving_record.REJECTED)


class ApprovalDeploys(Construct):
    """Approvals in ``records``' groups write the records and start the release.

    Args:
        group_prefix: the stage's model package groups are ``<group_prefix><model>``.
        record_name_template: the version record of a model (``{model}`` replaced).
        release_event_bus: the release account's default event bus.
        event_source, detail_type: what the handler sends there after a record changed.
        no_version: what a record holds while nothing is served.
        promoted_from_key: the metadata key of a promoted version.
        promoted_only: the stage serves only promoted versions (approvals of others do
            nothing; rejections still roll back).
        encryption_key: the log group's and dead-letter queue's key.

    Attributes:
        handler: the Lambda function; rule: the EventBridge rule; dead_letter_queue.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        group_prefix: str,
        record_name_template: str,
        release_event_bus: events.IEventBus,
        event_source: str,
        detail_type: str,
        no_version: str,
        promoted_from_key: str,
        promoted_only: bool,
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetters", encryption_key=encryption_key,
            of="the approval handler and its rule",
        )  # fmt: skip
        log_group = handler_log_group(
            self, "Logs", encryption_key=encryption_key, retention=log_retention
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{stage_name}: writes version records on model approvals",
        )
        log_group.grant_write(role)
        # Patterns, not one ARN per model: a role's inline policies hold 10,240 characters.
        records = stack.format_arn(
            service="ssm", resource="parameter",
            resource_name=record_name_template.format(model="*").lstrip("/"),
        )  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[records]
            )
        )
        grant_read_versions(role, self, group_prefix)
        release_event_bus.grant_put_events_to(role)
        self.dead_letter_queue.grant_send_messages(role)
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            POWERTOOLS_LAYER.format(partition=stack.partition, region=stack.region),
        )
        self.handler = lambda_.Function(
            self,
            "Handler",
            runtime=RUNTIME,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            layers=[layer],
            role=role,
            timeout=cdk.Duration.seconds(60),
            log_group=log_group,
            reserved_concurrent_executions=1,
            dead_letter_queue=self.dead_letter_queue,
            description=f"{stage_name}: an approved or rejected model version updates the "
            "version record and starts the release",
            environment={
                "STAGE": stage_name,
                "GROUP_PREFIX": group_prefix,
                "RECORD_NAME_TEMPLATE": record_name_template,
                "NO_VERSION": no_version,
                "RELEASE_EVENT_BUS_ARN": release_event_bus.event_bus_arn,
                "RELEASE_EVENT_SOURCE": event_source,
                "RELEASE_DETAIL_TYPE": detail_type,
                "PROMOTED_FROM_KEY": promoted_from_key,
                "PROMOTED_ONLY": "true" if promoted_only else "false",
                "POWERTOOLS_SERVICE_NAME": "model-approval",
            },
        )
        self.rule = events.Rule(
            self,
            "OnApproval",
            description=f"{stage_name}: a model version approved or rejected",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[STATE_CHANGE],
                detail={
                    # A prefix: a pattern holds at most 2,048 characters, not 100 group names.
                    "ModelPackageGroupName": [{"prefix": group_prefix}],
                    "ModelApprovalStatus": list(ACTED_ON),
                    # Not while a version is being created or deleted.
                    "ModelPackageStatus": ["Completed"],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.handler,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=4,
                    max_event_age=cdk.Duration.hours(6),
                )
            ],
        )
        self._acknowledge(role, stage_name)

    def _acknowledge(self, role: iam.Role, stage_name: str) -> None:
        policy = default_policy_resource(role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            f"Compensating controls: it writes only {stage_name}'s version records (the "
            f"pattern of their names); it describes only versions of {stage_name}'s groups, and "
            "lists with the group's name (ListModelPackages has no "
            "resource-level permissions); it sends events to the release bus only.",
        )
        function = self.handler.node.default_child
        function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[union-attr]
        acknowledge_powertools_runtime(function)  # type: ignore[arg-type]
        acknowledge(
            function,  # type: ignore[arg-type]
            "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
            "Invoked by EventBridge on model approvals only. Compensating controls: it calls "
            "SSM, SageMaker and EventBridge APIs in other accounts' and the stage's regions "
            "(no VPC route to a cross-account bus); its role can only read and write the "
            "stage's version records, describe its groups' versions and send to the release "
            "bus; reserved concurrency 1.",
        )

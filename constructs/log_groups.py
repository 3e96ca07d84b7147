"""The platform's own handlers (custom-resource Lambdas) and their log groups."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)

#: Powertools for AWS Lambda (Python) v3, the public layer published by AWS in every
#: commercial region (docs.powertools.aws.dev, "Lambda Layer"), and the runtime it is
#: built for; handlers that use it (its Logger) run on that runtime.
POWERTOOLS_LAYER = "arn:{partition}:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27"
POWERTOOLS_RUNTIME = lambda_.Runtime.PYTHON_3_13


def acknowledge_powertools_runtime(function: Construct) -> None:
    """Acknowledges AwsSolutions-L1 (not the latest runtime) on a Powertools handler's
    CfnFunction: its runtime is the layer's."""
    acknowledge(
        function,
        "AwsSolutions-L1",
        f"{POWERTOOLS_RUNTIME.name}, the newest runtime the pinned Powertools layer is "
        "published for. Compensating controls: a supported runtime; the handler uses the "
        "standard library, the runtime's boto3 and Powertools' Logger only.",
    )


def handler_log_group(
    scope: Construct, id: str, *, encryption_key: kms.IKey, retention: logs.RetentionDays
) -> logs.LogGroup:
    """A handler's log group: the stage's key, a retention, deleted with the handler (its
    logs say how a deploy or a teardown went; they are not data)."""
    return logs.LogGroup(
        scope,
        id,
        encryption_key=encryption_key,
        retention=retention,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def dead_letter_queue(scope: Construct, id: str, *, encryption_key: kms.IKey, of: str) -> sqs.Queue:
    """A dead-letter queue (``of`` says whose): the stage's key, SSL only, 14 days; its own
    cdk-nag "no dead-letter queue" finding acknowledged (it is one)."""
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=encryption_key,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(14),
    )
    acknowledge(
        queue.node.default_child,  # type: ignore[arg-type]
        "AwsSolutions::AwsSolutions-SQS3",
        f"This queue is itself the dead-letter queue of {of}. Compensating controls: KMS "
        "with the stage's key, SSL only, 14-day retention.",
    )
    return queue


def custom_resource_handler(
    scope: Construct,
    *,
    handler_dir: Path,
    description: str,
    role_description: str,
    statements: Sequence[iam.PolicyStatement],
    encryption_key: kms.IKey,
    retention: logs.RetentionDays,
    invoked_when: str,
    controls: str,
    timeout: cdk.Duration,
) -> lambda_.Function:
    """A custom resource's Lambda handler (``index.handler`` in ``handler_dir``, standard
    library and the runtime's boto3): its own encrypted log group, a role with only
    ``statements``, reserved concurrency 1, and its cdk-nag findings acknowledged on it.

    Args:
        invoked_when: when CloudFormation invokes it (for the acknowledgement).
        controls: what its role may do (the acknowledgements' compensating controls).
    """
    stack = cdk.Stack.of(scope)
    log_group = handler_log_group(scope, "Logs", encryption_key=encryption_key, retention=retention)
    # Lambda does not pass aws:SourceAccount/SourceArn when it assumes a role.
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    log_group.grant_write(role)
    for statement in statements:
        role.add_to_principal_policy(statement)
    function = lambda_.Function(
        scope,
        "Handler",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_asset(str(handler_dir)),
        role=role,
        timeout=timeout,
        log_group=log_group,
        reserved_concurrent_executions=1,
        description=description,
    )
    policy = default_policy_resource(role)
    acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
    acknowledge_wildcards(
        policy, f"Compensating controls: {controls}; logs only to the handler's own log group."
    )
    handler = function.node.default_child
    # CDK lists the role in DependsOn and references it with GetAtt (cfn-lint W3005).
    handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[union-attr]
    acknowledge(
        handler,  # type: ignore[arg-type]
        [
            "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
            "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        ],
        f"A CloudFormation custom resource, invoked synchronously by CloudFormation only "
        f"{invoked_when}. Compensating controls: it must reach the AWS API and "
        "CloudFormation's pre-signed response URL (no VPC); CloudFormation retries and "
        "reports a failure itself (no DLQ); reserved concurrency 1; its role can only "
        f"{controls} (stack {stack.stack_name}).",
    )
    return function


def powertools_function(
    scope: Construct,
    id: str,
    *,
    handler_dir: Path,
    role: iam.Role,
    encryption_key: kms.IKey,
    retention: logs.RetentionDays,
    timeout: cdk.Duration,
    description: str,
    environment: dict[str, str],
    reserved_concurrency: int,
    invoked_by: str,
    dead_letter_queue: sqs.IQueue | None = None,
) -> lambda_.Function:
    """A handler written with Powertools for AWS Lambda (``index.handler`` in
    ``handler_dir``, the pinned layer and its runtime) outside the VPC, with its own
    encrypted log group and its cdk-nag findings acknowledged on it.

    Args:
        invoked_by: who invokes it (the acknowledgements say it).
        dead_letter_queue: where failed asynchronous invocations go; without it, the
            caller must be synchronous (it retries and records the failure).
    """
    stack = cdk.Stack.of(scope)
    log_group = handler_log_group(
        scope, f"{id}Logs", encryption_key=encryption_key, retention=retention
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        id,
        runtime=POWERTOOLS_RUNTIME,
        handler="index.handler",
        # Without the bytecode a test run may leave, so the asset's hash is the source's.
        code=lambda_.Code.from_asset(
            str(handler_dir), exclude=["__pycache__", "**/__pycache__", "*.pyc"]
        ),
        layers=[
            lambda_.LayerVersion.from_layer_version_arn(
                scope,
                f"{id}Powertools",
                POWERTOOLS_LAYER.format(partition=stack.partition, region=stack.region),
            )
        ],
        role=role,
        timeout=timeout,
        memory_size=256,
        log_group=log_group,
        reserved_concurrent_executions=reserved_concurrency,
        environment={"POWERTOOLS_SERVICE_NAME": handler_dir.name, **environment},
        description=description,
        dead_letter_queue=dead_letter_queue,
    )
    handler = function.node.default_child
    # CDK lists the role in DependsOn and references it with GetAtt (cfn-lint W3005).
    handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[union-attr]
    acknowledge_powertools_runtime(handler)  # type: ignore[arg-type]
    acknowledge(
        handler,  # type: ignore[arg-type]
        "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
        f"Invoked by {invoked_by}. Compensating controls: it calls only AWS APIs, and the "
        "stage's VPC has no route out and no private resource it needs; reserved "
        f"concurrency {reserved_concurrency}; its role is scoped to its task (stack "
        f"{stack.stack_name}).",
    )
    if dead_letter_queue is None:
        acknowledge(
            handler,  # type: ignore[arg-type]
            "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
            f"Invoked synchronously by {invoked_by}. Compensating controls: the caller "
            "receives the error and records the failure; nothing is invoked asynchronously.",
        )
    return function

"""One AWS API call made by CloudFormation at deployment (aws-cdk-lib's AwsCustomResource),
with its handler's log group and cdk-nag acknowledgements scoped to it."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr

from constructs import Construct
from constructs.log_groups import handler_log_group
from constructs.nag import INLINE_POLICY, acknowledge, acknowledge_wildcards

#: The construct ID of aws-cdk-lib's singleton AwsCustomResource handler in a stack.
SINGLETON_HANDLER = "AWS679f53fac002430cb0da5b7982bd2287"


def deploy_time_call(
    scope: Construct,
    id: str,
    *,
    call: cr.AwsSdkCall,
    statements: Sequence[iam.PolicyStatement],
    encryption_key: kms.IKey,
    log_retention: logs.RetentionDays,
    purpose: str,
    policy_reason: str,
    log_scope: Construct | None = None,
    resource_type: str | None = None,
) -> cr.AwsCustomResource:
    """``call`` on Create and on every Update whose parameters changed.

    Args:
        purpose: what the call is for (the handler's acknowledgements say it).
        policy_reason: why the call's policy is as broad as it is (its compensating controls).
        log_scope: where the handler's log group lives (default ``scope``); outside a
            conditioned scope, since the stack's one handler refers to it.
    """
    stack = cdk.Stack.of(scope)
    log_group = handler_log_group(
        log_scope or scope, f"{id}Logs", encryption_key=encryption_key, retention=log_retention
    )
    resource = cr.AwsCustomResource(
        scope,
        id,
        resource_type=resource_type,
        on_update=call,
        policy=cr.AwsCustomResourcePolicy.from_statements(list(statements)),
        install_latest_aws_sdk=False,
        log_group=log_group,
        timeout=cdk.Duration.minutes(2),
    )
    policy = resource.node.find_child("CustomResourcePolicy").node.default_child
    acknowledge(policy, INLINE_POLICY, policy_reason)  # type: ignore[arg-type]
    acknowledge_wildcards(policy, policy_reason)  # type: ignore[arg-type]
    function = stack.node.find_child(SINGLETON_HANDLER)
    handler = function.node.default_child
    # aws-cdk-lib references the role with GetAtt and lists it in DependsOn (W3005).
    handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[union-attr]
    acknowledge(
        handler,  # type: ignore[arg-type]
        [
            "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
            "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
            "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
        ],
        "aws-cdk-lib's AwsCustomResource handler, invoked synchronously by CloudFormation "
        f"only when the stack is created or updated, to {purpose}. Compensating controls: it "
        "must reach the AWS API and CloudFormation's pre-signed response URL (no VPC, since "
        "the VPC has no route out); CloudFormation reports a failure itself (no DLQ); it "
        "runs a few times in a stack's life (no reserved concurrency); its role may only make "
        "that call and write its KMS-encrypted log group.",
    )
    acknowledge(
        function.node.find_child("ServiceRole").node.default_child,  # type: ignore[arg-type]
        [
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
        ],
        "The basic execution role aws-cdk-lib gives its AwsCustomResource handler (log "
        "writing only). Compensating controls: the handler logs to its own encrypted log "
        "group with a retention, and the role has no other permission than its calls'.",
    )
    return resource

"""Log groups of the platform's own handlers (custom-resource Lambdas)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct


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

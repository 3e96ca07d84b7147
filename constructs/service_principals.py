"""Service principals confined to this account: the confused-deputy guard of trust policies.

A role a service assumes trusts only calls made on behalf of this account's resources
(``aws:SourceAccount``) of the expected kind (``aws:SourceArn``), so another account
cannot have the service act as the role (IAM User Guide, "The confused deputy problem").
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs import Construct


def confined_service_principal(
    scope: Construct, service: str, *, arn_service: str, resource: str = "*"
) -> iam.ServicePrincipal:
    """``service`` (e.g. ``sagemaker.amazonaws.com``) acting for this account only.

    Args:
        scope: any construct of the stack the role is in (its account and region).
        service: the service principal.
        arn_service: the service part of the ARNs of the resources it acts for.
        resource: the resource part of those ARNs (default: any resource of that service
            in this account and region).
    """
    stack = cdk.Stack.of(scope)
    return iam.ServicePrincipal(
        service,
        conditions={
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": f"arn:{stack.partition}:{arn_service}:{stack.region}:"
                f"{stack.account}:{resource}"
            },
        },
    )

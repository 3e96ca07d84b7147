"""S3 grants narrower than ``IBucket.grant_read``: one prefix, or named objects.

``IBucket.grant_read(grantee, "prefix/*")`` limits object actions to the prefix but grants
``s3:List*`` on the whole bucket, and the bucket key's ``kms:Decrypt`` for any caller
path. These grant what SageMaker jobs need for one prefix: the object actions under it,
``s3:ListBucket`` with an ``s3:prefix`` condition, and the key's actions only through S3
(``kms:ViaService``).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
KEY_READ = ("kms:Decrypt",)
KEY_WRITE = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")


def grant_prefix(
    grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, *, write: bool = False
) -> None:
    """Read (and with ``write``, write and delete) objects under ``prefix``.

    Args:
        grantee: the principal.
        bucket: the bucket; its ``encryption_key``, if any, is granted through S3 only.
        prefix: a key prefix ending in ``/`` (``pipelines/breast-cancer/``).
        write: also put, delete and abort uploads.
    """
    actions = READ_ACTIONS + (WRITE_ACTIONS if write else ())
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    _list(grantee, bucket, [f"{prefix}*"])
    _key(grantee, bucket, KEY_WRITE if write else KEY_READ)


def grant_pattern_read(grantee: iam.IGrantable, bucket: s3.IBucket, pattern: str) -> None:
    """Read (get and list) the objects whose keys match ``pattern`` (``*`` any run of
    characters, ``/`` included), e.g. every registered baseline of a stage."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(READ_ACTIONS), resources=[bucket.arn_for_objects(pattern)])
    )
    _list(grantee, bucket, [pattern])
    _key(grantee, bucket, KEY_READ)


def grant_objects_read(grantee: iam.IGrantable, bucket: s3.IBucket, keys: Sequence[str]) -> None:
    """Read exactly the objects ``keys`` (e.g. a construct's CDK asset files)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(READ_ACTIONS), resources=[bucket.arn_for_objects(k) for k in keys]
        )
    )
    _list(grantee, bucket, list(keys))
    _key(grantee, bucket, KEY_READ)


def _list(grantee: iam.IGrantable, bucket: s3.IBucket, prefixes: list[str]) -> None:
    # SageMaker lists an S3Prefix input before downloading it.
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": prefixes}},
        )
    )


def _key(grantee: iam.IGrantable, bucket: s3.IBucket, actions: Sequence[str]) -> None:
    if bucket.encryption_key is None:
        return
    region = cdk.Stack.of(bucket).region
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[bucket.encryption_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        )
    )

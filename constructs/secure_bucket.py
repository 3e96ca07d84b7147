"""S3 buckets with the platform's security defaults."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.nag import S3_KMS_DEFAULT, S3_REPLICATION, acknowledge


class AccessLogsBucket(Construct):
    """The bucket that receives S3 server access logs from the platform's data buckets.

    S3 server access log delivery writes only to buckets encrypted with SSE-S3, so this
    bucket uses S3-managed keys; everything else matches :class:`SecureBucket`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: cdk.RemovalPolicy,
        expiration_days: int,
    ) -> None:
        """Creates the log bucket.

        Args:
            removal_policy: what CloudFormation does with the bucket when it leaves the stack.
                With DESTROY the bucket is emptied first, so the stack can be deleted.
            expiration_days: how long log objects are kept.
        """
        super().__init__(scope, id)
        destroy = removal_policy == cdk.RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireLogs",
                    expiration=cdk.Duration.days(expiration_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        resource = self.bucket.node.default_child
        assert isinstance(resource, Construct)
        acknowledge(
            resource,
            S3_KMS_DEFAULT,
            "S3 server access log delivery only writes to SSE-S3 buckets. Compensating "
            "controls: SSE-S3 encryption, all public access blocked, SSL-only bucket policy, "
            "bucket-owner-enforced ownership, versioning.",
        )
        acknowledge(
            resource,
            S3_REPLICATION,
            "Access logs are an audit copy, not a source of record. Compensating controls: "
            "versioning, RETAIN and stack termination protection in retained stages.",
        )


class SecureBucket(Construct):
    """A KMS-encrypted, versioned, SSL-only bucket with public access blocked and access logs.

    Expose ``bucket`` to callers; use its ``grant_*`` methods, which also grant use of the
    KMS key.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        encryption_key: kms.IKey,
        access_logs_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
        noncurrent_version_expiration_days: int,
        recovery: str,
        expiration_days: int | None = None,
    ) -> None:
        """Creates the bucket.

        Args:
            encryption_key: customer-managed key for SSE-KMS (with an S3 bucket key).
            access_logs_bucket: where server access logs go, under the prefix ``<id>/``.
            removal_policy: what CloudFormation does with the bucket when it leaves the stack.
                With DESTROY the bucket is emptied first, so the stack can be deleted.
            noncurrent_version_expiration_days: how long overwritten or deleted object
                versions are kept.
            recovery: how the bucket's content is recovered if it is lost; recorded in the
                acknowledgement of the (absent) cross-region replication finding.
            expiration_days: if given, current objects expire after this many days;
                if left out, current objects are kept until deleted.
        """
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=f"{id}/",
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == cdk.RemovalPolicy.DESTROY,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="TidyVersionsAndUploads",
                    noncurrent_version_expiration=cdk.Duration.days(
                        noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                    expiration=(
                        cdk.Duration.days(expiration_days) if expiration_days is not None else None
                    ),
                )
            ],
        )
        resource = self.bucket.node.default_child
        assert isinstance(resource, Construct)
        acknowledge(
            resource,
            S3_REPLICATION,
            "Cross-region replication is a per-organisation disaster-recovery choice. "
            "Compensating controls: versioning keeps overwritten and deleted objects for the "
            "stage's noncurrentVersionExpirationDays, RETAIN and stack termination protection "
            f"in retained stages. Recovery: {recovery}",
        )

"""The stage's SageMaker managed MLflow App: where pipelines track experiments.

An ``AWS::SageMaker::MlflowApp`` (serverless: no tracking-server size to pick or pay for
while idle) with its artifact store in the stage's artifacts bucket, under ``mlflow/``.
SageMaker itself logs to it (the pipeline's and the training job's ``MlflowConfig``), so
jobs keep network isolation.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.s3_grants import grant_prefix
from constructs.service_principals import confined_service_principal

ARTIFACT_PREFIX = "mlflow/"
#: What a principal needs to track runs in an MLflow App.
TRACKING_ACTIONS = (
    "sagemaker:CallMlflowAppApi",
    "sagemaker:DescribeMlflowApp",
    # The MLflow REST API itself (experiments, runs, metrics, parameters, tags), as AWS's
    # examples for managed MLflow grant it; bounded to this one App.
    "sagemaker-mlflow:*",
)


class MlflowAppBase(Construct):
    """What every MLflow App offers callers: its ARN and the tracking grant."""

    app_arn: str

    def grant_tracking(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` (e.g. a pipeline's execution role) track runs in the App."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(TRACKING_ACTIONS), resource_arns=[self.app_arn]
        )


class MlflowApp(MlflowAppBase):
    """A managed MLflow App and the role it reads and writes its artifact store with.

    Attributes:
        app_arn: the App's ARN (what ``MlflowConfig.MlflowResourceArn`` takes).
        resource: the ``CfnMlflowApp``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        app_name: str,
        artifacts_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        """
        Args:
            app_name: 1-256 letters, digits and hyphens, unique in the account and region
                (a retained App keeps its name: give a redeployed stack a new one).
            artifacts_bucket: holds the artifact store under ``mlflow/`` (its key too).
            removal_policy: RETAIN keeps the experiments when the stack goes.
        """
        super().__init__(scope, id)
        role = iam.Role(
            self,
            "ArtifactStoreRole",
            assumed_by=confined_service_principal(
                self, "sagemaker.amazonaws.com", arn_service="sagemaker", resource="mlflow-app/*"
            ),
            description=f"Lets the {app_name} MLflow App use its artifact store",
        )
        grant_prefix(role, artifacts_bucket, ARTIFACT_PREFIX, write=True)
        policy = default_policy_resource(role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Compensating controls: S3 object actions and listing are limited to the artifact "
            f"store prefix ({ARTIFACT_PREFIX}) of the stage's artifacts bucket, KMS actions to "
            "the bucket's key called through S3; only the SageMaker service can assume the role.",
        )
        self.resource = sagemaker.CfnMlflowApp(
            self,
            "Resource",
            name=app_name,
            artifact_store_uri=artifacts_bucket.s3_url_for_object(ARTIFACT_PREFIX),
            role_arn=role.role_arn,
            # Models are registered by the pipelines, after the quality gate.
            model_registration_mode="AutoModelRegistrationDisabled",
            weekly_maintenance_window_start="Sun:03:00",
        )
        self.resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
        # A retained App keeps working: its role and the role's policy are retained with it.
        self.resource.apply_removal_policy(removal_policy)
        role.apply_removal_policy(removal_policy)
        assert isinstance(policy, cdk.CfnResource)
        policy.apply_removal_policy(removal_policy)
        self.app_arn = self.resource.attr_arn

    @staticmethod
    def from_app_arn(scope: Construct, id: str, app_arn: str) -> MlflowAppBase:
        """An App defined elsewhere (another stack of the stage), by its ARN."""
        return _ImportedMlflowApp(scope, id, app_arn)


class _ImportedMlflowApp(MlflowAppBase):
    def __init__(self, scope: Construct, id: str, app_arn: str) -> None:
        super().__init__(scope, id)
        self.app_arn = app_arn

"""A SageMaker Model Registry model package group, with grants for the callers that use it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from constructs.log_groups import custom_resource_handler
from pipeline_steps.steplib.contract import REGISTERED_APPROVAL_STATUS

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
# What another account needs to find approved versions and deploy them there.
READER_GROUP_ACTIONS = ("sagemaker:DescribeModelPackageGroup",)
READER_PACKAGE_ACTIONS = (
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
    "sagemaker:CreateModel",
)


def grant_read_versions(grantee: iam.IGrantable, scope: Construct, group_prefix: str) -> None:
    """Lets ``grantee`` list and describe the versions of every group named
    ``<group_prefix>...`` (a stage's groups): a pattern, not one ARN per model, since a
    role's inline policies hold 10,240 characters."""
    stack = cdk.Stack.of(scope)
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["sagemaker:DescribeModelPackage"],
        resource_arns=[
            stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{group_prefix}*/*"
            )
        ],
    )
    # ListModelPackages has no resource-level permissions (Service Authorization Reference).
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["sagemaker:ListModelPackages"], resource_arns=["*"]
    )


def grant_register_versions(grantee: iam.IGrantable, scope: Construct, group_prefix: str) -> None:
    """Lets ``grantee`` add versions, pending approval only, to every group named
    ``<group_prefix>...`` (a stage's groups; one pattern, as :func:`grant_read_versions`)."""
    stack = cdk.Stack.of(scope)
    groups = stack.format_arn(
        service="sagemaker", resource="model-package-group", resource_name=f"{group_prefix}*"
    )
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["sagemaker:DescribeModelPackageGroup"], resource_arns=[groups]
    )
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["sagemaker:CreateModelPackage"],
        resource_arns=[
            groups,
            stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{group_prefix}*/*"
            ),
        ],
        conditions={"StringEquals": {"sagemaker:ModelApprovalStatus": REGISTERED_APPROVAL_STATUS}},
    )


class ModelPackageGroupBase(Construct):
    """What every model package group offers callers: its name, ARNs and grants."""

    model_package_group_name: str
    model_package_group_arn: str
    model_package_arn_pattern: str

    def _set_names(self, name: str) -> None:
        stack = cdk.Stack.of(self)
        self.model_package_group_name = name
        self.model_package_group_arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=name
        )
        self.model_package_arn_pattern = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{name}/*"
        )

    def grant_register(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` add versions to this group (what a training pipeline needs).

        Only as ``PendingManualApproval``: a version registered already approved would
        skip the approver (an IAM condition on ``sagemaker:ModelApprovalStatus``).
        """
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:DescribeModelPackageGroup"],
            resource_arns=[self.model_package_group_arn],
        )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:CreateModelPackage"],
            resource_arns=[self.model_package_group_arn, self.model_package_arn_pattern],
            conditions={
                "StringEquals": {"sagemaker:ModelApprovalStatus": REGISTERED_APPROVAL_STATUS}
            },
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` describe the group and list and describe its versions."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:DescribeModelPackage",
                "sagemaker:ListModelPackages",
            ],
            resource_arns=[self.model_package_group_arn, self.model_package_arn_pattern],
        )

    def grant_approve(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` change a version's approval status (the approval workflow)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:UpdateModelPackage"],
            resource_arns=[self.model_package_arn_pattern],
        )


class ModelPackageGroup(ModelPackageGroupBase):
    """One model's versions in the Model Registry.

    Attributes:
        model_package_group_name: the group's name (``<stage>-<model>``).
        model_package_group_arn: the group's ARN.
        model_package_arn_pattern: ARN pattern of the group's model versions.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        model_package_group_name: str,
        description: str,
        reader_account_ids: Sequence[str] = (),
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        """Creates the group.

        Args:
            model_package_group_name: 1-63 characters, letters, digits and hyphens.
            description: shown in the Model Registry.
            reader_account_ids: accounts allowed to describe, list and deploy the group's
                versions (for example the staging and prod accounts); if left out, no
                resource policy is attached and only this account can use the group.
            removal_policy: RETAIN keeps the group (and its versions) when it leaves the stack.
        """
        super().__init__(scope, id)
        self._set_names(model_package_group_name)
        policy = None
        if reader_account_ids:
            principals = [iam.AccountPrincipal(a) for a in reader_account_ids]
            policy = iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="ReadersDescribeGroup",
                        principals=principals,
                        actions=list(READER_GROUP_ACTIONS),
                        resources=[self.model_package_group_arn],
                    ),
                    iam.PolicyStatement(
                        sid="ReadersUseVersions",
                        principals=principals,
                        actions=list(READER_PACKAGE_ACTIONS),
                        resources=[self.model_package_arn_pattern],
                    ),
                ]
            ).to_json()
        self.resource = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=model_package_group_name,
            model_package_group_description=description,
            model_package_group_policy=policy,
        )
        # Raw Cfn resources do not get CDK's RETAIN default for stateful resources.
        self.resource.apply_removal_policy(removal_policy)

    @staticmethod
    def from_model_package_group_name(
        scope: Construct, id: str, model_package_group_name: str
    ) -> ModelPackageGroupBase:
        """A group defined elsewhere (another stack of the stage), by its name."""
        return _ImportedModelPackageGroup(scope, id, model_package_group_name)


class _ImportedModelPackageGroup(ModelPackageGroupBase):
    def __init__(self, scope: Construct, id: str, name: str) -> None:
        super().__init__(scope, id)
        self._set_names(name)


class ModelVersionCleanup(Construct):
    """Deletes the versions of model package groups just before CloudFormation deletes the
    groups (CloudFormation cannot delete a group that holds versions). For stages whose
    resources are destroyed with them; never add it where groups are retained.

    A custom resource backed by ``handlers/model_package_cleanup`` (standard library and
    the runtime's boto3 only); on Create and Update it does nothing.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        groups: Sequence[ModelPackageGroup],
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        """
        Args:
            groups: the groups whose versions go (deleted after the cleanup ran).
            encryption_key: encrypts the handler's log group.
            log_retention: how long its logs are kept.
        """
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        # One pattern for all groups (their names' common prefix, e.g. the stage's): one
        # resource per group would outgrow an inline policy at a hundred models.
        names = [g.model_package_group_name for g in groups]
        prefix = os.path.commonprefix(names)  # noqa: RUF071 (names, not paths)
        pattern = f"{prefix}/*" if len(names) == 1 else f"{prefix}*/*"
        function = custom_resource_handler(
            self,
            handler_dir=HANDLERS / "model_package_cleanup",
            description="Deletes a destroyed stage's model versions before their groups",
            role_description="Deletes model versions of a destroyed stage",
            statements=[
                iam.PolicyStatement(
                    actions=["sagemaker:ListModelPackages"],
                    resources=["*"],  # no resource type for this action
                ),
                iam.PolicyStatement(
                    actions=["sagemaker:DeleteModelPackage"],
                    resources=[
                        stack.format_arn(
                            service="sagemaker", resource="model-package", resource_name=pattern
                        )
                    ],
                ),
            ],
            encryption_key=encryption_key,
            retention=log_retention,
            invoked_when="when the stage is deleted",
            controls=f"delete versions of groups named like this stage's ({pattern}); "
            "ListModelPackages has no resource type",
            timeout=cdk.Duration.minutes(5),
        )
        resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=function.function_arn,
            resource_type="Custom::ModelVersionCleanup",
            properties={"ModelPackageGroupNames": names},
        )
        # Deleted before the groups (CloudFormation deletes dependents first), after the
        # function's permissions (which it needs while deleting).
        for group in groups:
            resource.node.add_dependency(group)
        resource.node.add_dependency(function.role.node.find_child("DefaultPolicy"))  # type: ignore[union-attr]

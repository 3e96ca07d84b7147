"""A private SageMaker Studio domain with Canvas (where Data Wrangler lives) for
browser-based data preparation.

The domain is ``VpcOnly``: its apps reach AWS only through the VPC's endpoints
(``constructs/network.py``, :data:`~constructs.network.STUDIO_ENDPOINTS`). Every volume is
encrypted with the stage's key. Users sign in through IAM
(``sagemaker:CreatePresignedDomainUrl`` on their own profile); each works in private spaces
only: the execution role may create, change and delete spaces and apps only where the
owner is the signed-in profile (SageMaker passes the profile name as the session's source
identity, ``ExecutionRoleIdentityConfig: USER_PROFILE_NAME``).

Nothing runs until a user opens an app. JupyterLab and Code Editor apps stop after the idle
time-out; Canvas is stopped by its user (or by deleting its app).

CloudFormation cannot set Canvas's settings (``AWS::SageMaker::Domain`` has no
``CanvasAppSettings``), so a deploy-time ``UpdateDomain`` call sets them: the workspace in
the artifacts bucket under ``canvas/`` with the key, model registration on, direct
deployment only where asked for (``canvas_direct_deploy``), and the features that need services the VPC does not
reach (Kendra, EMR Serverless, Amazon Forecast) off.

CloudFormation cannot delete a domain or a user profile that still has apps or spaces
either: ``Custom::StudioTeardown`` (``handlers/studio_teardown``, Powertools for AWS Lambda)
deletes them first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import custom_resources as cr

from constructs import Construct
from constructs.log_groups import (
    POWERTOOLS_LAYER,
    POWERTOOLS_RUNTIME,
    acknowledge_powertools_runtime,
    handler_log_group,
)
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.network import selected_subnet_ids
from constructs.s3_grants import grant_prefix
from constructs.sagemaker_grants import grant_sagemaker_basics, sagemaker_role
from constructs.sdk_call import deploy_time_call
from constructs.training_pipeline import ASSET_EXCLUDES
from mlops.names import pascal_case

HANDLER_DIR = Path(__file__).resolve().parent.parent / "handlers" / "studio_teardown"
#: SageMaker's log groups that Studio apps and the jobs Canvas starts write to.
STUDIO_LOG_GROUPS = (
    "studio",
    "ProcessingJobs",
    "TrainingJobs",
    "TransformJobs",
    "Endpoints/canvas*",
)
#: What Canvas names the SageMaker resources it creates (AutoML jobs, models, transform and
#: Data Wrangler processing jobs, endpoints): AWS's Canvas policies scope to these.
CANVAS_NAMES = ("canvas*", "Canvas*")
#: What Canvas creates that runs in a network of its own (``sagemaker:VpcSubnets``).
CANVAS_CREATES_IN_VPC = (
    "sagemaker:CreateAutoMLJob",
    "sagemaker:CreateAutoMLJobV2",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateModel",
)
#: The kinds of resource Canvas creates (its AutoML, Data Wrangler and batch jobs, models).
CANVAS_RESOURCE_KINDS = ("automl-job", "processing-job", "training-job", "transform-job", "model")
#: How long CloudFormation waits for a teardown (the handler's own budget is shorter, so
#: CloudFormation hears FAILED first), and one invocation's time-out (the handler hands
#: over to the next invocation before it).
TEARDOWN_SERVICE_TIMEOUT = cdk.Duration.minutes(60)
TEARDOWN_FUNCTION_TIMEOUT = cdk.Duration.minutes(15)


def idle_shutdown(idle_timeout_minutes: int) -> dict[str, Any]:
    """``AppLifecycleManagement``: an app stops after ``idle_timeout_minutes`` idle, and a
    user may not raise that."""
    return {
        "IdleSettings": {
            "LifecycleManagement": "ENABLED",
            "IdleTimeoutInMinutes": idle_timeout_minutes,
            "MinIdleTimeoutInMinutes": 60,
            "MaxIdleTimeoutInMinutes": idle_timeout_minutes,
        }
    }


def canvas_app_settings(*, artifacts_uri: str, key_arn: str, direct_deploy: bool) -> dict[str, Any]:
    """The domain's ``DefaultUserSettings.CanvasAppSettings`` (the UpdateDomain shape)."""
    return {
        "WorkspaceSettings": {"S3ArtifactPath": artifacts_uri, "S3KmsKeyId": key_arn},
        "ModelRegisterSettings": {"Status": "ENABLED"},
        "DirectDeploySettings": {"Status": "ENABLED" if direct_deploy else "DISABLED"},
        # These need Amazon Forecast, Kendra or EMR Serverless: not reachable from the VPC.
        "TimeSeriesForecastingSettings": {"Status": "DISABLED"},
        "KendraSettings": {"Status": "DISABLED"},
        "EmrServerlessSettings": {"Status": "DISABLED"},
    }


class StudioDomain(Construct):
    """A ``VpcOnly`` Studio domain with IAM sign-in, Canvas and a least-privilege
    execution role.

    Attributes:
        domain_id, domain_arn, domain_url: the domain's.
        execution_role: the role apps and the jobs they start run as (grant it what users
            should reach: raw data, feature groups, model package groups, MLflow).
        security_group: the apps' security group.
        canvas_artifacts_uri: where Canvas keeps its workspace.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        domain_name: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        encryption_key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        canvas_prefix: str = "canvas/",
        canvas_direct_deploy: bool = False,
        idle_timeout_minutes: int = 60,
        home_file_system: bool = True,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        """
        Args:
            domain_name: unique in the account and region.
            vpc, subnets: where the apps' network interfaces go (isolated subnets).
            security_group: the apps' group (HTTPS to the VPC endpoints).
            encryption_key: encrypts the home file system, the spaces' volumes and Canvas's
                workspace.
            artifacts_bucket: holds Canvas's workspace under ``canvas_prefix``.
            canvas_direct_deploy: Canvas may deploy models to endpoints itself (off: models
                reach endpoints through the registry's approval).
            idle_timeout_minutes: JupyterLab and Code Editor apps stop after this long idle.
            home_file_system: create the domain's EFS home volume. CloudFormation keeps it
                when it deletes the domain (the domain's API default), and its mount
                targets then block the VPC's deletion: leave it out where the domain is
                destroyed with its stage. Spaces keep their own EBS volumes either way.
            removal_policy: of the domain (RETAIN keeps it, its spaces and its volume).
            log_retention: of the teardown handler's logs.
        """
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.security_group = security_group
        self._removal_policy = removal_policy
        self.canvas_artifacts_uri = artifacts_bucket.s3_url_for_object(canvas_prefix)
        self.execution_role = sagemaker_role(
            self, "ExecutionRole", description=f"Studio and Canvas apps of domain {domain_name}"
        )
        # SageMaker passes the user profile's name as the session's source identity.
        self.execution_role.assume_role_policy.add_statements(  # type: ignore[union-attr]
            iam.PolicyStatement(
                actions=["sts:SetSourceIdentity"],
                principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:sagemaker:{stack.region}:"
                        f"{stack.account}:*"
                    },
                },
            )
        )
        D = sagemaker.CfnDomain
        subnet_ids = selected_subnet_ids(vpc, subnets)
        lifecycle = idle_shutdown(idle_timeout_minutes)["IdleSettings"]
        app_lifecycle = D.AppLifecycleManagementProperty(
            idle_settings=D.IdleSettingsProperty(
                lifecycle_management=lifecycle["LifecycleManagement"],
                idle_timeout_in_minutes=lifecycle["IdleTimeoutInMinutes"],
                min_idle_timeout_in_minutes=lifecycle["MinIdleTimeoutInMinutes"],
                max_idle_timeout_in_minutes=lifecycle["MaxIdleTimeoutInMinutes"],
            )
        )
        jupyter_lab = D.JupyterLabAppSettingsProperty(app_lifecycle_management=app_lifecycle)
        code_editor = D.CodeEditorAppSettingsProperty(app_lifecycle_management=app_lifecycle)
        role_arn = self.execution_role.role_arn
        group_ids = [security_group.security_group_id]
        self.domain = sagemaker.CfnDomain(
            self,
            "Resource",
            domain_name=domain_name,
            auth_mode="IAM",
            app_network_access_type="VpcOnly",
            vpc_id=vpc.vpc_id,
            subnet_ids=subnet_ids,
            kms_key_id=encryption_key.key_arn,
            home_efs_file_system_creation="Enabled" if home_file_system else "Disabled",
            domain_settings=D.DomainSettingsProperty(
                security_group_ids=group_ids,
                execution_role_identity_config="USER_PROFILE_NAME",
                docker_settings=D.DockerSettingsProperty(enable_docker_access="DISABLED"),
            ),
            default_user_settings=D.UserSettingsProperty(
                execution_role=role_arn,
                security_groups=group_ids,
                auto_mount_home_efs="Enabled" if home_file_system else "Disabled",
                sharing_settings=D.SharingSettingsProperty(notebook_output_option="Disabled"),
                studio_web_portal="ENABLED",
                default_landing_uri="studio::",
                jupyter_lab_app_settings=jupyter_lab,
                code_editor_app_settings=code_editor,
            ),
            default_space_settings=D.DefaultSpaceSettingsProperty(
                execution_role=role_arn,
                security_groups=group_ids,
                jupyter_lab_app_settings=jupyter_lab,
            ),
            tag_propagation="ENABLED",
        )
        self.domain.apply_removal_policy(removal_policy)
        self.domain_id = self.domain.attr_domain_id
        self.domain_arn = self.domain.attr_domain_arn
        self.domain_url = self.domain.attr_url
        self._managed_profiles: list[str] = []

        self._grant_apps(stack, encryption_key, vpc, subnet_ids, canvas_direct_deploy)
        grant_prefix(self.execution_role, artifacts_bucket, canvas_prefix, write=True)
        self._canvas_settings(encryption_key, canvas_direct_deploy, log_retention)
        # Only where the domain is destroyed: a retained one keeps its profiles and spaces.
        self._domain_teardown: cdk.CustomResource | None = None
        if removal_policy == cdk.RemovalPolicy.DESTROY:
            self._teardown_function = self._teardown_handler(encryption_key, log_retention)
            self._domain_teardown = self._teardown("Teardown", None)

    # ------------------------------------------------------------------ user profiles

    def add_user_profile(
        self, name: str, *, execution_role: iam.IRole | None = None
    ) -> sagemaker.CfnUserProfile:
        """A user profile (``name``), working in private spaces only. It follows the
        domain's removal policy: where the domain is destroyed, its apps and spaces are
        deleted before the profile is (removing it from config deletes its spaces); where
        the domain is retained, the profile and its spaces are retained too.

        Args:
            execution_role: runs this user's apps and jobs (default: the domain's role).
        """
        role = execution_role or self.execution_role
        profile = sagemaker.CfnUserProfile(
            self,
            f"UserProfile{pascal_case(name)}",
            domain_id=self.domain_id,
            user_profile_name=name,
            user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                execution_role=role.role_arn,
                security_groups=[self.security_group.security_group_id],
            ),
        )
        # Its private spaces (and their volumes) are users' work: kept with a kept domain.
        profile.apply_removal_policy(self._removal_policy)
        # Canvas's settings are in place before anyone's profile exists.
        profile.node.add_dependency(self._canvas_call)
        if self._domain_teardown is not None:
            teardown = self._teardown(f"UserProfile{pascal_case(name)}Teardown", name)
            teardown.node.add_dependency(profile)
            # The domain's teardown runs first: it deletes every app and space at once.
            self._domain_teardown.node.add_dependency(profile)
            self._domain_teardown.node.add_dependency(teardown)
            self._managed_profiles.append(name)
            resource = self._domain_teardown.node.default_child
            assert isinstance(resource, cdk.CfnResource)
            resource.add_property_override("ManagedUserProfiles", list(self._managed_profiles))
        return profile

    def grant_sign_in(self, grantee: iam.IGrantable, user_profile_name: str) -> iam.Grant:
        """Lets ``grantee`` (a person's IAM principal) open Studio as ``user_profile_name``."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:CreatePresignedDomainUrl"],
            resource_arns=[self._arn("user-profile", user_profile_name)],
        )

    # ------------------------------------------------------------------ internals

    def _arn(self, resource: str, name: str) -> str:
        return cdk.Stack.of(self).format_arn(
            service="sagemaker", resource=resource, resource_name=f"{self.domain_id}/{name}"
        )

    def _grant_apps(
        self,
        stack: cdk.Stack,
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnet_ids: list[str],
        direct_deploy: bool,
    ) -> None:
        """What apps do as the execution role: their own spaces and apps, Canvas's jobs
        and models, logs, metrics, images, the key, and passing the role to those jobs."""
        role = self.execution_role
        grant_sagemaker_basics(role, stack, key, vpc=vpc, log_groups=STUDIO_LOG_GROUPS)
        # The key through S3 (workspace, data) and SageMaker (jobs' volumes) only.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DataKeyThroughS3AndSageMaker",
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": [
                            f"s3.{stack.region}.amazonaws.com",
                            f"sagemaker.{stack.region}.amazonaws.com",
                        ]
                    }
                },
            )
        )
        own_profile = stack.format_arn(
            service="sagemaker",
            resource="user-profile",
            resource_name="${sagemaker:DomainId}/${sagemaker:UserProfileName}",
        )
        domain_scoped = "${sagemaker:DomainId}/*"
        canvas_resources = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=name)
            for kind in CANVAS_RESOURCE_KINDS
            for name in CANVAS_NAMES
        ]
        # The signed-in profile's own private spaces, and nothing shared.
        own_private = {
            "ArnLike": {"sagemaker:OwnerUserProfileArn": own_profile},
            "StringEquals": {"sagemaker:SpaceSharingType": "Private"},
        }
        statements = [
            iam.PolicyStatement(
                sid="DescribeTheDomain",
                actions=[
                    "sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile",
                    "sagemaker:DescribeSpace", "sagemaker:DescribeApp", "sagemaker:ListTags",
                ],
                resources=[
                    stack.format_arn(service="sagemaker", resource="domain",
                                     resource_name="${sagemaker:DomainId}"),
                    *(stack.format_arn(service="sagemaker", resource=kind,
                                       resource_name=domain_scoped)
                      for kind in ("user-profile", "space", "app")),
                ],
            ),
            iam.PolicyStatement(
                sid="ListTheDomain",
                actions=["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles"],
                resources=["*"],  # List* have no resource type
            ),
            # Private spaces of the signed-in profile only (no shared spaces).
            iam.PolicyStatement(
                sid="OwnPrivateSpaces",
                actions=["sagemaker:CreateSpace", "sagemaker:UpdateSpace", "sagemaker:DeleteSpace"],
                resources=[stack.format_arn(service="sagemaker", resource="space",
                                            resource_name=domain_scoped)],
                conditions=own_private,
            ),
            iam.PolicyStatement(
                sid="AppsInOwnPrivateSpaces",
                actions=["sagemaker:CreateApp", "sagemaker:DeleteApp"],
                resources=[stack.format_arn(service="sagemaker", resource="app",
                                            resource_name=domain_scoped)],
                conditions=own_private,
            ),
            # Profile-level apps (Canvas): the signed-in profile's own.
            iam.PolicyStatement(
                sid="OwnProfileApps",
                actions=["sagemaker:CreateApp", "sagemaker:DeleteApp"],
                resources=[stack.format_arn(
                    service="sagemaker", resource="app",
                    resource_name="${sagemaker:DomainId}/${sagemaker:UserProfileName}/*",
                )],
                conditions={"Null": {"sagemaker:OwnerUserProfileArn": "true"}},
            ),
            iam.PolicyStatement(
                sid="TagOnCreate",
                actions=["sagemaker:AddTags"],
                resources=[stack.format_arn(service="sagemaker", resource="*",
                                            resource_name="*")],
                conditions={"Null": {"sagemaker:TaggingAction": "false"}},
            ),
            # Canvas builds models with AutoML and prepares data with Data Wrangler
            # processing jobs, all named canvas*/Canvas*. Created only in the domain's
            # subnets: a job outside them would have the internet the domain has not.
            iam.PolicyStatement(
                sid="CanvasJobsInTheDomainSubnets",
                actions=list(CANVAS_CREATES_IN_VPC),
                resources=canvas_resources,
                conditions={
                    "Null": {"sagemaker:VpcSubnets": "false"},
                    "ForAllValues:StringEquals": {"sagemaker:VpcSubnets": subnet_ids},
                },
            ),
            # Transform jobs run in their model's network (created above).
            iam.PolicyStatement(
                sid="CanvasJobsAndModels",
                actions=[
                    "sagemaker:DescribeAutoMLJob", "sagemaker:DescribeAutoMLJobV2",
                    "sagemaker:StopAutoMLJob", "sagemaker:ListCandidatesForAutoMLJob",
                    "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                    "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                    "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:DescribeModel", "sagemaker:DeleteModel",
                ],
                resources=canvas_resources,
            ),
            iam.PolicyStatement(
                sid="ListJobs",
                actions=[
                    "sagemaker:ListAutoMLJobs", "sagemaker:ListProcessingJobs",
                    "sagemaker:ListTrainingJobs", "sagemaker:ListTransformJobs",
                    "sagemaker:ListModels", "sagemaker:ListEndpoints",
                    "sagemaker:ListModelPackageGroups", "sagemaker:ListFeatureGroups",
                    "sagemaker:Search",
                ],
                resources=["*"],  # List* and Search have no resource type
            ),
            # Canvas's and Studio's jobs run as this role.
            iam.PolicyStatement(
                sid="PassThisRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="ReadMetrics",
                actions=["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"],
                resources=["*"],  # no resource type
            ),
            iam.PolicyStatement(
                sid="PullSageMakerImages",
                actions=[
                    "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages",
                ],
                resources=[f"arn:{stack.partition}:ecr:{stack.region}:*:repository/*"],
            ),
        ]  # fmt: skip
        if direct_deploy:
            statements.append(
                iam.PolicyStatement(
                    sid="CanvasDirectDeploy",
                    actions=[
                        "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
                        "sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint",
                        "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint",
                        "sagemaker:InvokeEndpoint",
                    ],
                    resources=[
                        stack.format_arn(service="sagemaker", resource=kind, resource_name=name)
                        for kind in ("endpoint", "endpoint-config")
                        for name in CANVAS_NAMES
                    ],
                )
            )  # fmt: skip
        # A managed policy of this role only, apart from the grants' default policy.
        self.apps_policy = iam.ManagedPolicy(
            self, "AppsPolicy", statements=statements, roles=[role],
            description="What Studio and Canvas apps do as the domain's execution role",
        )  # fmt: skip
        acknowledge_wildcards(
            self.apps_policy.node.default_child,  # type: ignore[arg-type]
            "Compensating controls: spaces and apps only of this domain and only where the "
            "owner is the signed-in profile (sagemaker:OwnerUserProfileArn) and private; "
            "Canvas's jobs and models only by Canvas's names (canvas*, Canvas*); tags only "
            "when creating; images only of this region's repositories; List*, Search and "
            "metric reads have no resource type. The policy is attached to this role only.",
        )

    def _canvas_settings(
        self, key: kms.IKey, direct_deploy: bool, log_retention: logs.RetentionDays
    ) -> None:
        """Canvas's settings, through UpdateDomain (CloudFormation has no property for them)."""
        stack = cdk.Stack.of(self)
        request = {
            "DomainId": self.domain_id,
            "DefaultUserSettings": {
                "CanvasAppSettings": canvas_app_settings(
                    artifacts_uri=self.canvas_artifacts_uri,
                    key_arn=key.key_arn,
                    direct_deploy=direct_deploy,
                )
            },
        }
        # After the domain, since the call names it.
        self._canvas_call = deploy_time_call(
            self,
            "CanvasSettings",
            resource_type="Custom::CanvasSettings",
            call=cr.AwsSdkCall(
                service="SageMaker",
                action="updateDomain",
                parameters=request,
                physical_resource_id=cr.PhysicalResourceId.of(f"{self.node.addr}-canvas"),
            ),
            statements=[
                # The request names no role: no iam:PassRole.
                iam.PolicyStatement(
                    actions=["sagemaker:UpdateDomain"], resources=[self.domain_arn]
                ),
            ],
            encryption_key=key,
            log_retention=log_retention,
            purpose="set the Studio domain's Canvas settings",
            policy_reason="Compensating controls: UpdateDomain on this one domain only "
            f"(stack {stack.stack_name}).",
        )

    def _teardown_handler(
        self, key: kms.IKey, log_retention: logs.RetentionDays
    ) -> lambda_.Function:
        """The Lambda behind every ``Custom::StudioTeardown`` of this domain."""
        stack = cdk.Stack.of(self)
        log_group = handler_log_group(self, "TeardownLogs", encryption_key=key,
                                      retention=log_retention)  # fmt: skip
        role = iam.Role(
            self, "TeardownRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Deletes a Studio domain's apps and spaces before CloudFormation "
            "deletes the domain or a user profile",
        )  # fmt: skip
        log_group.grant_write(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListApps", "sagemaker:ListSpaces",
                         "sagemaker:ListUserProfiles"],
                resources=["*"],  # List* have no resource type
            )
        )  # fmt: skip
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteApp"],
                resources=[self._arn("app", "*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteSpace"],
                resources=[self._arn("space", "*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DeleteUserProfile"],
                resources=[self._arn("user-profile", "*")],
            )
        )
        function = lambda_.Function(
            self,
            "TeardownHandler",
            runtime=POWERTOOLS_RUNTIME,
            handler="index.handler",
            # Without bytecode a test run may leave: the asset's hash stays the source's.
            code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=ASSET_EXCLUDES),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools",
                    POWERTOOLS_LAYER.format(partition=stack.partition, region=stack.region),
                )
            ],
            role=role,
            timeout=TEARDOWN_FUNCTION_TIMEOUT,
            memory_size=256,
            log_group=log_group,
            reserved_concurrent_executions=2,
            description="Deletes a Studio domain's apps and spaces before their domain or profile",
        )  # fmt: skip
        # It continues a long teardown by invoking itself; a separate policy, since the
        # function depends on its role's default policy (a cycle otherwise).
        continue_policy = iam.Policy(
            self, "TeardownContinuePolicy", roles=[role],
            statements=[iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                            resources=[function.function_arn])],
        )  # fmt: skip
        self._teardown_dependencies: list[Construct] = [
            default_policy_resource(role),
            continue_policy,
        ]
        acknowledge(default_policy_resource(role), INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge(continue_policy.node.default_child, INLINE_POLICY, INLINE_POLICY_REASON)  # type: ignore[arg-type]
        acknowledge_wildcards(
            default_policy_resource(role),
            "Compensating controls: deletes only apps, spaces and profiles of this domain "
            "(ARNs under its domain ID); List* have no resource type; logs only to its own "
            "log group.",
        )
        handler = function.node.default_child
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[union-attr]
        acknowledge_powertools_runtime(handler)  # type: ignore[arg-type]
        acknowledge(
            handler,  # type: ignore[arg-type]
            ["NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
             "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ"],
            "A CloudFormation custom resource, invoked by CloudFormation only when the domain "
            "or a user profile is deleted (and by itself to continue a long teardown). "
            "Compensating controls: it must reach the SageMaker API and CloudFormation's "
            "pre-signed response URL (no VPC; the VPC has no route out); it answers "
            "CloudFormation itself, also on failure and on running out of time (no DLQ); "
            "reserved concurrency 2; its role may only delete this domain's apps, spaces and "
            f"profiles (stack {stack.stack_name}).",
        )  # fmt: skip
        return function

    def _teardown(self, id: str, user_profile_name: str | None) -> cdk.CustomResource:
        """A ``Custom::StudioTeardown`` of the domain (``user_profile_name`` None) or of one
        profile: on Delete, its apps and spaces go first."""
        properties: dict[str, Any] = {"DomainId": self.domain_id}
        if user_profile_name is None:
            properties["ManagedUserProfiles"] = []
        else:
            properties["UserProfileName"] = user_profile_name
        resource = cdk.CustomResource(
            self,
            id,
            service_token=self._teardown_function.function_arn,
            resource_type="Custom::StudioTeardown",
            properties=properties,
            service_timeout=TEARDOWN_SERVICE_TIMEOUT,
        )
        # After the domain (its properties name it) and the handler's permissions.
        resource.node.add_dependency(*self._teardown_dependencies)
        return resource

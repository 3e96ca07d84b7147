"""The training pipeline of one model: a SageMaker Pipeline DAG built offline at synth time.

Preprocess -> Train (built-in XGBoost) -> Evaluate -> CheckQuality -> RegisterModel, or
QualityFailed. The SageMaker Python SDK renders the definition with inert placeholders
(``mlops.pipeline_definition``); this construct maps them to CDK values with ``Fn::Sub``,
ships ``pipeline_steps/`` and the model's schema as CDK assets, and writes the execution
role's least-privilege policy. See docs/adr/0002-pipeline-definition-built-offline.md.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler

from constructs import Construct
from constructs.mlflow_app import grant_tracking
from constructs.model_registry import ModelPackageGroup
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from mlops.config import GATE_METRICS, ModelConfig, PipelineSettings
from mlops.definition_worker import build_definition_in_background
from mlops.pipeline_definition import BuiltDefinition, PipelineInputs, check_body_size

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STEPS_DIR = PROJECT_ROOT / "pipeline_steps"
RUNNER = STEPS_DIR / "run_step.sh"
# Files that are not step code: never shipped, never part of the asset hash.
ASSET_EXCLUDES = ["__pycache__", "**/__pycache__", "*.pyc", ".pytest_cache"]
#: A build takes well under a second once the SDK is imported; this only stops a hang.
BUILD_TIMEOUT_SECONDS = 300
IMAGE_PATTERN = re.compile(
    r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9._/-]+):"
)


class TrainingPipeline(Construct):
    """One model's SageMaker Pipeline, its execution role and, optionally, its schedule.

    Attributes:
        pipeline_name: the pipeline's name (``<stage>-<model>-training``).
        pipeline_arn: the pipeline's ARN.
        role: the execution role every step runs as.
        body: the definition body as embedded (with ``${...}`` Fn::Sub variables).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        model: ModelConfig,
        settings: PipelineSettings,
        raw_data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        model_package_group: ModelPackageGroup,
        vpc_subnets: list[ec2.ISubnet] | None = None,
        security_groups: list[ec2.ISecurityGroup] | None = None,
        enable_network_isolation: bool = True,
        mlflow_app_arn: str | None = None,
    ) -> None:
        """Builds the definition and the resources around it.

        Args:
            pipeline_name: 1-256 letters, digits and hyphens.
            model: what to train, how to judge it, which schema its data has.
            settings: the stage's instance types and counts, runtime, spot and schedule;
                with no ``schedule_expression`` the pipeline only runs when started.
            raw_data_bucket: where the model's raw data lies, under ``model.data_prefix``.
            artifacts_bucket: where every step writes, under ``pipelines/<model>/``.
            encryption_key: the key of both buckets; also encrypts job volumes and outputs.
            model_package_group: where passing models are registered.
            vpc_subnets: subnets for every job; if left out, jobs run outside a VPC.
            security_groups: with ``vpc_subnets``, the groups attached to every job.
            enable_network_isolation: jobs' containers get no network access at all
                (inputs and outputs are still moved by SageMaker). Turn off only for
                scripts that must call out.
            mlflow_app_arn: a managed MLflow App: SageMaker logs each execution and the
                training job (hyperparameters, metrics) to the experiment named after
                the pipeline. Without it, nothing is tracked.
        """
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        subnets = list(vpc_subnets or [])
        groups = list(security_groups or [])
        if bool(subnets) != bool(groups):
            raise ValueError(
                f"{self.node.path}: give both vpc_subnets and security_groups, or neither"
            )
        if cdk.Token.is_unresolved(stack.region):
            raise ValueError(
                f"{self.node.path}: the stack needs a concrete region (image URIs depend on it)"
            )

        inputs = PipelineInputs(
            model_name=model.name,
            problem_type=model.problem_type,
            region=stack.region,
            hyperparameters={k: str(v) for k, v in sorted(model.hyperparameters.items())},
            quality_metric=model.quality_gate.metric,
            quality_threshold=model.quality_gate.threshold,
            higher_is_better=GATE_METRICS[model.problem_type][model.quality_gate.metric],
            processing_instance_type=settings.processing_instance_type,
            processing_instance_count=settings.processing_instance_count,
            training_instance_type=settings.training_instance_type,
            training_instance_count=settings.training_instance_count,
            max_runtime_seconds=settings.max_runtime_seconds,
            use_spot_training=settings.use_spot_training,
            max_wait_seconds=settings.max_wait_seconds,
            enable_network_isolation=enable_network_isolation,
            subnet_count=len(subnets),
            security_group_count=len(groups),
            xgboost_version=model.algorithm.version,
            use_mlflow=mlflow_app_arn is not None,
            mlflow_experiment_name=pipeline_name,
        )
        # Rendered in a worker process while CDK builds and synthesizes the rest; the body
        # and the image policy are filled in lazily, when the template is resolved.
        self._definition = build_definition_in_background(inputs)

        source = s3_assets.Asset(self, "StepsSource", path=str(STEPS_DIR), exclude=ASSET_EXCLUDES)
        runner = s3_assets.Asset(self, "StepRunner", path=str(RUNNER))
        schema = s3_assets.Asset(self, "Schema", path=str(PROJECT_ROOT / model.schema_file))

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Runs the {model.name} training pipeline and its jobs",
        )
        model_prefix = f"pipelines/{model.name}/"
        values: dict[str, str] = {
            "ExecutionRoleArn": self.role.role_arn,
            "ArtifactsBucket": artifacts_bucket.bucket_name,
            "KmsKeyArn": encryption_key.key_arn,
            "ModelPackageGroupArn": model_package_group.model_package_group_arn,
            "CodeUri": runner.s3_object_url,
            "SourceUri": source.s3_object_url,
            "SchemaUri": schema.s3_object_url,
            "RawDataUri": raw_data_bucket.s3_url_for_object(model.data_prefix),
        }
        if mlflow_app_arn is not None:
            values["MlflowResourceArn"] = mlflow_app_arn
        values.update({f"SubnetId{i}": s.subnet_id for i, s in enumerate(subnets)})
        values.update({f"SecurityGroupId{i}": g.security_group_id for i, g in enumerate(groups)})
        self._values = values

        self.pipeline_name = pipeline_name
        self.pipeline_arn = stack.format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower()
        )
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_description=f"Train, evaluate and register {model.name}",
            role_arn=self.role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": cdk.Lazy.string(_ProduceString(self._embedded_body))
            },
        )

        # --- what the steps need, and nothing broader --------------------------------
        for asset in (source, runner, schema):
            asset.grant_read(self.role)
        raw_data_bucket.grant_read(self.role, f"{model.data_prefix}*")
        artifacts_bucket.grant_read_write(self.role, f"{model_prefix}*")
        model_package_group.grant_register(self.role)
        if mlflow_app_arn is not None:
            grant_tracking(self.role, mlflow_app_arn)
        self._grant_jobs(stack, encryption_key, vpc=bool(subnets))
        policy = default_policy_resource(self.role)
        # Jobs start as soon as an execution does: the policy must exist before the pipeline.
        self.resource.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Each wildcard is bounded. Compensating controls: S3 actions are limited to this "
            f"model's prefixes ({model.data_prefix}, {model_prefix}) and the CDK asset "
            "objects; KMS actions to the stage's data key; SageMaker jobs to names the "
            "pipeline service generates (pipelines-*); model packages to this model's group; "
            "logs to SageMaker's job log groups. Resource '*' only where the API has no "
            "resource type (ecr:GetAuthorizationToken, ec2 network-interface calls SageMaker "
            "makes for VPC jobs) or with a condition (cloudwatch:namespace /aws/sagemaker/*).",
        )

        # After the wildcard acknowledgements, which resolve the policy: resolving this
        # statement waits for the definition. Its resources have no wildcard.
        self._grant_image_pulls()

        if settings.schedule_expression:
            self._schedule(settings.schedule_expression)

    @property
    def definition(self) -> BuiltDefinition:
        """The rendered definition (waits for the background build)."""
        try:
            built = self._definition.result(timeout=BUILD_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError as error:
            raise TimeoutError(
                f"{self.node.path}: the pipeline definition was not built within "
                f"{BUILD_TIMEOUT_SECONDS} s (the definition worker is stuck or starved)"
            ) from error
        check_body_size(built.body)
        missing = sorted(set(built.substitutions) - set(self._values))
        if missing:
            raise ValueError(f"{self.node.path}: no value for definition variables {missing}")
        return built

    def definition_error(self) -> BaseException | None:
        """The error that stopped the definition's build, if it has failed."""
        if not self._definition.done():
            return None
        try:
            self.definition  # noqa: B018 (also runs the size and variable checks)
        except Exception as error:
            return error
        return None

    @property
    def body(self) -> str:
        """The definition body as embedded, with ``${...}`` Fn::Sub variables."""
        return self.definition.body

    def _embedded_body(self) -> str:
        built = self.definition
        return cdk.Fn.sub(built.body, {name: self._values[name] for name in built.substitutions})

    def _image_repositories(self) -> list[str]:
        partition = cdk.Stack.of(self).partition
        return sorted(
            {
                f"arn:{partition}:ecr:{region}:{account}:repository/{name}"
                for account, region, name in IMAGE_PATTERN.findall(self.body)
            }
        )

    def _grant_image_pulls(self) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullStepImages",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=cdk.Lazy.list(_ProduceList(self._image_repositories)),
            )
        )

    def _grant_jobs(self, stack: cdk.Stack, key: kms.IKey, *, vpc: bool) -> None:
        role = self.role
        job_arns = [
            stack.format_arn(
                service="sagemaker", resource=f"{kind}-job", resource_name="pipelines-*"
            )
            for kind in ("processing", "training")
        ]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunPipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=job_arns,
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassOwnRoleToJobs",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # Job volumes and outputs are encrypted with the data key; SageMaker creates grants.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptJobVolumes",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        key.grant(role, "kms:DescribeKey")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteJobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"/aws/sagemaker/{kind}:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for kind in ("ProcessingJobs", "TrainingJobs")
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        if vpc:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="JobNetworkInterfaces",
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:CreateNetworkInterfacePermission",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DeleteNetworkInterfacePermission",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeDhcpOptions",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeSecurityGroups",
                    ],
                    resources=["*"],
                )
            )

    def _schedule(self, expression: str) -> None:
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=f"Lets EventBridge Scheduler start {self.pipeline_name}",
        )
        self.grant_start_execution(role)
        policy = default_policy_resource(role)
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Compensating controls: the only wildcard is this pipeline's own executions "
            "(<pipeline-arn>/execution/*), whose IDs are not known in advance.",
        )
        scheduler.CfnSchedule(
            self,
            "Schedule",
            description=f"Starts {self.pipeline_name}",
            schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.pipeline_arn,
                role_arn=role.role_arn,
                sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[]
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                ),
            ),
        )

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` start, watch and stop executions of this pipeline."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:StartPipelineExecution",
                "sagemaker:DescribePipelineExecution",
                "sagemaker:ListPipelineExecutionSteps",
                "sagemaker:StopPipelineExecution",
            ],
            resource_arns=[self.pipeline_arn, f"{self.pipeline_arn}/execution/*"],
        )


class _Produce:
    """Calls ``function`` once, when CDK resolves the value (``cdk.Lazy`` producer)."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self._function = function

    def produce(self) -> Any:
        return self._function()


@jsii.implements(cdk.IStableStringProducer)
class _ProduceString(_Produce):
    pass


@jsii.implements(cdk.IStableListProducer)
class _ProduceList(_Produce):
    pass

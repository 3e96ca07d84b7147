"""The training pipeline of one model: a SageMaker Pipeline DAG built offline at synth time.

Preprocess -> Train (built-in XGBoost) -> Evaluate -> CheckQuality -> RegisterModel, or
QualityFailed. The SageMaker Python SDK renders the definition with inert placeholders
(``mlops.pipeline_definition``), on the second core (``mlops.definition_builds``); this
construct maps them to CDK values with ``Fn::Sub``, ships ``pipeline_steps/`` and the
model's schema as CDK assets, and writes the execution role's least-privilege policy. See
docs/adr/0002-pipeline-definition-built-offline.md.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
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

import constructs
from constructs import Construct
from constructs.feature_group import (
    OFFLINE_STORE_DATABASE,
    FeatureGroupBase,
    OfflineStoreWorkgroupBase,
)
from constructs.mlflow_app import MlflowAppBase
from constructs.model_registry import ModelPackageGroupBase
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    default_policy_resource,
)
from constructs.network import selected_subnet_ids
from constructs.pipeline_base import SageMakerPipeline
from constructs.s3_grants import grant_objects_read, grant_prefix
from constructs.sagemaker_grants import (
    IMAGE_PULL_ACTIONS,
    JOB_LOG_GROUPS,
    grant_sagemaker_basics,
    sagemaker_role,
)
from mlops import data_wrangler, definition_builds, pipeline_definition
from mlops.pipeline_definition import BuiltDefinition, PipelineInputs, check_body_size
from pipeline_steps.steplib import contract
from pipeline_steps.steplib.contract import DriftThresholds

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


class TrainingPipeline(SageMakerPipeline):
    """One model's SageMaker Pipeline, its execution role and, optionally, its schedule.

    Attributes:
        pipeline_name: the pipeline's name.
        pipeline_arn: the pipeline's ARN.
        role: the execution role every step runs as.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        model_name: str,
        problem_type: str,
        schema_file: str,
        hyperparameters: Mapping[str, str | int | float],
        quality_metric: str,
        quality_threshold: float,
        drift_psi_threshold: float = DriftThresholds.psi,
        raw_data_bucket: s3.IBucket,
        raw_data_prefix: str,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        model_package_group: ModelPackageGroupBase,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] = (),
        processing_instance_type: str = "ml.m5.xlarge",
        processing_instance_count: int = 1,
        training_instance_type: str = "ml.m5.xlarge",
        training_instance_count: int = 1,
        max_runtime: cdk.Duration | None = None,
        use_spot_training: bool = False,
        max_wait: cdk.Duration | None = None,
        xgboost_version: str = "3.0-5",
        mlflow_app: MlflowAppBase | None = None,
        schedule: scheduler.ScheduleExpression | None = None,
        enable_network_isolation: bool = True,
        feature_group: FeatureGroupBase | None = None,
        ingestion_security_groups: Sequence[ec2.ISecurityGroup] = (),
        offline_store_workgroup: OfflineStoreWorkgroupBase | None = None,
        data_wrangler_flow: data_wrangler.Flow | None = None,
    ) -> None:
        """Starts the definition's build and creates the resources around it.

        Args:
            pipeline_name: 1-256 letters, digits and hyphens; also the MLflow experiment.
            model_name: kebab-case; names the model's S3 prefix (``pipelines/<model>/``)
                and its jobs.
            problem_type: one of the contract's problem types.
            schema_file: path of the model's data schema, relative to the project root
                (shipped to the jobs as an asset).
            hyperparameters: built-in XGBoost hyperparameters (the contract's rules).
            quality_metric: a gate metric of the contract for ``problem_type``.
            quality_threshold: the value the metric must reach to register the model.
            drift_psi_threshold: the model's drift PSI threshold (its Model Monitor baseline
                constraints carry it).
            raw_data_bucket: where the model's raw data lies, under ``raw_data_prefix``.
            raw_data_prefix: S3 key prefix ending in ``/``.
            artifacts_bucket: where every step writes, under ``pipelines/<model>/``.
            encryption_key: the key of both buckets; also encrypts job volumes and outputs.
            model_package_group: where passing models are registered.
            vpc: the VPC jobs run in; if left out, jobs run outside a VPC.
            vpc_subnets: with ``vpc``, which subnets (default: the VPC's private ones).
            security_groups: with ``vpc``, the groups attached to every job (required).
            processing_instance_type, processing_instance_count: Preprocess's instances
                (Evaluate always runs on one).
            training_instance_type, training_instance_count: the training job's instances.
            max_runtime: per job; default one hour.
            use_spot_training: managed spot training, with checkpoints in S3.
            max_wait: spot only: how long to wait for capacity; default ``max_runtime``.
            xgboost_version: the built-in algorithm's version.
            mlflow_app: SageMaker logs each execution and the training job to the
                experiment named after the pipeline; without it, nothing is tracked.
            schedule: when to start executions; without it, only when started.
            enable_network_isolation: jobs' containers get no network access at all
                (inputs and outputs are still moved by SageMaker).
            feature_group: an ``IngestFeatures`` step writes the model's records into it,
                as a role of its own (the only one granted the writes).
            ingestion_security_groups: with ``vpc`` and ``feature_group``, the groups of
                the ingestion job (a path to the Feature Store runtime; required) and of
                the training-set job (a path to Athena).
            offline_store_workgroup: with a ``feature_group`` that has an offline store,
                the model trains from that store: a ``BuildTrainingSet`` step queries it in
                this workgroup as of the execution's cutoff, as a role of its own (the only
                one granted the queries), and Preprocess reads the result instead of the
                raw files. Without it, the model trains from the raw files.
            data_wrangler_flow: a Data Wrangler flow (read and checked by
                :func:`mlops.data_wrangler.load_flow`) that a ``DataWranglerFlow`` step runs
                first, on the raw data; every step that read the raw files reads its output
                instead. Without it, there is no such step.
        """
        super().__init__(scope, id, pipeline_name=pipeline_name)
        flow = data_wrangler_flow
        stack = cdk.Stack.of(self)
        if (vpc is None) != (not security_groups):
            raise ValueError(f"{self.node.path}: give both vpc and security_groups, or neither")
        if feature_group is not None and vpc is not None and not ingestion_security_groups:
            raise ValueError(
                f"{self.node.path}: a feature group in a VPC needs ingestion_security_groups "
                "(a path to the Feature Store runtime)"
            )
        if offline_store_workgroup is not None and (
            feature_group is None or feature_group.offline_store_table is None
        ):
            raise ValueError(
                f"{self.node.path}: offline_store_workgroup needs a feature_group with an "
                "offline store (its Glue table)"
            )
        if cdk.Token.is_unresolved(stack.region):
            raise ValueError(
                f"{self.node.path}: the stack needs a concrete region (image URIs depend on it)"
            )
        subnet_ids: list[str] = []
        if vpc is not None:
            subnet_ids = selected_subnet_ids(vpc, vpc_subnets)
        groups = list(security_groups)
        max_runtime = max_runtime or cdk.Duration.hours(1)
        trains_offline = offline_store_workgroup is not None
        inputs = PipelineInputs(
            model_name=model_name,
            problem_type=problem_type,
            region=stack.region,
            hyperparameters=contract.hyperparameters_as_sent(hyperparameters),
            quality_metric=quality_metric,
            quality_threshold=quality_threshold,
            drift_psi_threshold=drift_psi_threshold,
            processing_instance_type=processing_instance_type,
            processing_instance_count=processing_instance_count,
            training_instance_type=training_instance_type,
            training_instance_count=training_instance_count,
            max_runtime_seconds=int(max_runtime.to_seconds()),
            use_spot_training=use_spot_training,
            max_wait_seconds=int(max_wait.to_seconds()) if max_wait else None,
            enable_network_isolation=enable_network_isolation,
            subnet_count=len(subnet_ids),
            security_group_count=len(groups),
            xgboost_version=xgboost_version,
            use_mlflow=mlflow_app is not None,
            mlflow_experiment_name=pipeline_name,
            feature_group_name=feature_group.feature_group_name if feature_group else None,
            ingestion_security_group_count=len(ingestion_security_groups) if vpc else 0,
            offline_store_database=OFFLINE_STORE_DATABASE if trains_offline else "",
            offline_store_table=(
                feature_group.offline_store_table if trains_offline and feature_group else None
            ),
            athena_workgroup=(
                offline_store_workgroup.workgroup_name if offline_store_workgroup else ""
            ),
            flow_source_names=tuple(s.name for s in flow.sources) if flow else (),
            flow_output_name=flow.output_name if flow else "",
            flow_job_arguments=tuple(data_wrangler.job_arguments(flow)) if flow else (),
        )
        # Built in the build worker while CDK builds the rest; the body and the image
        # policy are filled in lazily, and the validation below reports a failed build.
        self._definition = definition_builds.submit(inputs)
        self.node.add_validation(_DefinitionValidation(self))

        source = s3_assets.Asset(self, "StepsSource", path=str(STEPS_DIR), exclude=ASSET_EXCLUDES)
        runner = s3_assets.Asset(self, "StepRunner", path=str(RUNNER))
        schema = s3_assets.Asset(self, "Schema", path=str(PROJECT_ROOT / schema_file))
        assets = [source, runner, schema]
        if flow is not None:
            assets.append(s3_assets.Asset(self, "Flow", path=str(flow.path)))

        # The pipeline and its processing and training jobs, of this account only.
        self.role = sagemaker_role(
            self,
            "ExecutionRole",
            description=f"Runs the {model_name} training pipeline and its jobs",
        )
        model_prefix = pipeline_definition.model_prefix(model_name)
        values: dict[str, str] = {
            "ExecutionRoleArn": self.role.role_arn,
            "ArtifactsBucket": artifacts_bucket.bucket_name,
            "KmsKeyArn": encryption_key.key_arn,
            "ModelPackageGroupArn": model_package_group.model_package_group_arn,
            "CodeUri": runner.s3_object_url,
            "SourceUri": source.s3_object_url,
            "SchemaUri": schema.s3_object_url,
            "RawDataUri": raw_data_bucket.s3_url_for_object(raw_data_prefix),
        }
        if flow is not None:
            values["FlowUri"] = assets[3].s3_object_url
        if mlflow_app is not None:
            values["MlflowResourceArn"] = mlflow_app.app_arn
        values.update({f"SubnetId{i}": subnet for i, subnet in enumerate(subnet_ids)})
        values.update({f"SecurityGroupId{i}": g.security_group_id for i, g in enumerate(groups)})
        self.ingestion_role: iam.Role | None = None
        if feature_group is not None:
            self.ingestion_role = sagemaker_role(
                self,
                "IngestionRole",
                description=f"Writes {model_name}'s records into its feature group",
            )
            values["IngestionRoleArn"] = self.ingestion_role.role_arn
            if vpc is not None:
                values.update(
                    {f"IngestionSecurityGroupId{i}": g.security_group_id
                     for i, g in enumerate(ingestion_security_groups)}
                )  # fmt: skip
        self.training_set_role: iam.Role | None = None
        if offline_store_workgroup is not None:
            self.training_set_role = sagemaker_role(
                self,
                "TrainingSetRole",
                description=f"Builds {model_name}'s training sets from its offline store",
            )
            values["TrainingSetRoleArn"] = self.training_set_role.role_arn
        self._values = values

        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_description=f"Train, evaluate and register {model_name}",
            role_arn=self.role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": cdk.Lazy.string(_ProduceString(self._embedded_body))
            },
        )

        # --- what the steps need, and nothing broader --------------------------------
        # The three asset objects, not the asset bucket; the two prefixes, not the buckets.
        grant_objects_read(self.role, source.bucket, [a.s3_object_key for a in assets])
        grant_prefix(self.role, raw_data_bucket, raw_data_prefix)
        grant_prefix(self.role, artifacts_bucket, model_prefix, write=True)
        model_package_group.grant_register(self.role)
        if mlflow_app is not None:
            mlflow_app.grant_tracking(self.role)
        self._grant_jobs(self.role, stack, encryption_key, vpc=vpc)
        if self.ingestion_role is not None and feature_group is not None:
            self._grant_ingestion(
                self.ingestion_role, feature_group, stack, encryption_key, vpc=vpc,
                assets=(source, runner, schema), raw_data_bucket=raw_data_bucket,
                raw_data_prefix=raw_data_prefix, artifacts_bucket=artifacts_bucket,
                model_prefix=model_prefix,
            )  # fmt: skip
        if self.training_set_role is not None and offline_store_workgroup is not None:
            assert feature_group is not None
            self._grant_training_set(
                self.training_set_role, feature_group, offline_store_workgroup, stack,
                encryption_key, vpc=vpc, assets=(source, runner, schema),
                artifacts_bucket=artifacts_bucket, model_prefix=model_prefix,
            )  # fmt: skip
        policy = default_policy_resource(self.role)
        # Jobs start as soon as an execution does: the policy must exist before the pipeline.
        self.resource.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            "Each wildcard is bounded. Compensating controls: S3 actions are limited to this "
            f"model's prefixes ({raw_data_prefix}, {model_prefix}) and the CDK asset "
            "objects; KMS actions to the stage's data key; MLflow actions to the stage's one "
            "App; SageMaker jobs to names the "
            "pipeline service generates (pipelines-*); model packages to this model's group; "
            "logs to SageMaker's job log groups. Resource '*' only where the API has no "
            "resource type (ecr:GetAuthorizationToken, ec2 Describe calls SageMaker makes for "
            "VPC jobs) or with a condition (cloudwatch:namespace /aws/sagemaker/*; network "
            "interfaces only in the stage's VPC, ec2:Vpc).",
        )

        # After the wildcard acknowledgements, which resolve the policy: resolving this
        # statement waits for the definition. Its resources have no wildcard.
        self._grant_image_pulls(self.role)
        for job_role in (self.ingestion_role, self.training_set_role):
            if job_role is not None:
                self._grant_image_pulls(job_role)

        if schedule is not None:
            self.add_schedule(schedule, encryption_key)

    # --- the definition -------------------------------------------------------------------

    @property
    def definition(self) -> BuiltDefinition:
        """The rendered definition (waits for the build; raises its error)."""
        try:
            built = self._definition.result(timeout=BUILD_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError as error:
            raise TimeoutError(
                f"the pipeline definition was not built within {BUILD_TIMEOUT_SECONDS} s "
                "(the build worker is stuck or starved)"
            ) from error
        check_body_size(built.body)
        missing = sorted(set(built.substitutions) - set(self._values))
        if missing:
            raise ValueError(f"no value for definition variables {missing}")
        return built

    def definition_error(self) -> BaseException | None:
        """Why the definition cannot be embedded, or None (waits for the build)."""
        try:
            self.definition  # noqa: B018 (also runs the size and variable checks)
        except Exception as error:
            return error
        return None

    def _embedded_body(self) -> str:
        # A failed build embeds nothing; the validation fails synth with its error.
        if self.definition_error() is not None:
            return ""
        built = self.definition
        return cdk.Fn.sub(built.body, {name: self._values[name] for name in built.substitutions})

    def _image_repositories(self) -> list[str]:
        return self.image_repository_arns(cdk.Stack.of(self))

    def image_repository_arns(self, stack: cdk.Stack) -> list[str]:
        """The ECR repositories of the images the pipeline's jobs and registered models
        use, as ARNs in ``stack`` (an endpoint's model pulls from the same ones)."""
        if self.definition_error() is not None:  # never deployed: the validation fails synth
            return [stack.format_arn(service="ecr", resource="repository", resource_name="none")]
        return sorted(
            {
                f"arn:{stack.partition}:ecr:{region}:{account}:repository/{name}"
                for account, region, name in IMAGE_PATTERN.findall(self.definition.body)
            }
        )

    # --- internals ------------------------------------------------------------------------

    def _grant_image_pulls(self, role: iam.Role) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullStepImages",
                actions=list(IMAGE_PULL_ACTIONS),
                resources=cdk.Lazy.list(_ProduceList(self._image_repositories)),
            )
        )

    def _grant_ingestion(
        self,
        role: iam.Role,
        feature_group: FeatureGroupBase,
        stack: cdk.Stack,
        key: kms.IKey,
        *,
        vpc: ec2.IVpc | None,
        assets: Sequence[s3_assets.Asset],
        raw_data_bucket: s3.IBucket,
        raw_data_prefix: str,
        artifacts_bucket: s3.IBucket,
        model_prefix: str,
    ) -> None:
        """The ingestion job's role: what a processing job needs (its inputs, its output
        prefix, logs, images, network interfaces), and the feature group's record writes.
        The pipeline's role may pass it to SageMaker; nothing else holds the writes."""
        grant_prefix(role, raw_data_bucket, raw_data_prefix)
        feature_group.grant_write_records(role)
        self._finish_job_role(
            role, stack, key, vpc=vpc, assets=assets, artifacts_bucket=artifacts_bucket,
            model_prefix=model_prefix, pass_sid="PassIngestionRoleToItsJob",
            controls="records only in the model's one feature group "
            f"({feature_group.feature_group_name}); S3 also the model's raw prefix "
            f"({raw_data_prefix})",
        )  # fmt: skip

    def _grant_training_set(
        self,
        role: iam.Role,
        feature_group: FeatureGroupBase,
        workgroup: OfflineStoreWorkgroupBase,
        stack: cdk.Stack,
        key: kms.IKey,
        *,
        vpc: ec2.IVpc | None,
        assets: Sequence[s3_assets.Asset],
        artifacts_bucket: s3.IBucket,
        model_prefix: str,
    ) -> None:
        """The training-set job's role: what a processing job needs, and Athena queries
        of the group's offline store in ``workgroup``. The pipeline's role may pass it."""
        feature_group.grant_query_offline(role, workgroup)
        self._finish_job_role(
            role, stack, key, vpc=vpc, assets=assets, artifacts_bucket=artifacts_bucket,
            model_prefix=model_prefix, pass_sid="PassTrainingSetRoleToItsJob",
            controls=f"Athena only in the stage's workgroup ({workgroup.workgroup_name}), "
            "whose enforced settings encrypt results with the stage's key; Glue only the "
            f"group's table ({feature_group.offline_store_table}); S3 also the offline-store "
            "and results prefixes",
        )  # fmt: skip

    def _finish_job_role(
        self,
        role: iam.Role,
        stack: cdk.Stack,
        key: kms.IKey,
        *,
        vpc: ec2.IVpc | None,
        assets: Sequence[s3_assets.Asset],
        artifacts_bucket: s3.IBucket,
        model_prefix: str,
        pass_sid: str,
        controls: str,
    ) -> None:
        """What a job role of its own needs besides its purpose: the step's code and schema,
        the model's execution outputs, the job basics; the pipeline's role may pass it; the
        pipeline waits for its policy; the policy's findings are acknowledged."""
        grant_objects_read(role, assets[0].bucket, [a.s3_object_key for a in assets])
        grant_prefix(
            role, artifacts_bucket, f"{model_prefix}{pipeline_definition.EXECUTIONS}/", write=True
        )
        grant_sagemaker_basics(role, stack, key, vpc=vpc, log_groups=JOB_LOG_GROUPS)
        self._let_pipeline_pass(role, pass_sid)
        policy = default_policy_resource(role)
        self.resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
        acknowledge(policy, INLINE_POLICY, INLINE_POLICY_REASON)
        acknowledge_wildcards(
            policy,
            f"Each wildcard is bounded. Compensating controls: {controls}; S3 otherwise only "
            "the model's execution outputs and the CDK asset objects; KMS only the stage's "
            "data key, through S3 and SageMaker; logs only SageMaker's job log groups; "
            "network interfaces only in the stage's VPC; Resource '*' only where the API has "
            "no resource type (ecr:GetAuthorizationToken, ec2 Describe calls) or with a "
            "condition (cloudwatch:namespace /aws/sagemaker/*).",
        )

    def _let_pipeline_pass(self, role: iam.IRole, sid: str) -> None:
        """The pipeline's role may pass ``role`` to the SageMaker job that runs as it."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )

    def _grant_jobs(
        self, role: iam.Role, stack: cdk.Stack, key: kms.IKey, *, vpc: ec2.IVpc | None
    ) -> None:
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
        grant_sagemaker_basics(role, stack, key, vpc=vpc, log_groups=JOB_LOG_GROUPS)


@jsii.implements(constructs.IValidation)
class _DefinitionValidation:
    """Fails synth, before any template is written, when the definition cannot be embedded."""

    def __init__(self, pipeline: TrainingPipeline) -> None:
        self._pipeline = pipeline

    def validate(self) -> list[str]:
        error = self._pipeline.definition_error()
        return [] if error is None else [f"{type(error).__name__}: {error}"]


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


def lazy_string(function: Callable[[], str]) -> str:
    """A string CDK resolves by calling ``function`` once, at synth."""
    return cdk.Lazy.string(_ProduceString(function))


@jsii.implements(constructs.IValidation)
class _FutureValidation:
    def __init__(self, future: Future[str]) -> None:
        self._future = future

    def validate(self) -> list[str]:
        error = self._future.exception()
        return [] if error is None else [f"{type(error).__name__}: {error}"]


def lazy_result(scope: Construct, future: Future[str]) -> str:
    """``future``'s result as a string resolved at synth; a failed future fails synth's
    validation naming ``scope``, before any template is written."""
    scope.node.add_validation(_FutureValidation(future))
    return lazy_string(lambda: future.result() if future.exception() is None else "unavailable")

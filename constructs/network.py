"""The private network that SageMaker jobs and endpoints run in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr

from constructs import Construct
from constructs.feature_group import ATHENA_QUERY_ACTIONS
from constructs.nag import (
    INLINE_POLICY,
    INLINE_POLICY_REASON,
    acknowledge,
    default_policy_resource,
)
from constructs.sdk_call import deploy_time_call
from constructs.service_principals import confined_service_principal

#: What the instances of one job send each other (SageMaker's guidance for distributed
#: training with inter-container traffic encryption).
JOB_PEER_PORTS = (
    ec2.Port.all_tcp(),
    ec2.Port.udp(500),
    ec2.Port(protocol=ec2.Protocol.ESP, string_representation="ESP (IP protocol 50)"),
)


def selected_subnet_ids(vpc: ec2.IVpc, selection: ec2.SubnetSelection | None = None) -> list[str]:
    """The IDs of ``vpc``'s subnets that ``selection`` picks (default: its private ones)."""
    chosen = selection or ec2.SubnetSelection()
    return vpc.select_subnets(
        subnet_type=chosen.subnet_type,
        subnets=chosen.subnets,
        subnet_group_name=chosen.subnet_group_name,
        availability_zones=chosen.availability_zones,
        one_per_az=chosen.one_per_az,
    ).subnet_ids


@dataclass(frozen=True)
class StudioEndpoint:
    """An interface endpoint a VPC-only Studio domain with Canvas needs, and why.

    Attributes:
        id: its construct ID; service: the AWS service; actions: what its policy allows
            (to this account's principals); why: what in Studio or Canvas calls it.
    """

    id: str
    service: ec2.InterfaceVpcEndpointAwsService
    actions: tuple[str, ...]
    why: str

    def statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=f"{self.id}OfThisAccount", actions=list(self.actions), resources=["*"]
        )


_SVC = ec2.InterfaceVpcEndpointAwsService
MLFLOW_ENDPOINT = "MlflowTracking"
#: The interface endpoints of a VPC-only domain, after AWS's "Connect Studio notebooks in
#: a VPC to external resources" and "Configure Amazon SageMaker Canvas in a VPC without
#: internet access". The Feature Store runtime and Athena endpoints come from the data
#: stack's feature store (see :meth:`PrivateNetwork.add_studio_endpoints`); S3 is the
#: gateway endpoint. docs/studio.md lists them with the same reasons.
STUDIO_ENDPOINTS: tuple[StudioEndpoint, ...] = (
    StudioEndpoint("SageMakerApi", _SVC.SAGEMAKER_API, ("sagemaker:*",),
                   "Studio, Canvas and the SDK call the SageMaker API: spaces and apps, "
                   "processing and AutoML jobs, the model registry"),
    StudioEndpoint("SageMakerRuntime", _SVC.SAGEMAKER_RUNTIME, ("sagemaker:InvokeEndpoint*",),
                   "Canvas predictions and notebooks invoking the stage's endpoints"),
    StudioEndpoint("Sts", _SVC.STS, ("sts:AssumeRole", "sts:GetCallerIdentity",
                                     "sts:SetSourceIdentity", "sts:TagSession"),
                   "apps take the execution role's credentials; the SDK asks who it is"),
    StudioEndpoint("Logs", _SVC.CLOUDWATCH_LOGS, ("logs:*",),
                   "apps, Canvas and the jobs they start write and read their logs"),
    StudioEndpoint("Monitoring", _SVC.CLOUDWATCH_MONITORING, ("cloudwatch:*",),
                   "Canvas and notebooks read job and endpoint metrics"),
    StudioEndpoint("EcrApi", _SVC.ECR, ("ecr:*",),
                   "image lookups by the SDK and Canvas, custom images of spaces"),
    StudioEndpoint("EcrDocker", _SVC.ECR_DOCKER, ("ecr:*",),
                   "pulling custom images of spaces through the VPC (layers come from S3 "
                   "through the gateway endpoint)"),
    StudioEndpoint("Glue", _SVC.GLUE, ("glue:*",),
                   "Canvas's Athena import and notebooks read the offline stores' Data "
                   "Catalog tables"),
    StudioEndpoint("Kms", _SVC.KMS, ("kms:*",),
                   "the stage's data key: Canvas's workspace and the SDK's encrypted "
                   "uploads"),
    StudioEndpoint(MLFLOW_ENDPOINT, _SVC.SAGEMAKER_EXPERIMENTS, ("sagemaker-mlflow:*",),
                   "notebooks log runs to and read from the stage's MLflow App"),
)  # fmt: skip


class PrivateNetwork(Construct):
    """A VPC with isolated subnets only (no internet or NAT gateway), flow logs and an S3
    gateway endpoint, plus a security group for SageMaker jobs.

    Jobs reach S3 (their inputs, outputs and the CDK asset bucket) through the gateway
    endpoint; SageMaker pulls images and ships logs outside the VPC. The VPC's default
    security group has all its rules removed.

    Attributes:
        vpc: the VPC.
        job_security_group: attach to processing and training jobs; it allows HTTPS out
            to S3's prefix list only and traffic between a job's instances (TCP, and the
            IPsec of inter-container traffic encryption: UDP 500 and ESP).
        s3_prefix_list_id: the region's S3 prefix list (a deploy-time token), for other
            security groups that reach S3 through the gateway endpoint.
        subnets: the isolated subnets jobs run in.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cidr: str,
        max_azs: int,
        encryption_key: kms.IKey,
        flow_log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        """Creates the network.

        Args:
            cidr: the VPC's IPv4 block, /16 to /24.
            max_azs: how many Availability Zones get a subnet.
            encryption_key: KMS key for the flow-log group.
            flow_log_retention: how long flow logs are kept.
            removal_policy: what happens to the flow-log group when it leaves the stack.
        """
        super().__init__(scope, id)
        self._endpoint_groups: dict[str, ec2.SecurityGroup] = {}
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
            restrict_default_security_group=True,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=encryption_key,
            retention=flow_log_retention,
            removal_policy=removal_policy,
        )
        flow_role = iam.Role(
            self,
            "FlowLogsRole",
            assumed_by=confined_service_principal(
                self, "vpc-flow-logs.amazonaws.com", arn_service="ec2", resource="vpc-flow-log/*"
            ),
            description="Lets VPC Flow Logs write to the network's log group",
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group, flow_role),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        acknowledge(default_policy_resource(flow_role), INLINE_POLICY, INLINE_POLICY_REASON)
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.s3_endpoint: ec2.GatewayVpcEndpoint = self.vpc.node.find_child("S3")  # type: ignore[assignment]
        stack = cdk.Stack.of(self)
        # Replaces the endpoint's default full-access policy: what goes through it is this
        # account's access to the buckets it is told about (allow_buckets), the CDK asset
        # bucket (the steps' code), and ECR's image-layer bucket of the region.
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="CdkAssets",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[
                    f"arn:{stack.partition}:s3:::cdk-*-assets-{stack.account}-{stack.region}",
                    f"arn:{stack.partition}:s3:::cdk-*-assets-{stack.account}-{stack.region}/*",
                ],
                conditions={"StringEquals": {"aws:PrincipalAccount": stack.account}},
            )
        )
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="EcrImageLayers",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{stack.partition}:s3:::prod-{stack.region}-starport-layer-bucket/*"
                ],
            )
        )
        self.job_security_group = ec2.SecurityGroup(
            self,
            "JobSecurityGroup",
            vpc=self.vpc,
            description="SageMaker processing and training jobs: HTTPS to S3 and to each other",
            allow_all_outbound=False,
        )
        # HTTPS to S3's address ranges only (the gateway endpoint's route), named by the
        # region's AWS-managed prefix list.
        self.s3_prefix_list_id = self._s3_prefix_list_id(encryption_key, flow_log_retention)
        self.job_security_group.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id),
            ec2.Port.tcp(443),
            "HTTPS to S3 via the gateway endpoint",
        )
        # Distributed training and multi-instance processing talk between instances; with
        # inter-container traffic encryption (always on) that traffic is IPsec: IKE on UDP
        # 500 and ESP (IP protocol 50) besides TCP.
        for port in JOB_PEER_PORTS:
            self.job_security_group.add_ingress_rule(
                self.job_security_group, port, "Between instances of one job"
            )
            self.job_security_group.add_egress_rule(
                self.job_security_group, port, "Between instances of one job"
            )

    def _s3_prefix_list_id(
        self, encryption_key: kms.IKey, log_retention: logs.RetentionDays
    ) -> str:
        """The ID of the region's AWS-managed S3 prefix list, looked up at deploy time.

        CloudFormation has no attribute or parameter type for it, and a synth-time lookup
        would call AWS; a custom resource asks EC2 once per stack (the ID never changes).
        """
        stack = cdk.Stack.of(self)
        name = f"com.amazonaws.{stack.region}.s3"
        lookup = deploy_time_call(
            self,
            "S3PrefixListLookup",
            resource_type="Custom::S3PrefixList",
            call=cr.AwsSdkCall(  # also the Create call
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
                physical_resource_id=cr.PhysicalResourceId.of(name),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            statements=[
                iam.PolicyStatement(
                    actions=["ec2:DescribeManagedPrefixLists"],
                    resources=["*"],  # EC2 Describe* actions have no resource type
                )
            ],
            encryption_key=encryption_key,
            log_retention=log_retention,
            purpose="read one prefix-list ID",
            policy_reason="ec2:DescribeManagedPrefixLists has no resource type (IAM accepts "
            "only *). Compensating controls: it is the policy's only action, read-only, and the "
            "policy belongs to the lookup's one role.",
        )
        return lookup.get_response_field("PrefixLists.0.PrefixListId")

    def add_feature_store_runtime_endpoint(
        self, feature_group_arns: Sequence[str]
    ) -> ec2.SecurityGroup:
        """An interface endpoint for the Feature Store runtime, and the security group of
        the one kind of job that needs it (feature ingestion, not network-isolated): HTTPS
        to the endpoint and to S3, nothing else. The endpoint admits only that group (and
        those given to :meth:`admit`), and only record calls on ``feature_group_arns`` by
        this account. Returns that group."""
        ingestion = ec2.SecurityGroup(
            self,
            "IngestionSecurityGroup",
            vpc=self.vpc,
            description="Feature ingestion jobs: HTTPS to the Feature Store runtime endpoint and S3",
            allow_all_outbound=False,
        )
        ingestion.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id), ec2.Port.tcp(443),
            "HTTPS to S3 via the gateway endpoint",
        )  # fmt: skip
        self._interface_endpoint(
            "FeatureStoreRuntime",
            ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME,
            clients=ingestion, group_id="FeatureStoreEndpointSecurityGroup",
            description="The Feature Store runtime endpoint: HTTPS from ingestion jobs only",
            labels=("From ingestion jobs", "To the Feature Store runtime"),
            statement=iam.PolicyStatement(
                sid="StageFeatureGroupRecords",
                actions=[
                    "sagemaker:PutRecord", "sagemaker:GetRecord",
                    "sagemaker:BatchGetRecord", "sagemaker:DeleteRecord",
                ],
                resources=list(feature_group_arns),
            ),
        )  # fmt: skip
        return ingestion

    def add_athena_endpoint(
        self,
        workgroup_arn: str,
        clients: ec2.ISecurityGroup,
        clients_are: str = "training-set jobs",
    ) -> ec2.InterfaceVpcEndpoint:
        """An interface endpoint for Athena, for the jobs that build training sets from the
        offline stores (in ``clients``, the feature jobs' group): HTTPS from that group
        (and those given to :meth:`admit`) only, and only query calls in ``workgroup_arn``
        by this account. Athena reads Glue and S3 itself; the jobs fetch results through
        the S3 gateway endpoint."""
        endpoint = self._interface_endpoint(
            "Athena",
            ec2.InterfaceVpcEndpointAwsService.ATHENA,
            clients=clients, group_id="AthenaEndpointSecurityGroup",
            description="The Athena endpoint: HTTPS from training-set jobs only",
            labels=(f"From {clients_are}", "To Athena"),
            statement=iam.PolicyStatement(
                sid="StageWorkgroupQueries", actions=list(ATHENA_QUERY_ACTIONS),
                resources=[workgroup_arn],
            ),
        )  # fmt: skip
        return endpoint

    def has_endpoint(self, id: str) -> bool:
        """Whether the interface endpoint ``id`` (``"Athena"``, ``"FeatureStoreRuntime"``)
        exists."""
        return id in self._endpoint_groups

    def admit(self, id: str, clients: ec2.ISecurityGroup, label: str) -> None:
        """Lets ``clients`` reach the interface endpoint ``id`` (HTTPS both ways)."""
        group = self._endpoint_groups[id]
        group.add_ingress_rule(clients, ec2.Port.tcp(443), label)
        clients.add_egress_rule(group, ec2.Port.tcp(443), f"To the {id} endpoint")

    def add_studio_endpoints(self, *, with_mlflow: bool) -> ec2.SecurityGroup:
        """The security group of a VPC-only Studio domain's apps, and the interface
        endpoints Studio and Canvas need in a VPC with no route out
        (:data:`STUDIO_ENDPOINTS`; the MLflow one only ``with_mlflow``). The endpoints
        share one security group admitting HTTPS from the domain's group only (the
        platform's jobs are network-isolated or have endpoints of their own); each
        endpoint's policy allows its service's calls by this account's principals only. Returns the domain's group: HTTPS to those
        endpoints and to S3, and TCP between its own apps (JupyterLab, Canvas)."""
        domain = ec2.SecurityGroup(
            self, "StudioSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Studio domain apps: HTTPS to the VPC endpoints and S3, and between apps",
        )  # fmt: skip
        domain.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id), ec2.Port.tcp(443),
            "HTTPS to S3 via the gateway endpoint",
        )  # fmt: skip
        # Apps of one domain talk to each other (SageMaker's guidance for VPC-only
        # domains: TCP between the domain's own security group).
        domain.add_ingress_rule(domain, ec2.Port.all_tcp(), "Between the domain's apps")
        domain.add_egress_rule(domain, ec2.Port.all_tcp(), "Between the domain's apps")
        shared = ec2.SecurityGroup(
            self, "StudioEndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Studio interface endpoints: HTTPS from the domain apps only",
        )  # fmt: skip
        shared.add_ingress_rule(domain, ec2.Port.tcp(443), "From Studio apps")
        domain.add_egress_rule(shared, ec2.Port.tcp(443), "To Studio's interface endpoints")
        for spec in STUDIO_ENDPOINTS:
            if spec.id == MLFLOW_ENDPOINT and not with_mlflow:
                continue
            endpoint = self.vpc.add_interface_endpoint(
                spec.id, service=spec.service, private_dns_enabled=True,
                security_groups=[shared], open=False,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            )  # fmt: skip
            endpoint.add_to_policy(self._account_only(spec.statement()))
        for id in ("FeatureStoreRuntime", "Athena"):
            if self.has_endpoint(id):
                self.admit(id, domain, "From Studio apps")
        return domain

    def _account_only(self, statement: iam.PolicyStatement) -> iam.PolicyStatement:
        statement.add_any_principal()
        statement.add_condition(
            "StringEquals", {"aws:PrincipalAccount": cdk.Stack.of(self).account}
        )
        return statement

    def _interface_endpoint(
        self,
        id: str,
        service: ec2.InterfaceVpcEndpointAwsService,
        *,
        clients: ec2.ISecurityGroup,
        group_id: str,
        description: str,
        labels: tuple[str, str],
        statement: iam.PolicyStatement,
    ) -> ec2.InterfaceVpcEndpoint:
        """An interface endpoint in the isolated subnets with a security group of its own
        that admits only ``clients`` (HTTPS), and a policy allowing only ``statement``'s
        actions and resources, for this account's principals."""
        endpoint_group = ec2.SecurityGroup(
            self, group_id, vpc=self.vpc, description=description, allow_all_outbound=False
        )
        endpoint_group.add_ingress_rule(clients, ec2.Port.tcp(443), labels[0])
        clients.add_egress_rule(endpoint_group, ec2.Port.tcp(443), labels[1])
        endpoint = self.vpc.add_interface_endpoint(
            id,
            service=service,
            private_dns_enabled=True,
            security_groups=[endpoint_group],
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            open=False,
        )
        endpoint.add_to_policy(self._account_only(statement))
        self._endpoint_groups[id] = endpoint_group
        return endpoint

    def allow_buckets(self, buckets: Sequence[s3.IBucket]) -> None:
        """Lets this account's principals reach ``buckets`` through the S3 endpoint (what
        they may do there is still up to their own policies and the buckets')."""
        stack = cdk.Stack.of(self)
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="StageBuckets",
                principals=[iam.AnyPrincipal()],
                actions=[
                    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload", "s3:ListBucket", "s3:GetBucketLocation",
                ],
                resources=[r for b in buckets for r in (b.bucket_arn, b.arn_for_objects("*"))],
                conditions={"StringEquals": {"aws:PrincipalAccount": stack.account}},
            )
        )  # fmt: skip

"""Network: where the Fargate tasks run. A new cheap VPC by default, or an imported one."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.checkov import skip_checkov
from stacks.props import check, check_bool
from stacks.stack_settings import MAX_SECURITY_GROUPS, MAX_SUBNETS

# The stack's own VPC: two AZs of public subnets, so no NAT gateway to pay for. Tasks reach ECR
# and CloudWatch Logs through their public IP and S3 through the (free) gateway endpoint.
MAX_AZS = 2
PUBLIC_SUBNET_CIDR_MASK = 24
# Everything a task talks to is an AWS HTTPS endpoint: S3 (through the gateway endpoint), ECR,
# CloudWatch Logs and DynamoDB. DNS goes to the VPC's resolver, which security groups never filter.
TASK_EGRESS_PORT = 443
# The stack-level provider of CDK's `Custom::VpcRestrictDefaultSG` (fixed id, one per stack).
_RESTRICT_DEFAULT_SG_PROVIDER_ID = "Custom::VpcRestrictDefaultSGCustomResourceProvider"


@dataclass(frozen=True, kw_only=True)
class NetworkProps:
    """Where tasks run (settings `vpcId`, `subnetIds`, `securityGroupIds`, `assignPublicIp`).

    Without `vpc_id` the construct creates a VPC and a security group, so `subnet_ids` and
    `security_group_ids` must be empty; with it, both name what RunTask places tasks in.
    """

    vpc_id: str | None
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    assign_public_ip: bool

    def __post_init__(self) -> None:
        check(self, "vpc_id", self.vpc_id is None or bool(self.vpc_id), "a VPC id, or None")
        for field, most in (
            ("subnet_ids", MAX_SUBNETS),
            ("security_group_ids", MAX_SECURITY_GROUPS),
        ):
            ids = getattr(self, field)
            check(self, field, isinstance(ids, tuple), "a tuple of ids")
            if self.vpc_id is None:
                check(self, field, not ids, "empty unless vpc_id is set")
            else:
                check(self, field, 1 <= len(ids) <= most, f"1 to {most} ids with vpc_id")
        check_bool(self, "assign_public_ip")


class Network(Construct):
    """The VPC, subnets and security groups of the tasks.

    Attributes:
        vpc: the VPC (created or imported).
        subnet_ids: subnets RunTask places tasks in.
        security_group_ids: security groups of the tasks.
        assign_public_ip: whether RunTask gives tasks a public IP.
        flow_log_group: log group of the VPC flow logs (None for an imported VPC).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: NetworkProps,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.assign_public_ip: bool = props.assign_public_ip
        self.flow_log_group: logs.ILogGroup | None = None
        if props.vpc_id is None:
            self._create(log_retention, removal_policy)
        else:
            self._import(props.vpc_id, props)

    def _create(self, log_retention: logs.RetentionDays, removal_policy: cdk.RemovalPolicy) -> None:
        self.flow_log_group = logs.LogGroup(
            self, "FlowLogGroup", retention=log_retention, removal_policy=removal_policy
        )
        skip_checkov(
            self.flow_log_group,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest; flow records of this VPC "
            "would not be safer for a customer managed KMS key and its cost.",
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=MAX_AZS,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=PUBLIC_SUBNET_CIDR_MASK,
                    map_public_ip_on_launch=False,
                )
            ],
            # awsvpc tasks need DNS to resolve ECR, S3 and logs endpoints (moto needs it too).
            enable_dns_hostnames=True,
            enable_dns_support=True,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
            flow_logs={
                "FlowLog": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
            # CDK's default, spelled out: a custom resource strips the default security group's
            # rules, so nothing placed in it by mistake can talk. (local_aws/ removes that custom
            # resource from the template it deploys, because moto cannot run it.)
            restrict_default_security_group=True,
        )
        self._skip_restrict_default_group_handler_checks()
        security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=vpc,
            description=(
                "iiif-process tasks: no inbound; outbound HTTPS only, to S3, ECR, "
                "CloudWatch Logs and DynamoDB"
            ),
            allow_all_outbound=False,
        )
        security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(TASK_EGRESS_PORT),
            "HTTPS to the AWS endpoints the task uses: S3, ECR, CloudWatch Logs, DynamoDB",
        )
        self.vpc: ec2.IVpc = vpc
        self.subnet_ids: list[str] = vpc.select_subnets(
            subnet_type=ec2.SubnetType.PUBLIC
        ).subnet_ids
        self.security_group_ids: list[str] = [security_group.security_group_id]

    def _skip_restrict_default_group_handler_checks(self) -> None:
        """checkov's Lambda checks on the handler of CDK's own custom resource that empties the
        default security group (one per stack, created with the VPC)."""
        provider = cdk.Stack.of(self).node.find_child(_RESTRICT_DEFAULT_SG_PROVIDER_ID)
        handler = provider.node.find_child("Handler")
        reason = (
            "CDK's own custom resource that removes the default security group's rules runs "
            "only when CloudFormation creates, updates or deletes the stack; {}"
        )
        for check_id, why in (
            ("CKV_AWS_115", "it is never invoked concurrently with itself."),
            ("CKV_AWS_116", "CloudFormation reports and retries its failures."),
            ("CKV_AWS_117", "it calls only the EC2 API, which it needs no VPC to reach."),
        ):
            skip_checkov(handler, check_id, reason.format(why))

    def _import(self, vpc_id: str, props: NetworkProps) -> None:
        self.vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=vpc_id,
            # Only the cluster holds this VPC; tasks are placed by subnet id at RunTask.
            availability_zones=cdk.Fn.get_azs(),
        )
        cdk.Annotations.of(self.vpc).acknowledge_warning(
            "@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
            "Nothing selects subnets from the imported VPC; tasks get the subnetIds setting.",
        )
        self.subnet_ids = list(props.subnet_ids)
        self.security_group_ids = list(props.security_group_ids)

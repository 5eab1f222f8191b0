"""Network: a VPC with public and private subnets per availability zone, NAT, flow logs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam
from ecs_delivery.components.args import checked, from_config
from ecs_delivery.components.config import KmsConfig, NetworkConfig
from ecs_delivery.components.naming import TYPE_PREFIX

# Interface endpoints that Fargate tasks in private subnets need when there is no NAT.
_PRIVATE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm")


@checked
@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """What the network needs: CIDR, zone names, NAT policy and flow-log retention."""

    cidr: str = from_config(NetworkConfig, "cidr")
    availability_zones: list[str]
    nat_gateways: Literal["none", "single", "perAz"] = from_config(NetworkConfig, "nat_gateways")
    flow_log_retention_days: int = from_config(NetworkConfig, "flow_log_retention_days")
    region: str
    # The stack's customer-managed key (kms config); None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    # Without NAT: the interface endpoints to create (None: the ones Fargate tasks need).
    interface_endpoints: list[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ExistingNetwork:
    """A VPC made elsewhere (terraform-aws-modules' `create_vpc = false`): nothing is created.

    It has the attributes of `Network` that other components read, so they take either.
    Tasks run in `private_subnet_ids`, which need a route to ECR, CloudWatch Logs and
    Secrets Manager (NAT or endpoints); a created load balancer needs `public_subnet_ids`.
    """

    vpc_id: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Input[str]]
    public_subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    # Where the validation hook's probes leave the VPC: the created test listener admits them.
    nat_public_ips: dict[str, pulumi.Input[str]] = field(default_factory=dict)


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Split the VPC CIDR in eighths: public subnets first, private ones from the fifth on."""
    eighths = list(ipaddress.ip_network(cidr).subnets(prefixlen_diff=3))
    return [str(n) for n in eighths[:zones]], [str(n) for n in eighths[4 : 4 + zones]]


class Network(pulumi.ComponentResource):
    """VPC across availability zones; private subnets egress through NAT or VPC endpoints."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}:network:Network", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.vpc_cidr = args.cidr
        self.nat_public_ips = {}

        self.vpc = aws.ec2.Vpc(
            name,
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=self._tags(name),
            opts=self._child,
        )
        self.vpc_id = self.vpc.id
        # Adopt the default security group and leave it without rules: nothing may use it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=self._tags(f"{name}-default-unused"),
            opts=self._child,
        )
        igw = aws.ec2.InternetGateway(
            name, vpc_id=self.vpc.id, tags=self._tags(name), opts=self._child
        )
        public_cidrs, private_cidrs = subnet_cidrs(args.cidr, len(args.availability_zones))
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=self._tags(f"{name}-public"),
            opts=self._child,
        )
        public_subnets, private_subnets = [], []
        for az, cidr in zip(args.availability_zones, public_cidrs, strict=True):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{az}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=self._tags(f"{name}-public-{az}", tier="public"),
                opts=self._child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=self._child,
            )
            public_subnets.append(subnet)
        nat_ids = self._create_nat_gateways(public_subnets, igw)
        private_route_tables = []
        for index, (az, cidr) in enumerate(
            zip(args.availability_zones, private_cidrs, strict=True)
        ):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{az}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=self._tags(f"{name}-private-{az}", tier="private"),
                opts=self._child,
            )
            routes = []
            if nat_ids:
                nat_id = nat_ids[index] if len(nat_ids) > 1 else nat_ids[0]
                routes = [
                    aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat_id)
                ]
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{az}",
                vpc_id=self.vpc.id,
                routes=routes,
                tags=self._tags(f"{name}-private-{az}"),
                opts=self._child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}",
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=self._child,
            )
            private_subnets.append(subnet)
            private_route_tables.append(route_table)

        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_subnet_ids = [s.id for s in private_subnets]
        self._create_endpoints(private_route_tables, bool(nat_ids))
        self._create_flow_logs()
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

    def _tags(self, name: str, **extra: str) -> dict[str, str]:
        return {**self._args.tags, "Name": name, **extra}

    def _create_nat_gateways(self, public_subnets, igw) -> list[pulumi.Output[str]]:
        policy = self._args.nat_gateways
        if policy == "none":
            return []
        zones = (
            self._args.availability_zones
            if policy == "perAz"
            else self._args.availability_zones[:1]
        )
        ids = []
        self.nat_public_ips: dict[str, pulumi.Output[str]] = {}
        for az, subnet in zip(zones, public_subnets, strict=False):
            eip = aws.ec2.Eip(
                f"{self._name}-nat-{az}",
                domain="vpc",
                tags=self._tags(f"{self._name}-nat-{az}"),
                opts=self._child,
            )
            nat = aws.ec2.NatGateway(
                f"{self._name}-{az}",
                allocation_id=eip.id,
                subnet_id=subnet.id,
                tags=self._tags(f"{self._name}-{az}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            ids.append(nat.id)
            self.nat_public_ips[az] = eip.public_ip
        return ids

    def _create_endpoints(self, private_route_tables, has_nat: bool) -> None:
        """S3 gateway endpoint always (free); interface endpoints only when there is no NAT."""
        region = self._args.region
        aws.ec2.VpcEndpoint(
            f"{self._name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_route_tables],
            tags=self._tags(f"{self._name}-s3"),
            opts=self._child,
        )
        if has_nat:
            return
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{self._name}-endpoints",
            vpc_id=self.vpc.id,
            description="HTTPS from inside the VPC to AWS interface endpoints",
            tags=self._tags(f"{self._name}-endpoints"),
            opts=self._child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-endpoints-https",
            security_group_id=endpoint_sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=self._args.cidr,
            description="HTTPS from the VPC",
            opts=self._child,
        )
        private_subnet_ids = self.private_subnet_ids
        services = self._args.interface_endpoints
        for service in _PRIVATE_ENDPOINTS if services is None else services:
            aws.ec2.VpcEndpoint(
                f"{self._name}-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=private_subnet_ids,
                security_group_ids=[endpoint_sg.id],
                tags=self._tags(f"{self._name}-{service}"),
                opts=self._child,
            )

    def _create_flow_logs(self) -> None:
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs",
            retention_in_days=self._args.flow_log_retention_days,
            kms_key_id=self._args.kms_key_arn,
            tags=self._tags(f"{self._name}-flow-logs"),
            opts=self._child,
        )
        role, _ = iam.service_role(
            f"{self._name}-flow-logs",
            service="vpc-flow-logs.amazonaws.com",
            statements=[
                {
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                }
            ],
            tags=self._args.tags,
            parent=self,
        )
        aws.ec2.FlowLog(
            self._name,
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=self._tags(self._name),
            opts=self._child,
        )

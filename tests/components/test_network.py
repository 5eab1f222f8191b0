"""Network component: zones, subnets, NAT policy, flow logs, the adopted default security group."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError
from ecs_delivery.offline import plan as plan_tool
from tests.conftest import make_plan
from tests.support.registrations import inputs, policy

SUBNET = "aws:ec2/subnet:Subnet"


def test_dev_has_public_and_private_subnets_in_two_zones(dev_plan):
    subnets = {r.name: r.inputs for r in dev_plan.of_type(SUBNET)}
    assert subnets == {
        "network-public-eu-west-1a": subnets["network-public-eu-west-1a"],
        "network-public-eu-west-1b": subnets["network-public-eu-west-1b"],
        "network-private-eu-west-1a": subnets["network-private-eu-west-1a"],
        "network-private-eu-west-1b": subnets["network-private-eu-west-1b"],
    }
    assert subnets["network-public-eu-west-1a"]["cidrBlock"] == "10.20.0.0/19"
    assert subnets["network-public-eu-west-1b"]["cidrBlock"] == "10.20.32.0/19"
    assert subnets["network-private-eu-west-1a"]["cidrBlock"] == "10.20.128.0/19"
    assert subnets["network-private-eu-west-1b"]["availabilityZone"] == "eu-west-1b"
    assert all(s["mapPublicIpOnLaunch"] is False for s in subnets.values())


def test_prod_spans_three_zones_with_a_nat_gateway_per_zone(prod_plan):
    zones = {r.inputs["availabilityZone"] for r in prod_plan.of_type(SUBNET)}
    assert zones == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    nat_names = sorted(r.name for r in prod_plan.of_type("aws:ec2/natGateway:NatGateway"))
    assert nat_names == ["network-eu-west-1a", "network-eu-west-1b", "network-eu-west-1c"]


def test_single_nat_policy_routes_every_private_subnet_through_one_gateway(dev_plan):
    assert len(dev_plan.of_type("aws:ec2/natGateway:NatGateway")) == 1
    for zone in ("eu-west-1a", "eu-west-1b"):
        routes = inputs(dev_plan, "aws:ec2/routeTable:RouteTable", f"network-private-{zone}")[
            "routes"
        ]
        assert routes == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": "network-eu-west-1a-id"}]


NETWORK_ONLY = """
from ecs_delivery.components.network import Network, NetworkArgs

Network("network", NetworkArgs(
    cidr="10.20.0.0/16",
    availability_zones=["eu-west-1a", "eu-west-1b"],
    nat_gateways="none",
    flow_log_retention_days=30,
    region="eu-west-1",
    kms_key_arn=None,
))
"""


def test_no_nat_policy_uses_vpc_endpoints_instead(tmp_path):
    # The Network component alone, without NAT, gives private subnets the endpoints Fargate
    # tasks need (the program picks its own list: tests/components/test_internal_load_balancer.py).
    (tmp_path / "Pulumi.yaml").write_text("name: network-only\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(NETWORK_ONLY)
    plan = plan_tool.run("t", config={"aws:region": "eu-west-1"}, root=tmp_path)
    assert plan.of_type("aws:ec2/natGateway:NatGateway") == []
    route = inputs(plan, "aws:ec2/routeTable:RouteTable", "network-private-eu-west-1a")
    assert route.get("routes", []) == []
    services = sorted(
        r.inputs["serviceName"] for r in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    )
    assert services == sorted(
        f"com.amazonaws.eu-west-1.{s}"
        for s in ("s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm")
    )
    rule = inputs(
        plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "network-endpoints-https"
    )
    assert (rule["cidrIpv4"], rule["fromPort"], rule["toPort"]) == ("10.20.0.0/16", 443, 443)


def test_the_program_refuses_no_nat_with_an_internet_facing_load_balancer():
    with pytest.raises(ConfigError) as caught:
        make_plan("dev", overrides={"network": {"cidr": "10.20.0.0/16", "natGateways": "none"}})
    assert any(
        p.startswith("network.natGateways: none needs loadBalancer.internal: true")
        for p in caught.value.problems
    )


def test_default_security_group_is_adopted_and_left_empty(dev_plan):
    group = inputs(dev_plan, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "network-default")
    assert group.get("ingress", []) == [] and group.get("egress", []) == []


def test_vpc_flow_logs_go_to_a_log_group_with_retention_and_a_scoped_role(dev_plan):
    flow = inputs(dev_plan, "aws:ec2/flowLog:FlowLog", "network")
    assert flow["trafficType"] == "ALL" and flow["logDestinationType"] == "cloud-watch-logs"
    assert (
        inputs(dev_plan, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")["retentionInDays"]
        == 14
    )
    statement = policy(dev_plan, "network-flow-logs")["Statement"][0]
    assert statement["Resource"][0].startswith("arn:aws:logs:eu-west-1:")
    assert "*" not in statement["Resource"]

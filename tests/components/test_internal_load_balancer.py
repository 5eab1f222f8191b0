"""loadBalancer.internal with natGateways none: the ALB in the private subnets, the hook reaching
its test listener inside the VPC, and the endpoints that replace NAT."""

from __future__ import annotations

from tests.components.test_load_balancer import INGRESS
from tests.conftest import make_plan
from tests.support.registrations import inputs

EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"
# The documented command (README "Internal load balancer"): dev without NAT.
NO_NAT = {
    "network.natGateways": "none",
    "loadBalancer.internal": True,
    "services.web.bootstrapImage": f"{ECR}/web:bootstrap",
    "services.api.bootstrapImage": f"{ECR}/api:bootstrap",
    "services.mailer.bootstrapImage": f"{ECR}/mailer:bootstrap",
    "scheduledTasks.nightly-report.bootstrapImage": f"{ECR}/api:bootstrap",
}
PRIVATE_SUBNETS = ["network-private-eu-west-1a-id", "network-private-eu-west-1b-id"]


def _plan(**extra):
    return make_plan("dev", overrides={**NO_NAT, **extra})


def _rules(plan, kind, group_id):
    return sorted(
        (
            r.name,
            r.inputs.get("cidrIpv4") or r.inputs.get("referencedSecurityGroupId"),
            r.inputs["fromPort"],
            r.inputs["toPort"],
        )
        for r in plan.of_type(kind)
        if r.inputs["securityGroupId"] == group_id
    )


def test_an_internal_load_balancer_sits_in_the_private_subnets():
    alb = inputs(_plan(), "aws:lb/loadBalancer:LoadBalancer", "alb")
    assert alb["internal"] is True
    assert alb["subnets"] == PRIVATE_SUBNETS


def test_the_internal_load_balancer_admits_the_vpc_the_listed_cidrs_and_the_hook_only():
    assert _rules(_plan(), INGRESS, "alb-alb-id") == [
        ("alb-alb-80-10.20.0.0-16", "10.20.0.0/16", 80, 80),
        ("alb-alb-test-10.20.0.0-16", "10.20.0.0/16", 8443, 8443),
        ("validation-hook-test-listener-in", "validation-hook-id", 8443, 8443),
    ]


def test_configured_client_cidrs_replace_the_vpc_cidr_on_production_ports():
    plan = _plan(**{"loadBalancer.clientCidrs": ["10.99.0.0/16", "192.168.10.0/24"]})
    production = [r for r in _rules(plan, INGRESS, "alb-alb-id") if r[2] == 80]
    assert production == [
        ("alb-alb-80-10.99.0.0-16", "10.99.0.0/16", 80, 80),
        ("alb-alb-80-192.168.10.0-24", "192.168.10.0/24", 80, 80),
    ]


def test_the_hook_runs_in_the_private_subnets_with_its_own_security_group():
    function = inputs(_plan(), "aws:lambda/function:Function", "validation-hook")
    assert function["vpcConfig"] == {
        "subnetIds": PRIVATE_SUBNETS,
        "securityGroupIds": ["validation-hook-id"],
    }


def test_the_hook_reaches_the_test_listener_by_security_group_and_codedeploy_inside_the_vpc():
    plan = _plan()
    assert _rules(plan, EGRESS, "validation-hook-id") == [
        ("validation-hook-https-out", "10.20.0.0/16", 443, 443),
        ("validation-hook-test-listener-out", "alb-alb-id", 8443, 8443),
    ]
    assert inputs(plan, EGRESS, "validation-hook-test-listener-out") == {
        "securityGroupId": "validation-hook-id",
        "ipProtocol": "tcp",
        "fromPort": 8443,
        "toPort": 8443,
        "referencedSecurityGroupId": "alb-alb-id",
        "description": "Probes to the internal load balancer's test listener",
    }
    assert inputs(plan, INGRESS, "validation-hook-test-listener-in") == {
        "securityGroupId": "alb-alb-id",
        "ipProtocol": "tcp",
        "fromPort": 8443,
        "toPort": 8443,
        "referencedSecurityGroupId": "validation-hook-id",
        "description": "Test listener from the validation hook",
    }


def test_without_nat_the_network_has_exactly_the_endpoints_the_program_needs():
    plan = _plan()
    assert plan.of_type("aws:ec2/natGateway:NatGateway") == []
    assert plan.of_type("aws:ec2/eip:Eip") == []
    assert sorted(r.inputs["serviceName"] for r in plan.of_type(ENDPOINT)) == [
        f"com.amazonaws.eu-west-1.{s}"
        # dev's secrets are in Secrets Manager only: no SSM endpoint.
        for s in ("codedeploy", "ecr.api", "ecr.dkr", "logs", "s3", "secretsmanager")
    ]
    assert inputs(plan, ENDPOINT, "network-codedeploy") == {
        "vpcId": "network-id",
        "serviceName": "com.amazonaws.eu-west-1.codedeploy",
        "vpcEndpointType": "Interface",
        "privateDnsEnabled": True,
        "subnetIds": PRIVATE_SUBNETS,
        "securityGroupIds": ["network-endpoints-id"],
        "tags": {
            "environment": "dev",
            "team": "platform",
            "ecs-delivery:project": "ecs-delivery",
            "ecs-delivery:stack": "dev",
            "Name": "network-codedeploy",
        },
    }


def test_nothing_of_the_internal_stack_is_open_to_the_world():
    plan = _plan()
    assert [r.name for r in plan.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"] == []


def test_an_internal_load_balancer_with_nat_keeps_the_codedeploy_api_through_nat():
    plan = make_plan("dev", overrides={"loadBalancer.internal": True})
    assert _rules(plan, EGRESS, "validation-hook-id")[0] == (
        "validation-hook-https-out",
        "0.0.0.0/0",
        443,
        443,
    )
    assert plan.of_type(ENDPOINT)[0].inputs["serviceName"] == "com.amazonaws.eu-west-1.s3"
    assert len(plan.of_type(ENDPOINT)) == 1

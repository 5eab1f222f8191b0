"""examples/library: a user's own program on the components, planned without a stack config."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.offline import plan as plan_tool
from tests.support.plans import documents
from tests.support.registrations import inputs, types

EXAMPLE = plan_tool.ROOT / "examples" / "library"
VPC = "vpc-0fedcba9876543210"
PUBLIC = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
PRIVATE = ["subnet-0000000000000001a", "subnet-0000000000000001b"]
API_ROLE = "arn:aws:iam::123456789012:role/team-api"
CONFIG = {
    "aws:region": "eu-west-1",
    "shop:vpcId": VPC,
    "shop:vpcCidr": "10.42.0.0/16",
    "shop:publicSubnetIds": PUBLIC,
    "shop:privateSubnetIds": PRIVATE,
    "shop:apiTaskRoleArn": API_ROLE,
}


@pytest.fixture(scope="module")
def example() -> plan_tool.Plan:
    return plan_tool.run("dev", root=EXAMPLE, config=CONFIG)


def test_the_example_creates_nothing_of_the_existing_vpc(example):
    assert (
        types(example)
        & {
            "aws:ec2/vpc:Vpc",
            "aws:ec2/subnet:Subnet",
            "aws:ec2/natGateway:NatGateway",
            "aws:ec2/internetGateway:InternetGateway",
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "aws:ec2/routeTable:RouteTable",
        }
        == set()
    )
    alb = inputs(example, "aws:lb/loadBalancer:LoadBalancer", "alb")
    assert alb["subnets"] == PUBLIC
    assert inputs(example, "aws:ec2/securityGroup:SecurityGroup", "alb-alb")["vpcId"] == VPC
    for color in ("blue", "green"):
        group = inputs(example, "aws:lb/targetGroup:TargetGroup", f"alb-api-{color}")
        assert group["vpcId"] == VPC


def test_the_example_runs_two_codedeploy_services_in_the_private_subnets(example):
    cluster_arn = "arn:aws:ecs:eu-west-1:123456789012:cluster/shop-dev"
    for name in ("api", "web"):
        service = inputs(example, "aws:ecs/service:Service", name)
        assert service["cluster"] == cluster_arn
        assert service["deploymentController"] == {"type": "CODE_DEPLOY"}
        assert service["networkConfiguration"] == {
            "assignPublicIp": False,
            "securityGroups": [f"{name}-tasks-id"],
            "subnets": PRIVATE,
        }
    groups = example.of_type("aws:codedeploy/deploymentGroup:DeploymentGroup")
    assert sorted(g.inputs["ecsService"]["serviceName"] for g in groups) == ["api", "web"]
    assert {g.inputs["ecsService"]["clusterName"] for g in groups} == {"shop-dev"}
    rollouts = example.of_type("pulumi-python:dynamic/rollout:ServiceRollout")
    assert sorted(r.name for r in rollouts) == ["api-rollout", "web-rollout"]


def test_the_api_runs_with_the_given_role_and_codedeploy_may_pass_exactly_it(example):
    assert {r.name for r in example.of_type("aws:iam/role:Role")} == {
        "api-execution",
        "web-execution",
        "web-task",
        "codedeploy-api",
        "codedeploy-web",
    }
    api = inputs(example, "aws:ecs/taskDefinition:TaskDefinition", "api")
    web = inputs(example, "aws:ecs/taskDefinition:TaskDefinition", "web")
    assert api["taskRoleArn"] == API_ROLE
    # CodeDeploy's are the only PassRoles here (found by content: names are the components'),
    # one per deployment group's role, each [task role, execution role] of its own service.
    passed = {
        name: stmt["Resource"]
        for _, name, document in documents(example)
        for stmt in document["Statement"]
        if stmt["Action"] == "iam:PassRole"
    }
    assert passed == {
        "codedeploy-web": [web["taskRoleArn"], web["executionRoleArn"]],
        "codedeploy-api": [API_ROLE, api["executionRoleArn"]],
    }
    assert example.outputs["services"]["api"]["taskRoleArn"] == API_ROLE


def test_the_example_names_nothing_and_gets_the_names_region_and_account_derived(example):
    # The program gives no name, region or account: project shop, stack dev, the provider's
    # eu-west-1 and the simulated account make every one of them.
    assert inputs(example, "aws:ecs/cluster:Cluster", "cluster")["name"] == "shop-dev"
    assert example.outputs["clusterName"] == "shop-dev"
    application = inputs(example, "aws:codedeploy/application:Application", "codedeploy")
    assert application["name"] == "shop-dev"
    bucket = inputs(example, "aws:s3/bucket:Bucket", "artifacts")["bucket"]
    assert bucket == "shop-dev-123456789012-eu-west-1-artifacts"
    for name in ("api", "web"):
        task = inputs(example, "aws:ecs/taskDefinition:TaskDefinition", name)
        assert task["family"] == f"shop-dev-{name}-template"
        rollout = inputs(example, "pulumi-python:dynamic/rollout:ServiceRollout", f"{name}-rollout")
        assert (rollout["family"], rollout["region"]) == (f"shop-dev-{name}", "eu-west-1")


def test_the_example_plans_from_its_own_stack_file(example):
    # `ecs-delivery plan --stack dev` in examples/library reads Pulumi.dev.yaml.
    from_file = plan_tool.run("dev", root=EXAMPLE)
    assert [r.urn for r in from_file.resources] == [r.urn for r in example.resources]
    assert json.dumps(from_file.outputs["services"]["api"]["taskRoleArn"]) == (
        '"arn:aws:iam::123456789012:role/shop-api"'
    )

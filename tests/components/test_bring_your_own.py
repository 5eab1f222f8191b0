"""Bring your own: each existing resource given to a component replaces what it would create."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from ecs_delivery.components import delivery, platform
from ecs_delivery.components.config import parse
from ecs_delivery.components.fargate_service import (
    ExistingCluster,
    FargateService,
    FargateServiceArgs,
)
from ecs_delivery.components.load_balancer import (
    ExistingLoadBalancer,
    HealthCheck,
    LoadBalancer,
    LoadBalancerArgs,
    ServiceRoute,
)
from ecs_delivery.components.network import ExistingNetwork
from ecs_delivery.components.scheduled_task import ScheduledTask, ScheduledTaskArgs
from ecs_delivery.components.task_definition import Container
from ecs_delivery.offline.plan import ROOT, Plan
from tests.support.plans import documents
from tests.support.registrations import inputs, register, types

ACCOUNT = "123456789012"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-web-app"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-web-agent"
GROUPS = ["sg-0aaa", "sg-0bbb"]
SUBNETS = ["subnet-0a", "subnet-0b"]
CLUSTER_ARN = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/shop"
ALB_ARN = f"arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}:loadbalancer/app/shop/50dc6c495c0c9188"
PROD_LISTENER = f"arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}:listener/app/shop/50dc/aaa"
TEST_LISTENER = f"arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}:listener/app/shop/50dc/bbb"

ROLE_TYPES = {"aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"}
GROUP_TYPES = {
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
}
GROUP_RULE_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GROUP_RULE_OUT = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def _container(name: str, port: int = 8080) -> Container:
    return Container(
        name=name,
        image="public.ecr.aws/nginx/nginx:1.27",
        port=port,
        readonly_root_filesystem=True,
        user="1000",
    )


def _service_args(**overrides) -> FargateServiceArgs:
    values = dict(
        cluster_arn=CLUSTER_ARN,
        cluster_name="shop",
        service_name="web",
        family="shop-web",
        template_family="shop-web-template",
        container=_container("web"),
        cpu=256,
        memory=512,
        desired_count=2,
        subnet_ids=SUBNETS,
        target_group_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1",
        region="eu-west-1",
        account_id=ACCOUNT,
        log_retention_days=30,
        health_check_grace_period_seconds=30,
        cpu_architecture="X86_64",
        vpc_id="vpc-0123",
        vpc_cidr="10.1.0.0/16",
        load_balancer_security_group_id="sg-0alb",
        kms_key_arn=None,
    )
    return FargateServiceArgs(**{**values, **overrides})


def _task_args(**overrides) -> ScheduledTaskArgs:
    values = dict(
        task_name="report",
        family="shop-report",
        container=_container("report", port=0),
        cpu=256,
        memory=512,
        schedule="rate(1 hour)",
        timezone="UTC",
        enabled=True,
        retry_attempts=1,
        cluster_arn=CLUSTER_ARN,
        subnet_ids=SUBNETS,
        region="eu-west-1",
        account_id=ACCOUNT,
        log_retention_days=30,
        vpc_id="vpc-0123",
        vpc_cidr="10.1.0.0/16",
        kms_key_arn=None,
        cpu_architecture="X86_64",
    )
    return ScheduledTaskArgs(**{**values, **overrides})


# --- FargateService ------------------------------------------------------------------------


def test_a_service_given_its_roles_creates_none_and_its_task_definition_names_them():
    plan = register(
        lambda: FargateService(
            "web", _service_args(task_role_arn=TASK_ROLE, execution_role_arn=EXECUTION_ROLE)
        )
    )
    assert types(plan) & ROLE_TYPES == set()
    task = inputs(plan, TASK, "web")
    assert (task["taskRoleArn"], task["executionRoleArn"]) == (TASK_ROLE, EXECUTION_ROLE)
    # Only the roles were brought: the service's own security group is still created.
    assert plan.named("aws:ec2/securityGroup:SecurityGroup", "web-tasks")


def test_a_service_given_one_role_creates_only_the_other():
    plan = register(lambda: FargateService("web", _service_args(task_role_arn=TASK_ROLE)))
    assert [r.name for r in plan.of_type("aws:iam/role:Role")] == ["web-execution"]
    task = inputs(plan, TASK, "web")
    assert task["taskRoleArn"] == TASK_ROLE
    assert task["executionRoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/web-execution-")


def test_a_service_given_security_groups_creates_no_group_or_rule_and_runs_in_the_given_ones():
    plan = register(
        lambda: FargateService(
            "web",
            _service_args(
                security_group_ids=GROUPS,
                vpc_id=None,
                vpc_cidr=None,
                load_balancer_security_group_id=None,
            ),
        )
    )
    assert types(plan) & GROUP_TYPES == set()
    network = inputs(plan, SERVICE, "web")["networkConfiguration"]
    assert network == {"assignPublicIp": False, "securityGroups": GROUPS, "subnets": SUBNETS}
    assert {r.name for r in plan.of_type("aws:iam/role:Role")} == {"web-execution", "web-task"}


def test_a_service_without_security_groups_names_the_network_inputs_it_needs():
    args = _service_args(vpc_id=None, load_balancer_security_group_id=None)
    with pytest.raises(ValueError) as error:
        FargateService("web", args)
    assert str(error.value) == (
        "FargateService 'web': without security_group_ids the service creates its own group and "
        "needs vpc_id, load_balancer_security_group_id; pass them or security_group_ids"
    )


# --- ScheduledTask -------------------------------------------------------------------------


def _scheduler_pass_role(plan) -> dict:
    document = json.loads(
        inputs(plan, "aws:iam/rolePolicy:RolePolicy", "task-report-scheduler")["policy"]
    )
    return next(s for s in document["Statement"] if s["Sid"] == "PassTaskRoles")


def test_a_scheduled_task_given_its_roles_creates_none_and_the_scheduler_passes_exactly_them():
    plan = register(
        lambda: ScheduledTask(
            "task-report", _task_args(task_role_arn=TASK_ROLE, execution_role_arn=EXECUTION_ROLE)
        )
    )
    # The scheduler's own role is all that remains.
    assert [r.name for r in plan.of_type("aws:iam/role:Role")] == ["task-report-scheduler"]
    task = inputs(plan, TASK, "task-report")
    assert (task["taskRoleArn"], task["executionRoleArn"]) == (TASK_ROLE, EXECUTION_ROLE)
    assert _scheduler_pass_role(plan)["Resource"] == [EXECUTION_ROLE, TASK_ROLE]


def test_a_scheduled_task_given_security_groups_creates_no_group_and_runs_in_the_given_ones():
    plan = register(
        lambda: ScheduledTask(
            "task-report", _task_args(security_group_ids=GROUPS, vpc_id=None, vpc_cidr=None)
        )
    )
    assert types(plan) & GROUP_TYPES == set()
    schedule = inputs(plan, "aws:scheduler/schedule:Schedule", "task-report")
    assert schedule["target"]["ecsParameters"]["networkConfiguration"] == {
        "assignPublicIp": False,
        "securityGroups": GROUPS,
        "subnets": SUBNETS,
    }


def test_a_scheduled_task_without_security_groups_names_the_network_inputs_it_needs():
    with pytest.raises(ValueError, match=r"needs vpc_cidr; pass them or security_group_ids$"):
        ScheduledTask("task-report", _task_args(vpc_cidr=None))


# --- LoadBalancer --------------------------------------------------------------------------

ROUTE = ServiceRoute(
    name="web",
    port=8080,
    health_check=HealthCheck(
        path="/health",
        matcher="200",
        interval_seconds=10,
        timeout_seconds=5,
        healthy_threshold=2,
        unhealthy_threshold=2,
    ),
    deregistration_delay_seconds=10,
    path_patterns=["/*"],
    host_headers=[],
    priority=100,
)
EXISTING_ALB = ExistingLoadBalancer(
    arn=ALB_ARN,
    security_group_id="sg-0alb",
    production_listener_arn=PROD_LISTENER,
    test_listener_arn=TEST_LISTENER,
    dns_name="shop-1234.eu-west-1.elb.amazonaws.com",
    https=True,
)


def _load_balancer_args(**overrides) -> LoadBalancerArgs:
    values = dict(
        vpc_id="vpc-0123",
        services=[ROUTE],
        ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        test_listener_port=8443,
        deletion_protection=False,
        idle_timeout_seconds=60,
        access_logs=None,
        internal=False,
        client_cidrs=[],
    )
    return LoadBalancerArgs(**{**values, **overrides})


def test_an_existing_load_balancer_gets_only_target_groups_and_rules_on_its_listeners():
    created = {}

    def program():
        created["alb"] = LoadBalancer("alb", _load_balancer_args(existing=EXISTING_ALB))
        created["alb"].arn_suffix.apply(lambda v: created.setdefault("suffix", v))
        created["alb"].test_url.apply(lambda v: created.setdefault("test_url", v))

    plan = register(program)
    assert types(plan) == {
        "ecs-delivery:load-balancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:lb/listenerRule:ListenerRule",
    }
    for color in ("blue", "green"):
        assert (
            inputs(plan, "aws:lb/targetGroup:TargetGroup", f"alb-web-{color}")["vpcId"]
            == "vpc-0123"
        )
    rules = "aws:lb/listenerRule:ListenerRule"
    assert inputs(plan, rules, "alb-web-production")["listenerArn"] == PROD_LISTENER
    assert inputs(plan, rules, "alb-web-test")["listenerArn"] == TEST_LISTENER
    # CodeDeploy's alarms name the load balancer by its ARN suffix.
    assert created["suffix"] == "app/shop/50dc6c495c0c9188"
    assert created["test_url"] == "https://shop-1234.eu-west-1.elb.amazonaws.com:8443"


def test_a_created_load_balancer_needs_the_vpc_cidr_and_public_subnets():
    with pytest.raises(ValueError) as error:
        LoadBalancer("alb", _load_balancer_args(vpc_cidr="10.1.0.0/16"))
    assert str(error.value) == (
        "LoadBalancer 'alb': a created load balancer needs vpc_cidr and public_subnet_ids; "
        "pass them, or an existing load balancer (existing=...)"
    )


# --- The composition: platform.build with an existing network, cluster and load balancer ----

EXISTING_NETWORK = ExistingNetwork(
    vpc_id="vpc-0123", vpc_cidr="10.1.0.0/16", private_subnet_ids=SUBNETS
)
CREATED_ELSEWHERE = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:ec2/flowLog:FlowLog",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ecs/cluster:Cluster",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/listener:Listener",
}


def _dev_config():
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    return parse({k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("ecs-delivery:")})


ENV = platform.Environment(
    project="shop",
    stack="dev",
    region="eu-west-1",
    account_id=ACCOUNT,
    availability_zones=["eu-west-1a", "eu-west-1b"],
)


def _build_dev(existing: platform.Existing, *, with_delivery: bool = False) -> Plan:
    image = "public.ecr.aws/nginx/nginx:1.27"

    def program():
        cfg = _dev_config()
        built = platform.build(
            cfg,
            ENV,
            dict.fromkeys(cfg.services, image),
            {"nightly-report": image},
            existing=existing,
        )
        if with_delivery:
            delivery.build(cfg, ENV, built, None)

    return register(program)


def test_the_platform_in_an_existing_vpc_cluster_and_load_balancer_creates_none_of_them():
    plan = _build_dev(
        platform.Existing(
            network=EXISTING_NETWORK,
            cluster=ExistingCluster(arn=CLUSTER_ARN, name="shop"),
            load_balancer=EXISTING_ALB,
        )
    )
    assert types(plan) & CREATED_ELSEWHERE == set()
    for name in ("api", "web"):
        service = inputs(plan, SERVICE, name)
        assert service["cluster"] == CLUSTER_ARN
        assert service["networkConfiguration"]["subnets"] == SUBNETS
        assert inputs(plan, "aws:ec2/securityGroup:SecurityGroup", f"{name}-tasks")["vpcId"] == (
            "vpc-0123"
        )
        # The tasks admit the existing load balancer's group, and reach the existing VPC's CIDR.
        ingress = inputs(plan, GROUP_RULE_IN, f"{name}-from-alb")
        assert ingress["referencedSecurityGroupId"] == "sg-0alb"
        assert inputs(plan, GROUP_RULE_OUT, f"{name}-vpc-out")["cidrIpv4"] == "10.1.0.0/16"
    assert inputs(plan, "aws:lb/listenerRule:ListenerRule", "alb-web-test")["listenerArn"] == (
        TEST_LISTENER
    )
    schedule = inputs(plan, "aws:scheduler/schedule:Schedule", "task-nightly-report")
    assert schedule["target"]["arn"] == CLUSTER_ARN
    assert schedule["target"]["ecsParameters"]["networkConfiguration"]["subnets"] == SUBNETS


def test_the_platform_in_an_existing_vpc_still_creates_its_load_balancer_in_the_public_subnets():
    public = ["subnet-0pa", "subnet-0pb"]
    plan = _build_dev(
        platform.Existing(network=dataclasses.replace(EXISTING_NETWORK, public_subnet_ids=public))
    )
    assert types(plan) & {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"} == set()
    assert inputs(plan, "aws:lb/loadBalancer:LoadBalancer", "alb")["subnets"] == public
    assert inputs(plan, "aws:ec2/securityGroup:SecurityGroup", "alb-alb")["vpcId"] == "vpc-0123"
    assert plan.named("aws:ecs/cluster:Cluster", "cluster").inputs["name"] == "shop-dev"


def test_existing_roles_of_a_service_are_exactly_what_codedeploy_and_the_pipeline_may_pass():
    plan = _build_dev(
        platform.Existing(
            roles={
                "web": platform.ExistingRoles(
                    task_role_arn=TASK_ROLE, execution_role_arn=EXECUTION_ROLE
                )
            }
        ),
        with_delivery=True,
    )
    assert {r.name for r in plan.of_type("aws:iam/role:Role")} & {
        "web-task",
        "web-execution",
    } == set()
    # Found by content, not by resource name: which roles pass, not what the policies are called.
    passed = [
        stmt["Resource"]
        for _, _, document in documents(plan)
        for stmt in document["Statement"]
        if stmt.get("Sid") == "PassTaskRoles"
    ]
    api = inputs(plan, TASK, "api")
    report = inputs(plan, TASK, "task-nightly-report")  # follows api: api's ships move it
    mailer = inputs(plan, TASK, "mailer")
    # web's CodeDeploy role passes exactly web's roles; the pipeline's deploy step every
    # target's and its followers', in name order, [task, execution] each.
    assert sorted(r for r in passed if TASK_ROLE in r) == sorted(
        [
            [TASK_ROLE, EXECUTION_ROLE],
            [
                api["taskRoleArn"],
                api["executionRoleArn"],
                report["taskRoleArn"],
                report["executionRoleArn"],
                mailer["taskRoleArn"],
                mailer["executionRoleArn"],
                TASK_ROLE,
                EXECUTION_ROLE,
            ],
        ]
    )
    assert [arn for r in passed for arn in r if ":role/web-" in arn] == []
    # The nightly report still runs with roles of its own, which its scheduler passes.
    report = inputs(plan, TASK, "task-nightly-report")
    assert [report["executionRoleArn"], report["taskRoleArn"]] in passed


def test_a_web_acl_is_associated_with_an_existing_load_balancer_by_its_arn():
    """The WAF association reads the load balancer's ARN, which an existing one has too
    (it used to reach for the created ALB resource, which an existing one has not)."""
    image = "public.ecr.aws/nginx/nginx:1.27"

    def program():
        raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
        values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("ecs-delivery:")}
        values["loadBalancer"] = {**values.get("loadBalancer", {}), "waf": {"rateLimit": 1000}}
        cfg = parse(values)
        platform.build(
            cfg,
            ENV,
            dict.fromkeys(cfg.services, image),
            {"nightly-report": image},
            existing=platform.Existing(network=EXISTING_NETWORK, load_balancer=EXISTING_ALB),
        )

    plan = register(program)
    association = inputs(plan, "aws:wafv2/webAclAssociation:WebAclAssociation", "waf")
    assert association["resourceArn"] == ALB_ARN


def test_alias_records_for_an_existing_load_balancer_without_its_zone_id_are_refused():
    image = "public.ecr.aws/nginx/nginx:1.27"

    def program():
        raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
        values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("ecs-delivery:")}
        cfg = parse(values)
        platform.build(
            cfg,
            ENV,
            dict.fromkeys(cfg.services, image),
            {"nightly-report": image},
            existing=platform.Existing(network=EXISTING_NETWORK, load_balancer=EXISTING_ALB),
        )

    with pytest.raises(ValueError, match=r"ExistingLoadBalancer\(zone_id=\.\.\.\)") as refused:
        register(program)
    assert str(refused.value).startswith(
        "loadBalancer.hostedZone: alias records need the load balancer's hosted zone id"
    )

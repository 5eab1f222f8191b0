"""CodeDeploy: blue/green deployment groups, alarms on both target groups, traffic configs."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pulumi
import pytest
import yaml

from ecs_delivery.components import codedeploy, delivery
from ecs_delivery.components.codedeploy import (
    AlarmSettings,
    CodeDeploymentArgs,
    DeploymentTarget,
    TargetGroupRef,
    check_targets,
    deployment_controller_of,
)
from ecs_delivery.components.config import ConfigError, parse
from ecs_delivery.components.platform import Environment
from tests.conftest import make_plan
from tests.support.plans import ALARM, CONFIG, GROUP, ROOT, inputs, policy, statement
from tests.support.registrations import register

ROLLBACK = {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}


def _group_expectation(plan, service: str, *, config: str, wait: int, prod: bool) -> dict:
    group = inputs(plan, GROUP, f"codedeploy-{service}")
    route = group["loadBalancerInfo"]["targetGroupPairInfo"]
    listener = "alb-https-" if prod else "alb-http-"
    assert route["prodTrafficRoute"]["listenerArns"][0].startswith(
        f"arn:aws:lb:eu-west-1:123456789012:listener/{listener}"
    )
    assert route["testTrafficRoute"]["listenerArns"][0].startswith(
        "arn:aws:lb:eu-west-1:123456789012:listener/alb-test-"
    )
    blue, green = (t["name"] for t in route["targetGroups"])
    assert blue.startswith(f"alb-{service}-blue-") and green.startswith(f"alb-{service}-green-")
    # The group's own role (auto-named from `codedeploy-<service>`).
    assert group["serviceRoleArn"].startswith(
        f"arn:aws:iam::123456789012:role/codedeploy-{service}-"
    )
    prefix = f"ecs-delivery-{plan.stack}-{service}"
    kinds = ["target-5xx", "unhealthy-hosts"] + (["latency-p99"] if prod else [])
    return {
        "appName": f"ecs-delivery-{plan.stack}",
        "deploymentGroupName": service,
        "serviceRoleArn": group["serviceRoleArn"],
        "deploymentConfigName": config,
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "blueGreenDeploymentConfig": {
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": wait,
            },
        },
        "ecsService": {"clusterName": f"ecs-delivery-{plan.stack}", "serviceName": service},
        "loadBalancerInfo": {
            "targetGroupPairInfo": {
                "prodTrafficRoute": route["prodTrafficRoute"],
                "testTrafficRoute": route["testTrafficRoute"],
                "targetGroups": [{"name": blue}, {"name": green}],
            }
        },
        "autoRollbackConfiguration": ROLLBACK,
        "alarmConfiguration": {
            "enabled": True,
            "ignorePollAlarmFailure": False,
            "alarms": [f"{prefix}-{color}-{kind}" for color in ("blue", "green") for kind in kinds],
        },
        "tags": group["tags"],
    }


def test_dev_groups_shift_all_traffic_at_once_and_terminate_blue_at_once(dev):
    for service in ("api", "web"):
        expected = _group_expectation(
            dev, service, config="CodeDeployDefault.ECSAllAtOnce", wait=0, prod=False
        )
        assert inputs(dev, GROUP, f"codedeploy-{service}") == expected


def test_prod_groups_shift_traffic_per_service_and_keep_blue_for_an_hour(prod):
    assert inputs(prod, GROUP, "codedeploy-web") == _group_expectation(
        prod, "web", config="CodeDeployDefault.ECSCanary10Percent5Minutes", wait=60, prod=True
    )
    assert inputs(prod, GROUP, "codedeploy-api") == _group_expectation(
        prod, "api", config="CodeDeployDefault.ECSLinear10PercentEvery1Minutes", wait=60, prod=True
    )


def test_groups_are_created_after_their_ecs_service_alarms_and_role_policy(dev):
    depends = dev.named(GROUP, "codedeploy-web").options["dependsOn"]
    assert any(d.endswith("aws:ecs/service:Service::web") for d in depends)
    assert any(d.endswith("aws:iam/rolePolicy:RolePolicy::codedeploy-web") for d in depends)
    assert not any(d.endswith("aws:iam/rolePolicy:RolePolicy::codedeploy-api") for d in depends)
    assert (
        sum(d.endswith(("web-blue-target-5xx", "web-green-unhealthy-hosts")) for d in depends) == 2
    )


def _alarms(plan, service: str) -> dict[str, dict]:
    return {
        a.inputs["name"]: inputs(plan, ALARM, a.name)
        for a in plan.of_type(ALARM)
        if a.inputs["name"].startswith(f"ecs-delivery-{plan.stack}-{service}-")
    }


@pytest.mark.parametrize("service", ["api", "web"])
def test_dev_alarms_watch_5xx_and_unhealthy_hosts_on_both_target_groups(dev, service):
    alarms = _alarms(dev, service)
    assert len(alarms) == 4
    for color in ("blue", "green"):
        errors = alarms[f"ecs-delivery-dev-{service}-{color}-target-5xx"]
        unhealthy = alarms[f"ecs-delivery-dev-{service}-{color}-unhealthy-hosts"]
        for alarm in (errors, unhealthy):
            assert alarm["namespace"] == "AWS/ApplicationELB"
            assert alarm["dimensions"]["LoadBalancer"].startswith("app/alb-")
            assert alarm["dimensions"]["TargetGroup"].startswith(
                f"targetgroup/alb-{service}-{color}-"
            )
            assert (alarm["period"], alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (
                60,
                2,
                2,
            )
            assert alarm["treatMissingData"] == "notBreaching"
            assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert (errors["metricName"], errors["statistic"], errors["threshold"]) == (
            "HTTPCode_Target_5XX_Count", "Sum", 5,
        )  # fmt: skip
        assert (unhealthy["metricName"], unhealthy["statistic"], unhealthy["threshold"]) == (
            "UnHealthyHostCount", "Maximum", 1,
        )  # fmt: skip


def test_prod_adds_a_p99_latency_alarm_per_target_group(prod):
    alarms = _alarms(prod, "web")
    assert len(alarms) == 6
    for color in ("blue", "green"):
        latency = alarms[f"ecs-delivery-prod-web-{color}-latency-p99"]
        assert latency["metricName"] == "TargetResponseTime"
        assert latency["extendedStatistic"] == "p99" and "statistic" not in latency
        assert latency["threshold"] == 1.5
        assert latency["comparisonOperator"] == "GreaterThanThreshold"
        assert latency["dimensions"]["TargetGroup"].startswith(f"targetgroup/alb-web-{color}-")


def test_custom_canary_and_linear_configs_are_created_and_used_by_the_groups():
    deployment = {
        "config": "canary5",
        "terminationWaitMinutes": 0,
        "customConfigs": {
            "canary5": {"type": "canary", "percent": 5, "intervalMinutes": 3},
            "linear20": {"type": "linear", "percent": 20, "intervalMinutes": 2},
        },
    }
    plan = make_plan("dev", overrides={"deployment": deployment})
    assert inputs(plan, CONFIG, "codedeploy-config-canary5") == {
        "deploymentConfigName": "ecs-delivery-dev-canary5",
        "computePlatform": "ECS",
        "trafficRoutingConfig": {
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"percentage": 5, "interval": 3},
        },
    }
    assert inputs(plan, CONFIG, "codedeploy-config-linear20")["trafficRoutingConfig"] == {
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"percentage": 20, "interval": 2},
    }
    for service in ("api", "web"):
        assert (
            inputs(plan, GROUP, f"codedeploy-{service}")["deploymentConfigName"]
            == "ecs-delivery-dev-canary5"
        )
        assert any(
            d.endswith("DeploymentConfig::codedeploy-config-canary5")
            for d in plan.named(GROUP, f"codedeploy-{service}").options["dependsOn"]
        )
    # The pipeline's Deploy action may read the configuration its deployments use.
    configs = statement(policy(plan, "pipeline-codebuild-deploy"), "DeploymentConfigs")["Resource"]
    assert configs == [
        "arn:aws:codedeploy:eu-west-1:123456789012:deploymentconfig:ecs-delivery-dev-canary5"
    ]


def test_alarm_periods_shorter_than_the_load_balancer_metrics_are_refused():
    deployment = {"config": "CodeDeployDefault.ECSAllAtOnce", "alarms": {"periodSeconds": 30}}
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"deployment": deployment})
    assert error.value.problems == [
        "deployment.alarms.periodSeconds: 30 is shorter than the load balancer's 60-second "
        "metrics (the alarms would never see data); use 60 or 300"
    ]


# --- refusing services that CodeDeploy cannot deploy ------------------------------------------


def _target(service: str, controller: str | None) -> DeploymentTarget:
    group = TargetGroupRef(name=f"{service}-tg", arn_suffix=f"targetgroup/{service}/1")
    return DeploymentTarget(
        service=service,
        group_name=service,
        cluster_name="c",
        service_name=service,
        deployment_controller=controller,
        deployment_config="CodeDeployDefault.ECSAllAtOnce",
        blue=group,
        green=group,
        production_listener_arn="prod",
        test_listener_arn="test",
        role_arns=[],
    )


def test_the_deployment_controller_is_read_from_the_component_or_its_args():
    assert deployment_controller_of(SimpleNamespace(deployment_controller="ECS")) == "ECS"
    ecs_args = SimpleNamespace(deployment_controller="EXTERNAL")
    assert deployment_controller_of(SimpleNamespace(args=ecs_args)) == "EXTERNAL"
    assert deployment_controller_of(SimpleNamespace()) is None


def test_more_than_ten_alarms_per_group_are_refused(monkeypatch):
    monkeypatch.setattr(codedeploy, "MAX_ALARMS_PER_GROUP", 5)
    settings = AlarmSettings(
        target_5xx_count=5, unhealthy_hosts=1, latency_p99_seconds=1.0, evaluation_periods=2,
        period_seconds=60,
    )  # fmt: skip
    problems = check_targets([_target("web", "CODE_DEPLOY")], settings, [], "p-dev")
    assert problems == [
        "deployment.alarms: 6 alarms for deployment group web; CodeDeploy allows at most 5 per group"
    ]


def _fake_platform(controllers: dict[str, str | None]) -> SimpleNamespace:
    """A Platform-shaped object of plain values, with FargateService-like services."""

    def arn(name: str) -> SimpleNamespace:
        return SimpleNamespace(arn=name, name=name, arn_suffix=name)

    return SimpleNamespace(
        network=SimpleNamespace(vpc_id="vpc", private_subnet_ids=["a", "b"]),
        cluster=SimpleNamespace(name="ecs-delivery-dev"),
        load_balancer=SimpleNamespace(
            arn_suffix="alb",
            production_listener_arn="prod",
            test_listener_arn="test",
            security_group_id="sg",
            test_url="http://alb:8443",
            target_groups={
                s: SimpleNamespace(
                    blue=arn(f"{s}-b"),
                    green=arn(f"{s}-g"),
                    production_rule=arn("r1"),
                    test_rule=arn("r2"),
                )
                for s in controllers
            },
        ),
        services={
            s: SimpleNamespace(
                deployment_controller=c,
                task_role_arn=f"{s}-task",
                execution_role_arn=f"{s}-exec",
                service=None,
            )
            for s, c in controllers.items()
        },
    )


def test_a_service_not_built_for_codedeploy_is_refused_before_any_resource(monkeypatch):
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    cfg = parse({k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("ecs-delivery:")})
    env = Environment(
        project="ecs-delivery",
        stack="dev",
        region="eu-west-1",
        account_id="123456789012",
        availability_zones=["eu-west-1a", "eu-west-1b"],
    )

    def no_resources(*args, **kwargs):
        raise AssertionError("a resource was created before the configuration was refused")

    monkeypatch.setattr(pulumi.ComponentResource, "__init__", no_resources)
    monkeypatch.setattr(pulumi.CustomResource, "__init__", no_resources)
    platform = _fake_platform({"api": "CODE_DEPLOY", "web": "ECS"})
    with pytest.raises(ConfigError) as error:
        delivery.build(cfg, env, platform, None)
    assert error.value.problems == [
        "services.web: its ECS service uses ECS deployment controller; a CodeDeploy blue/green "
        "deployment group needs deploymentController.type CODE_DEPLOY (build the service with "
        "FargateService, or remove the service from CodeDeploy)"
    ]


def test_the_swap_rule_pattern_covers_the_rules_of_exactly_one_listener():
    listener = "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/app/alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
    assert codedeploy.rules_of(listener) == (
        "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:"
        "listener-rule/app/alb/50dc6c495c0c9188/f2f7dc8efc522ab2/*"
    )
    with pytest.raises(ValueError, match="is not a load balancer listener ARN"):
        codedeploy.rules_of("arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/alb/5")


def test_an_omitted_application_prefix_region_or_account_is_derived_from_naming_and_the_provider():
    listener = "arn:aws:elasticloadbalancing:eu-west-2:123456789012:listener/app/lb/50dc/"
    target = dataclasses.replace(
        _target("web", "CODE_DEPLOY"),
        production_listener_arn=f"{listener}a",
        test_listener_arn=f"{listener}b",
    )
    args = CodeDeploymentArgs(
        targets=[target],
        load_balancer_arn_suffix="app/lb/1",
        artifact_bucket_arn="arn:aws:s3:::bucket",
        artifact_prefix="revisions/",
    )
    # register() runs project "library", stack "test"; the provider's region is eu-west-2.
    plan = register(lambda: codedeploy.CodeDeployment("cd", args), region="eu-west-2")
    assert inputs(plan, "aws:codedeploy/application:Application", "cd")["name"] == "library-test"
    assert inputs(plan, GROUP, "cd-web")["appName"] == "library-test"
    assert sorted(inputs(plan, ALARM, a.name)["name"] for a in plan.of_type(ALARM)) == [
        f"library-test-web-{color}-{kind}"
        for color in ("blue", "green")
        for kind in ("target-5xx", "unhealthy-hosts")
    ]
    task_sets = statement(policy(plan, "cd-web"), "TaskSets")["Resource"]
    assert task_sets[0] == "arn:aws:ecs:eu-west-2:123456789012:service/c/web"
    trust = json.loads(inputs(plan, "aws:iam/role:Role", "cd-web")["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }

"""Issue 19, item 1: with `deployment.engine: ecs` the dev stack plans its services on ECS's own
blue/green (exact inputs per strategy), with no CodeDeploy application, group or role."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.offline.simcloud import _digest
from tests.conftest import make_plan
from tests.support.registrations import inputs, policy

SERVICE = "aws:ecs/service:Service"
REGION, ACCOUNT = "eu-west-1", "123456789012"
ECS = {"deployment.engine": "ecs"}


def mock_arn(kind: str, resource: str, name: str) -> str:
    """The ARN the simulated cloud gives a resource of that name (offline/simcloud.py)."""
    return f"arn:aws:{kind}:{REGION}:{ACCOUNT}:{resource}/{name}-{_digest(name)[:7]}"


@pytest.fixture(scope="module")
def ecs_plan():
    return make_plan("dev", overrides=ECS)


def test_the_ecs_engine_plans_all_at_once_as_blue_green_with_the_termination_wait_as_bake(
    ecs_plan,
):
    web = inputs(ecs_plan, SERVICE, "web")
    assert web["deploymentController"] == {"type": "ECS"}
    assert (
        web["deploymentConfiguration"]
        == {
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": "0",  # dev's terminationWaitMinutes
            "lifecycleHooks": [
                {
                    "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                    "targetType": "AWS_LAMBDA",
                    "hookTargetArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
                    "ecs-delivery-dev-validation-hook",
                    "roleArn": f"arn:aws:iam::{ACCOUNT}:role/web-blue-green-{_digest('web-blue-green')[:7]}",
                    "hookDetails": json.dumps({"deploymentGroup": "web"}),
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"deployment.config": "CodeDeployDefault.ECSCanary10Percent5Minutes"},
            {
                "strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": "5"},
            },
        ),
        (
            {
                "deployment.config": "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
                "deployment.timeoutMinutes": 60,
                "pipeline.buildTimeoutMinutes": 120,
            },
            {
                "strategy": "LINEAR",
                "linearConfiguration": {"stepPercent": 10, "stepBakeTimeInMinutes": "3"},
            },
        ),
        (
            {
                "deployment.config": "quarters",
                "deployment.customConfigs.quarters": {
                    "type": "linear",
                    "percent": 25,
                    "intervalMinutes": 2,
                },
                "deployment.terminationWaitMinutes": 15,
            },
            {
                "strategy": "LINEAR",
                "bakeTimeInMinutes": "15",
                "linearConfiguration": {"stepPercent": 25, "stepBakeTimeInMinutes": "2"},
            },
        ),
        (
            {
                "services.api.deploymentConfig": "bird",
                "deployment.customConfigs.bird": {
                    "type": "canary",
                    "percent": 20,
                    "intervalMinutes": 7,
                },
            },
            {
                "strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 20, "canaryBakeTimeInMinutes": "7"},
            },
        ),
    ],
    ids=["predefined-canary", "predefined-linear", "custom-linear-with-bake", "service-canary"],
)
def test_canary_and_linear_configs_plan_the_matching_ecs_strategy(overrides, expected):
    plan = make_plan("dev", overrides={**ECS, **overrides})
    service = "api" if any(k.startswith("services.api") for k in overrides) else "web"
    planned = inputs(plan, SERVICE, service)["deploymentConfiguration"]
    del planned["lifecycleHooks"]
    assert planned == {"bakeTimeInMinutes": "0", **expected}


def test_the_load_balancer_names_green_as_alternate_and_the_services_own_rules(ecs_plan):
    (balancer,) = inputs(ecs_plan, SERVICE, "web")["loadBalancers"]
    assert balancer == {
        "containerName": "web",
        "containerPort": 8080,
        "targetGroupArn": mock_arn("lb", "targetgroup", "alb-web-blue"),
        "advancedConfiguration": {
            "alternateTargetGroupArn": mock_arn("lb", "targetgroup", "alb-web-green"),
            "productionListenerRule": mock_arn("lb", "listenerrule", "alb-web-production"),
            "testListenerRule": mock_arn("lb", "listenerrule", "alb-web-test"),
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/web-blue-green-{_digest('web-blue-green')[:7]}",
        },
    }


def test_the_existing_alarms_stop_and_roll_back_an_ecs_deployment(ecs_plan):
    planned = sorted(
        r.inputs["name"]
        for r in ecs_plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if r.inputs.get("tags", {}).get("Service") == "web"
    )
    assert planned  # the alarms the CodeDeploy groups used are still created
    alarms = inputs(ecs_plan, SERVICE, "web")["alarms"]
    assert alarms == {"alarmNames": planned, "enable": True, "rollback": True}


def test_no_codedeploy_application_group_role_or_config_is_planned(ecs_plan):
    assert [r.type for r in ecs_plan.resources if r.type.startswith("aws:codedeploy")] == []
    roles = [
        json.loads(r.inputs["assumeRolePolicy"]) for r in ecs_plan.of_type("aws:iam/role:Role")
    ]
    principals = {s["Principal"].get("Service") for doc in roles for s in doc["Statement"]}
    assert "codedeploy.amazonaws.com" not in principals


def test_the_role_ecs_assumes_moves_only_the_services_own_rules_and_target_groups(ecs_plan):
    role = inputs(ecs_plan, "aws:iam/role:Role", "web-blue-green")
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    statements = {s["Sid"]: s for s in policy(ecs_plan, "web-blue-green")["Statement"]}
    assert sorted(statements) == [
        "DescribeLoadBalancing",
        "MoveRules",
        "RegisterTasks",
        "ValidationHook",
    ]
    assert statements["MoveRules"]["Action"] == ["elasticloadbalancing:ModifyRule"]
    assert statements["MoveRules"]["Resource"] == [
        mock_arn("lb", "listenerrule", "alb-web-production"),
        mock_arn("lb", "listenerrule", "alb-web-test"),
    ]
    assert statements["RegisterTasks"]["Resource"] == [
        mock_arn("lb", "targetgroup", "alb-web-blue"),
        mock_arn("lb", "targetgroup", "alb-web-green"),
    ]
    assert statements["ValidationHook"] == {
        "Sid": "ValidationHook",
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction"],
        "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecs-delivery-dev-validation-hook",
    }
    # Describe* has no resource-level permissions in IAM: the only "*".
    assert statements["DescribeLoadBalancing"]["Resource"] == "*"
    assert all(
        a.startswith("elasticloadbalancing:Describe")
        for a in statements["DescribeLoadBalancing"]["Action"]
    )


def test_the_task_definition_stays_out_of_pulumis_direct_control(ecs_plan):
    # ECS starts a deployment on any UpdateService of these: only the deployment core makes it.
    assert ecs_plan.named(SERVICE, "web").options["ignoreChanges"] == [
        "taskDefinition",
        "loadBalancers",
        "networkConfiguration",
        "platformVersion",
        "capacityProviderStrategies",
        "launchType",
    ]


def test_the_service_is_created_once_the_role_ecs_assumes_has_its_policy(ecs_plan):
    service = ecs_plan.named(SERVICE, "web")
    role_policy = ecs_plan.named("aws:iam/rolePolicy:RolePolicy", "web-blue-green")
    assert role_policy.urn in service.options["dependsOn"]


def test_each_service_rolls_out_through_the_ecs_engine_without_a_group(ecs_plan):
    rollout = ecs_plan.named("pulumi-python:dynamic/rollout:ServiceRollout", "web-rollout")
    assert rollout.inputs["engine"] == "ecs"
    assert not any("codedeploy" in d for d in rollout.options["dependsOn"])
    assert any(d.endswith("aws:ecs/service:Service::web") for d in rollout.options["dependsOn"])


def test_releases_deploy_through_the_ecs_engine_named_in_the_inventory(ecs_plan, dev_plan):
    ecs_services = ecs_plan.outputs["releaseInventory"]["services"]
    assert {n: t["engine"] for n, t in ecs_services.items()} == {n: "ecs" for n in ecs_services}
    # No group (ECS deploys the service) and no AppSpec hook (the service's lifecycle hook).
    for target in ecs_services.values():
        assert not {"codedeployApplication", "codedeployGroup", "validationHook"} & set(target)
    # On the CodeDeploy engine only the worker (mailer) is ECS's to deploy.
    dev_services = dev_plan.outputs["releaseInventory"]["services"]
    assert {n: t["engine"] for n, t in dev_services.items()} == {
        "api": "codedeploy",
        "mailer": "ecs",
        "web": "codedeploy",
    }
    assert not any("release engine" in w for w in ecs_plan.warnings)

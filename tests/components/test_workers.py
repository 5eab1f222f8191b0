"""Issue 18, item 2 (and 7's worker part): dev's `mailer` is a worker. It plans an ECS service on
the rolling controller with the circuit breaker and its alarms rolling back, no load balancer
parts at all, a rollout on the ECS engine, and the pipeline and release engine reach it there."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.components.config import ConfigError
from tests.conftest import make_plan
from tests.support.registrations import containers, inputs

SERVICE = "aws:ecs/service:Service"
ROLLOUT = "pulumi-python:dynamic/rollout:ServiceRollout"
ALARMS = ["shop-dev-mailer-errors", "shop-dev-mail-oldest-message"]


# Pulumi.dev.yaml's worker without its Fargate Spot strategy (given here whole, so these tests
# plan it either way; dev's own mailer: tests/components/test_dev_demo.py).
MAILER = {
    "kind": "worker",
    "cpu": 256,
    "memory": 512,
    "desiredCount": 1,
    "command": ["python", "-m", "app.mailer"],
    "autoscaling": {
        "minCapacity": 1,
        "maxCapacity": 4,
        "targetCpuPercent": None,
        "queue": {"name": "shop-dev-mail", "backlogPerTask": 100},
    },
}


def worker_plan(**mailer):
    return make_plan("dev", overrides={"services.mailer": {**MAILER, **mailer}})


@pytest.fixture(scope="module")
def plan():
    return worker_plan(rollbackAlarms=ALARMS)


def test_a_worker_is_an_ecs_service_on_the_rolling_controller_whose_failures_roll_back(plan):
    service = inputs(plan, SERVICE, "mailer")

    assert service["deploymentController"] == {"type": "ECS"}
    assert service["deploymentConfiguration"] == {"strategy": "ROLLING"}
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["alarms"] == {"alarmNames": ALARMS, "enable": True, "rollback": True}
    assert (service["deploymentMinimumHealthyPercent"], service["deploymentMaximumPercent"]) == (
        100,
        200,
    )
    # No load balancer: ECS refuses a grace period without one.
    assert "loadBalancers" not in service
    assert "healthCheckGracePeriodSeconds" not in service


def test_without_rollback_alarms_a_worker_sets_no_alarms_block():
    service = inputs(worker_plan(), SERVICE, "mailer")

    assert "alarms" not in service
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


def test_pulumi_never_owns_what_the_deployment_core_deploys_on_a_worker(plan):
    options = plan.named(SERVICE, "mailer").options

    assert set(options["ignoreChanges"]) >= {
        "taskDefinition",
        "networkConfiguration",
        "platformVersion",
        "capacityProviderStrategies",
        "desiredCount",  # the queue scaling owns it
    }


def test_a_worker_has_no_target_groups_listener_rules_deployment_group_or_alarms_of_ours(plan):
    mailer = {
        (r.type, r.name)
        for r in plan.resources
        if "mailer" in r.name and not r.type.startswith("ecs-delivery:")
    }

    assert mailer == {
        ("aws:appautoscaling/policy:Policy", "mailer-queue"),
        ("aws:appautoscaling/target:Target", "mailer"),
        ("aws:cloudwatch/logGroup:LogGroup", "mailer"),
        ("aws:ec2/securityGroup:SecurityGroup", "mailer-tasks"),
        ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "ecr-mailer"),
        ("aws:ecr/repository:Repository", "ecr-mailer"),
        ("aws:ecs/service:Service", "mailer"),
        ("aws:ecs/taskDefinition:TaskDefinition", "mailer"),
        ("aws:iam/role:Role", "mailer-execution"),
        ("aws:iam/role:Role", "mailer-task"),
        ("aws:iam/rolePolicy:RolePolicy", "mailer-execution"),
        ("aws:iam/rolePolicy:RolePolicy", "mailer-task"),  # it consumes its queue
        ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "mailer-https-out"),
        ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "mailer-vpc-out"),
        (ROLLOUT, "mailer-rollout"),
    }
    assert "mailer" not in plan.outputs["deploymentGroups"]
    assert plan.outputs["services"]["mailer"]["kind"] == "worker"


def test_nothing_reaches_a_workers_tasks(plan):
    group = inputs(plan, "aws:ec2/securityGroup:SecurityGroup", "mailer-tasks")

    assert group["description"] == "Tasks of mailer: no inbound traffic (a worker)"
    assert not [
        r
        for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.startswith("mailer")
    ]


def test_a_workers_container_has_no_port_and_its_bootstrap_keeps_running(plan):
    (mailer,) = [c for c in containers(plan, "mailer") if c["name"] == "mailer"]

    assert "portMappings" not in mailer
    assert mailer["entryPoint"] == ["sleep", "2147483647"]
    assert mailer["dockerLabels"] == {"ecs-delivery.bootstrap": "worker"}


def test_a_worker_rolls_out_on_the_ecs_engine_without_a_port_or_validation_hook(plan):
    rollout = inputs(plan, ROLLOUT, "mailer-rollout")

    assert rollout["engine"] == "ecs"
    assert rollout.get("container_port") is None
    assert rollout.get("validation_hook") is None
    # The web services still deploy through CodeDeploy (dev's deployment.engine).
    assert inputs(plan, ROLLOUT, "web-rollout")["engine"] == "codedeploy"


def test_a_worker_scales_on_its_queue_backlog_per_task(plan):
    policy = inputs(plan, "aws:appautoscaling/policy:Policy", "mailer-queue")
    config = policy["targetTrackingScalingPolicyConfiguration"]

    assert policy["resourceId"] == "service/ecs-delivery-dev/mailer"
    assert config["targetValue"] == 100
    assert config["customizedMetricSpecification"]["metrics"] == [
        {
            "id": "m1",
            "metricStat": {
                "metric": {
                    "namespace": "AWS/SQS",
                    "metricName": "ApproximateNumberOfMessagesVisible",
                    "dimensions": [{"name": "QueueName", "value": "shop-dev-mail"}],
                },
                "stat": "Sum",
            },
            "returnData": False,
        },
        {
            "id": "m2",
            "metricStat": {
                "metric": {
                    "namespace": "ECS/ContainerInsights",
                    "metricName": "RunningTaskCount",
                    "dimensions": [
                        {"name": "ClusterName", "value": "ecs-delivery-dev"},
                        {"name": "ServiceName", "value": "mailer"},
                    ],
                },
                "stat": "Average",
            },
            "returnData": False,
        },
        {
            "id": "backlog",
            "expression": "m1 / m2",
            "label": "Visible messages of shop-dev-mail per task of mailer",
            "returnData": True,
        },
    ]


def test_the_pipeline_ships_a_worker_on_the_ecs_engine_without_a_port(plan):
    project = inputs(plan, "aws:codebuild/project:Project", "pipeline-deploy")
    spec = project["source"]["buildspec"]
    (line,) = [part for part in spec.split("\n") if "--name mailer" in part]

    assert "--engine ecs" in line
    assert "--container-port" not in line


def test_the_release_inventory_deploys_a_worker_on_the_ecs_engine(plan):
    mailer = plan.outputs["releaseInventory"]["services"]["mailer"]

    assert mailer["engine"] == "ecs"
    assert "containerPort" not in mailer
    assert "codedeployGroup" not in mailer
    assert plan.outputs["releaseInventory"]["services"]["web"]["engine"] == "codedeploy"


def test_deployers_may_update_a_worker_through_ecs_on_a_codedeploy_stack(plan):
    document = json.loads(inputs(plan, "aws:iam/policy:Policy", "deployer")["policy"])
    sids = {s.get("Sid") for s in document["Statement"]}

    assert {"Deployments", "EcsEngineServices", "EcsEngineDeployments"} <= sids
    (services,) = [s for s in document["Statement"] if s.get("Sid") == "EcsEngineServices"]
    assert services["Resource"] == ["arn:aws:ecs:eu-west-1:123456789012:service/ecs-delivery-dev/*"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"services.mailer.containerPort": 8080, "services.mailer.healthCheck": {"path": "/x"}},
            [
                "services.mailer.containerPort: a worker has no load balancer; remove it, or set kind: web",
                "services.mailer.healthCheck: a worker has no load balancer; remove it, or set kind: web",
            ],
        ),
        (
            {
                "services.mailer.autoscaling": {
                    "minCapacity": 1,
                    "maxCapacity": 2,
                    "requestsPerTarget": 100,
                }
            },
            [
                "services.mailer.autoscaling.requestsPerTarget: a worker has no load balancer to "
                "count requests on; scale it on targetCpuPercent, targetMemoryPercent or "
                "autoscaling.queue"
            ],
        ),
        (
            {"services.web.rollbackAlarms": ["x"]},
            [
                "services.web.rollbackAlarms: only for kind: worker (a web service rolls back "
                "on deployment.alarms); remove it"
            ],
        ),
    ],
)
def test_a_worker_given_a_load_balancer_key_is_refused_naming_it(overrides, expected):
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"services.mailer": MAILER, **overrides})

    for line in expected:
        assert line in error.value.problems


def test_queue_scaling_without_container_insights_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"services.mailer": MAILER, "containerInsights": False})

    assert (
        "services.mailer.autoscaling.queue: needs containerInsights: true (RunningTaskCount, the "
        "backlog's divisor, comes from Container Insights); set it, or scale the worker on cpu "
        "or memory"
    ) in error.value.problems


# --- FargateService used directly (a library user's program) -------------------------------


def _worker_args(**overrides):
    from ecs_delivery.components.fargate_service import FargateServiceArgs
    from ecs_delivery.components.task_definition import Container
    from ecs_delivery.components.worker import RollingWorker

    values = dict(
        cluster_arn="arn:aws:ecs:eu-west-1:123456789012:cluster/shop",
        cluster_name="shop",
        service_name="mailer",
        family="shop-mailer",
        template_family="shop-mailer-template",
        container=Container(
            name="mailer", image="public.ecr.aws/docker/library/busybox:1.36", port=0
        ),
        subnet_ids=["subnet-a", "subnet-b"],
        region="eu-west-1",
        account_id="123456789012",
        vpc_id="vpc-0123",
        vpc_cidr="10.1.0.0/16",
        worker=RollingWorker(alarm_names=["mailer-errors"]),
    )
    return FargateServiceArgs(**{**values, **overrides})


def test_a_library_worker_needs_no_load_balancer_group_and_plans_the_rolling_service():
    from ecs_delivery.components.fargate_service import FargateService
    from tests.support.registrations import register

    plan = register(lambda: FargateService("mailer", _worker_args()))
    service = inputs(plan, SERVICE, "mailer")

    assert service["deploymentConfiguration"] == {"strategy": "ROLLING"}
    assert service["alarms"] == {"alarmNames": ["mailer-errors"], "enable": True, "rollback": True}
    assert "loadBalancers" not in service


@pytest.mark.parametrize(
    "overrides",
    [
        {"target_group_arn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x/1"},
        {"worker": None},
    ],
)
def test_a_service_is_either_behind_a_target_group_or_a_worker(overrides):
    from ecs_delivery.components.fargate_service import FargateService
    from tests.support.registrations import register

    with pytest.raises(ValueError) as error:
        register(lambda: FargateService("mailer", _worker_args(**overrides)))

    assert "give target_group_arn (a service behind the load balancer) or worker" in str(
        error.value
    )


def _task_statements(plan) -> dict[str, dict]:
    """The statements of mailer's task role (none: it has no inline policy)."""
    policies = [
        r
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.startswith("mailer") and "task" in r.name and "execution" not in r.name
    ]
    assert len(policies) <= 1
    return {s["Sid"]: s for p in policies for s in json.loads(p.inputs["policy"])["Statement"]}


def test_a_worker_may_consume_the_queue_it_scales_on_and_that_queue_only(plan):
    consume = _task_statements(plan)["ConsumeQueue"]
    assert consume["Action"] == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert consume["Resource"] == "arn:aws:sqs:eu-west-1:123456789012:shop-dev-mail"


def test_a_worker_told_not_to_consume_its_queue_gets_no_sqs_permission():
    scaling = {
        **MAILER["autoscaling"],
        "queue": {**MAILER["autoscaling"]["queue"], "consume": False},
    }
    statements = _task_statements(worker_plan(autoscaling=scaling))
    assert not [s for s in statements.values() if any(a.startswith("sqs:") for a in s["Action"])]

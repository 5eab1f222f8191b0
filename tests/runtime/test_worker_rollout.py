"""Issue 18, item 2: a worker (no load balancer, ECS's rolling controller) is deployed by the one
deployment core on its ECS engine: the pipeline's ship and the `pulumi up` rollout both merge
onto what runs, with UpdateService and the service's in-progress deployment as the lock.

moto 5.2 has no service deployments: they come from the one double over moto
(tests/support/ecs_deployments.py); every request it answers is checked against botocore's model.
"""

from __future__ import annotations

import pytest

from ecs_delivery.runtime.build import ShipTarget, ship
from ecs_delivery.runtime.ecs_engine import EcsDeploymentFailedError
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from ecs_delivery.runtime.taskdef import describe, register_request
from tests.runtime.test_ecs_engine import request
from tests.support.ecs_deployments import image_running, memory_running, running
from tests.support.moto_world import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    PIPELINE_IMAGE,
    SERVICE,
    task_definition_spec,
)


def worker_request(template_arn: str | None, **overrides) -> RolloutRequest:
    """What the rollout component asks for a worker: the ECS engine's request, no port."""
    return request(template_arn, **{"container_port": None, **overrides})


def pipeline_ship(ecs, clock, image: str):
    """The pipeline's deploy step for a worker (runtime/build.py `ship`, as its CLI runs it
    without --container-port)."""
    target = ShipTarget(
        cluster=CLUSTER,
        service=SERVICE,
        family=FAMILY,
        application="",
        deployment_group="",
        container_name=CONTAINER,
        container_port=None,
        engine="ecs",
    )
    return ship(ecs, None, target, image, timeout_seconds=600, sleep=ecs.finishing_sleep(clock))


def template(ecs, memory: str = "1024") -> str:
    """What `pulumi up` registers for a worker: Pulumi's fields, no port mapping."""
    spec = task_definition_spec(memory=memory)
    for container in spec["containerDefinitions"]:
        container.pop("portMappings", None)
    return ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]


def without_ports(ecs) -> None:
    """The worker's running revision has no port mapping (its template has none either)."""
    current = describe(ecs, running(ecs))["taskDefinition"]
    request = register_request(current, {})
    for container in request["containerDefinitions"]:
        container.pop("portMappings", None)
    arn = ecs.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=arn)
    ecs.finish()


def test_a_pipeline_ship_to_a_worker_is_not_reverted_and_a_memory_change_rolls_out_once(ecs, clock):
    without_ports(ecs)
    shipped = pipeline_ship(ecs, clock, PIPELINE_IMAGE)
    assert shipped.action == "deployed"
    assert image_running(ecs) == PIPELINE_IMAGE

    # `pulumi up`: the template carries memory 1024 and the declared (bootstrap) image. (moto's
    # service reports no network or platform: these requests name none either.)
    arn = template(ecs, memory="1024")
    up = worker_request(arn, network=None, platform_version=None)
    first = rollout(ecs, None, up, sleep=ecs.finishing_sleep(clock), clock=clock)
    again = rollout(ecs, None, up, sleep=ecs.finishing_sleep(clock), clock=clock)

    assert first.action == "deployed"
    assert (image_running(ecs), memory_running(ecs)) == (PIPELINE_IMAGE, "1024")
    assert again.action == "none-same-content"
    # One UpdateService per deployment: the setup, the ship, the memory change; no more.
    assert [u["taskDefinition"] for u in ecs.updates[-2:]] == [
        shipped.running_task_definition_arn,
        first.running_task_definition_arn,
    ]
    assert "loadBalancers" not in ecs.updates[-1]


def test_a_worker_rolled_back_by_its_circuit_breaker_fails_naming_the_breaker(ecs, clock):
    first = running(ecs)

    def trip(seconds):
        clock.sleep(seconds)
        for arn in ecs.in_progress():
            ecs.deployments[arn]["deploymentCircuitBreaker"] = {
                "status": "TRIGGERED",
                "failureCount": 3,
                "threshold": 3,
            }
            ecs.roll_back(arn, reason="tasks failed to start")

    with pytest.raises(EcsDeploymentFailedError) as error:
        rollout(ecs, None, worker_request(template(ecs)), sleep=trip, clock=clock)

    assert error.value.rolled_back
    assert (
        "ROLLBACK_SUCCESSFUL: tasks failed to start (the deployment circuit breaker tripped: "
        "3 tasks failed to start or stay running (threshold 3))"
    ) in str(error.value)
    assert running(ecs) == first


def test_a_worker_rolled_back_by_an_alarm_fails_naming_the_alarm(ecs, clock):
    def alarm(seconds):
        clock.sleep(seconds)
        for arn in ecs.in_progress():
            ecs.deployments[arn]["alarms"] = {
                "status": "TRIGGERED",
                "alarmNames": ["mailer-errors"],
                "triggeredAlarmNames": ["mailer-errors"],
            }
            ecs.roll_back(arn, reason="alarm triggered")

    with pytest.raises(EcsDeploymentFailedError) as error:
        rollout(ecs, None, worker_request(template(ecs)), sleep=alarm, clock=clock)

    assert "alarm triggered (alarm in ALARM: mailer-errors)" in str(error.value)


def test_a_request_without_a_port_is_refused_on_codedeploy_naming_the_field():
    with pytest.raises(ValueError) as error:
        worker_request(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/x:1",
            engine="codedeploy",
            application="app",
            deployment_group="group",
        )

    assert str(error.value) == (
        "container_port: None (a worker, no load balancer) deploys only with engine ecs; "
        "CodeDeploy's AppSpec routes to a port: give it"
    )

"""A task with a sidecar under field ownership, against moto (ECS + CodeDeploy): the sidecar's
image is pinned in the config, so each `pulumi up` rollout deploys it (ServiceRollout's
`pinned_images`); the pipeline's ship moves only the traffic container's image."""

from __future__ import annotations

import json

from moto.backends import get_backend

from ecs_delivery.runtime.build import ShipTarget, ship
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from ecs_delivery.runtime.taskdef import describe, images_of

SIDECAR = "log-router"
ROUTER_V1 = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.4"
ROUTER_V2 = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.5"


def _finish_like_codedeploy(world, clock):
    """moto leaves deployments `Created`: on the rollout's first wait, finish each one as a
    blue/green does (PRIMARY task set on the deployed revision, status Succeeded)."""
    backend = get_backend("codedeploy")[world.account]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        for deployment in backend[world.region].deployments.values():
            if deployment.status == "Created":
                spec = json.loads(deployment.revision["appSpecContent"]["content"])
                world.codedeploy_switches_to(
                    spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
                )
                deployment.status = "Succeeded"

    return sleep


def _template(world, *, image: str = ROUTER_V1, level: str = "info") -> str:
    """What `pulumi up` registers: the traffic container (bootstrap image) and the sidecar,
    which carries its pinned image."""
    spec = world.spec()
    spec["containerDefinitions"].append(
        {
            "name": SIDECAR,
            "image": image,
            "essential": True,
            "user": "0",
            "readonlyRootFilesystem": True,
            "environment": [{"name": "FLB_LOG_LEVEL", "value": level}],
            "firelensConfiguration": {"type": "fluentbit"},
        }
    )
    return world.ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]


def _up(world, clock, template: str, pinned: str = ROUTER_V1):
    """The ServiceRollout of a `pulumi up`: the template, the sidecar's pin."""
    request = RolloutRequest(
        cluster=world.cluster,
        service=world.service,
        template_arn=template,
        family=world.family,
        application=world.application,
        deployment_group=world.group,
        container_name=world.container,
        container_port=world.port,
        images={SIDECAR: pinned},
        poll_seconds=15,
        timeout_seconds=600,
    )
    return rollout(
        world.ecs,
        world.codedeploy,
        request,
        sleep=_finish_like_codedeploy(world, clock),
        clock=clock,
    )


def _ship(world, clock, image: str):
    """The pipeline's deploy step for the traffic container."""
    target = ShipTarget(
        cluster=world.cluster,
        service=world.service,
        family=world.family,
        application=world.application,
        deployment_group=world.group,
        container_name=world.container,
        container_port=world.port,
    )
    return ship(
        world.ecs,
        world.codedeploy,
        target,
        image,
        timeout_seconds=600,
        poll_seconds=15,
        sleep=_finish_like_codedeploy(world, clock),
    )


def _running(world) -> dict:
    return describe(world.ecs, world.running())["taskDefinition"]


def _sidecar(task_definition: dict) -> dict:
    (found,) = [c for c in task_definition["containerDefinitions"] if c["name"] == SIDECAR]
    return found


def test_the_first_rollout_adds_the_sidecar_on_its_pinned_image_beside_what_runs(world, clock):
    shipped = world.pipeline_image
    world.pipeline_ships(shipped)

    result = _up(world, clock, _template(world))

    assert result.action == "deployed"
    assert images_of(_running(world)) == {world.container: shipped, SIDECAR: ROUTER_V1}


def test_a_ship_of_the_traffic_container_keeps_the_sidecar_as_it_runs(world, clock):
    template = _template(world)
    _up(world, clock, template)
    sidecar_before = _sidecar(_running(world))

    result = _ship(world, clock, world.pipeline_image)

    assert result.action == "deployed"
    running = _running(world)
    assert images_of(running) == {world.container: world.pipeline_image, SIDECAR: ROUTER_V1}
    assert _sidecar(running) == sidecar_before
    # The next `pulumi up` reverts neither: same content, no deployment.
    deployments = world.deployments()
    assert _up(world, clock, template).action == "none-same-content"
    assert world.deployments() == deployments


def test_a_pulumi_change_to_the_sidecars_environment_rolls_out_once(world, clock):
    _up(world, clock, _template(world))
    _ship(world, clock, world.pipeline_image)
    changed = _template(world, level="debug")

    first = _up(world, clock, changed)
    deployments = world.deployments()
    second = _up(world, clock, changed)

    assert (first.action, second.action) == ("deployed", "none-same-content")
    assert world.deployments() == deployments
    running = _running(world)
    assert _sidecar(running)["environment"] == [{"name": "FLB_LOG_LEVEL", "value": "debug"}]
    assert images_of(running) == {world.container: world.pipeline_image, SIDECAR: ROUTER_V1}


def test_a_new_pin_of_the_sidecar_rolls_out_and_keeps_the_shipped_traffic_image(world, clock):
    _up(world, clock, _template(world))
    _ship(world, clock, world.pipeline_image)

    result = _up(world, clock, _template(world, image=ROUTER_V2), pinned=ROUTER_V2)

    assert result.action == "deployed"
    assert images_of(_running(world)) == {world.container: world.pipeline_image, SIDECAR: ROUTER_V2}

"""A task with a sidecar under field ownership, against moto (ECS + CodeDeploy). A pinned
sidecar's image is the config's, so each `pulumi up` rollout deploys it (ServiceRollout's
`pinned_images`) and the pipeline's ship moves only the traffic container's image; a sidecar
the repository builds is the deployer's: the ship moves it, and `pulumi up` keeps it."""

from __future__ import annotations

import json

import pytest
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


def _up(world, clock, template: str, pinned: str | None = ROUTER_V1):
    """The ServiceRollout of a `pulumi up`: the template, the sidecar's pin (None: a sidecar
    the repository builds, whose image is the deployer's: nothing is pinned)."""
    request = RolloutRequest(
        cluster=world.cluster,
        service=world.service,
        template_arn=template,
        family=world.family,
        application=world.application,
        deployment_group=world.group,
        container_name=world.container,
        container_port=world.port,
        images={SIDECAR: pinned} if pinned else {},
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


def _ship(world, clock, image: str, sidecar: str | None = None):
    """The pipeline's deploy step for the traffic container (and a built sidecar's image)."""
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
        sidecar_images={SIDECAR: sidecar} if sidecar else None,
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


# --- a sidecar the repository builds: its image is the deployer's --------------------------

BUILT_V1 = (
    f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/web/proxy@sha256:{'5' * 64}"
)
NEXT_IMAGE = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:{'c' * 64}"
BUILT_V2 = (
    f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/web/proxy@sha256:{'6' * 64}"
)


def test_a_ship_of_a_built_sidecar_is_never_reverted_by_the_next_pulumi_up(world, clock):
    template = _template(world)  # the template's sidecar image: what it declares, not what runs
    _up(world, clock, template, pinned=None)
    shipped = _ship(world, clock, world.pipeline_image, BUILT_V1)
    assert shipped.action == "deployed"
    assert images_of(_running(world)) == {world.container: world.pipeline_image, SIDECAR: BUILT_V1}

    deployments = world.deployments()
    assert _up(world, clock, template, pinned=None).action == "none-same-content"
    assert world.deployments() == deployments
    assert images_of(_running(world))[SIDECAR] == BUILT_V1


def test_a_pulumi_change_to_a_built_sidecar_rolls_out_once_on_its_shipped_image(world, clock):
    _up(world, clock, _template(world), pinned=None)
    _ship(world, clock, world.pipeline_image, BUILT_V1)
    changed = _template(world, level="debug")

    first = _up(world, clock, changed, pinned=None)
    deployments = world.deployments()
    second = _up(world, clock, changed, pinned=None)

    assert (first.action, second.action) == ("deployed", "none-same-content")
    assert world.deployments() == deployments
    running = _running(world)
    assert _sidecar(running)["environment"] == [{"name": "FLB_LOG_LEVEL", "value": "debug"}]
    assert images_of(running) == {world.container: world.pipeline_image, SIDECAR: BUILT_V1}


def test_a_ship_after_a_pulumi_change_keeps_the_change_and_moves_both_images(world, clock):
    _up(world, clock, _template(world), pinned=None)
    _ship(world, clock, world.pipeline_image, BUILT_V1)
    _up(world, clock, _template(world, level="debug"), pinned=None)

    _ship(world, clock, NEXT_IMAGE, BUILT_V2)

    running = _running(world)
    assert images_of(running) == {world.container: NEXT_IMAGE, SIDECAR: BUILT_V2}
    assert _sidecar(running)["environment"] == [{"name": "FLB_LOG_LEVEL", "value": "debug"}]


def test_a_sidecar_image_by_tag_is_refused_before_any_deployment(world, clock):
    from ecs_delivery.runtime.build import BuildError

    _up(world, clock, _template(world), pinned=None)
    deployments = world.deployments()
    with pytest.raises(BuildError, match="is not a digest reference"):
        _ship(world, clock, world.pipeline_image, "example.com/proxy:latest")
    assert world.deployments() == deployments

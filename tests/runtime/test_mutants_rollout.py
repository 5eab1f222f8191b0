"""Behaviour of the rollout and its CodeDeploy layer that one-line mutations used to change
unnoticed (issue 21): each test here failed against the mutant it is named after.

moto is the AWS; where moto lacks a CodeDeploy behaviour (deployments that leave `Created`,
StopDeployment) it is added by the CodeDeploy simulator (ecs_delivery.offline.codedeploy_sim) or botocore's Stubber, as
each test says.
"""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber
from moto.backends import get_backend

from ecs_delivery.offline.codedeploy_sim import CodeDeploySim
from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.live import running
from ecs_delivery.runtime.promotion import PromotionRecordError, parse_record
from ecs_delivery.runtime.rollout import RolloutRaceError, ServiceStateError
from ecs_delivery.runtime.taskdef import describe, images_of
from tests.runtime.test_rollout import run


def image(world, digit: str) -> str:
    return f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web@sha256:{digit * 64}"


def other_deployment(world) -> str:
    """Someone else's deployment of the group (moto keeps it `Created`: in progress)."""
    return world.codedeploy.create_deployment(
        applicationName=world.application,
        deploymentGroupName=world.group,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}},
    )["deploymentId"]


def moto_deployment(world, deployment_id: str):
    return get_backend("codedeploy")[world.account][world.region].deployments[deployment_id]


def moto_service(world):
    return get_backend("ecs")[world.account][world.region].services[
        f"{world.cluster}:{world.service}"
    ]


def primary_task_set(world, arn: str, *, network=None, platform: str | None = None) -> None:
    """What a finished blue/green leaves: `arn` PRIMARY, with its own network and platform."""
    extra = {}
    if network is not None:
        extra["networkConfiguration"] = {"awsvpcConfiguration": network}
    if platform is not None:
        extra["platformVersion"] = platform
    task_set = world.ecs.create_task_set(
        cluster=world.cluster,
        service=world.service,
        taskDefinition=arn,
        launchType="FARGATE",
        **extra,
    )["taskSet"]
    world.ecs.update_service_primary_task_set(
        cluster=world.cluster, service=world.service, primaryTaskSet=task_set["taskSetArn"]
    )


# --- a Stopped deployment is a failed one -------------------------------------------------


def test_a_rollout_whose_deployment_ends_stopped_fails_naming_it(world, clock):
    """Someone stops the rollout's deployment (console, alarm): the rollout must not report
    it deployed. Stubber for CodeDeploy: moto cannot end a deployment `Stopped`."""
    world.pipeline_ships(world.pipeline_image)
    template = world.pulumi_registers(memory="1024")
    stubber = Stubber(world.codedeploy)
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-STOPPED01"},
        {
            "applicationName": world.application,
            "deploymentGroupName": world.group,
            "revision": ANY,
            "description": ANY,
        },
    )
    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": "d-STOPPED01", "status": "Stopped"}},
        {"deploymentId": "d-STOPPED01"},
    )

    with stubber, pytest.raises(cd.DeploymentFailedError) as raised:
        run(world, clock, template)

    assert raised.value.status == "Stopped"
    assert "d-STOPPED01" in str(raised.value) and "ended Stopped" in str(raised.value)
    stubber.assert_no_pending_responses()


# --- the group's lock: one deployment at a time --------------------------------------------


def test_start_deployment_refuses_while_the_group_has_a_deployment_in_progress(world):
    """moto accepts a second CreateDeployment in a busy group (AWS does not): only the
    pre-check stands between the caller and two deployments racing for one service."""
    busy = other_deployment(world)
    spec = cd.appspec(world.first_revision, world.container, world.port)

    with pytest.raises(cd.DeploymentInProgressError) as raised:
        cd.start_deployment(world.codedeploy, world.application, world.group, spec, "mine")

    assert raised.value.deployment_ids == [busy]
    assert world.deployments() == [busy]


def test_a_rollout_into_a_busy_group_registers_nothing_and_names_the_deployment(world, clock):
    busy = other_deployment(world)
    template = world.pulumi_registers(memory="1024")
    before = world.revisions()

    with pytest.raises(cd.DeploymentInProgressError) as raised:
        run(world, clock, template, wait=False)

    assert raised.value.deployment_ids == [busy]
    assert world.revisions() == before  # checked before merging, not after
    assert world.deployments() == [busy]


# Spelled out: parametrizing over the constant under test would shrink with it.
@pytest.mark.parametrize("status", ["Created", "Queued", "InProgress", "Baking", "Ready"])
def test_a_deployment_in_any_unfinished_status_holds_the_group(world, clock, status):
    """`Ready` (traffic shifted, waiting), `Baking`, `Queued`, `Created` hold CodeDeploy's
    lock as much as `InProgress` does."""
    busy = other_deployment(world)
    moto_deployment(world, busy).status = status

    assert cd.in_progress_deployments(world.codedeploy, world.application, world.group) == [busy]
    with pytest.raises(cd.DeploymentInProgressError):
        run(world, clock, world.pulumi_registers(memory="1024"), wait=False)


def test_the_waiter_polls_through_every_unfinished_status_until_the_end(world, clock):
    """Stubber: CodeDeploy walks a blue/green through these statuses; moto never does."""
    stubber = Stubber(world.codedeploy)
    for status in ("Created", "Queued", "InProgress", "Ready", "Baking", "Succeeded"):
        stubber.add_response(
            "get_deployment",
            {"deploymentInfo": {"deploymentId": "d-WALK00001", "status": status}},
            {"deploymentId": "d-WALK00001"},
        )

    with stubber:
        info = cd.wait_for_deployment(
            world.codedeploy, "d-WALK00001", timeout_seconds=600, sleep=clock.sleep, clock=clock
        )

    assert info["status"] == "Succeeded"
    assert clock.sleeps == [15] * 5
    stubber.assert_no_pending_responses()


# --- what runs: the PRIMARY task set's revision, network and platform ----------------------


def test_network_and_platform_are_read_from_the_primary_task_set_not_the_service():
    service = {
        "serviceName": "web",
        "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:1",
        "platformVersion": "1.3.0",
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["subnet-old"], "securityGroups": ["sg-old"]}
        },
        "taskSets": [
            {
                "status": "PRIMARY",
                "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:2",
                "platformVersion": "1.4.0",
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": ["subnet-b", "subnet-a"],
                        "securityGroups": ["sg-new"],
                        "assignPublicIp": "DISABLED",
                    }
                },
            }
        ],
    }

    live = running(service)

    assert (live.subnets, live.security_groups) == (("subnet-a", "subnet-b"), ("sg-new",))
    assert live.platform_version == "1.4.0"


def test_a_rollout_compares_the_wanted_network_with_the_primary_task_sets(world, clock):
    """The service field keeps the network it was created with; the PRIMARY task set runs
    the one the last deployment's AppSpec set."""
    world.ecs.update_service(
        cluster=world.cluster,
        service=world.service,
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": ["subnet-old"], "securityGroups": ["sg-old"]}
        },
    )
    primary_task_set(
        world, world.first_revision, network={"subnets": ["subnet-a"], "securityGroups": ["sg-a"]}
    )

    same = run(world, clock, world.first_revision, network=cd.Network(("subnet-a",), ("sg-a",)))
    assert same.action in ("none-service-new", "none-same-content")
    assert world.deployments() == []

    moved = run(
        world,
        clock,
        world.first_revision,
        network=cd.Network(("subnet-old",), ("sg-old",)),
        wait=False,
    )
    assert moved.action == "started"
    properties = json.loads(world.appspec_of(moved.deployment_id))["Resources"][0]["TargetService"][
        "Properties"
    ]
    assert properties["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == ["subnet-old"]


def test_an_explicit_platform_version_that_differs_from_what_runs_is_deployed(world, clock):
    primary_task_set(world, world.first_revision, platform="1.4.0")

    same = run(world, clock, world.first_revision, platform_version="1.4.0")
    assert same.deployment_id is None and world.deployments() == []

    result = run(world, clock, world.first_revision, platform_version="1.3.0", wait=False)

    assert result.action == "started"
    assert world.revisions() == []  # same content: nothing registered in the service family
    properties = json.loads(world.appspec_of(result.deployment_id))["Resources"][0][
        "TargetService"
    ]["Properties"]
    assert (properties["TaskDefinition"], properties["PlatformVersion"]) == (
        world.first_revision,
        "1.3.0",
    )


# --- stop and merge again: exactly `merge_attempts` deployments -----------------------------


def ships_before_each_create(world, clock, images: list[str]) -> CodeDeploySim:
    """A pipeline ship lands just before each of the rollout's CreateDeployments, while
    `images` last (the CodeDeploy simulator on the test's clock: moto has no StopDeployment)."""
    pending = list(images)

    def ship(_params):
        if pending:
            world.pipeline_ships(pending.pop(0))

    sim = CodeDeploySim(world.ecs, clock)
    sim.before_create = ship
    sim.attach(world.codedeploy)
    return sim


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_rollout_raced_on_every_attempt_gives_up_after_exactly_merge_attempts(
    world, clock, attempts
):
    template = world.pulumi_registers(memory="1024")
    sim = ships_before_each_create(world, clock, [image(world, str(n)) for n in range(1, 9)])

    with pytest.raises(RolloutRaceError, match=f"changed {attempts} times"):
        run(world, clock, template, wait=False, merge_attempts=attempts)

    assert len(world.deployments()) == attempts
    assert sorted(sim.stopped) == sorted(world.deployments())  # none of them moved traffic


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_rollout_raced_on_all_but_its_last_attempt_deploys_on_the_last(world, clock, attempts):
    template = world.pulumi_registers(memory="1024")
    ships = [image(world, str(n)) for n in range(1, attempts)]
    sim = ships_before_each_create(world, clock, ships)

    result = run(world, clock, template, wait=False, merge_attempts=attempts)

    assert result.action == "started"
    assert len(world.deployments()) == attempts and len(sim.stopped) == attempts - 1
    target = sim.deployment(result.deployment_id).task_definition
    deployed = describe(world.ecs, target)["taskDefinition"]
    last_ship = ships[-1] if ships else world.bootstrap_image
    assert (images_of(deployed)[world.container], deployed["memory"]) == (last_ship, "1024")


def test_a_deployment_that_finished_before_its_stop_is_reported_not_accepted(world, clock):
    world.pipeline_ships(world.pipeline_image)
    template = world.pulumi_registers(memory="1024")
    sim = ships_before_each_create(world, clock, [image(world, "9")])

    def finished_already(params, **_):
        # CodeDeploy completed it (traffic moved) before the stop arrived.
        sim.finish(json.loads(params["body"])["deploymentId"])

    world.codedeploy.meta.events.register_first(
        "before-call.codedeploy.StopDeployment", finished_already
    )

    with pytest.raises(cd.StopTooLateError, match="succeeded before it could be stopped") as raised:
        run(world, clock, template, wait=False)

    (ours,) = world.deployments()
    shipped = [
        a
        for a in world.revisions()
        if images_of(describe(world.ecs, a)["taskDefinition"])[world.container] == image(world, "9")
    ]
    # What the caller needs to undo exactly this: the id, what it replaced, what it deployed.
    assert (raised.value.deployment_id, raised.value.replaced) == (ours, shipped[0])
    assert raised.value.deployed == world.running() != shipped[0]
    assert sim.stopped == []


# --- refused before any deployment ---------------------------------------------------------


def test_a_container_name_missing_from_the_revision_is_refused_before_registering(world, clock):
    template = world.pulumi_registers(memory="1024")
    before = world.revisions()

    with pytest.raises(
        ValueError, match="container_name: 'proxy' is not in .*known containers: app"
    ):
        run(world, clock, template, container_name="proxy")

    assert world.revisions() == before
    assert world.deployments() == []


def test_a_ship_to_a_container_the_service_does_not_run_is_refused(world, clock):
    with pytest.raises(ValueError, match=r"images: container\(s\) proxy not in .*known: app"):
        run(world, clock, None, images={"proxy": world.pipeline_image})

    assert world.revisions() == []
    assert world.deployments() == []


@pytest.mark.parametrize("status", ["DRAINING", "INACTIVE"])
def test_a_service_that_is_not_active_is_refused(world, clock, status):
    moto_service(world).status = status

    with pytest.raises(ServiceStateError, match=f"is {status}, not ACTIVE"):
        run(world, clock, world.pulumi_registers(memory="1024"))

    assert world.deployments() == []


def test_a_promotion_record_with_a_short_digest_is_refused_naming_the_image():
    record = {
        "schema": 1,
        "sourceStack": "dev",
        "commit": "3f2a9c1",
        "createdAt": "2024-01-31T12:00:00Z",
        "images": {"web": {"app": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:abc"}},
    }

    with pytest.raises(PromotionRecordError, match=r"images\.web\.app.*not an image digest"):
        parse_record(record)
    full = {**record, "images": {"web": {"app": record["images"]["web"]["app"][:-3] + "a" * 64}}}
    assert parse_record(full).images["web"]["app"].endswith("a" * 64)


@pytest.mark.parametrize("digest", ["abc123", "b" * 63, "B" * 64])
def test_the_pipelines_ship_refuses_a_digest_that_is_not_64_hex_digits(world, clock, digest):
    from ecs_delivery.runtime.build import BuildError, ShipTarget, ship

    target = ShipTarget(
        cluster=world.cluster,
        service=world.service,
        family=world.family,
        application=world.application,
        deployment_group=world.group,
        container_name=world.container,
        container_port=world.port,
    )
    short = f"{world.pipeline_image.split('@')[0]}@sha256:{digest}"

    with pytest.raises(BuildError, match="is not a digest reference"):
        # A tiny timeout: ship() waits on the real clock, should a deployment start.
        ship(world.ecs, world.codedeploy, target, short, timeout_seconds=0.01, sleep=clock.sleep)

    assert world.revisions() == []
    assert world.deployments() == []

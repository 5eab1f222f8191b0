"""The rollout provider (components/rollout.py) against one-line mutants of issue 21: a
Stopped deployment read as not failed, a hook / security group / cluster change not rolled
out, a promotion winning over a pinned image. Each test failed against its mutant."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

import ecs_delivery.components.rollout as rollout_component
from ecs_delivery.components.images import PINNED, LiveService, Release, resolve
from ecs_delivery.components.rollout import ServiceRolloutProvider
from ecs_delivery.runtime.taskdef import describe, images_of
from tests.components.rollout.test_provider import BASE, props_for, stored
from tests.support import moto_world

# The moto world of tests/support (tests/components/rollout/conftest.py serves it there).
aws_env, world = moto_world.aws_env, moto_world.world


def deployed_properties(world, deployment_id: str) -> dict:
    spec = json.loads(world.appspec_of(deployment_id))
    return spec["Resources"][0]["TargetService"]["Properties"] | {"Hooks": spec.get("Hooks")}


def test_read_reports_a_stopped_deployment_as_failed_so_the_next_up_rolls_out_again(
    world, monkeypatch
):
    """Stubber for CodeDeploy: moto cannot end a deployment `Stopped`."""
    props = stored(
        props_for(world, world.first_revision), action="started", last_deployment_id="d-STOP0001"
    )
    real_client = rollout_component.client
    codedeploy = real_client("codedeploy", None)
    stubber = Stubber(codedeploy)
    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": "d-STOP0001", "status": "Stopped"}},
        {"deploymentId": "d-STOP0001"},
    )
    monkeypatch.setattr(
        rollout_component,
        "client",
        lambda service, session=None, region=None: (
            codedeploy if service == "codedeploy" else real_client(service, session, region)
        ),
    )

    with stubber:
        result = ServiceRolloutProvider().read("id", props)

    assert result.outs["action"] == "failed"
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "change",
    [
        {"validation_hook": "dev-validation-hook-2"},
        {"security_groups": ["sg-tasks", "sg-extra"]},
        {"assign_public_ip": True},
        {"platform_version": "1.4.0"},
    ],
)
def test_diff_rolls_out_a_change_of_hook_network_or_platform(change):
    olds = {
        **BASE,
        "validation_hook": "dev-validation-hook",
        "subnets": ["subnet-a"],
        "security_groups": ["sg-tasks"],
        "assign_public_ip": False,
        "platform_version": None,
    }

    diff = ServiceRolloutProvider().diff("id", olds, {**olds, **change})

    assert diff.changes is True
    assert diff.replaces == []


def test_diff_replaces_the_record_when_the_cluster_changes():
    diff = ServiceRolloutProvider().diff("id", dict(BASE), {**BASE, "cluster_name": "dev-2"})

    assert diff.changes is True
    assert diff.replaces == ["cluster_name"]


def test_update_deploys_with_the_validation_hook_and_the_new_security_groups(world):
    network = {"subnets": ["subnet-a"], "security_groups": ["sg-old"]}
    olds = stored(props_for(world, world.first_revision, **network), action="none-service-new")
    news = props_for(
        world,
        world.pulumi_registers(memory="1024"),
        subnets=["subnet-a"],
        security_groups=["sg-new", "sg-extra"],
        validation_hook="dev-validation-hook",
    )

    result = ServiceRolloutProvider().update("id", olds, news)

    (deployment_id,) = world.deployments()
    assert result.outs["last_deployment_id"] == deployment_id
    properties = deployed_properties(world, deployment_id)
    assert properties["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"] == [
        "sg-extra",
        "sg-new",
    ]
    assert properties["Hooks"] == [{"AfterAllowTestTraffic": "dev-validation-hook"}]


def test_a_pinned_image_wins_over_a_new_promotion_of_the_same_container(world):
    registry = f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web"
    pinned, promoted = f"{registry}@sha256:{'1' * 64}", f"{registry}@sha256:{'2' * 64}"
    olds = stored(props_for(world, world.first_revision), action="none-service-new")
    news = props_for(
        world,
        world.first_revision,
        pinned_images={world.container: pinned},
        promotion={"release": "3f9c2a1", "images": {world.container: promoted}},
    )

    result = ServiceRolloutProvider().update("id", olds, news)

    assert result.outs["action"] == "started"
    target = deployed_properties(world, result.outs["last_deployment_id"])["TaskDefinition"]
    assert images_of(describe(world.ecs, target)["taskDefinition"]) == {world.container: pinned}


def test_the_program_declares_a_pinned_image_over_a_promoted_release():
    """The plan side of the same rule (components/images.resolve): pinned > promoted > live."""
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web"
    pinned, promoted = f"{registry}@sha256:{'1' * 64}", f"{registry}@sha256:{'2' * 64}"
    live = LiveService(
        exists=True,
        task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/dev-web:4",
        images={"app": f"{registry}@sha256:{'3' * 64}"},
    )
    release = Release(upstream="dev", commit="3f9c2a1", images={"web": {"app": promoted}})

    resolved = resolve(
        service="web",
        container="app",
        pinned=pinned,
        bootstrap="public.ecr.aws/nginx/nginx:stable",
        live=live,
        release=release,
    )

    assert (resolved.declared, resolved.after, resolved.source) == (pinned, pinned, PINNED)

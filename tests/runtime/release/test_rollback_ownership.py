"""A release's rollback is a deployment like any other (issue 21, problems 1 and 2).

It restores, per service, only the image the release set, merged onto what runs now: a
Pulumi change made since is kept, an image another deployer shipped since is left running
and named in the report, a service the release never deployed is left alone. Against the
simulated AWS (moto's ECS + the simulated CodeDeploy).
"""

from __future__ import annotations

from typing import Any

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.codedeploy import appspec, appspec_content
from ecs_delivery.runtime.release.engine import ReleaseEngine, ServiceDeploymentFailed, prepare
from ecs_delivery.runtime.release.manifest import load_manifest
from ecs_delivery.runtime.release.state import StateStore

from .conftest import aws_of, config


def store_of(sim: SimulatedAws, release_id: str) -> StateStore:
    return StateStore(sim.clients.s3, sim.bucket, release_id, sim.clock)


def engine_of(sim: SimulatedAws, release_id: str) -> ReleaseEngine:
    return ReleaseEngine(aws_of(sim), store_of(sim, release_id), config())


def live_definition(sim: SimulatedAws, service: str) -> dict[str, Any]:
    arn = sim.live_task_definition(service)
    return sim.raw_ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]


def register_over_live(sim: SimulatedAws, service: str, **changes: Any) -> str:
    """A revision of what `service` runs with `changes` (memory=..., image=...)."""
    return register_over(sim, live_definition(sim, service), **changes)


def register_over(
    sim: SimulatedAws,
    described: dict[str, Any],
    *,
    images: dict[str, str] | None = None,
    extra: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> str:
    """A revision of `described` (a DescribeTaskDefinition taskDefinition) in its family,
    with `changes` (memory=..., image=... of the first container), `images` (container ->
    image) and `extra` containers: another deployer's registration (Pulumi's, a ship)."""
    first, *others = described["containerDefinitions"]
    first = {**first, "image": changes.pop("image", first["image"])}
    containers = [
        {**c, "image": (images or {}).get(c["name"], c["image"])} for c in [first, *others]
    ]
    return str(
        sim.raw_ecs.register_task_definition(
            family=described["family"],
            requiresCompatibilities=described["requiresCompatibilities"],
            networkMode=described["networkMode"],
            cpu=described["cpu"],
            memory=changes.pop("memory", described["memory"]),
            executionRoleArn=described["executionRoleArn"],
            containerDefinitions=[*containers, *(extra or [])],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def lands(sim: SimulatedAws, service: str, arn: str) -> None:
    """A deployment by another deployer (a `pulumi up` rollout, a pipeline ship) finished."""
    target = sim.inventory.services[service]
    sim.land(target, arn)


def test_rollback_of_a_finished_release_keeps_a_later_pulumi_change_and_a_later_ship(
    sim: SimulatedAws,
) -> None:
    manifest = load_manifest(
        sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]), sim.inventory
    )
    engine = engine_of(sim, manifest.release_id)
    _, plan = prepare(aws_of(sim), engine.store, manifest, sim.inventory)
    assert plan is not None
    engine.begin(plan)
    assert engine.run().status == "succeeded"

    # Days later: a `pulumi up` gives svc-000 more memory (its image stays the release's),
    # and the pipeline ships 3.0.0 to svc-001.
    lands(sim, "svc-000", register_over_live(sim, "svc-000", memory="2048"))
    shipped = sim.image("svc-001", "3.0.0")
    lands(sim, "svc-001", register_over_live(sim, "svc-001", image=shipped))

    outcome = engine_of(sim, manifest.release_id).rollback("the release was bad")

    assert outcome.status == "rolled_back"
    # svc-000: the release's image is taken back, Pulumi's memory is kept.
    assert sim.live_image("svc-000") == sim.image("svc-000", "1.0.0")
    assert live_definition(sim, "svc-000")["memory"] == "2048"
    # svc-001: the ship is newer than the release: it keeps running, and the report says so.
    assert sim.live_image("svc-001") == shipped
    svc = outcome.state.services["svc-001"]
    assert svc.rollback == "superseded"
    assert shipped in (svc.rollback_note or "")
    rollbacks = [
        d for d in sim.codedeploy.deployments if d.description.startswith("ecs-delivery rollback")
    ]
    assert [d.service for d in rollbacks] == ["svc-000"]


def test_rollback_mid_release_keeps_what_other_deployers_landed_on_a_deployed_service(
    sim: SimulatedAws,
) -> None:
    """svc-000 is deployed; while svc-001 deploys, a `pulumi up` and a ship land on svc-000;
    svc-001 fails. The whole-release rollback must not revert either of them."""
    shipped = sim.image("svc-000", "3.0.0")

    def others_land_on_svc_000(info: dict[str, Any]) -> None:
        if info["service"] == "svc-001":
            lands(sim, "svc-000", register_over_live(sim, "svc-000", memory="2048"))
            lands(sim, "svc-000", register_over_live(sim, "svc-000", image=shipped))

    sim.codedeploy.on_create = others_land_on_svc_000
    sim.codedeploy.fail("svc-001")
    manifest = load_manifest(
        sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]), sim.inventory
    )
    engine = ReleaseEngine(aws_of(sim), store_of(sim, manifest.release_id), config(max_parallel=1))
    _, plan = prepare(aws_of(sim), engine.store, manifest, sim.inventory)
    assert plan is not None
    engine.begin(plan)

    outcome = engine.run()

    assert outcome.status == "rolled_back" and outcome.failed_item == "svc-001"
    assert sim.live_image("svc-000") == shipped
    assert live_definition(sim, "svc-000")["memory"] == "2048"
    assert outcome.state.services["svc-000"].rollback == "superseded"


def test_a_release_refused_by_a_busy_group_never_reverts_the_ship_holding_it(
    sim: SimulatedAws,
) -> None:
    """Problem 2: the pipeline's ship holds svc-000's group, so the release's deployment is
    refused; by the time the rollback looks, the ship has landed. The release deployed
    nothing to svc-000, so its rollback must leave the ship running."""
    target = sim.inventory.services["svc-000"]
    shipped = sim.image("svc-000", "3.0.0")
    ship_revision = register_over_live(sim, "svc-000", image=shipped)
    sim.codedeploy.hold("svc-000")
    ship = sim.codedeploy.create_deployment(
        applicationName=target.codedeploy_application,
        deploymentGroupName=target.codedeploy_group,
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": appspec_content(appspec(ship_revision, "app", 8080)),
        },
        description="pipeline ship",
    )["deploymentId"]
    manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]), sim.inventory)
    engine = engine_of(sim, manifest.release_id)
    _, plan = prepare(aws_of(sim), engine.store, manifest, sim.inventory)
    assert plan is not None
    engine.begin(plan)
    with pytest.raises(ServiceDeploymentFailed) as refused:
        engine.start_service("svc-000")
    engine.fail_service("svc-000", str(refused.value))
    assert ship in str(refused.value)

    sim.codedeploy.release("svc-000")
    sim.clock.sleep(600)
    # The simulator moves a deployment on when it is read: the ship finishes and switches.
    assert sim.codedeploy.get_deployment(deploymentId=ship)["deploymentInfo"]["status"] == (
        "Succeeded"
    )
    assert sim.live_image("svc-000") == shipped

    outcome = engine.rollback("svc-000 could not be deployed")

    assert outcome.status == "rolled_back"
    assert sim.live_image("svc-000") == shipped
    assert [d.description for d in sim.codedeploy.deployments] == ["pipeline ship"]


def test_a_task_update_keeps_a_pulumi_change_registered_after_the_release_was_planned(
    sim: SimulatedAws,
) -> None:
    """Problem 3: the task's new revision was registered from the revision read when the
    release was planned; a memory change Pulumi registered (and pointed the schedule at) in
    between was lost. It is now derived from what the schedule targets when it is updated."""
    image = sim.image("job-01", "2.0.0")
    manifest = load_manifest(
        sim.manifest_yaml("r1", "2.0.0", services=["svc-000"], tasks={"job-01": {"image": image}}),
        sim.inventory,
    )
    engine = engine_of(sim, manifest.release_id)
    _, plan = prepare(aws_of(sim), engine.store, manifest, sim.inventory)
    assert plan is not None
    engine.begin(plan)

    # `pulumi up` registers the task with more memory and points its schedule at it.
    target = sim.inventory.scheduled_tasks["job-01"]
    schedule = sim.clients.scheduler.get_schedule(Name=target.schedule.name)
    planned = schedule["Target"]["EcsParameters"]["TaskDefinitionArn"]
    described = sim.raw_ecs.describe_task_definition(taskDefinition=planned)["taskDefinition"]
    pulumis = sim.raw_ecs.register_task_definition(
        family=described["family"],
        requiresCompatibilities=described["requiresCompatibilities"],
        networkMode=described["networkMode"],
        cpu=described["cpu"],
        memory="2048",
        executionRoleArn=described["executionRoleArn"],
        containerDefinitions=described["containerDefinitions"],
    )["taskDefinition"]["taskDefinitionArn"]
    update = {
        key: schedule[key]
        for key in ("Name", "GroupName", "ScheduleExpression", "FlexibleTimeWindow", "Target")
    }
    update["Target"]["EcsParameters"]["TaskDefinitionArn"] = pulumis
    sim.clients.scheduler.update_schedule(**update)

    assert engine.run().status == "succeeded"

    arn = sim.task_trigger("job-01")["EcsParameters"]["TaskDefinitionArn"]
    runs = sim.raw_ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert (runs["memory"], runs["containerDefinitions"][0]["image"]) == ("2048", image)
    # A rollback of this release returns to Pulumi's revision, not the planned one.
    assert engine.store.load().tasks["job-01"].previous_td == pulumis

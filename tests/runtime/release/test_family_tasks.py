"""A release of a scheduled task whose schedule names its family (issue 21, problem 10).

Each run starts the family's newest revision, so the release's task update registers its
image onto the newest revision (never pointing the schedule at a revision), and its rollback
registers the image it replaced only while the release's image is newest. Against the
simulated AWS (moto's ECS and Scheduler + the simulated CodeDeploy).
"""

from __future__ import annotations

from typing import Any

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.engine import ReleaseEngine, prepare
from ecs_delivery.runtime.release.manifest import load_manifest
from ecs_delivery.runtime.release.state import StateStore

from .conftest import aws_of, config
from .test_rollback_ownership import register_over

FAMILY = "dev-job-01"


def _engine(sim: SimulatedAws, image: str) -> ReleaseEngine:
    text = sim.manifest_yaml(
        "r1", "2.0.0", services=["svc-000"], tasks={"job-01": {"image": image}}
    )
    manifest = load_manifest(text, sim.inventory)
    store = StateStore(sim.clients.s3, sim.bucket, manifest.release_id, sim.clock)
    engine = ReleaseEngine(aws_of(sim), store, config())
    _, plan = prepare(aws_of(sim), store, manifest, sim.inventory)
    assert plan is not None
    engine.begin(plan)
    return engine


def _newest(sim: SimulatedAws) -> dict[str, Any]:
    return sim.raw_ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]


def _register_over_newest(sim: SimulatedAws, **changes: Any) -> str:
    """Another deployer registers onto the newest revision (Pulumi: memory; a ship: image)."""
    return register_over(sim, _newest(sim), **changes)


def _schedule_target(sim: SimulatedAws) -> str:
    return sim.task_trigger("job-01")["EcsParameters"]["TaskDefinitionArn"]


def test_a_task_update_registers_onto_the_newest_revision_and_leaves_the_schedule_on_the_family(
    sim: SimulatedAws,
) -> None:
    family_arn = _schedule_target(sim)
    image = sim.image("job-01", "2.0.0")
    engine = _engine(sim, image)
    _register_over_newest(sim, memory="2048")  # `pulumi up` after the plan

    assert engine.run().status == "succeeded"

    newest = _newest(sim)
    assert (newest["memory"], newest["containerDefinitions"][0]["image"]) == ("2048", image)
    assert _schedule_target(sim) == family_arn  # still the family: runs the newest
    assert engine.store.load().tasks["job-01"].new_td == newest["taskDefinitionArn"]


def test_a_rollback_puts_the_replaced_image_onto_the_newest_keeping_pulumis_change(
    sim: SimulatedAws,
) -> None:
    before = _newest(sim)["containerDefinitions"][0]["image"]
    engine = _engine(sim, sim.image("job-01", "2.0.0"))
    assert engine.run().status == "succeeded"
    _register_over_newest(sim, memory="2048")  # `pulumi up` after the release

    outcome = engine.rollback("the release was bad")

    assert outcome.status == "rolled_back"
    newest = _newest(sim)
    assert (newest["memory"], newest["containerDefinitions"][0]["image"]) == ("2048", before)
    assert engine.store.load().tasks["job-01"].rollback == "rolled_back"


def test_a_rollback_leaves_a_newer_ship_of_the_task_running_and_names_it(sim: SimulatedAws) -> None:
    engine = _engine(sim, sim.image("job-01", "2.0.0"))
    assert engine.run().status == "succeeded"
    shipped = sim.image("job-01", "3.0.0")
    newer = _register_over_newest(sim, image=shipped)

    outcome = engine.rollback("the release was bad")

    assert outcome.status == "rolled_back"
    assert _newest(sim)["taskDefinitionArn"] == newer  # nothing registered over the ship
    task = engine.store.load().tasks["job-01"]
    assert task.rollback == "superseded" and shipped in (task.rollback_note or "")


def test_a_task_on_a_revision_named_trigger_does_not_copy_the_family_protocols_read_tag(
    sim: SimulatedAws,
) -> None:
    """A revision built on the trigger's revision must not claim to be built on what that
    revision's registrar read: later readers of the family would take it as overtaken."""
    from ecs_delivery.runtime.task_rollout import READ_TAG

    target = sim.task_trigger("job-00")["EcsParameters"]["TaskDefinitionArn"]
    sim.raw_ecs.tag_resource(resourceArn=target, tags=[{"key": READ_TAG, "value": "1"}])
    text = sim.manifest_yaml(
        "r1",
        "2.0.0",
        services=["svc-000"],
        tasks={"job-00": {"image": sim.image("job-00", "2.0.0")}},
    )
    manifest = load_manifest(text, sim.inventory)
    store = StateStore(sim.clients.s3, sim.bucket, manifest.release_id, sim.clock)
    engine = ReleaseEngine(aws_of(sim), store, config())
    _, plan = prepare(aws_of(sim), store, manifest, sim.inventory)
    assert plan is not None
    engine.begin(plan)
    assert engine.run().status == "succeeded"

    new = sim.task_trigger("job-00")["EcsParameters"]["TaskDefinitionArn"]
    assert new != target
    tags = sim.raw_ecs.list_tags_for_resource(resourceArn=new)["tags"]
    assert READ_TAG not in {t["key"] for t in tags}

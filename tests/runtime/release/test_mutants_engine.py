"""The release engine against one-line mutants of issue 21, through its public entry points
(apply, ReleaseEngine.rollback) on the simulated AWS: each test failed against its mutant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws, SimulatedCrash
from ecs_delivery.runtime.release.engine import ReleaseEngine
from ecs_delivery.runtime.release.manifest import ManifestError, load_manifest

from .conftest import aws_of, config
from .test_engine import live, live_memory, originals, pulumi_ships, release, store_of


def forward(sim: SimulatedAws, service: str) -> list[Any]:
    """The release's own deployments of `service` (not rollbacks to its original revision)."""
    return [
        d
        for d in sim.codedeploy.deployments
        if d.service == service and d.description.startswith("ecs-delivery release")
    ]


# --- a Stopped deployment is a failed one -------------------------------------------------


def test_a_deployment_someone_stops_fails_the_release_and_it_rolls_back(sim: SimulatedAws):
    sim.codedeploy.hold("svc-000")  # runs until stopped

    def operator_stops_it(info: dict[str, Any]) -> None:
        sim.codedeploy.stop_deployment(deploymentId=info["deploymentId"], autoRollbackEnabled=True)

    sim.codedeploy.on_create = operator_stops_it
    # A short timeout, so that a poll blind to `Stopped` ends too (on the timeout instead).
    outcome, _ = release(
        sim,
        sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]),
        deployment_timeout_seconds=600.0,
    )

    assert (outcome.status, outcome.failed_item) == ("rolled_back", "svc-000")
    assert "ended Stopped" in outcome.failure
    assert live(sim) == originals(sim)


def test_a_restarted_release_does_not_adopt_its_deployment_that_was_stopped(sim: SimulatedAws):
    def crash_after_codedeploy_accepted(info: dict[str, Any]) -> None:
        sim.codedeploy.on_create = None
        raise SimulatedCrash()  # the id never reaches the state

    sim.codedeploy.on_create = crash_after_codedeploy_accepted
    # Held before its traffic shift: on the scaled clock a loaded machine could otherwise
    # let the orphan finish before the operator stops it.
    sim.codedeploy.hold("svc-000")
    text = sim.manifest_yaml("r1", "2.0.0", services=["svc-000"])
    with pytest.raises(SimulatedCrash):
        release(sim, text)
    [crashed] = sim.codedeploy.deployments
    # An operator stops the orphan before the release is resumed.
    sim.codedeploy.stop_deployment(deploymentId=crashed.deployment_id, autoRollbackEnabled=True)
    sim.clock.sleep(sim.codedeploy.stop_seconds + 1.0)
    assert sim.codedeploy.deployments[0].status == "Stopped"
    sim.codedeploy.release("svc-000")

    outcome, store = release(sim, text)

    assert outcome.status == "succeeded"
    stopped, fresh = forward(sim, "svc-000")
    assert (stopped.deployment_id, fresh.status) == (crashed.deployment_id, "Succeeded")
    assert store.load().services["svc-000"].deployment_id == fresh.deployment_id
    assert sim.live_image("svc-000") == sim.image("svc-000", "2.0.0")


# --- stop and merge again ------------------------------------------------------------------


def pulumi_ships_after_registrations(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch, times: int
) -> list[str]:
    """Right after each of the engine's first `times` registrations of svc-000, a `pulumi
    up` rollout of svc-000 finishes (more memory each time); returns Pulumi's revisions."""
    real_register = sim.raw_ecs.register_task_definition
    shipped: list[str] = []

    def register_then_pulumi_ships(**kwargs: Any) -> Any:
        response = real_register(**kwargs)
        if kwargs["family"] == "dev-svc-000" and len(shipped) < times:
            memory = str(1024 * (len(shipped) + 1))
            shipped.append(pulumi_ships(sim, "svc-000", memory=memory, register=real_register))
        return response

    monkeypatch.setattr(sim.raw_ecs, "register_task_definition", register_then_pulumi_ships)
    return shipped


def test_a_deployment_that_finished_before_its_stop_fails_the_release_and_keeps_pulumis_change(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
):
    shipped = pulumi_ships_after_registrations(sim, monkeypatch, times=1)
    real_stop = sim.codedeploy.stop_deployment

    def too_late(**kwargs: Any) -> Any:
        # The stale deployment finishes (traffic moves) before the stop reaches CodeDeploy.
        sim.clock.sleep(sim.codedeploy.duration_of("svc-000") + 1.0)
        return real_stop(**kwargs)  # DeploymentAlreadyCompletedException

    monkeypatch.setattr(sim.codedeploy, "stop_deployment", too_late)
    outcome, _ = release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))

    assert (outcome.status, outcome.failed_item) == ("rolled_back", "svc-000")
    assert "succeeded before it could be stopped" in outcome.failure
    # The rollback returns to what ran when the race was seen: Pulumi's revision.
    assert sim.live_task_definition("svc-000") == shipped[0]
    assert live_memory(sim, "svc-000") == "1024"


@pytest.mark.parametrize(("races", "status"), [(2, "succeeded"), (3, "rolled_back")])
def test_the_engine_merges_again_exactly_three_times(
    racing_sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch, races: int, status: str
):
    """Three attempts per service: raced twice, the third deploys; raced three times, it
    gives up, with nothing of its own running."""
    sim = racing_sim
    shipped = pulumi_ships_after_registrations(sim, monkeypatch, times=races)
    outcome, _ = release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))

    assert outcome.status == status
    deployments = forward(sim, "svc-000")
    assert len(deployments) == 3
    assert [d.status for d in deployments[:races]] == ["Stopped"] * races
    if status == "succeeded":
        assert deployments[-1].status == "Succeeded"
        assert (live_memory(sim, "svc-000"), sim.live_image("svc-000")) == (
            "2048",
            sim.image("svc-000", "2.0.0"),
        )
    else:
        assert "3 times in a row" in outcome.failure
        assert sim.live_task_definition("svc-000") == shipped[-1]


# --- scheduled tasks -----------------------------------------------------------------------


def schedules(sim: SimulatedAws) -> dict[str, tuple[str, str, Any]]:
    """task -> (schedule, revision, Input as data: its JSON spacing is not a difference)."""
    rule = sim.clients.events.describe_rule(Name="dev-job-00")["ScheduleExpression"]
    schedule = sim.clients.scheduler.get_schedule(Name="dev-job-01")["ScheduleExpression"]
    found = {}
    for name, expression in (("job-00", rule), ("job-01", schedule)):
        trigger = sim.task_trigger(name)
        revision = trigger["EcsParameters"]["TaskDefinitionArn"]
        found[name] = (expression, revision, json.loads(trigger["Input"]))
    return found


def test_rolling_back_a_release_restores_each_tasks_schedule_command_and_revision(
    sim: SimulatedAws,
):
    tasks = {
        "job-00": {
            "followsService": "svc-000",
            "schedule": "cron(0 4 * * ? *)",
            "command": ["run", "--fast"],
        },
        "job-01": {
            "image": sim.image("job-01", "2.0.0"),
            "schedule": "rate(2 hours)",
            "command": ["run", "--all"],
        },
    }
    before = schedules(sim)
    outcome, store = release(
        sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"], tasks=tasks)
    )
    assert outcome.status == "succeeded"
    assert {n: s for n, (s, _, _) in schedules(sim).items()} == {
        "job-00": "cron(0 4 * * ? *)",
        "job-01": "rate(2 hours)",
    }

    rolled = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config()).rollback()

    assert rolled.status == "rolled_back"
    assert schedules(sim) == before
    assert {n: t.rollback for n, t in store.load().tasks.items()} == {
        "job-00": "rolled_back",
        "job-01": "rolled_back",
    }


# --- refused: a container the service no longer runs, a short digest ----------------------


def test_a_service_whose_container_pulumi_renamed_after_the_plan_is_not_deployed(
    sim: SimulatedAws,
):
    def pulumi_renames_svc_001s_container(info: dict[str, Any]) -> None:
        if info["service"] != "svc-000" or sim.codedeploy.on_create is None:
            return
        sim.codedeploy.on_create = None
        target = sim.inventory.services["svc-001"]
        described = sim.raw_ecs.describe_task_definition(
            taskDefinition=sim.live_task_definition("svc-001")
        )["taskDefinition"]
        renamed = {**described["containerDefinitions"][0], "name": "main"}
        arn = sim.raw_ecs.register_task_definition(
            family=described["family"],
            requiresCompatibilities=described["requiresCompatibilities"],
            networkMode=described["networkMode"],
            cpu=described["cpu"],
            memory=described["memory"],
            containerDefinitions=[renamed],
        )["taskDefinition"]["taskDefinitionArn"]
        sim.land(target, arn)

    sim.codedeploy.on_create = pulumi_renames_svc_001s_container
    # One at a time: svc-001 starts after the rename.
    outcome, _ = release(
        sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]), max_parallel=1
    )

    assert (outcome.status, outcome.failed_item) == ("rolled_back", "svc-001")
    assert "container(s) app not in" in outcome.failure and "known: main" in outcome.failure
    assert forward(sim, "svc-001") == []


@pytest.mark.parametrize("production", [False, True])
def test_a_manifest_image_with_a_short_digest_is_refused_naming_the_key(
    sim: SimulatedAws, production: bool
):
    inventory = sim.inventory.model_copy(update={"production": production})
    short = f"{sim.image('svc-000', '2.0.0').rsplit(':', 1)[0]}@sha256:abc123"
    text = f"release: r1\nenvironment: dev\nservices:\n  svc-000:\n    image: {short}\n"

    with pytest.raises(ManifestError) as raised:
        load_manifest(text, inventory)

    assert raised.value.errors == [
        f'services.svc-000.image: "{short}" is not an image reference: digest '
        "'sha256:abc123' is not sha256:<64 hex digits>; "
        "use [registry/]repository[:tag][@sha256:<64 hex digits>]"
    ]


@pytest.mark.parametrize("status", ["DRAINING", "INACTIVE"])
def test_a_release_to_a_service_that_is_not_active_is_refused_before_any_deployment(
    sim: SimulatedAws, status: str
):
    from moto.backends import get_backend

    from ecs_delivery.offline.release_simulator import ACCOUNT, REGION
    from ecs_delivery.runtime.release.live import LiveStateError

    target = sim.inventory.services["svc-001"]
    get_backend("ecs")[ACCOUNT][REGION].services[f"dev-cluster:{target.service}"].status = status

    with pytest.raises(LiveStateError) as raised:
        release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]))

    assert str(raised.value) == (
        f"ECS service svc-001 ({target.cluster}/{target.service}) is {status}, not ACTIVE; "
        "it cannot take a deployment: recreate it with `pulumi up`, or leave it out of "
        "the manifest"
    )
    assert sim.codedeploy.deployments == []
    assert store_of(sim, "dev-r1").load() is None

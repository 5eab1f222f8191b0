"""Every interleaving of a pipeline ship with a `pulumi up` rollout on the ECS engine (issue 19).

The exploration of tests/runtime/test_interleavings.py (its scheduler, scenarios, schedules and
invariants: zero reverts, zero lost Pulumi-owned changes, zero empty deployments), with the
service on the ECS controller: both deployers run the real `runtime.rollout.rollout` with
`engine="ecs"`, ECS's service deployments come from the one double
(ecs_delivery.offline.ecs_deployments, attached to each actor's real client: moto 5.2 has
none). The World differs because the engine's calls do: the steps are read what runs
(DescribeServices), start (UpdateService), re-check under the lock (the engine's
`running_under_lock`: each actor's engine is the real EcsEngine with a scheduling point in
front of it) and finish (the creator's first poll of its deployment once the engine waits for
it, when the double ends it); a poll of another's deployment still running (waiting for it)
hands the turn on, as GetDeployment does there.
"""

from __future__ import annotations

from typing import Any

import greenlet  # noqa: F401  (the scheduler's; skip cleanly where it is missing)
import pytest

from ecs_delivery.offline.ecs_deployments import EcsDeployments
from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.ecs_engine import EcsEngine
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from ecs_delivery.runtime.taskdef import describe, images_of, same_content_in_any_family
from tests.runtime.test_interleavings import (
    ACCOUNT,
    CLUSTER,
    CONTAINER,
    FAMILY,
    IMAGES,
    ONE_SHIP,
    PORT,
    PROMOTION,
    REGION,
    ROLLBACK,
    SERVICE,
    SESSION,
    TWO_SHIPS,
    Outcome,
    Scenario,
    Scheduler,
    _spec,
    actor,
    fresh_moto,
    parts,
)
from tests.runtime.test_interleavings import (
    explore as explore_with,
)


class EcsWorld:
    """One moto account with a service on the ECS controller and ECS's service deployments."""

    def __init__(self, outcome: Outcome, scheduler: Scheduler, failing: str | None = None) -> None:
        self.outcome = outcome
        self.scheduler = scheduler
        self.failing = failing  # ECS fails (and rolls back) this actor's deployments
        self.created_by: dict[str, str] = {}
        self.awaited: set[str] = set()  # deployments their creator's engine waits for
        self.described: dict[str, dict[str, Any]] = {}
        self.ecs = ACTORS.plain()
        self.deployments = EcsDeployments(moto=self.ecs, region=REGION, account=ACCOUNT)
        self.ecs.create_cluster(clusterName=CLUSTER)
        first = self._register(_spec(IMAGES[0], "512"))
        # What production runs: the target of the last deployment that finished.
        self.primary = first
        self.ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=first,
            desiredCount=1,
            launchType="FARGATE",
            deploymentController={"type": "ECS"},
        )
        self.outcome.ran.append(IMAGES[0])

    def _register(self, spec: dict[str, Any]) -> str:
        return self.ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]

    def describe(self, arn: str) -> dict[str, Any]:
        if arn not in self.described:
            self.described[arn] = describe(self.ecs, arn)["taskDefinition"]
        return self.described[arn]

    def running(self) -> str:
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0][
            "taskDefinition"
        ]

    def _open(self) -> list[str]:
        return self.deployments.in_progress()

    def gate(self, actor: str, operation: str, params: dict[str, Any]) -> None:
        if operation in ("DescribeServices", "UpdateService"):
            self.scheduler.step(actor)
        if operation == "UpdateService":
            self._count_empty(params["taskDefinition"])
        if operation == "DescribeServiceDeployments":
            if any(
                self.created_by.get(arn) not in (None, actor) and arn in self._open()
                for arn in params["serviceDeploymentArns"]
            ):
                self.scheduler.step(actor)  # waiting for another's deployment: its turn
            finishing = [
                arn
                for arn in params["serviceDeploymentArns"]
                if self.created_by.get(arn) == actor and arn in self.awaited and arn in self._open()
            ]
            if finishing:
                self.scheduler.step(actor)  # a poll that finishes nothing commutes with all
            for arn in finishing:
                self._finish(actor, arn)

    def created(self, actor: str) -> None:
        """After an UpdateService of `actor`: the deployment it started is its."""
        newest = list(self.deployments.deployments)[-1]
        self.created_by.setdefault(newest, actor)

    def _count_empty(self, target: str) -> None:
        """A deployment about to start while none runs, whose revision carries what runs."""
        if self._open():
            return  # the engine withdraws one started alongside another
        if same_content_in_any_family(self.describe(target), self.describe(self.primary)):
            self.outcome.empty_deployments.append(target)

    def _finish(self, actor: str, arn: str) -> None:
        if arn not in self._open():
            return
        if actor == self.failing:
            self.deployments.roll_back(arn, reason="the validation hook failed")
            return
        self.deployments.finish(arn)
        self.primary = self.deployments.revisions[
            self.deployments.deployments[arn]["targetServiceRevision"]["arn"]
        ]
        self.outcome.ran.append(images_of(self.describe(self.primary))[CONTAINER])


class GatedEngine(EcsEngine):
    """The real ECS engine; its re-check under the lock is a step of the schedule, and a
    deployment it waits for may finish."""

    def __init__(self, ecs: Any, actor: str) -> None:
        super().__init__(ecs)
        self.actor = actor

    def running_under_lock(self, request, deployment_id, expected, read, sleep):  # noqa: ANN001
        ACTORS.world.scheduler.step(self.actor)
        return super().running_under_lock(request, deployment_id, expected, read, sleep)

    def wait(self, request, deployment_id, sleep, clock):  # noqa: ANN001
        ACTORS.world.awaited.add(deployment_id)
        return super().wait(request, deployment_id, sleep, clock)


class EcsActors:
    """Each actor's ECS client (built once per process), answered by the run's double."""

    def __init__(self) -> None:
        self.built: dict[str, Any] = {}
        self.world: EcsWorld | None = None

    def plain(self) -> Any:
        if "world" not in self.built:
            self.built["world"] = client("ecs", SESSION)
        return self.built["world"]

    def of(self, actor: str) -> Any:
        if actor not in self.built:
            ecs = client("ecs", SESSION)
            ecs.meta.events.register(
                "before-parameter-build.ecs.*",
                lambda model, params, **_: self.world.gate(actor, model.name, params),
            )
            ecs.meta.events.register(
                "after-call.ecs.UpdateService", lambda **_: self.world.created(actor)
            )
            self.built[actor] = ecs
        self.world.deployments.attach(self.built[actor])
        return self.built[actor]


ACTORS = EcsActors()


def _request(template: str | None, images: dict[str, str] | None = None) -> RolloutRequest:
    return RolloutRequest(
        cluster=CLUSTER,
        service=SERVICE,
        template_arn=template,
        family=FAMILY,
        engine="ecs",
        container_name=CONTAINER,
        container_port=PORT,
        images=images or {},
        poll_seconds=1,
        timeout_seconds=10_000,
        merge_attempts=4,
    )


def run_interleaving(schedule: str, scenario: Scenario) -> Outcome:
    """One run: P ships `scenario.ships` one after another; U runs one `pulumi up` rollout."""
    outcome = Outcome()
    with fresh_moto():
        scheduler = Scheduler(schedule)
        world = EcsWorld(outcome, scheduler, failing="U" if scenario.codedeploy_fails_up else None)
        ACTORS.world = world
        template = world._register(_spec(IMAGES[0], scenario.memory, family=f"{FAMILY}-template"))

        def pipeline() -> None:
            ecs = ACTORS.of("P")
            for image in scenario.ships:
                request = _request(None, {CONTAINER: image})
                rollout(ecs, None, request, sleep=lambda _s: None, engine=GatedEngine(ecs, "P"))

        def pulumi_up() -> None:
            ecs = ACTORS.of("U")
            images = {CONTAINER: scenario.promoted} if scenario.promoted else {}
            request = _request(template, images)
            rollout(ecs, None, request, sleep=lambda _s: None, engine=GatedEngine(ecs, "U"))

        scheduler.run({"P": actor(outcome, "P", pipeline), "U": actor(outcome, "U", pulumi_up)})
        settle(world, outcome)
    return outcome


def settle(world: EcsWorld, outcome: Outcome) -> None:
    """Record what runs at the end of a run (no deployment left open, and ECS agrees)."""
    assert not world._open(), "a deployment was left running"
    assert world.running() == world.primary, "ECS runs what no finished deployment targeted"
    final = world.describe(world.primary)
    outcome.final_memory = final["memory"]
    outcome.final_image = images_of(final)[CONTAINER]


def explore(scenario: Scenario, part: int | None = None) -> dict[str, list[str]]:
    """test_interleavings.explore, each run on the ECS engine."""
    return explore_with(scenario, part, run=run_interleaving)


@pytest.mark.parametrize("part", parts(ONE_SHIP))
def test_on_ecs_a_ship_during_a_memory_change_never_reverts_and_the_memory_lands(part):
    assert explore(ONE_SHIP, part) == {}


@pytest.mark.parametrize("part", parts(TWO_SHIPS))
def test_on_ecs_two_ships_during_one_up_never_revert_and_the_memory_lands(part):
    assert explore(TWO_SHIPS, part) == {}


@pytest.mark.parametrize("part", parts(PROMOTION))
def test_on_ecs_a_ship_during_a_promotion_ends_on_the_promoted_release_or_the_newer_ship(part):
    assert explore(PROMOTION, part) == {}


@pytest.mark.parametrize("part", parts(ROLLBACK))
def test_on_ecs_a_rollback_of_up_by_ecs_is_reported_and_reverts_nothing(part):
    assert explore(ROLLBACK, part) == {}


def test_on_ecs_the_exploration_sees_a_revert_when_the_recheck_is_missing(monkeypatch):
    """The harness can fail: an engine blind to what its deployment replaced (answering the
    re-check with what the core read) lets a ship that landed before its UpdateService be
    reverted in some interleaving."""
    monkeypatch.setattr(
        EcsEngine, "running_under_lock", lambda self, request, arn, expected, read, sleep: expected
    )
    assert explore(ONE_SHIP), "the mutant survived every interleaving"

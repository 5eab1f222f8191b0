"""Every interleaving of a pipeline ship with a `pulumi up` rollout on the ECS engine (issue 19).

The exploration of tests/support/rollout_interleavings.py (its scheduler, scenarios, schedules
and invariants: zero reverts, zero lost Pulumi-owned changes, zero empty deployments), as
tests/runtime/test_interleavings.py runs it on CodeDeploy, with the service on the ECS
controller: both deployers run the real `runtime.rollout.rollout` with
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

from ecs_delivery.offline.ecs_deployments import EcsDeployments
from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.ecs_engine import EcsEngine
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from ecs_delivery.runtime.taskdef import images_of, same_content_in_any_family
from tests.support.rollout_interleavings import (
    ACCOUNT,
    CLUSTER,
    CONTAINER,
    ONE_SHIP,
    REGION,
    SERVICE,
    SESSION,
    Outcome,
    RolloutEngine,
    Scheduler,
    ServiceWorld,
    explore,
    rollout_exploration_tests,
    rollout_request,
)


class EcsWorld(ServiceWorld):
    """The service on the ECS controller, with ECS's service deployments."""

    CONTROLLER = "ECS"

    def __init__(self, outcome: Outcome, scheduler: Scheduler, failing: str | None = None) -> None:
        super().__init__(outcome, scheduler, ACTORS.plain(), failing)
        self.awaited: set[str] = set()  # deployments their creator's engine waits for
        self.deployments = EcsDeployments(moto=self.ecs, region=REGION, account=ACCOUNT)

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
    return rollout_request(template, images, engine="ecs")


def settle(world: EcsWorld, outcome: Outcome) -> None:
    """Record what runs at the end of a run (no deployment left open, and ECS agrees)."""
    assert not world._open(), "a deployment was left running"
    assert world.running() == world.primary, "ECS runs what no finished deployment targeted"
    world.record_final(outcome)


class EcsActors:
    """How a ship or an `up` deploys in this world (the real EcsEngine, the schedule's steps in
    front of it), and how a run ends: the same for the rollout exploration and the release's
    (tests/runtime/test_interleavings_release_ecs.py)."""

    def deploy(self, world: EcsWorld, name: str, template: str | None, images: dict[str, str]):
        ecs = ACTORS.of(name)
        request = _request(template, images)
        rollout(ecs, None, request, sleep=lambda _s: None, engine=GatedEngine(ecs, name))

    def settle(self, world: EcsWorld, outcome: Outcome) -> None:
        settle(world, outcome)


class EcsRollout(EcsActors, RolloutEngine):
    """The service on the ECS controller, ECS's service deployments from the double."""

    def world(self, outcome: Outcome, scheduler: Scheduler, failing: str | None) -> EcsWorld:
        world = EcsWorld(outcome, scheduler, failing)
        ACTORS.world = world
        return world


ECS = EcsRollout()
TestOnEcs = rollout_exploration_tests(ECS)


def test_on_ecs_the_exploration_sees_a_revert_when_the_recheck_is_missing(monkeypatch):
    """The harness can fail: an engine blind to what its deployment replaced (answering the
    re-check with what the core read) lets a ship that landed before its UpdateService be
    reverted in some interleaving."""
    monkeypatch.setattr(
        EcsEngine, "running_under_lock", lambda self, request, arn, expected, read, sleep: expected
    )
    assert explore(ECS.run, ONE_SHIP), "the mutant survived every interleaving"

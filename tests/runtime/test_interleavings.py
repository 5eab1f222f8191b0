"""Every interleaving of a pipeline ship with a `pulumi up` rollout, against moto, on the
CodeDeploy engine.

The scheduler, scenarios, orders, invariants and the tests both engines pass are
tests/support/rollout_interleavings.py's; this file gives the CodeDeploy world. The steps are
the calls that matter: read what runs (DescribeServices), start (CreateDeployment), re-check
under the lock (DescribeServices again), finish (the first GetDeployment of the deployment,
when the simulated CodeDeploy completes it).

moto is the AWS here, and CodeDeploy the one CodeDeploy simulator
(ecs_delivery.offline.codedeploy_sim): CreateDeployment is refused while the group has a
deployment in progress (AWS: DeploymentLimitExceededException; moto accepts it), StopDeployment
ends a deployment before traffic moves, task sets follow. Every deployment is held before its
traffic shift until its creator polls it: then the simulator finishes it (or fails it, for a
failing actor), so finishing is a step of the schedule, never a race.
"""

from __future__ import annotations

import json
from typing import Any

from ecs_delivery.offline.codedeploy_sim import CodeDeploySim
from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.clock import VirtualClock
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from ecs_delivery.runtime.taskdef import images_of, same_content_in_any_family
from tests.support.rollout_interleavings import (
    CLUSTER,
    CONTAINER,
    ONE_SHIP,
    SERVICE,
    SESSION,
    TWO_SHIPS,
    Outcome,
    RolloutEngine,
    Scheduler,
    ServiceWorld,
    explore,
    parts,
    rollout_exploration_tests,
    rollout_request,
    schedules,
)

APPLICATION, GROUP = "c", "web"
STEPS = {
    ("ecs", "DescribeServices"),
    ("codedeploy", "CreateDeployment"),
    ("codedeploy", "GetDeployment"),
}
# How a deployer that is not the rollout waits for its deployments (the release engine
# polls every deployment of a release at once): the first such poll finishes them.
BATCH_POLL = ("codedeploy", "BatchGetDeployments")


class World(ServiceWorld):
    """The service on the CODE_DEPLOY controller, with the simulated CodeDeploy rules."""

    CONTROLLER = "CODE_DEPLOY"

    def __init__(self, outcome: Outcome, scheduler: Scheduler, failing: str | None = None) -> None:
        ecs, _codedeploy = ACTORS.plain()
        super().__init__(outcome, scheduler, ecs, failing)
        # Time never passes here: a deployment ends when the schedule's finish step says so.
        self.sim = CodeDeploySim(self.ecs, VirtualClock(), lifecycle=0.0, stop_seconds=0.0)
        self.sim.hold(SERVICE)
        self.sim.before_create = self._count_empty
        self.sim.add_group(APPLICATION, GROUP, CLUSTER, SERVICE)

    def running(self) -> str:
        service = self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
        primary = [t for t in service.get("taskSets", []) if t["status"] == "PRIMARY"]
        return primary[0]["taskDefinition"] if primary else service["taskDefinition"]

    def gate(self, actor: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if (service, operation) in STEPS or (
            # A poll that finishes nothing changes nothing: it commutes with every step.
            (service, operation) == BATCH_POLL and self._finishes(actor, params["deploymentIds"])
        ):
            self.scheduler.step(actor)
        if (service, operation) == ("codedeploy", "GetDeployment"):
            self._finish(actor, params["deploymentId"])
        if (service, operation) == BATCH_POLL:
            for deployment_id in params["deploymentIds"]:
                self._finish(actor, deployment_id)

    def _finishes(self, actor: str, deployment_ids: list[str]) -> bool:
        return any(
            self.created_by.get(i) == actor and self.sim.deployment(i).ended is None
            for i in deployment_ids
        )

    def _count_empty(self, request: dict[str, Any]) -> None:
        """A deployment about to be accepted whose revision carries what runs already."""
        if any(d.ended is None for d in self.sim.deployments):
            return  # refused: the group is busy
        spec = json.loads(request["revision"]["appSpecContent"]["content"])
        target = spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
        if same_content_in_any_family(self.describe(target), self.describe(self.primary)):
            self.outcome.empty_deployments.append(target)

    def _finish(self, actor: str, deployment_id: str) -> None:
        creator = self.created_by.get(deployment_id)
        d = self.sim.deployment(deployment_id)
        if d.ended is not None or d.stop_requested is not None:
            return
        if creator == self.failing:
            # CodeDeploy fails it and rolls back: the old task set stays PRIMARY.
            self.sim.finish(deployment_id, failed=True)
        elif creator == actor:
            # Moving traffic takes CodeDeploy minutes: a deployment completes when its creator
            # waits for it, never in the instant after CreateDeployment another actor polls.
            self.sim.finish(deployment_id)
            self.primary = d.task_definition
            self.outcome.ran.append(images_of(self.describe(d.task_definition))[CONTAINER])


class Actors:
    """ECS and CodeDeploy clients for each actor, built once per process (building a client
    costs a third of a run); their hooks act on the world of the run in progress."""

    def __init__(self) -> None:
        self.built: dict[str, tuple[Any, Any]] = {}
        self.world: World | None = None

    def plain(self) -> tuple[Any, Any]:
        """The world's own clients: no hooks, never gated."""
        if "world" not in self.built:
            self.built["world"] = (client("ecs", SESSION), client("codedeploy", SESSION))
        return self.built["world"]

    def of(self, actor: str) -> tuple[Any, Any]:
        """ECS and CodeDeploy clients whose every step waits for the actor's turn."""
        if actor not in self.built:
            ecs, codedeploy = client("ecs", SESSION), client("codedeploy", SESSION)
            for service_client in (ecs, codedeploy):
                service = service_client.meta.service_model.service_name
                service_client.meta.events.register(
                    "before-parameter-build.*.*",
                    lambda model, params, service=service, **_: self.world.gate(
                        actor, service, model.name, params
                    ),
                )
            codedeploy.meta.events.register(
                "after-call.codedeploy.CreateDeployment",
                # (a refused one, DeploymentLimitExceededException, has no id)
                lambda parsed, **_: (
                    "deploymentId" in parsed
                    and self.world.created_by.__setitem__(parsed["deploymentId"], actor)
                ),
            )
            self.built[actor] = (ecs, codedeploy)
        return self.built[actor]


ACTORS = Actors()


def _request(template: str | None, images: dict[str, str] | None = None) -> RolloutRequest:
    return rollout_request(template, images, application=APPLICATION, deployment_group=GROUP)


def settle(world: World, outcome: Outcome) -> None:
    """Record what runs at the end of a run (and that ECS agrees with the simulator)."""
    assert world.running() == world.primary, "ECS runs what the simulated CodeDeploy did not"
    world.record_final(outcome)


class CodeDeployActors:
    """How a ship or an `up` deploys in this world, and how a run ends: the same for the
    rollout exploration and the release's (tests/runtime/test_interleavings_release.py)."""

    def deploy(self, world: World, name: str, template: str | None, images: dict[str, str]):
        ecs, codedeploy = ACTORS.of(name)
        rollout(ecs, codedeploy, _request(template, images), sleep=lambda _s: None)

    def settle(self, world: World, outcome: Outcome) -> None:
        settle(world, outcome)


class CodeDeployRollout(CodeDeployActors, RolloutEngine):
    """The service on the CODE_DEPLOY controller, CodeDeploy simulated; a deployment finishes
    at its creator's first GetDeployment."""

    def world(self, outcome: Outcome, scheduler: Scheduler, failing: str | None) -> World:
        world = World(outcome, scheduler, failing)
        ACTORS.world = world
        for name in ("P", "U"):
            world.sim.attach(ACTORS.of(name)[1])
        return world


CODEDEPLOY = CodeDeployRollout()
TestOnCodeDeploy = rollout_exploration_tests(CODEDEPLOY)


def test_the_parts_of_an_exploration_run_every_schedule_exactly_once():
    every = list(schedules(*TWO_SHIPS.steps))
    count = len(parts(TWO_SHIPS))
    assert count > 1
    sliced = [s for part in range(count) for s in every[part::count]]
    assert sorted(sliced) == sorted(every) and len(set(every)) == len(every) == 495


def test_the_exploration_sees_a_revert_when_the_recheck_is_missing(monkeypatch):
    """The harness can fail: without the re-check under the lock, a ship that lands between
    the rollout's read and its CreateDeployment is reverted in some interleaving."""
    import ecs_delivery.runtime.rollout as mechanism

    real = mechanism.what_runs
    first: dict[int, Any] = {}
    run: list[Any] = [None]

    def mutant(ecs, cluster, service):
        """Answers the re-check with what ran at the read: blind to a ship in between."""
        if run[0] is not ACTORS.world:  # clients outlive a run: each run starts afresh
            run[0] = ACTORS.world
            first.clear()
        if id(ecs) in first:
            return first.pop(id(ecs))
        first[id(ecs)] = found = real(ecs, cluster, service)
        return found

    monkeypatch.setattr(mechanism, "what_runs", mutant)
    failures = explore(CODEDEPLOY.run, ONE_SHIP)
    assert failures, "the mutant survived every interleaving"

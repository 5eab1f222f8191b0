"""Every interleaving of a pipeline ship with a `pulumi up` rollout, against moto.

Both deployers run the real `runtime.rollout.rollout` (the pipeline in images-only mode) as
greenlets; a deterministic scheduler lets exactly one of them make its next AWS call at a time,
in the order a schedule names. The steps are the calls that matter: read what runs
(DescribeServices), register (RegisterTaskDefinition), start (CreateDeployment), finish (the
first GetDeployment of the deployment, when the simulated CodeDeploy completes it).

moto is the AWS here, and CodeDeploy the one CodeDeploy simulator
(ecs_delivery.offline.codedeploy_sim): CreateDeployment is refused while the group has a
deployment in progress (AWS: DeploymentLimitExceededException; moto accepts it), StopDeployment
ends a deployment before traffic moves, task sets follow. Every deployment is held before its
traffic shift until its creator polls it: then the simulator finishes it (or fails it, for a
failing actor), so finishing is a step of the schedule, never a race.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import greenlet
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict

from ecs_delivery.offline.codedeploy_sim import CodeDeploySim
from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.clock import VirtualClock
from ecs_delivery.runtime.codedeploy import DeploymentError
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from ecs_delivery.runtime.taskdef import describe, images_of, same_content_in_any_family

REGION, ACCOUNT = "eu-west-1", "123456789012"
CLUSTER, SERVICE, FAMILY, CONTAINER, PORT = "c", "web", "c-web", "web", 8080
APPLICATION, GROUP = "c", "web"
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/c/web"
# Images in the order the pipeline built them: a later one is newer.
IMAGES = [f"{REPO}@sha256:{str(n) * 64}" for n in range(1, 6)]
# One session for every run: its loader keeps the parsed service models (most of a run's cost).
SESSION = boto3.Session(region_name=REGION)
STEPS = {
    ("ecs", "DescribeServices"),
    ("codedeploy", "CreateDeployment"),
    ("codedeploy", "GetDeployment"),
}
# How a deployer that is not the rollout waits for its deployments (the release engine
# polls every deployment of a release at once): the first such poll finishes them.
BATCH_POLL = ("codedeploy", "BatchGetDeployments")


def _spec(image: str, memory: str, family: str = FAMILY) -> dict[str, Any]:
    return {
        "family": family,
        "cpu": "256",
        "memory": memory,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [
            {
                "name": CONTAINER,
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": PORT, "protocol": "tcp"}],
            }
        ],
    }


@dataclass
class Outcome:
    """What one run did: the images the service ran, in order, and what went wrong."""

    ran: list[str] = field(default_factory=list)
    empty_deployments: list[str] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    final_memory: str = ""
    final_image: str = ""


class Scheduler:
    """Runs actors (greenlets, one thread) one step at a time, in the order `schedule` names
    (skipping actors that are done); after it, the actors still running take turns."""

    def __init__(self, schedule: str) -> None:
        self.schedule = list(schedule)
        self.main = greenlet.getcurrent()
        self.actors: dict[str, greenlet.greenlet] = {}

    def step(self, actor: str) -> None:
        """Called by an actor before each step: wait for its turn."""
        self.main.switch()

    def run(self, bodies: dict[str, Any]) -> None:
        self.actors = {name: greenlet.greenlet(body) for name, body in bodies.items()}
        for actor in self.actors.values():
            actor.switch()  # each runs up to its first step
        turn = 0
        while live := sorted(name for name, g in self.actors.items() if not g.dead):
            while self.schedule and self.schedule[0] not in live:
                self.schedule.pop(0)
            # After the schedule: take turns, so an actor waiting on another cannot starve it.
            chosen = self.schedule.pop(0) if self.schedule else live[turn % len(live)]
            turn += 1
            self.actors[chosen].switch()


class World:
    """One moto account with a CODE_DEPLOY service and the simulated CodeDeploy rules."""

    def __init__(self, outcome: Outcome, scheduler: Scheduler, failing: str | None = None) -> None:
        self.outcome = outcome
        self.scheduler = scheduler
        self.failing = failing  # CodeDeploy fails (and rolls back) this actor's deployments
        self.created_by: dict[str, str] = {}
        # Revisions never change once registered: each is described once per run.
        self.described: dict[str, dict[str, Any]] = {}
        self.ecs, codedeploy = ACTORS.plain()
        # Time never passes here: a deployment ends when the schedule's finish step says so.
        self.sim = CodeDeploySim(self.ecs, VirtualClock(), lifecycle=0.0, stop_seconds=0.0)
        self.sim.hold(SERVICE)
        self.sim.before_create = self._count_empty
        self.ecs.create_cluster(clusterName=CLUSTER)
        first = self._register(_spec(IMAGES[0], "512"))
        # What runs: only this world's CodeDeploy moves the PRIMARY task set, so it keeps
        # account instead of asking ECS at every CreateDeployment (run_interleaving checks).
        self.primary = first
        self.ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=first,
            desiredCount=1,
            launchType="FARGATE",
            deploymentController={"type": "CODE_DEPLOY"},
        )
        self.sim.add_group(APPLICATION, GROUP, CLUSTER, SERVICE)
        self.outcome.ran.append(IMAGES[0])

    def _register(self, spec: dict[str, Any]) -> str:
        return self.ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]

    def describe(self, arn: str) -> dict[str, Any]:
        if arn not in self.described:
            self.described[arn] = describe(self.ecs, arn)["taskDefinition"]
        return self.described[arn]

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
    return RolloutRequest(
        cluster=CLUSTER,
        service=SERVICE,
        template_arn=template,
        family=FAMILY,
        application=APPLICATION,
        deployment_group=GROUP,
        container_name=CONTAINER,
        container_port=PORT,
        images=images or {},
        poll_seconds=1,
        timeout_seconds=10_000,
        merge_attempts=4,
    )


@contextmanager
def fresh_moto() -> Iterator[None]:
    """moto for one run. Within `many_runs()`, the mock is already on and only its data is
    reset (starting the mock costs a fifth of a run); alone, a mock of its own."""
    with mock_aws():
        BackendDict.reset()  # a nested mock_aws resets nothing
        yield


@contextmanager
def many_runs() -> Iterator[None]:
    """One mock for every run of an exploration (each run still starts on empty data)."""
    with mock_aws():
        yield


def run_interleaving(schedule: str, scenario: Scenario) -> Outcome:
    """One run: actor P ships `scenario.ships` one after another; actor U runs one `pulumi up`
    rollout of a template with `scenario.memory` (and the promoted image, if any)."""
    outcome = Outcome()
    with fresh_moto():
        scheduler = Scheduler(schedule)
        world = World(outcome, scheduler, failing="U" if scenario.codedeploy_fails_up else None)
        ACTORS.world = world
        for name in ("P", "U"):
            world.sim.attach(ACTORS.of(name)[1])
        template = world._register(_spec(IMAGES[0], scenario.memory, family=f"{FAMILY}-template"))

        def pipeline() -> None:
            ecs, codedeploy = ACTORS.of("P")
            for image in scenario.ships:
                rollout(ecs, codedeploy, _request(None, {CONTAINER: image}), sleep=lambda _s: None)

        def pulumi_up() -> None:
            ecs, codedeploy = ACTORS.of("U")
            images = {CONTAINER: scenario.promoted} if scenario.promoted else {}
            rollout(ecs, codedeploy, _request(template, images), sleep=lambda _s: None)

        scheduler.run({"P": actor(outcome, "P", pipeline), "U": actor(outcome, "U", pulumi_up)})
        settle(world, outcome)
    return outcome


def actor(outcome: Outcome, name: str, body):
    """`body` as a scheduled actor: what it raises is recorded (problems() tells a clear
    refusal from a bug)."""

    def run() -> None:
        try:
            body()
        except BaseException as error:
            outcome.errors[name] = error

    return run


def settle(world: World, outcome: Outcome) -> None:
    """Record what runs at the end of a run (and that ECS agrees with the simulator)."""
    assert world.running() == world.primary, "ECS runs what the simulated CodeDeploy did not"
    final = world.describe(world.primary)
    outcome.final_memory = final["memory"]
    outcome.final_image = images_of(final)[CONTAINER]


@dataclass(frozen=True)
class Scenario:
    ships: tuple[str, ...]
    memory: str = "1024"
    promoted: str | None = None
    codedeploy_fails_up: bool = False

    @property
    def steps(self) -> tuple[int, int]:
        return STEPS_PER_DEPLOYMENT * len(self.ships), STEPS_PER_DEPLOYMENT


# Each deployer's steps: read what runs, start, re-check under the lock, finish. Registering
# a revision is not a step: it changes nothing another deployer reads, so it commutes with
# every other step. (`pulumi up` registers its template before the rollout begins.)
STEPS_PER_DEPLOYMENT = 4


def schedules(pipeline_steps: int, pulumi_steps: int):
    """Every order of the two actors' steps (extra steps after a retry run afterwards)."""
    total = pipeline_steps + pulumi_steps
    for positions in itertools.combinations(range(total), pulumi_steps):
        yield "".join("U" if i in positions else "P" for i in range(total))


def _age(image: str) -> int:
    return IMAGES.index(image)


def problems(outcome: Outcome, scenario: Scenario) -> list[str]:
    """What went wrong in one run; empty when every invariant holds."""
    found = [
        f"{name} failed with {error!r}"
        for name, error in outcome.errors.items()
        if not isinstance(error, DeploymentError)  # a clear refusal is an allowed outcome
    ]
    if outcome.empty_deployments:
        found.append(f"empty deployments of {outcome.empty_deployments}")
    # Never older than what already ran, except the image `pulumi up` was told to deploy.
    for before, after in itertools.pairwise(outcome.ran):
        if _age(after) < _age(before) and after != scenario.promoted:
            found.append(
                f"reverted {before[-8:]} -> {after[-8:]} (ran {[i[-8:] for i in outcome.ran]})"
            )
    if "U" not in outcome.errors and outcome.final_memory != scenario.memory:
        found.append(f"pulumi up succeeded but memory is {outcome.final_memory}")
    if scenario.codedeploy_fails_up and "U" not in outcome.errors:
        found.append("CodeDeploy failed pulumi up's deployment but up reported success")
    wanted = scenario.ships[-1]
    if "P" not in outcome.errors and not scenario.promoted and outcome.final_image != wanted:
        found.append(f"the last ship {wanted[-8:]} is not running ({outcome.final_image[-8:]})")
    if (
        scenario.promoted
        and not outcome.errors
        and outcome.final_image not in (wanted, scenario.promoted)
    ):
        found.append(f"ends on {outcome.final_image[-8:]}: neither the ship nor the promotion")
    return found


# Runs per test: an exploration is cut into parts of about this many schedules, so that
# pytest-xdist spreads one exploration over every core (the parts together run every schedule).
RUNS_PER_PART = 40


def parts(scenario: Scenario) -> list[int]:
    return list(range(math.ceil(math.comb(sum(scenario.steps), scenario.steps[1]) / RUNS_PER_PART)))


def explore(
    scenario: Scenario,
    part: int | None = None,
    run: Callable[[str, Scenario], Outcome] | None = None,
) -> dict[str, list[str]]:
    """Run every interleaving (or one part of them: every len(parts)-th from `part`) with
    `run` (default: run_interleaving, on CodeDeploy); the failing ones, by schedule."""
    run = run or run_interleaving
    work = list(schedules(*scenario.steps))
    if part is not None:
        work = work[part :: len(parts(scenario))]
    with many_runs():
        results = {s: problems(run(s, scenario), scenario) for s in work}
    return {schedule: found for schedule, found in results.items() if found}


ONE_SHIP = Scenario(ships=(IMAGES[1],))
TWO_SHIPS = Scenario(ships=(IMAGES[1], IMAGES[2]))
# `pulumi up` promotes a named release (older than the ship): the one image it may move
# back to, because it was asked to by name.
PROMOTION = Scenario(ships=(IMAGES[2],), promoted=IMAGES[1])
ROLLBACK = Scenario(ships=(IMAGES[1],), codedeploy_fails_up=True)


def test_the_parts_of_an_exploration_run_every_schedule_exactly_once():
    every = list(schedules(*TWO_SHIPS.steps))
    count = len(parts(TWO_SHIPS))
    assert count > 1
    sliced = [s for part in range(count) for s in every[part::count]]
    assert sorted(sliced) == sorted(every) and len(set(every)) == len(every) == 495


@pytest.mark.parametrize("part", parts(ONE_SHIP))
def test_a_ship_during_a_memory_change_never_reverts_and_the_memory_lands(part):
    assert explore(ONE_SHIP, part) == {}


@pytest.mark.parametrize("part", parts(TWO_SHIPS))
def test_two_ships_during_one_up_never_revert_and_the_memory_lands(part):
    assert explore(TWO_SHIPS, part) == {}


@pytest.mark.parametrize("part", parts(PROMOTION))
def test_a_ship_during_a_promotion_ends_on_the_promoted_release_or_the_newer_ship(part):
    assert explore(PROMOTION, part) == {}


@pytest.mark.parametrize("part", parts(ROLLBACK))
def test_a_codedeploy_rollback_during_an_up_is_reported_and_reverts_nothing(part):
    assert explore(ROLLBACK, part) == {}


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
    failures = explore(ONE_SHIP)
    assert failures, "the mutant survived every interleaving"

"""The rollout exploration, for either deployment engine: the scheduler and its actors, the
scenarios of a pipeline ship against a `pulumi up`, their orders and invariants, the run, and
the tests every engine passes.

Both deployers run the real `runtime.rollout.rollout` (the pipeline in images-only mode) as
greenlets; a deterministic scheduler lets exactly one of them make its next step at a time, in
the order a schedule names. Each engine's file (tests/runtime/test_interleavings.py,
CodeDeploy; ..._ecs.py, ECS) gives its world as a RolloutEngine: what the steps are, how a
deployment finishes, and how the deployers reach AWS. The release explorations
(tests/support/release_interleavings.py) and the runners' and tasks' run on the same scheduler.
"""

from __future__ import annotations

import abc
import itertools
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

from ecs_delivery.runtime.codedeploy import DeploymentError
from ecs_delivery.runtime.rollout import RolloutRequest
from ecs_delivery.runtime.taskdef import describe, images_of

REGION, ACCOUNT = "eu-west-1", "123456789012"
CLUSTER, SERVICE, FAMILY, CONTAINER, PORT = "c", "web", "c-web", "web", 8080
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/c/web"
# Images in the order the pipeline built them: a later one is newer.
IMAGES = [f"{REPO}@sha256:{str(n) * 64}" for n in range(1, 6)]
# One session for every run: its loader keeps the parsed service models (most of a run's cost).
SESSION = boto3.Session(region_name=REGION)


def _spec(
    image: str,
    memory: str,
    family: str = FAMILY,
    container: str = CONTAINER,
    port: int | None = PORT,
) -> dict[str, Any]:
    """A Fargate revision of one container (serving `port`, if any)."""
    definition: dict[str, Any] = {"name": container, "image": image, "essential": True}
    if port is not None:
        definition["portMappings"] = [{"containerPort": port, "protocol": "tcp"}]
    return {
        "family": family,
        "cpu": "256",
        "memory": memory,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [definition],
    }


def rollout_request(
    template: str | None, images: dict[str, str] | None, **engine: str
) -> RolloutRequest:
    """A rollout of the service (of `template`, or images-only), with the fields of its engine."""
    return RolloutRequest(
        cluster=CLUSTER,
        service=SERVICE,
        template_arn=template,
        family=FAMILY,
        **engine,
        container_name=CONTAINER,
        container_port=PORT,
        images=images or {},
        poll_seconds=1,
        timeout_seconds=10_000,
        merge_attempts=4,
    )


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


class ServiceWorld:
    """One moto account whose service, on the `CONTROLLER` deployment controller, runs
    IMAGES[0]: what each engine's world starts from."""

    CONTROLLER: str

    def __init__(self, outcome: Outcome, scheduler: Scheduler, ecs: Any, failing: str | None):
        self.outcome = outcome
        self.scheduler = scheduler
        self.failing = failing  # the engine fails (and rolls back) this actor's deployments
        self.created_by: dict[str, str] = {}  # each deployment's creator
        # Revisions never change once registered: each is described once per run.
        self.described: dict[str, dict[str, Any]] = {}
        self.ecs = ecs
        self.ecs.create_cluster(clusterName=CLUSTER)
        first = self._register(_spec(IMAGES[0], "512"))
        # What runs: the target of the last deployment that finished. Only this world finishes
        # deployments, so it keeps account instead of asking ECS at every step (the engine's
        # settle checks that ECS agrees).
        self.primary = first
        self.ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=first,
            desiredCount=1,
            launchType="FARGATE",
            deploymentController={"type": self.CONTROLLER},
        )
        self.outcome.ran.append(IMAGES[0])

    def _register(self, spec: dict[str, Any]) -> str:
        return self.ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]

    def describe(self, arn: str) -> dict[str, Any]:
        if arn not in self.described:
            self.described[arn] = describe(self.ecs, arn)["taskDefinition"]
        return self.described[arn]

    def record_final(self, outcome: Outcome) -> None:
        """Record in `outcome` what runs at the end of the run."""
        final = self.describe(self.primary)
        outcome.final_memory = final["memory"]
        outcome.final_image = images_of(final)[CONTAINER]


def actor(outcome: Outcome, name: str, body):
    """`body` as a scheduled actor: what it raises is recorded (problems() tells a clear
    refusal from a bug)."""

    def run() -> None:
        try:
            body()
        except BaseException as error:
            outcome.errors[name] = error

    return run


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


@dataclass(frozen=True)
class Scenario:
    """Actor P ships `ships` one after another; actor U runs one `pulumi up` rollout of a
    template with `memory` (and the `promoted` image, if any); with `engine_fails_up`, the
    engine fails (and rolls back) U's deployment."""

    ships: tuple[str, ...]
    memory: str = "1024"
    promoted: str | None = None
    engine_fails_up: bool = False

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
    if scenario.engine_fails_up and "U" not in outcome.errors:
        found.append("the engine failed pulumi up's deployment but up reported success")
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
    run: Callable[[str, Scenario], Outcome], scenario: Scenario, part: int | None = None
) -> dict[str, list[str]]:
    """Run every interleaving (or one part of them: every len(parts)-th from `part`) with
    `run`; the failing ones, by schedule."""
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
ROLLBACK = Scenario(ships=(IMAGES[1],), engine_fails_up=True)


class RolloutEngine(abc.ABC):
    """One engine's world for a rollout run; `run` is the run, the rest is what differs."""

    @abc.abstractmethod
    def world(self, outcome: Outcome, scheduler: Scheduler, failing: str | None) -> Any:
        """The run's world (its engine fails the deployments of `failing`), the actors'
        clients acting on it."""

    @abc.abstractmethod
    def deploy(self, world: Any, name: str, template: str | None, images: dict[str, str]):
        """One rollout by actor `name` (a ship, or an `up` of `template`)."""

    @abc.abstractmethod
    def settle(self, world: Any, outcome: Outcome) -> None:
        """Record what runs at the end (the world's own checks first)."""

    def run(self, schedule: str, scenario: Scenario) -> Outcome:
        """One run: P ships `scenario.ships` one after another; U runs one `pulumi up`
        rollout; their steps in the order `schedule` gives."""
        outcome = Outcome()
        with fresh_moto():
            scheduler = Scheduler(schedule)
            world = self.world(outcome, scheduler, "U" if scenario.engine_fails_up else None)
            spec = _spec(IMAGES[0], scenario.memory, family=f"{FAMILY}-template")
            template = world._register(spec)

            def pipeline() -> None:
                for image in scenario.ships:
                    self.deploy(world, "P", None, {CONTAINER: image})

            def pulumi_up() -> None:
                images = {CONTAINER: scenario.promoted} if scenario.promoted else {}
                self.deploy(world, "U", template, images)

            scheduler.run({"P": actor(outcome, "P", pipeline), "U": actor(outcome, "U", pulumi_up)})
            self.settle(world, outcome)
        return outcome


def rollout_exploration_tests(engine: RolloutEngine) -> type:
    """The tests every engine passes, as a class for its file to collect."""

    class Tests:
        @pytest.mark.parametrize("part", parts(ONE_SHIP))
        def test_a_ship_during_a_memory_change_never_reverts_and_the_memory_lands(self, part):
            assert explore(engine.run, ONE_SHIP, part) == {}

        @pytest.mark.parametrize("part", parts(TWO_SHIPS))
        def test_two_ships_during_one_up_never_revert_and_the_memory_lands(self, part):
            assert explore(engine.run, TWO_SHIPS, part) == {}

        @pytest.mark.parametrize("part", parts(PROMOTION))
        def test_a_ship_during_a_promotion_ends_on_the_promoted_release_or_the_newer_ship(
            self, part
        ):
            assert explore(engine.run, PROMOTION, part) == {}

        @pytest.mark.parametrize("part", parts(ROLLBACK))
        def test_a_rollback_of_the_up_by_its_engine_is_reported_and_reverts_nothing(self, part):
            assert explore(engine.run, ROLLBACK, part) == {}

    return Tests

"""The release exploration, for either release engine: its scenarios and invariants, the run
of a release (and its rollback) against a ship or an `up`, and the tests every engine passes.

The release runs as the state machine runs it: the engine's Lambda steps (plan, start, poll,
rollback, rollback poll) called one after another by actor R, on the scheduler of
tests/support/rollout_interleavings.py and each engine's gated clients. Each engine's file
(tests/runtime/test_interleavings_release.py, CodeDeploy; ..._release_ecs.py, ECS) gives its
world as a ReleaseEngine: how R and the other actor reach AWS, and what an order of steps is.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.codedeploy import DeploymentError
from ecs_delivery.runtime.release.engine import EngineConfig, ServiceDeploymentFailed
from ecs_delivery.runtime.release.inventory import Inventory
from ecs_delivery.runtime.release.live import Aws, Clients
from ecs_delivery.runtime.release.steps import (
    StepContext,
    plan_step,
    poll_service_step,
    rollback_poll_step,
    rollback_step,
    start_service_step,
    update_tasks_step,
)
from tests.support.rollout_interleavings import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    IMAGES,
    PORT,
    REGION,
    RUNS_PER_PART,
    SERVICE,
    SESSION,
    Outcome,
    Scheduler,
    _spec,
    actor,
    fresh_moto,
    many_runs,
    schedules,
)

BUCKET = "releases"
RELEASED = IMAGES[1]  # the release's image, named in its manifest
SHIPPED = IMAGES[2]  # the pipeline's later build
MANIFEST = f"release: r1\nenvironment: dev\nservices:\n  web: {{image: '{RELEASED}'}}\n"
_PLAIN: dict[str, Any] = {}
# A deployer polls at most this often (then the run reports where it stopped).
POLLS = 200
CONFIG = EngineConfig(poll_seconds=1, deployment_timeout_seconds=10_000, start_grace_seconds=0)


def _plain(service: str) -> Any:
    """An ungated client (the release's state bucket, and the APIs it does not gate)."""
    if service not in _PLAIN:
        _PLAIN[service] = client(service, SESSION)
    return _PLAIN[service]


def inventory(**engine: str) -> Inventory:
    """The release's one service, web, with the fields of its engine."""
    web = {
        "cluster": CLUSTER,
        "service": SERVICE,
        **engine,
        "container": CONTAINER,
        "containerPort": PORT,
        "taskFamily": FAMILY,
    }
    return Inventory.model_validate({"environment": "dev", "services": {"web": web}})


@dataclass(frozen=True)
class ReleaseScenario:
    """Actor R releases RELEASED while the other actor ships SHIPPED (P) or rolls out a
    memory change (U); with `rollback`, R's release finishes first, and then R rolls it back
    (`release rollback`) while the other actor deploys."""

    other: str
    rollback: bool
    memory: str = "1024"

    # R's deployment: read what runs, CreateDeployment, the re-check, the poll finishing it.
    DEPLOY = 4
    # The rollback: the verify read, its deployment (read, create, re-check, the finishing
    # poll). The verify read that settles it comes after every order: it only reports what
    # runs, so its place among the other actor's steps changes nothing.
    ROLLBACK = 5
    OTHER = 4

    def orders(self):
        """Every order of R's steps and the other actor's (after the finished release)."""
        prefix, mine = ("R" * self.DEPLOY, self.ROLLBACK) if self.rollback else ("", self.DEPLOY)
        for order in schedules(mine, self.OTHER):
            yield prefix + order.replace("P", "R").replace("U", self.other)

    @property
    def count(self) -> int:
        return math.comb((self.ROLLBACK if self.rollback else self.DEPLOY) + self.OTHER, self.OTHER)


def scenarios(kind: type[ReleaseScenario] = ReleaseScenario) -> tuple[ReleaseScenario, ...]:
    """The four explored: a release, then a rollback, each during a ship and during an up."""
    return tuple(kind(other=o, rollback=r) for r in (False, True) for o in ("P", "U"))


RELEASE_VS_SHIP, RELEASE_VS_UP, ROLLBACK_VS_SHIP, ROLLBACK_VS_UP = scenarios()


@dataclass
class ReleaseOutcome(Outcome):
    release_status: str = ""


class ReleaseEngine(abc.ABC):
    """One engine's world for a release run; `run` is the run, the rest is what differs."""

    inventory: Inventory
    # The orders explored of each scenario (an engine may leave out orders equal to others).
    Scenario: type[ReleaseScenario] = ReleaseScenario

    @abc.abstractmethod
    def world(
        self,
        outcome: ReleaseOutcome,
        scheduler: Scheduler,
        actors: tuple[str, str],
        patch: pytest.MonkeyPatch,
    ) -> Any:
        """The run's world, the clients of `actors` acting on it."""

    @abc.abstractmethod
    def release_clients(self, world: Any) -> Clients:
        """R's clients (its ECS and CodeDeploy steps gated)."""

    @abc.abstractmethod
    def clock(self, world: Any) -> Any:
        """What paces the release's polls."""

    @abc.abstractmethod
    def deploy(self, world: Any, name: str, template: str | None, images: dict[str, str]):
        """The other actor's rollout (a ship, or an `up` of `template`)."""

    @abc.abstractmethod
    def settle(self, world: Any, outcome: ReleaseOutcome) -> None:
        """Record what runs at the end (the world's own checks first)."""

    def run(self, schedule: str, scenario: ReleaseScenario) -> ReleaseOutcome:
        """One release run, its steps and the other actor's in the order `schedule` gives."""
        outcome = ReleaseOutcome()
        with fresh_moto(), pytest.MonkeyPatch.context() as patch:
            scheduler = Scheduler(schedule)
            world = self.world(outcome, scheduler, ("R", scenario.other), patch)
            _plain("s3").create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            spec = _spec(IMAGES[0], scenario.memory, family=f"{FAMILY}-template")
            template = world._register(spec)

            def release() -> None:
                clients = self.release_clients(world)
                time = self.clock(world)
                ctx = StepContext(Aws(clients, time), BUCKET, CONFIG)
                # The plan's read of what runs is not a step: the start reads again, and what
                # the rollback returns to is what ran at the start.
                plain = StepContext(Aws(replace(clients, ecs=world.ecs), time), BUCKET, CONFIG)
                plan = plan_step(plain, MANIFEST, self.inventory)
                rid = plan["release_id"]
                failed = None
                try:
                    if plan["services"]:
                        start_service_step(ctx, rid, "web")
                        for _poll in range(POLLS):
                            if poll_service_step(ctx, rid, "web")["status"] == "deployed":
                                break
                            time.sleep(1)
                    update_tasks_step(ctx, rid)
                except ServiceDeploymentFailed as error:
                    failed = {"Error": "ServiceDeploymentFailed", "Cause": str(error)}
                if scenario.rollback or failed:
                    error = failed or {"Error": "Requested", "Cause": "release rollback"}
                    status = rollback_step(ctx, {"plan": plan, "error": error})["status"]
                    for _poll in range(POLLS):
                        if status != "rolling_back":
                            break
                        time.sleep(1)
                        status = rollback_poll_step(ctx, rid)["status"]
                    outcome.release_status = status
                else:
                    outcome.release_status = "succeeded"

            def other() -> None:
                if scenario.other == "P":
                    self.deploy(world, "P", None, {CONTAINER: SHIPPED})
                else:
                    self.deploy(world, "U", template, {})

            scheduler.run(
                {
                    "R": actor(outcome, "R", release),
                    scenario.other: actor(outcome, scenario.other, other),
                }
            )
            self.settle(world, outcome)
        return outcome


def release_problems(outcome: ReleaseOutcome, scenario: ReleaseScenario) -> list[str]:
    """What went wrong in one run; empty when every invariant holds."""
    found = [
        f"{name} failed with {error!r}"
        for name, error in outcome.errors.items()
        if not (name != "R" and isinstance(error, DeploymentError))  # a clear refusal
    ]
    if outcome.empty_deployments:
        found.append(f"empty deployments of {outcome.empty_deployments}")
    ran = outcome.ran
    # What the rollback may put back: the image that ran when the release's first landed.
    replaced = ran[ran.index(RELEASED) - 1] if RELEASED in ran else None
    for before, after in itertools.pairwise(ran):
        older = IMAGES.index(after) < IMAGES.index(before)
        by_name = after == RELEASED  # the release deploys its image, asked to by name
        taken_back = before == RELEASED and after == replaced
        if older and not (by_name or taken_back):
            found.append(f"reverted {before[-8:]} -> {after[-8:]} (ran {[x[-8:] for x in ran]})")
    shipped = scenario.other == "P" and "P" not in outcome.errors
    if scenario.rollback:
        if outcome.release_status != "rolled_back":
            found.append(f"the rollback ended {outcome.release_status or 'nowhere'}")
        wanted = SHIPPED if shipped else IMAGES[0]
        if outcome.final_image != wanted:
            found.append(f"rolled back onto {outcome.final_image[-8:]}, not {wanted[-8:]}")
    elif outcome.release_status == "succeeded" and RELEASED not in ran:
        found.append("the release succeeded but its image never ran")
    if shipped and SHIPPED not in ran:
        found.append("the ship reported success but never ran")
    up_succeeded = scenario.other == "U" and "U" not in outcome.errors
    if up_succeeded and outcome.final_memory != scenario.memory:
        found.append(f"pulumi up succeeded but memory is {outcome.final_memory}")
    return found


def parts(scenario: ReleaseScenario) -> list[int]:
    return list(range(math.ceil(scenario.count / RUNS_PER_PART)))


def explore(
    run: Callable[[str, ReleaseScenario], ReleaseOutcome],
    scenario: ReleaseScenario,
    part: int | None = None,
    first: bool = False,
) -> dict[str, list[str]]:
    """The failing orders, each run with `run` (of one part, with `part`; only the first
    found, with `first`)."""
    work = list(scenario.orders())
    if part is not None:
        work = work[part :: len(parts(scenario))]
    failures = {}
    with many_runs():
        for order in work:
            if found := release_problems(run(order, scenario), scenario):
                failures[order] = found
                if first:
                    break
    return failures


def steps_taken_alone(monkeypatch, run, scenario: ReleaseScenario) -> dict[str, int]:
    """How many steps each actor takes when R runs first, alone, to its end (with `run`)."""
    taken: dict[str, int] = {}
    real = Scheduler.step

    def counting(self, actor):
        taken[actor] = taken.get(actor, 0) + 1
        real(self, actor)

    monkeypatch.setattr(Scheduler, "step", counting)
    run("R" * 40, scenario)
    return taken


def release_exploration_tests(engine: ReleaseEngine) -> type:
    """The tests every engine passes, as a class for its file to collect."""
    release_vs_ship, release_vs_up, rollback_vs_ship, rollback_vs_up = scenarios(engine.Scenario)

    class Tests:
        def test_a_release_alone_deploys_its_image_and_its_rollback_puts_the_previous_one_back(
            self,
        ):
            alone = engine.run("R" * 40, ROLLBACK_VS_UP)
            assert alone.errors == {}
            assert alone.ran[:3] == [IMAGES[0], RELEASED, IMAGES[0]]
            assert alone.release_status == "rolled_back"

        @pytest.mark.parametrize(
            "scenario", [RELEASE_VS_SHIP, ROLLBACK_VS_UP], ids=["deploy", "rollback"]
        )
        def test_the_orders_cover_every_step_the_deployers_take(self, monkeypatch, scenario):
            """Run alone, each actor takes exactly the steps the orders interleave."""
            mine = scenario.DEPLOY + (scenario.ROLLBACK + 1 if scenario.rollback else 0)
            taken = steps_taken_alone(monkeypatch, engine.run, scenario)
            assert taken == {"R": mine, scenario.other: scenario.OTHER}

        @pytest.mark.parametrize("part", parts(release_vs_ship))
        def test_a_release_during_a_ship_never_reverts_and_both_images_run(self, part):
            assert explore(engine.run, release_vs_ship, part) == {}

        @pytest.mark.parametrize("part", parts(release_vs_up))
        def test_a_release_during_an_up_keeps_the_memory_change(self, part):
            assert explore(engine.run, release_vs_up, part) == {}

        @pytest.mark.parametrize("part", parts(rollback_vs_ship))
        def test_rolling_a_release_back_during_a_ship_leaves_the_ship_running(self, part):
            assert explore(engine.run, rollback_vs_ship, part) == {}

        @pytest.mark.parametrize("part", parts(rollback_vs_up))
        def test_rolling_a_release_back_during_an_up_keeps_the_memory_change(self, part):
            assert explore(engine.run, rollback_vs_up, part) == {}

    return Tests

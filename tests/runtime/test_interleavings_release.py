"""Every interleaving of a release (and its whole-release rollback) with a pipeline ship or a
`pulumi up`, against moto and the one CodeDeploy simulator.

The release runs as the state machine runs it: the engine's Lambda steps (plan, start, poll,
rollback, rollback poll) called one after another by actor R, on the same gated clients and
scheduler as tests/runtime/test_interleavings.py (its steps: DescribeServices,
CreateDeployment, and the release's BatchGetDeployments poll, which finishes R's
deployments). The ship (P) and the `up` (U) are the real rollout, as there.

Invariants, in every order: nothing the release did not set goes back (a rollback moves an
image back only from the release's own image to the one that ran just before it); a ship that
reported success runs at the end of a rolled-back release; a memory change an `up` reported
deployed is what runs; no deployment deploys what already runs; the rollback ends rolled back.
"""

from __future__ import annotations

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
from ecs_delivery.runtime.rollout import rollout

from .test_interleavings import (
    ACTORS,
    APPLICATION,
    CLUSTER,
    CONTAINER,
    FAMILY,
    GROUP,
    IMAGES,
    PORT,
    REGION,
    RUNS_PER_PART,
    SERVICE,
    SESSION,
    Outcome,
    Scheduler,
    World,
    _request,
    _spec,
    actor,
    fresh_moto,
    many_runs,
    schedules,
    settle,
)

BUCKET = "releases"
RELEASED = IMAGES[1]  # the release's image, named in its manifest
SHIPPED = IMAGES[2]  # the pipeline's later build
INVENTORY = Inventory.model_validate(
    {
        "environment": "dev",
        "services": {
            "web": {
                "cluster": CLUSTER,
                "service": SERVICE,
                "codedeployApplication": APPLICATION,
                "codedeployGroup": GROUP,
                "container": CONTAINER,
                "containerPort": PORT,
                "taskFamily": FAMILY,
            }
        },
    }
)
MANIFEST = f"release: r1\nenvironment: dev\nservices:\n  web: {{image: '{RELEASED}'}}\n"
_PLAIN: dict[str, Any] = {}
# A deployer polls at most this often (then the run reports where it stopped).
POLLS = 200


def _plain(service: str) -> Any:
    """An ungated client (the release's state bucket, and the task APIs it does not call)."""
    if service not in _PLAIN:
        _PLAIN[service] = client(service, SESSION)
    return _PLAIN[service]


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


@dataclass
class ReleaseOutcome(Outcome):
    release_status: str = ""


def run_release_interleaving(schedule: str, scenario: ReleaseScenario) -> ReleaseOutcome:
    outcome = ReleaseOutcome()
    with fresh_moto():
        scheduler = Scheduler(schedule)
        world = World(outcome, scheduler)
        ACTORS.world = world
        for name in ("R", scenario.other):
            world.sim.attach(ACTORS.of(name)[1])
        _plain("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        template = world._register(_spec(IMAGES[0], scenario.memory, family=f"{FAMILY}-template"))

        def release() -> None:
            ecs, codedeploy = ACTORS.of("R")
            clients = Clients(ecs, codedeploy, _plain("s3"), _plain("events"), _plain("scheduler"))
            config = EngineConfig(
                poll_seconds=1, deployment_timeout_seconds=10_000, start_grace_seconds=0
            )
            ctx = StepContext(Aws(clients, world.sim.clock), BUCKET, config)
            # The plan's read of what runs is not a step: the start reads again, and what
            # the rollback returns to is what ran at the start.
            plain = StepContext(
                Aws(replace(clients, ecs=world.ecs), world.sim.clock), BUCKET, config
            )
            plan = plan_step(plain, MANIFEST, INVENTORY)
            rid = plan["release_id"]
            failed = None
            try:
                if plan["services"]:
                    start_service_step(ctx, rid, "web")
                    for _poll in range(POLLS):
                        if poll_service_step(ctx, rid, "web")["status"] == "deployed":
                            break
                        world.sim.clock.sleep(1)
                update_tasks_step(ctx, rid)
            except ServiceDeploymentFailed as error:
                failed = {"Error": "ServiceDeploymentFailed", "Cause": str(error)}
            if scenario.rollback or failed:
                error = failed or {"Error": "Requested", "Cause": "release rollback"}
                status = rollback_step(ctx, {"plan": plan, "error": error})["status"]
                for _poll in range(POLLS):
                    if status != "rolling_back":
                        break
                    world.sim.clock.sleep(1)
                    status = rollback_poll_step(ctx, rid)["status"]
                outcome.release_status = status
            else:
                outcome.release_status = "succeeded"

        def other() -> None:
            ecs, codedeploy = ACTORS.of(scenario.other)
            if scenario.other == "P":
                request = _request(None, {CONTAINER: SHIPPED})
            else:
                request = _request(template)
            rollout(ecs, codedeploy, request, sleep=lambda _s: None)

        scheduler.run(
            {
                "R": actor(outcome, "R", release),
                scenario.other: actor(outcome, scenario.other, other),
            }
        )
        settle(world, outcome)
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
    scenario: ReleaseScenario,
    part: int | None = None,
    first: bool = False,
    run: Callable[[str, ReleaseScenario], ReleaseOutcome] | None = None,
) -> dict[str, list[str]]:
    """The failing orders (of one part, with `part`; only the first found, with `first`),
    each run with `run` (default: run_release_interleaving, on CodeDeploy)."""
    run = run or run_release_interleaving
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


RELEASE_VS_SHIP = ReleaseScenario(other="P", rollback=False)
ROLLBACK_VS_SHIP = ReleaseScenario(other="P", rollback=True)
RELEASE_VS_UP = ReleaseScenario(other="U", rollback=False)
ROLLBACK_VS_UP = ReleaseScenario(other="U", rollback=True)


def test_a_release_alone_deploys_its_image_and_its_rollback_puts_the_previous_one_back():
    first = run_release_interleaving("R" * 40, ROLLBACK_VS_UP)
    assert first.ran[:3] == [IMAGES[0], RELEASED, IMAGES[0]]
    assert first.release_status == "rolled_back"


def steps_taken_alone(monkeypatch, run, scenario: ReleaseScenario) -> dict[str, int]:
    """How many steps each actor takes when R runs first, alone, to its end, in the world of
    `run` (this file's run_release_interleaving, or the ECS world's)."""
    taken: dict[str, int] = {}
    real = Scheduler.step

    def counting(self, actor):
        taken[actor] = taken.get(actor, 0) + 1
        real(self, actor)

    monkeypatch.setattr(Scheduler, "step", counting)
    run("R" * 40, scenario)
    return taken


@pytest.mark.parametrize("scenario", [RELEASE_VS_SHIP, ROLLBACK_VS_UP], ids=["deploy", "rollback"])
def test_the_orders_cover_every_step_the_deployers_take(monkeypatch, scenario):
    """Run alone, each actor takes exactly the steps the orders interleave."""
    mine = scenario.DEPLOY + (scenario.ROLLBACK + 1 if scenario.rollback else 0)
    taken = steps_taken_alone(monkeypatch, run_release_interleaving, scenario)
    assert taken == {"R": mine, scenario.other: scenario.OTHER}


@pytest.mark.parametrize("part", parts(RELEASE_VS_SHIP))
def test_a_release_during_a_ship_never_reverts_and_both_images_run(part):
    assert explore(RELEASE_VS_SHIP, part) == {}


@pytest.mark.parametrize("part", parts(RELEASE_VS_UP))
def test_a_release_during_an_up_keeps_the_memory_change(part):
    assert explore(RELEASE_VS_UP, part) == {}


@pytest.mark.parametrize("part", parts(ROLLBACK_VS_SHIP))
def test_rolling_a_release_back_during_a_ship_leaves_the_ship_running(part):
    assert explore(ROLLBACK_VS_SHIP, part) == {}


@pytest.mark.parametrize("part", parts(ROLLBACK_VS_UP))
def test_rolling_a_release_back_during_an_up_keeps_the_memory_change(part):
    assert explore(ROLLBACK_VS_UP, part) == {}


def test_the_exploration_sees_a_rollback_that_overwrites_a_newer_ship(monkeypatch):
    """The harness can fail: a rollback that no longer checks, under the group's lock, that
    the release's image still runs puts the previous image over a ship that landed after its
    verify read."""
    from ecs_delivery.runtime.release.core import EngineCore

    real = EngineCore._deploy

    def mutant(self, name, action, images, *args, expect_images=None, **kwargs):
        return real(self, name, action, images, *args, **kwargs)  # expect_images dropped

    monkeypatch.setattr(EngineCore, "_deploy", mutant)
    failures = explore(ROLLBACK_VS_SHIP, first=True)
    assert failures, "the mutant survived every interleaving"
    assert any("reverted" in problem for found in failures.values() for problem in found)

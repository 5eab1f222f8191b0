"""Every interleaving of a release (and its whole-release rollback) with a pipeline ship or a
`pulumi up` on the ECS engine (issue 19).

The scenarios, orders and invariants of tests/runtime/test_interleavings_release.py, in the
ECS world of tests/runtime/test_interleavings_ecs.py: the service on the ECS controller, ECS's
service deployments from the one double (ecs_delivery.offline.ecs_deployments). The release
runs as the state machine runs it (plan, start, poll, rollback, rollback poll); its steps are
those of any ECS deployer: read what runs (DescribeServices), UpdateService, the engine's
re-check under the lock, and the finishing poll, here the release's own watch of its
deployments (the engine's `describe`, DescribeServiceDeployments), which is how it waits.
The release reaches ECS only through the core and its engine (EngineCore._engine); the test
gives it the real EcsEngine with those scheduling points, as the ship and the up get theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import greenlet  # noqa: F401  (the scheduler's; skip cleanly where it is missing)
import pytest

from ecs_delivery.runtime.clock import VirtualClock
from ecs_delivery.runtime.ecs_engine import EcsEngine
from ecs_delivery.runtime.release.core import EngineCore
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
from tests.runtime.test_interleavings import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    IMAGES,
    PORT,
    REGION,
    SERVICE,
    Scheduler,
    _spec,
    actor,
    fresh_moto,
)
from tests.runtime.test_interleavings_ecs import ACTORS, EcsWorld, GatedEngine, _request, settle
from tests.runtime.test_interleavings_release import (
    BUCKET,
    MANIFEST,
    POLLS,
    RELEASE_VS_SHIP,
    RELEASE_VS_UP,
    RELEASED,
    ROLLBACK_VS_SHIP,
    ROLLBACK_VS_UP,
    SHIPPED,
    ReleaseOutcome,
    ReleaseScenario,
    _plain,
    parts,
    release_problems,
    steps_taken_alone,
)
from tests.runtime.test_interleavings_release import explore as explore_with

INVENTORY = Inventory.model_validate(
    {
        "environment": "dev",
        "services": {
            "web": {
                "cluster": CLUSTER,
                "service": SERVICE,
                "engine": "ecs",
                "container": CONTAINER,
                "containerPort": PORT,
                "taskFamily": FAMILY,
            }
        },
    }
)


@dataclass(frozen=True)
class EcsReleaseScenario(ReleaseScenario):
    """The orders of a ReleaseScenario, less those equal to another but for the place of the
    other actor's first step (its read) next to R's reads before R's UpdateService: the
    release's read, or the rollback's verify read and its read. Those steps and what each
    actor does until its next step only read ECS (and register a revision of its own, and
    write the release's state, which the other never reads), so either order of the two is
    the same run: the order with the other's read first stands for them."""

    def orders(self):
        # R's steps before its UpdateService, in the window the other actor shares.
        reads = 2 if self.rollback else 1
        skip = len(self.orders_prefix)
        for order in super().orders():
            first = order.index(self.other, skip)
            if not 0 < first - skip <= reads:
                yield order

    @property
    def orders_prefix(self) -> str:
        return "R" * self.DEPLOY if self.rollback else ""

    @property
    def count(self) -> int:
        return sum(1 for _ in self.orders())


ECS_RELEASE_VS_SHIP, ECS_RELEASE_VS_UP, ECS_ROLLBACK_VS_SHIP, ECS_ROLLBACK_VS_UP = (
    EcsReleaseScenario(other=s.other, rollback=s.rollback)
    for s in (RELEASE_VS_SHIP, RELEASE_VS_UP, ROLLBACK_VS_SHIP, ROLLBACK_VS_UP)
)


class WatchingEngine(GatedEngine):
    """The release's engine: the ECS engine gated as a rollout's is; a deployment the
    release watches (its poll, `describe`) is one it waits for, so that poll may finish it."""

    def describe(self, ids, sleep):  # noqa: ANN001
        ACTORS.world.awaited.update(ids)
        return super().describe(ids, sleep)


def run_release_interleaving(schedule: str, scenario: ReleaseScenario) -> ReleaseOutcome:
    outcome = ReleaseOutcome()
    with fresh_moto(), pytest.MonkeyPatch.context() as patch:
        scheduler = Scheduler(schedule)
        world = EcsWorld(outcome, scheduler)
        ACTORS.world = world
        _plain("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        template = world._register(_spec(IMAGES[0], scenario.memory, family=f"{FAMILY}-template"))
        # Every service of this release is on the ECS engine: the release's ECS client, gated.
        patch.setattr(
            EngineCore, "_engine", lambda core, _name: WatchingEngine(core.aws.clients.ecs, "R")
        )

        def release() -> None:
            ecs = ACTORS.of("R")
            # CodeDeploy has no group here: a CodeDeploy call would fail.
            clients = Clients(
                ecs, _plain("codedeploy"), _plain("s3"), _plain("events"), _plain("scheduler")
            )
            config = EngineConfig(
                poll_seconds=1, deployment_timeout_seconds=10_000, start_grace_seconds=0
            )
            # Time never ends a deployment here (the schedule does): it only paces the polls.
            time = VirtualClock()
            ctx = StepContext(Aws(clients, time), BUCKET, config)
            # The plan's read of what runs is not a step: the start reads again.
            plain = StepContext(Aws(replace(clients, ecs=world.ecs), time), BUCKET, config)
            plan = plan_step(plain, MANIFEST, INVENTORY)
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
            ecs = ACTORS.of(scenario.other)
            if scenario.other == "P":
                request = _request(None, {CONTAINER: SHIPPED})
            else:
                request = _request(template)
            engine = GatedEngine(ecs, scenario.other)
            rollout(ecs, None, request, sleep=lambda _s: None, engine=engine)

        scheduler.run(
            {
                "R": actor(outcome, "R", release),
                scenario.other: actor(outcome, scenario.other, other),
            }
        )
        settle(world, outcome)
    return outcome


def explore(
    scenario: ReleaseScenario, part: int | None = None, first: bool = False
) -> dict[str, list[str]]:
    """test_interleavings_release.explore, each run on the ECS engine."""
    return explore_with(scenario, part, first, run=run_release_interleaving)


def test_on_ecs_a_release_alone_deploys_its_image_and_its_rollback_puts_the_previous_one_back():
    alone = run_release_interleaving("R" * 40, ROLLBACK_VS_UP)
    assert alone.errors == {}
    assert alone.ran[:3] == [IMAGES[0], RELEASED, IMAGES[0]]
    assert alone.release_status == "rolled_back"


@pytest.mark.parametrize(
    ("order", "scenario"),
    [("RRRRURRUURURR", ROLLBACK_VS_UP), ("RRRRPRRPPRPRR", ROLLBACK_VS_SHIP)],
    ids=["up", "ship"],
)
def test_on_ecs_a_rollback_redeploy_withdrawn_for_another_deployer_is_not_taken_for_its_own(
    order, scenario
):
    """Found by the exploration: the other deployer's UpdateService lands between the
    rollback's lock check and its own UpdateService; the engine withdraws the rollback's
    deployment (ECS rolls it back) and reports the service busy. The next rollback step must
    start the redeploy again once the service is free, not adopt that withdrawn deployment
    and report the rollback failed with the release's image still running."""
    outcome = run_release_interleaving(order, scenario)
    assert release_problems(outcome, scenario) == []
    assert outcome.release_status == "rolled_back"


@pytest.mark.parametrize("scenario", [RELEASE_VS_SHIP, ROLLBACK_VS_UP], ids=["deploy", "rollback"])
def test_on_ecs_the_orders_cover_every_step_the_deployers_take(monkeypatch, scenario):
    """Run alone, each actor takes exactly the steps the orders interleave."""
    mine = scenario.DEPLOY + (scenario.ROLLBACK + 1 if scenario.rollback else 0)
    taken = steps_taken_alone(monkeypatch, run_release_interleaving, scenario)
    assert taken == {"R": mine, scenario.other: scenario.OTHER}


@pytest.mark.parametrize(
    ("reduced", "every"),
    [
        (ECS_RELEASE_VS_SHIP, RELEASE_VS_SHIP),
        (ECS_RELEASE_VS_UP, RELEASE_VS_UP),
        (ECS_ROLLBACK_VS_SHIP, ROLLBACK_VS_SHIP),
        (ECS_ROLLBACK_VS_UP, ROLLBACK_VS_UP),
    ],
    ids=["release-ship", "release-up", "rollback-ship", "rollback-up"],
)
def test_on_ecs_an_order_left_out_is_a_kept_one_with_the_other_actors_read_first(reduced, every):
    kept = list(reduced.orders())
    assert len(kept) == reduced.count == (71 if every.rollback else 50)
    skip = len(reduced.orders_prefix)
    for order in every.orders():
        if order in kept:
            continue
        first = order.index(every.other, skip)
        assert 0 < first - skip <= (2 if every.rollback else 1), order
        moved = order[:skip] + every.other + order[skip:first] + order[first + 1 :]
        assert moved in kept, order


@pytest.mark.parametrize("part", parts(ECS_RELEASE_VS_SHIP))
def test_on_ecs_a_release_during_a_ship_never_reverts_and_both_images_run(part):
    assert explore(ECS_RELEASE_VS_SHIP, part) == {}


@pytest.mark.parametrize("part", parts(ECS_RELEASE_VS_UP))
def test_on_ecs_a_release_during_an_up_keeps_the_memory_change(part):
    assert explore(ECS_RELEASE_VS_UP, part) == {}


@pytest.mark.parametrize("part", parts(ECS_ROLLBACK_VS_SHIP))
def test_on_ecs_rolling_a_release_back_during_a_ship_leaves_the_ship_running(part):
    assert explore(ECS_ROLLBACK_VS_SHIP, part) == {}


@pytest.mark.parametrize("part", parts(ECS_ROLLBACK_VS_UP))
def test_on_ecs_rolling_a_release_back_during_an_up_keeps_the_memory_change(part):
    assert explore(ECS_ROLLBACK_VS_UP, part) == {}


def test_on_ecs_the_release_exploration_sees_a_revert_when_the_recheck_is_missing(monkeypatch):
    """The harness can fail: an ECS engine blind to what its deployment replaced (answering
    the re-check with what the core read) lets the rollback put the previous image over a
    ship that landed between the rollback's read and its UpdateService."""
    monkeypatch.setattr(
        EcsEngine, "running_under_lock", lambda self, request, arn, expected, read, sleep: expected
    )
    # (one part of the exploration holds such orders: the mutant is caught within it)
    failures = explore(ECS_ROLLBACK_VS_SHIP, part=0, first=True)
    assert failures, "the mutant survived every interleaving"
    assert any("reverted" in problem for found in failures.values() for problem in found)

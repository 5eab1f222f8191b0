"""Every interleaving of a release (and its whole-release rollback) with a pipeline ship or a
`pulumi up` on the ECS engine (issue 19).

The scenarios, orders and invariants of tests/support/release_interleavings.py (as
tests/runtime/test_interleavings_release.py runs them on CodeDeploy), in the ECS world of
tests/runtime/test_interleavings_ecs.py: the service on the ECS controller, ECS's service
deployments from the one double (ecs_delivery.offline.ecs_deployments). The release runs as
the state machine runs it (plan, start, poll, rollback, rollback poll); its steps are those of
any ECS deployer: read what runs (DescribeServices), UpdateService, the engine's re-check
under the lock, and the finishing poll, here the release's own watch of its deployments (the
engine's `describe`, DescribeServiceDeployments), which is how it waits. The release reaches
ECS only through the core and its engine (EngineCore._engine); the test gives it the real
EcsEngine with those scheduling points, as the ship and the up get theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import greenlet  # noqa: F401  (the scheduler's; skip cleanly where it is missing)
import pytest

from ecs_delivery.runtime.clock import VirtualClock
from ecs_delivery.runtime.ecs_engine import EcsEngine
from ecs_delivery.runtime.release.core import EngineCore
from ecs_delivery.runtime.release.live import Clients
from tests.runtime.test_interleavings_ecs import ACTORS, EcsActors, EcsWorld, GatedEngine
from tests.support.release_interleavings import (
    ROLLBACK_VS_SHIP,
    ROLLBACK_VS_UP,
    ReleaseEngine,
    ReleaseScenario,
    _plain,
    explore,
    inventory,
    release_exploration_tests,
    release_problems,
    scenarios,
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


class WatchingEngine(GatedEngine):
    """The release's engine: the ECS engine gated as a rollout's is; a deployment the
    release watches (its poll, `describe`) is one it waits for, so that poll may finish it."""

    def describe(self, ids, sleep):  # noqa: ANN001
        ACTORS.world.awaited.update(ids)
        return super().describe(ids, sleep)


class EcsRelease(EcsActors, ReleaseEngine):
    """The service on the ECS controller; the release's watch of its deployments is the step
    that finishes them. Time never ends a deployment here (the schedule does): it only paces
    the polls."""

    inventory = inventory(engine="ecs")
    Scenario = EcsReleaseScenario

    def world(self, outcome, scheduler, actors, patch) -> EcsWorld:
        world = EcsWorld(outcome, scheduler)
        ACTORS.world = world
        # Every service of this release is on the ECS engine: the release's ECS client, gated.
        patch.setattr(
            EngineCore, "_engine", lambda core, _name: WatchingEngine(core.aws.clients.ecs, "R")
        )
        return world

    def release_clients(self, world: EcsWorld) -> Clients:
        # CodeDeploy has no group here: a CodeDeploy call would fail.
        return Clients(
            ACTORS.of("R"),
            _plain("codedeploy"),
            _plain("s3"),
            _plain("events"),
            _plain("scheduler"),
        )

    def clock(self, world: EcsWorld) -> VirtualClock:
        return VirtualClock()


ECS = EcsRelease()
TestOnEcs = release_exploration_tests(ECS)


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
    outcome = ECS.run(order, scenario)
    assert release_problems(outcome, scenario) == []
    assert outcome.release_status == "rolled_back"


@pytest.mark.parametrize(
    ("reduced", "every"),
    list(zip(scenarios(EcsReleaseScenario), scenarios(), strict=True)),
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


def test_on_ecs_the_release_exploration_sees_a_revert_when_the_recheck_is_missing(monkeypatch):
    """The harness can fail: an ECS engine blind to what its deployment replaced (answering
    the re-check with what the core read) lets the rollback put the previous image over a
    ship that landed between the rollback's read and its UpdateService."""
    monkeypatch.setattr(
        EcsEngine, "running_under_lock", lambda self, request, arn, expected, read, sleep: expected
    )
    # (one part of the exploration holds such orders: the mutant is caught within it)
    failures = explore(ECS.run, EcsReleaseScenario(other="P", rollback=True), part=0, first=True)
    assert failures, "the mutant survived every interleaving"
    assert any("reverted" in problem for found in failures.values() for problem in found)

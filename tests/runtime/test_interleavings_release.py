"""Every interleaving of a release (and its whole-release rollback) with a pipeline ship or a
`pulumi up`, against moto and the one CodeDeploy simulator.

The release runs as the state machine runs it: the engine's Lambda steps (plan, start, poll,
rollback, rollback poll) called one after another by actor R, on the same gated clients and
scheduler as tests/runtime/test_interleavings.py (its steps: DescribeServices,
CreateDeployment, and the release's BatchGetDeployments poll, which finishes R's
deployments). The ship (P) and the `up` (U) are the real rollout, as there. The scenarios,
the run and the tests both engines pass are tests/support/release_interleavings.py's.

Invariants, in every order: nothing the release did not set goes back (a rollback moves an
image back only from the release's own image to the one that ran just before it); a ship that
reported success runs at the end of a rolled-back release; a memory change an `up` reported
deployed is what runs; no deployment deploys what already runs; the rollback ends rolled back.
"""

from __future__ import annotations

from typing import Any

from ecs_delivery.runtime.release.live import Clients
from tests.runtime.test_interleavings import ACTORS, APPLICATION, GROUP, CodeDeployActors, World
from tests.support.release_interleavings import (
    ROLLBACK_VS_SHIP,
    ReleaseEngine,
    _plain,
    explore,
    inventory,
    release_exploration_tests,
)

INVENTORY = inventory(codedeployApplication=APPLICATION, codedeployGroup=GROUP)


class CodeDeployRelease(CodeDeployActors, ReleaseEngine):
    """The service on the CODE_DEPLOY controller, CodeDeploy simulated; the release's poll
    (BatchGetDeployments) is the step that finishes its deployments."""

    inventory = INVENTORY

    def world(self, outcome, scheduler, actors, patch) -> World:
        world = World(outcome, scheduler)
        ACTORS.world = world
        for name in actors:
            world.sim.attach(ACTORS.of(name)[1])
        return world

    def release_clients(self, world: World) -> Clients:
        ecs, codedeploy = ACTORS.of("R")
        return Clients(ecs, codedeploy, _plain("s3"), _plain("events"), _plain("scheduler"))

    def clock(self, world: World) -> Any:
        return world.sim.clock


CODEDEPLOY = CodeDeployRelease()
TestOnCodeDeploy = release_exploration_tests(CODEDEPLOY)


def test_the_exploration_sees_a_rollback_that_overwrites_a_newer_ship(monkeypatch):
    """The harness can fail: a rollback that no longer checks, under the group's lock, that
    the release's image still runs puts the previous image over a ship that landed after its
    verify read."""
    from ecs_delivery.runtime.release.core import EngineCore

    real = EngineCore._deploy

    def mutant(self, name, action, images, *args, expect_images=None, **kwargs):
        return real(self, name, action, images, *args, **kwargs)  # expect_images dropped

    monkeypatch.setattr(EngineCore, "_deploy", mutant)
    failures = explore(CODEDEPLOY.run, ROLLBACK_VS_SHIP, first=True)
    assert failures, "the mutant survived every interleaving"
    assert any("reverted" in problem for found in failures.values() for problem in found)

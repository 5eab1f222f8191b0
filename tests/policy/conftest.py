"""The role proofs' plan and moto world (tests/support/role_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from ecs_delivery.offline.codedeploy_sim import on_virtual_time
from ecs_delivery.offline.ecs_deployments import EcsDeployments
from tests.conftest import make_plan
from tests.support.iam_calls import CallRecorder
from tests.support.plans import without_workers
from tests.support.role_world import REGION, DevWorld, setup_clients


@pytest.fixture(scope="module")
def plan():
    # dev's CodeDeploy services: the worlds below simulate CodeDeploy, and ECS's deployments
    # only in ecs_world (dev's worker, deployed by the ECS engine, is not in these proofs).
    return make_plan("dev", overrides=without_workers("dev"))


@pytest.fixture
def world(plan) -> Iterator[DevWorld]:
    with mock_aws():
        setup = setup_clients()
        with on_virtual_time(setup["ecs"]) as simulated:
            built = DevWorld(plan=plan, recorder=CallRecorder(), setup=setup, simulated=simulated)
            built.seed()
            yield built


@pytest.fixture(scope="module")
def ecs_plan():
    return make_plan("dev", overrides={"deployment.engine": "ecs"})


@pytest.fixture
def ecs_world(ecs_plan) -> Iterator[DevWorld]:
    """The dev stack on deployment.engine ecs: its services deployed by ECS's own blue/green
    (each service deployment ends a minute after its UpdateService, on the virtual clock)."""
    with mock_aws():
        setup = setup_clients()
        with on_virtual_time(setup["ecs"]) as simulated:
            deployments = EcsDeployments(
                moto=setup["ecs"],
                region=REGION,
                account="123456789012",
                clock=simulated.clock,
                seconds=lambda _service: 60.0,
            )
            built = DevWorld(
                plan=ecs_plan,
                recorder=CallRecorder(),
                setup=setup,
                simulated=simulated,
                ecs_deployments=deployments,
            )
            built.seed()
            yield built

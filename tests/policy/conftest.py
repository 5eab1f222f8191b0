"""The role proofs' plan and moto world (tests/support/role_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from ecs_delivery.offline.codedeploy_sim import on_virtual_time
from tests.conftest import make_plan
from tests.support.iam_calls import CallRecorder
from tests.support.role_world import DevWorld, setup_clients


@pytest.fixture(scope="module")
def plan():
    return make_plan("dev")


@pytest.fixture
def world(plan) -> Iterator[DevWorld]:
    with mock_aws():
        setup = setup_clients()
        with on_virtual_time(setup["ecs"]) as simulated:
            built = DevWorld(plan=plan, recorder=CallRecorder(), setup=setup, simulated=simulated)
            built.seed()
            yield built

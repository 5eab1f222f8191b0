"""The role proofs' plan and moto world (tests/support/role_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ecs_delivery.offline.codedeploy_sim import on_virtual_time
from tests.conftest import make_plan
from tests.support.iam_calls import CallRecorder
from tests.support.role_world import REGION, DevWorld


@pytest.fixture(scope="module")
def plan():
    return make_plan("dev")


@pytest.fixture
def world(plan) -> Iterator[DevWorld]:
    with mock_aws():
        setup = {
            name: boto3.client(name, region_name=REGION)
            for name in ("ecs", "codedeploy", "s3", "scheduler")
        }
        with on_virtual_time(setup["ecs"]) as simulated:
            built = DevWorld(plan=plan, recorder=CallRecorder(), setup=setup, simulated=simulated)
            built.seed()
            yield built

"""Fixtures for the release engine: fake credentials, a simulated AWS, a fast clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws, simulated_aws
from ecs_delivery.runtime.release.engine import EngineConfig
from ecs_delivery.runtime.release.inventory import Inventory
from ecs_delivery.runtime.release.live import Aws
from ecs_delivery.runtime.release.pacing import ScaledClock

# 1 simulated second = 1 ms: a 120 s deployment lasts 0.12 s of the test's time.
SCALE = 1000.0
DEPLOY_SECONDS = 120.0


@pytest.fixture
def make_sim() -> Callable[..., AbstractContextManager[SimulatedAws]]:
    """simulated_aws with a fast clock; keyword arguments pass through."""

    def make(**kwargs: Any) -> AbstractContextManager[SimulatedAws]:
        kwargs.setdefault("duration", DEPLOY_SECONDS)
        return simulated_aws(ScaledClock(SCALE), **kwargs)

    return make


@pytest.fixture
def sim(make_sim: Callable[..., AbstractContextManager[SimulatedAws]]) -> Iterator[SimulatedAws]:
    """20 services, one rule task (job-00) and one Scheduler task (job-01)."""
    with make_sim(services=20) as environment:
        yield environment


# What a test that races Pulumi against the engine on svc-000 gives that service's deployments:
# 30 simulated minutes (1.8 s of the test's time), so the engine's StopDeployment lands before
# the simulator finishes the deployment, also on a loaded machine (at 120 s, 0.12 s, it did not
# always: "succeeded before it could be stopped").
RACE_SECONDS = 1800.0


@pytest.fixture
def racing_sim(
    make_sim: Callable[..., AbstractContextManager[SimulatedAws]],
) -> Iterator[SimulatedAws]:
    """`sim`, with svc-000's deployments lasting RACE_SECONDS."""
    duration = {"duration": lambda name: RACE_SECONDS if name == "svc-000" else DEPLOY_SECONDS}
    with make_sim(services=20, **duration) as environment:
        yield environment


def aws_of(environment: SimulatedAws) -> Aws:
    return Aws(environment.clients, environment.clock)


# The deployment timeout is a wall-clock deadline in disguise (3600 simulated seconds are
# 3.6 s of a loaded test machine): tests that are not about it get ten simulated hours.
TIMEOUT_SECONDS = 36_000.0


def config(**overrides: Any) -> EngineConfig:
    values: dict[str, Any] = {
        "max_parallel": 20,
        "poll_seconds": 5.0,
        "deployment_timeout_seconds": TIMEOUT_SECONDS,
    }
    values.update(overrides)
    return EngineConfig(**values)


def small_inventory(production: bool = True) -> Inventory:
    """An inventory for manifest tests: services web and api, tasks report and cleanup."""
    service = {
        "cluster": "prod-cluster",
        "codedeployApplication": "app",
        "containerPort": 8080,
    }
    return Inventory.model_validate(
        {
            "environment": "prod",
            "production": production,
            "services": {
                "web": {
                    **service,
                    "service": "prod-web",
                    "codedeployGroup": "web",
                    "container": "web",
                },
                "api": {
                    **service,
                    "service": "prod-api",
                    "codedeployGroup": "api",
                    "container": "api",
                },
            },
            "scheduledTasks": {
                "report": {
                    "cluster": "prod-cluster",
                    "taskFamily": "prod-report",
                    "container": "report",
                    "schedule": {"name": "prod-report"},
                },
                "cleanup": {
                    "cluster": "prod-cluster",
                    "taskFamily": "prod-cleanup",
                    "container": "cleanup",
                    "rule": {"name": "prod-cleanup", "targetId": "cleanup"},
                },
            },
        }
    )

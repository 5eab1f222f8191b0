"""Shared fixtures: offline plans of the real program under Pulumi's mock runtime."""

from __future__ import annotations

import json
from functools import cache

import pytest

from tools import plan as plan_tool
from tools.simcloud import SimulatedEnvironment


@cache
def _cached_plan(stack: str, environment_json: str, overrides_json: str) -> plan_tool.Plan:
    environment = SimulatedEnvironment.model_validate(json.loads(environment_json))
    return plan_tool.run(stack, environment=environment, overrides=json.loads(overrides_json))


def make_plan(
    stack: str, environment: dict | None = None, overrides: dict | None = None
) -> plan_tool.Plan:
    """Plan a stack (cached per arguments: plans are deterministic and read-only)."""
    return _cached_plan(
        stack,
        json.dumps(environment or {}, sort_keys=True),
        json.dumps(overrides or {}, sort_keys=True),
    )


@pytest.fixture(scope="session")
def dev_plan() -> plan_tool.Plan:
    return make_plan("dev")


@pytest.fixture(scope="session")
def prod_plan() -> plan_tool.Plan:
    return make_plan("prod")

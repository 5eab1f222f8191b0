"""Plans of the real program with the delivery side (kept as a name the delivery tests share)."""

from __future__ import annotations

from typing import Any

from ecs_delivery.offline import plan as plan_tool
from tests.conftest import make_plan


def delivery_plan(
    stack: str, environment: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> plan_tool.Plan:
    """Plan `stack` (cached per arguments, shared with the other program tests)."""
    return make_plan(stack, environment=environment, overrides=overrides)

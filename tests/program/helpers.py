"""Small readers over a plan's registrations, shared by the program tests."""

from __future__ import annotations

import json
from typing import Any

from ecs_delivery.offline.plan import Plan
from ecs_delivery.offline.simcloud import Registration


def inputs(plan: Plan, type_: str, name: str) -> dict[str, Any]:
    return plan.named(type_, name).inputs


def children_of(plan: Plan, parent: Registration) -> list[Registration]:
    return [r for r in plan.resources if r.parent == parent.urn]


def policy(plan: Plan, name: str) -> dict[str, Any]:
    return json.loads(inputs(plan, "aws:iam/rolePolicy:RolePolicy", name)["policy"])


def containers(plan: Plan, service: str) -> list[dict[str, Any]]:
    return json.loads(
        inputs(plan, "aws:ecs/taskDefinition:TaskDefinition", service)["containerDefinitions"]
    )

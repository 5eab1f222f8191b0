"""Readers over a plan's registrations as registered (inputs raw), and `register` for
components used directly; `plans` has the delivery readers (inputs made plain)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from ecs_delivery.offline.plan import Plan
from ecs_delivery.offline.simcloud import RecordingMonitor, Registration, SimulatedCloud


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


def register(program: Callable[[], None], *, region: str = "eu-west-1") -> Plan:
    """What `program` registers, run as a stack of its own under the simulated cloud: for
    components used directly (a library user's program), without a stack config."""
    cloud = SimulatedCloud(region=region)
    monitor = RecordingMonitor(cloud)
    pulumi_settings.ROOT.set(None)  # a previous run in this process may have stopped half-way
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi.runtime.set_mocks(cloud, project="library", stack="test", preview=False, monitor=monitor)
    _sync_await(run_pulumi_func(program))
    resources = sorted(monitor.registrations, key=lambda r: r.urn)
    return Plan(stack="test", project="library", resources=resources, outputs={})


def types(plan: Plan) -> set[str]:
    return {r.type for r in plan.resources}

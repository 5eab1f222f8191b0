"""Lambda handlers for the release state machine: one per step, each a thin wrapper.

Packaged with the engine's modules (components/release.py, STEP_MODULES): the archive's
root holds `handler.py` and `ecs_delivery/`. Handlers: handler.plan, handler.start_service,
handler.poll_service, handler.update_tasks, handler.rollback, handler.rollback_poll.

Environment:
  STATE_BUCKET                 bucket of releases/<release-id>/state.json (required)
  INVENTORY_KEY                key of the releaseInventory JSON in STATE_BUCKET
                               (default "inventory.json"; only the plan step reads it)
  DEPLOYMENT_TIMEOUT_SECONDS   a deployment running longer fails the release (default 3600)
  START_GRACE_SECONDS          how long a claimed start may still create its deployment
                               (default 900, the longest a Lambda can run)
  END_TERMINATION_WAIT         true: a deployment that finds its group held by another's
                               termination wait ends that wait (deployment.onTerminationWait
                               end); false (default): it does not
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.release.engine import EngineConfig
from ecs_delivery.runtime.release.live import Aws, Clients
from ecs_delivery.runtime.release.steps import (
    StepContext,
    check_syntax,
    environment_flag,
    environment_number,
    event_field,
    load_inventory_object,
    manifest_text,
    plan_step,
    poll_service_step,
    rollback_poll_step,
    rollback_step,
    runner_of,
    split_execution,
    start_service_step,
    update_tasks_step,
)


@cache
def _context() -> StepContext:
    # Built once per container: clients are reused across invocations. The environment is
    # checked first: a bad value is named before any client exists.
    config = EngineConfig(
        deployment_timeout_seconds=environment_number(
            os.environ, "DEPLOYMENT_TIMEOUT_SECONDS", 3600, at_most=86_400
        ),
        start_grace_seconds=environment_number(
            os.environ, "START_GRACE_SECONDS", 900, 86_400, zero=True
        ),
        end_termination_wait=environment_flag(os.environ, "END_TERMINATION_WAIT", False),
    )
    clients = Clients(
        ecs=client("ecs"),
        codedeploy=client("codedeploy"),
        s3=client("s3"),
        events=client("events"),
        scheduler=client("scheduler"),
    )
    return StepContext(aws=Aws(clients), bucket=os.environ["STATE_BUCKET"], config=config)


def plan(event: dict[str, Any], _context_: Any = None) -> dict[str, Any]:
    ctx = _context()
    execution, runner = split_execution(event)
    text = manifest_text(ctx.aws, execution)
    check_syntax(text)  # a manifest that is not YAML is refused before the inventory is read
    inventory = load_inventory_object(
        ctx.aws, ctx.bucket, os.environ.get("INVENTORY_KEY", "inventory.json")
    )
    return plan_step(ctx, text, inventory, runner)


def start_service(event: dict[str, Any], _context_: Any = None) -> dict[str, Any]:
    release, service = event_field(event, "release_id"), event_field(event, "service")
    return start_service_step(_context(), release, service, runner_of(event))


def poll_service(event: dict[str, Any], _context_: Any = None) -> dict[str, Any]:
    release, service = event_field(event, "release_id"), event_field(event, "service")
    return poll_service_step(_context(), release, service, runner_of(event))


def update_tasks(event: dict[str, Any], _context_: Any = None) -> dict[str, Any]:
    return update_tasks_step(_context(), event_field(event, "release_id"), runner_of(event))


def rollback(event: dict[str, Any], _context_: Any = None) -> dict[str, Any]:
    return rollback_step(_context(), *split_execution(event))


def rollback_poll(event: dict[str, Any], _context_: Any = None) -> dict[str, Any]:
    release = event_field(event, "release_id")
    return rollback_poll_step(_context(), release, runner_of(event))

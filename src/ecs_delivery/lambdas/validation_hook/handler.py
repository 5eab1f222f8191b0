"""Lambda entry point of the CodeDeploy `AfterAllowTestTraffic` validation hook.

Thin on purpose: reads the event and the environment, builds the CodeDeploy client, computes
the time budget and hands everything to `logic.run_hook`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Protocol

import boto3
from botocore.config import Config

try:  # archive root = src/ecs_delivery/lambdas/, and the tests: a package name cannot clash with others
    from validation_hook import logic
except ModuleNotFoundError as exc:  # archive root = this folder's contents: flat modules
    if exc.name != "validation_hook":
        raise
    import logic  # type: ignore[no-redef]

# The report client: short timeouts and one retry, so that a CodeDeploy endpoint that does
# not answer is given up on while the Lambda can still log it (10 attempts of 2 + 5 s were
# over a minute, against a 5 s reserve: the Lambda was killed before it said anything).
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
MAX_ATTEMPTS = 2  # in total: the first try and one retry
_SDK_BACKOFF_MAX_SECONDS = 20.0


def report_budget_seconds(connect_timeout: float, read_timeout: float) -> float:
    """The longest the report can take when every attempt times out (botocore's backoff
    between attempts is at most 1 s, doubling); the same sum as runtime.aws's budget."""
    waits = sum(min(2.0**i, _SDK_BACKOFF_MAX_SECONDS) for i in range(MAX_ATTEMPTS - 1))
    return MAX_ATTEMPTS * (connect_timeout + read_timeout) + waits


# Seconds kept back from the Lambda's remaining time for reporting the verdict: a Lambda that
# is killed before it reports leaves the deployment waiting for the hook's one-hour timeout.
REPORT_RESERVE_SECONDS = report_budget_seconds(CONNECT_TIMEOUT, READ_TIMEOUT) + 1.0


def client_config(
    connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT
) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


class InvalidHookEvent(ValueError):
    """The event lacks what CodeDeploy always sends; without it nothing can be reported."""


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def handler(event: Any, context: LambdaContext) -> dict[str, str]:
    """Validate the green tasks through the test listener and report to CodeDeploy (or, for
    ECS's own blue/green, answer ECS with hookStatus)."""
    if logic.is_ecs_event(event):
        remaining_ms = context.get_remaining_time_in_millis()
        logic.log("hook_started", engine="ecs", remaining_ms=remaining_ms)
        return logic.run_ecs_hook(
            event,
            environment=read_environment(os.environ),
            probe=logic.http_probe,
            clock=time.monotonic,
            sleep=time.sleep,
            # No report to send afterwards, but the answer must leave before the Lambda ends.
            deadline=time.monotonic() + remaining_ms / 1000 - REPORT_RESERVE_SECONDS,
        )
    hook = parse_event(event)
    environment = read_environment(os.environ)
    codedeploy = build_codedeploy_client()
    remaining_ms = context.get_remaining_time_in_millis()
    deadline = time.monotonic() + remaining_ms / 1000 - REPORT_RESERVE_SECONDS
    logic.log(
        "hook_started",
        deployment_id=hook.deployment_id,
        hook_execution_id=hook.hook_execution_id,
        remaining_ms=remaining_ms,
    )
    status = logic.run_hook(
        hook,
        codedeploy=codedeploy,
        environment=environment,
        probe=logic.http_probe,
        clock=time.monotonic,
        sleep=time.sleep,
        deadline=deadline,
    )
    return {"deploymentId": hook.deployment_id, "status": status}


def parse_event(event: Any) -> logic.HookEvent:
    """The ids from a CodeDeploy lifecycle hook event; raises InvalidHookEvent naming the field."""
    problems = []
    for field in ("DeploymentId", "LifecycleEventHookExecutionId"):
        value = event.get(field) if isinstance(event, Mapping) else None
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{field}: missing or empty")
    if problems:
        message = (
            "invalid lifecycle hook event (" + "; ".join(problems) + "); this function must be "
            "invoked by CodeDeploy as an ECS AfterAllowTestTraffic hook, which sends "
            '{"DeploymentId": ..., "LifecycleEventHookExecutionId": ...}; nothing was reported'
        )
        logic.log("invalid_event", error=message, received_keys=_keys(event))
        raise InvalidHookEvent(message)
    return logic.HookEvent(
        deployment_id=event["DeploymentId"],
        hook_execution_id=event["LifecycleEventHookExecutionId"],
    )


def read_environment(environ: Mapping[str, str]) -> logic.HookEnvironment:
    """The only place that reads the Lambda's environment; parsing happens inside the guard."""
    return logic.HookEnvironment(
        test_url=environ.get("TEST_URL") or None,
        validation_config=environ.get("VALIDATION_CONFIG"),
    )


def build_codedeploy_client(config: Config | None = None, endpoint_url: str | None = None) -> Any:
    """CodeDeploy client in the Lambda's region, with a retry budget that fits the reserve."""
    return boto3.client("codedeploy", config=config or client_config(), endpoint_url=endpoint_url)


def _keys(event: Any) -> list[str] | str:
    return sorted(map(str, event)) if isinstance(event, Mapping) else type(event).__name__

"""One ECS blue/green deployment's lifecycle in time: its phases, where it is, what it reports.

The model behind `codedeploy_sim.CodeDeploySim` (which answers the API and moves ECS): a
`Lifecycle` is how long each phase of a group's deployments takes, a `Deployment` where one
deployment is and what GetDeployment says about it.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VALIDATION_HOOK = "AfterAllowTestTraffic"


# --------------------------------------------------------------------------- lifecycle

_PREDEFINED = re.compile(
    r"^CodeDeployDefault\.ECS(?:(?P<kind>Canary|Linear)(?P<percent>\d+)Percent"
    r"(?:Every)?(?P<minutes>\d+)Minutes?|AllAtOnce)$"
)


@dataclass(frozen=True)
class Lifecycle:
    """How long each phase of a group's deployments takes, in seconds.

    `shift` lists (seconds after the hook, percent of production traffic on the replacement);
    the deployment has shifted when the last step (100 %) is reached.
    """

    install_seconds: float = 60.0
    hook_seconds: float = 0.0
    shift: tuple[tuple[float, int], ...] = ((0.0, 100),)
    termination_wait_seconds: float = 0.0

    @property
    def shift_seconds(self) -> float:
        return self.shift[-1][0]

    @classmethod
    def of(
        cls,
        config: str,
        termination_wait_minutes: float,
        custom: Mapping[str, tuple[str, int, int]] | None = None,
        start_minutes: float = 4.0,
        hook_minutes: float = 1.0,
    ) -> Lifecycle:
        """The lifecycle of a deployment config: a predefined `CodeDeployDefault.ECS*` name or
        a custom one (`custom[name] = ("canary"|"linear", percent, interval minutes)`)."""
        if custom and config in custom:
            kind, percent, minutes = custom[config]
        else:
            match = _PREDEFINED.match(config)
            if match is None:
                raise ValueError(f"deployment config {config!r} is not known to the simulator")
            kind = (match["kind"] or "all").lower()
            percent, minutes = int(match["percent"] or 100), int(match["minutes"] or 0)
        interval = minutes * 60.0
        if kind == "canary":
            steps: tuple[tuple[float, int], ...] = ((0.0, percent), (interval, 100))
        elif kind == "linear":
            count = -(-100 // percent)
            # Every step takes its interval, the last one included: the predefined linear
            # configs' durations (PREDEFINED_SHIFT_MINUTES) count them so.
            steps = tuple(((i + 1) * interval, min(100, (i + 1) * percent)) for i in range(count))
        else:
            steps = ((0.0, 100),)
        return cls(
            start_minutes * 60.0, hook_minutes * 60.0, steps, termination_wait_minutes * 60.0
        )


def lifecycle_of(stack: Any, service: str) -> Lifecycle:
    """How a deployment of `service` runs with a stack config's settings (`StackConfig`):
    its traffic shifting, the termination wait, and the validation hook's minute."""
    from ecs_delivery.components.config import START_AND_VALIDATE_MINUTES  # the plan's number

    deployment = stack.deployment
    custom = {
        name: (c.type, c.percent, c.interval_minutes)
        for name, c in deployment.custom_configs.items()
    }
    return Lifecycle.of(
        stack.services[service].deployment_config or deployment.config,
        deployment.termination_wait_minutes,
        custom,
        start_minutes=START_AND_VALIDATE_MINUTES - 1,
        hook_minutes=1,
    )


@dataclass(frozen=True)
class Group:
    """A deployment group and the ECS service it deploys to."""

    application: str
    name: str
    cluster: str
    service: str
    # The name tests use for the service (failure injection, durations); default: `service`.
    label: str
    lifecycle: Lifecycle


@dataclass
class Deployment:
    """One deployment and where it is in its lifecycle."""

    deployment_id: str
    group: Group
    task_definition: str
    appspec: dict[str, Any]
    description: str
    created: float
    lifecycle: Lifecycle
    creator: str = "user"
    # Seconds after creation when it fails on its own (health checks, the hook).
    fail_after: float | None = None
    # Seconds after creation when an alarm rolls it back (also after the shift).
    alarm_after: float | None = None
    held: bool = False
    released_at: float | None = None
    finish_at: float | None = None  # finish(): end now, however far it got
    finish_failed: bool = False
    stop_requested: float | None = None
    auto_rollback: bool = False
    continued_at: float | None = None
    status: str = "Created"
    shifted_at: float | None = None
    ended: float | None = None
    error: dict[str, str] | None = None
    rollback_message: str | None = None
    original_task_set: str | None = None
    replacement_task_set: str | None = None

    @property
    def service(self) -> str:
        return self.group.label

    @property
    def application(self) -> str:
        return self.group.application

    @property
    def duration(self) -> float:
        """Seconds from creation until it ends, unheld and unfailed."""
        life = self.lifecycle
        return (
            life.install_seconds
            + self._hook_seconds()
            + life.shift_seconds
            + life.termination_wait_seconds
        )

    @property
    def in_termination_wait(self) -> bool:
        return self.shifted_at is not None and self.ended is None

    def _delay(self) -> float:
        """How long a hold kept it before traffic shifting (infinite while held)."""
        if self.held:
            return float("inf")
        natural = self.created + self.lifecycle.install_seconds + self._hook_seconds()
        if self.released_at is None:
            return 0.0
        return max(0.0, self.released_at - natural)

    def _hook_seconds(self) -> float:
        hooks = self.appspec.get("Hooks") or []
        return self.lifecycle.hook_seconds if any(VALIDATION_HOOK in h for h in hooks) else 0.0

    def shift_start(self) -> float:
        return self.created + self.lifecycle.install_seconds + self._hook_seconds() + self._delay()

    def shifted_time(self) -> float:
        return self.shift_start() + self.lifecycle.shift_seconds

    def end_time(self) -> float:
        natural = self.shifted_time() + self.lifecycle.termination_wait_seconds
        return min(natural, self.continued_at) if self.continued_at is not None else natural

    def failure_time(self) -> tuple[float, str] | None:
        candidates = []
        if self.fail_after is not None and not self.held:
            # A held deployment fails no earlier than its release.
            at = max(self.created + self.fail_after, self.released_at or 0.0)
            candidates.append((at, "HEALTH_CONSTRAINTS"))
        if self.alarm_after is not None:
            candidates.append((self.created + self.alarm_after + self._delay(), "ALARM_ACTIVE"))
        return min(candidates) if candidates else None

    def traffic_percent(self, now: float) -> int:
        """Production traffic on the replacement task set at `now`."""
        if self.ended is not None and self.status != "Succeeded":
            return 0
        start = self.shift_start()
        percent = 0
        for offset, step in self.lifecycle.shift:
            if now >= start + offset:
                percent = step
        return percent

    def info(self) -> dict[str, Any]:
        """GetDeployment's `deploymentInfo`."""
        info: dict[str, Any] = {
            "applicationName": self.group.application,
            "deploymentGroupName": self.group.name,
            "deploymentId": self.deployment_id,
            "status": self.status,
            "description": self.description,
            "createTime": as_datetime(self.created),
            "computePlatform": "ECS",
            "deploymentOverview": {},
            "creator": self.creator,
            "deploymentStyle": {
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            },
            "instanceTerminationWaitTimeStarted": self.shifted_at is not None,
            "revision": {
                "revisionType": "AppSpecContent",
                "appSpecContent": {"content": json.dumps(self.appspec)},
            },
        }
        if self.ended is not None:
            info["completeTime"] = as_datetime(self.ended)
        if self.error:
            info["errorInformation"] = dict(self.error)
        if self.rollback_message:
            info["rollbackInfo"] = {"rollbackMessage": self.rollback_message}
        return info


def as_datetime(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)

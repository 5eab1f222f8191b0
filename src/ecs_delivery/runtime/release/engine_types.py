"""The release engine's vocabulary: how a run is configured, what it reports, how it ends.

Also the errors that end a step or a run, and the one-line reasons they are recorded as.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ecs_delivery.runtime.release.state import ReleaseState


@dataclass(frozen=True)
class EngineConfig:
    """How a release runs. Defaults suit a real AWS account."""

    max_parallel: int = 10
    poll_seconds: float = 15.0
    deployment_timeout_seconds: float = 3600.0
    # RegisterTaskDefinition is throttled hard (burst 20, then 1/s): pace to it.
    register_rate: float = 1.0
    register_burst: int = 20
    # Threads that run starts (register + create deployment); waiting never holds one.
    start_workers: int = 16
    # How long a claimed start without a recorded deployment may still produce one. The CLI
    # joins its own workers (0); a Lambda may still be running for up to its timeout.
    start_grace_seconds: float = 0.0
    # deployment.onTerminationWait "end": a deployment of the release (or of its rollback)
    # that finds the group held only by another deployment's termination wait ends that wait
    # (ContinueDeployment) instead of failing or waiting; "wait" (False) leaves it alone.
    end_termination_wait: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.max_parallel < 1:
            problems.append(f"max_parallel: {self.max_parallel} must be at least 1")
        # `not (x > 0)` also refuses NaN, which every comparison answers False.
        for name in ("poll_seconds", "deployment_timeout_seconds", "register_rate"):
            value = getattr(self, name)
            if not (0 < value < math.inf):
                problems.append(f"{name}: {value} must be a positive, finite number")
        if not (0 <= self.start_grace_seconds < math.inf):
            problems.append(
                f"start_grace_seconds: {self.start_grace_seconds} must be a finite number >= 0"
            )
        if self.register_burst < 1:
            problems.append(f"register_burst: {self.register_burst} must be at least 1")
        if self.start_workers < 1:
            problems.append(f"start_workers: {self.start_workers} must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Event:
    """A transition the engine just persisted (for progress displays and logs)."""

    kind: str  # "service" | "task" | "release"
    name: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """How a run ended; `exit_code` is what the CLI returns."""

    release_id: str
    status: str  # no_changes | succeeded | rolled_back | rollback_failed | rolling_back
    failed_item: str | None = None
    failure: str | None = None
    state: ReleaseState | None = None

    @property
    def exit_code(self) -> int:
        if self.status in ("no_changes", "succeeded"):
            return 0
        if self.status == "rolled_back":
            return 1
        return 3


class ReleaseInputError(ValueError):
    """The release cannot run as asked (nothing was deployed); CLI exit code 2."""


class ReleaseBusyError(ReleaseInputError):
    """Another runner holds the release's lease: this one does nothing."""


class ReleaseStopped(RuntimeError):
    """The release is being rolled back (by a failure elsewhere or by a person)."""


class ServiceDeploymentFailed(RuntimeError):
    """A service's deployment failed; the release must roll back."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"service {name}: {reason}")


class TaskUpdateFailed(RuntimeError):
    """A scheduled task's trigger could not be updated; the release must roll back."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"scheduled task {name}: {reason}")


class _Aborted(Exception):
    """The run is being aborted: a paced registration was cancelled."""


class _Failure(Exception):
    def __init__(self, item: str | None, reason: str) -> None:
        super().__init__(f"{item or 'release'}: {reason}")
        self.item = item
        self.reason = reason


def _reason(error: BaseException) -> str:
    if isinstance(error, ServiceDeploymentFailed | TaskUpdateFailed):
        return error.reason
    text = str(error) or type(error).__name__
    return text if len(text) < 400 else text[:397] + "..."

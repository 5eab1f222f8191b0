"""Deploy a scheduled task at deploy time: every deployer registers onto the newest revision.

A scheduled task's schedule names its family, not a revision, so each run starts the newest
ACTIVE revision of the family (RunTask's rule for a family without a revision). What the task
runs is therefore decided by the newest revision alone, and every deployer (the `pulumi up`
rollout with Pulumi's fields, a pipeline ship or a release with an image, a rollback) changes
it the same way: read the newest revision, overlay only its own fields, register.

ECS numbers a family's revisions one after another, atomically. A registration numbered right
after the revision it was built on had nobody in between; otherwise another deployer
registered meanwhile, and its revision lacks ours or ours lacks its: merge again onto the
newest revision that is not our stale one and register again. Each deployer repairing its
own stale registration this way keeps both deployers' fields (the exploration in
tests/runtime/test_interleavings_tasks.py runs every order of two deployers' calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from ecs_delivery.runtime import clock as runtime_clock
from ecs_delivery.runtime.rollout import DEFAULT_MERGE_ATTEMPTS, RolloutRaceError
from ecs_delivery.runtime.taskdef import (
    describe,
    images_of,
    overlay_owned,
    register_request,
    same_content,
)
from ecs_delivery.runtime.taskdef import register as register_revision

TaskAction = Literal["registered", "none-same-content", "superseded"]


class TaskStateError(RuntimeError):
    """The task's family holds no revision to put an image on (`pulumi up` creates it)."""


@dataclass(frozen=True, kw_only=True)
class TaskChange:
    """What one deployer sets on a scheduled task's family.

    `template` (a DescribeTaskDefinition response) carries Pulumi's fields: every field but
    the images, which stay as the newest revision runs them. `images` (container -> image)
    are the deployer's: a ship's, a release's, a rollback's, or a pinned or newly promoted
    image of the `pulumi up` rollout. `expect_images`: change nothing unless the newest
    revision still runs these (a rollback restores only where the release's image runs).
    """

    family: str
    template: Mapping[str, Any] | None = None
    images: Mapping[str, str] = field(default_factory=dict)
    expect_images: Mapping[str, str] = field(default_factory=dict)
    # Images of the family's first revision, when it has none yet (a new task that follows a
    # running service starts on that service's image).
    initial_images: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise ValueError("family: must be a non-empty string")
        if self.template is None and not self.images:
            raise ValueError("images: required without a template (nothing to deploy)")


@dataclass(frozen=True)
class TaskResult:
    """What deploy_task() did; `task_definition_arn` is the newest revision it left."""

    action: TaskAction
    task_definition_arn: str
    images: dict[str, str]


def revision_number(arn: str) -> int:
    """The revision of `...:task-definition/<family>:<revision>`."""
    return int(arn.rsplit(":", 1)[1])


def newest(ecs: Any, family: str, sleep: Callable[[float], Any] = runtime_clock.sleep) -> Any:
    """The newest ACTIVE revision of `family` (with tags), or None when it has none."""
    try:
        return describe(ecs, family, include_tags=True, sleep=sleep)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ClientException":
            return None  # "Unable to describe task definition": nothing registered yet
        raise


def _merge(change: TaskChange, base: Mapping[str, Any] | None) -> dict[str, Any]:
    """RegisterTaskDefinition kwargs: `change` overlaid onto `base` (a described revision)."""
    if change.template is not None:
        template = change.template["taskDefinition"]
        running = base["taskDefinition"] if base else template
        images = change.images if base else {**change.initial_images, **change.images}
        wanted = overlay_owned(template, running, family=change.family, images=images)
        tags = change.template.get("tags")
    else:
        assert base is not None
        wanted = register_request(base["taskDefinition"], change.images)
        tags = base.get("tags")
    return {**wanted, **({"tags": tags} if tags else {})}


def carries(change: TaskChange, described: Mapping[str, Any]) -> bool:
    """True when overlaying `change` onto this revision would change nothing."""
    return same_content(_merge(change, described), described["taskDefinition"])


def deploy_task(
    ecs: Any,
    change: TaskChange,
    *,
    register: Callable[[Mapping[str, Any]], str | None] | None = None,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    merge_attempts: int = DEFAULT_MERGE_ATTEMPTS,
    start: str | None = None,
) -> TaskResult:
    """Register `change` onto the newest revision of its family, unless it carries it already.

    `register` registers a revision (default: RegisterTaskDefinition with backoff; the release
    engine paces it) and returns its ARN; None means "stop": deploy_task returns what is
    newest then, as superseded. `start` is a revision the task's trigger still names (a
    schedule from before schedules named the family): the first merge builds on it, since
    it is what runs.
    """
    register = register or (lambda registration: register_revision(ecs, registration, sleep))
    stale: set[int] = set()  # our own registrations that others' revisions overtook
    for _attempt in range(merge_attempts):
        latest = newest(ecs, change.family, sleep)
        base = latest
        while base is not None and revision_number(_arn(base)) in stale:
            # Ours, built on too old a base: build on the one before it instead.
            base = describe(
                ecs,
                f"{change.family}:{revision_number(_arn(base)) - 1}",
                include_tags=True,
                sleep=sleep,
            )
        if start is not None and _attempt == 0 and (latest is None or _arn(latest) != start):
            base = describe(ecs, start, include_tags=True, sleep=sleep)
        if base is None and change.template is None:
            raise TaskStateError(
                f"task family {change.family} has no revision to deploy an image onto; "
                "run `pulumi up` first (it registers the task's first revision)"
            )
        if base is not None:
            running = base["taskDefinition"]
            if any(images_of(running).get(c) != i for c, i in change.expect_images.items()):
                return TaskResult("superseded", _arn(base), images_of(running))
            if base is latest and carries(change, base):
                return TaskResult("none-same-content", _arn(base), images_of(running))
        wanted = _merge(change, base)
        arn = register(wanted)
        if arn is None:
            return TaskResult("superseded", _arn(latest) if latest else "", {})
        if latest is None or revision_number(arn) == revision_number(_arn(latest)) + 1:
            return TaskResult("registered", arn, images_of(wanted))
        stale.add(revision_number(arn))  # someone registered between our read and ours
    raise RolloutRaceError(
        f"scheduled task family {change.family}: other deployers registered revisions "
        f"{merge_attempts} times while this one merged onto the newest; the newest may lack "
        "this change: run it again once the pipeline is quiet (it merges onto the newest)."
    )


def _arn(described: Mapping[str, Any]) -> str:
    return str(described["taskDefinition"]["taskDefinitionArn"])

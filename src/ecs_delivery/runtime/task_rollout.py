"""Deploy a scheduled task at deploy time: every deployer registers onto the newest revision.

A scheduled task's schedule names its family, not a revision, so each run starts the newest
ACTIVE revision of the family (RunTask's rule for a family without a revision). What the task
runs is therefore decided by the newest revision alone, and every deployer (the `pulumi up`
rollout with Pulumi's fields, a pipeline ship or a release with an image, a rollback) changes
it the same way: read the newest revision, overlay only its own fields, register.

ECS numbers a family's revisions one after another, atomically, but has no compare-and-set.
So each registration is tagged with the newest revision its deployer read (READ_TAG), and a
revision is *current* when no current revision came between that read and it; one that was
overtaken is newest only until its deployer merges again. Every deployer builds on the newest
current revision and judges what runs by it (a rollback too), never on another's overtaken
one: the current revisions form one chain, each carrying the changes of those before it (the
exploration in tests/runtime/test_interleavings_tasks.py runs every order of two and of three
deployers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
# On each registration: the number of the newest revision its deployer read before it.
READ_TAG = "ecs-delivery:read-revision"


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


def _read_of(described: Mapping[str, Any]) -> int | None:
    value = next((t["value"] for t in described.get("tags") or [] if t["key"] == READ_TAG), None)
    return int(value) if isinstance(value, str) and value.isdigit() else None


class _Revisions:
    """A family's revisions as one deploy_task() sees them; a registered revision never
    changes, so each is described once and judged once."""

    def __init__(self, ecs: Any, family: str, sleep: Callable[[float], Any]) -> None:
        self.ecs, self.family, self.sleep = ecs, family, sleep
        self.described: dict[int, Any] = {}
        self.verdicts: dict[int, bool] = {}

    def get(self, number: int) -> Any:
        if number not in self.described:
            self.described[number] = describe(
                self.ecs, f"{self.family}:{number}", include_tags=True, sleep=self.sleep
            )
        return self.described[number]

    def overtaken(self, number: int, read: int) -> bool:
        """True when a current revision was registered after `read` and before `number`."""
        return any(self.current(n) for n in range(read + 1, number))

    def current(self, number: int) -> bool:
        """Built on the newest current revision (no current one came between its deployer's
        read and it). Untagged ones (the first, one registered by hand or older code) are."""
        if number not in self.verdicts:
            read = _read_of(self.get(number))
            self.verdicts[number] = read is None or not self.overtaken(number, read)
        return self.verdicts[number]

    def newest_current(self, latest: Any) -> Any:
        """The newest current revision at or before `latest`: what every deployer builds on."""
        if latest is None:
            return None
        number = revision_number(_arn(latest))
        self.described.setdefault(number, latest)
        while not self.current(number):
            number -= 1
        return self.get(number)


def newest_current(
    ecs: Any, family: str, sleep: Callable[[float], Any] = runtime_clock.sleep
) -> Any:
    """The revision every deployer of `family` builds on now (None when it has none)."""
    return _Revisions(ecs, family, sleep).newest_current(newest(ecs, family, sleep))


def _merge(
    change: TaskChange, base: Mapping[str, Any] | None, read: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """RegisterTaskDefinition kwargs: `change` overlaid onto `base` (a described revision),
    tagged with the newest revision `read` (when there is one)."""
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
    return _tagged(wanted, tags, read)


def _tagged(wanted: dict[str, Any], tags: Any, read: Mapping[str, Any] | None) -> dict[str, Any]:
    """`wanted` with `tags`, READ_TAG naming `read` instead of the one copied from a base."""
    tags = [t for t in tags or [] if t["key"] != READ_TAG]
    if read is not None:
        tags.append({"key": READ_TAG, "value": str(revision_number(_arn(read)))})
    return {**wanted, **({"tags": tags} if tags else {})}


def carries(change: TaskChange, described: Mapping[str, Any]) -> bool:
    """True when overlaying `change` onto this revision would change nothing."""
    return same_content(_merge(change, described), described["taskDefinition"])


def _nothing_to_add(change: TaskChange, base: Mapping[str, Any] | None) -> TaskResult | None:
    """What deploy_task() reports when `change` has nothing to register onto `base`."""
    if base is None:
        return None
    running = base["taskDefinition"]
    if any(images_of(running).get(c) != i for c, i in change.expect_images.items()):
        return TaskResult("superseded", _arn(base), images_of(running))
    if carries(change, base):
        # A newer, overtaken revision is its own deployer's to repair.
        return TaskResult("none-same-content", _arn(base), images_of(running))
    return None


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
    revisions = _Revisions(ecs, change.family, sleep)
    mine: set[int] = set()  # our registrations that were overtaken
    for _attempt in range(merge_attempts):
        latest = newest(ecs, change.family, sleep)
        base = revisions.newest_current(latest)
        if start is not None and _attempt == 0 and (latest is None or _arn(latest) != start):
            base = describe(ecs, start, include_tags=True, sleep=sleep)
        if base is None and change.template is None:
            raise TaskStateError(
                f"task family {change.family} has no revision to deploy an image onto; "
                "run `pulumi up` first (it registers the task's first revision)"
            )
        done = _nothing_to_add(change, base)
        if done is not None and (latest is None or revision_number(_arn(latest)) not in mine):
            return done
        if done is None:
            wanted = _merge(change, base, latest)
        else:
            # Our overtaken registration is what runs: register what is current over it.
            assert base is not None
            wanted = _tagged(register_request(base["taskDefinition"]), base.get("tags"), latest)
        arn = register(wanted)
        if arn is None:
            return TaskResult("superseded", _arn(latest) if latest else "", {})
        read = revision_number(_arn(latest)) if latest else None
        if read is None or not revisions.overtaken(revision_number(arn), read):
            return replace(
                done or TaskResult("registered", arn, images_of(wanted)), task_definition_arn=arn
            )
        # A current revision came between our read and ours: merge again onto the newest.
        mine.add(revision_number(arn))
    raise RolloutRaceError(
        f"scheduled task family {change.family}: other deployers registered revisions "
        f"{merge_attempts} times while this one merged onto the newest; the newest may lack "
        "this change: run it again once the pipeline is quiet (it merges onto the newest)."
    )


def _arn(described: Mapping[str, Any]) -> str:
    return str(described["taskDefinition"]["taskDefinitionArn"])

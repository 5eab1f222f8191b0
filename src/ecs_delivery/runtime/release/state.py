"""A release's persisted state: one S3 object per release, written after every transition.

Key: `releases/<release-id>/state.json`. Writes are conditional (If-Match on the ETag last
read, If-None-Match on creation), so several writers (the CLI, the Lambda steps of a Map
running in parallel, a `release rollback` from another terminal) never lose each other's
changes: a writer that loses the race re-reads the object and re-applies its change.
Every change is a function of the state it is applied to, which makes that re-apply safe
and lets a change "claim" a step (e.g. "start this deployment") only once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecs_delivery.runtime.aws import call_with_backoff
from ecs_delivery.runtime.release.inventory import ServiceTarget, TaskTarget
from ecs_delivery.runtime.release.pacing import Clock

T = TypeVar("T")

ReleaseStatus = Literal["running", "succeeded", "rolling_back", "rolled_back", "rollback_failed"]
# pending: nothing done; starting: new revision registered and the deployment claimed (it
# may or may not exist in CodeDeploy yet); deploying: deployment id recorded.
ServiceStatus = Literal["pending", "starting", "deploying", "deployed", "failed"]
# stopping: stop (with rollback) requested for an in-flight deployment; redeploying: a
# deployment of the previous revision claimed/started; verifying: waiting for the group
# to be idle and the service to run its previous revision.
# superseded: another deployer changed what the release set since; the rollback left it.
RollbackStatus = Literal[
    "stopping", "verifying", "redeploying", "rolled_back", "not_needed", "superseded", "failed"
]
TaskStatus = Literal["pending", "updating", "updated", "failed"]
TERMINAL_RELEASE: frozenset[str] = frozenset({"succeeded", "rolled_back", "rollback_failed"})
SETTLED_ROLLBACK: frozenset[str] = frozenset({"rolled_back", "not_needed", "superseded", "failed"})


# The newest layout this engine writes; a state written by a newer engine says a higher
# number. 2: a release that sets sidecars (an engine of schema 1 would deploy and roll back
# only each service's own container, so its `apply` refuses such a state); a release that
# sets none still writes 1, which every engine runs.
SCHEMA_VERSION = 2
SCHEMA_WITHOUT_SIDECARS = 1


class _State(BaseModel):
    # Mutable on purpose: the state is a record that the engine moves forward in place
    # under StateStore.update, which re-reads it when another writer got there first.
    # Fields a newer engine added are kept as they are (read, and written back).
    model_config = ConfigDict(extra="allow", validate_assignment=False)


class ServiceState(_State):
    """One service of a release."""

    target: ServiceTarget
    previous_td: str
    # The main container (target.container): what it ran before, what the release sets.
    previous_image: str
    image: str
    # The built sidecars the manifest sets (container -> image), and what each ran before;
    # empty in states written before releases set sidecars.
    sidecar_images: dict[str, str] = Field(default_factory=dict)
    previous_sidecar_images: dict[str, str] = Field(default_factory=dict)
    new_td: str | None = None
    deployment_id: str | None = None
    status: ServiceStatus = "pending"
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    rollback: RollbackStatus | None = None
    rollback_deployment_id: str | None = None
    rollback_started_at: float | None = None
    rollback_error: str | None = None
    # Why the rollback left a field as it runs (a newer deployment set it).
    rollback_note: str | None = None

    @property
    def images(self) -> dict[str, str]:
        """container -> image the release sets: the main container and its sidecars."""
        return {self.target.container: self.image, **self.sidecar_images}

    @property
    def previous_images(self) -> dict[str, str]:
        """container -> image each of `images` ran before the release."""
        return {self.target.container: self.previous_image, **self.previous_sidecar_images}

    @property
    def changed(self) -> dict[str, tuple[str, str]]:
        """container -> (before, release's image) of each container the release changes
        (the main container when none does: what a rollback checks)."""
        before = self.previous_images
        moved = {c: (before.get(c, ""), image) for c, image in self.images.items()}
        changed = {c: pair for c, pair in moved.items() if pair[0] != pair[1]}
        return changed or {self.target.container: moved[self.target.container]}

    def record_previous(self, images: dict[str, str]) -> None:
        """Set what each container the release sets ran before, from `images` (container ->
        image of the revision it replaces)."""
        self.previous_image = images.get(self.target.container, "")
        self.previous_sidecar_images = {c: images.get(c, "") for c in self.sidecar_images}


class TaskState(_State):
    """One scheduled task of a release: its trigger before, and what the release sets."""

    target: TaskTarget
    previous_td: str
    previous_image: str
    image: str
    follows_service: str | None = None
    previous_schedule: str
    schedule: str
    previous_command: list[str] | None = None
    command: list[str] | None = None
    new_td: str | None = None
    status: TaskStatus = "pending"
    error: str | None = None
    rollback: Literal["rolled_back", "not_needed", "superseded", "failed"] | None = None
    rollback_error: str | None = None
    rollback_note: str | None = None


class Lease(_State):
    """Who runs the release now, until when (renewed while it runs)."""

    owner: str
    expires_at: float


class ReleaseState(_State):
    """The whole release: what it changes, how far it got, and why it stopped."""

    release_id: str
    environment: str
    manifest_digest: str
    status: ReleaseStatus = "running"
    created_at: float
    updated_at: float
    failure: str | None = None
    failed_item: str | None = None
    services: dict[str, ServiceState] = Field(default_factory=dict)
    tasks: dict[str, TaskState] = Field(default_factory=dict)
    unchanged_services: list[str] = Field(default_factory=list)
    unchanged_tasks: list[str] = Field(default_factory=list)
    version: int = 0
    # States written before the schema had a number are version 1.
    schema_version: int = SCHEMA_WITHOUT_SIDECARS
    lease: Lease | None = None


class Unchanged(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by an update function to skip the write and return `value`."""

    def __init__(self, value: Any = None) -> None:
        super().__init__()
        self.value = value


class StateReadError(ValueError):
    """The state object exists but is not a release state this engine can parse."""


class StateConflictError(RuntimeError):
    """The state object kept changing under us; another runner is very busy."""


def state_key(release_id: str) -> str:
    return f"releases/{release_id}/state.json"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class StateStore:
    """Reads and conditionally writes one release's state object (thread-safe)."""

    MAX_CONFLICTS = 50

    def __init__(self, s3: Any, bucket: str, release_id: str, clock: Clock) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.release_id = release_id
        self.key = state_key(release_id)
        self._clock = clock
        self._lock = threading.RLock()
        self._state: ReleaseState | None = None
        self._etag: str | None = None
        self.writes = 0
        # Checks the state before every change, also one re-applied after a conflict; what
        # it raises ends the update unwritten (a step whose runner's lease was taken over).
        self.guard: Callable[[ReleaseState], None] | None = None

    def _call(self, fn: Callable[..., T], **kwargs: Any) -> T:
        return call_with_backoff(fn, sleep=self._clock.sleep, **kwargs)

    def load(self) -> ReleaseState | None:
        """Read the object (None if the release has no state yet)."""
        with self._lock:
            try:
                response = self._call(self._s3.get_object, Bucket=self.bucket, Key=self.key)
            except ClientError as error:
                if _code(error) in ("NoSuchKey", "404"):
                    self._state, self._etag = None, None
                    return None
                raise
            body = response["Body"].read()
            try:
                self._state = ReleaseState.model_validate_json(body)
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "(the document)"
                raise StateReadError(
                    f"release state s3://{self.bucket}/{self.key} cannot be read ({where}: "
                    f"{first['msg']}); it is truncated or was not written by ecs-delivery. "
                    "Restore its previous version from the bucket (if versioning is on) or "
                    "delete it if that release never deployed anything"
                ) from None
            self._etag = response["ETag"]
            return self._state

    @property
    def state(self) -> ReleaseState:
        """The last state read or written (load() first)."""
        with self._lock:
            if self._state is None and self.load() is None:
                raise LookupError(f"release {self.release_id} has no state in {self.bucket}")
            assert self._state is not None
            return self._state

    def create(self, state: ReleaseState) -> bool:
        """Write the first state; False (and the existing state loaded) if one exists."""
        with self._lock:
            try:
                response = self._call(
                    self._s3.put_object,
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=state.model_dump_json().encode(),
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except ClientError as error:
                if _code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
                    self.load()
                    return False
                raise
            self._state, self._etag = state, response["ETag"]
            self.writes += 1
            return True

    def update(self, change: Callable[[ReleaseState], T]) -> T:
        """Apply `change` to the current state and write it; retry on a concurrent write.

        `change` may raise Unchanged(value) to return without writing; any other exception
        propagates and the cached state is dropped (it may be half-changed).
        """
        with self._lock:
            for _ in range(self.MAX_CONFLICTS):
                state = self.state
                try:
                    if self.guard is not None:
                        self.guard(state)
                    result = change(state)
                except Unchanged as unchanged:
                    return unchanged.value
                except BaseException:
                    self._state = None
                    raise
                state.version += 1
                state.updated_at = self._clock.time()
                try:
                    response = self._call(
                        self._s3.put_object,
                        Bucket=self.bucket,
                        Key=self.key,
                        Body=state.model_dump_json().encode(),
                        ContentType="application/json",
                        IfMatch=self._etag,
                    )
                except ClientError as error:
                    if _code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
                        self.load()  # someone else wrote: re-apply our change to theirs
                        continue
                    self._state = None
                    raise
                self._etag = response["ETag"]
                self.writes += 1
                return result
            raise StateConflictError(
                f"state {self.key} changed {self.MAX_CONFLICTS} times while we tried to write it"
            )

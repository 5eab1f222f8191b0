"""The release engine: one implementation behind the CLI, the Lambda steps and the benchmark.

Steps (each idempotent, each persisting its transition before returning):

- `prepare` / `begin`: load the release's state, or plan it and write the first state;
- `start_service`: register a revision with the new image (Pulumi-owned fields kept), claim
  the start in the state, create the CodeDeploy deployment, record its id;
- `poll_services`: one BatchGetDeployments per 25 in-flight deployments;
- `update_tasks`: new revision per scheduled task, trigger pointed at it;
- `start_rollback` / `rollback_step`: stop in-flight deployments with rollback, redeploy the
  previous revision of finished ones, restore scheduled-task triggers, verify.

`apply` drives the steps locally: registrations are paced by a client-side token bucket at
the API's rate, a small thread pool runs the starts, and one loop polls every deployment
in flight, so waiting never holds a worker and concurrency is capped by `max_parallel`.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.aws import chunks, is_throttling
from ecs_delivery.runtime.codedeploy import (
    FAILED_STATUSES,
    IN_PROGRESS_STATUSES,
    DeploymentInProgressError,
    StopTooLateError,
    validation_hooks,
)
from ecs_delivery.runtime.release.inventory import Inventory, ServiceTarget
from ecs_delivery.runtime.release.live import (
    Aws,
    LiveStateError,
    TaskDefinitions,
    Trigger,
    read_trigger,
    running_task_definitions,
    write_trigger,
)
from ecs_delivery.runtime.release.manifest import Manifest, same_manifest
from ecs_delivery.runtime.release.pacing import TokenBucket
from ecs_delivery.runtime.release.plan import Plan, compute_plan
from ecs_delivery.runtime.release.state import (
    SCHEMA_VERSION,
    SETTLED_ROLLBACK,
    Lease,
    ReleaseState,
    ServiceState,
    StateStore,
    Unchanged,
)
from ecs_delivery.runtime.rollout import (
    RolloutRaceError,
    RolloutRequest,
    RolloutResult,
    ServiceStateError,
    rollout,
)
from ecs_delivery.runtime.taskdef import register_request

BATCH_GET_DEPLOYMENTS = 25  # CodeDeploy BatchGetDeployments takes at most 25 ids
RELEASE_TAG = "ecs-delivery:release"
# Paced attempts per registration; the pacer halves its rate on each throttle, so these
# span minutes of waiting, not a burst of retries.
REGISTER_ATTEMPTS = 20
# Deployments of one service stopped because something else shipped first, before giving up.
MERGE_ATTEMPTS = 3
# Consecutive failed rollback steps before the local driver gives up (exit 3).
ROLLBACK_STEP_ERRORS = 5
# A runner's lease on its release: renewed at every poll, so only a dead runner's expires.
LEASE_SECONDS = 300.0


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

    def __post_init__(self) -> None:
        problems = []
        if self.max_parallel < 1:
            problems.append(f"max_parallel: {self.max_parallel} must be at least 1")
        if self.poll_seconds <= 0:
            problems.append(f"poll_seconds: {self.poll_seconds} must be positive")
        if self.deployment_timeout_seconds <= 0:
            problems.append("deployment_timeout_seconds must be positive")
        if self.register_rate <= 0 or self.register_burst < 1:
            problems.append("register_rate must be positive and register_burst at least 1")
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


def _code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def _reason(error: BaseException) -> str:
    if isinstance(error, ServiceDeploymentFailed | TaskUpdateFailed):
        return error.reason
    text = str(error) or type(error).__name__
    return text if len(text) < 400 else text[:397] + "..."


def _deployment_error(info: dict[str, Any]) -> str:
    error = info.get("errorInformation") or {}
    return (
        f"deployment {info.get('deploymentId')} ended {info.get('status')}: "
        f"{error.get('code') or 'no error code'}: {error.get('message') or 'no message'}"
    )


class ReleaseEngine:
    """Runs one release against AWS, persisting every transition in `store`."""

    def __init__(
        self,
        aws: Aws,
        store: StateStore,
        config: EngineConfig | None = None,
        on_event: Callable[[Event], None] | None = None,
        definitions: TaskDefinitions | None = None,
        owner: str | None = None,
    ) -> None:
        self.aws = aws
        # Who this runner is, for the release's lease (one runner deploys a release).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.store = store
        self.config = config or EngineConfig()
        self._on_event = on_event
        self.definitions = definitions or TaskDefinitions(aws)
        self.pacer = TokenBucket(self.config.register_rate, self.config.register_burst, aws.clock)
        self._abort = threading.Event()

    # ------------------------------------------------------------------ helpers

    @property
    def release_id(self) -> str:
        return self.store.release_id

    def _emit(self, kind: str, name: str, status: str, detail: str = "") -> None:
        if self._on_event is not None:
            self._on_event(Event(kind, name, status, detail))

    def _now(self) -> float:
        return self.aws.clock.time()

    def _marker(self, action: str, name: str) -> str:
        return f"ecs-delivery {action} {self.release_id}: {name} ->"

    def _register(
        self, previous_td: str, container: str, image: str, family: str | None = None
    ) -> str | None:
        """A new revision of `previous_td` with `image`; None if the run is being aborted.

        Every other field is kept. `family`, when given, is where it registers.
        """
        response = self.definitions.describe(previous_td)
        request = register_request(
            response["taskDefinition"], {container: image}, tags=response.get("tags") or []
        )
        if family is not None:
            request["family"] = family
        return self._paced_register(request)

    def _paced_register(self, request: dict[str, Any]) -> str | None:
        """RegisterTaskDefinition at the API's rate, tagged with the release; None if the run
        is being aborted."""
        tags = [t for t in request.get("tags") or [] if t.get("key") != RELEASE_TAG]
        request = {**request, "tags": [*tags, {"key": RELEASE_TAG, "value": self.release_id}]}
        for _ in range(REGISTER_ATTEMPTS):
            if not self.pacer.acquire(cancelled=self._abort):
                return None
            try:
                created = self.aws.clients.ecs.register_task_definition(**request)
            except ClientError as error:
                if not is_throttling(error):
                    raise
                self.pacer.throttled()  # paced, yet throttled: slow the pacer down
                continue
            self.pacer.succeeded()
            return str(created["taskDefinition"]["taskDefinitionArn"])
        raise RuntimeError(
            f"RegisterTaskDefinition stayed throttled for {REGISTER_ATTEMPTS} paced attempts"
        )

    def _deploy(
        self,
        name: str,
        action: str,
        images: dict[str, str],
        before_deploy: Callable[[str, str], None] | None = None,
        expect_images: dict[str, str] | None = None,
        reuse_revision: str | None = None,
        template_arn: str | None = None,
    ) -> RolloutResult:
        """One deployment of the service through the deployment core (runtime/rollout.py):
        `images` overlaid onto what runs now, complete AppSpec, checked again under the
        group's lock. Raises _Aborted when the run is being aborted before it registered."""
        target = self.store.state.services[name].target

        def register(request: Any) -> str:
            arn = self._paced_register(dict(request))
            if arn is None:
                raise _Aborted()
            return arn

        request = RolloutRequest(
            cluster=target.cluster,
            service=target.service,
            template_arn=template_arn,
            family=target.task_family,
            application=target.codedeploy_application,
            deployment_group=target.codedeploy_group,
            container_name=target.container,
            container_port=target.container_port,
            images=images,
            hooks=validation_hooks(target.validation_hook),
            wait=False,
            timeout_seconds=self.config.deployment_timeout_seconds,
            poll_seconds=self.config.poll_seconds,
            merge_attempts=MERGE_ATTEMPTS,
            description_prefix=self._marker(action, name),
            expect_images=expect_images or {},
            reuse_revision=reuse_revision,
        )
        return rollout(
            self.aws.clients.ecs,
            self.aws.clients.codedeploy,
            request,
            sleep=self.aws.clock.sleep,
            clock=self.aws.clock.time,
            register=register,
            before_deploy=before_deploy,
        )

    def _get_deployments(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """deploymentId -> deploymentInfo, 25 per call."""
        infos: dict[str, dict[str, Any]] = {}
        for chunk in chunks(sorted(set(ids)), BATCH_GET_DEPLOYMENTS):
            response = self.aws.call(
                self.aws.clients.codedeploy.batch_get_deployments, deploymentIds=chunk
            )
            for info in response.get("deploymentsInfo", []):
                infos[info["deploymentId"]] = info
        return infos

    def _group_deployments(
        self, target: ServiceTarget, statuses: tuple[str, ...], since: float | None
    ) -> dict[str, dict[str, Any]]:
        """deploymentId -> deploymentInfo of the group's deployments in `statuses` (all when
        empty) created since `since` (minus 5 minutes of clock skew), every page."""
        kwargs: dict[str, Any] = {
            "applicationName": target.codedeploy_application,
            "deploymentGroupName": target.codedeploy_group,
        }
        if statuses:
            kwargs["includeOnlyStatuses"] = list(statuses)
        if since is not None:
            start = datetime.datetime.fromtimestamp(since - 300, tz=datetime.UTC)
            kwargs["createTimeRange"] = {"start": start}
        ids: list[str] = []
        while True:
            page = self.aws.call(self.aws.clients.codedeploy.list_deployments, **kwargs)
            ids.extend(page.get("deployments", []))
            if not page.get("nextToken"):
                return self._get_deployments(ids)
            kwargs["nextToken"] = page["nextToken"]

    def _find_deployment(
        self,
        target: ServiceTarget,
        marker: str,
        since: float | None,
        in_progress_only: bool,
        exclude: tuple[str, ...] = (),
    ) -> str | None:
        """The id of a deployment this release created in the group (found by description:
        `marker` itself, or `marker` followed by a space), ignoring `exclude` statuses."""
        statuses = IN_PROGRESS_STATUSES if in_progress_only else ()
        for info in self._group_deployments(target, statuses, since).values():
            description = str(info.get("description", ""))
            if info.get("status") in exclude:
                continue
            if description == marker or description.startswith(marker + " "):
                return str(info["deploymentId"])
        return None

    # ------------------------------------------------------------------ lease

    def take_lease(self, seconds: float = LEASE_SECONDS, take_over: bool = False) -> None:
        """Hold the release for `seconds` (renewing our own lease); ReleaseBusyError while
        another runner's lease is live, unless `take_over`."""
        now = self._now()

        def claim(st: ReleaseState) -> Lease | None:
            held = st.lease
            if held and held.owner != self.owner and held.expires_at > now and not take_over:
                raise Unchanged(held)
            st.lease = Lease(owner=self.owner, expires_at=now + seconds)
            return None

        held = self.store.update(claim)
        if held is not None:
            until = datetime.datetime.fromtimestamp(held.expires_at, tz=datetime.UTC)
            raise ReleaseBusyError(
                f"release: {self.release_id} is being run by {held.owner} (lease until "
                f"{until:%Y-%m-%d %H:%M:%S} UTC); nothing was done. Follow it with `release "
                "status`; if that runner is dead, wait for its lease to end or run `release "
                "apply --take-over`"
            )

    def _renew_lease(self) -> None:
        lease = self.store.state.lease
        ours = lease is not None and lease.owner == self.owner
        if ours and lease.expires_at - self._now() < LEASE_SECONDS / 2:
            self.take_lease()

    def drop_lease(self) -> None:
        def drop(st: ReleaseState) -> None:
            if st.lease is None or st.lease.owner != self.owner:
                raise Unchanged()
            st.lease = None

        self.store.update(drop)

    # ------------------------------------------------------------------ begin

    def begin(self, plan: Plan) -> ReleaseState:
        """Write the release's first state from `plan` (or return the existing one)."""
        if not self.store.create(plan.to_state(self._now())):
            return self._check_existing(plan.manifest_digest, plan.manifest_text)
        self._emit("release", self.release_id, "running", "state created")
        return self.store.state

    def _check_existing(self, digest: str, text: str = "") -> ReleaseState:
        state = self.store.state
        _refuse_another_manifest(state, self.store, digest, text)
        return state

    # ------------------------------------------------------------------ services

    def start_service(self, name: str) -> str:
        """Register the new revision and start the service's deployment, once.

        The revision is derived from what the service runs at this moment (only the image
        changes), and checked again once the deployment holds the group's lock.

        Returns the service's status afterwards ("deploying", or what it already was;
        "pending" if the run is being aborted). Raises ReleaseStopped when the release is no
        longer running and nothing was started.
        """
        state = self.store.state
        service = state.services[name]
        if service.status in ("deploying", "deployed", "failed"):
            return service.status
        if state.status != "running":
            raise ReleaseStopped(f"release {self.release_id} is {state.status}")
        if service.status == "starting" and service.new_td:
            # A run died between claiming the start and recording the deployment: adopt the
            # deployment if it was created (whatever it became since), so nothing is
            # deployed twice. One we stopped ourselves is not adopted.
            found = self._find_deployment(
                service.target,
                self._start_marker(name, service.new_td),
                service.started_at,
                in_progress_only=False,
                exclude=("Stopped",),
            )
            if found is not None:
                return self._record_deployment(name, found, "adopted after a restart")
        return self._derive_and_deploy(name, expected=service.status)

    def _start_marker(self, name: str, new_td: str) -> str:
        return f"{self._marker('release', name)} {new_td}"

    def _running(self, name: str) -> str:
        target = self.store.state.services[name].target
        return running_task_definitions(self.aws, {name: target})[name]

    def _derive_and_deploy(self, name: str, expected: str) -> str:
        """Deploy the release's image onto what runs now through the deployment core, which
        merges again (bounded) when something else shipped before it took the group's lock."""
        service = self.store.state.services[name]
        claimed = {"expected": expected}

        def claim(base: str, new_td: str) -> None:
            status = self._claim_start(name, new_td, base, claimed["expected"])
            if status == "stopped":
                raise ReleaseStopped(f"release {self.release_id} stopped before {name} started")
            if status != "starting":
                raise Unchanged(status)
            claimed["expected"] = "starting"
            self._emit("service", name, "registered", new_td)

        try:
            result = self._deploy(name, "release", {service.target.container: service.image}, claim)
        except _Aborted:
            status = self.store.state.services[name].status
            return "pending" if claimed["expected"] == "pending" else status
        except Unchanged as unchanged:
            return str(unchanged.value)
        except DeploymentInProgressError as busy:
            return self._adopt_or_fail(name, busy)
        except RolloutRaceError:
            reason = (
                "what the service runs changed while this release deployed it, "
                f"{MERGE_ATTEMPTS} times in a row; every deployment of this release was "
                "stopped before traffic moved. Let the other deployments finish, then release "
                "again under a new name"
            )
            self._give_up(name, reason)
            raise ServiceDeploymentFailed(name, reason) from None
        except StopTooLateError as error:
            self._record_too_late(name, error)
            raise ServiceDeploymentFailed(name, str(error)) from None
        except ServiceStateError as error:
            raise ServiceDeploymentFailed(name, str(error)) from None
        if result.deployment_id is None:
            return self._record_nothing_to_deploy(name, result)
        return self._record_deployment(name, result.deployment_id, "")

    def _record_too_late(self, name: str, error: StopTooLateError) -> None:
        """Our stale deployment landed before its stop: it replaced `error.replaced` (say, a
        Pulumi change) with `error.deployed`. Record exactly that, so the rollback (what runs
        is ours) puts the replaced revision back whole."""
        replaced = str(error.replaced)
        image = self.definitions.image(replaced, self.store.state.services[name].target.container)

        def record(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status == "starting":
                svc.previous_td, svc.previous_image = replaced, image
                svc.new_td, svc.deployment_id = error.deployed, error.deployment_id

        self.store.update(record)

    def _adopt_or_fail(self, name: str, busy: DeploymentInProgressError) -> str:
        """The group is busy: ours (a retried step) is adopted, anyone else's is a failure."""
        service = self.store.state.services[name]
        found = self._find_deployment(
            service.target,
            self._marker("release", name),
            service.started_at,
            in_progress_only=True,
        )
        if found is None:
            raise ServiceDeploymentFailed(
                name,
                f"deployment group {service.target.codedeploy_application}/"
                f"{service.target.codedeploy_group} already runs another deployment "
                f"({', '.join(busy.deployment_ids) or 'id not reported'})",
            )
        return self._record_deployment(name, found, "adopted")

    def _record_nothing_to_deploy(self, name: str, result: RolloutResult) -> str:
        """What runs already carries the release's image (someone shipped it): nothing is
        deployed, and a rollback has nothing of this release's to take back."""
        image = result.images.get(self.store.state.services[name].target.container, "")

        def record(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status in ("pending", "starting"):
                svc.status, svc.finished_at = "deployed", self._now()
                svc.previous_td, svc.previous_image = result.running_task_definition_arn, image

        self.store.update(record)
        self._emit("service", name, "deployed", "already runs the release's image")
        return "deployed"

    def _give_up(self, name: str, reason: str) -> None:
        """The service failed, and nothing this release deployed to it runs (all stopped)."""

        def mark(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status == "starting":
                svc.status, svc.error, svc.finished_at = "failed", reason, self._now()
                svc.rollback = "not_needed"

        self.store.update(mark)
        self._emit("service", name, "failed", reason)

    def _claim_start(self, name: str, new_td: str, base: str, expected: str) -> str:
        """Mark the service starting with `new_td`, derived from `base` (what ran then, the
        revision a rollback returns to); "starting" when this call may deploy it.

        Returns "stopped" when the release no longer runs, or the service's status when it
        is no longer `expected`. The claim is written conditionally on the state it was
        applied to (StateStore.update re-reads and re-applies on a conflict), so a rollback
        requested before the claim is always seen: no start begins after a rollback request.
        """
        now = self._now()
        previous_image = self.definitions.image(
            base, self.store.state.services[name].target.container
        )

        def claim(st: ReleaseState) -> str:
            if st.status != "running":
                raise Unchanged("stopped")
            svc = st.services[name]
            if svc.status != expected:
                raise Unchanged(svc.status)
            svc.status, svc.new_td, svc.started_at = "starting", new_td, now
            svc.previous_td, svc.previous_image = base, previous_image
            return "starting"

        return str(self.store.update(claim))

    def _record_deployment(self, name: str, deployment_id: str, detail: str) -> str:
        def record(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status in ("pending", "starting"):
                svc.status, svc.deployment_id = "deploying", deployment_id

        self.store.update(record)
        self._emit("service", name, "deploying", f"{deployment_id} {detail}".strip())
        return "deploying"

    def fail_service(self, name: str, reason: str) -> None:
        """Record that a service could not be started (the release then rolls back)."""

        def mark(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status in ("pending", "starting", "deploying"):
                svc.status, svc.error, svc.finished_at = "failed", reason, self._now()

        self.store.update(mark)
        self._emit("service", name, "failed", reason)

    def poll_services(self, names: Iterable[str]) -> dict[str, str]:
        """Poll deployments of `names`; persist every finish; return name -> status.

        Status is "deploying" while in flight, "deployed" or "failed" once finished.
        """
        state = self.store.state
        watched = {
            state.services[n].deployment_id: n
            for n in names
            if state.services[n].status == "deploying" and state.services[n].deployment_id
        }
        infos = self._get_deployments(w for w in watched if w)
        now = self._now()
        finished: dict[str, tuple[str, str]] = {}
        for deployment_id, name in watched.items():
            info = infos.get(str(deployment_id), {})
            status = info.get("status", "?")
            started = state.services[name].started_at or now
            if cd.shipped(info):  # also: traffic shifted, termination wait running
                finished[name] = ("deployed", "")
            elif status in FAILED_STATUSES:
                finished[name] = ("failed", _deployment_error(info))
            elif now - started > self.config.deployment_timeout_seconds:
                finished[name] = (
                    "failed",
                    f"deployment {deployment_id} did not finish within "
                    f"{self.config.deployment_timeout_seconds:g} s (last status {status})",
                )
        if finished:

            def mark(st: ReleaseState) -> None:
                for name, (status, error) in finished.items():
                    svc = st.services[name]
                    if svc.status == "deploying":
                        svc.status, svc.finished_at = status, now
                        svc.error = error or None

            self.store.update(mark)
            for name, (status, error) in finished.items():
                self._emit("service", name, status, error)
        result = {n: self.store.state.services[n].status for n in names}
        return result

    # ------------------------------------------------------------------ tasks

    def update_tasks(self) -> None:
        """Point every scheduled task of the release at its new revision, schedule, command.

        Raises TaskUpdateFailed (after recording it) when one cannot be updated.
        """
        for name in sorted(self.store.state.tasks):
            state = self.store.state
            if state.status != "running":
                raise ReleaseStopped(f"release {self.release_id} is {state.status}")
            task = state.tasks[name]
            if task.status == "updated":
                continue
            try:
                new_td = task.new_td
                base: Trigger | None = None
                if new_td is None:
                    # What the schedule targets now, not when the release was planned: a
                    # change Pulumi registered in between is kept (only the image moves).
                    base = read_trigger(self.aws, task.target)
                    container = task.target.container
                    if self.definitions.image(base.task_definition, container) == task.image:
                        new_td = base.task_definition
                    else:
                        new_td = self._register(base.task_definition, container, task.image)
                        if new_td is None:
                            raise ReleaseStopped("aborted")

                def claim(
                    st: ReleaseState, new_td: str = new_td, name: str = name, base=base
                ) -> None:
                    t = st.tasks[name]
                    if t.status in ("pending", "failed"):
                        t.status, t.new_td = "updating", new_td
                        if base is not None:  # what a rollback returns to
                            t.previous_td = base.task_definition
                            t.previous_image = self.definitions.image(
                                base.task_definition, t.target.container
                            )

                self.store.update(claim)
                write_trigger(
                    self.aws,
                    task.target,
                    Trigger(task_definition=new_td, schedule=task.schedule, command=task.command),
                )
            except ReleaseStopped:
                raise
            except Exception as error:
                reason = _reason(error)

                def failed(st: ReleaseState, reason: str = reason, name: str = name) -> None:
                    st.tasks[name].status, st.tasks[name].error = "failed", reason

                self.store.update(failed)
                self._emit("task", name, "failed", reason)
                raise TaskUpdateFailed(name, reason) from error

            def done(st: ReleaseState, name: str = name) -> None:
                st.tasks[name].status = "updated"

            self.store.update(done)
            self._emit("task", name, "updated", new_td)

    def finish(self) -> str:
        """Mark the release succeeded when every service is deployed and every task updated."""

        def mark(st: ReleaseState) -> str:
            if st.status != "running":
                raise Unchanged(st.status)
            pending = [n for n, s in st.services.items() if s.status != "deployed"]
            pending += [n for n, t in st.tasks.items() if t.status != "updated"]
            if pending:
                raise Unchanged("running")
            st.status = "succeeded"
            return "succeeded"

        status = self.store.update(mark)
        if status == "succeeded":
            self._emit("release", self.release_id, "succeeded")
        return str(status)

    # ------------------------------------------------------------------ rollback

    def start_rollback(self, reason: str, item: str | None = None) -> str:
        """Mark the release rolling back (first reason wins); returns the release status."""

        def mark(st: ReleaseState) -> str:
            if st.status in ("rolling_back", "rolled_back"):
                raise Unchanged(st.status)
            if st.status == "rollback_failed":
                # A person asked again: retry what failed, keep what already rolled back.
                for svc in st.services.values():
                    if svc.rollback == "failed":
                        svc.rollback, svc.rollback_error = None, None
                for task in st.tasks.values():
                    if task.rollback == "failed":
                        task.rollback, task.rollback_error = None, None
            st.status = "rolling_back"
            if st.failure is None:
                st.failure, st.failed_item = reason, item
                # Name what failed when the caller only knows that something did.
                failed = sorted(
                    (s.finished_at or 0.0, n, s.error or reason)
                    for n, s in st.services.items()
                    if s.status == "failed"
                ) + [
                    (0.0, n, t.error or reason) for n, t in st.tasks.items() if t.status == "failed"
                ]
                if item is None and failed:
                    _, st.failed_item, st.failure = failed[0]
            return "rolling_back"

        status = self.store.update(mark)
        if status == "rolling_back":
            self._emit("release", self.release_id, "rolling_back", reason)
        return str(status)

    def rollback_step(self) -> str:
        """Move every unsettled service and task one step back; returns the release status.

        Safe to repeat and to run from several places at once: each AWS action is claimed
        in the state first, so only one runner performs it.
        """
        state = self.store.state
        if state.status != "rolling_back":
            return state.status
        self._rollback_tasks()
        self._rollback_services()
        return self._settle()

    def _rollback_tasks(self) -> None:
        for name, task in sorted(self.store.state.tasks.items()):
            if task.rollback is not None:
                continue
            note = None
            if task.status == "pending":
                outcome, error = "not_needed", None
            else:
                try:
                    outcome, note = self._restore_trigger(task)
                    error = None
                except Exception as exc:  # recorded; a person retries with `release rollback`
                    outcome, error = "failed", _reason(exc)

            def mark(
                st: ReleaseState, name: str = name, outcome: str = outcome, error=error, note=note
            ) -> None:
                if st.tasks[name].rollback is None:
                    st.tasks[name].rollback = outcome  # type: ignore[assignment]
                    st.tasks[name].rollback_error = error
                    st.tasks[name].rollback_note = note

            self.store.update(mark)
            self._emit("task", name, outcome, error or note or "")

    def _restore_trigger(self, task: Any) -> tuple[str, str | None]:
        """Take back, field by field, what the release set on a task's trigger and still
        runs; a field someone changed since (a newer image, a new schedule) is kept."""
        now = read_trigger(self.aws, task.target)
        container = task.target.container
        kept: list[str] = []
        if now.task_definition == task.new_td:
            revision = task.previous_td
        elif self.definitions.image(now.task_definition, container) == task.image:
            # Pulumi registered a change since: keep it, take the release's image back.
            revision = self._register(now.task_definition, container, task.previous_image)
            if revision is None:
                raise ReleaseStopped("aborted")
        else:
            revision = now.task_definition
            if revision != task.previous_td:
                kept.append(f"revision {revision}")
        schedule = task.previous_schedule if now.schedule == task.schedule else now.schedule
        if schedule != task.previous_schedule:
            kept.append(f"schedule {schedule}")
        command = task.previous_command if now.command == task.command else now.command
        if command != task.previous_command:
            kept.append(f"command {command}")
        wanted = Trigger(revision, schedule, command)
        if wanted != now:
            write_trigger(self.aws, task.target, wanted)
        if kept:
            return "superseded", f"kept {', '.join(kept)}: changed after this release"
        return "rolled_back", None

    def _rollback_services(self) -> None:
        state = self.store.state
        now = self._now()
        unsettled = {n: s for n, s in state.services.items() if s.rollback not in SETTLED_ROLLBACK}
        watch = []
        for svc in unsettled.values():
            if svc.rollback in (None, "stopping") and svc.status in (
                "deploying",
                "deployed",
                "failed",
            ):
                watch.append(svc.deployment_id)
            if svc.rollback == "redeploying" and svc.rollback_deployment_id:
                watch.append(svc.rollback_deployment_id)
        infos = self._get_deployments(d for d in watch if d)
        changes: dict[str, dict[str, Any]] = {}
        verify: list[str] = []

        for name, svc in sorted(unsettled.items()):
            if svc.rollback is None:
                if svc.status == "pending":
                    changes[name] = {"rollback": "not_needed"}
                elif svc.status == "starting":
                    found = self._find_deployment(
                        svc.target, self._marker("release", name), svc.started_at, False
                    )
                    if found is not None:
                        changes[name] = {"status": "deploying", "deployment_id": found}
                    elif now - (svc.started_at or now) >= self.config.start_grace_seconds:
                        # Registered but never deployed: nothing runs the new revision.
                        changes[name] = {"rollback": "not_needed", "status": "failed"}
                elif running := self._in_flight(name, svc, infos):
                    # Deploying, or failed while CodeDeploy still runs it (it timed out, or
                    # the start failed after CodeDeploy accepted it): it could still switch
                    # the service after we verified, so stop it first.
                    self._stop(running)
                    changes[name] = {
                        "rollback": "stopping",
                        "rollback_started_at": now,
                        "deployment_id": running,
                    }
                else:  # deployed or failed: check what runs, redeploy if needed
                    changes[name] = {"rollback": "verifying", "rollback_started_at": now}
                    verify.append(name)
            elif svc.rollback == "stopping":
                info = infos.get(str(svc.deployment_id), {})
                if info.get("status") not in IN_PROGRESS_STATUSES:
                    changes[name] = {"rollback": "verifying"}
                    verify.append(name)
                elif self._timed_out(svc.rollback_started_at, now):
                    changes[name] = self._rollback_failed("stopping", svc.deployment_id)
            elif svc.rollback == "verifying":
                verify.append(name)
            elif svc.rollback == "redeploying":
                changes.update(self._redeploy_progress(name, infos, now))

        if changes:
            self._apply_changes(changes)
        if verify:
            self._verify(verify, now)

    def _in_flight(
        self, name: str, svc: ServiceState, infos: dict[str, dict[str, Any]]
    ) -> str | None:
        """The id of the service's forward deployment if CodeDeploy still runs it (a
        deployed one may still wait out its termination wait: stopping it puts the original
        task set, still there, back on production traffic)."""
        if svc.status not in ("deploying", "deployed", "failed"):
            return None
        if svc.deployment_id is not None:
            status = infos.get(svc.deployment_id, {}).get("status")
            return svc.deployment_id if status in IN_PROGRESS_STATUSES else None
        if svc.status == "failed" and svc.started_at is not None:
            # Claimed, then failed without a recorded id: CodeDeploy may have created it.
            marker = self._marker("release", name)
            return self._find_deployment(svc.target, marker, svc.started_at, True)
        return None

    def _timed_out(self, since: float | None, now: float) -> bool:
        return since is not None and now - since > self.config.deployment_timeout_seconds

    def _rollback_failed(self, phase: str, deployment_id: str | None) -> dict[str, Any]:
        return {
            "rollback": "failed",
            "rollback_error": f"{phase} deployment {deployment_id} did not finish within "
            f"{self.config.deployment_timeout_seconds:g} s",
        }

    def _stop(self, deployment_id: str) -> None:
        try:
            self.aws.call(
                self.aws.clients.codedeploy.stop_deployment,
                deploymentId=deployment_id,
                autoRollbackEnabled=True,
            )
        except ClientError as error:
            # It finished between the poll and the stop: the verify step handles it.
            if _code(error) != "DeploymentAlreadyCompletedException":
                raise

    def _redeploy_progress(
        self, name: str, infos: dict[str, dict[str, Any]], now: float
    ) -> dict[str, dict[str, Any]]:
        svc = self.store.state.services[name]
        if svc.rollback_deployment_id is None:
            # Claimed but not recorded (a run died in between, or the group was busy):
            # adopt ours if it exists, else start it now.
            marker = self._marker("rollback", name)
            found: str | dict[str, Any] | None = self._find_deployment(
                svc.target, marker, svc.rollback_started_at, False
            )
            if found is None:
                found = self._start_redeploy(name)
            if isinstance(found, dict):
                return {name: found}
            if found is not None:
                return {name: {"rollback_deployment_id": found}}
            if self._timed_out(svc.rollback_started_at, now):
                return {name: self._rollback_failed("rollback", None)}
            return {}
        info = infos.get(svc.rollback_deployment_id, {})
        status = info.get("status")
        if status == "Succeeded":
            return {name: {"rollback": "verifying"}}
        if status in FAILED_STATUSES:
            return {name: {"rollback": "failed", "rollback_error": _deployment_error(info)}}
        if self._timed_out(svc.rollback_started_at, now):
            return {name: self._rollback_failed("rollback", svc.rollback_deployment_id)}
        return {}

    def _apply_changes(self, changes: dict[str, dict[str, Any]]) -> None:
        before = {n: self.store.state.services[n].rollback for n in changes}

        def mark(st: ReleaseState) -> None:
            for name, fields in changes.items():
                svc = st.services[name]
                # Apply only if nobody moved this service on since we looked at it.
                if svc.rollback != before[name] or svc.rollback in SETTLED_ROLLBACK:
                    continue
                for key, value in fields.items():
                    setattr(svc, key, value)

        self.store.update(mark)
        for name, fields in changes.items():
            status = fields.get("rollback") or fields.get("status") or "redeploying"
            detail = (
                fields.get("rollback_error")
                or fields.get("rollback_note")
                or fields.get("rollback_deployment_id")
                or ""
            )
            self._emit("service", name, f"rollback:{status}", str(detail))

    def _verify(self, names: list[str], now: float) -> None:
        """Settle each service by the image its container runs now, field by field.

        The image from before the release: rolled back. Another image than the release's: a
        deployer changed it since, so it is left as it runs ("superseded", named in the
        report). The release's image: the previous image is deployed onto what runs now
        (every other field, e.g. a Pulumi change made since, is kept), once the group is
        free: a deployment holding it (CodeDeploy's own rollback, a stop) may restore it.
        """
        services = self.store.state.services
        running, reason = self._running_or_reason({n: services[n].target for n in names})
        settled: dict[str, dict[str, Any]] = {}
        for name in names:
            svc = services[name]
            live = running.get(name)
            image = self._image_or_none(live, svc.target.container)
            if live is None:
                settled[name] = {"rollback": "failed", "rollback_error": reason}
            elif svc.deployment_id is None and svc.status == "failed":
                settled[name] = {"rollback": "not_needed"}  # the release never deployed it
            elif image is None:  # its container is gone: nothing of the release runs there
                settled[name] = {
                    "rollback": "superseded",
                    "rollback_note": f"{live} has no container {svc.target.container!r}; "
                    "left as it runs",
                }
            elif image == svc.previous_image:
                settled[name] = {"rollback": "rolled_back"}
            elif image != svc.image:
                settled[name] = self._superseded(name, live, image)
            elif cd.in_progress_deployments(
                self.aws.clients.codedeploy,
                svc.target.codedeploy_application,
                svc.target.codedeploy_group,
            ):
                if self._timed_out(svc.rollback_started_at, now):
                    settled[name] = self._rollback_failed("verifying", svc.deployment_id)
            else:
                self._claim_redeploy(name, now, live)
        if settled:
            self._apply_changes(settled)

    def _image_or_none(self, arn: str | None, container: str) -> str | None:
        if arn is None:
            return None
        try:
            return self.definitions.image(arn, container)
        except LiveStateError:
            return None

    def _superseded(self, name: str, live: str, image: str) -> dict[str, Any]:
        """A deployer other than this release set the service's image since: keep it."""
        newer = self._newest_other_deployment(name)
        note = (
            f"runs {image} ({live}), deployed after this release"
            + (f" by deployment {newer}" if newer else "")
            + "; left as it runs"
        )
        return {"rollback": "superseded", "rollback_note": note}

    def _newest_other_deployment(self, name: str) -> str | None:
        """The group's newest succeeded deployment not made by this release, if any."""
        svc = self.store.state.services[name]
        ours = (self._marker("release", name), self._marker("rollback", name))
        others = [
            info
            for info in self._group_deployments(svc.target, ("Succeeded",), svc.started_at).values()
            if not str(info.get("description", "")).startswith(ours)
        ]
        newest = max(others, key=lambda i: str(i.get("createTime", "")), default=None)
        return str(newest["deploymentId"]) if newest else None

    def _running_or_reason(self, targets: dict[str, ServiceTarget]) -> tuple[dict[str, str], str]:
        try:
            return running_task_definitions(self.aws, targets), ""
        except LiveStateError as error:
            return {}, _reason(error)

    def _claim_redeploy(self, name: str, now: float, live: str) -> None:
        def claim(st: ReleaseState) -> bool:
            svc = st.services[name]
            if svc.rollback != "verifying":
                raise Unchanged(False)
            svc.rollback, svc.rollback_deployment_id = "redeploying", None
            svc.rollback_started_at = now
            return True

        if not self.store.update(claim):
            return
        started = self._start_redeploy(name, live)
        if isinstance(started, dict):
            self._apply_changes({name: started})
            return
        if started is None:
            return  # the group became busy; the next step retries

        def record(st: ReleaseState) -> None:
            if st.services[name].rollback == "redeploying":
                st.services[name].rollback_deployment_id = started

        self.store.update(record)
        self._emit("service", name, "rollback:redeploying", started)

    def _start_redeploy(self, name: str, live: str | None = None) -> str | dict[str, Any] | None:
        """Deploy the service's previous image onto what runs now, only while the release's
        image still runs: the deployment's id, the settled rollback when there is nothing to
        deploy, or None when the group is busy right now. `live`: what runs, when the caller
        has just read it."""
        svc = self.store.state.services[name]
        container = svc.target.container
        # What runs is exactly the release's own revision: nothing changed since, so the
        # revision it replaced comes back whole (also the fields a stale deployment of ours
        # reverted). Otherwise only the image goes back, onto what runs.
        ours = svc.new_td is not None and (live or self._running(name)) == svc.new_td
        try:
            result = self._deploy(
                name,
                "rollback",
                {container: svc.previous_image},
                expect_images={container: svc.image},
                reuse_revision=svc.previous_td,
                template_arn=svc.previous_td if ours else None,
            )
        except (DeploymentInProgressError, _Aborted):
            return None
        if result.action == "superseded":
            return self._superseded(
                name, result.running_task_definition_arn, result.images.get(container, "?")
            )
        if result.deployment_id is None:
            return {"rollback": "rolled_back"}
        return result.deployment_id

    def _settle(self) -> str:
        state = self.store.state
        open_services = [s for s in state.services.values() if s.rollback not in SETTLED_ROLLBACK]
        open_tasks = [t for t in state.tasks.values() if t.rollback is None]
        if open_services or open_tasks:
            return "rolling_back"
        failed = any(s.rollback == "failed" for s in state.services.values()) or any(
            t.rollback == "failed" for t in state.tasks.values()
        )
        final = "rollback_failed" if failed else "rolled_back"

        def mark(st: ReleaseState) -> str:
            if st.status != "rolling_back":
                raise Unchanged(st.status)
            st.status = final  # type: ignore[assignment]
            return final

        status = str(self.store.update(mark))
        self._emit("release", self.release_id, status, state.failure or "")
        return status

    # ------------------------------------------------------------------ local driver

    def outcome(self) -> Outcome:
        state = self.store.state
        return Outcome(
            release_id=state.release_id,
            status=state.status,
            failed_item=state.failed_item,
            failure=state.failure,
            state=state,
        )

    def run(self, stop: threading.Event | None = None, take_over: bool = False) -> Outcome:
        """Drive the release to its end from wherever its state says it is, holding its
        lease (a second runner of the same release is refused, naming the first)."""
        state = self.store.state
        if state.status in ("running", "rolling_back"):
            self.take_lease(take_over=take_over)
            try:
                return self._run(stop)
            finally:
                self.drop_lease()
        return self._run(stop)

    def _run(self, stop: threading.Event | None) -> Outcome:
        state = self.store.state
        if state.status == "succeeded":
            return self.outcome()
        if state.status in ("rolled_back", "rollback_failed"):
            raise ReleaseInputError(
                f"release: {state.release_id} was {state.status.replace('_', ' ')}"
                + (f" ({state.failed_item}: {state.failure})" if state.failure else "")
                + "; a release name is used once: fix the cause and release under a new name"
                + (
                    ", or run `release rollback` to retry the rollback"
                    if state.status == "rollback_failed"
                    else ""
                )
            )
        if state.schema_version > SCHEMA_VERSION:
            raise ReleaseInputError(
                f"release: {state.release_id}'s state was written by a newer ecs-delivery "
                f"(state schema {state.schema_version}; this one writes {SCHEMA_VERSION}); "
                "run `release apply` with that version. `release status` and `release "
                "rollback` work from this one"
            )
        if state.status == "running":
            try:
                self._deploy_services(stop)
                self.update_tasks()
                if self.finish() == "succeeded":
                    return self.outcome()
                raise _Failure(None, "the release ended with items neither deployed nor failed")
            except _Failure as failure:
                self.start_rollback(failure.reason, failure.item)
            except TaskUpdateFailed as failure:
                self.start_rollback(failure.reason, failure.name)
            except ReleaseStopped:
                pass  # someone else started the rollback; help finish it
        return self.drive_rollback()

    def rollback(self, reason: str = "rollback requested") -> Outcome:
        """Roll the release back (a running, succeeded or failed-rollback release)."""
        self.start_rollback(reason, None)
        return self.drive_rollback()

    def drive_rollback(self) -> Outcome:
        """Step the rollback until it settles; a few transient errors in a row are retried."""
        errors = 0
        while True:
            try:
                status = self.rollback_step()
                errors = 0
            except Exception:
                errors += 1
                if errors >= ROLLBACK_STEP_ERRORS:
                    raise
                self.store.load()  # the cached state may be half-changed
                status = "rolling_back"
            if status != "rolling_back":
                return self.outcome()
            self._renew_lease()
            self.aws.clock.sleep(self.config.poll_seconds)

    def _deploy_services(self, stop: threading.Event | None) -> None:
        """Start and watch every service's deployment; raise _Failure on the first failure."""
        config = self.config
        state = self.store.state
        pending = deque(
            n for n, s in sorted(state.services.items()) if s.status in ("pending", "starting")
        )
        in_flight = {n for n, s in state.services.items() if s.status == "deploying"}
        failed = [n for n, s in state.services.items() if s.status == "failed"]
        if failed:
            raise _Failure(failed[0], state.services[failed[0]].error or "failed")
        starting: dict[Future[str], str] = {}
        workers = min(config.max_parallel, config.start_workers)
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="release-start")
        next_poll = self._now() + config.poll_seconds
        try:
            while pending or in_flight or starting:
                if stop is not None and stop.is_set():
                    raise _Failure(None, "stopped by request")
                if self.store.state.status != "running":
                    raise ReleaseStopped(self.store.state.status)
                while pending and len(in_flight) + len(starting) < config.max_parallel:
                    name = pending.popleft()
                    starting[executor.submit(self.start_service, name)] = name
                for future in [f for f in starting if f.done()]:
                    name = starting.pop(future)
                    error = future.exception()
                    if isinstance(error, ReleaseStopped):
                        raise error
                    if error is not None and not isinstance(error, Exception):
                        raise error  # KeyboardInterrupt, SystemExit: no rollback, just stop
                    if error is not None:
                        reason = _reason(error)
                        self.fail_service(name, reason)
                        raise _Failure(name, reason)
                    result = future.result()
                    if result == "deploying":
                        in_flight.add(name)
                    elif result == "failed":
                        svc = self.store.state.services[name]
                        raise _Failure(name, svc.error or "deployment failed")
                now = self._now()
                if now >= next_poll:
                    # Re-read the state: a person may have asked for a rollback meanwhile.
                    if self.store.load() is None or self.store.state.status != "running":
                        raise ReleaseStopped(f"release {self.release_id} is no longer running")
                    self._renew_lease()
                    statuses = self.poll_services(sorted(in_flight)) if in_flight else {}
                    next_poll = now + config.poll_seconds
                    for name, status in statuses.items():
                        if status != "deploying":
                            in_flight.discard(name)
                        if status == "failed":
                            svc = self.store.state.services[name]
                            raise _Failure(name, svc.error or "deployment failed")
                # Sleep until the next poll, waking early when a start finishes or on stop;
                # never longer than a real second so a stop request is seen quickly.
                timeout = min(self.aws.clock.real_seconds(max(0.0, next_poll - self._now())), 1.0)
                if starting:
                    wait(list(starting), timeout=timeout, return_when=FIRST_COMPLETED)
                elif in_flight:
                    if stop is not None:
                        stop.wait(timeout)
                    else:
                        time.sleep(timeout)
        finally:
            self._abort.set()
            # Starts already talking to AWS finish and record their deployments, so the
            # rollback sees every deployment that exists; queued ones are dropped.
            executor.shutdown(wait=True, cancel_futures=True)
            self._abort.clear()


# ---------------------------------------------------------------------- entry points


def _refuse_another_manifest(
    state: ReleaseState, store: StateStore, digest: str, text: str
) -> None:
    """A release name is used once: refuse a manifest that says something else than the one
    the state was written from (states of earlier engines are named by the exact text)."""
    if state.manifest_digest == digest or (text and same_manifest(state.manifest_digest, text)):
        return
    raise ReleaseInputError(
        f"release: {state.release_id} already exists (s3://{store.bucket}/{store.key}) with a "
        "different manifest; a release name is used once, give this manifest a new release name"
    )


def prepare(
    aws: Aws,
    store: StateStore,
    manifest: Manifest,
    inventory: Inventory,
    definitions: TaskDefinitions | None = None,
) -> tuple[ReleaseState | None, Plan | None]:
    """Load the release's state, or plan it: (state, None) or (None, plan).

    Refuses (ReleaseInputError) a manifest whose release name already has state written
    from different manifest text: a release name is used once.
    """
    existing = store.load()
    if existing is None:
        return None, compute_plan(aws, manifest, inventory, definitions)
    _refuse_another_manifest(existing, store, manifest.digest, manifest.text)
    return existing, None


def apply(
    aws: Aws,
    store: StateStore,
    manifest: Manifest,
    inventory: Inventory,
    config: EngineConfig | None = None,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Plan (or resume) the release and drive it to success or a whole-release rollback."""
    definitions = TaskDefinitions(aws)
    state, plan = prepare(aws, store, manifest, inventory, definitions)
    engine = ReleaseEngine(aws, store, config, on_event, definitions)
    if state is None:
        assert plan is not None
        if not plan.has_changes:
            return Outcome(release_id=plan.release_id, status="no_changes")
        engine.begin(plan)
    return engine.run(stop)

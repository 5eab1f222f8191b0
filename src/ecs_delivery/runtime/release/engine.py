"""The release engine: one implementation behind the CLI, the Lambda steps and the benchmark.

Steps (each idempotent, each persisting its transition before returning):

- `prepare` / `begin`: load the release's state, or plan it and write the first state;
- `start_service`: register a revision with the new image (Pulumi-owned fields kept), claim
  the start in the state, deploy it through the deployment core on the service's engine
  (CodeDeploy, or ECS's own blue/green), record its id;
- `poll_services`: one batch call per engine (BatchGetDeployments per 25 in-flight CodeDeploy
  deployments, DescribeServiceDeployments per 20 ECS ones);
- `update_tasks`: new revision per scheduled task, trigger pointed at it;
- `start_rollback` / `rollback_step`: stop in-flight deployments with rollback, redeploy the
  previous revision of finished ones, restore scheduled-task triggers, verify.

`apply` drives the steps locally: registrations are paced by a client-side token bucket at
the API's rate, a small thread pool runs the starts, and one loop polls every deployment
in flight, so waiting never holds a worker and concurrency is capped by `max_parallel`.

The steps live by job in sibling modules (core, lifecycle, services, tasks, rollback;
engine_types for the config, events, outcomes and errors); this module composes them
and keeps the entry points.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ecs_delivery.runtime.release.core import RELEASE_TAG
from ecs_delivery.runtime.release.engine_types import (
    EngineConfig,
    Event,
    Outcome,
    ReleaseBusyError,
    ReleaseInputError,
    ReleaseStopped,
    ServiceDeploymentFailed,
    TaskUpdateFailed,
    _Failure,
    _reason,
)
from ecs_delivery.runtime.release.inventory import Inventory
from ecs_delivery.runtime.release.lifecycle import (
    LEASE_SECONDS,
    Lifecycle,
    _refuse_another_manifest,
)
from ecs_delivery.runtime.release.live import Aws, TaskDefinitions
from ecs_delivery.runtime.release.manifest import Manifest
from ecs_delivery.runtime.release.plan import Plan, compute_plan
from ecs_delivery.runtime.release.rollback import RollbackSteps
from ecs_delivery.runtime.release.services import ServiceSteps
from ecs_delivery.runtime.release.state import SCHEMA_VERSION, ReleaseState, StateStore
from ecs_delivery.runtime.release.tasks import TaskSteps

# Importable from here, whichever module is their home.
__all__ = [
    "LEASE_SECONDS",
    "RELEASE_TAG",
    "EngineConfig",
    "Event",
    "Outcome",
    "ReleaseBusyError",
    "ReleaseEngine",
    "ReleaseInputError",
    "ReleaseStopped",
    "ServiceDeploymentFailed",
    "TaskUpdateFailed",
    "apply",
    "prepare",
]

# Consecutive failed rollback steps before the local driver gives up (exit 3).
ROLLBACK_STEP_ERRORS = 5


class ReleaseEngine(ServiceSteps, TaskSteps, RollbackSteps, Lifecycle):
    """Runs one release against AWS, persisting every transition in `store`."""

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
        waiting: list[str] = []  # claimed by another run, maybe still alive: ask at the poll
        workers = min(config.max_parallel, config.start_workers)
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="release-start")
        next_poll = self._now() + config.poll_seconds
        try:
            while pending or in_flight or starting or waiting:
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
                    elif result == "starting":
                        waiting.append(name)
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
                    pending.extend(waiting)
                    waiting.clear()
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
                elif in_flight or waiting:
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

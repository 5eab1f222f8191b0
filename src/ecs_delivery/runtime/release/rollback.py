"""The whole-release rollback: stop in-flight deployments, redeploy the previous image where
the release's still runs, restore scheduled-task triggers, verify each by what runs."""

from __future__ import annotations

from typing import Any

from ecs_delivery.runtime.codedeploy import DeploymentInProgressError
from ecs_delivery.runtime.engines import Seen
from ecs_delivery.runtime.release.core import EngineCore
from ecs_delivery.runtime.release.engine_types import (
    ReleaseBusyError,
    ReleaseStopped,
    _Aborted,
    _reason,
)
from ecs_delivery.runtime.release.inventory import ServiceTarget
from ecs_delivery.runtime.release.live import (
    LiveStateError,
    Trigger,
    read_trigger,
    running_task_definitions,
    write_trigger,
)
from ecs_delivery.runtime.release.state import (
    SETTLED_ROLLBACK,
    Lease,
    ReleaseState,
    ServiceState,
    Unchanged,
)
from ecs_delivery.runtime.task_rollout import TaskChange, deploy_task

# A runner's failed step found the release succeeded: another runner finished it.
FINISHED_ELSEWHERE = "finished_elsewhere"


class RollbackSteps(EngineCore):
    """Takes back what the release deployed, one idempotent step at a time."""

    def start_rollback(self, reason: str, item: str | None = None, as_runner: bool = False) -> str:
        """Mark the release rolling back (first reason wins); returns the release status.

        `as_runner`: a runner whose own step failed or timed out; while another runner holds
        the running release (it took the release over), or once the release succeeded,
        ReleaseBusyError and nothing rolls back. A person's rollback is never refused."""
        now = self._now()

        def mark(st: ReleaseState) -> Any:
            if st.status in ("rolling_back", "rolled_back"):
                raise Unchanged(st.status)
            held = st.lease
            if as_runner and st.status == "succeeded":  # another runner finished it
                raise Unchanged(FINISHED_ELSEWHERE)
            # A live runner took it over: the release is that runner's now.
            taken = held is not None and held.owner != self.owner and held.expires_at > now
            if as_runner and st.status == "running" and taken:
                raise Unchanged(held)
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
        if isinstance(status, Lease) or status == FINISHED_ELSEWHERE:
            holder = (
                f"is being run by {status.owner}"
                if isinstance(status, Lease)
                else ("succeeded (another runner finished it)")
            )
            raise ReleaseBusyError(
                f"release: {self.release_id} {holder}; this run ({self.owner}) failed "
                f"({reason}) and stops here without rolling anything back. Follow the "
                "release with `release status`"
            )
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
        if now.family is not None:
            # The trigger runs the newest revision: register the image the release replaced
            # onto it, only while the release's image is what it runs (a rollback is a
            # deployment like any other; a newer ship or Pulumi's fields are kept).
            result = deploy_task(
                self.aws.clients.ecs,
                TaskChange(
                    family=str(now.family_name),
                    images={container: task.previous_image},
                    expect_images={container: task.image},
                ),
                register=self._paced_register,
                sleep=self.aws.clock.sleep,
            )
            revision = result.task_definition_arn
            if result.action == "superseded":
                # What deploy_task found newer, not the trigger's read before it.
                image = result.images.get(container) or self.definitions.image(
                    now.task_definition, container
                )
                kept.append(f"image {image}")
        elif now.task_definition == task.new_td:
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
        wanted = Trigger(revision, schedule, command, family=now.family)
        if (wanted.family is None and wanted != now) or (schedule, command) != (
            now.schedule,
            now.command,
        ):
            write_trigger(self.aws, task.target, wanted)
        if kept:
            return "superseded", f"kept {', '.join(kept)}: changed after this release"
        return "rolled_back", None

    def _rollback_services(self) -> None:
        state = self.store.state
        now = self._now()
        unsettled = {n: s for n, s in state.services.items() if s.rollback not in SETTLED_ROLLBACK}
        watch = []
        for name, svc in unsettled.items():
            if svc.rollback in (None, "stopping") and svc.status in (
                "deploying",
                "deployed",
                "failed",
            ):
                watch.append((name, svc.deployment_id))
            if svc.rollback == "redeploying" and svc.rollback_deployment_id:
                watch.append((name, svc.rollback_deployment_id))
        infos = self._seen((n, d) for n, d in watch if d)
        changes: dict[str, dict[str, Any]] = {}
        verify: list[str] = []

        for name, svc in sorted(unsettled.items()):
            if svc.rollback is None:
                if svc.status == "pending":
                    changes[name] = {"rollback": "not_needed"}
                elif svc.status == "starting":
                    found = self._find_deployment(name, "release", svc.started_at, False)
                    if found is not None:
                        changes[name] = {"status": "deploying", "deployment_id": found}
                    elif now - (svc.started_at or now) >= self.config.start_grace_seconds:
                        # Registered but never deployed: nothing runs the new revision.
                        changes[name] = {"rollback": "not_needed", "status": "failed"}
                elif running := self._in_flight(name, svc, infos):
                    # Deploying, or failed while its engine still runs it (it timed out, or
                    # the start failed after the engine accepted it): it could still switch
                    # the service after we verified, so stop it first.
                    self._engine(name).stop(running, self.aws.clock.sleep)
                    changes[name] = {
                        "rollback": "stopping",
                        "rollback_started_at": now,
                        "deployment_id": running,
                    }
                else:  # deployed or failed: check what runs, redeploy if needed
                    changes[name] = {"rollback": "verifying", "rollback_started_at": now}
                    verify.append(name)
            elif svc.rollback == "stopping":
                seen = infos.get(str(svc.deployment_id))
                if seen is None or not seen.in_progress:
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

    def _in_flight(self, name: str, svc: ServiceState, infos: dict[str, Seen]) -> str | None:
        """The id of the service's forward deployment if its engine still runs it (a
        deployed one may still wait out its termination wait or bake time: stopping it puts
        the original revision, still there, back on production traffic)."""
        if svc.status not in ("deploying", "deployed", "failed"):
            return None
        if svc.deployment_id is not None:
            seen = infos.get(svc.deployment_id)
            return svc.deployment_id if seen is not None and seen.in_progress else None
        if svc.status == "failed" and svc.started_at is not None:
            # Claimed, then failed without a recorded id: the engine may have created it.
            return self._find_deployment(name, "release", svc.started_at, True)
        return None

    def _timed_out(self, since: float | None, now: float) -> bool:
        return since is not None and now - since > self.config.deployment_timeout_seconds

    def _rollback_failed(self, phase: str, deployment_id: str | None) -> dict[str, Any]:
        return {
            "rollback": "failed",
            "rollback_error": f"{phase} deployment {deployment_id} did not finish within "
            f"{self.config.deployment_timeout_seconds:g} s",
        }

    def _redeploy_progress(
        self, name: str, infos: dict[str, Seen], now: float
    ) -> dict[str, dict[str, Any]]:
        svc = self.store.state.services[name]
        if svc.rollback_deployment_id is None:
            # Claimed but not recorded (a run died in between, or the group was busy):
            # adopt ours if it exists, else start it now. One that ended without shipping
            # is not adopted: the core withdraws ours when another deployer took the lock
            # alongside (on ECS that stop ends ROLLBACK_SUCCESSFUL, a "failed" phase), and
            # nothing of it runs; the redeploy starts again, guarded as any other.
            found: str | dict[str, Any] | None = self._find_deployment(
                name, "rollback", svc.rollback_started_at, False, exclude=("failed", "stopped")
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
        seen = infos.get(svc.rollback_deployment_id)
        if seen is not None and seen.phase == "succeeded":
            return {name: {"rollback": "verifying"}}
        if seen is not None and seen.phase in ("failed", "stopped"):
            return {name: {"rollback": "failed", "rollback_error": seen.reason}}
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
        """Settle each service by the images the containers the release changed run now.

        Each runs its image from before the release: rolled back. None runs the release's
        image, and one another: a deployer changed it since, so it is left as it runs
        ("superseded", named in the report). One runs the release's image: the previous
        image of each such container is deployed onto what runs now (every other field,
        e.g. a Pulumi change made since, and a sidecar shipped since, are kept), once the
        group is free: a deployment holding it (CodeDeploy's own rollback, a stop) may
        restore it.
        """
        services = self.store.state.services
        running, reason = self._running_or_reason({n: services[n].target for n in names})
        settled: dict[str, dict[str, Any]] = {}
        for name in names:
            svc = services[name]
            live = running.get(name)
            images = {c: self._image_or_none(live, c) for c in svc.changed}
            missing = sorted(c for c, image in images.items() if image is None)
            if live is None:
                settled[name] = {"rollback": "failed", "rollback_error": reason}
            elif svc.deployment_id is None and svc.status == "failed":
                settled[name] = {"rollback": "not_needed"}  # the release never deployed it
            elif len(missing) == len(images):  # gone: nothing of the release runs there
                settled[name] = {
                    "rollback": "superseded",
                    "rollback_note": f"{live} has no container {missing[0]!r}; left as it runs",
                }
            elif all(images[c] == before for c, (before, _) in svc.changed.items()):
                settled[name] = {"rollback": "rolled_back"}
            elif not _still_released(svc, images):
                settled[name] = self._superseded(name, live, _kept(svc, images))
            elif self._group_held(name):
                if self._timed_out(svc.rollback_started_at, now):
                    settled[name] = self._rollback_failed("verifying", svc.deployment_id)
            else:
                self._claim_redeploy(name, now)
        if settled:
            self._apply_changes(settled)

    def _group_held(self, name: str) -> bool:
        """Another deployment holds the service's lock, and the redeploy waits for it
        (on CodeDeploy with `end`, one that only waits out its termination wait does not
        hold it: the redeploy ends that wait, as the release's own deploys do)."""
        svc = self.store.state.services[name]
        request = self._request(name, "rollback", svc.previous_images)
        ours = (self._marker("release", name), self._marker("rollback", name))
        return self._engine(name).held(request, ours, self.aws.clock.sleep)

    def _image_or_none(self, arn: str | None, container: str) -> str | None:
        if arn is None:
            return None
        try:
            return self.definitions.image(arn, container)
        except LiveStateError:
            return None

    def _superseded(self, name: str, live: str, image: str) -> dict[str, Any]:
        """A deployer other than this release set the service's image since (`image`: what
        it runs, or each kept container's `container image`): keep it."""
        newer = self._newest_other_deployment(name)
        note = (
            f"runs {image} ({live}), deployed after this release"
            + (f" by deployment {newer}" if newer else "")
            + "; left as it runs"
        )
        return {"rollback": "superseded", "rollback_note": note}

    def _newest_other_deployment(self, name: str) -> str | None:
        """The service's newest succeeded deployment not made by this release, if any."""
        svc = self.store.state.services[name]
        others = [
            seen
            for seen in self._history(name, "succeeded", svc.started_at)
            if not any(
                self._is_ours(name, seen, action, None) for action in ("release", "rollback")
            )
        ]
        newest = max(others, key=lambda seen: seen.created, default=None)
        return newest.id if newest else None

    def _running_or_reason(self, targets: dict[str, ServiceTarget]) -> tuple[dict[str, str], str]:
        try:
            return running_task_definitions(self.aws, targets), ""
        except LiveStateError as error:
            return {}, _reason(error)

    def _claim_redeploy(self, name: str, now: float) -> None:
        def claim(st: ReleaseState) -> bool:
            svc = st.services[name]
            if svc.rollback != "verifying":
                raise Unchanged(False)
            svc.rollback, svc.rollback_deployment_id = "redeploying", None
            svc.rollback_started_at = now
            return True

        if not self.store.update(claim):
            return
        started = self._start_redeploy(name)
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

    def _start_redeploy(self, name: str) -> str | dict[str, Any] | None:
        """Deploy the service's previous image onto what runs now, only while the release's
        image still runs: the deployment's id, the settled rollback when there is nothing to
        deploy, or None when the group is busy right now."""
        svc = self.store.state.services[name]
        # Only the containers that still run the release's image go back; one shipped since
        # is kept (and checked again under the group's lock by expect_images).
        restore = svc.changed
        if len(restore) > 1:
            # A container Pulumi removed since runs nothing of the release: it is left out.
            running = self._running(name)
            runs = {c: self._image_or_none(running, c) for c in restore}
            restore = {c: pair for c, pair in restore.items() if runs[c] == pair[1]}
        if not restore:
            return {"rollback": "verifying"}
        # While what runs is exactly the release's own revision (nothing changed since), the
        # revision it replaced comes back whole (also the fields a stale deployment of ours
        # reverted); otherwise only the images go back, onto what runs. The core decides
        # from what runs under the group's lock, not from an earlier read.
        try:
            result = self._deploy(
                name,
                "rollback",
                {c: before for c, (before, _) in restore.items()},
                expect_images={c: after for c, (_, after) in restore.items()},
                reuse_revision=svc.previous_td,
                template_arn=svc.previous_td if svc.new_td else None,
                template_while_running=svc.new_td,
            )
        except (DeploymentInProgressError, _Aborted):
            return None
        if result.action == "superseded":
            if _still_released(svc, dict(result.images)):
                return {"rollback": "verifying"}  # moved since our read: decide again
            return self._superseded(
                name, result.running_task_definition_arn, _kept(svc, dict(result.images))
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


def _still_released(svc: ServiceState, images: dict[str, str | None]) -> bool:
    """Whether a container the release changed still runs the release's image."""
    return any(images.get(c) == after for c, (_, after) in svc.changed.items())


def _kept(svc: ServiceState, images: dict[str, str | None]) -> str:
    """What runs in place of the release's images: the main container's image alone (as
    before sidecars), else `container image` of each container that moved on."""
    moved = {
        c: images.get(c) or "(removed)"
        for c, (before, _) in svc.changed.items()
        if images.get(c) != before
    }
    if list(moved) == [svc.target.container]:
        return moved[svc.target.container]
    return ", ".join(f"{c} {image}" for c, image in sorted(moved.items())) or "?"

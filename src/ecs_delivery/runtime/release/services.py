"""The forward deployment of each service: start it once (adopting a deployment a dead run
left behind), record what it became, poll every deployment in flight (through each
service's engine)."""

from __future__ import annotations

from collections.abc import Iterable

from ecs_delivery.runtime.codedeploy import DeploymentInProgressError, StopTooLateError
from ecs_delivery.runtime.release.core import MERGE_ATTEMPTS, EngineCore
from ecs_delivery.runtime.release.engine_types import (
    ReleaseStopped,
    ServiceDeploymentFailed,
    _Aborted,
)
from ecs_delivery.runtime.release.state import ReleaseState, Unchanged
from ecs_delivery.runtime.rollout import RolloutRaceError, RolloutResult, ServiceStateError


class ServiceSteps(EngineCore):
    """Deploys the release's image to each service."""

    def start_service(self, name: str) -> str:
        """Register the new revision and start the service's deployment, once.

        The revision is derived from what the service runs at this moment (only the image
        changes), and checked again once the deployment holds the group's lock.

        Returns the service's status afterwards ("deploying", or what it already was;
        "pending" if the run is being aborted; "starting" while another run's claim is
        younger than `start_grace_seconds`). Raises ReleaseStopped when the release is no
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
                name,
                "release",
                service.started_at,
                in_progress_only=False,
                revision=service.new_td,
                exclude=("stopped",),
            )
            if found is not None:
                return self._record_deployment(name, found, "adopted after a restart")
            if self._now() - (service.started_at or 0.0) < self.config.start_grace_seconds:
                # The run that claimed it may be alive, between its claim and its create
                # (until its step's timeout, which the grace outlasts): deriving again now
                # would deploy the release twice. Ask again at the next poll.
                return "starting"
        return self._derive_and_deploy(name, expected=service.status)

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
            result = self._deploy(name, "release", service.images, claim)
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
        images = self._images_of(replaced, self.store.state.services[name].images)

        def record(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status == "starting":
                svc.previous_td = replaced
                svc.record_previous(images)
                svc.new_td, svc.deployment_id = error.deployed, error.deployment_id

        self.store.update(record)

    def _adopt_or_fail(self, name: str, busy: DeploymentInProgressError) -> str:
        """The service's lock is held: ours (a retried step) is adopted, anyone else's is a
        failure."""
        service = self.store.state.services[name]
        found = self._find_deployment(name, "release", service.started_at, in_progress_only=True)
        if found is None:
            raise ServiceDeploymentFailed(
                name,
                f"{service.target.lock} already runs another deployment "
                f"({', '.join(busy.deployment_ids) or 'id not reported'})",
            )
        return self._record_deployment(name, found, "adopted")

    def _record_nothing_to_deploy(self, name: str, result: RolloutResult) -> str:
        """What runs already carries the release's image (someone shipped it): nothing is
        deployed, and a rollback has nothing of this release's to take back."""

        def record(st: ReleaseState) -> None:
            svc = st.services[name]
            if svc.status in ("pending", "starting"):
                svc.status, svc.finished_at = "deployed", self._now()
                svc.previous_td = result.running_task_definition_arn
                svc.record_previous(result.images)

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
        previous = self._images_of(base, self.store.state.services[name].images)

        def claim(st: ReleaseState) -> str:
            if st.status != "running":
                raise Unchanged("stopped")
            svc = st.services[name]
            if svc.status != expected:
                raise Unchanged(svc.status)
            svc.status, svc.new_td, svc.started_at = "starting", new_td, now
            svc.previous_td = base
            svc.record_previous(previous)
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
        seen = self._seen((n, str(w)) for w, n in watched.items() if w)
        now = self._now()
        finished: dict[str, tuple[str, str]] = {}
        for deployment_id, name in watched.items():
            found = seen.get(str(deployment_id))
            phase = found.phase if found else "?"
            status = found.status if found else "?"
            started = state.services[name].started_at or now
            # Shipped: production runs it (termination wait or bake time still running).
            if found and phase in ("shipped", "succeeded"):
                finished[name] = ("deployed", "")
            elif found and phase in ("failed", "stopped"):
                finished[name] = ("failed", found.reason)
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

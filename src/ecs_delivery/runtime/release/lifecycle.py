"""The release as a whole: its first state, the runner's lease on it, its success."""

from __future__ import annotations

import datetime

from ecs_delivery.runtime.release.core import EngineCore
from ecs_delivery.runtime.release.engine_types import ReleaseBusyError, ReleaseInputError
from ecs_delivery.runtime.release.manifest import same_manifest
from ecs_delivery.runtime.release.plan import Plan
from ecs_delivery.runtime.release.state import (
    TERMINAL_RELEASE,
    Lease,
    ReleaseState,
    StateStore,
    Unchanged,
)

# A runner's lease on its release: renewed at every poll, so only a dead runner's expires.
LEASE_SECONDS = 300.0


def execution_lease_seconds(poll_seconds: float) -> float:
    """A state machine execution's lease: it renews at its polls, which come every
    `poll_seconds` plus Lambda retries and throttling backoff (up to minutes); a lease is
    renewed when half of it is left."""
    return 2 * (poll_seconds + LEASE_SECONDS)


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


class Lifecycle(EngineCore):
    """Steps on the release as a whole (its services and tasks have their own)."""

    # ------------------------------------------------------------------ lease

    def take_lease(self, seconds: float = LEASE_SECONDS, take_over: bool = False) -> None:
        """Hold the release for `seconds` (renewing our own lease); ReleaseBusyError while
        another runner's lease is live, unless `take_over`."""
        now = self._now()

        def claim(st: ReleaseState) -> Lease | None:
            if st.status in TERMINAL_RELEASE:
                raise Unchanged(None)  # finished meanwhile (by another runner): nothing to hold
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

    def hold_lease(self, seconds: float = LEASE_SECONDS) -> None:
        """Go on holding the lease taken earlier, renewing it when half of it is gone.

        ReleaseBusyError when it is no longer ours: another runner took the release over
        (and may have finished it since), so this run must stop without touching it."""
        self._still_ours(self.store.state)
        lease = self.store.state.lease
        assert lease is not None
        if lease.expires_at - self._now() < seconds / 2:
            self.take_lease(seconds)
        # Every later write checks again, on the state it is applied to: a take-over that
        # lands after this read still stops this run before it changes anything.
        self.store.guard = self._still_ours

    def _still_ours(self, st: ReleaseState) -> None:
        lease = st.lease
        if lease is None or lease.owner != self.owner:
            holder = f"is being run by {lease.owner}" if lease else "was taken over"
            raise ReleaseBusyError(
                f"release: {self.release_id} {holder}; this run ({self.owner}) stops here "
                "without rolling anything back. Follow the release with `release status`"
            )

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

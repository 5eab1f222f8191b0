"""The engines of the one deployment core: who runs a blue/green deployment of a merged revision.

The core (runtime/rollout.py) reads what runs, overlays its owner's fields, registers, and then
asks its engine only this: who holds the service's lock, start a deployment of this revision,
what ran when ours took the lock, stop ours, is ours done. CodeDeploy's engine deploys through
the service's deployment group (AppSpec); ECS's engine through UpdateService on a service with
the ECS controller, whose in-progress service deployment is the lock.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.aws import call_with_backoff, chunks
from ecs_delivery.runtime.live import Running, strategy

Sleep = Callable[[float], Any]
Clock = Callable[[], float]
# A runtime.rollout.RolloutRequest (that module imports this one, so not by name here).
RolloutRequest = Any
Phase = Literal["running", "shipped", "succeeded", "failed", "stopped"]
# Which deployments `Engine.history` lists.
Listed = Literal["all", "in_progress", "succeeded"]
BATCH_GET_DEPLOYMENTS = 25  # CodeDeploy BatchGetDeployments takes at most 25 ids


@dataclass(frozen=True)
class Seen:
    """A deployment as a watcher (the release engine) sees it, on either engine.

    phase: running (holds the lock, production runs the old revision), shipped (production
    runs the target; the lock is still held: termination wait, bake time), succeeded, failed
    (it ended without shipping: rolled back) or stopped (a stop ended it).
    """

    id: str
    phase: Phase
    status: str = ""  # the engine's own word for it (InProgress, IN_PROGRESS, ...)
    reason: str = ""
    # CodeDeploy's description (the deployer's name for it); ECS keeps none.
    description: str = ""
    # The revision it deploys, where `history` read it (ECS); "" otherwise.
    target: str = ""
    created: str = ""

    @property
    def in_progress(self) -> bool:
        return self.phase in ("running", "shipped")


class Engine(Protocol):
    """The engine-specific half of a deployment (the merge loop is the core's, once)."""

    # The deployment controller a service must have for this engine.
    controller: str

    def busy(self, request: RolloutRequest, sleep: Sleep) -> list[str]:
        """Deployments holding the service's lock now (ids or ARNs)."""
        ...

    def wait_for_others(
        self, request: RolloutRequest, busy: list[str], sleep: Sleep, clock: Clock
    ) -> None:
        """Wait until `busy` have ended (request.wait), else refuse naming them."""
        ...

    def start(
        self,
        request: RolloutRequest,
        target: str,
        live: Running,
        description: str,
        sleep: Sleep,
        clock: Clock,
    ) -> str:
        """Deploy `target` (with the network, platform and strategy of `request` or `live`);
        its id. DeploymentInProgressError when another deployment holds the lock."""
        ...

    def running_under_lock(
        self,
        request: RolloutRequest,
        deployment_id: str,
        expected: str,
        read: Callable[[], Running],
        sleep: Sleep,
    ) -> str:
        """The revision our deployment replaces, read once it holds the lock (`read`: what
        runs now): another than `expected` (what the core read) when a deployment landed
        in between."""
        ...

    def stop_and_wait(
        self, request: RolloutRequest, deployment_id: str, sleep: Sleep, clock: Clock
    ) -> None:
        """Withdraw our deployment; StopTooLateError when it had already succeeded."""
        ...

    def wait(self, request: RolloutRequest, deployment_id: str, sleep: Sleep, clock: Clock) -> None:
        """Until ours has shipped; its failure or a timeout raise (a DeploymentError)."""
        ...

    # What a watcher of many deployments (the release engine) asks, without waiting.

    def describe(self, ids: Iterable[str], sleep: Sleep) -> dict[str, Seen]:
        """How each deployment stands now, in as few calls as the API allows."""
        ...

    def history(
        self, request: RolloutRequest, since: float | None, listed: Listed, sleep: Sleep
    ) -> list[Seen]:
        """The service's deployments created since `since` (minus 5 minutes of clock skew)."""
        ...

    def stop(self, deployment_id: str, sleep: Sleep) -> None:
        """Ask for a stop with rollback, without waiting; one that has ended is left alone."""
        ...

    def held(self, request: RolloutRequest, ours: Sequence[str], sleep: Sleep) -> bool:
        """Another deployment holds the lock, and a deployment of `request` must wait for it
        (`ours`: description prefixes of the caller's own)."""
        ...


def skewed(since: float | None) -> datetime.datetime | None:
    """`since` minus 5 minutes of clock skew between the caller and AWS."""
    if since is None:
        return None
    return datetime.datetime.fromtimestamp(since - 300, tz=datetime.UTC)


def network_of(request: RolloutRequest, live: Running) -> cd.Network | None:
    """What a deployment runs on: the request's network, else what runs (never omitted)."""
    if request.network is not None:
        return request.network
    if not (live.subnets and live.security_groups):
        return None
    return cd.Network(live.subnets, live.security_groups, live.assign_public_ip)


def capacity_of(request: RolloutRequest, live: Running) -> tuple[tuple[str, int, int], ...]:
    if request.capacity_providers is None:
        return live.capacity_providers
    return strategy(request.capacity_providers)


class CodeDeployEngine:
    """Blue/green through the service's CodeDeploy deployment group (its lock)."""

    controller = "CODE_DEPLOY"

    def __init__(self, codedeploy: Any) -> None:
        self.codedeploy = codedeploy

    def busy(self, request: RolloutRequest, sleep: Sleep) -> list[str]:
        return cd.in_progress_deployments(
            self.codedeploy, request.application, request.deployment_group, sleep
        )

    def wait_for_others(
        self, request: RolloutRequest, busy: list[str], sleep: Sleep, clock: Clock
    ) -> None:
        """With `end_termination_wait`, end the waits of deployments that have shipped first
        (also with wait=False: only waits that can be ended now, never another's shift)."""
        if not request.wait and not (
            request.end_termination_wait
            and request.own_deployment not in busy
            and cd.only_termination_waits(
                self.codedeploy, busy, (request.description_prefix or "",), sleep
            )
        ):
            raise cd.DeploymentInProgressError(request.application, request.deployment_group, busy)
        for deployment_id in busy:
            if request.end_termination_wait:
                cd.end_termination_wait(self.codedeploy, deployment_id, sleep)
            cd.wait_until_finished(
                self.codedeploy,
                deployment_id,
                timeout_seconds=request.timeout_seconds,
                poll_seconds=request.poll_seconds,
                sleep=sleep,
                clock=clock,
            )

    def start(
        self,
        request: RolloutRequest,
        target: str,
        live: Running,
        description: str,
        sleep: Sleep,
        clock: Clock,
    ) -> str:
        # A complete AppSpec: what a deployment runs on never depends on what CodeDeploy
        # does with an omitted field (a ship keeps the network Pulumi rolled out).
        spec = cd.appspec(
            target,
            request.container_name,
            request.container_port,
            hooks=request.hooks,
            platform_version=request.platform_version or live.platform_version,
            network=network_of(request, live),
            capacity_providers=capacity_of(request, live),
        )
        return cd.start_deployment(
            self.codedeploy,
            request.application,
            request.deployment_group,
            spec,
            sleep=sleep,
            description=description,
        )

    def running_under_lock(
        self,
        request: RolloutRequest,
        deployment_id: str,
        expected: str,
        read: Callable[[], Running],
        sleep: Sleep,
    ) -> str:
        # The PRIMARY task set moves only when traffic does: what runs is what ours replaces.
        return read().task_definition_arn

    def stop_and_wait(
        self, request: RolloutRequest, deployment_id: str, sleep: Sleep, clock: Clock
    ) -> None:
        cd.stop_and_wait(
            self.codedeploy,
            deployment_id,
            timeout_seconds=request.timeout_seconds,
            poll_seconds=request.poll_seconds,
            sleep=sleep,
            clock=clock,
        )

    def wait(self, request: RolloutRequest, deployment_id: str, sleep: Sleep, clock: Clock) -> None:
        cd.wait_for_deployment(
            self.codedeploy,
            deployment_id,
            timeout_seconds=request.timeout_seconds,
            poll_seconds=request.poll_seconds,
            sleep=sleep,
            clock=clock,
        )

    def describe(self, ids: Iterable[str], sleep: Sleep) -> dict[str, Seen]:
        seen: dict[str, Seen] = {}
        for chunk in chunks(sorted(set(ids)), BATCH_GET_DEPLOYMENTS):
            response = call_with_backoff(
                self.codedeploy.batch_get_deployments, deploymentIds=chunk, sleep=sleep
            )
            for info in response.get("deploymentsInfo", []):
                seen[info["deploymentId"]] = seen_of(info)
        return seen

    def history(
        self, request: RolloutRequest, since: float | None, listed: Listed, sleep: Sleep
    ) -> list[Seen]:
        kwargs: dict[str, Any] = {
            "applicationName": request.application,
            "deploymentGroupName": request.deployment_group,
        }
        if listed != "all":
            kwargs["includeOnlyStatuses"] = (
                list(cd.IN_PROGRESS_STATUSES) if listed == "in_progress" else ["Succeeded"]
            )
        if (start := skewed(since)) is not None:
            kwargs["createTimeRange"] = {"start": start}
        ids: list[str] = []
        while True:
            page = call_with_backoff(self.codedeploy.list_deployments, sleep=sleep, **kwargs)
            ids.extend(page.get("deployments", []))
            if not page.get("nextToken"):
                return list(self.describe(ids, sleep).values())
            kwargs["nextToken"] = page["nextToken"]

    def stop(self, deployment_id: str, sleep: Sleep) -> None:
        cd.stop_deployment(self.codedeploy, deployment_id, sleep)

    def held(self, request: RolloutRequest, ours: Sequence[str], sleep: Sleep) -> bool:
        """With `end_termination_wait`, one that only waits out its termination wait does
        not hold the group: a deployment of `request` ends that wait (wait_for_others)."""
        holding = self.busy(request, sleep)
        if not holding or not request.end_termination_wait:
            return bool(holding)
        return not cd.only_termination_waits(self.codedeploy, holding, ours, sleep)


def seen_of(info: Mapping[str, Any]) -> Seen:
    """A CodeDeploy deploymentInfo as a watcher sees it."""
    status = info.get("status")
    phase: Phase
    if status == "Succeeded":
        phase = "succeeded"
    elif status in cd.IN_PROGRESS_STATUSES:
        phase = "shipped" if cd.shipped(info) else "running"
    else:
        phase = "stopped" if status == "Stopped" else "failed"
    error = info.get("errorInformation") or {}
    reason = (
        f"deployment {info.get('deploymentId')} ended {status}: "
        f"{error.get('code') or 'no error code'}: {error.get('message') or 'no message'}"
        if phase in ("failed", "stopped")
        else ""
    )
    return Seen(
        id=str(info["deploymentId"]),
        phase=phase,
        status=str(status),
        reason=reason,
        description=str(info.get("description", "")),
        created=str(info.get("createTime", "")),
    )

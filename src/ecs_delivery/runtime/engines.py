"""The engines of the one deployment core: who runs a blue/green deployment of a merged revision.

The core (runtime/rollout.py) reads what runs, overlays its owner's fields, registers, and then
asks its engine only this: who holds the service's lock, start a deployment of this revision,
what ran when ours took the lock, stop ours, is ours done. CodeDeploy's engine deploys through
the service's deployment group (AppSpec); ECS's engine through UpdateService on a service with
the ECS controller, whose in-progress service deployment is the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.live import Running, strategy

Sleep = Callable[[float], Any]
Clock = Callable[[], float]
# A runtime.rollout.RolloutRequest (that module imports this one, so not by name here).
RolloutRequest = Any


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

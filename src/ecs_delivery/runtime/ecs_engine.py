"""ECS's own controller as an engine of the deployment core: blue/green (deployment.engine ecs)
and the rolling update of a worker (no load balancer), one engine for both.

A deployment is UpdateService with the merged revision and everything it runs on (network,
platform version, capacity provider strategy: never left to what ECS does with an omitted
field). The lock is the service's in-progress service deployment (ListServiceDeployments);
a race is withdrawn with StopServiceDeployment (ROLLBACK). Traffic shifting, the bake time,
alarms and the validation hook are the service's own configuration (the plan sets them).

A rolling update reports no lifecycle stage: it ships when it is SUCCESSFUL (the new tasks
replaced the old ones and passed the alarms' monitoring); the circuit breaker or an alarm ends
it ROLLBACK_SUCCESSFUL, and the error says which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from ecs_delivery.runtime import clock as runtime_clock
from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.aws import call_with_backoff, chunks
from ecs_delivery.runtime.engines import (
    Clock,
    Listed,
    Phase,
    RolloutRequest,
    Seen,
    Sleep,
    capacity_of,
    network_of,
    skewed,
)
from ecs_delivery.runtime.live import Running

# A service deployment that has not ended: it holds the service (ECS runs one at a time).
IN_PROGRESS_STATUSES = (
    "PENDING",
    "IN_PROGRESS",
    "STOP_REQUESTED",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
)
FAILED_STATUSES = ("STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
# Production runs the new revision and the old one only waits out the bake: shipped, like
# CodeDeploy's termination wait (a stop still rolls it back).
SHIPPED_STAGES = ("BAKE_TIME", "CLEAN_UP")
DESCRIBE_BATCH = 20  # DescribeServiceDeployments / DescribeServiceRevisions per call
# StopServiceDeployment's answers for a deployment that has already ended.
ENDED_CODES = (
    "ConflictException",
    "InvalidParameterException",
    "ServiceDeploymentNotFoundException",
)


class EcsDeploymentInProgressError(cd.DeploymentInProgressError):
    """The service runs another service deployment; starting one over it is refused."""

    def __init__(self, cluster: str, service: str, deployment_arns: Sequence[str]) -> None:
        super().__init__(cluster, service, list(deployment_arns))
        ids = ", ".join(self.deployment_ids) or "(ARN not reported)"
        first = self.deployment_ids[0] if self.deployment_ids else "<arn>"
        self.template = (
            f"ECS service {cluster}/{service} already has a service deployment in progress: "
            f"{ids}. Refusing to start another one over it. Either wait for it to finish "
            f"(`aws ecs describe-service-deployments --service-deployment-arns {first}`) "
            "and {next}, or stop it and let ECS roll it back "
            f"(`aws ecs stop-service-deployment --service-deployment-arn {first} "
            "--stop-type ROLLBACK`) and then {next}."
        )
        Exception.__init__(self, self.for_caller(cd.PULUMI_NEXT_STEP))


class EcsDeploymentFailedError(cd.DeploymentError):
    """A service deployment ended stopped or rolled back."""

    def __init__(self, deployment: Mapping[str, Any]) -> None:
        self.deployment_id = str(deployment.get("serviceDeploymentArn", "?"))
        self.status = str(deployment.get("status", "?"))
        self.rolled_back = self.status == "ROLLBACK_SUCCESSFUL"
        reason = deployment.get("statusReason") or "no reason reported"
        if trigger := rollback_trigger(deployment):
            reason = f"{reason} ({trigger})"
        after = (
            "ECS rolled back; the service keeps running the previous revision."
            if self.rolled_back
            else "Check which revision serves traffic with `aws ecs describe-service-deployments "
            f"--service-deployment-arns {self.deployment_id}`."
        )
        super().__init__(
            f"ECS service deployment {self.deployment_id} ended {self.status}: {reason}. {after}"
        )


class EcsDeploymentTimeoutError(cd.DeploymentTimeoutError):
    """A service deployment did not finish within the configured time."""

    def __init__(self, deployment_id: str, timeout_seconds: float, last_status: str) -> None:
        super().__init__(deployment_id, timeout_seconds, last_status)
        self.template = (
            f"ECS service deployment {deployment_id} did not finish within "
            f"{timeout_seconds / 60:g} min (last status: {last_status}). It keeps running in "
            "ECS; stopped waiting only. Check it with `aws ecs describe-service-deployments "
            f"--service-deployment-arns {deployment_id}`; once it has ended, "
            "{next} (or raise the timeout)."
        )
        Exception.__init__(self, self.for_caller(cd.PULUMI_NEXT_STEP))


def rollback_trigger(deployment: Mapping[str, Any]) -> str:
    """What rolled a deployment back, as ECS records it: the circuit breaker, alarms, or ""."""
    alarms = deployment.get("alarms") or {}
    if alarms.get("status") == "TRIGGERED":
        names = ", ".join(alarms.get("triggeredAlarmNames") or []) or "(names not reported)"
        return f"alarm in ALARM: {names}"
    breaker = deployment.get("deploymentCircuitBreaker") or {}
    if breaker.get("status") == "TRIGGERED":
        return (
            f"the deployment circuit breaker tripped: {breaker.get('failureCount', '?')} tasks "
            f"failed to start or stay running (threshold {breaker.get('threshold', '?')})"
        )
    return ""


def shipped(deployment: Mapping[str, Any]) -> bool:
    """Production runs the target revision: SUCCESSFUL, or baking before the clean-up."""
    return deployment.get("status") == "SUCCESSFUL" or (
        deployment.get("status") == "IN_PROGRESS"
        and deployment.get("lifecycleStage") in SHIPPED_STAGES
    )


def outcome(ecs: Any, deployment_arn: str, sleep: Sleep | None = None) -> str:
    """How a started deployment stands, as a rollout record says it: deployed, failed, started."""
    described = describe_deployments(ecs, [deployment_arn], sleep or runtime_clock.sleep)
    if not described:
        return "failed"  # gone: nothing says it shipped
    if shipped(described[0]):
        return "deployed"
    return "failed" if described[0].get("status") in FAILED_STATUSES else "started"


def in_progress(ecs: Any, cluster: str, service: str, sleep: Sleep) -> list[str]:
    """ARNs of the service's deployments that have not ended (the lock's holders)."""
    return deployment_arns(ecs, cluster, service, sleep, status=list(IN_PROGRESS_STATUSES))


def deployment_arns(
    ecs: Any, cluster: str, service: str, sleep: Sleep, **filters: Any
) -> list[str]:
    """ARNs of the service's deployments that pass ListServiceDeployments' `filters`."""
    arns: list[str] = []
    kwargs: dict[str, Any] = {"cluster": cluster, "service": service, **filters}
    while True:
        page = call_with_backoff(ecs.list_service_deployments, sleep=sleep, **kwargs)
        arns.extend(d["serviceDeploymentArn"] for d in page.get("serviceDeployments", []))
        if not page.get("nextToken"):
            return arns
        kwargs["nextToken"] = page["nextToken"]


def describe_deployments(ecs: Any, arns: Sequence[str], sleep: Sleep) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for batch in chunks(list(arns), DESCRIBE_BATCH):
        response = call_with_backoff(
            ecs.describe_service_deployments, serviceDeploymentArns=batch, sleep=sleep
        )
        found.extend(response.get("serviceDeployments", []))
    return found


def revision_task_definitions(ecs: Any, arns: Sequence[str], sleep: Sleep) -> dict[str, str]:
    """Service revision ARN -> the task definition it runs."""
    found: dict[str, str] = {}
    for batch in chunks([a for a in arns if a], DESCRIBE_BATCH):
        response = call_with_backoff(
            ecs.describe_service_revisions, serviceRevisionArns=batch, sleep=sleep
        )
        for revision in response.get("serviceRevisions", []):
            found[revision["serviceRevisionArn"]] = revision["taskDefinition"]
    return found


def wait_until(
    ecs: Any,
    deployment_arn: str,
    timeout_seconds: float,
    poll_seconds: float,
    sleep: Sleep,
    clock: Clock,
    done: Callable[[Mapping[str, Any]], bool] = lambda _d: False,
) -> dict[str, Any]:
    """Poll until the deployment ends (or `done`); its last description."""
    deadline = clock() + timeout_seconds
    while True:
        described = describe_deployments(ecs, [deployment_arn], sleep)
        if not described:
            raise cd.DeploymentError(
                f"ECS service deployment {deployment_arn} is not found; check the region and "
                "that the service still exists"
            )
        deployment = described[0]
        status = str(deployment.get("status", "?"))
        if status not in IN_PROGRESS_STATUSES or done(deployment):
            return deployment
        remaining = deadline - clock()
        if remaining <= 0:
            raise EcsDeploymentTimeoutError(deployment_arn, timeout_seconds, status)
        sleep(min(poll_seconds, remaining))


def update_request(request: RolloutRequest, target: str, live: Running) -> dict[str, Any]:
    """UpdateService for `target` with everything it runs on named (never left to ECS)."""
    kwargs: dict[str, Any] = {
        "cluster": request.cluster,
        "service": request.service,
        "taskDefinition": target,
    }
    network = network_of(request, live)
    if network is not None:
        kwargs["networkConfiguration"] = {
            "awsvpcConfiguration": {
                "subnets": sorted(network.subnets),
                "securityGroups": sorted(network.security_groups),
                "assignPublicIp": "ENABLED" if network.assign_public_ip else "DISABLED",
            }
        }
    platform = request.platform_version or live.platform_version
    if platform:
        kwargs["platformVersion"] = platform
    providers = capacity_of(request, live)
    if providers:
        kwargs["capacityProviderStrategy"] = [
            {"capacityProvider": provider, "weight": weight, "base": base}
            for provider, weight, base in providers
        ]
    return kwargs


class EcsEngine:
    """Blue/green or rolling by the ECS deployment controller (whichever the service's own
    deployment configuration says), the service's deployment as the lock."""

    controller = "ECS"

    def __init__(self, ecs: Any) -> None:
        self.ecs = ecs

    def busy(self, request: RolloutRequest, sleep: Sleep) -> list[str]:
        return in_progress(self.ecs, request.cluster, request.service, sleep)

    def wait_for_others(
        self, request: RolloutRequest, busy: list[str], sleep: Sleep, clock: Clock
    ) -> None:
        # ECS has no call that ends a bake early: `end_termination_wait` waits here too.
        if not request.wait:
            raise EcsDeploymentInProgressError(request.cluster, request.service, busy)
        for arn in busy:
            wait_until(self.ecs, arn, request.timeout_seconds, request.poll_seconds, sleep, clock)

    def start(
        self,
        request: RolloutRequest,
        target: str,
        live: Running,
        description: str,
        sleep: Sleep,
        clock: Clock,
    ) -> str:
        """UpdateService; the ARN of the service deployment it started. Another that holds
        the service (before the update, or started alongside) withdraws ours and refuses."""
        busy = self.busy(request, sleep)
        if busy:
            raise EcsDeploymentInProgressError(request.cluster, request.service, busy)
        call_with_backoff(
            self.ecs.update_service, sleep=sleep, **update_request(request, target, live)
        )
        holders = describe_deployments(self.ecs, self.busy(request, sleep), sleep)
        targets = revision_task_definitions(self.ecs, [_target_revision(d) for d in holders], sleep)
        ours = [d for d in holders if targets.get(_target_revision(d)) == target]
        if not ours:
            raise cd.DeploymentError(
                f"ECS service {request.cluster}/{request.service}: UpdateService to {target} "
                "started no service deployment that is still running (another deployment may "
                "have replaced it); check `aws ecs list-service-deployments` and deploy again"
            )
        mine = max(ours, key=lambda d: str(d.get("createdAt", "")))
        others = [d["serviceDeploymentArn"] for d in holders if d is not mine]
        if others:  # another deployer updated the service alongside: withdraw ours, wait
            self.stop_and_wait(request, mine["serviceDeploymentArn"], sleep, clock)
            raise EcsDeploymentInProgressError(request.cluster, request.service, others)
        return str(mine["serviceDeploymentArn"])

    def running_under_lock(
        self,
        request: RolloutRequest,
        deployment_id: str,
        expected: str,
        read: Callable[[], Running],
        sleep: Sleep,
    ) -> str:
        """The revision ours replaces, as ECS recorded it when ours started (the service's
        own field already names our target): another than `expected` when a ship landed
        between the core's read and the update."""
        described = describe_deployments(self.ecs, [deployment_id], sleep)
        sources = [
            r.get("arn", "")
            for r in (described[0] if described else {}).get("sourceServiceRevisions") or []
        ]
        definitions = revision_task_definitions(self.ecs, sources, sleep)
        replaced = [definitions[a] for a in sources if a in definitions]
        return next((d for d in replaced if d != expected), expected)

    def stop_and_wait(
        self, request: RolloutRequest, deployment_id: str, sleep: Sleep, clock: Clock
    ) -> None:
        self.stop(deployment_id, sleep)
        ended = wait_until(
            self.ecs, deployment_id, request.timeout_seconds, request.poll_seconds, sleep, clock
        )
        if ended.get("status") == "SUCCESSFUL":
            raise cd.StopTooLateError(
                f"ECS service deployment {deployment_id} succeeded before it could be stopped; "
                "it deployed a revision merged before another deployment shipped. Check what "
                "the service runs and deploy again."
            )

    def wait(self, request: RolloutRequest, deployment_id: str, sleep: Sleep, clock: Clock) -> None:
        deployment = wait_until(
            self.ecs,
            deployment_id,
            request.timeout_seconds,
            request.poll_seconds,
            sleep,
            clock,
            done=shipped,
        )
        if not shipped(deployment):
            raise EcsDeploymentFailedError(deployment)

    # What a watcher of many deployments (the release engine) asks, without waiting.

    def describe(self, ids: Iterable[str], sleep: Sleep) -> dict[str, Seen]:
        found = describe_deployments(self.ecs, sorted(set(ids)), sleep)
        return {str(d["serviceDeploymentArn"]): seen_of(d) for d in found}

    def history(
        self, request: RolloutRequest, since: float | None, listed: Listed, sleep: Sleep
    ) -> list[Seen]:
        """With the revision each one deploys (ECS records no description: a deployer knows
        its own by the revision it deployed)."""
        filters: dict[str, Any] = {}
        if listed != "all":
            filters["status"] = (
                list(IN_PROGRESS_STATUSES) if listed == "in_progress" else ["SUCCESSFUL"]
            )
        if (start := skewed(since)) is not None:
            filters["createdAt"] = {"after": start}
        arns = deployment_arns(self.ecs, request.cluster, request.service, sleep, **filters)
        found = describe_deployments(self.ecs, arns, sleep)
        targets = revision_task_definitions(self.ecs, [_target_revision(d) for d in found], sleep)
        return [seen_of(d, targets.get(_target_revision(d), "")) for d in found]

    def stop(self, deployment_id: str, sleep: Sleep) -> None:
        try:
            call_with_backoff(
                self.ecs.stop_service_deployment,
                serviceDeploymentArn=deployment_id,
                stopType="ROLLBACK",
                sleep=sleep,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ENDED_CODES:
                raise

    def held(self, request: RolloutRequest, ours: Sequence[str], sleep: Sleep) -> bool:
        # No call ends a bake early: any deployment in progress holds the service.
        return bool(self.busy(request, sleep))


def _target_revision(deployment: Mapping[str, Any]) -> str:
    return str((deployment.get("targetServiceRevision") or {}).get("arn", ""))


def seen_of(deployment: Mapping[str, Any], target: str = "") -> Seen:
    """A DescribeServiceDeployments entry as a watcher sees it."""
    status = str(deployment.get("status", "?"))
    phase: Phase
    if status == "SUCCESSFUL":
        phase = "succeeded"
    elif status in IN_PROGRESS_STATUSES:
        phase = "shipped" if shipped(deployment) else "running"
    else:
        phase = "stopped" if status == "STOPPED" else "failed"
    arn = str(deployment.get("serviceDeploymentArn", "?"))
    reason = deployment.get("statusReason") or "no reason reported"
    if trigger := rollback_trigger(deployment):
        reason = f"{reason} ({trigger})"
    return Seen(
        id=arn,
        phase=phase,
        status=status,
        reason=f"service deployment {arn} ended {status}: {reason}"
        if phase in ("failed", "stopped")
        else "",
        target=target,
        created=str(deployment.get("createdAt", "")),
    )

"""CodeDeploy blue/green deployments of an ECS task definition: AppSpec, start, wait."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ecs_delivery.runtime import clock as runtime_clock
from ecs_delivery.runtime.aws import call_with_backoff

# ECS lifecycle hooks in the order CodeDeploy runs them (AppSpec "hooks" section for ECS).
ECS_HOOK_EVENTS = (
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)
# The validation hook runs after test traffic reaches the new task set, before production.
VALIDATION_HOOK_EVENT = "AfterAllowTestTraffic"
IN_PROGRESS_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")
FAILED_STATUSES = ("Failed", "Stopped")
# ContinueDeployment's answers for a deployment that is not waiting (AWS API reference).
NOT_WAITING_CODES = (
    "DeploymentAlreadyCompletedException",
    "DeploymentIsNotInReadyStateException",
    "InvalidDeploymentWaitTypeException",
    "InvalidDeploymentStatusException",
)
DESCRIPTION_MAX_CHARS = 2048  # CodeDeploy rejects longer descriptions
_DEPLOYMENT_ID = re.compile(r"\bd-[A-Z0-9]{6,}\b")


# What to do next depends on who deployed: the rollout of `pulumi up` (the default wording)
# or the pipeline's deploy step (`for_caller(PIPELINE_NEXT_STEP)`).
PULUMI_NEXT_STEP = "run `pulumi up` again"
PIPELINE_NEXT_STEP = "re-run this pipeline's deploy stage (Retry in the CodePipeline console)"


class DeploymentError(Exception):
    """A CodeDeploy deployment could not be started or did not succeed."""

    template = ""  # a message with {next} where the caller's next step goes

    def __str__(self) -> str:
        return self.for_caller(PULUMI_NEXT_STEP) if self.template else super().__str__()

    def for_caller(self, next_step: str) -> str:
        """The message, with `next_step` as what the reader does once the cause is dealt with."""
        return self.template.format(next=next_step) if self.template else str(self)


class DeploymentInProgressError(DeploymentError):
    """The deployment group already runs a deployment; starting another is refused."""

    def __init__(self, application: str, group: str, deployment_ids: list[str]) -> None:
        self.application = application
        self.group = group
        self.deployment_ids = list(deployment_ids)
        ids = ", ".join(self.deployment_ids) or "(id not reported)"
        first = self.deployment_ids[0] if self.deployment_ids else "<id>"
        self.template = (
            f"CodeDeploy deployment group {application}/{group} already has a deployment in "
            f"progress: {ids}. Refusing to start another one over it. Either wait for it "
            f"to finish (`aws deploy wait deployment-successful --deployment-id {first}`) "
            "and {next}, or stop it and let CodeDeploy roll it back "
            f"(`aws deploy stop-deployment --deployment-id {first} --auto-rollback-enabled`) "
            "and then {next}."
        )
        super().__init__(self.for_caller(PULUMI_NEXT_STEP))


class DeploymentFailedError(DeploymentError):
    """A deployment ended Failed or Stopped."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        self.deployment_id = str(info.get("deploymentId", "?"))
        self.status = str(info.get("status", "?"))
        error = info.get("errorInformation") or {}
        self.error_code = error.get("code")
        self.error_message = error.get("message")
        rollback = info.get("rollbackInfo") or {}
        self.rollback_deployment_id = rollback.get("rollbackDeploymentId")
        self.rollback_message = rollback.get("rollbackMessage")
        self.rolled_back = bool(self.rollback_deployment_id)

        where = ""
        if info.get("applicationName") and info.get("deploymentGroupName"):
            where = f" (group {info['applicationName']}/{info['deploymentGroupName']})"
        reason = f"{self.error_code or 'no error code'}: {self.error_message or 'no error message'}"
        if self.rolled_back:
            after = f"CodeDeploy rolled back with deployment {self.rollback_deployment_id}"
            if self.rollback_message:
                after += f" ({self.rollback_message})"
            after += "; the service keeps running the previous task definition."
        else:
            after = (
                "CodeDeploy reported no rollback; check which task set serves traffic with "
                f"`aws deploy get-deployment --deployment-id {self.deployment_id}`."
            )
        super().__init__(
            f"CodeDeploy deployment {self.deployment_id}{where} ended {self.status}: "
            f"{reason}. {after}"
        )


class DeploymentTimeoutError(DeploymentError):
    """A deployment did not finish within the configured time."""

    def __init__(self, deployment_id: str, timeout_seconds: float, last_status: str) -> None:
        self.deployment_id = deployment_id
        self.timeout_seconds = timeout_seconds
        self.last_status = last_status
        self.template = (
            f"CodeDeploy deployment {deployment_id} did not finish within "
            f"{_duration(timeout_seconds)} (last status: {last_status}). It keeps running in "
            "CodeDeploy; stopped waiting only. Check it with "
            f"`aws deploy get-deployment --deployment-id {deployment_id}`; once it has ended, "
            "{next} (or raise the timeout)."
        )
        super().__init__(self.for_caller(PULUMI_NEXT_STEP))


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


@dataclass(frozen=True)
class Network:
    """The awsvpc network of a service's tasks: Pulumi-owned, deployed through the AppSpec."""

    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: bool = False

    def __post_init__(self) -> None:
        if not self.subnets:
            raise ValueError("network.subnets: at least one subnet is required")
        if not self.security_groups:
            raise ValueError("network.security_groups: at least one security group is required")

    def appspec(self) -> dict[str, Any]:
        return {
            "AwsvpcConfiguration": {
                "Subnets": sorted(self.subnets),
                "SecurityGroups": sorted(self.security_groups),
                "AssignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
            }
        }


def appspec(
    task_definition_arn: str,
    container_name: str,
    container_port: int,
    hooks: Mapping[str, str] | None = None,
    platform_version: str | None = None,
    network: Network | None = None,
    capacity_providers: Sequence[tuple[str, int, int]] = (),
) -> dict[str, Any]:
    """The ECS AppSpec that deploys `task_definition_arn`, routing traffic to container:port.

    `hooks` maps lifecycle event (BeforeInstall, AfterInstall, AfterAllowTestTraffic,
    BeforeAllowTraffic, AfterAllowTraffic) -> Lambda function name or ARN. `network` and
    `platform_version` travel here because AWS refuses them in UpdateService on a
    CODE_DEPLOY service, and so does the strategy of `capacity_providers` ((provider,
    weight, base); empty: the service's launch type).
    """
    if not (task_definition_arn.startswith("arn:") and ":task-definition/" in task_definition_arn):
        raise ValueError(
            f"task_definition_arn: {task_definition_arn!r} is not a task definition ARN "
            "(arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>)"
        )
    if not container_name:
        raise ValueError("container_name: must name the container that receives traffic")
    if isinstance(container_port, bool) or not isinstance(container_port, int):
        raise ValueError(f"container_port: {container_port!r} must be an integer")
    if not 1 <= container_port <= 65535:
        raise ValueError(f"container_port: {container_port} must be between 1 and 65535")
    unknown = sorted(set(hooks or {}) - set(ECS_HOOK_EVENTS))
    if unknown:
        raise ValueError(
            f"hooks: {', '.join(unknown)} not an ECS lifecycle event; "
            f"allowed: {', '.join(ECS_HOOK_EVENTS)}"
        )

    properties: dict[str, Any] = {
        "TaskDefinition": task_definition_arn,
        "LoadBalancerInfo": {"ContainerName": container_name, "ContainerPort": container_port},
    }
    if network is not None:
        properties["NetworkConfiguration"] = network.appspec()
    if platform_version:
        properties["PlatformVersion"] = platform_version
    if capacity_providers:
        properties["CapacityProviderStrategy"] = [
            {"Base": base, "CapacityProvider": provider, "Weight": weight}
            for provider, weight, base in capacity_providers
        ]
    spec: dict[str, Any] = {
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": properties}}],
    }
    if hooks:
        spec["Hooks"] = [{event: hooks[event]} for event in ECS_HOOK_EVENTS if event in hooks]
    return spec


def validation_hooks(function: str | None) -> dict[str, str]:
    """The AppSpec hooks of every deployment of a service: its validation hook, if any."""
    return {VALIDATION_HOOK_EVENT: function} if function else {}


def appspec_content(spec: Mapping[str, Any]) -> dict[str, str]:
    """The `appSpecContent` of a revision: the AppSpec as JSON and its sha256."""
    content = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()}


def in_progress_deployments(
    codedeploy: Any,
    application: str,
    group: str,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
) -> list[str]:
    """Ids of the group's deployments that have not finished yet."""
    ids: list[str] = []
    kwargs: dict[str, Any] = {
        "applicationName": application,
        "deploymentGroupName": group,
        "includeOnlyStatuses": list(IN_PROGRESS_STATUSES),
    }
    while True:
        page = call_with_backoff(codedeploy.list_deployments, sleep=sleep, **kwargs)
        ids.extend(page.get("deployments", []))
        if not page.get("nextToken"):
            return ids
        kwargs["nextToken"] = page["nextToken"]


def start_deployment(
    codedeploy: Any,
    application: str,
    group: str,
    appspec: Mapping[str, Any],
    description: str,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
) -> str:
    """Start a deployment of `appspec` in the group; return its id.

    Refuses (DeploymentInProgressError) while another deployment of the group runs.
    """
    running = in_progress_deployments(codedeploy, application, group, sleep)
    if running:
        raise DeploymentInProgressError(application, group, running)
    try:
        response = call_with_backoff(
            codedeploy.create_deployment,
            sleep=sleep,
            applicationName=application,
            deploymentGroupName=group,
            revision={"revisionType": "AppSpecContent", "appSpecContent": appspec_content(appspec)},
            description=description[:DESCRIPTION_MAX_CHARS],
        )
    except ClientError as error:
        # Another deployment started between the check and this call.
        if error.response.get("Error", {}).get("Code") == "DeploymentLimitExceededException":
            message = error.response.get("Error", {}).get("Message", "")
            ids = _DEPLOYMENT_ID.findall(message) or in_progress_deployments(
                codedeploy, application, group, sleep
            )
            raise DeploymentInProgressError(application, group, ids) from error
        raise
    return response["deploymentId"]


def wait_for_deployment(
    codedeploy: Any,
    deployment_id: str,
    timeout_seconds: float,
    poll_seconds: float = 15,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    clock: Callable[[], float] = runtime_clock.now,
) -> dict[str, Any]:
    """Poll until the deployment succeeds; return its deploymentInfo.

    Raises DeploymentFailedError on Failed/Stopped, DeploymentTimeoutError after
    `timeout_seconds` (the deployment itself keeps going).
    """
    info = wait_until_finished(
        codedeploy, deployment_id, timeout_seconds, poll_seconds, sleep, clock, done=shipped
    )
    if not shipped(info):
        raise DeploymentFailedError(info)
    return info


def in_termination_wait(info: Mapping[str, Any]) -> bool:
    """Traffic has shifted and the original task set waits out `terminationWaitMinutes`
    before CodeDeploy deletes it (`instanceTerminationWaitTimeStarted`); the group stays
    locked until that wait ends."""
    return info.get("status") in IN_PROGRESS_STATUSES and bool(
        info.get("instanceTerminationWaitTimeStarted")
    )


def shipped(info: Mapping[str, Any]) -> bool:
    """Production traffic runs the new revision: Succeeded, or in its termination wait."""
    return info.get("status") == "Succeeded" or in_termination_wait(info)


def only_termination_waits(
    codedeploy: Any,
    deployment_ids: Sequence[str],
    ours: Sequence[str] = (),
    sleep: Callable[[float], Any] = runtime_clock.sleep,
) -> bool:
    """Every deployment of `deployment_ids` has shipped and only waits out its termination
    wait, and none is the caller's own (its description starts with one of `ours`): with
    `deployment.onTerminationWait: end` a deployer may end those waits instead of waiting."""
    for deployment_id in deployment_ids:
        info = call_with_backoff(
            codedeploy.get_deployment, deploymentId=deployment_id, sleep=sleep
        )["deploymentInfo"]
        if not in_termination_wait(info):
            return False
        if any(prefix and str(info.get("description", "")).startswith(prefix) for prefix in ours):
            return False
    return bool(deployment_ids)


def end_termination_wait(
    codedeploy: Any, deployment_id: str, sleep: Callable[[float], Any] = runtime_clock.sleep
) -> bool:
    """End a shipped deployment's termination wait now (ContinueDeployment TERMINATION_WAIT):
    CodeDeploy deletes its original task set, so it can no longer be rolled back by a stop.
    False when it is not in that wait (still shifting, or already ended): CodeDeploy refuses."""
    try:
        call_with_backoff(
            codedeploy.continue_deployment,
            deploymentId=deployment_id,
            deploymentWaitType="TERMINATION_WAIT",
            sleep=sleep,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in NOT_WAITING_CODES:
            return False
        raise
    return True


def stop_deployment(
    codedeploy: Any, deployment_id: str, sleep: Callable[[float], Any] = runtime_clock.sleep
) -> None:
    """Stop a deployment and let CodeDeploy roll it back (before traffic moved, a no-op for
    the service: the replacement task set is removed). One that already ended is left as
    it is: the caller reads how it ended."""
    try:
        call_with_backoff(
            codedeploy.stop_deployment,
            deploymentId=deployment_id,
            autoRollbackEnabled=True,
            sleep=sleep,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "DeploymentAlreadyCompletedException":
            raise


class StopTooLateError(DeploymentError):
    """A deployment to be stopped had already succeeded: what it deployed runs now.

    The deployment core sets `replaced` (the revision that ran when it decided to stop) and
    `deployed` (what its deployment put in its place), so a caller can undo exactly that."""

    deployment_id: str | None = None
    replaced: str | None = None
    deployed: str | None = None


def stop_and_wait(
    codedeploy: Any,
    deployment_id: str,
    timeout_seconds: float,
    poll_seconds: float = 15,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    clock: Callable[[], float] = runtime_clock.now,
) -> dict[str, Any]:
    """Stop our own deployment (with rollback) and wait until CodeDeploy has ended it.

    Raises StopTooLateError when it succeeded before the stop took effect: the caller
    deployed something it meant to withdraw and must not take it for withdrawn.
    """
    stop_deployment(codedeploy, deployment_id, sleep=sleep)
    info = wait_until_finished(
        codedeploy, deployment_id, timeout_seconds, poll_seconds, sleep, clock
    )
    if info.get("status") == "Succeeded":
        raise StopTooLateError(
            f"CodeDeploy deployment {deployment_id} succeeded before it could be stopped; it "
            "deployed a revision merged before another deployment shipped. Check what the "
            "service runs and deploy again."
        )
    return info


def wait_until_finished(
    codedeploy: Any,
    deployment_id: str,
    timeout_seconds: float,
    poll_seconds: float = 15,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    clock: Callable[[], float] = runtime_clock.now,
    done: Callable[[Mapping[str, Any]], bool] = lambda _info: False,
) -> dict[str, Any]:
    """Poll until the deployment ends, however it ends (or `done` says it is far enough);
    return its last deploymentInfo.

    Raises DeploymentTimeoutError after `timeout_seconds` (the deployment keeps going).
    """
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds: {timeout_seconds} must be positive")
    if poll_seconds <= 0:
        raise ValueError(f"poll_seconds: {poll_seconds} must be positive")
    deadline = clock() + timeout_seconds
    while True:
        info = call_with_backoff(
            codedeploy.get_deployment, deploymentId=deployment_id, sleep=sleep
        )["deploymentInfo"]
        status = info.get("status", "?")
        if status not in IN_PROGRESS_STATUSES or done(info):
            return info
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeploymentTimeoutError(deployment_id, timeout_seconds, status)
        sleep(min(poll_seconds, remaining))

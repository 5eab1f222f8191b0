"""Roll a registered task-definition revision out to an ECS service, unless it already runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from delivery import codedeploy as cd
from delivery.aws import call_with_backoff
from delivery.live import running_task_definition
from delivery.taskdef import describe, same_content

RolloutAction = Literal["none-service-new", "none-same-content", "deployed", "started"]


class ServiceStateError(cd.DeploymentError):
    """The ECS service cannot take a CodeDeploy rollout (missing, inactive, wrong controller)."""


@dataclass(frozen=True, kw_only=True)
class RolloutRequest:
    """Which revision to roll out to which service, through which deployment group."""

    cluster: str
    service: str
    task_definition_arn: str
    application: str
    deployment_group: str
    container_name: str
    container_port: int
    wait: bool = True
    timeout_seconds: float = 3600
    poll_seconds: float = 15

    def __post_init__(self) -> None:
        for name in ("cluster", "service", "application", "deployment_group", "container_name"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name}: must be a non-empty string")
        # appspec() holds the ARN and port rules; building one here reports them early.
        cd.appspec(self.task_definition_arn, self.container_name, self.container_port)
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds: {self.timeout_seconds} must be positive")
        if self.poll_seconds <= 0:
            raise ValueError(f"poll_seconds: {self.poll_seconds} must be positive")


@dataclass(frozen=True)
class RolloutResult:
    """What rollout() did.

    action: "none-service-new" (the service already runs the requested revision, e.g. it was
    just created with it), "none-same-content" (it runs a revision with equal content, e.g.
    the one the pipeline shipped), "deployed" (a deployment ran and succeeded) or "started"
    (a deployment was started and not waited for). running_task_definition_arn is the
    revision serving traffic when rollout() returned.
    """

    action: RolloutAction
    running_task_definition_arn: str
    deployment_id: str | None


def describe_service(ecs: Any, cluster: str, service: str) -> dict[str, Any]:
    """DescribeServices for one ACTIVE CODE_DEPLOY service, or a ServiceStateError saying why not."""
    try:
        response = call_with_backoff(ecs.describe_services, cluster=cluster, services=[service])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
            raise ServiceStateError(
                f"ECS cluster {cluster!r} not found; check cluster_name and the AWS region/account"
            ) from error
        raise
    services = response.get("services", [])
    if not services:
        reason = next((f.get("reason") for f in response.get("failures", [])), "MISSING")
        raise ServiceStateError(
            f"ECS service {service!r} not found in cluster {cluster!r} ({reason}); the rollout "
            "runs after the service exists: check service_name, cluster_name and the region"
        )
    found = services[0]
    if found.get("status") != "ACTIVE":
        raise ServiceStateError(
            f"ECS service {service!r} in cluster {cluster!r} is {found.get('status')}, not "
            "ACTIVE; it cannot take a deployment (recreate it, then run `pulumi up` again)"
        )
    controller = (found.get("deploymentController") or {}).get("type", "ECS")
    if controller != "CODE_DEPLOY":
        raise ServiceStateError(
            f"ECS service {service!r} uses the {controller} deployment controller; blue/green "
            "rollouts through CodeDeploy need deploymentController CODE_DEPLOY"
        )
    return found


def _check_target(task_definition: Mapping[str, Any], name: str, port: int) -> None:
    """Fail before CodeDeploy does when the AppSpec's container or port is not in the revision."""
    containers = {c["name"]: c for c in task_definition.get("containerDefinitions", [])}
    if name not in containers:
        raise ValueError(
            f"container_name: {name!r} is not in {task_definition.get('taskDefinitionArn')}; "
            f"known containers: {', '.join(sorted(containers)) or '(none)'}"
        )
    ports = [m.get("containerPort") for m in containers[name].get("portMappings", [])]
    if port not in ports:
        raise ValueError(
            f"container_port: {port} is not a port mapping of container {name!r}; "
            f"its ports: {', '.join(str(p) for p in ports) or '(none)'}"
        )


def rollout(
    ecs: Any,
    codedeploy: Any,
    request: RolloutRequest,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RolloutResult:
    """Deploy `request.task_definition_arn` blue/green unless the service already runs it.

    "Runs it" means the same revision, or a revision with equal effective content (the
    pipeline shipped image Y, Pulumi re-registered the same content with Y): then no
    deployment starts, so `pulumi up` never causes an empty blue/green cycle.
    """
    service = describe_service(ecs, request.cluster, request.service)
    running = running_task_definition(service)
    if running == request.task_definition_arn:
        return RolloutResult("none-service-new", running, None)

    wanted = describe(ecs, request.task_definition_arn)["taskDefinition"]
    live = describe(ecs, running)["taskDefinition"]
    if same_content(live, wanted):
        return RolloutResult("none-same-content", running, None)

    _check_target(wanted, request.container_name, request.container_port)
    spec = cd.appspec(request.task_definition_arn, request.container_name, request.container_port)
    deployment_id = cd.start_deployment(
        codedeploy,
        request.application,
        request.deployment_group,
        spec,
        description=(
            f"ecs-delivery: Pulumi-owned change to {request.cluster}/{request.service}: "
            f"{running} -> {request.task_definition_arn}"
        ),
    )
    if not request.wait:
        return RolloutResult("started", running, deployment_id)
    cd.wait_for_deployment(
        codedeploy,
        deployment_id,
        timeout_seconds=request.timeout_seconds,
        poll_seconds=request.poll_seconds,
        sleep=sleep,
        clock=clock,
    )
    return RolloutResult("deployed", request.task_definition_arn, deployment_id)

"""ServiceRollout: rolls a Pulumi-registered task-definition revision out through CodeDeploy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from delivery.aws import client, session
from delivery.rollout import RolloutRequest, RolloutResult, rollout

# Inputs whose change means "roll out again": a new revision, or a new traffic target.
ROLLOUT_INPUTS = (
    "task_definition_arn",
    "container_name",
    "container_port",
    "application_name",
    "deployment_group_name",
)
# A different service is a different rollout record (create: verify, no deployment).
REPLACE_INPUTS = ("cluster_name", "service_name")
# How to act, not what to deploy: region/profile/role/wait/timeout never start a deployment.
SETTING_INPUTS = ("region", "profile", "role_arn", "wait", "timeout_minutes")
OUTPUTS = ("running_task_definition_arn", "last_deployment_id", "action")
_PROVIDER_KEY = "__provider"


@dataclass(frozen=True, kw_only=True)
class ServiceRolloutArgs:
    """What to roll out where, and the AWS settings of the stack to do it with.

    region/profile/role_arn come from the stack's `aws:region`, `aws:profile` and
    `aws:assumeRole` so the rollout acts on the account the stack manages, whatever the
    shell holds. wait=False starts the deployment and lets `pulumi up` finish at once.
    """

    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    task_definition_arn: pulumi.Input[str]
    application_name: pulumi.Input[str]
    deployment_group_name: pulumi.Input[str]
    container_name: str
    container_port: int
    region: pulumi.Input[str]
    wait: bool = True
    timeout_minutes: int = 60
    profile: str | None = None
    role_arn: str | None = None

    def __post_init__(self) -> None:
        problems = _setting_problems(
            self.container_name, self.container_port, self.wait, self.timeout_minutes
        )
        if problems:
            raise ValueError("; ".join(f"{key}: {reason}" for key, reason in problems))


def _setting_problems(
    container_name: Any, container_port: Any, wait: Any, timeout_minutes: Any
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not isinstance(container_name, str) or not container_name:
        problems.append(("container_name", "must name the container that receives traffic"))
    port = _number(container_port)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(("container_port", f"{container_port!r} must be an integer 1-65535"))
    if not isinstance(wait, bool):
        problems.append(("wait", f"{wait!r} must be true or false"))
    minutes = _number(timeout_minutes)
    if not isinstance(minutes, int) or minutes < 1:
        problems.append(("timeout_minutes", f"{timeout_minutes!r} must be a whole number >= 1"))
    return problems


def _number(value: Any) -> Any:
    """Pulumi's wire format turns ints into floats; turn whole floats back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ServiceRolloutProvider(pulumi.dynamic.ResourceProvider):
    """Dynamic provider; pickled into the state, so it holds no clients (made per call)."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        problems = _setting_problems(
            news.get("container_name"),
            news.get("container_port"),
            news.get("wait", True),
            news.get("timeout_minutes", 60),
        )
        failures = [pulumi.dynamic.CheckFailure(key, reason) for key, reason in problems]
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        changed = [
            key
            for key in (*ROLLOUT_INPUTS, *REPLACE_INPUTS)
            if _number(_olds.get(key)) != _number(_news.get(key))
        ]
        replaces = [key for key in changed if key in REPLACE_INPUTS]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed),
            replaces=replaces,
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        # A new service was created with this very revision: rollout() sees it running and
        # starts nothing. An existing service adopted by a new record is rolled out if needed.
        result = _run(props)
        outs = _outputs(props, result, previous_deployment_id=None)
        return pulumi.dynamic.CreateResult(f"{props['cluster_name']}/{props['service_name']}", outs)

    def update(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        result = _run(_news)
        outs = _outputs(_news, result, previous_deployment_id=_olds.get("last_deployment_id"))
        return pulumi.dynamic.UpdateResult(outs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the record only: removing a rollout must never touch the service."""


def rollout_request(props: dict[str, Any]) -> RolloutRequest:
    """The RolloutRequest for the provider's (resolved) properties."""
    return RolloutRequest(
        cluster=props["cluster_name"],
        service=props["service_name"],
        task_definition_arn=props["task_definition_arn"],
        application=props["application_name"],
        deployment_group=props["deployment_group_name"],
        container_name=props["container_name"],
        container_port=int(props["container_port"]),
        wait=bool(props.get("wait", True)),
        timeout_seconds=float(props.get("timeout_minutes", 60)) * 60,
    )


def _run(props: dict[str, Any]) -> RolloutResult:
    request = rollout_request(props)
    aws = session(
        region=props.get("region") or None,
        profile=props.get("profile") or None,
        role_arn=props.get("role_arn") or None,
    )
    return rollout(client("ecs", aws), client("codedeploy", aws), request)


def _outputs(
    props: dict[str, Any], result: RolloutResult, previous_deployment_id: str | None
) -> dict[str, Any]:
    outs = {key: value for key, value in props.items() if key != _PROVIDER_KEY}
    outs["running_task_definition_arn"] = result.running_task_definition_arn
    outs["last_deployment_id"] = result.deployment_id or previous_deployment_id
    outs["action"] = result.action
    return outs


class ServiceRollout(pulumi.dynamic.Resource, module="rollout", name="ServiceRollout"):
    """Rolls `task_definition_arn` out blue/green when its content differs from what runs.

    Outputs: running_task_definition_arn (serving traffic after this step),
    last_deployment_id (the latest deployment this resource started, if any),
    action (what the last create/update did; see delivery.rollout.RolloutResult).
    """

    running_task_definition_arn: pulumi.Output[str]
    last_deployment_id: pulumi.Output[str | None]
    action: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ServiceRolloutArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "cluster_name": args.cluster_name,
            "service_name": args.service_name,
            "task_definition_arn": args.task_definition_arn,
            "application_name": args.application_name,
            "deployment_group_name": args.deployment_group_name,
            "container_name": args.container_name,
            "container_port": args.container_port,
            "region": args.region,
            "profile": args.profile,
            "role_arn": args.role_arn,
            "wait": args.wait,
            "timeout_minutes": args.timeout_minutes,
            **dict.fromkeys(OUTPUTS),
        }
        super().__init__(ServiceRolloutProvider(), name, props, opts)

"""ServiceRollout: applies the Pulumi-owned template to a running service, at deploy time."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from typing import Any

import dill
import pulumi
import pulumi.dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY

from ecs_delivery.components.args import from_config
from ecs_delivery.components.config import DeploymentConfig
from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime import ecs_engine, task_rollout
from ecs_delivery.runtime.aws import client, session
from ecs_delivery.runtime.live import strategy
from ecs_delivery.runtime.rollout import RolloutRequest, RolloutResult, rollout, what_runs
from ecs_delivery.runtime.taskdef import describe, images_of

# Inputs whose change means "roll out again": new Pulumi-owned content, a new pinned image,
# a new promotion, a new network, a new traffic target.
ROLLOUT_INPUTS = (
    "template_arn",
    "family",
    "container_name",
    "container_port",
    "application_name",
    "deployment_group_name",
    "subnets",
    "security_groups",
    "assign_public_ip",
    "platform_version",
    "capacity_providers",
    "pinned_images",
    "promotion",
    "validation_hook",
    "engine",
)
# A different service is a different rollout record (create: verify, no deployment).
REPLACE_INPUTS = ("cluster_name", "service_name")
# How to act, not what to deploy: region/profile/role/wait/timeout never start a deployment.
SETTING_INPUTS = (
    "region",
    "profile",
    "role_arn",
    "wait",
    "timeout_minutes",
    "end_termination_wait",
)
# Inputs added later, as a record written before them reads (no rollout only for their arrival).
ADDED_INPUTS = {"engine": "codedeploy"}
OUTPUTS = ("running_task_definition_arn", "running_images", "last_deployment_id", "action")
# A rollout that started a deployment and did not see it finish: the next `up` checks it.
UNCONFIRMED = ("started", "failed")
_PROVIDER_KEY = "__provider"


@dataclass(frozen=True, kw_only=True)
class ServiceRolloutArgs:
    """What to roll out where, and the AWS settings of the stack to do it with.

    `template_arn` is the Pulumi-registered template; `family` the service's own family, where
    merged revisions are registered. `pinned_images` (container -> image) are deployed on every
    rollout; `promotion` ({"release": id, "images": {container: image}}) only when its release
    changes, so leaving a promotion committed is harmless. region/profile/role_arn come from the
    stack's `aws:` config so the rollout acts on the account the stack manages. wait=False
    starts the deployment and lets `pulumi up` finish at once; the next `up` checks it.
    """

    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    template_arn: pulumi.Input[str]
    family: str
    application_name: pulumi.Input[str]
    deployment_group_name: pulumi.Input[str]
    container_name: str
    container_port: int | None  # None: a worker, no load balancer (engine ecs)
    region: pulumi.Input[str]
    subnets: pulumi.Input[list[str]] | None = None
    security_groups: pulumi.Input[list[str]] | None = None
    assign_public_ip: bool = False
    platform_version: str | None = None
    # The service's capacity provider strategy ({provider, weight, base}); None: keep what runs.
    capacity_providers: list[dict[str, Any]] | None = None
    pinned_images: dict[str, str] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None
    # Lambda run after test traffic is allowed (AfterAllowTestTraffic), as in the pipeline's.
    validation_hook: str | None = None
    # Who deploys: CodeDeploy (application/group) or ECS's own blue/green (the service itself).
    engine: str = from_config(DeploymentConfig, "engine")
    wait: bool = from_config(DeploymentConfig, "wait")
    timeout_minutes: int = from_config(DeploymentConfig, "timeout_minutes")
    # End a deployment of the group still in its termination wait instead of waiting for it.
    end_termination_wait: bool = False
    profile: str | None = None
    role_arn: str | None = None

    @classmethod
    def of(cls, service: Any, **settings: Any) -> ServiceRolloutArgs:
        """The rollout of FargateService `service`: its cluster, ECS service, template, family,
        container, network and platform version from the component; `settings` sets the rest
        (application_name, deployment_group_name, region, ...)."""
        from ecs_delivery.components.fargate_service import PLATFORM_VERSION

        args = service.args
        derived: dict[str, Any] = {
            "cluster_name": args.cluster_name,
            "service_name": service.service.name,
            "template_arn": service.task_definition.arn,
            "family": args.family,
            "container_name": args.container.name,
            "container_port": args.container.port or None,  # 0: a worker's, none
            "subnets": args.subnet_ids,
            "security_groups": service.security_group_ids,
            "platform_version": PLATFORM_VERSION,
        }
        return cls(**{**derived, **settings})

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
    if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
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


def _stale_provider(serialized: Any) -> bool:
    """True when a stored provider no longer loads here (its module moved or was removed)."""
    return isinstance(serialized, str) and _fails_to_load(serialized)


# Every rollout of a stack stores the same provider: unpickle it once per engine process.
@functools.lru_cache(maxsize=8)
def _fails_to_load(serialized: str) -> bool:
    try:
        data = base64.b64decode(serialized, validate=True)
    except ValueError:  # not a serialized provider at all: nothing this check can repair
        return False
    try:
        dill.loads(data)
    except (ImportError, AttributeError):
        return True
    except Exception:  # noqa: BLE001 - any other unpickling failure is not a moved module
        return False
    return False


def _release(promotion: Any) -> Any:
    return promotion.get("release") if isinstance(promotion, dict) else None


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
            if _number(_olds.get(key, ADDED_INPUTS.get(key)))
            != _number(_news.get(key, ADDED_INPUTS.get(key)))
        ]
        replaces = [key for key in changed if key in REPLACE_INPUTS]
        # The state keeps the provider it last ran; `pulumi destroy` unpickles that one. When
        # its module is gone (e.g. stacks from before the ecs_delivery package), update it now.
        if _stale_provider(_olds.get(PROVIDER_KEY)):
            changed.append(PROVIDER_KEY)
        # A deployment started without waiting is not known to have landed: check it again.
        unconfirmed = _olds.get("action") in UNCONFIRMED
        return pulumi.dynamic.DiffResult(
            changes=bool(changed) or unconfirmed,
            replaces=replaces,
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        # A new service was created from this very template: rollout() sees it running and
        # starts nothing. An existing service adopted by a new record is rolled out if needed,
        # but a committed promotion counts as applied: the record cannot tell whether it
        # ran, and a newer ship must not be undone (a new service's template carries the
        # promoted image already). Promote onto an adopted service by changing promoteRelease.
        result = _run(props, olds={"promotion": props.get("promotion")})
        outs = _outputs(props, result, previous_deployment_id=None)
        return pulumi.dynamic.CreateResult(f"{props['cluster_name']}/{props['service_name']}", outs)

    def update(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        result = _run(_news, olds=_olds)
        outs = _outputs(_news, result, previous_deployment_id=_olds.get("last_deployment_id"))
        return pulumi.dynamic.UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        """`pulumi refresh`: what runs now, and how the last started deployment ended."""
        aws = _session(props)
        ecs = client("ecs", aws)
        on_ecs = _engine(props) == "ecs"
        controller = ecs_engine.EcsEngine.controller if on_ecs else "CODE_DEPLOY"
        live = what_runs(ecs, props["cluster_name"], props["service_name"], controller=controller)
        outs = dict(props)
        outs["running_task_definition_arn"] = live.task_definition_arn
        outs["running_images"] = images_of(
            describe(ecs, live.task_definition_arn)["taskDefinition"]
        )
        deployment_id = props.get("last_deployment_id")
        if props.get("action") in UNCONFIRMED and deployment_id:
            outs["action"] = (
                ecs_engine.outcome(ecs, deployment_id)
                if on_ecs
                else _codedeploy_outcome(client("codedeploy", aws), deployment_id)
            )
        return pulumi.dynamic.ReadResult(id_, outs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the record only: removing a rollout must never touch the service."""


def _engine(props: dict[str, Any]) -> str:
    return str(props.get("engine") or ADDED_INPUTS["engine"])


def _codedeploy_outcome(codedeploy: Any, deployment_id: str) -> str:
    status = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]
    if status == "Succeeded":
        return "deployed"
    return "failed" if status in cd.FAILED_STATUSES else "started"


def rollout_request(props: dict[str, Any], olds: dict[str, Any] | None = None) -> RolloutRequest:
    """The RolloutRequest for the provider's (resolved) properties.

    Pinned images go out on every rollout; a promotion's images only when its release is not
    the one the last rollout applied (`olds`), so a committed promotion never undoes a newer
    ship.
    """
    images = _deploy_images(props, olds)
    subnets, groups = props.get("subnets"), props.get("security_groups")
    network = (
        cd.Network(tuple(subnets), tuple(groups), bool(props.get("assign_public_ip")))
        if subnets and groups
        else None
    )
    own = (
        (olds or {}).get("last_deployment_id")
        if (olds or {}).get("action") in UNCONFIRMED
        else None
    )
    return RolloutRequest(
        cluster=props["cluster_name"],
        service=props["service_name"],
        template_arn=props["template_arn"],
        family=props["family"],
        application=props["application_name"],
        deployment_group=props["deployment_group_name"],
        container_name=props["container_name"],
        container_port=None
        if props.get("container_port") is None
        else int(props["container_port"]),
        network=network,
        platform_version=props.get("platform_version") or None,
        capacity_providers=_strategy(props.get("capacity_providers")),
        images=images,
        hooks=cd.validation_hooks(props.get("validation_hook")),
        own_deployment=own,
        wait=bool(props.get("wait", True)),
        timeout_seconds=float(props.get("timeout_minutes", 60)) * 60,
        end_termination_wait=bool(props.get("end_termination_wait", False)),
        engine=_engine(props),  # type: ignore[arg-type]
    )


def _deploy_images(props: dict[str, Any], olds: dict[str, Any] | None) -> dict[str, str]:
    """Pinned images always; a promotion's only when its release is new to this record."""
    images = dict(props.get("pinned_images") or {})
    promotion = props.get("promotion")
    if _release(promotion) and _release(promotion) != _release((olds or {}).get("promotion")):
        images = {**dict(promotion.get("images") or {}), **images}
    return images


def _strategy(entries: Any) -> tuple[tuple[str, int, int], ...] | None:
    # A record written before strategies were rolled out has none: keep what runs.
    if not entries:
        return None
    return strategy((e["provider"], _number(e["weight"]), _number(e["base"])) for e in entries)


def _session(props: dict[str, Any]) -> Any:
    return session(
        region=props.get("region") or None,
        profile=props.get("profile") or None,
        role_arn=props.get("role_arn") or None,
    )


def _run(props: dict[str, Any], olds: dict[str, Any] | None) -> RolloutResult:
    request = rollout_request(props, olds)
    aws = _session(props)
    return rollout(client("ecs", aws), client("codedeploy", aws), request)


def _outputs(
    props: dict[str, Any], result: RolloutResult, previous_deployment_id: str | None
) -> dict[str, Any]:
    outs = {key: value for key, value in props.items() if key != _PROVIDER_KEY}
    outs["running_task_definition_arn"] = result.running_task_definition_arn
    outs["running_images"] = result.images
    outs["last_deployment_id"] = result.deployment_id or previous_deployment_id
    outs["action"] = result.action
    return outs


class ServiceRollout(pulumi.dynamic.Resource, module="rollout", name="ServiceRollout"):
    """Rolls the Pulumi-owned template out blue/green when it differs from what runs.

    Outputs: running_task_definition_arn (serving traffic after this step), running_images,
    last_deployment_id (the latest deployment this resource started, if any), action (what
    the last create/update/refresh found; see runtime.rollout.RolloutResult, plus "failed"
    after a refresh saw a started deployment fail).
    """

    running_task_definition_arn: pulumi.Output[str]
    running_images: pulumi.Output[dict[str, str]]
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
            "template_arn": args.template_arn,
            "family": args.family,
            "application_name": args.application_name,
            "deployment_group_name": args.deployment_group_name,
            "container_name": args.container_name,
            "container_port": args.container_port,
            "subnets": args.subnets,
            "security_groups": args.security_groups,
            "assign_public_ip": args.assign_public_ip,
            "platform_version": args.platform_version,
            "capacity_providers": args.capacity_providers,
            "pinned_images": dict(sorted(args.pinned_images.items())),
            "promotion": args.promotion,
            "validation_hook": args.validation_hook,
            "engine": args.engine,
            "region": args.region,
            "profile": args.profile,
            "role_arn": args.role_arn,
            "wait": args.wait,
            "timeout_minutes": args.timeout_minutes,
            "end_termination_wait": args.end_termination_wait,
            **dict.fromkeys(OUTPUTS),
        }
        super().__init__(ServiceRolloutProvider(), name, props, opts)


# --- scheduled tasks ---------------------------------------------------------------------

# A new template, pin or promotion registers onto the newest revision; a new family is
# another task. The initial images matter only while the family has no revision.
TASK_ROLLOUT_INPUTS = ("template_arn", "pinned_images", "promotion")
TASK_REPLACE_INPUTS = ("family",)
TASK_OUTPUTS = ("running_task_definition_arn", "running_images", "action")


@dataclass(frozen=True, kw_only=True)
class TaskRolloutArgs:
    """What to register for a scheduled task, and the stack's AWS settings to do it with.

    `template_arn` is the Pulumi-registered template (outside `family`); `pinned_images` and
    `promotion` as for ServiceRolloutArgs. `initial_images` (container -> image) go into the
    first revision of a family that has none (a new task following a running service takes
    its image). `schedule` ("group/name") is read for a revision it still names.
    """

    family: str
    template_arn: pulumi.Input[str]
    region: pulumi.Input[str]
    schedule: str | None = None
    pinned_images: dict[str, str] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None
    initial_images: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    role_arn: str | None = None


class TaskRolloutProvider(pulumi.dynamic.ResourceProvider):
    """Dynamic provider of TaskRollout; holds no clients (pickled into the state)."""

    def diff(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        changed = [
            key
            for key in (*TASK_ROLLOUT_INPUTS, *TASK_REPLACE_INPUTS)
            if _olds.get(key) != _news.get(key)
        ]
        if _stale_provider(_olds.get(PROVIDER_KEY)):
            changed.append(PROVIDER_KEY)
        return pulumi.dynamic.DiffResult(
            changes=bool(changed),
            replaces=[key for key in changed if key in TASK_REPLACE_INPUTS],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        # As for services: a committed promotion counts as applied by a new record, so a
        # newer ship is never undone (a new task's template carries the promoted image).
        outs = _task_outputs(props, _run_task(props, olds={"promotion": props.get("promotion")}))
        return pulumi.dynamic.CreateResult(props["family"], outs)

    def update(
        self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(_task_outputs(_news, _run_task(_news, olds=_olds)))

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        """`pulumi refresh`: the newest revision, which the schedule runs."""
        described = task_rollout.newest(client("ecs", _session(props)), props["family"])
        outs = dict(props)
        if described is not None:
            outs["running_task_definition_arn"] = described["taskDefinition"]["taskDefinitionArn"]
            outs["running_images"] = images_of(described["taskDefinition"])
        return pulumi.dynamic.ReadResult(id_, outs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the record only: removing a rollout must never touch the task."""


def _run_task(props: dict[str, Any], olds: dict[str, Any]) -> task_rollout.TaskResult:
    aws = _session(props)
    ecs = client("ecs", aws)
    family = props["family"]
    start = _named_revision(client("scheduler", aws), props.get("schedule"), family)
    return task_rollout.deploy_task(
        ecs,
        task_rollout.TaskChange(
            family=family,
            template=describe(ecs, props["template_arn"], include_tags=True),
            images=_deploy_images(props, olds),
            initial_images=dict(props.get("initial_images") or {}),
        ),
        start=start,
    )


def _named_revision(scheduler: Any, schedule: str | None, family: str) -> str | None:
    """The revision a schedule still names (one written before schedules named the family)."""
    if not schedule:
        return None
    group, name = schedule.split("/", 1)
    try:
        found = scheduler.get_schedule(GroupName=group, Name=name)
    except scheduler.exceptions.ResourceNotFoundException:
        return None  # a new task: its schedule is created after this registration
    target = found["Target"].get("EcsParameters", {}).get("TaskDefinitionArn", "")
    named = target.rsplit("/", 1)[-1]
    return target if named.startswith(f"{family}:") else None


def _task_outputs(props: dict[str, Any], result: task_rollout.TaskResult) -> dict[str, Any]:
    outs = {key: value for key, value in props.items() if key != _PROVIDER_KEY}
    outs["running_task_definition_arn"] = result.task_definition_arn
    outs["running_images"] = result.images
    outs["action"] = result.action
    return outs


class TaskRollout(pulumi.dynamic.Resource, module="rollout", name="TaskRollout"):
    """Registers Pulumi's fields for a scheduled task onto the newest revision of its family
    (the one its schedule runs), keeping the images deployers put there.

    Outputs: running_task_definition_arn (the newest revision after this step),
    running_images, action (see runtime.task_rollout.TaskResult).
    """

    running_task_definition_arn: pulumi.Output[str]
    running_images: pulumi.Output[dict[str, str]]
    action: pulumi.Output[str]

    def __init__(
        self, name: str, args: TaskRolloutArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "family": args.family,
            "template_arn": args.template_arn,
            "pinned_images": dict(sorted(args.pinned_images.items())),
            "promotion": args.promotion,
            "initial_images": dict(sorted(args.initial_images.items())),
            "schedule": args.schedule,
            "region": args.region,
            "profile": args.profile,
            "role_arn": args.role_arn,
            **dict.fromkeys(TASK_OUTPUTS),
        }
        super().__init__(TaskRolloutProvider(), name, props, opts)

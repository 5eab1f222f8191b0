"""What runs now, read from AWS, and how scheduled-task triggers are rewritten.

Shared by the plan (read) and the engine (write, restore). Every call backs off on
throttling through the Aws helper.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ecs_delivery.runtime.aws import call_with_backoff, chunks
from ecs_delivery.runtime.aws import client as aws_client
from ecs_delivery.runtime.live import running_task_definition
from ecs_delivery.runtime.release.inventory import ServiceTarget, TaskTarget
from ecs_delivery.runtime.release.pacing import Clock, SystemClock

T = TypeVar("T")
DESCRIBE_SERVICES_BATCH = 10  # ECS DescribeServices takes at most 10 services per call


class LiveStateError(RuntimeError):
    """AWS does not hold what the inventory says (e.g. a service or rule is missing)."""


@dataclass(frozen=True)
class Clients:
    """The boto3 clients (or look-alikes) the engine uses."""

    ecs: Any
    codedeploy: Any
    s3: Any
    events: Any = None
    scheduler: Any = None

    @classmethod
    def from_session(cls, session: Any, region: str | None = None) -> Clients:
        """Clients with adaptive retries from a boto3 session."""
        return cls(
            ecs=aws_client("ecs", session, region),
            codedeploy=aws_client("codedeploy", session, region),
            s3=aws_client("s3", session, region),
            events=aws_client("events", session, region),
            scheduler=aws_client("scheduler", session, region),
        )


@dataclass(frozen=True)
class Aws:
    """Clients plus the clock; `call` retries throttling with backoff on that clock."""

    clients: Clients
    clock: Clock = SystemClock()
    max_attempts: int = 10

    def call(self, fn: Callable[..., T], **kwargs: Any) -> T:
        return call_with_backoff(
            fn, sleep=self.clock.sleep, max_attempts=self.max_attempts, **kwargs
        )


# --------------------------------------------------------------------------- services


def running_task_definitions(aws: Aws, targets: dict[str, ServiceTarget]) -> dict[str, str]:
    """Service name -> the task definition ARN it runs, with one call per 10 services."""
    by_cluster: dict[str, list[str]] = {}
    for name, target in targets.items():
        by_cluster.setdefault(target.cluster, []).append(name)
    running: dict[str, str] = {}
    # DRAINING (being deleted) and INACTIVE (deleted) services take no deployment.
    not_active: dict[str, str] = {}
    for cluster, names in by_cluster.items():
        ecs_names = {targets[name].service: name for name in names}
        for chunk in chunks(sorted(ecs_names), DESCRIBE_SERVICES_BATCH):
            response = aws.call(aws.clients.ecs.describe_services, cluster=cluster, services=chunk)
            for service in response.get("services", []):
                name = ecs_names.get(service["serviceName"])
                if name is None:
                    continue
                if service.get("status") == "ACTIVE":
                    running[name] = running_task_definition(service)
                else:
                    not_active[name] = str(service.get("status"))
    if not_active:
        name = sorted(not_active)[0]
        raise LiveStateError(
            f"ECS service {name} ({targets[name].cluster}/{targets[name].service}) is "
            f"{not_active[name]}, not ACTIVE; it cannot take a deployment: recreate it with "
            "`pulumi up`, or leave it out of the manifest"
        )
    missing = sorted(set(targets) - set(running))
    if missing:
        where = ", ".join(f"{n} ({targets[n].cluster}/{targets[n].service})" for n in missing)
        raise LiveStateError(
            f"ECS services not found: {where}; the inventory is out of date, "
            "export it again from the stack (releaseInventory output)"
        )
    return running


class TaskDefinitions:
    """Described task definitions, cached by ARN (a revision never changes)."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self._cache: dict[str, dict[str, Any]] = {}

    def describe(self, arn: str) -> dict[str, Any]:
        """The DescribeTaskDefinition response (taskDefinition and tags)."""
        if arn not in self._cache:
            self._cache[arn] = self._aws.call(
                self._aws.clients.ecs.describe_task_definition,
                taskDefinition=arn,
                include=["TAGS"],
            )
        return self._cache[arn]

    def image(self, arn: str, container: str) -> str:
        definition = self.describe(arn)["taskDefinition"]
        for item in definition.get("containerDefinitions", []):
            if item["name"] == container:
                return str(item["image"])
        names = ", ".join(c["name"] for c in definition.get("containerDefinitions", []))
        raise LiveStateError(
            f"task definition {arn} has no container {container!r} (it has: {names}); "
            "the inventory names the wrong container"
        )


# --------------------------------------------------------------------------- triggers


@dataclass(frozen=True)
class Trigger:
    """A scheduled task's live trigger: the revision it runs, its schedule and command."""

    task_definition: str
    schedule: str
    command: list[str] | None
    # The family ARN when the trigger names a family, not a revision: each run starts the
    # family's newest revision, which `task_definition` is then. A deployer registers onto
    # it (runtime/task_rollout.py) and never points the trigger at a revision.
    family: str | None = None

    @property
    def family_name(self) -> str | None:
        return self.family.rsplit("/", 1)[-1] if self.family else None


def _command_of(input_json: str | None, container: str) -> list[str] | None:
    if not input_json:
        return None
    try:
        overrides = json.loads(input_json).get("containerOverrides", [])
    except (ValueError, AttributeError):
        return None
    for item in overrides:
        if item.get("name") == container and "command" in item:
            return list(item["command"])
    return None


def _with_command(input_json: str | None, container: str, command: list[str] | None) -> str | None:
    """Target Input with the container's command override set (or removed when None)."""
    try:
        payload = json.loads(input_json) if input_json else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    overrides = [o for o in payload.get("containerOverrides", []) if isinstance(o, dict)]
    mine = next((o for o in overrides if o.get("name") == container), None)
    if mine is None and command is not None:
        mine = {"name": container}
        overrides.append(mine)
    if mine is not None:
        if command is None:
            mine.pop("command", None)
            if set(mine) == {"name"}:
                overrides.remove(mine)
        else:
            mine["command"] = list(command)
    if overrides:
        payload["containerOverrides"] = overrides
    else:
        payload.pop("containerOverrides", None)
    return json.dumps(payload, separators=(",", ":")) if payload else None


def _set_command(target: dict[str, Any], container: str, command: list[str] | None) -> None:
    """Set the container's command override in a target's Input; an Input whose command
    is already right is left byte for byte as it is."""
    if _command_of(target.get("Input"), container) == command:
        return
    new_input = _with_command(target.get("Input"), container, command)
    if new_input is None:
        target.pop("Input", None)
    else:
        target["Input"] = new_input


def _rule_target(aws: Aws, target: TaskTarget) -> dict[str, Any]:
    assert target.rule is not None
    kwargs = {"Rule": target.rule.name, "EventBusName": target.rule.event_bus}
    while True:
        page = aws.call(aws.clients.events.list_targets_by_rule, **kwargs)
        for item in page.get("Targets", []):
            if item["Id"] == target.rule.target_id:
                return dict(item)
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    raise LiveStateError(
        f"EventBridge rule {target.rule.name} has no target {target.rule.target_id!r}; "
        "the inventory is out of date"
    )


_SCHEDULE_FIELDS = (
    "Name",
    "GroupName",
    "Description",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "State",
    "StartDate",
    "EndDate",
    "KmsKeyArn",
    "ActionAfterCompletion",
)


def _schedule(aws: Aws, target: TaskTarget) -> dict[str, Any]:
    assert target.schedule is not None
    response = aws.call(
        aws.clients.scheduler.get_schedule,
        Name=target.schedule.name,
        GroupName=target.schedule.group,
    )
    return {key: response[key] for key in _SCHEDULE_FIELDS if response.get(key) is not None}


def _runs(aws: Aws, target_arn: str) -> tuple[str, str | None]:
    """(the revision a trigger's TaskDefinitionArn runs, the family ARN if it names one)."""
    if ":" in target_arn.rsplit("/", 1)[-1]:
        return target_arn, None
    newest = aws.call(
        aws.clients.ecs.describe_task_definition, taskDefinition=target_arn.rsplit("/", 1)[-1]
    )
    return str(newest["taskDefinition"]["taskDefinitionArn"]), target_arn


def read_trigger(aws: Aws, target: TaskTarget) -> Trigger:
    """The live trigger of a scheduled task (rule target or Scheduler schedule)."""
    if target.rule is not None:
        item = _rule_target(aws, target)
        rule = aws.call(
            aws.clients.events.describe_rule,
            Name=target.rule.name,
            EventBusName=target.rule.event_bus,
        )
        revision, family = _runs(aws, item["EcsParameters"]["TaskDefinitionArn"])
        return Trigger(
            task_definition=revision,
            schedule=rule.get("ScheduleExpression", ""),
            command=_command_of(item.get("Input"), target.container),
            family=family,
        )
    schedule = _schedule(aws, target)
    revision, family = _runs(aws, schedule["Target"]["EcsParameters"]["TaskDefinitionArn"])
    return Trigger(
        task_definition=revision,
        schedule=schedule["ScheduleExpression"],
        command=_command_of(schedule["Target"].get("Input"), target.container),
        family=family,
    )


def write_trigger(aws: Aws, target: TaskTarget, wanted: Trigger) -> None:
    """Point the trigger at `wanted` (revision, schedule, command); keep everything else.

    A trigger that names its family keeps naming it (`wanted.family`)."""
    target_arn = wanted.family or wanted.task_definition
    if target.rule is not None:
        item = copy.deepcopy(_rule_target(aws, target))
        item["EcsParameters"]["TaskDefinitionArn"] = target_arn
        _set_command(item, target.container, wanted.command)
        response = aws.call(
            aws.clients.events.put_targets,
            Rule=target.rule.name,
            EventBusName=target.rule.event_bus,
            Targets=[item],
        )
        if response.get("FailedEntryCount"):
            raise LiveStateError(
                f"EventBridge refused the target of rule {target.rule.name}: "
                f"{response.get('FailedEntries')}"
            )
        rule = aws.call(
            aws.clients.events.describe_rule,
            Name=target.rule.name,
            EventBusName=target.rule.event_bus,
        )
        if rule.get("ScheduleExpression") != wanted.schedule:
            # PutRule replaces the rule's settings: pass every one we read back.
            kwargs = {
                key: rule[key]
                for key in ("Name", "EventBusName", "State", "Description", "RoleArn")
                if rule.get(key) is not None
            }
            aws.call(aws.clients.events.put_rule, ScheduleExpression=wanted.schedule, **kwargs)
        return
    schedule = copy.deepcopy(_schedule(aws, target))
    schedule["Target"]["EcsParameters"]["TaskDefinitionArn"] = target_arn
    _set_command(schedule["Target"], target.container, wanted.command)
    schedule["ScheduleExpression"] = wanted.schedule
    # UpdateSchedule replaces the whole schedule, so every field read is sent back.
    aws.call(aws.clients.scheduler.update_schedule, **schedule)

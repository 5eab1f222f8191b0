"""The environment's release inventory: what the engine may deploy and where it lives.

The stack exports it as the `releaseInventory` output; the CLI reads it from a JSON file
(`--inventory path`: that output, all stack outputs, or a plan JSON; see `inventory_of`),
the Lambda steps from an S3 object. JSON shape (camelCase keys)::

    {
      "environment": "prod",
      "production": true,
      "services": {
        "web": {
          "cluster": "prod-cluster",              # ECS cluster name or ARN
          "service": "prod-web",                   # ECS service name
          "engine": "codedeploy",                  # optional: codedeploy (default) or ecs
          "codedeployApplication": "prod-web",     # engine codedeploy only
          "codedeployGroup": "prod-web",           # engine codedeploy only
          "container": "web",                      # container that takes traffic and the image
          "sidecars": ["log-router"],              # optional: built sidecars a release may set
          "containerPort": 8080,
          "taskFamily": "ecs-delivery-prod-web",   # optional: where released revisions register
          "validationHook": "prod-validation-hook" # optional: the AfterAllowTestTraffic Lambda
        }
      },
      "scheduledTasks": {
        "nightly-report": {
          "cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod-cluster",
          "taskFamily": "prod-nightly-report",
          "container": "report",
          "schedule": {"name": "prod-nightly-report", "group": "default"}
        },
        "cleanup": {
          "cluster": "...", "taskFamily": "prod-cleanup", "container": "cleanup",
          "rule": {"name": "prod-cleanup", "eventBus": "default", "targetId": "cleanup"}
        }
      }
    }

A scheduled task names exactly one of `schedule` (EventBridge Scheduler) or `rule`
(EventBridge rule with an ECS target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, ValidationError, model_validator

from ecs_delivery import inputs

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class ServiceTarget(inputs.Model):
    """Where one ECS service runs and which engine deploys it (deployment.engine)."""

    cluster: str = Field(min_length=1, description="ECS cluster name or ARN")
    service: str = Field(min_length=1, description="ECS service name")
    engine: Literal["codedeploy", "ecs"] = Field(
        default="codedeploy",
        description="who deploys the service: its CodeDeploy group, or ECS's own blue/green",
    )
    codedeploy_application: str | None = Field(default=None, min_length=1)
    codedeploy_group: str | None = Field(default=None, min_length=1)
    container: str = Field(min_length=1, description="container whose image the release sets")
    sidecars: list[str] = Field(
        default_factory=list,
        description="the sidecars the stack builds (`sidecars.<name>.build`), whose images a "
        "manifest may set too (omitted, as in inventories written before: none)",
    )
    container_port: Annotated[int, Strict()] | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="port the load balancer routes to (omitted: a worker, engine ecs)",
    )
    task_family: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,255}$",
        description="the service's own task-definition family, where every released revision "
        "registers (omitted: the running revision's family)",
    )
    validation_hook: str | None = Field(
        default=None,
        min_length=1,
        description="Lambda CodeDeploy runs at AfterAllowTestTraffic, as for every other "
        "deployment of the service (omitted: the release's deployments run no hook; on the "
        "ECS engine the hook is the service's own)",
    )

    @model_validator(mode="after")
    def _engine_fields(self) -> ServiceTarget:
        if self.engine == "codedeploy" and self.container_port is None:
            raise ValueError(
                "containerPort: required with engine codedeploy (its AppSpec routes to it); "
                "only a worker (engine: ecs) has none"
            )
        if self.engine == "codedeploy":
            missing = [
                alias
                for alias, value in (
                    ("codedeployApplication", self.codedeploy_application),
                    ("codedeployGroup", self.codedeploy_group),
                )
                if value is None
            ]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)}: required with engine codedeploy (the group "
                    "that deploys the service); or set engine: ecs"
                )
        return self

    @property
    def lock(self) -> str:
        """What holds the service's one deployment at a time, for messages."""
        if self.engine == "ecs":
            return f"ECS service {self.cluster}/{self.service}"
        return f"deployment group {self.codedeploy_application}/{self.codedeploy_group}"


class RuleRef(inputs.Model):
    """An EventBridge rule whose target runs the task."""

    name: str = Field(min_length=1)
    event_bus: str = "default"
    target_id: str = Field(min_length=1)


class ScheduleRef(inputs.Model):
    """An EventBridge Scheduler schedule that runs the task."""

    name: str = Field(min_length=1)
    group: str = "default"


class TaskTarget(inputs.Model):
    """A scheduled Fargate task: its trigger, cluster, family and main container."""

    cluster: str = Field(min_length=1)
    task_family: str = Field(min_length=1)
    container: str = Field(min_length=1)
    rule: RuleRef | None = None
    schedule: ScheduleRef | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> TaskTarget:
        if (self.rule is None) == (self.schedule is None):
            raise ValueError("give exactly one of rule (EventBridge rule) or schedule (Scheduler)")
        return self

    @property
    def uses_scheduler(self) -> bool:
        return self.schedule is not None


class Inventory(inputs.Model):
    """Everything a release may touch in one environment (the `releaseInventory` output)."""

    environment: str = Field(pattern=_NAME)
    production: Annotated[bool, Strict()] = False
    services: dict[str, ServiceTarget] = Field(default_factory=dict)
    scheduled_tasks: dict[str, TaskTarget] = Field(default_factory=dict)


class InventoryError(ValueError):
    """The inventory file is missing or malformed (one line per problem)."""


def parse_inventory(data: Any, source: str = "inventory") -> Inventory:
    """Validate decoded JSON; raise InventoryError listing every problem by key path."""
    try:
        return Inventory.model_validate(data)
    except ValidationError as error:
        lines = [f"{source}: {line}" for line in inputs.problems(error, Inventory)]
        raise InventoryError("\n".join(lines)) from None


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file: any of the shapes `inventory_of` accepts."""
    try:
        data = inputs.load_json(path)
    except inputs.ReadError as error:
        raise InventoryError(str(error)) from None
    return parse_inventory(inventory_of(data, str(path)), source=str(path))


def inventory_of(data: Any, source: str = "inventory") -> Any:
    """The inventory inside what a user has at hand, so no file has to be pieced together:

    - `pulumi stack output releaseInventory --json`: the inventory itself;
    - `pulumi stack output --json`: every output; its `releaseInventory`;
    - `make plan PLAN_JSON=plan.json`: the plan; its `outputs.releaseInventory`.
    """
    if isinstance(data, dict):
        if "environment" in data:
            return data
        outputs = data.get("outputs")
        found = data if "releaseInventory" in data else outputs
        if isinstance(found, dict) and "releaseInventory" in found:
            if found["releaseInventory"] == "[secret]":  # how the Pulumi CLI hides a secret
                raise InventoryError(
                    f"--inventory: {source}: releaseInventory is [secret]: run `pulumi stack "
                    "output --json --show-secrets` (or `pulumi stack output releaseInventory "
                    "--json --show-secrets`)"
                )
            return found["releaseInventory"]
    found = (
        f"an object with keys {', '.join(sorted(data)[:8]) or '(none)'}"
        if isinstance(data, dict)
        else f"a JSON {type(data).__name__}"
    )
    raise InventoryError(
        f"--inventory: {source} holds no release inventory (found {found}); expected the "
        "inventory (`pulumi stack output releaseInventory --json`), all stack outputs with a "
        "releaseInventory key (`pulumi stack output --json`), or a plan with "
        "outputs.releaseInventory (`make plan PLAN_JSON=plan.json`)"
    )


def inventory_json_schema() -> dict[str, Any]:
    """JSON schema of the inventory (by alias), for docs and for the Pulumi side's tests."""
    return Inventory.model_json_schema(by_alias=True)

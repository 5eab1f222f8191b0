"""A simulated AWS for the release engine's tests and benchmark.

- ECS, S3, EventBridge and EventBridge Scheduler are moto's in-process mock (`mock_aws`).
- CodeDeploy is `codedeploy_sim.CodeDeploySim` (the one CodeDeploy simulator, see there)
  answering a real boto3 CodeDeploy client: here every group deploys all at once, `duration`
  simulated seconds after creation; tests `fail`, `hold` and `release` services through it.
- With `engine="ecs"` the services use the ECS controller and ECS deploys them itself:
  `ecs_deployments.EcsDeployments` (the one double of ECS's service deployments) answers the
  engine's ECS client, each deployment ending `duration` simulated seconds after its
  UpdateService; tests put service names in its `failing` and `held` sets.
- S3 goes through `Serialized`: moto's in-process S3 is not thread-safe, real S3 applies
  each request atomically (a conditional write either lands or fails PreconditionFailed).
- `RateLimited` wraps any client with per-operation token buckets and raises botocore's
  ClientError `ThrottlingException` when a call comes over the rate. Defaults: the
  reported RegisterTaskDefinition limit (burst 20, then 1/s); the other rates are
  assumptions, set high enough not to matter unless a test lowers them.
- Time is a `Clock` shared with the engine; the benchmark uses a ScaledClock (simulated
  seconds pass N times faster than real ones), tests a faster one.

How it differs from AWS (for the README), besides what codedeploy_sim.py lists:
- throttling is deterministic token buckets, without AWS's per-account sharing, its
  adaptive limits, or the latency of real calls (moto answers in ~2 ms);
- moto validates fewer request fields than AWS.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from ecs_delivery.offline.codedeploy_sim import (
    CodeDeploySim,
    Lifecycle,
    client_error,
    switch_primary,
)
from ecs_delivery.offline.ecs_deployments import EcsDeployments
from ecs_delivery.runtime.live import running_task_definition
from ecs_delivery.runtime.release.inventory import (
    Inventory,
    RuleRef,
    ScheduleRef,
    ServiceTarget,
    TaskTarget,
)
from ecs_delivery.runtime.release.live import Clients
from ecs_delivery.runtime.release.pacing import Clock, TokenBucket

REGION = "eu-west-1"
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"

# operation (snake_case client method) -> (rate per second, burst)
DEFAULT_LIMITS: dict[str, tuple[float, int]] = {
    "register_task_definition": (1.0, 20),  # reported AWS limit
    "describe_task_definition": (20.0, 50),
    "describe_services": (20.0, 50),
    "create_deployment": (10.0, 50),
    "batch_get_deployments": (10.0, 50),
    "get_deployment": (20.0, 50),
    "list_deployments": (10.0, 50),
    "stop_deployment": (10.0, 50),
}


class SimulatedCrash(BaseException):
    """Raised by a test hook to kill a run the way a crash would (no rollback, no cleanup)."""


# --------------------------------------------------------------------------- throttling


class RateLimited:
    """A client proxy that throttles chosen operations with token buckets (like AWS)."""

    def __init__(self, client: Any, limits: Mapping[str, tuple[float, int]], clock: Clock) -> None:
        self._client = client
        self._buckets = {
            op: TokenBucket(rate, burst, clock) for op, (rate, burst) in limits.items()
        }
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        bucket = self._buckets.get(name)
        if bucket is None or not callable(attribute):
            return attribute

        def limited(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            if not bucket.try_acquire():
                with self._lock:
                    self.throttled[name] += 1
                raise client_error("ThrottlingException", "Rate exceeded", _operation(name))
            return attribute(*args, **kwargs)

        return limited


def _operation(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


class Serialized:
    """A client proxy that runs one call at a time, the way a service applies requests.

    moto's in-process S3 is not thread-safe: two PutObjects of one key at once can both pass
    an If-Match check, or store the object and then fail with "ValueError: I/O operation on
    closed file". Real S3 applies each request atomically, and the release state's
    conditional writes rely on it, so the simulation serializes the calls.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def serialized(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return serialized


# --------------------------------------------------------------------------- environment


@dataclass
class SimulatedAws:
    """A seeded environment: N services, scheduled tasks, clients, inventory."""

    clock: Clock
    clients: Clients
    raw_ecs: Any
    codedeploy: CodeDeploySim
    inventory: Inventory
    bucket: str
    cluster_arn: str
    task_definitions: dict[str, str] = field(default_factory=dict)
    # engine "ecs": ECS's own service deployments (None on CodeDeploy).
    ecs_deployments: EcsDeployments | None = None

    @property
    def ecs(self) -> RateLimited:
        return self.clients.ecs  # type: ignore[no-any-return]

    def image(self, name: str, version: str) -> str:
        return f"{REGISTRY}/{name}:{version}"

    def live_task_definition(self, service: str) -> str:
        target = self.inventory.services[service]
        ecs = self.ecs_deployments or self.raw_ecs  # ECS's deployments end on the clock
        response = ecs.describe_services(cluster=target.cluster, services=[target.service])
        return running_task_definition(response["services"][0])

    def land(self, target: ServiceTarget, task_definition_arn: str) -> None:
        """Another deployer's deployment (a ship, a `pulumi up` rollout) has just finished:
        `task_definition_arn` serves the service's traffic."""
        if self.ecs_deployments is None:
            switch_primary(self.raw_ecs, target.cluster, target.service, task_definition_arn)
            return
        self.ecs_deployments.update_service(
            cluster=target.cluster, service=target.service, taskDefinition=task_definition_arn
        )
        self.ecs_deployments.finish(list(self.ecs_deployments.deployments)[-1])

    def live_image(self, service: str) -> str:
        td = self.raw_ecs.describe_task_definition(
            taskDefinition=self.live_task_definition(service)
        )
        return str(td["taskDefinition"]["containerDefinitions"][0]["image"])

    def task_trigger(self, task: str) -> dict[str, Any]:
        """The live ECS target of a scheduled task (EventBridge target or Scheduler Target)."""
        target = self.inventory.scheduled_tasks[task]
        if target.rule is not None:
            targets = self.clients.events.list_targets_by_rule(Rule=target.rule.name)["Targets"]
            return dict(targets[0])
        assert target.schedule is not None
        return dict(self.clients.scheduler.get_schedule(Name=target.schedule.name)["Target"])

    def task_image(self, task: str) -> str:
        arn = self.task_trigger(task)["EcsParameters"]["TaskDefinitionArn"]
        td = self.raw_ecs.describe_task_definition(taskDefinition=arn)
        return str(td["taskDefinition"]["containerDefinitions"][0]["image"])

    def manifest_yaml(
        self,
        release: str,
        version: str,
        services: list[str] | None = None,
        tasks: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> str:
        """A manifest that moves `services` (default all) to `version`."""
        names = sorted(self.inventory.services) if services is None else services
        lines = [f"release: {release}", f"environment: {self.inventory.environment}", "services:"]
        lines += [f"  {n}:\n    image: {self.image(n, version)}" for n in names]
        if tasks:
            lines.append("scheduledTasks:")
            for name, spec in tasks.items():
                lines.append(f"  {name}:")
                lines += [f"    {key}: {json.dumps(value)}" for key, value in spec.items()]
        return "\n".join(lines) + "\n"


def _fake_client(service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@contextlib.contextmanager
def simulated_aws(
    clock: Clock,
    services: int = 20,
    rule_tasks: int = 1,
    schedule_tasks: int = 1,
    duration: Duration = 60.0,
    limits: Mapping[str, tuple[float, int]] | None = None,
    stop_seconds: float = 10.0,
    production: bool = False,
    environment: str = "dev",
    family_schedules: bool = True,
    engine: str = "codedeploy",
) -> Iterator[SimulatedAws]:
    """Start moto, seed an environment, and yield it; everything is gone on exit.

    Scheduler schedules name their task's family, as the program writes them (each run
    starts the newest revision); `family_schedules=False` seeds them as older stacks have
    them, naming a revision. EventBridge rule targets (brought by the user) name a revision.
    """
    from moto import mock_aws  # test/benchmark dependency, imported only here

    with mock_aws():
        ecs, s3 = _fake_client("ecs"), _fake_client("s3")
        events, scheduler = _fake_client("events"), _fake_client("scheduler")
        cluster = ecs.create_cluster(clusterName=f"{environment}-cluster")["cluster"]["clusterArn"]
        bucket = f"{environment}-release-state"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

        service_targets: dict[str, ServiceTarget] = {}
        groups: dict[tuple[str, str], tuple[str, str, str]] = {}
        tds: dict[str, str] = {}
        for index in range(services):
            name = f"svc-{index:03d}"
            td = _register(ecs, f"{environment}-{name}", "app", f"{REGISTRY}/{name}:1.0.0")
            ecs.create_service(
                cluster=cluster,
                serviceName=f"{environment}-{name}",
                taskDefinition=td,
                desiredCount=1,
                launchType="FARGATE",
                deploymentController={"type": "ECS" if engine == "ecs" else "CODE_DEPLOY"},
            )
            tds[name] = td
            group = (
                {}
                if engine == "ecs"
                else {
                    "codedeploy_application": f"{environment}-{name}",
                    "codedeploy_group": f"{environment}-{name}",
                }
            )
            service_targets[name] = ServiceTarget(
                cluster=cluster,
                service=f"{environment}-{name}",
                engine=engine,  # type: ignore[arg-type]
                container="app",
                container_port=8080,
                **group,
            )
            groups[(f"{environment}-{name}", f"{environment}-{name}")] = (
                cluster,
                f"{environment}-{name}",
                name,
            )

        task_targets: dict[str, TaskTarget] = {}
        role = f"arn:aws:iam::{ACCOUNT}:role/{environment}-scheduled-tasks"
        for index in range(rule_tasks + schedule_tasks):
            name = f"job-{index:02d}"
            family = f"{environment}-{name}"
            td = _register(ecs, family, "job", f"{REGISTRY}/{name}:1.0.0")
            tds[name] = td
            ecs_parameters = {
                "TaskDefinitionArn": td,
                "TaskCount": 1,
                "LaunchType": "FARGATE",
                "NetworkConfiguration": {
                    "awsvpcConfiguration": {
                        "Subnets": ["subnet-private-a"],
                        "AssignPublicIp": "DISABLED",
                    }
                },
            }
            command_input = json.dumps(
                {"containerOverrides": [{"name": "job", "command": ["run"]}]}
            )
            if index < rule_tasks:
                events.put_rule(
                    Name=family, ScheduleExpression="cron(0 3 * * ? *)", State="ENABLED"
                )
                events.put_targets(
                    Rule=family,
                    Targets=[
                        {
                            "Id": name,
                            "Arn": cluster,
                            "RoleArn": role,
                            "Input": command_input,
                            "EcsParameters": ecs_parameters,
                        }
                    ],
                )
                trigger: dict[str, Any] = {"rule": RuleRef(name=family, target_id=name)}
            else:
                scheduler.create_schedule(
                    Name=family,
                    ScheduleExpression="rate(1 hour)",
                    FlexibleTimeWindow={"Mode": "OFF"},
                    Target={
                        "Arn": cluster,
                        "RoleArn": role,
                        "Input": command_input,
                        "EcsParameters": {
                            **ecs_parameters,
                            "TaskDefinitionArn": td.rsplit(":", 1)[0] if family_schedules else td,
                        },
                    },
                )
                trigger = {"schedule": ScheduleRef(name=family)}
            task_targets[name] = TaskTarget(
                cluster=cluster, task_family=family, container="job", **trigger
            )

        codedeploy = CodeDeploySim(ecs, clock, stop_seconds=stop_seconds)
        ecs_deployments, code_ecs = None, ecs
        if engine == "ecs":
            groups.clear()  # ECS deploys the services itself
            labels = {t.service: n for n, t in service_targets.items()}
            ecs_deployments = EcsDeployments(
                moto=ecs,
                region=REGION,
                account=ACCOUNT,
                clock=clock,
                seconds=lambda service: _seconds_for(duration, labels.get(service, service)),
            )
            # The engine's client is another one than the double's own (it acts on moto).
            code_ecs = ecs_deployments.attach(_fake_client("ecs"))
        for (application, group), (cluster_arn, service, name) in groups.items():
            codedeploy.add_group(
                application,
                group,
                cluster_arn,
                service,
                label=name,
                lifecycle=_lifecycle_for(duration, name),
            )
            codedeploy.remember_original(name, tds[name])
        codedeploy.observe(ecs)
        codedeploy_client = codedeploy.attach(_fake_client("codedeploy"))
        chosen = dict(DEFAULT_LIMITS if limits is None else limits)
        clients = Clients(
            ecs=RateLimited(code_ecs, chosen, clock),
            codedeploy=RateLimited(codedeploy_client, chosen, clock),
            s3=Serialized(s3),
            events=events,
            scheduler=scheduler,
        )
        inventory = Inventory(
            environment=environment,
            production=production,
            services=service_targets,
            scheduled_tasks=task_targets,
        )
        yield SimulatedAws(
            clock=clock,
            clients=clients,
            raw_ecs=ecs,
            codedeploy=codedeploy,
            inventory=inventory,
            bucket=bucket,
            cluster_arn=cluster,
            task_definitions=tds,
            ecs_deployments=ecs_deployments,
        )


Duration = float | Lifecycle | Mapping[str, float] | Callable[[str], float | Lifecycle]


def _lifecycle_for(duration: Duration, name: str) -> float | Lifecycle:
    """A service's lifecycle: seconds of an all-at-once deployment, or a whole Lifecycle."""
    if callable(duration):
        return duration(name)
    if isinstance(duration, Mapping):
        return float(duration[name])
    return duration


def _seconds_for(duration: Duration, name: str) -> float:
    """How long an ECS deployment of `name` runs (a Lifecycle: until it would have shipped)."""
    life = _lifecycle_for(duration, name)
    if isinstance(life, Lifecycle):
        return life.install_seconds + life.shift_seconds
    return float(life)


def _register(ecs: Any, family: str, container: str, image: str) -> str:
    response = ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{family}-execution",
        containerDefinitions=[
            {
                "name": container,
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "OWNED_BY", "value": "pulumi"}],
                "readonlyRootFilesystem": True,
                "user": "1000",
            }
        ],
        tags=[{"key": "managed-by", "value": "pulumi"}],
    )
    return str(response["taskDefinition"]["taskDefinitionArn"])

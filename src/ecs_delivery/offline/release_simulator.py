"""A simulated AWS for the release engine's tests and benchmark.

- ECS, S3, EventBridge and EventBridge Scheduler are moto's in-process mock (`mock_aws`).
- CodeDeploy is `SimulatedCodeDeploy`: moto's deployments never leave `Created` and it has
  no StopDeployment, so this class answers the calls the engine makes (create_deployment,
  get_deployment, batch_get_deployments, stop_deployment, list_deployments) with the same
  request and response shapes as boto3. A deployment succeeds `duration` simulated seconds
  after it was created and then points the ECS service at its task definition
  (UpdateService on moto, which moto accepts for CODE_DEPLOY services); it can be told to
  fail for chosen services, and to fail their rollbacks too. Tests can `hold` a service's
  deployments in progress until they `release` them (or the engine stops them), so what a
  test asserts follows from the order of events, not from how fast threads were scheduled.
- S3 goes through `Serialized`: moto's in-process S3 is not thread-safe, real S3 applies
  each request atomically (a conditional write either lands or fails PreconditionFailed).
- `RateLimited` wraps any client with per-operation token buckets and raises botocore's
  ClientError `ThrottlingException` when a call comes over the rate. Defaults: the
  reported RegisterTaskDefinition limit (burst 20, then 1/s); the other rates are
  assumptions, set high enough not to matter unless a test lowers them.
- Time is a `Clock` shared with the engine; the benchmark uses a ScaledClock (simulated
  seconds pass N times faster than real ones), tests a faster one.

How it differs from AWS (for the README):
- deployments are atomic: no replacement task set, no traffic shifting, no lifecycle
  hooks, no test listener; the service switches to the new revision at the instant the
  deployment succeeds, and a stopped or failed deployment never switched it;
- a stopped deployment ends `Stopped` after `stop_seconds`; AWS's rollback time depends
  on the deployment's progress, and AWS may report a separate rollback deployment;
- durations are fixed per service (no variance, no health checks, no capacity limits);
- state is evaluated lazily: a deployment's status (and the service's revision) changes
  when the deployment is read, which the engine always does before acting on it;
- throttling is deterministic token buckets, without AWS's per-account sharing, its
  adaptive limits, or the latency of real calls (moto answers in ~2 ms);
- moto validates fewer request fields than AWS and accepts UpdateService(taskDefinition)
  on CODE_DEPLOY services, which AWS refuses.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator

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
IN_PROGRESS = ("Created", "Queued", "InProgress", "Baking", "Ready")

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


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


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


# --------------------------------------------------------------------------- CodeDeploy


@dataclass
class _Deployment:
    deployment_id: str
    application: str
    group: str
    service: str
    task_definition: str
    description: str
    created: float
    duration: float
    fail_at: float | None
    held: bool = False
    released_at: float | None = None
    status: str = "Created"
    stopped_at: float | None = None
    auto_rollback: bool = False
    ended: float | None = None
    error: dict[str, str] | None = None
    # "user" for CreateDeployment; CodeDeploy's own automatic rollback is "codeDeployRollback".
    creator: str = "user"

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "applicationName": self.application,
            "deploymentGroupName": self.group,
            "deploymentId": self.deployment_id,
            "status": self.status,
            "description": self.description,
            "createTime": datetime.datetime.fromtimestamp(self.created, tz=datetime.UTC),
            "computePlatform": "ECS",
            "deploymentOverview": {},
            "creator": self.creator,
        }
        if self.ended is not None:
            info["completeTime"] = datetime.datetime.fromtimestamp(self.ended, tz=datetime.UTC)
        if self.error:
            info["errorInformation"] = dict(self.error)
        if self.status == "Stopped" and self.auto_rollback:
            info["rollbackInfo"] = {"rollbackMessage": "stopped with automatic rollback"}
        return info


@dataclass(frozen=True)
class GroupTarget:
    """The ECS service a deployment group deploys to."""

    cluster: str
    service: str
    name: str  # the release's service name (for durations and failure injection)


@functools.cache
def _codedeploy_model() -> Any:
    return botocore.session.get_session().get_service_model("codedeploy")


def validate_request(operation: str, params: Mapping[str, Any]) -> None:
    """Check a request against botocore's CodeDeploy model, as a real client would."""
    shape = _codedeploy_model().operation_model(operation).input_shape
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


class SimulatedCodeDeploy:
    """Answers the CodeDeploy calls the engine makes; see the module docstring.

    Every request is first checked against botocore's model of the real API (unknown or
    missing parameters, wrong types), so what works here is well-formed for AWS.
    """

    def __init__(
        self,
        ecs: Any,
        clock: Clock,
        groups: Mapping[tuple[str, str], GroupTarget],
        duration: float | Mapping[str, float] | Callable[[str], float] = 60.0,
        stop_seconds: float = 10.0,
        fail_fraction: float = 0.5,
    ) -> None:
        self._ecs = ecs
        self._clock = clock
        self._groups = dict(groups)
        self._duration = duration
        self.stop_seconds = stop_seconds
        self.fail_fraction = fail_fraction
        self.failing: set[str] = set()
        self.failing_rollbacks: set[str] = set()
        self.held: set[str] = set()
        self.on_create: Callable[[dict[str, Any]], None] | None = None
        self._deployments: dict[str, _Deployment] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._original_td: dict[str, str] = {}

    # -- configuration

    def fail(self, service: str, rollbacks_too: bool = False) -> None:
        """Make deployments of `service` fail (only forward ones unless rollbacks_too)."""
        self.failing.add(service)
        if rollbacks_too:
            self.failing_rollbacks.add(service)

    def hold(self, *services: str) -> None:
        """Keep deployments of `services` in progress until released or stopped.

        Applies to deployments created from now on, forward and rollback ones alike.
        """
        with self._lock:
            self.held.update(services)

    def release(self, *services: str) -> None:
        """Let held deployments of `services` run on: each ends when it would have ended
        unheld (`duration` or its failure time after creation), or now if that has passed."""
        with self._lock:
            self.held.difference_update(services)
            now = self._clock.time()
            for d in self._deployments.values():
                if d.service in services and d.held:
                    d.held, d.released_at = False, now

    def remember_original(self, service: str, task_definition: str) -> None:
        """The revision a service ran before any release (rollbacks deploy it back)."""
        self._original_td[service] = task_definition

    def duration_of(self, service: str) -> float:
        if callable(self._duration):
            return float(self._duration(service))
        if isinstance(self._duration, Mapping):
            return float(self._duration[service])
        return float(self._duration)

    # -- observation for tests and the benchmark

    @property
    def deployments(self) -> list[_Deployment]:
        with self._lock:
            self._advance_all()
            return sorted(self._deployments.values(), key=lambda d: d.created)

    def created_per_service(self, rollbacks: bool = False) -> Counter[str]:
        """How many deployments were created per service (forward ones by default)."""
        return Counter(
            d.service
            for d in self.deployments
            if (d.task_definition == self._original_td.get(d.service)) == rollbacks
        )

    def max_in_flight(self) -> int:
        """The most deployments that were running at the same simulated instant."""
        edges = []
        for d in self.deployments:
            end = d.ended if d.ended is not None else float("inf")
            edges += [(d.created, 1), (end, -1)]
        running = peak = 0
        for _, delta in sorted(edges, key=lambda e: (e[0], e[1])):
            running += delta
            peak = max(peak, running)
        return peak

    # -- state machine of one deployment

    def _advance(self, d: _Deployment) -> None:
        if d.status not in IN_PROGRESS:
            return
        now = self._clock.time()
        if d.stopped_at is not None:
            if now >= d.stopped_at + self.stop_seconds:
                d.status, d.ended = "Stopped", d.stopped_at + self.stop_seconds
                d.error = {"code": "DEPLOYMENT_STOPPED", "message": "stopped by a user"}
            return
        if d.held:
            d.status = "InProgress"
            return
        # A failing deployment never succeeds: it runs until it fails.
        end = d.created + (d.fail_at if d.fail_at is not None else d.duration)
        if d.released_at is not None:
            end = max(end, d.released_at)
        if now < end:
            d.status = "InProgress"
            return
        if d.fail_at is not None:
            d.status, d.ended = "Failed", end
            d.error = {
                "code": "HEALTH_CONSTRAINTS",
                "message": f"simulated failure of {d.service}; rolled back automatically",
            }
            return
        d.status, d.ended = "Succeeded", end
        target = self._groups[(d.application, d.group)]
        self._ecs.update_service(
            cluster=target.cluster, service=target.service, taskDefinition=d.task_definition
        )

    def _advance_all(self) -> None:
        for d in self._deployments.values():
            self._advance(d)

    def _get(self, deployment_id: str, operation: str) -> _Deployment:
        d = self._deployments.get(deployment_id)
        if d is None:
            raise client_error(
                "DeploymentDoesNotExistException",
                f"The deployment {deployment_id} could not be found",
                operation,
            )
        self._advance(d)
        return d

    # -- the CodeDeploy API (boto3 shapes)

    def create_deployment(
        self,
        applicationName: str,  # noqa: N803 - boto3's parameter names
        deploymentGroupName: str,  # noqa: N803
        revision: dict[str, Any],
        description: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        validate_request(
            "CreateDeployment",
            {
                "applicationName": applicationName,
                "deploymentGroupName": deploymentGroupName,
                "revision": revision,
                "description": description,
                **extra,
            },
        )
        with self._lock:
            target = self._groups.get((applicationName, deploymentGroupName))
            if target is None:
                raise client_error(
                    "DeploymentGroupDoesNotExistException",
                    f"No deployment group {deploymentGroupName} in {applicationName}",
                    "CreateDeployment",
                )
            for d in self._deployments.values():
                if d.application == applicationName and d.group == deploymentGroupName:
                    self._advance(d)
                    if d.status in IN_PROGRESS:
                        raise client_error(
                            "DeploymentLimitExceededException",
                            f"The Deployment Group '{deploymentGroupName}' already has an "
                            f"active Deployment '{d.deployment_id}'",
                            "CreateDeployment",
                        )
            content = json.loads(revision["appSpecContent"]["content"])
            properties = content["Resources"][0]["TargetService"]["Properties"]
            td = properties["TaskDefinition"]
            duration = self.duration_of(target.name)
            rollback = td == self._original_td.get(target.name)
            fails = target.name in (self.failing_rollbacks if rollback else self.failing)
            d = _Deployment(
                deployment_id=f"d-SIM{next(self._ids):06d}",
                application=applicationName,
                group=deploymentGroupName,
                service=target.name,
                task_definition=td,
                description=description,
                created=self._clock.time(),
                duration=duration,
                fail_at=duration * self.fail_fraction if fails else None,
                held=target.name in self.held,
            )
            self._deployments[d.deployment_id] = d
            hook = self.on_create
        if hook is not None:
            hook({"deploymentId": d.deployment_id, "service": d.service, "taskDefinition": td})
        return {"deploymentId": d.deployment_id}

    def automatic_rollback(self, service: str, task_definition: str) -> str:
        """CodeDeploy rolls `service` back on its own (an alarm, a failed deployment): a
        deployment of `task_definition` created by CodeDeploy, not through the API."""
        with self._lock:
            (application, group), target = next(
                (key, t) for key, t in self._groups.items() if t.name == service
            )
            duration = self.duration_of(service)
            d = _Deployment(
                deployment_id=f"d-SIM{next(self._ids):06d}",
                application=application,
                group=group,
                service=service,
                task_definition=task_definition,
                description="",
                created=self._clock.time(),
                duration=duration,
                fail_at=None,
                held=service in self.held,
                creator="codeDeployRollback",
            )
            self._deployments[d.deployment_id] = d
            return d.deployment_id

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:  # noqa: N803
        validate_request("GetDeployment", {"deploymentId": deploymentId})
        with self._lock:
            return {"deploymentInfo": self._get(deploymentId, "GetDeployment").info()}

    def batch_get_deployments(self, deploymentIds: list[str]) -> dict[str, Any]:  # noqa: N803
        validate_request("BatchGetDeployments", {"deploymentIds": deploymentIds})
        if len(deploymentIds) > 25:
            raise client_error(
                "BatchLimitExceededException", "at most 25 ids", "BatchGetDeployments"
            )
        with self._lock:
            infos = []
            for deployment_id in deploymentIds:
                d = self._deployments.get(deployment_id)
                if d is not None:
                    self._advance(d)
                    infos.append(d.info())
            return {"deploymentsInfo": infos}

    def stop_deployment(
        self,
        deploymentId: str,  # noqa: N803
        autoRollbackEnabled: bool = False,  # noqa: N803
    ) -> dict[str, Any]:
        validate_request(
            "StopDeployment",
            {"deploymentId": deploymentId, "autoRollbackEnabled": autoRollbackEnabled},
        )
        with self._lock:
            d = self._get(deploymentId, "StopDeployment")
            if d.status not in IN_PROGRESS:
                raise client_error(
                    "DeploymentAlreadyCompletedException",
                    f"The deployment {deploymentId} has already completed",
                    "StopDeployment",
                )
            if d.stopped_at is None:
                d.stopped_at, d.auto_rollback = self._clock.time(), autoRollbackEnabled
            return {"status": "Pending", "statusMessage": "Stopping the deployment"}

    def list_deployments(
        self,
        applicationName: str | None = None,  # noqa: N803
        deploymentGroupName: str | None = None,  # noqa: N803
        includeOnlyStatuses: list[str] | None = None,  # noqa: N803
        createTimeRange: dict[str, datetime.datetime] | None = None,  # noqa: N803
        nextToken: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        given = {
            "applicationName": applicationName,
            "deploymentGroupName": deploymentGroupName,
            "includeOnlyStatuses": includeOnlyStatuses,
            "createTimeRange": createTimeRange,
            "nextToken": nextToken,
        }
        validate_request("ListDeployments", {k: v for k, v in given.items() if v is not None})
        with self._lock:
            ids = []
            for d in sorted(self._deployments.values(), key=lambda x: x.created):
                self._advance(d)
                if applicationName and d.application != applicationName:
                    continue
                if deploymentGroupName and d.group != deploymentGroupName:
                    continue
                if includeOnlyStatuses and d.status not in includeOnlyStatuses:
                    continue
                if createTimeRange:
                    start, end = createTimeRange.get("start"), createTimeRange.get("end")
                    if start is not None and d.created < start.timestamp():
                        continue
                    if end is not None and d.created > end.timestamp():
                        continue
                ids.append(d.deployment_id)
            return {"deployments": ids}


# --------------------------------------------------------------------------- environment


@dataclass
class SimulatedAws:
    """A seeded environment: N services, scheduled tasks, clients, inventory."""

    clock: Clock
    clients: Clients
    raw_ecs: Any
    codedeploy: SimulatedCodeDeploy
    inventory: Inventory
    bucket: str
    cluster_arn: str
    task_definitions: dict[str, str] = field(default_factory=dict)

    @property
    def ecs(self) -> RateLimited:
        return self.clients.ecs  # type: ignore[no-any-return]

    def image(self, name: str, version: str) -> str:
        return f"{REGISTRY}/{name}:{version}"

    def live_task_definition(self, service: str) -> str:
        target = self.inventory.services[service]
        response = self.raw_ecs.describe_services(cluster=target.cluster, services=[target.service])
        return str(response["services"][0]["taskDefinition"])

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
    duration: float | Mapping[str, float] | Callable[[str], float] = 60.0,
    limits: Mapping[str, tuple[float, int]] | None = None,
    stop_seconds: float = 10.0,
    production: bool = False,
    environment: str = "dev",
) -> Iterator[SimulatedAws]:
    """Start moto, seed an environment, and yield it; everything is gone on exit."""
    from moto import mock_aws  # test/benchmark dependency, imported only here

    with mock_aws():
        ecs, s3 = _fake_client("ecs"), _fake_client("s3")
        events, scheduler = _fake_client("events"), _fake_client("scheduler")
        cluster = ecs.create_cluster(clusterName=f"{environment}-cluster")["cluster"]["clusterArn"]
        bucket = f"{environment}-release-state"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

        service_targets: dict[str, ServiceTarget] = {}
        groups: dict[tuple[str, str], GroupTarget] = {}
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
                deploymentController={"type": "CODE_DEPLOY"},
            )
            tds[name] = td
            service_targets[name] = ServiceTarget(
                cluster=cluster,
                service=f"{environment}-{name}",
                codedeploy_application=f"{environment}-{name}",
                codedeploy_group=f"{environment}-{name}",
                container="app",
                container_port=8080,
            )
            groups[(f"{environment}-{name}", f"{environment}-{name}")] = GroupTarget(
                cluster, f"{environment}-{name}", name
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
                        "EcsParameters": ecs_parameters,
                    },
                )
                trigger = {"schedule": ScheduleRef(name=family)}
            task_targets[name] = TaskTarget(
                cluster=cluster, task_family=family, container="job", **trigger
            )

        codedeploy = SimulatedCodeDeploy(
            ecs, clock, groups, duration=duration, stop_seconds=stop_seconds
        )
        for name in service_targets:
            codedeploy.remember_original(name, tds[name])
        chosen = dict(DEFAULT_LIMITS if limits is None else limits)
        clients = Clients(
            ecs=RateLimited(ecs, chosen, clock),
            codedeploy=RateLimited(codedeploy, chosen, clock),
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
        )


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

"""CodeDeploy's ECS blue/green lifecycle in time: the one simulator of tests, benchmark and demo.

moto keeps every deployment `Created` and has no StopDeployment or ContinueDeployment, so
`CodeDeploySim` answers the deployment calls (Create, Get, BatchGet, List, Stop, Continue)
from a model of an ECS blue/green deployment on a clock:

    created ─ install ─> test traffic ─ validation hook ─> traffic shifting (canary or linear
    steps) ─> shifted: production runs the replacement ─ termination wait ─> Succeeded

- The group is locked from creation until the deployment ends: CreateDeployment meanwhile is
  refused with DeploymentLimitExceededException, as AWS does (moto accepts it).
- `instanceTerminationWaitTimeStarted` is true once traffic has shifted; ContinueDeployment
  with TERMINATION_WAIT ends the wait at once.
- ECS (moto) follows: at creation a replacement task set (the AppSpec's revision, network and
  platform version) next to the PRIMARY one; at the shift the replacement becomes PRIMARY; at
  the end the original is deleted. A failure or a stop before the shift removes the
  replacement; after it (an alarm, or a stop with rollback during the termination wait) the
  original serves again.
- Injection: `fail(service)` (a failed health check or hook, part-way through), `alarm(...)`
  (after the shift), `hold`/`release` (keep deployments before the shift), `finish(id)` (end
  one now: the interleaving tests make that a step), `before_create`/`on_create` hooks.

Two ways in, one model: `attach(client)` answers a real boto3 CodeDeploy client (botocore has
validated and serialised each request against the service model before it is answered
here); the boto3-shaped methods (`create_deployment(...)`) can also be called directly.
State is evaluated lazily: a deployment moves on when CodeDeploy is asked about it, or when an
`observe`d ECS client describes services.

How it differs from AWS:
- phase durations are fixed per group (no variance, no capacity limits); the validation hook
  is a duration and an outcome, not a Lambda call;
- a stopped deployment ends `Stopped` `stop_seconds` after the stop; AWS's time depends on
  the deployment's progress, and AWS may report a separate rollback deployment;
- traffic percentages are not reported by GetDeployment (AWS reports them per target);
- groups come from `add_group`, or from moto's deployment groups.
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
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator

from ecs_delivery.offline.codedeploy_lifecycle import (
    Deployment,
    Group,
    Lifecycle,
    as_datetime,
    lifecycle_of,
)
from ecs_delivery.runtime.clock import Clock, VirtualClock, using

IN_PROGRESS = ("Created", "Queued", "InProgress", "Baking", "Ready")
DEFAULT_LIFECYCLE = Lifecycle()  # a minute to start, then all at once
__all__ = [
    "CodeDeploySim",
    "Deployment",
    "Group",
    "Lifecycle",
    "lifecycle_of",
    "on_virtual_time",
]
_OPERATIONS = {
    "CreateDeployment": "create_deployment",
    "GetDeployment": "get_deployment",
    "BatchGetDeployments": "batch_get_deployments",
    "ListDeployments": "list_deployments",
    "StopDeployment": "stop_deployment",
    "ContinueDeployment": "continue_deployment",
}


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@functools.cache
def _codedeploy_model() -> Any:
    return botocore.session.get_session().get_service_model("codedeploy")


def validate_request(operation: str, params: Mapping[str, Any]) -> None:
    """Check a request against botocore's CodeDeploy model, as a real client would."""
    shape = _codedeploy_model().operation_model(operation).input_shape
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


# --------------------------------------------------------------------------- the simulator


class CodeDeploySim:
    """Answers CodeDeploy's deployment calls from the lifecycle model; see the module docstring.

    `ecs` is the (moto) ECS client the deployments act on; `clock` the simulation's time.
    `lifecycle` is every group's default (a group's own comes from `add_group`), or a number
    of seconds (an all-at-once deployment that succeeds that long after its creation).
    """

    def __init__(
        self,
        ecs: Any,
        clock: Clock,
        lifecycle: Lifecycle | float = DEFAULT_LIFECYCLE,
        stop_seconds: float = 10.0,
        fail_fraction: float = 0.5,
        page_size: int = 100,
    ) -> None:
        self._ecs = ecs
        self.clock = clock
        self._default = _lifecycle(lifecycle)
        self.stop_seconds = stop_seconds
        self.fail_fraction = fail_fraction
        self.page_size = page_size
        self.groups: dict[tuple[str, str], Group] = {}
        # A group's lifecycle by its label, where it differs from the default (prod's web
        # canary and api linear); add_group's own argument wins.
        self.lifecycles: dict[str, Lifecycle] = {}
        self.failing: set[str] = set()
        self.failing_rollbacks: set[str] = set()
        self.held: set[str] = set()
        self.alarms: dict[str, float] = {}
        # Runs with the request just before CreateDeployment takes the group's lock (another
        # deployer's last moment); on_create with the new deployment once it has.
        self.before_create: Callable[[dict[str, Any]], None] | None = None
        self.on_create: Callable[[dict[str, Any]], None] | None = None
        self.stopped: list[str] = []
        self.completed: list[str] = []
        self._deployments: dict[str, Deployment] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._original_td: dict[str, str] = {}
        self._advancing = threading.local()

    # -- configuration

    def add_group(
        self,
        application: str,
        group: str,
        cluster: str,
        service: str,
        *,
        label: str | None = None,
        lifecycle: Lifecycle | float | None = None,
    ) -> Group:
        """A deployment group of `cluster`/`service` (`label`: the tests' name for it)."""
        label = label or service.split("/")[-1]
        found = Group(
            application,
            group,
            cluster,
            service,
            label,
            self.lifecycles.get(label, self._default)
            if lifecycle is None
            else _lifecycle(lifecycle),
        )
        with self._lock:
            self.groups[(application, group)] = found
        return found

    def fail(self, service: str, rollbacks_too: bool = False) -> None:
        """Make deployments of `service` fail part-way (only forward ones unless rollbacks_too)."""
        self.failing.add(service)
        if rollbacks_too:
            self.failing_rollbacks.add(service)

    def alarm(self, service: str, after_seconds: float) -> None:
        """An alarm goes off `after_seconds` into each new deployment of `service` (it may be
        in its termination wait by then): CodeDeploy rolls it back."""
        self.alarms[service] = after_seconds

    def hold(self, *services: str) -> None:
        """Keep deployments of `services` before traffic shifting until released or stopped.

        Applies to deployments created from now on, forward and rollback ones alike.
        """
        with self._lock:
            self.held.update(services)

    def release(self, *services: str) -> None:
        """Let held deployments of `services` run on: each shifts when it would have unheld,
        or now if that has passed."""
        with self._lock:
            self.held.difference_update(services)
            now = self.clock.time()
            for d in self._deployments.values():
                if d.service in services and d.held:
                    d.held, d.released_at = False, now

    def finish(self, deployment_id: str, failed: bool = False) -> Deployment:
        """End a deployment now, as if its lifecycle had just run to its end (or failed)."""
        with self._lock:
            d = self._deployments[deployment_id]
            d.finish_at, d.finish_failed = self.clock.time(), failed
            self._advance(d)
            return d

    def remember_original(self, service: str, task_definition: str) -> None:
        """The revision a service ran before any release (rollbacks deploy it back)."""
        self._original_td[service] = task_definition

    def duration_of(self, service: str) -> float:
        """Seconds from creation until a deployment of `service` has shifted traffic."""
        group = next((g for g in self.groups.values() if g.label == service), None)
        life = group.lifecycle if group else self._default
        return life.install_seconds + life.shift_seconds

    # -- clients

    def attach(self, codedeploy: Any) -> Any:
        """Answer `codedeploy`'s (a boto3 client) deployment calls here; return it."""
        for operation in _OPERATIONS:
            _register_once(
                codedeploy, f"before-call.codedeploy.{operation}", self._answer, operation
            )
        return codedeploy

    def observe(self, ecs: Any) -> Any:
        """Let deployments move on whenever `ecs` (a boto3 client) describes services."""
        for operation in ("DescribeServices", "DescribeTaskSets"):
            _register_once(
                ecs, f"before-call.ecs.{operation}", lambda **_: self.advance_all(), operation
            )
        return ecs

    def _answer(self, model: Any, params: Mapping[str, Any], **_: Any) -> tuple[Any, Any]:
        body = json.loads(params.get("body") or b"{}")
        for key in ("createTimeRange",):
            if key in body:
                body[key] = {k: as_datetime(float(v)) for k, v in body[key].items()}
        method = getattr(self, _OPERATIONS[model.name])
        try:
            parsed = method(_validated=True, **body)
        except ClientError as error:
            return AWSResponse("https://codedeploy.simulated", 400, {}, None), error.response
        return AWSResponse("https://codedeploy.simulated", 200, {}, None), parsed

    # -- observation for tests, the benchmark and the demo

    @property
    def deployments(self) -> list[Deployment]:
        with self._lock:
            self.advance_all()
            return sorted(self._deployments.values(), key=lambda d: (d.created, d.deployment_id))

    def deployment(self, deployment_id: str) -> Deployment:
        with self._lock:
            d = self._deployments[deployment_id]
            self._advance(d)
            return d

    def shipped(self) -> list[Deployment]:
        """Deployments whose traffic shifted and stayed (Succeeded, or in their termination
        wait), in the order they shifted."""
        return sorted(
            (
                d
                for d in self.deployments
                if d.shifted_at is not None and d.status in ("Succeeded", "InProgress")
            ),
            key=lambda d: d.shifted_at or 0.0,
        )

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

    # -- one deployment's lifecycle

    def advance_all(self) -> None:
        with self._lock:
            for d in list(self._deployments.values()):
                self._advance(d)

    def _advance(self, d: Deployment) -> None:
        if d.ended is not None or getattr(self._advancing, "busy", False):
            return
        self._advancing.busy = True
        try:
            self._step(d, self.clock.time())
        finally:
            self._advancing.busy = False

    def _step(self, d: Deployment, now: float) -> None:
        if d.finish_at is not None and d.stop_requested is None:
            if d.finish_failed:
                self._fail(d, d.finish_at, "HEALTH_CONSTRAINTS")
            else:
                if d.shifted_at is None:
                    self._shift(d, d.finish_at)
                self._succeed(d, d.finish_at)
            return
        if d.stop_requested is not None:
            if now >= d.stop_requested + self.stop_seconds:
                self._end_rolled_back(
                    d,
                    d.stop_requested + self.stop_seconds,
                    "Stopped",
                    {"code": "DEPLOYMENT_STOPPED", "message": "stopped by a user"},
                    rolls_back=d.auto_rollback,
                )
                if d.auto_rollback:
                    d.rollback_message = "stopped with automatic rollback"
            return
        failure = d.failure_time()
        shifted, end = d.shifted_time(), d.end_time()
        if failure is not None and failure[0] <= now and failure[0] <= end:
            if failure[0] >= shifted and d.shifted_at is None:
                self._shift(d, shifted)
            self._fail(d, failure[0], failure[1])
            return
        d.status = "InProgress"
        if now >= shifted and d.shifted_at is None:
            self._shift(d, shifted)
        if d.shifted_at is not None and now >= end:
            self._succeed(d, end)

    def _shift(self, d: Deployment, at: float) -> None:
        d.shifted_at = at
        if d.replacement_task_set:
            self._ecs.update_service_primary_task_set(
                cluster=d.group.cluster,
                service=d.group.service,
                primaryTaskSet=d.replacement_task_set,
            )

    def _succeed(self, d: Deployment, at: float) -> None:
        d.status, d.ended = "Succeeded", at
        if d.original_task_set:
            self._delete_task_set(d, d.original_task_set)
        self.completed.append(d.deployment_id)

    def _fail(self, d: Deployment, at: float, code: str) -> None:
        message = {
            "HEALTH_CONSTRAINTS": f"simulated failure of {d.service}",
            "ALARM_ACTIVE": f"an alarm of {d.service} went off",
        }[code]
        self._end_rolled_back(
            d, at, "Failed", {"code": code, "message": f"{message}; rolled back automatically"}
        )
        d.rollback_message = f"{message}: CodeDeploy rolled the deployment back"

    def _end_rolled_back(
        self,
        d: Deployment,
        at: float,
        status: str,
        error: dict[str, str],
        rolls_back: bool = True,
    ) -> None:
        """The deployment ends without shipping: the original task set serves (again)."""
        d.status, d.ended, d.error = status, at, error
        if d.shifted_at is not None and not rolls_back:
            # Stopped after the shift without rollback: the replacement keeps production.
            if d.original_task_set:
                self._delete_task_set(d, d.original_task_set)
            return
        if d.shifted_at is not None and d.original_task_set:
            self._ecs.update_service_primary_task_set(
                cluster=d.group.cluster,
                service=d.group.service,
                primaryTaskSet=d.original_task_set,
            )
        if d.replacement_task_set:
            self._delete_task_set(d, d.replacement_task_set)
        if status == "Stopped":
            self.stopped.append(d.deployment_id)

    def _delete_task_set(self, d: Deployment, task_set: str) -> None:
        self._ecs.delete_task_set(
            cluster=d.group.cluster, service=d.group.service, taskSet=task_set
        )

    # -- ECS at creation

    def _task_sets(self, d: Deployment) -> None:
        """Create the replacement task set next to a PRIMARY one (made from the service's
        own revision and network for a service that has none yet)."""
        cluster, service = d.group.cluster, d.group.service
        found = self._ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        primary = next((t for t in found.get("taskSets") or [] if t["status"] == "PRIMARY"), None)
        if primary is None:
            primary = self._ecs.create_task_set(
                cluster=cluster,
                service=service,
                taskDefinition=found["taskDefinition"],
                launchType="FARGATE",
                **_network_kwargs(found.get("networkConfiguration")),
                **(
                    {"platformVersion": found["platformVersion"]}
                    if found.get("platformVersion")
                    else {}
                ),
            )["taskSet"]
            self._ecs.update_service_primary_task_set(
                cluster=cluster, service=service, primaryTaskSet=primary["taskSetArn"]
            )
        d.original_task_set = primary["taskSetArn"]
        properties = d.appspec["Resources"][0]["TargetService"]["Properties"]
        network = (properties.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration")
        extra: dict[str, Any] = {}
        if network:
            extra["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": list(network["Subnets"]),
                    "securityGroups": list(network.get("SecurityGroups") or []),
                    "assignPublicIp": network.get("AssignPublicIp", "DISABLED"),
                }
            }
        else:
            extra.update(_network_kwargs(primary.get("networkConfiguration")))
        platform = properties.get("PlatformVersion") or primary.get("platformVersion")
        if platform:
            extra["platformVersion"] = platform
        # As CodeDeploy: the AppSpec's strategy, else the service's launch type.
        strategy = properties.get("CapacityProviderStrategy")
        if strategy:
            extra["capacityProviderStrategy"] = [
                {
                    "capacityProvider": p["CapacityProvider"],
                    "weight": p["Weight"],
                    "base": p["Base"],
                }
                for p in strategy
            ]
        else:
            extra["launchType"] = "FARGATE"
        d.replacement_task_set = self._ecs.create_task_set(
            cluster=cluster, service=service, taskDefinition=d.task_definition, **extra
        )["taskSet"]["taskSetArn"]

    # -- the CodeDeploy API (boto3 shapes)

    def _group(self, application: str, group: str, operation: str) -> Group:
        found = self.groups.get((application, group)) or self._moto_group(application, group)
        if found is None:
            raise client_error(
                "DeploymentGroupDoesNotExistException",
                f"No deployment group {group} in {application}",
                operation,
            )
        return found

    def _moto_group(self, application: str, group: str) -> Group | None:
        """A group created through moto's CreateDeploymentGroup (tests' usual set-up)."""
        from moto.backends import get_backend  # only where moto holds the groups

        region = self._ecs.meta.region_name
        backends = get_backend("codedeploy")
        for account in list(backends.keys()):
            groups = backends[account][region].deployment_groups
            found = groups.get(application, {}).get(group)
            if found is not None and found.ecs_services:
                target = found.ecs_services[0]
                return self.add_group(
                    application, group, target["clusterName"], target["serviceName"]
                )
        return None

    def create_deployment(
        self,
        applicationName: str,  # noqa: N803 - boto3's parameter names
        deploymentGroupName: str,  # noqa: N803
        revision: dict[str, Any],
        description: str = "",
        _validated: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        request = {
            "applicationName": applicationName,
            "deploymentGroupName": deploymentGroupName,
            "revision": revision,
            "description": description,
            **extra,
        }
        if not _validated:
            validate_request("CreateDeployment", request)
        if self.before_create is not None:
            self.before_create(request)
        with self._lock:
            group = self._group(applicationName, deploymentGroupName, "CreateDeployment")
            for d in self._deployments.values():
                if d.group == group:
                    self._advance(d)
                    if d.ended is None:
                        raise client_error(
                            "DeploymentLimitExceededException",
                            f"The Deployment Group '{deploymentGroupName}' already has an "
                            f"active Deployment '{d.deployment_id}'",
                            "CreateDeployment",
                        )
            spec = json.loads(revision["appSpecContent"]["content"])
            td = spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
            d = self._new(group, td, spec, description)
            self._task_sets(d)
            self._deployments[d.deployment_id] = d
            hook = self.on_create
        if hook is not None:
            hook({"deploymentId": d.deployment_id, "service": d.service, "taskDefinition": td})
        return {"deploymentId": d.deployment_id}

    def _new(
        self, group: Group, td: str, spec: dict[str, Any], description: str, creator: str = "user"
    ) -> Deployment:
        rollback = td == self._original_td.get(group.label)
        fails = creator == "user" and group.label in (
            self.failing_rollbacks if rollback else self.failing
        )
        life = group.lifecycle
        return Deployment(
            deployment_id=f"d-SIM{next(self._ids):06d}",
            group=group,
            task_definition=td,
            appspec=spec,
            description=description,
            created=self.clock.time(),
            lifecycle=life,
            creator=creator,
            fail_after=(life.install_seconds + life.shift_seconds) * self.fail_fraction
            if fails
            else None,
            alarm_after=self.alarms.get(group.label) if creator == "user" else None,
            held=group.label in self.held,
        )

    def automatic_rollback(self, service: str, task_definition: str) -> str:
        """CodeDeploy rolls `service` back on its own (an alarm, a failed deployment): a
        deployment of `task_definition` created by CodeDeploy, not through the API."""
        with self._lock:
            group = next(g for g in self.groups.values() if g.label == service)
            spec = {
                "Resources": [
                    {"TargetService": {"Properties": {"TaskDefinition": task_definition}}}
                ]
            }
            d = self._new(group, task_definition, spec, "", creator="codeDeployRollback")
            self._task_sets(d)
            self._deployments[d.deployment_id] = d
            return d.deployment_id

    def _get(self, deployment_id: str, operation: str) -> Deployment:
        d = self._deployments.get(deployment_id)
        if d is None:
            raise client_error(
                "DeploymentDoesNotExistException",
                f"The deployment {deployment_id} could not be found",
                operation,
            )
        self._advance(d)
        return d

    def get_deployment(self, deploymentId: str, _validated: bool = False) -> dict[str, Any]:  # noqa: N803
        if not _validated:
            validate_request("GetDeployment", {"deploymentId": deploymentId})
        with self._lock:
            return {"deploymentInfo": self._get(deploymentId, "GetDeployment").info()}

    def batch_get_deployments(
        self,
        deploymentIds: list[str],  # noqa: N803
        _validated: bool = False,
    ) -> dict[str, Any]:
        if not _validated:
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
        _validated: bool = False,
    ) -> dict[str, Any]:
        if not _validated:
            validate_request(
                "StopDeployment",
                {"deploymentId": deploymentId, "autoRollbackEnabled": autoRollbackEnabled},
            )
        with self._lock:
            d = self._get(deploymentId, "StopDeployment")
            if d.ended is not None:
                raise client_error(
                    "DeploymentAlreadyCompletedException",
                    f"The deployment {deploymentId} has already completed",
                    "StopDeployment",
                )
            if d.stop_requested is None:
                d.stop_requested, d.auto_rollback = self.clock.time(), autoRollbackEnabled
            return {"status": "Pending", "statusMessage": "Stopping the deployment"}

    def continue_deployment(
        self,
        deploymentId: str,  # noqa: N803
        deploymentWaitType: str = "READY_WAIT",  # noqa: N803
        _validated: bool = False,
    ) -> dict[str, Any]:
        """TERMINATION_WAIT ends a shifted deployment's termination wait now (it succeeds)."""
        if not _validated:
            validate_request(
                "ContinueDeployment",
                {"deploymentId": deploymentId, "deploymentWaitType": deploymentWaitType},
            )
        with self._lock:
            d = self._get(deploymentId, "ContinueDeployment")
            if d.ended is not None:
                raise client_error(
                    "DeploymentAlreadyCompletedException",
                    f"The deployment {deploymentId} has already completed",
                    "ContinueDeployment",
                )
            if deploymentWaitType != "TERMINATION_WAIT" or not d.in_termination_wait:
                raise client_error(
                    "DeploymentIsNotInReadyStateException",
                    f"The deployment {deploymentId} is not waiting for {deploymentWaitType}",
                    "ContinueDeployment",
                )
            d.continued_at = self.clock.time()
            self._advance(d)
            return {}

    def list_deployments(
        self,
        applicationName: str | None = None,  # noqa: N803
        deploymentGroupName: str | None = None,  # noqa: N803
        includeOnlyStatuses: list[str] | None = None,  # noqa: N803
        createTimeRange: dict[str, datetime.datetime] | None = None,  # noqa: N803
        nextToken: str | None = None,  # noqa: N803
        _validated: bool = False,
    ) -> dict[str, Any]:
        given = {
            "applicationName": applicationName,
            "deploymentGroupName": deploymentGroupName,
            "includeOnlyStatuses": includeOnlyStatuses,
            "createTimeRange": createTimeRange,
            "nextToken": nextToken,
        }
        if not _validated:
            validate_request("ListDeployments", {k: v for k, v in given.items() if v is not None})
        with self._lock:
            ids = []
            for d in sorted(self._deployments.values(), key=lambda x: x.created):
                self._advance(d)
                if applicationName and d.group.application != applicationName:
                    continue
                if deploymentGroupName and d.group.name != deploymentGroupName:
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
            offset = int(nextToken or 0)
            page = ids[offset : offset + self.page_size]
            response: dict[str, Any] = {"deployments": page}
            if offset + self.page_size < len(ids):
                response["nextToken"] = str(offset + self.page_size)
            return response


def _register_once(client: Any, event: str, handler: Callable[..., Any], name: str) -> None:
    """Register `handler`, replacing any simulator's earlier one on this client (a client
    answered by one simulator at a time)."""
    unique_id = f"ecs-delivery-simulator-{name}"
    client.meta.events.unregister(event, unique_id=unique_id)
    client.meta.events.register(event, handler, unique_id=unique_id)


def _lifecycle(value: Lifecycle | float) -> Lifecycle:
    return value if isinstance(value, Lifecycle) else Lifecycle(install_seconds=float(value))


def _network_kwargs(network: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"networkConfiguration": dict(network)} if network else {}


def create_group(codedeploy: Any, application: str, group: str, cluster: str, service: str) -> None:
    """A BLUE_GREEN ECS deployment group of `cluster`/`service` in moto (the application must
    exist); the simulator finds it there."""
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        ecsServices=[{"serviceName": service, "clusterName": cluster}],
    )


def switch_primary(ecs: Any, cluster: str, service: str, task_definition_arn: str) -> None:
    """What a finished blue/green leaves: `task_definition_arn` is the PRIMARY task set (for
    tests that set a service up as if a deployment had run)."""
    task_set = ecs.create_task_set(
        cluster=cluster, service=service, taskDefinition=task_definition_arn, launchType="FARGATE"
    )["taskSet"]
    ecs.update_service_primary_task_set(
        cluster=cluster, service=service, primaryTaskSet=task_set["taskSetArn"]
    )


@contextlib.contextmanager
def on_virtual_time(
    ecs: Any, *codedeploy: Any, lifecycle: Lifecycle | float = DEFAULT_LIFECYCLE, **options: Any
) -> Iterator[CodeDeploySim]:
    """A simulator answering the `codedeploy` clients, on a VirtualClock that the runtime's
    waiters use too inside the block: a deployment's hour passes in the time of its polls."""
    clock = VirtualClock()
    sim = CodeDeploySim(ecs, clock, lifecycle, **options)
    for client in codedeploy:
        sim.attach(client)
    sim.observe(ecs)
    with using(clock):
        yield sim

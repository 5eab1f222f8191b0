"""ECS service deployments on top of moto: the one double of ECS's own blue/green (issue 19).

moto 5.2 implements no ListServiceDeployments, DescribeServiceDeployments,
DescribeServiceRevisions or StopServiceDeployment, and finishes an UpdateService at once.
`EcsDeployments` answers those four from its own records and keeps every other call on the
moto client (task definitions, DescribeServices). Every request it answers is first checked
against botocore's ECS service model (unknown keys, types, missing members), as a Stubber would.

Like ECS, UpdateService points the service at the new revision at once and starts a service
deployment that stays IN_PROGRESS (the lock) until it finishes, bakes or fails; a rollback (a
stop, or a failure) points the service back at the source revision. It ends when a test says
(`finish`, `bake`, `roll_back`), or, given a `clock` and `seconds` (the release simulator),
`seconds(service)` after its creation: SUCCESSFUL, or rolled back part-way (`fail_fraction`
of it, as the CodeDeploy simulator) for a service in `failing`; never while it is `held`.

Two ways in, one model: wrap a moto client (the object itself answers, the tests of the ECS
engine), or `attach(client)` to answer a real boto3 client's calls (botocore has validated and
serialised each request; a recorder on that client sees them: the role proofs). The records
act on `moto`, which must then be another client than the attached one.

How it differs from ECS: no phases before the end but BAKE_TIME (set by `bake`), no lifecycle
hooks or alarms, no traffic; a stop rolls back at once.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

_MODEL = botocore.session.get_session().get_service_model("ecs")
_IN_PROGRESS = (
    "PENDING",
    "IN_PROGRESS",
    "STOP_REQUESTED",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
)
# Operation -> method: the calls `attach` answers (DescribeServices only lets time pass).
_ANSWERED = {
    "UpdateService": "update_service",
    "ListServiceDeployments": "list_service_deployments",
    "DescribeServiceDeployments": "describe_service_deployments",
    "DescribeServiceRevisions": "describe_service_revisions",
    "StopServiceDeployment": "stop_service_deployment",
}
_EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _validate(operation: str, params: dict[str, Any]) -> None:
    shape = _MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise AssertionError(f"{operation}: {report.generate_report()}")


def _as_datetime(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromtimestamp(float(value), tz=datetime.UTC)


@dataclass
class EcsDeployments:
    """The moto ECS client, plus ECS's service deployments (see the module docstring)."""

    moto: Any
    region: str
    account: str
    # With a clock, deployments end by themselves `seconds(service)` after their creation.
    clock: Any = None
    seconds: Callable[[str], float] | None = None
    failing: set[str] = field(default_factory=set)  # service names whose deployments fail
    fail_fraction: float = 0.5
    held: set[str] = field(default_factory=set)  # service names whose deployments never end
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)  # revision ARN -> task definition
    updates: list[dict[str, Any]] = field(default_factory=list)  # UpdateService requests
    stops: list[dict[str, Any]] = field(default_factory=list)
    # Run before an UpdateService reaches ECS (a race: another deployer gets there first).
    before_update: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    # Run with each new deployment once it exists (a test ends held ones at a chosen moment).
    on_create: Callable[[dict[str, Any]], None] | None = None
    _lock: Any = field(default_factory=threading.RLock, repr=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.moto, name)

    # --- what ECS does --------------------------------------------------------------

    def _now(self) -> float | None:
        return None if self.clock is None else float(self.clock.time())

    def _revision(self, cluster: str, service: str, task_definition: str) -> str:
        arn = (
            f"arn:aws:ecs:{self.region}:{self.account}:service-revision/{cluster}/{service}/"
            f"{len(self.revisions) + 1}"
        )
        self.revisions[arn] = task_definition
        return arn

    def _service_task_definition(self, cluster: str, service: str) -> str:
        described = self.moto.describe_services(cluster=cluster, services=[service])
        return described["services"][0]["taskDefinition"]

    def describe_services(self, **params: Any) -> dict[str, Any]:
        self.advance()
        return self.moto.describe_services(**params)  # type: ignore[no-any-return]

    def update_service(self, _validated: bool = False, **params: Any) -> dict[str, Any]:
        if not _validated:
            _validate("UpdateService", params)
        with self._lock:  # (reentrant: a hook may update a service itself)
            hooks, self.before_update = self.before_update, []
            for hook in hooks:  # one-shot: a hook's own update must not run it again
                hook(params)
            self.advance()
            cluster, service = params["cluster"], params["service"]
            source = self._service_task_definition(cluster, service)
            # ARNs name the cluster and service by name, whichever the request gave.
            cluster_name, service_name = cluster.split("/")[-1], service.split("/")[-1]
            self.updates.append(params)
            response = self.moto.update_service(
                cluster=cluster, service=service, taskDefinition=params["taskDefinition"]
            )
            number = len(self.deployments) + 1
            now = self._now()
            arn = (
                f"arn:aws:ecs:{self.region}:{self.account}:service-deployment/{cluster_name}/"
                f"{service_name}/dep{number}"
            )
            self.deployments[arn] = {
                "serviceDeploymentArn": arn,
                "serviceArn": f"arn:aws:ecs:{self.region}:{self.account}:service/{cluster_name}/"
                f"{service_name}",
                "clusterArn": f"arn:aws:ecs:{self.region}:{self.account}:cluster/{cluster_name}",
                "createdAt": _as_datetime(now)
                if now is not None
                else _EPOCH + datetime.timedelta(minutes=number),
                "sourceServiceRevisions": [
                    {"arn": self._revision(cluster_name, service_name, source)}
                ],
                "targetServiceRevision": {
                    "arn": self._revision(cluster_name, service_name, params["taskDefinition"])
                },
                "status": "IN_PROGRESS",
                "lifecycleStage": "PRE_SCALE_UP",
                "_cluster": cluster,
                "_service": service,
                "_source": source,
                "_created": now,
                "_ended": None,
            }
            if self.on_create is not None:
                self.on_create(self.deployments[arn])
            return response  # type: ignore[no-any-return]

    def list_service_deployments(self, _validated: bool = False, **params: Any) -> dict[str, Any]:
        if not _validated:
            _validate("ListServiceDeployments", params)
        self.advance()
        statuses = params.get("status") or []
        after = (params.get("createdAt") or {}).get("after")
        with self._lock:
            found = [
                {"serviceDeploymentArn": d["serviceDeploymentArn"], "status": d["status"]}
                for d in self.deployments.values()
                if params["service"] in (d["_service"], d["serviceArn"])
                and (not statuses or d["status"] in statuses)
                and (after is None or d["createdAt"] >= _as_datetime(after))
            ]
        return {"serviceDeployments": found}

    def describe_service_deployments(
        self, _validated: bool = False, **params: Any
    ) -> dict[str, Any]:
        if not _validated:
            _validate("DescribeServiceDeployments", params)
        self.advance()
        with self._lock:
            return {
                "serviceDeployments": [
                    {k: v for k, v in self.deployments[a].items() if not k.startswith("_")}
                    for a in params["serviceDeploymentArns"]
                    if a in self.deployments
                ],
                "failures": [],
            }

    def describe_service_revisions(self, _validated: bool = False, **params: Any) -> dict[str, Any]:
        if not _validated:
            _validate("DescribeServiceRevisions", params)
        return {
            "serviceRevisions": [
                {"serviceRevisionArn": a, "taskDefinition": self.revisions[a]}
                for a in params["serviceRevisionArns"]
                if a in self.revisions
            ],
            "failures": [],
        }

    def stop_service_deployment(self, _validated: bool = False, **params: Any) -> dict[str, Any]:
        if not _validated:
            _validate("StopServiceDeployment", params)
        with self._lock:
            self.advance()
            self.stops.append(params)
            deployment = self.deployments[params["serviceDeploymentArn"]]
            if deployment["status"] not in _IN_PROGRESS:
                raise ClientError(
                    {"Error": {"Code": "ConflictException", "Message": "deployment has ended"}},
                    "StopServiceDeployment",
                )
            self.roll_back(params["serviceDeploymentArn"], status="ROLLBACK_SUCCESSFUL")
        return {"serviceDeploymentArn": params["serviceDeploymentArn"]}

    # --- a real client answered here ------------------------------------------------

    def attach(self, client: Any) -> Any:
        """Answer `client`'s service-deployment calls (and its UpdateService) here; return it."""
        for operation in [*_ANSWERED, "DescribeServices"]:
            event = f"before-call.ecs.{operation}"
            unique_id = f"ecs-delivery-ecs-deployments-{operation}"
            client.meta.events.unregister(event, unique_id=unique_id)
            client.meta.events.register(event, self._answer, unique_id=unique_id)
        return client

    def _answer(self, model: Any, params: Mapping[str, Any], **_: Any) -> Any:
        if model.name not in _ANSWERED:  # DescribeServices: moto answers, after time passed
            self.advance()
            return None
        body = json.loads(params.get("body") or b"{}")
        try:
            parsed = getattr(self, _ANSWERED[model.name])(_validated=True, **body)
        except ClientError as error:
            return AWSResponse("https://ecs.simulated", 400, {}, None), error.response
        return AWSResponse("https://ecs.simulated", 200, {}, None), parsed

    # --- what the test makes happen -------------------------------------------------

    def in_progress(self) -> list[str]:
        return [a for a, d in self.deployments.items() if d["status"] in _IN_PROGRESS]

    def finish(self, arn: str | None = None) -> None:
        with self._lock:
            for key in [arn] if arn else self.in_progress():
                self.deployments[key].update(
                    status="SUCCESSFUL", lifecycleStage="CLEAN_UP", _ended=self._now()
                )

    def bake(self, arn: str) -> None:
        """Production runs the target; the source waits out the bake time."""
        self.deployments[arn].update(lifecycleStage="BAKE_TIME")

    def roll_back(self, arn: str, status: str = "ROLLBACK_SUCCESSFUL", reason: str = "") -> None:
        with self._lock:
            deployment = self.deployments[arn]
            deployment.update(status=status, statusReason=reason or "rolled back")
            deployment["_ended"] = self._now()
            self.moto.update_service(
                cluster=deployment["_cluster"],
                service=deployment["_service"],
                taskDefinition=deployment["_source"],
            )

    def advance(self) -> None:
        """On a clock: end every deployment whose time has come (see the module docstring)."""
        now = self._now()
        if now is None or self.seconds is None:
            return
        with self._lock:
            for arn in self.in_progress():
                d = self.deployments[arn]
                service = str(d["_service"])
                ends = self.seconds(service) * (
                    self.fail_fraction if service in self.failing else 1
                )
                if service in self.held or now < d["_created"] + ends:
                    continue
                if service in self.failing:
                    self.roll_back(arn, reason=f"simulated failure of {service}")
                else:
                    self.finish(arn)

    def finishing_sleep(self, clock: Any) -> Callable[[float], None]:
        """A sleep that lets ECS finish every deployment that is running (the waiter's poll)."""

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            self.finish()

        return sleep

    # --- observation ----------------------------------------------------------------

    def created_per_service(self) -> Counter[str]:
        return Counter(str(d["_service"]) for d in self.deployments.values())

    def max_in_flight(self) -> int:
        """The most deployments running at the same instant of the clock."""
        edges = []
        for d in self.deployments.values():
            end = d["_ended"] if d["_ended"] is not None else float("inf")
            edges += [(d["_created"], 1), (end, -1)]
        running = peak = 0
        for _, delta in sorted(edges):
            running += delta
            peak = max(peak, running)
        return peak

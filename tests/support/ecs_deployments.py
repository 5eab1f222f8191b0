"""ECS service deployments on top of moto, for the ECS engine's tests (issue 19).

moto 5.2 implements no ListServiceDeployments, DescribeServiceDeployments,
DescribeServiceRevisions or StopServiceDeployment, and finishes an UpdateService at once. This
wrapper answers those four from its own records and keeps every other call on the moto client
(task definitions, DescribeServices). Every request it answers is first checked against
botocore's ECS service model (unknown keys, types, missing members), as a Stubber would; the
exact requests of the engine are also asserted with a Stubber in tests/runtime/test_ecs_engine.py.

Like ECS, UpdateService points the service at the new revision at once and starts a service
deployment that stays IN_PROGRESS (the lock) until the test finishes, bakes or fails it; a
rollback (a stop, or a failure) points the service back at the source revision.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto import mock_aws

from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.taskdef import describe, images_of, register_request
from tests.support.moto_world import (
    ACCOUNT,
    CLUSTER,
    CONTAINER,
    FAMILY,
    REGION,
    SERVICE,
    task_definition_spec,
)

_MODEL = botocore.session.get_session().get_service_model("ecs")
_IN_PROGRESS = (
    "PENDING",
    "IN_PROGRESS",
    "STOP_REQUESTED",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
)


def _validate(operation: str, params: dict[str, Any]) -> None:
    shape = _MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise AssertionError(f"{operation}: {report.generate_report()}")


@dataclass
class EcsDeployments:
    """The moto ECS client, plus ECS's service deployments (see the module docstring)."""

    moto: Any
    region: str
    account: str
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)  # revision ARN -> task definition
    updates: list[dict[str, Any]] = field(default_factory=list)  # UpdateService requests
    stops: list[dict[str, Any]] = field(default_factory=list)
    # Run before an UpdateService reaches ECS (a race: another deployer gets there first).
    before_update: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.moto, name)

    # --- what ECS does --------------------------------------------------------------

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

    def update_service(self, **params: Any) -> dict[str, Any]:
        _validate("UpdateService", params)
        hooks, self.before_update = self.before_update, []
        for hook in hooks:  # one-shot: a hook's own update must not run it again
            hook(params)
        cluster, service = params["cluster"], params["service"]
        source = self._service_task_definition(cluster, service)
        self.updates.append(params)
        response = self.moto.update_service(
            cluster=cluster, service=service, taskDefinition=params["taskDefinition"]
        )
        number = len(self.deployments) + 1
        arn = (
            f"arn:aws:ecs:{self.region}:{self.account}:service-deployment/{cluster}/{service}/"
            f"dep{number}"
        )
        self.deployments[arn] = {
            "serviceDeploymentArn": arn,
            "serviceArn": f"arn:aws:ecs:{self.region}:{self.account}:service/{cluster}/{service}",
            "clusterArn": f"arn:aws:ecs:{self.region}:{self.account}:cluster/{cluster}",
            "createdAt": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
            + datetime.timedelta(minutes=number),
            "sourceServiceRevisions": [{"arn": self._revision(cluster, service, source)}],
            "targetServiceRevision": {
                "arn": self._revision(cluster, service, params["taskDefinition"])
            },
            "status": "IN_PROGRESS",
            "lifecycleStage": "PRE_SCALE_UP",
            "_cluster": cluster,
            "_service": service,
            "_source": source,
        }
        return response

    def list_service_deployments(self, **params: Any) -> dict[str, Any]:
        _validate("ListServiceDeployments", params)
        statuses = params.get("status") or []
        found = [
            {"serviceDeploymentArn": d["serviceDeploymentArn"], "status": d["status"]}
            for d in self.deployments.values()
            if params["service"] in (d["_service"], d["serviceArn"])
            and (not statuses or d["status"] in statuses)
        ]
        return {"serviceDeployments": found}

    def describe_service_deployments(self, **params: Any) -> dict[str, Any]:
        _validate("DescribeServiceDeployments", params)
        return {
            "serviceDeployments": [
                {k: v for k, v in self.deployments[a].items() if not k.startswith("_")}
                for a in params["serviceDeploymentArns"]
                if a in self.deployments
            ],
            "failures": [],
        }

    def describe_service_revisions(self, **params: Any) -> dict[str, Any]:
        _validate("DescribeServiceRevisions", params)
        return {
            "serviceRevisions": [
                {"serviceRevisionArn": a, "taskDefinition": self.revisions[a]}
                for a in params["serviceRevisionArns"]
                if a in self.revisions
            ],
            "failures": [],
        }

    def stop_service_deployment(self, **params: Any) -> dict[str, Any]:
        _validate("StopServiceDeployment", params)
        self.stops.append(params)
        deployment = self.deployments[params["serviceDeploymentArn"]]
        if deployment["status"] not in _IN_PROGRESS:
            raise ClientError(
                {"Error": {"Code": "ConflictException", "Message": "deployment has ended"}},
                "StopServiceDeployment",
            )
        self.roll_back(params["serviceDeploymentArn"], status="ROLLBACK_SUCCESSFUL")
        return {"serviceDeploymentArn": params["serviceDeploymentArn"]}

    # --- what the test makes happen -------------------------------------------------

    def in_progress(self) -> list[str]:
        return [a for a, d in self.deployments.items() if d["status"] in _IN_PROGRESS]

    def finish(self, arn: str | None = None) -> None:
        for key in [arn] if arn else self.in_progress():
            self.deployments[key].update(status="SUCCESSFUL", lifecycleStage="CLEAN_UP")

    def bake(self, arn: str) -> None:
        """Production runs the target; the source waits out the bake time."""
        self.deployments[arn].update(lifecycleStage="BAKE_TIME")

    def roll_back(self, arn: str, status: str = "ROLLBACK_SUCCESSFUL", reason: str = "") -> None:
        deployment = self.deployments[arn]
        deployment.update(status=status, statusReason=reason or "rolled back")
        self.moto.update_service(
            cluster=deployment["_cluster"],
            service=deployment["_service"],
            taskDefinition=deployment["_source"],
        )

    def finishing_sleep(self, clock: Any) -> Callable[[float], None]:
        """A sleep that lets ECS finish every deployment that is running (the waiter's poll)."""

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            self.finish()

        return sleep


@pytest.fixture
def ecs(aws_env: None) -> Any:
    """A cluster with one Fargate service on the ECS controller, and ECS's deployments."""
    with mock_aws():
        moto = client("ecs", boto3.Session(region_name=REGION))
        moto.create_cluster(clusterName=CLUSTER)
        first = moto.register_task_definition(**task_definition_spec(family=FAMILY))[
            "taskDefinition"
        ]["taskDefinitionArn"]
        moto.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=first,
            desiredCount=2,
            launchType="FARGATE",
            # No network here: moto would look the subnets up; every request names its own.
            deploymentController={"type": "ECS"},
        )
        yield EcsDeployments(moto=moto, region=REGION, account=ACCOUNT)


def running(ecs) -> str:
    return ecs.moto.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0][
        "taskDefinition"
    ]


def image_running(ecs) -> str:
    return images_of(describe(ecs, running(ecs))["taskDefinition"])[CONTAINER]


def memory_running(ecs) -> str:
    return describe(ecs, running(ecs))["taskDefinition"]["memory"]


def ship(ecs, image: str) -> str:
    """The pipeline: the running revision with a new image, deployed and finished."""
    current = describe(ecs, running(ecs))["taskDefinition"]
    arn = ecs.register_task_definition(**register_request(current, {CONTAINER: image}))[
        "taskDefinition"
    ]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=arn)
    ecs.finish()
    return arn


def template(ecs, memory: str = "1024") -> str:
    """What `pulumi up` registers: every Pulumi-owned field, the declared (bootstrap) image."""
    return ecs.register_task_definition(**task_definition_spec(memory=memory))["taskDefinition"][
        "taskDefinitionArn"
    ]

"""CodeDeploy's ECS blue/green where moto stops short, as hooks on real moto clients.

moto accepts CreateDeployment but keeps every deployment `Created` and has no StopDeployment.
`SimulatedCodeDeploy.attach(codedeploy)` adds, on that one client:

- a deployment completes when it is first polled (GetDeployment, BatchGetDeployments): its AppSpec's revision
  becomes the service's PRIMARY task set and the deployment `Succeeded`, as a finished
  blue/green leaves it;
- StopDeployment is answered here (before any request is sent): the deployment is `Stopped`
  and traffic never moved;
- `before_create(params)` runs just before each CreateDeployment is sent, so a test can land
  another deployer's change in the last moment before the lock is taken.

Everything else (ListDeployments, RegisterTaskDefinition, DescribeServices...) is moto's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.backends import get_backend


def switch_primary(ecs: Any, cluster: str, service: str, task_definition_arn: str) -> None:
    """What a finished blue/green leaves: `task_definition_arn` is the PRIMARY task set."""
    task_set = ecs.create_task_set(
        cluster=cluster, service=service, taskDefinition=task_definition_arn, launchType="FARGATE"
    )["taskSet"]
    ecs.update_service_primary_task_set(
        cluster=cluster, service=service, primaryTaskSet=task_set["taskSetArn"]
    )


def create_group(codedeploy: Any, application: str, group: str, cluster: str, service: str) -> None:
    """A BLUE_GREEN ECS deployment group of `cluster`/`service` (the application must exist)."""
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


def appspec_of(deployment: Any) -> dict[str, Any]:
    return json.loads(deployment.revision["appSpecContent"]["content"])


@dataclass
class SimulatedCodeDeploy:
    ecs: Any
    account: str
    region: str
    before_create: Callable[[dict[str, Any]], None] = lambda params: None
    # Deployment ids in the order they were stopped / completed.
    stopped: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)

    def deployments(self) -> dict[str, Any]:
        return get_backend("codedeploy")[self.account][self.region].deployments

    def attach(self, codedeploy: Any) -> Any:
        events = codedeploy.meta.events
        events.register("before-call.codedeploy.CreateDeployment", self._create)
        events.register("before-call.codedeploy.GetDeployment", self._poll)
        events.register("before-call.codedeploy.BatchGetDeployments", self._poll_many)
        events.register("before-call.codedeploy.StopDeployment", self._stop)
        return codedeploy

    def _create(self, params: dict[str, Any], **_: Any) -> None:
        self.before_create(json.loads(params["body"]))

    def _poll(self, params: dict[str, Any], **_: Any) -> None:
        self._complete(json.loads(params["body"])["deploymentId"])

    def _poll_many(self, params: dict[str, Any], **_: Any) -> None:
        for deployment_id in json.loads(params["body"])["deploymentIds"]:
            self._complete(deployment_id)

    def _complete(self, deployment_id: str) -> None:
        deployment = self.deployments().get(deployment_id)
        if deployment is None or deployment.status != "Created":
            return
        target = deployment.deployment_group.ecs_services[0]
        properties = appspec_of(deployment)["Resources"][0]["TargetService"]["Properties"]
        switch_primary(
            self.ecs, target["clusterName"], target["serviceName"], properties["TaskDefinition"]
        )
        deployment.status = "Succeeded"
        self.completed.append(deployment.deployment_id)

    def _stop(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        deployment_id = json.loads(params["body"])["deploymentId"]
        self.deployments()[deployment_id].status = "Stopped"
        self.stopped.append(deployment_id)
        return AWSResponse("https://codedeploy", 200, {}, None), {"status": "Succeeded"}

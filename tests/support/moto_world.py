"""The moto world of the deployment tests: constants, a fake clock, a registered service
(the runtime tests and the rollout provider's tests use it through their conftest)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws

from ecs_delivery.offline.codedeploy_sim import switch_primary
from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.taskdef import register_request

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CLUSTER = "dev-cluster"
SERVICE = "dev-web"
FAMILY = "dev-web"
CONTAINER = "app"
PORT = 8080
APPLICATION = "dev-web"
GROUP = "dev-web"
BOOTSTRAP_IMAGE = "public.ecr.aws/nginx/nginx:stable"
PIPELINE_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@sha256:{'b' * 64}"

# What Pulumi's aws.ecs.TaskDefinition registers for the service (image aside).
BASE_TASK_DEFINITION: dict[str, Any] = {
    "family": FAMILY,
    "cpu": "256",
    "memory": "512",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/dev-web-execution",
    "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/dev-web-task",
    "containerDefinitions": [
        {
            "name": CONTAINER,
            "image": BOOTSTRAP_IMAGE,
            "essential": True,
            "portMappings": [{"containerPort": PORT, "protocol": "tcp"}],
            "environment": [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "APP_ENV", "value": "dev"},
            ],
            "secrets": [
                {
                    "name": "DB_PASSWORD",
                    "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf",
                }
            ],
            "readonlyRootFilesystem": True,
            "user": "1000",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": "/ecs/dev-web",
                    "awslogs-region": REGION,
                    "awslogs-stream-prefix": "web",
                },
            },
        }
    ],
}


TEMPLATE_FAMILY = f"{FAMILY}-template"


def task_definition_spec(
    image: str = BOOTSTRAP_IMAGE, memory: str = "512", family: str = TEMPLATE_FAMILY
) -> dict[str, Any]:
    """RegisterTaskDefinition kwargs as the Pulumi program sends them for its template."""
    spec = copy.deepcopy(BASE_TASK_DEFINITION)
    spec["family"] = family
    spec["memory"] = memory
    spec["containerDefinitions"][0]["image"] = image
    return spec


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake credentials and region; no shell profile or config file can leak in."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class FakeClock:
    """A monotonic clock that only moves when sleep() is called; records every sleep."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        """As a runtime Clock (the CodeDeploy simulator runs on it too)."""
        return self.now

    def real_seconds(self, seconds: float) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class World:
    """One environment in moto: a cluster, a CODE_DEPLOY service and its deployment group.

    Tests read names from here (conftest modules cannot be imported under importlib mode).
    """

    account: ClassVar[str] = ACCOUNT
    region: ClassVar[str] = REGION
    cluster: ClassVar[str] = CLUSTER
    service: ClassVar[str] = SERVICE
    family: ClassVar[str] = FAMILY
    template_family: ClassVar[str] = TEMPLATE_FAMILY
    container: ClassVar[str] = CONTAINER
    port: ClassVar[int] = PORT
    application: ClassVar[str] = APPLICATION
    group: ClassVar[str] = GROUP
    bootstrap_image: ClassVar[str] = BOOTSTRAP_IMAGE
    pipeline_image: ClassVar[str] = PIPELINE_IMAGE
    spec = staticmethod(task_definition_spec)

    ecs: Any
    codedeploy: Any
    first_revision: str

    def running(self) -> str:
        service = self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
        primary = [t for t in service["taskSets"] if t["status"] == "PRIMARY"]
        return primary[0]["taskDefinition"] if primary else service["taskDefinition"]

    def pulumi_registers(self, image: str = BOOTSTRAP_IMAGE, memory: str = "512") -> str:
        """What `pulumi up` does through aws.ecs.TaskDefinition: register the template (every
        Pulumi-owned field; the declared image) in the template family."""
        spec = task_definition_spec(image=image, memory=memory)
        return self.ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]

    def codedeploy_switches_to(self, task_definition_arn: str) -> None:
        """What a finished blue/green deployment leaves behind: a PRIMARY task set on the
        new revision (CreateTaskSet is refused by AWS for CODE_DEPLOY services; moto allows
        it, which lets the test put the service in the state CodeDeploy would)."""
        switch_primary(self.ecs, CLUSTER, SERVICE, task_definition_arn)

    def pipeline_ships(self, image: str) -> str:
        """The pipeline: copy the running revision with a new image into the service's family,
        deploy it blue/green."""
        described = self.ecs.describe_task_definition(taskDefinition=self.running())
        request = register_request(described["taskDefinition"], {CONTAINER: image})
        arn = self.ecs.register_task_definition(**{**request, "family": FAMILY})["taskDefinition"][
            "taskDefinitionArn"
        ]
        self.codedeploy_switches_to(arn)
        return arn

    def revisions(self) -> list[str]:
        """Revisions of the service's own family (the template family aside)."""
        arns = self.ecs.list_task_definitions(familyPrefix=FAMILY, sort="ASC")["taskDefinitionArns"]
        return [arn for arn in arns if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == FAMILY]

    def deployments(self) -> list[str]:
        return self.codedeploy.list_deployments(
            applicationName=APPLICATION, deploymentGroupName=GROUP
        )["deployments"]

    def appspec_of(self, deployment_id: str) -> str:
        info = self.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info["revision"]["appSpecContent"]["content"]


@pytest.fixture
def world(aws_env: None) -> Iterator[World]:
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        ecs = client("ecs", session)
        codedeploy = client("codedeploy", session)
        ecs.create_cluster(clusterName=CLUSTER)
        first = ecs.register_task_definition(**task_definition_spec())["taskDefinition"][
            "taskDefinitionArn"
        ]
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=first,
            desiredCount=2,
            launchType="FARGATE",
            deploymentController={"type": "CODE_DEPLOY"},
        )
        codedeploy.create_application(applicationName=APPLICATION, computePlatform="ECS")
        codedeploy.create_deployment_group(
            applicationName=APPLICATION,
            deploymentGroupName=GROUP,
            serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/dev-codedeploy",
            deploymentStyle={
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            },
            ecsServices=[{"serviceName": SERVICE, "clusterName": CLUSTER}],
            autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        )
        yield World(ecs=ecs, codedeploy=codedeploy, first_revision=first)

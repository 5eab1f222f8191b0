"""The ECS engine's tests' world: one service on the ECS controller in moto, with ECS's
service deployments (the one double, src/ecs_delivery/offline/ecs_deployments.py: moto 5.2
has none). The exact requests of the engine are also asserted with a Stubber in
tests/runtime/test_ecs_engine.py.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecs_delivery.offline.ecs_deployments import EcsDeployments
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

"""Fixtures for the build-time tests: fake credentials, moto, and a deployed service."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

# Importlib import mode puts neither the project root nor this folder on sys.path.
for _path in (Path(__file__).resolve().parents[3], Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from buildtest_support import CLUSTER, REGION, SERVICE, Deployed, register  # noqa: E402


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def ecs(aws: None) -> Any:
    return boto3.client("ecs", region_name=REGION)


@pytest.fixture
def ecr(aws: None) -> Any:
    return boto3.client("ecr", region_name=REGION)


@pytest.fixture
def s3(aws: None) -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def deployed(ecs: Any) -> Deployed:
    """A Fargate service with a CODE_DEPLOY controller, as `pulumi up` leaves it."""
    ecs.create_cluster(clusterName=CLUSTER)
    arn = register(ecs)
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition=arn,
        desiredCount=1,
        launchType="FARGATE",
        deploymentController={"type": "CODE_DEPLOY"},
    )
    return Deployed(cluster=CLUSTER, service=SERVICE, task_definition_arn=arn)

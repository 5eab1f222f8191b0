"""Shared values and helpers of the build-time tests (moto account, service, images)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CLUSTER = "dev"
SERVICE = "dev-web"
FAMILY = "dev-web"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/dev-web-execution"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/dev-web-task"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dev/web/db-AbCdEf"
LIVE_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@sha256:" + "1" * 64
SIDECAR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"


def container_definitions(image: str = LIVE_IMAGE, memory: int = 512) -> list[dict[str, Any]]:
    """What Pulumi registers: the app container with every owned setting, plus a sidecar."""
    return [
        {
            "name": "app",
            "image": image,
            "essential": True,
            "memory": memory,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "environment": [{"name": "LOG_LEVEL", "value": "info"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}],
            "readonlyRootFilesystem": True,
            "user": "1000",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": "/ecs/dev/web",
                    "awslogs-region": REGION,
                    "awslogs-stream-prefix": "app",
                },
            },
        },
        {"name": "otel", "image": SIDECAR_IMAGE, "essential": False},
    ]


def register(ecs: Any, *, cpu: str = "256", memory: str = "1024", **overrides: Any) -> str:
    response = ecs.register_task_definition(
        family=FAMILY,
        cpu=cpu,
        memory=memory,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        executionRoleArn=EXECUTION_ROLE,
        taskRoleArn=TASK_ROLE,
        containerDefinitions=overrides.pop("containers", container_definitions()),
        **overrides,
    )
    return response["taskDefinition"]["taskDefinitionArn"]


@dataclass(frozen=True)
class Deployed:
    cluster: str
    service: str
    task_definition_arn: str


def push_image(ecr: Any, repository: str, tag: str, *, layer_seed: str = "layer") -> str:
    """Put an image manifest in (moto's) ECR under `tag`; return the digest ECR reports."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1234,
                "digest": "sha256:" + hashlib.sha256(layer_seed.encode()).hexdigest(),
            },
            # moto derives the image digest from the layer digests: vary them per image.
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 100,
                    "digest": "sha256:"
                    + hashlib.sha256(f"{layer_seed}:{tag}".encode()).hexdigest(),
                }
            ],
        }
    )
    response = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    return response["image"]["imageId"]["imageDigest"]


def repository_url(name: str) -> str:
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"

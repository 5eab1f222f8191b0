"""delivery.taskdef: effective content, comparison, and re-registration with new images."""

from __future__ import annotations

import copy
import datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator

from delivery.taskdef import (
    effective_content,
    images_of,
    register_request,
    register_with_images,
    same_content,
)

# A DescribeTaskDefinition `taskDefinition` as AWS returns it, identity fields included.
DESCRIBED = {
    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7",
    "family": "web",
    "revision": 7,
    "status": "ACTIVE",
    "registeredAt": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "registeredBy": "arn:aws:sts::123456789012:assumed-role/codebuild/build",
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.ecr-auth"}],
    "compatibilities": ["EC2", "FARGATE"],
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/web-execution",
    "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
    "volumes": [],
    "placementConstraints": [],
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "containerDefinitions": [
        {
            "name": "app",
            "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:" + "a" * 64,
            "cpu": 0,
            "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
            "environment": [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "APP_ENV", "value": "dev"},
            ],
            "secrets": [
                {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/db"}
            ],
            "mountPoints": [],
            "volumesFrom": [],
            "readonlyRootFilesystem": True,
            "user": "1000",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/web", "awslogs-region": "eu-west-1"},
            },
        },
        {
            "name": "envoy",
            "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29",
            "essential": False,
            "environment": [],
        },
    ],
}


def register_shape():
    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def validation_errors(params: dict) -> str:
    report = ParamValidator().validate(params, register_shape())
    return report.generate_report() if report.has_errors() else ""


def another_revision(**changes) -> dict:
    revision = copy.deepcopy(DESCRIBED)
    revision.update(
        taskDefinitionArn="arn:aws:ecs:eu-west-1:123456789012:task-definition/web:8",
        revision=8,
        registeredAt=datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC),
        registeredBy="arn:aws:sts::123456789012:assumed-role/pulumi/up",
    )
    revision.update(changes)
    return revision


def test_register_request_is_a_valid_register_task_definition_call():
    request = register_request(
        DESCRIBED, {"app": "web:8"}, tags={"service": "web", "managed-by": "ecs-delivery"}
    )

    assert validation_errors(request) == ""
    assert request["tags"] == [
        {"key": "managed-by", "value": "ecs-delivery"},
        {"key": "service", "value": "web"},
    ]


def test_described_task_definition_itself_is_not_a_valid_register_call():
    # The validator is strict enough to catch identity fields: the test above can fail.
    errors = validation_errors(dict(DESCRIBED))

    assert "taskDefinitionArn" in errors
    assert "registeredAt" in errors


def test_register_request_replaces_only_the_named_container_image():
    request = register_request(DESCRIBED, {"app": "web:8"})

    assert images_of(request) == {
        "app": "web:8",
        "envoy": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29",
    }
    assert request["memory"] == "512"
    assert (
        request["containerDefinitions"][0]["secrets"]
        == DESCRIBED["containerDefinitions"][0]["secrets"]
    )
    assert request["containerDefinitions"][1]["essential"] is False
    assert "revision" not in request and "taskDefinitionArn" not in request


def test_register_request_keeps_images_when_none_are_given():
    assert images_of(register_request(DESCRIBED)) == images_of(DESCRIBED)


def test_register_request_names_an_unknown_container_and_the_known_ones():
    with pytest.raises(ValueError) as raised:
        register_request(DESCRIBED, {"worker": "web:8"})

    assert str(raised.value) == (
        "images: container 'worker' is not in task definition family 'web'; "
        "known containers: app, envoy"
    )


def test_register_request_rejects_an_empty_image():
    with pytest.raises(ValueError, match="images.app: '' is not an image reference"):
        register_request(DESCRIBED, {"app": ""})


def test_effective_content_ignores_arn_revision_and_registration_fields():
    assert same_content(DESCRIBED, another_revision())
    assert "taskDefinitionArn" not in effective_content(DESCRIBED)
    assert "compatibilities" not in effective_content(DESCRIBED)


def test_effective_content_ignores_environment_order_and_empty_lists():
    reordered = another_revision()
    app = reordered["containerDefinitions"][0]
    app["environment"].reverse()
    del app["mountPoints"]
    reordered["containerDefinitions"].reverse()

    assert same_content(DESCRIBED, reordered)


@pytest.mark.parametrize(
    "change",
    [
        {"memory": "1024"},
        {"cpu": "512"},
        {"taskRoleArn": "arn:aws:iam::123456789012:role/other"},
    ],
)
def test_effective_content_sees_task_level_changes(change):
    assert not same_content(DESCRIBED, another_revision(**change))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image", "web:9"),
        ("environment", [{"name": "LOG_LEVEL", "value": "debug"}]),
        ("secrets", []),
        ("readonlyRootFilesystem", False),
        ("cpu", 128),
    ],
)
def test_effective_content_sees_container_changes(field, value):
    changed = another_revision()
    changed["containerDefinitions"][0][field] = value

    assert not same_content(DESCRIBED, changed)


def test_register_with_images_registers_one_copy_with_the_new_image_and_tags(world):
    world.ecs.tag_resource(
        resourceArn=world.first_revision, tags=[{"key": "service", "value": world.service}]
    )

    arn = register_with_images(world.ecs, world.first_revision, {world.container: "web:2"})

    assert world.revisions() == [world.first_revision, arn]
    described = world.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert images_of(described["taskDefinition"]) == {world.container: "web:2"}
    assert described["tags"] == [{"key": "service", "value": world.service}]
    first = world.ecs.describe_task_definition(taskDefinition=world.first_revision)
    restored = register_request(
        described["taskDefinition"], {world.container: world.bootstrap_image}
    )
    assert effective_content(restored) == effective_content(first["taskDefinition"])


def test_register_with_images_refuses_unknown_container_before_registering(world):
    with pytest.raises(ValueError, match="known containers: app"):
        register_with_images(world.ecs, world.first_revision, {"sidecar": "x:1"})

    assert world.revisions() == [world.first_revision]


def test_register_request_built_from_a_moto_description_validates_offline(world):
    described = world.ecs.describe_task_definition(taskDefinition=world.first_revision)

    request = register_request(described["taskDefinition"], {world.container: "web:3"})

    assert validation_errors(request) == ""

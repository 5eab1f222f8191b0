"""ecs_delivery.runtime.taskdef: effective content, comparison, and re-registration with new images."""

from __future__ import annotations

import copy
import datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator

from ecs_delivery.runtime.taskdef import (
    effective_content,
    images_of,
    overlay_owned,
    register_request,
    same_content,
    same_content_in_any_family,
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


def test_overlay_takes_every_field_from_the_template_and_the_image_from_what_runs():
    template = another_revision()
    template["memory"] = "4096"
    template["containerDefinitions"][0]["image"] = "public.ecr.aws/nginx/nginx:bootstrap"
    template["family"] = "web-template"
    running = another_revision()
    shipped = "registry/app@sha256:" + "c" * 64
    running["containerDefinitions"][0]["image"] = shipped

    merged = overlay_owned(template, running, family="web")

    assert merged["family"] == "web"
    assert merged["memory"] == "4096"
    assert images_of(merged) == {**images_of(running), "app": shipped}
    assert not same_content_in_any_family(merged, running)  # the memory differs
    assert validation_errors(merged) == ""


def test_overlay_deploys_a_named_image_and_refuses_an_unknown_container():
    pinned = "registry/app@sha256:" + "b" * 64

    merged = overlay_owned(DESCRIBED, another_revision(), family="f", images={"app": pinned})

    assert images_of(merged)["app"] == pinned
    with pytest.raises(ValueError, match="sidecar not in the template"):
        overlay_owned(DESCRIBED, another_revision(), family="f", images={"sidecar": pinned})


def test_same_content_in_any_family_ignores_only_the_family():
    assert same_content_in_any_family(DESCRIBED, {**another_revision(), "family": "web-template"})
    assert not same_content_in_any_family(DESCRIBED, another_revision(memory="1024"))


def test_register_request_built_from_a_moto_description_validates_offline(world):
    described = world.ecs.describe_task_definition(taskDefinition=world.first_revision)

    request = register_request(described["taskDefinition"], {world.container: "web:3"})

    assert validation_errors(request) == ""


def test_the_first_ship_drops_the_bootstrap_entry_point_with_the_bootstrap_image():
    """Issue 16 (found with the bootstrap of problem 1): a ship copies every field of what
    runs, so the first one carried busybox's generated `sh -c ... httpd` entry point onto the
    app's image and crash-looped. The entry point belongs to the bootstrap image alone."""
    from ecs_delivery.runtime.taskdef import BOOTSTRAP_LABEL, overlay_owned, register_request

    bootstrapping = {
        "family": "dev-web",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "public.ecr.aws/docker/library/busybox:1.36",
                "entryPoint": ["sh", "-c", "httpd -f -p 8080"],
                "dockerLabels": {BOOTSTRAP_LABEL: "service", "team": "web"},
            },
            {"name": "sidecar", "image": "envoy:1", "entryPoint": ["/envoy"]},
        ],
    }
    app = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:" + "a" * 64

    for request in (
        register_request(bootstrapping, {"web": app}),
        overlay_owned(bootstrapping, bootstrapping, family="dev-web", images={"web": app}),
    ):
        web, sidecar = request["containerDefinitions"]
        assert web["image"] == app and "entryPoint" not in web
        assert web["dockerLabels"] == {"team": "web"}
        assert sidecar["entryPoint"] == ["/envoy"]  # not a bootstrap: kept

    # While the bootstrap image stays, so does its entry point.
    kept = register_request(bootstrapping, {})["containerDefinitions"][0]
    assert kept["entryPoint"] == ["sh", "-c", "httpd -f -p 8080"]

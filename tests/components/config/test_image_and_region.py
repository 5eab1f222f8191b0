"""Issue 16, problem 4: malformed image references and unknown regions were accepted."""

from __future__ import annotations

import pytest

from ecs_delivery.components import config
from ecs_delivery.components.config import ConfigError
from tests.conftest import make_plan

SOURCE = {"source": {"provider": "codecommit", "repository": "app"}}
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/web"


def _problems(**service) -> list[str]:
    raw = {"services": {"web": {"containerPort": 8080, **service}}, "pipeline": SOURCE}
    with pytest.raises(ConfigError) as error:
        config.parse(raw)
    return error.value.problems


@pytest.mark.parametrize(
    ("key", "image", "reason"),
    [
        (
            "image",
            "nginx:1.27:alpine@sha256:zz",
            "digest 'sha256:zz' is not sha256:<64 hex digits>",
        ),
        ("image", "nginx:1.27:alpine", "repository 'nginx:1.27' is not"),
        ("bootstrapImage", "MyRepo/Admin@sha256:abc", "repository 'Admin' is not"),
        ("bootstrapImage", "nginx:" + "t" * 129, "tag 'tttt"),
        ("image", "nginx:-bad", "tag '-bad' is not"),
    ],
)
def test_a_malformed_image_reference_is_refused_naming_its_key(key, image, reason):
    (problem,) = _problems(**{key: image})
    assert problem.startswith(f"services.web.{key}: {image!r} is not an image reference: ")
    assert reason in problem
    assert problem.endswith("use [registry/]repository[:tag][@sha256:<64 hex digits>]")


def test_a_scheduled_tasks_image_is_checked_too():
    raw = {
        "services": {"web": {"containerPort": 8080}},
        "scheduledTasks": {"job": {"schedule": "rate(1 hour)", "command": ["x"], "image": "A:b"}},
        "pipeline": SOURCE,
    }
    with pytest.raises(ConfigError) as error:
        config.parse(raw)
    assert error.value.problems[0].startswith("scheduledTasks.job.image: 'A:b' is not an image")


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "public.ecr.aws/docker/library/busybox:1.36",
        f"{ECR}@sha256:{'a' * 64}",
        f"{ECR}:3f9c2a1@sha256:{'0' * 64}",
        "localhost:5000/team/app_x__y.z-w:v1.2_3",
        "registry.example.com:443/a/b/c:latest",
    ],
)
def test_valid_image_references_are_accepted(image):
    parsed = config.parse(
        {"services": {"web": {"containerPort": 8080, "image": image}}, "pipeline": SOURCE}
    )
    assert parsed.services["web"].image == image


def test_an_unknown_region_is_refused_with_the_way_to_allow_a_new_one():
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"aws:region": "eu-west-9"})
    (problem,) = error.value.problems
    assert problem.startswith("aws:region: 'eu-west-9' is not a region botocore ")
    assert "did you mean 'eu-west-" in problem
    assert "ecs-delivery:allowedRegions: [eu-west-9]" in problem


def test_a_region_listed_in_allowed_regions_is_planned():
    plan = make_plan("dev", overrides={"aws:region": "eu-west-9", "allowedRegions": ["eu-west-9"]})
    assert plan.outputs["clusterName"]
    assert any(":eu-west-9:" in str(r.inputs) for r in plan.resources)


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", "eu-west-1"])
def test_regions_of_every_partition_are_known(region):
    assert config.region_problems(region, []) == []


def test_a_key_under_a_misspelled_namespace_is_refused_with_the_key_it_meant():
    """Issue 16, problem 4: `ecs-delivry:logRetentionDays` was silently ignored."""
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"ecs-delivry:logRetentionDays": 7})
    assert error.value.problems == [
        "ecs-delivry:logRetentionDays: no namespace 'ecs-delivry' is read by this program; "
        "did you mean ecs-delivery:logRetentionDays?"
    ]


def test_a_misspelled_aws_key_gets_a_suggestion():
    """Issue 16, problem 4: `aws:regoin` got "aws:region: required" and no suggestion."""
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"aws:regoin": "eu-west-1"})
    assert error.value.problems == [
        "aws:regoin: not a setting of the aws provider; did you mean aws:region?"
    ]


def test_other_namespaces_and_every_aws_provider_setting_are_left_alone():
    plan = make_plan(
        "dev",
        overrides={"random:seed": "1", "aws:skipRequestingAccountId": True, "aws:profile": "x"},
    )
    assert plan.outputs["clusterName"]

"""ecs_delivery.runtime.build: image tags and their digests in ECR, against moto."""

from __future__ import annotations

from typing import Any

import pytest
from buildtest_support import push_image, repository_url

from ecs_delivery.runtime import build
from ecs_delivery.runtime.build import BuildError, resolve_image_digest


def test_image_digest_is_resolved_from_ecr(ecr: Any) -> None:
    ecr.create_repository(repositoryName="shop/web", imageTagMutability="IMMUTABLE")
    digest = push_image(ecr, "shop/web", "0123456789ab")
    push_image(ecr, "shop/web", "ba9876543210", layer_seed="other")

    uri = resolve_image_digest(ecr, repository_url("shop/web"), "0123456789ab")

    assert uri == f"{repository_url('shop/web')}@{digest}"
    assert digest.startswith("sha256:") and len(digest) == 71


def test_unpushed_tag_fails_clearly(ecr: Any) -> None:
    ecr.create_repository(repositoryName="web")

    with pytest.raises(BuildError, match=r"web:0123456789ab is not in ECR"):
        resolve_image_digest(ecr, repository_url("web"), "0123456789ab")


def test_missing_repository_fails_with_a_hint_to_run_pulumi_up(ecr: Any) -> None:
    with pytest.raises(BuildError, match=r"repository 'web' does not exist.*pulumi up"):
        resolve_image_digest(ecr, repository_url("web"), "0123456789ab")


def test_repository_url_that_is_not_ecr_is_refused_before_any_call() -> None:
    with pytest.raises(BuildError, match="not an ECR repository URL"):
        build.parse_repository_url("docker.io/library/nginx")


def test_image_tag_is_the_short_commit() -> None:
    assert build.image_tag("0123456789abcdef0123456789abcdef01234567") == "0123456789ab"
    assert build.image_tag("0123456789abcdef", length=7) == "0123456"


@pytest.mark.parametrize(
    ("version", "message"),
    [("", "CODEBUILD_RESOLVED_SOURCE_VERSION is not set"), ("-rf/x", "valid image tag")],
)
def test_image_tag_refuses_versions_that_cannot_tag_an_image(version: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        build.image_tag(version)

"""One image reference grammar (runtime/image_reference.py) for the stack config and the manifest."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config.values import check_image
from ecs_delivery.runtime import image_reference
from ecs_delivery.runtime.release.manifest import image_problem

DIGEST = "sha256:" + "a" * 64
GOOD = [
    "nginx",
    "nginx:1.27-alpine",
    f"public.ecr.aws/docker/library/busybox@{DIGEST}",
    f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:1.0.0@{DIGEST}",
    "localhost:5000/a/b:1",
]
BAD = [
    "nginx:1.27:alpine@sha256:zz",
    "MyRepo/Admin@sha256:abc",
    "-bad.example.com/web:1.0.0",  # a host name does not start with '-'
    "web:-1",
    "Web",
]


@pytest.mark.parametrize("reference", GOOD + BAD)
def test_the_config_and_the_manifest_answer_every_reference_alike(reference: str) -> None:
    try:
        check_image(reference)
        config_accepts = True
    except ValueError:
        config_accepts = False
    assert config_accepts == (image_problem(reference) is None) == (reference in GOOD)


def test_a_reference_splits_as_docker_splits_it() -> None:
    assert image_reference.split(f"localhost:5000/a/b:1@{DIGEST}") == (
        "localhost:5000",
        "a/b",
        "1",
        DIGEST,
    )
    assert image_reference.split("library/nginx") == (None, "library/nginx", None, None)

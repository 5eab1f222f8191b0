"""Teardown (issue 16, problem 3): an opt-in forceDestroy empties the stack's buckets and
repositories on `pulumi destroy`, refused on a production stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_delivery.components.config import ConfigError
from tests.conftest import make_plan
from tests.support.plans import REPOSITORY

BUCKET = "aws:s3/bucket:Bucket"
FORCE = {"teardown": {"forceDestroy": True}}


def _destroy_flags(plan) -> dict[str, bool]:
    buckets = {f"bucket {r.name}": r.inputs["forceDestroy"] for r in plan.of_type(BUCKET)}
    repositories = {f"ecr {r.name}": r.inputs["forceDelete"] for r in plan.of_type(REPOSITORY)}
    return {**buckets, **repositories}


def test_buckets_and_repositories_keep_their_contents_by_default(dev):
    flags = _destroy_flags(dev)
    assert set(flags) == {
        "bucket artifacts",
        "bucket logs",
        "bucket release-state",
        "ecr ecr-api",
        "ecr ecr-mailer",
        "ecr ecr-web",
    }
    assert set(flags.values()) == {False}


def test_force_destroy_empties_every_bucket_and_repository_of_a_dev_stack():
    flags = _destroy_flags(make_plan("dev", overrides=FORCE))
    assert len(flags) == 6
    assert set(flags.values()) == {True}


def test_force_destroy_is_refused_on_a_stack_with_deletion_protection(dev):
    with pytest.raises(ConfigError) as error:
        make_plan("prod", environment={"stacks": {"dev": dev.outputs}}, overrides=FORCE)
    assert error.value.problems == [
        "teardown.forceDestroy: refused on a production stack (loadBalancer.deletionProtection, "
        "release.production); empty its buckets and repositories by hand (README: Teardown)"
    ]


def test_force_destroy_is_refused_when_only_the_release_is_marked_production():
    overrides = {**FORCE, "release.production": True}
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides=overrides)
    assert error.value.problems == [
        "teardown.forceDestroy: refused on a production stack (release.production); "
        "empty its buckets and repositories by hand (README: Teardown)"
    ]


def test_the_readmes_cost_table_counts_the_resources_the_plans_hold(dev_plan, prod_plan):
    """Issue 16, problem 7: the README's resource counts had gone stale."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    dev, prod = len(dev_plan.resources), len(prod_plan.resources)
    assert f"`make plan STACK=dev PLAN_JSON=...`, {dev}\nresources; prod {prod})" in readme

"""A pipeline ship moves the scheduled tasks that follow the shipped service.

The dev stack's `nightly-report` follows `api` (`followsService`). The planned pipeline runs
against moto (`pipeline_run.PipelineRun`, CodeDeploy simulated); its Deploy action must leave
the task family's newest revision (what the family-named schedule runs next) on api's shipped
image, with every other field as the task's last revision had it (the deploy-time protocol,
runtime/task_rollout.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from ecs_delivery.runtime.taskdef import describe, images_of
from tests.conftest import make_plan
from tests.support.iam_calls import CallRecorder
from tests.support.pipeline_run import PipelineRun
from tests.support.plans import without_workers
from tests.support.role_world import DevWorld, run_pipeline, setup_clients

COMMIT = "3f9c2e1d0a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"


@pytest.fixture
def world() -> Iterator[DevWorld]:
    # dev's CodeDeploy services: this world simulates CodeDeploy only, no ECS-engine deployments.
    plan = make_plan("dev", overrides=without_workers("dev"))
    with mock_aws():
        world = DevWorld(plan=plan, recorder=CallRecorder(), setup=setup_clients(), simulated=None)
        world.seed()
        world.push_images(COMMIT[:12])
        yield world


def _run(world: DevWorld, workdir: Path) -> PipelineRun:
    return run_pipeline(world, workdir, COMMIT)


def _task(world: DevWorld, name: str) -> dict[str, Any]:
    family = world.inventory["scheduledTasks"][name]["taskFamily"]
    return describe(world.setup["ecs"], family)["taskDefinition"]


def test_a_ship_of_api_moves_the_task_that_follows_it_onto_the_shipped_image(
    world, tmp_path
) -> None:
    before = _task(world, "nightly-report")
    run = _run(world, tmp_path)
    (shipped,) = [d for d in run.deployments if d.service == "api"]
    api_image = images_of(shipped.task_definition)["api"]

    after = _task(world, "nightly-report")
    assert images_of(after) == {"nightly-report": api_image}
    assert after["revision"] == before["revision"] + 1
    # Pulumi's fields stay as the task's last revision had them.
    for key in ("cpu", "memory", "taskRoleArn", "executionRoleArn"):
        assert after[key] == before[key], key


def test_a_second_run_of_the_same_ship_registers_no_task_revision(world, tmp_path) -> None:
    _run(world, tmp_path / "first")
    first = _task(world, "nightly-report")
    _run(world, tmp_path / "second")
    assert _task(world, "nightly-report")["revision"] == first["revision"]

"""The pipeline's CodeBuild roles and the release pipeline's Validate role, as planned, against
what their actions do.

Each action runs as the planned pipeline runs it: the delivery pipeline through
`tests/support/pipeline_run.PipelineRun` (every `python -m ecs_delivery.runtime.build` command
of the planned buildspecs in-process against moto, CodeDeploy simulated), the release
Validate step's `ecs_delivery.runtime.release plan` command through the release CLI; their
boto3 clients are recorded (`CallRecorder`). What a buildspec does through the AWS CLI or
docker (`aws s3 cp`, `docker login`, `docker push`) and what CodeBuild itself does with the
role (the build's logs, the pipeline's artifacts) makes no boto3 call here: those requests are
derived from the planned buildspec and project (`iam_calls.buildspec_requests`,
`codebuild_requests`) and must be granted too. Every grant must be used by one of them, save
the ones listed with the reason no run here can use them.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto import mock_aws

from ecs_delivery.offline.simcloud import plain
from ecs_delivery.runtime.release import cli as release_cli
from ecs_delivery.runtime.release.live import Clients
from tests.support.iam_calls import (
    CallRecorder,
    Request,
    assert_proven,
    buildspec_requests,
    codebuild_requests,
    role_statements,
)
from tests.support.plans import PIPELINE, PROJECT
from tests.support.role_world import REGION, DevWorld, run_pipeline, setup_clients

COMMIT = "3f9c2e1d0a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"


@dataclass
class Executed:
    """A run of the dev pipeline: the requests of each stage's action, recorded and derived."""

    plan: Any
    requests: dict[str, list[Request]]  # stage -> requests


def _action(pipeline: dict[str, Any], stage: str) -> dict[str, Any]:
    (found,) = [s for s in pipeline["stages"] if s["name"] == stage]
    (action,) = found["actions"]
    return action


def _project(plan: Any, name: str) -> dict[str, Any]:
    (found,) = [plain(p.inputs) for p in plan.of_type(PROJECT) if p.inputs["name"] == name]
    return found


def _derived(plan: Any, pipeline_resource: str, stage: str) -> list[Request]:
    """What the stage's CodeBuild action needs beside its boto3 calls."""
    pipeline = plain(plan.named(PIPELINE, pipeline_resource).inputs)
    action = _action(pipeline, stage)
    project = _project(plan, action["configuration"]["ProjectName"])
    spec = yaml.safe_load(project["source"]["buildspec"])
    return buildspec_requests(spec) + codebuild_requests(project, action, pipeline, region=REGION)


@pytest.fixture
def executed(plan, tmp_path: Path) -> Iterator[Executed]:
    with mock_aws():
        world = DevWorld(plan=plan, recorder=CallRecorder(), setup=setup_clients(), simulated=None)
        world.seed()
        world.push_images(COMMIT[:12])
        ends: dict[str, int] = {}
        run = run_pipeline(
            world,
            tmp_path,
            COMMIT,
            after_stage=lambda stage: ends.setdefault(stage, len(world.recorder.requests)),
        )
        assert [d.service for d in run.deployments] == ["api", "web"]
        starts = dict(zip(ends, [0, *ends.values()], strict=False))
        requests = {
            stage: world.recorder.requests[starts[stage] : end]
            + (_derived(plan, "pipeline", stage) if stage != "Source" else [])
            for stage, end in ends.items()
        }
        yield Executed(plan=plan, requests=requests)


def test_the_build_role_allows_what_the_build_action_does(executed: Executed) -> None:
    # Recorded: image-exists and promotion-record (ECR DescribeImages). Derived: the tooling's
    # `aws s3 cp`, `docker login`, `docker push` of each image, CodeBuild's logs and artifacts.
    assert_proven(
        role_statements(executed.plan, "pipeline-codebuild"),
        executed.requests["Build"],
        {
            ("EcrPush", "ecr:GetDownloadUrlForLayer"): (
                "docker build pulling a base image from the stack's own repositories: the "
                "Dockerfile's FROM, which the buildspec does not show"
            ),
        },
    )


def test_the_deploy_role_allows_what_the_deploy_action_does(executed: Executed) -> None:
    assert_proven(
        role_statements(executed.plan, "pipeline-codebuild-deploy"),
        executed.requests["Deploy"],
        {
            # The deployment core (runtime/rollout.py) stops its own deployment when another
            # deployer shipped between its read and the group's lock:
            # tests/components/test_deploy_time_derive.py runs that race through this action.
            ("Deployments", "codedeploy:StopDeployment"): "the core's stop after a race",
        },
    )


def test_the_publish_role_allows_what_the_publish_action_does(executed: Executed) -> None:
    assert_proven(
        role_statements(executed.plan, "pipeline-codebuild-publish"),
        executed.requests["Publish"],
        {},
    )


def test_the_release_validate_role_allows_what_the_validate_step_does(
    world: DevWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(world.plan, "ecs-delivery-dev-release-validate")
    spec = yaml.safe_load(project["source"]["buildspec"])
    (command,) = [c for c in spec["phases"]["build"]["commands"] if "runtime.release plan" in c]
    words = shlex.split(command.split(" > ", 1)[0])
    argv = words[words.index("ecs_delivery.runtime.release") + 1 :]
    # The install phase copied the inventory there (`aws s3 cp`, derived below).
    inventory = tmp_path / "inventory.json"
    with world.recorder.paused():
        inventory.write_bytes(
            world.setup["s3"]
            .get_object(Bucket=world.release_bucket, Key="inventory.json")["Body"]
            .read()
        )
    argv = [str(inventory) if a == "/tmp/inventory.json" else a for a in argv]
    manifest = tmp_path / argv[argv.index("--manifest") + 1]
    manifest.parent.mkdir(parents=True)
    manifest.write_text(world.manifest("r1", "2.0.0"))
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    clients = Clients(
        **{name: world.client(name) for name in ("ecs", "codedeploy", "s3", "scheduler")}
    )

    assert release_cli.main(argv, clients=clients, out=out, err=err) == 0, err.getvalue()
    assert "2.0.0" in out.getvalue()

    assert_proven(
        role_statements(world.plan, "release-validate"),
        world.recorder.requests + _derived(world.plan, "release", "Validate"),
        {},
    )

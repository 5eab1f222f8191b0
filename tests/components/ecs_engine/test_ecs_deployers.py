"""Issue 19, item 3: the pipeline's deploy step and the deployer policy on the ECS engine.

The deploy buildspec ships every service with `--engine ecs`; the deploy role and the deployer
policy grant exactly the ECS calls the engine's code makes (read from the source as
test_deployer_policy reads the rest), on the stack's own cluster, and no CodeDeploy action.
The ship itself runs against moto with ECS's service deployments (tests/support/
ecs_deployments.py: moto 5.2 has none).
"""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from ecs_delivery.runtime import build
from ecs_delivery.runtime.build import ShipTarget
from ecs_delivery.runtime.rollout import RolloutRequest, rollout
from tests.components.test_deployer_policy import ecs_engine_calls
from tests.conftest import make_plan
from tests.support.ecs_deployments import image_running, memory_running, ship, template
from tests.support.moto_world import CLUSTER, CONTAINER, FAMILY, PIPELINE_IMAGE, PORT, SERVICE
from tests.support.plans import without_workers
from tests.support.registrations import inputs

REGION, ACCOUNT = "eu-west-1", "123456789012"
PROJECT = "aws:codebuild/project:Project"


@pytest.fixture(scope="module")
def ecs_plan():
    return make_plan("dev", overrides={"deployment.engine": "ecs"})


def _statements(document: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(document)["Statement"]}


def _actions(statements: dict[str, dict]) -> set[str]:
    return {
        a
        for s in statements.values()
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }


def test_the_walk_sees_every_call_of_the_ecs_engine():
    assert ecs_engine_calls() == {
        "ecs:DescribeServiceDeployments",
        "ecs:DescribeServiceRevisions",
        "ecs:ListServiceDeployments",
        "ecs:StopServiceDeployment",
        "ecs:UpdateService",
    }


def test_the_deploy_step_ships_every_service_through_the_ecs_engine(ecs_plan):
    spec = yaml.safe_load(inputs(ecs_plan, PROJECT, "pipeline-deploy")["source"]["buildspec"])
    commands = [c for phase in spec["phases"].values() for c in phase.get("commands", [])]
    deploys = [shlex.split(c) for c in commands if " deploy " in c]
    assert sorted(words[words.index("--name") + 1] for words in deploys) == [
        "api",
        "mailer",
        "web",
    ]
    for words in deploys:
        assert words[words.index("--engine") + 1] == "ecs"


@pytest.mark.parametrize("name", ["pipeline-codebuild-deploy", "deployer"])
def test_deployers_are_granted_the_ecs_engines_calls_on_the_stacks_cluster_only(ecs_plan, name):
    document = (
        inputs(ecs_plan, "aws:iam/rolePolicy:RolePolicy", name)["policy"]
        if name != "deployer"
        else inputs(ecs_plan, "aws:iam/policy:Policy", name)["policy"]
    )
    statements = _statements(document)
    assert ecs_engine_calls() <= _actions(statements)
    assert not {a for a in _actions(statements) if a.startswith("codedeploy:")}
    cluster = "ecs-delivery-dev"
    prefix = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
    assert statements["EcsEngineServices"]["Resource"] == [f"{prefix}:service/{cluster}/*"]
    assert statements["EcsEngineDeployments"]["Resource"] == [
        f"{prefix}:service-deployment/{cluster}/*"
    ]
    assert statements["EcsEngineRevisions"]["Resource"] == [
        f"{prefix}:service-revision/{cluster}/*"
    ]


def test_codedeploy_stacks_are_not_granted_the_ecs_engines_calls():
    # dev's worker is deployed by the ECS engine: without it, dev is CodeDeploy only.
    plan = make_plan("dev", overrides=without_workers("dev"))
    for document in (
        inputs(plan, "aws:iam/rolePolicy:RolePolicy", "pipeline-codebuild-deploy")["policy"],
        inputs(plan, "aws:iam/policy:Policy", "deployer")["policy"],
    ):
        assert not ecs_engine_calls() & _actions(_statements(document))


def test_a_ship_on_the_ecs_engine_moves_only_the_image(ecs, clock):
    ship(ecs, PIPELINE_IMAGE)
    # A Pulumi change landed: memory 1024 runs with the pipeline's image.
    rollout(
        ecs,
        None,
        RolloutRequest(
            cluster=CLUSTER,
            service=SERVICE,
            template_arn=template(ecs),
            family=FAMILY,
            container_name=CONTAINER,
            container_port=PORT,
            engine="ecs",
        ),
        sleep=ecs.finishing_sleep(clock),
        clock=clock,
    )
    new_image = PIPELINE_IMAGE.replace("b" * 64, "d" * 64)

    result = build.ship(
        ecs,
        None,
        ShipTarget(
            cluster=CLUSTER,
            service=SERVICE,
            family=FAMILY,
            application="unused",
            deployment_group="unused",
            container_name=CONTAINER,
            container_port=PORT,
            engine="ecs",
        ),
        new_image,
        timeout_seconds=600,
        sleep=ecs.finishing_sleep(clock),
    )

    assert result.action == "deployed"
    assert (image_running(ecs), memory_running(ecs)) == (new_image, "1024")


def test_the_deploy_command_takes_the_engine():
    args = build._parser().parse_args(
        [
            "deploy",
            *("--name", "web", "--cluster", "c", "--service", "web", "--container", "web"),
            *("--container-port", "8080", "--family", "f", "--application", "a", "--group", "g"),
            *("--image-uri", PIPELINE_IMAGE, "--engine", "ecs"),
        ]
    )
    assert args.engine == "ecs"
    with pytest.raises(SystemExit):
        build._parser().parse_args(
            ["deploy", "--engine", "argo", "--name", "web", "--image-uri", PIPELINE_IMAGE]
        )

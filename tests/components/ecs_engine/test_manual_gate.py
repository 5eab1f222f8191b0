"""Issue 19, item 1 (the manual gate): `deployment.manualApproval` on the ECS engine plans a
PAUSE lifecycle hook after the validation hook, which ECS rolls back at its timeout; the people
who answer it get one policy naming exactly the stack's services; CodeDeploy's engine refuses it.

ECS's own PAUSE hook is the gate (ContinueServiceDeployment continues or rolls back): no Lambda
polls a flag, so there is no decision logic of ours to run against AWS; the plan is the proof.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ecs_delivery.components import config
from ecs_delivery.components.config import ConfigError
from tests.conftest import make_plan
from tests.support.registrations import inputs
from tests.support.shapes import service_deployment_configuration, validation_errors

SERVICE = "aws:ecs/service:Service"
POLICY = "aws:iam/policy:Policy"
REGION, ACCOUNT = "eu-west-1", "123456789012"
# dev's deployment.timeoutMinutes (30) cannot cover the gate's default 30 minutes.
GATED = {
    "deployment.engine": "ecs",
    "deployment.manualApproval.enabled": True,
    "deployment.timeoutMinutes": 60,
}
PAUSE = {
    "targetType": "PAUSE",
    "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
    "timeoutConfiguration": {"action": "ROLLBACK", "timeoutInMinutes": "30"},
}


@pytest.fixture(scope="module")
def gated_plan():
    return make_plan("dev", overrides=GATED)


def test_the_gate_is_a_pause_hook_after_the_validation_hook_that_rolls_back_at_its_timeout(
    gated_plan,
):
    for service in ("api", "web"):
        validation, gate = inputs(gated_plan, SERVICE, service)["deploymentConfiguration"][
            "lifecycleHooks"
        ]
        assert validation["targetType"] == "AWS_LAMBDA"
        assert validation["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"]
        # A PAUSE hook invokes nothing: no target, no role, no details.
        assert gate == PAUSE


def test_the_chosen_stage_and_timeout_reach_the_pause_hook():
    plan = make_plan(
        "dev",
        overrides={
            **GATED,
            "deployment.manualApproval.stage": "POST_PRODUCTION_TRAFFIC_SHIFT",
            "deployment.manualApproval.timeoutMinutes": 45,
        },
    )
    gate = inputs(plan, SERVICE, "web")["deploymentConfiguration"]["lifecycleHooks"][-1]
    assert gate == {
        **PAUSE,
        "lifecycleStages": ["POST_PRODUCTION_TRAFFIC_SHIFT"],
        "timeoutConfiguration": {"action": "ROLLBACK", "timeoutInMinutes": "45"},
    }


def test_the_gated_deployment_configuration_fits_the_ecs_api(gated_plan):
    planned = inputs(gated_plan, SERVICE, "web")["deploymentConfiguration"]
    request = {
        "serviceName": "web",
        "deploymentConfiguration": service_deployment_configuration(planned),
    }
    assert validation_errors("ecs", "CreateService", request) == ""


def test_the_approvers_policy_answers_the_gate_of_exactly_the_stacks_services(gated_plan):
    policy = inputs(gated_plan, POLICY, "manual-approval")
    assert policy["name"] == "ecs-delivery-dev-manual-approval"
    statements = json.loads(policy["policy"])["Statement"]
    ecs = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
    assert statements == [
        {
            "Sid": "FindDeployments",
            "Effect": "Allow",
            "Action": ["ecs:ListServiceDeployments"],
            "Resource": [
                f"{ecs}:service/ecs-delivery-dev/api",
                f"{ecs}:service/ecs-delivery-dev/web",
            ],
        },
        {
            "Sid": "AnswerGate",
            "Effect": "Allow",
            "Action": ["ecs:ContinueServiceDeployment", "ecs:DescribeServiceDeployments"],
            "Resource": [
                f"{ecs}:service-deployment/ecs-delivery-dev/api/*",
                f"{ecs}:service-deployment/ecs-delivery-dev/web/*",
            ],
        },
    ]
    assert gated_plan.outputs["manualApprovalPolicyArn"].endswith(
        ":policy/ecs-delivery-dev-manual-approval"
    )


def test_without_the_gate_there_is_no_pause_hook_and_no_approvers_policy():
    plan = make_plan("dev", overrides={"deployment.engine": "ecs"})
    hooks = inputs(plan, SERVICE, "web")["deploymentConfiguration"]["lifecycleHooks"]
    assert [h["targetType"] for h in hooks] == ["AWS_LAMBDA"]
    assert all(r.name != "manual-approval" for r in plan.of_type(POLICY))
    assert "manualApprovalPolicyArn" not in plan.outputs


def _problems(**deployment) -> list[str]:
    with pytest.raises(ConfigError) as error:
        config.parse(
            {
                "services": {"web": {"containerPort": 8080}},
                "pipeline": {"source": {"provider": "codecommit", "repository": "app"}},
                "deployment": deployment,
            }
        )
    return error.value.problems


def test_the_gate_is_refused_on_the_codedeploy_engine_naming_the_key():
    assert _problems(manualApproval={"enabled": True}) == [
        "deployment.manualApproval.enabled: a PAUSE lifecycle hook needs deployment.engine ecs "
        "(CodeDeploy's deployments have none); set deployment.engine: ecs, or remove it and "
        "gate releases with pipeline.approval"
    ]


def test_the_gate_counts_in_the_time_every_deployer_waits():
    assert _problems(
        engine="ecs", manualApproval={"enabled": True, "timeoutMinutes": 120}, timeoutMinutes=60
    ) == [
        "deployment.timeoutMinutes: 60 is shorter than a deployment ships in about 125 min "
        "(5 to start and validate + 120 at the manual gate + 0 of traffic shifting with "
        "CodeDeployDefault.ECSAllAtOnce); set at least 125"
    ]


@pytest.mark.parametrize("stage", ["TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT"])
def test_a_stage_ecs_runs_more_than_once_is_refused(stage):
    # ECS runs TEST_TRAFFIC_SHIFT's hooks again when it rolls back, PRE_PRODUCTION_TRAFFIC_SHIFT's
    # before every canary or linear step: a gate there would hold a rollback or ask many times.
    (problem,) = _problems(engine="ecs", manualApproval={"enabled": True, "stage": stage})
    assert problem == (
        "deployment.manualApproval.stage: Input should be 'PRE_SCALE_UP', 'POST_SCALE_UP', "
        f"'POST_TEST_TRAFFIC_SHIFT' or 'POST_PRODUCTION_TRAFFIC_SHIFT' (got {stage!r})"
    )


def test_the_readmes_approval_commands_need_exactly_the_approvers_actions(gated_plan):
    # The documented answer and the policy of the people who give it cannot drift apart.
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("To answer", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    called = {
        "ecs:" + "".join(part.title() for part in op.split("-"))
        for op in re.findall(r"aws ecs ([a-z-]+)", block)
    }
    statements = json.loads(inputs(gated_plan, POLICY, "manual-approval")["policy"])["Statement"]
    granted = {action for s in statements for action in s["Action"]}
    assert (
        called
        == granted
        == {
            "ecs:ListServiceDeployments",
            "ecs:DescribeServiceDeployments",
            "ecs:ContinueServiceDeployment",
        }
    )

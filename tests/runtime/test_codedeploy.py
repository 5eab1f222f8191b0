"""ecs_delivery.runtime.codedeploy: AppSpec, starting (or refusing) a deployment, waiting for it."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ecs_delivery.runtime.codedeploy import (
    DeploymentFailedError,
    DeploymentInProgressError,
    DeploymentTimeoutError,
    appspec,
    in_progress_deployments,
    start_deployment,
    wait_for_deployment,
)

ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:9"


def offline_codedeploy():
    # Stubber answers before any request is sent; these keys never leave the process.
    return boto3.Session(
        region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("codedeploy")


def info(status: str, **extra) -> dict:
    return {"deploymentInfo": {"deploymentId": "d-ABCDEF123", "status": status, **extra}}


def test_appspec_names_task_definition_container_and_port():
    assert appspec(ARN, "app", 8080) == {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": ARN,
                        "LoadBalancerInfo": {"ContainerName": "app", "ContainerPort": 8080},
                    },
                }
            }
        ],
    }


def test_appspec_lists_hooks_in_lifecycle_order_and_sets_platform_version():
    spec = appspec(
        ARN,
        "app",
        8080,
        hooks={"AfterAllowTestTraffic": "validate-web", "BeforeInstall": "prepare-web"},
        platform_version="1.4.0",
    )

    assert spec["Hooks"] == [
        {"BeforeInstall": "prepare-web"},
        {"AfterAllowTestTraffic": "validate-web"},
    ]
    properties = spec["Resources"][0]["TargetService"]["Properties"]
    assert properties["PlatformVersion"] == "1.4.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((ARN, "app", 8080, {"AfterTraffic": "f"}), "hooks: AfterTraffic not an ECS lifecycle"),
        ((ARN, "app", 0), "container_port: 0 must be between 1 and 65535"),
        ((ARN, "app", "8080"), "container_port: '8080' must be an integer"),
        ((ARN, "", 8080), "container_name: must name the container"),
        (("web:9", "app", 8080), "task_definition_arn: 'web:9' is not a task definition ARN"),
    ],
)
def test_appspec_rejects_bad_input_naming_the_field(args, message):
    with pytest.raises(ValueError, match=message):
        appspec(*args)


def test_start_deployment_sends_appspec_content_with_its_sha256(world):
    spec = appspec(ARN, world.container, world.port)

    deployment_id = start_deployment(
        world.codedeploy, world.application, world.group, spec, "memory 512 -> 1024"
    )

    deployment = world.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    revision = deployment["revision"]
    assert revision["revisionType"] == "AppSpecContent"
    content = revision["appSpecContent"]["content"]
    assert json.loads(content) == spec
    assert revision["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert deployment["description"] == "memory 512 -> 1024"


def test_in_progress_deployments_lists_unfinished_ones_across_pages():
    codedeploy = offline_codedeploy()
    expected = {
        "applicationName": "web",
        "deploymentGroupName": "web",
        "includeOnlyStatuses": ["Created", "Queued", "InProgress", "Baking", "Ready"],
    }
    with Stubber(codedeploy) as stubber:
        stubber.add_response(
            "list_deployments", {"deployments": ["d-AAAAAA1"], "nextToken": "t1"}, expected
        )
        stubber.add_response(
            "list_deployments", {"deployments": ["d-BBBBBB2"]}, {**expected, "nextToken": "t1"}
        )

        assert in_progress_deployments(codedeploy, "web", "web") == ["d-AAAAAA1", "d-BBBBBB2"]


def test_start_deployment_turns_a_lost_race_into_the_in_progress_refusal():
    codedeploy = offline_codedeploy()
    # Stubber: moto never refuses a second deployment; AWS does, with this error.
    with Stubber(codedeploy) as stubber:
        stubber.add_response("list_deployments", {"deployments": []})
        stubber.add_client_error(
            "create_deployment",
            service_error_code="DeploymentLimitExceededException",
            service_message="The Deployment Group 'web' already has an active Deployment 'd-RACE4567'",
            expected_params={
                "applicationName": "web",
                "deploymentGroupName": "web",
                "revision": ANY,
                "description": "x",
            },
        )
        with pytest.raises(DeploymentInProgressError) as raised:
            start_deployment(codedeploy, "web", "web", appspec(ARN, "app", 8080), "x")

    assert raised.value.deployment_ids == ["d-RACE4567"]
    assert "aws deploy stop-deployment --deployment-id d-RACE4567 --auto-rollback-enabled" in str(
        raised.value
    )


def test_wait_returns_the_deployment_once_it_succeeds(clock):
    codedeploy = offline_codedeploy()
    # Stubber: moto deployments never leave `Created`.
    with Stubber(codedeploy) as stubber:
        stubber.add_response("get_deployment", info("InProgress"), {"deploymentId": "d-ABCDEF123"})
        stubber.add_response("get_deployment", info("Baking"), {"deploymentId": "d-ABCDEF123"})
        stubber.add_response("get_deployment", info("Succeeded"), {"deploymentId": "d-ABCDEF123"})

        final = wait_for_deployment(
            codedeploy, "d-ABCDEF123", timeout_seconds=300, sleep=clock.sleep, clock=clock
        )

    assert final["status"] == "Succeeded"
    assert clock.sleeps == [15, 15]


def test_wait_on_a_stopped_deployment_without_rollback_says_how_to_check(clock):
    codedeploy = offline_codedeploy()
    with Stubber(codedeploy) as stubber:
        stubber.add_response(
            "get_deployment",
            info(
                "Stopped",
                errorInformation={"code": "MANUAL_STOP", "message": "Stopped by user"},
            ),
        )
        with pytest.raises(DeploymentFailedError) as raised:
            wait_for_deployment(codedeploy, "d-ABCDEF123", 300, sleep=clock.sleep, clock=clock)

    message = str(raised.value)
    assert "d-ABCDEF123" in message and "ended Stopped" in message
    assert "MANUAL_STOP: Stopped by user" in message
    assert "reported no rollback" in message
    assert "aws deploy get-deployment --deployment-id d-ABCDEF123" in message
    assert raised.value.rolled_back is False


def test_wait_gives_up_at_the_timeout_and_leaves_the_deployment_running(clock):
    codedeploy = offline_codedeploy()
    with Stubber(codedeploy) as stubber:
        for _ in range(3):
            stubber.add_response("get_deployment", info("InProgress"))
        with pytest.raises(DeploymentTimeoutError) as raised:
            wait_for_deployment(
                codedeploy, "d-ABCDEF123", 40, poll_seconds=20, sleep=clock.sleep, clock=clock
            )

    assert clock.now == 40
    assert "did not finish within 40 s (last status: InProgress)" in str(raised.value)
    assert "keeps running in CodeDeploy" in str(raised.value)


def test_wait_treats_a_started_termination_wait_as_shipped_without_waiting_it_out(clock):
    """Issue 21, problem 8: an ECS blue/green deployment stays InProgress (holding the group)
    until the original task set is deleted, terminationWaitMinutes after the shift (60 in
    prod). Production already runs the new revision once instanceTerminationWaitTimeStarted
    is set: waiting for `Succeeded` reported healthy prod deployments as timed out."""
    codedeploy = offline_codedeploy()
    with Stubber(codedeploy) as stubber:
        stubber.add_response("get_deployment", info("InProgress"), {"deploymentId": "d-ABCDEF123"})
        stubber.add_response(
            "get_deployment",
            info("InProgress", instanceTerminationWaitTimeStarted=True),
            {"deploymentId": "d-ABCDEF123"},
        )
        result = wait_for_deployment(
            codedeploy,
            "d-ABCDEF123",
            timeout_seconds=60,
            poll_seconds=15,
            sleep=clock.sleep,
            clock=clock,
        )
        stubber.assert_no_pending_responses()

    assert result["status"] == "InProgress"
    assert clock.sleeps == [15]

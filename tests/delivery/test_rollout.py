"""rollout(): the field-ownership deployment mechanism against moto (ECS + CodeDeploy)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber
from moto.backends import get_backend

from delivery.codedeploy import (
    DeploymentFailedError,
    DeploymentInProgressError,
    DeploymentTimeoutError,
)
from delivery.live import running_task_definition
from delivery.rollout import RolloutRequest, ServiceStateError, rollout
from delivery.taskdef import describe, images_of


def request_for(world, arn: str, **overrides) -> RolloutRequest:
    values = dict(
        cluster=world.cluster,
        service=world.service,
        task_definition_arn=arn,
        application=world.application,
        deployment_group=world.group,
        container_name=world.container,
        container_port=world.port,
        poll_seconds=15,
        timeout_seconds=600,
    )
    values.update(overrides)
    return RolloutRequest(**values)


def run(world, clock, arn: str, *, sleep=None, **overrides):
    """rollout() with the fake clock, so a wrongly started wait fails fast, never hangs."""
    return rollout(
        world.ecs,
        world.codedeploy,
        request_for(world, arn, **overrides),
        sleep=sleep or clock.sleep,
        clock=clock,
    )


def finish_deployments_like_codedeploy(world, clock):
    """An injected sleep standing in for CodeDeploy: moto leaves deployments `Created`
    forever, so while rollout() waits, mark the deployment Succeeded and switch the
    service's PRIMARY task set to the deployed revision, as a finished blue/green does."""
    backend = get_backend("codedeploy")[world.account]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        for deployment in backend[world.region].deployments.values():
            if deployment.status == "Created":
                spec = json.loads(deployment.revision["appSpecContent"]["content"])
                target = spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
                world.codedeploy_switches_to(target)
                deployment.status = "Succeeded"

    return sleep


def test_first_deployment_of_a_new_service_starts_no_codedeploy_deployment(world, clock):
    result = run(world, clock, world.first_revision)

    assert result.action == "none-service-new"
    assert result.running_task_definition_arn == world.first_revision
    assert result.deployment_id is None
    assert world.deployments() == []


def test_memory_change_after_pipeline_deploy_registers_one_revision_with_live_image(world, clock):
    shipped = world.pipeline_ships(world.pipeline_image)
    revisions_before = world.revisions()

    wanted = world.pulumi_registers(image=world.pipeline_image, memory="1024")
    result = run(world, clock, wanted, wait=False)

    new_revisions = [arn for arn in world.revisions() if arn not in revisions_before]
    assert new_revisions == [wanted]
    # bootstrap (created with the service), the pipeline's, Pulumi's: nothing else.
    assert world.revisions() == [world.first_revision, shipped, wanted]
    registered = describe(world.ecs, wanted)["taskDefinition"]
    assert images_of(registered) == {world.container: world.pipeline_image}
    assert registered["memory"] == "1024"

    assert result.action == "started"
    assert result.running_task_definition_arn == shipped
    assert world.deployments() == [result.deployment_id]
    spec = json.loads(world.appspec_of(result.deployment_id))
    assert spec["Resources"] == [
        {
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": wanted,
                    "LoadBalancerInfo": {
                        "ContainerName": world.container,
                        "ContainerPort": world.port,
                    },
                },
            }
        }
    ]


def test_memory_change_waits_for_the_deployment_and_reports_the_new_revision_running(world, clock):
    world.pipeline_ships(world.pipeline_image)
    wanted = world.pulumi_registers(image=world.pipeline_image, memory="1024")

    result = run(world, clock, wanted, sleep=finish_deployments_like_codedeploy(world, clock))

    assert result.action == "deployed"
    assert result.running_task_definition_arn == wanted
    assert world.running() == wanted
    assert world.deployments() == [result.deployment_id]
    assert clock.sleeps == [15]


def test_pipeline_image_without_config_change_starts_zero_deployments(world, clock):
    shipped = world.pipeline_ships(world.pipeline_image)

    same = world.pulumi_registers(image=world.pipeline_image)
    result = run(world, clock, same)

    assert same != shipped
    assert result.action == "none-same-content"
    assert result.running_task_definition_arn == shipped
    assert result.deployment_id is None
    assert world.deployments() == []


def test_bootstrap_image_after_pipeline_deploy_is_a_change_and_is_deployed(world, clock):
    # The image is part of the effective content: re-registering the old image is a
    # revert, and the mechanism must not hide it as "same content".
    world.pipeline_ships(world.pipeline_image)
    reverted = world.pulumi_registers(image=world.bootstrap_image)

    result = run(world, clock, reverted, wait=False)

    assert result.action == "started"


def test_failed_deployment_raises_with_code_message_and_rollback(world, clock):
    world.pipeline_ships(world.pipeline_image)
    wanted = world.pulumi_registers(image=world.pipeline_image, memory="1024")
    # Stubber: moto cannot make a deployment fail (its deployments stay `Created`).
    stubber = Stubber(world.codedeploy)
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-FAIL12345"},
        {
            "applicationName": world.application,
            "deploymentGroupName": world.group,
            "revision": ANY,
            "description": ANY,
        },
    )
    stubber.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "deploymentId": "d-FAIL12345",
                "applicationName": world.application,
                "deploymentGroupName": world.group,
                "status": "Failed",
                "errorInformation": {
                    "code": "ECS_UPDATE_ERROR",
                    "message": "Tasks failed to start: essential container exited",
                },
                "rollbackInfo": {
                    "rollbackDeploymentId": "d-ROLLBACK1",
                    "rollbackMessage": "Deployment rolled back by CodeDeploy",
                },
            }
        },
        {"deploymentId": "d-FAIL12345"},
    )

    with stubber, pytest.raises(DeploymentFailedError) as raised:
        run(world, clock, wanted)

    message = str(raised.value)
    assert "d-FAIL12345" in message
    assert "Failed" in message
    assert "ECS_UPDATE_ERROR" in message
    assert "Tasks failed to start" in message
    assert "rolled back" in message and "d-ROLLBACK1" in message
    assert raised.value.rolled_back is True
    stubber.assert_no_pending_responses()


def test_deployment_in_progress_is_refused_naming_it_and_how_to_proceed(world, clock):
    world.pipeline_ships(world.pipeline_image)
    # moto keeps this deployment `Created`, i.e. in progress, for as long as the test runs.
    running = world.codedeploy.create_deployment(
        applicationName=world.application,
        deploymentGroupName=world.group,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}},
    )["deploymentId"]
    wanted = world.pulumi_registers(image=world.pipeline_image, memory="1024")

    with pytest.raises(DeploymentInProgressError) as raised:
        run(world, clock, wanted)

    message = str(raised.value)
    assert running in message
    assert f"aws deploy stop-deployment --deployment-id {running} --auto-rollback-enabled" in (
        message
    )
    assert "wait" in message
    assert world.deployments() == [running]


def test_deployment_that_never_finishes_times_out_with_how_to_check(world, clock):
    world.pipeline_ships(world.pipeline_image)
    wanted = world.pulumi_registers(image=world.pipeline_image, memory="1024")

    # moto's deployment stays `Created`: exactly a deployment that never finishes.
    with pytest.raises(DeploymentTimeoutError) as raised:
        run(world, clock, wanted, timeout_seconds=120, poll_seconds=50)

    (deployment_id,) = world.deployments()
    message = str(raised.value)
    assert deployment_id in message
    assert "2 min" in message
    assert f"aws deploy get-deployment --deployment-id {deployment_id}" in message
    assert clock.sleeps == [50, 50, 20]


def test_missing_service_is_a_clear_error_naming_service_and_cluster(world, clock):
    with pytest.raises(ServiceStateError, match="'nope' not found in cluster 'dev-cluster'"):
        run(world, clock, world.first_revision, service="nope")


def test_inactive_service_is_a_clear_error(world, clock):
    world.ecs.update_service(cluster=world.cluster, service=world.service, desiredCount=0)
    world.ecs.delete_service(cluster=world.cluster, service=world.service)

    with pytest.raises(ServiceStateError, match="is INACTIVE, not ACTIVE"):
        run(world, clock, world.first_revision)


def test_container_port_missing_from_the_revision_is_refused_before_any_deployment(world, clock):
    wanted = world.pulumi_registers(image=world.bootstrap_image, memory="1024")

    with pytest.raises(ValueError, match="container_port: 9090 is not a port mapping"):
        run(world, clock, wanted, container_port=9090)
    assert world.deployments() == []


def test_rollout_request_rejects_a_bad_arn_before_any_aws_call():
    with pytest.raises(ValueError, match="task_definition_arn: 'web:3' is not a task definition"):
        RolloutRequest(
            cluster="c",
            service="s",
            task_definition_arn="web:3",
            application="a",
            deployment_group="g",
            container_name="app",
            container_port=8080,
        )


def test_running_revision_is_the_primary_task_set_not_the_service_field():
    # Mid-deployment AWS shows the green task set ACTIVE and the blue one PRIMARY.
    service = {
        "serviceName": "web",
        "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:5",
        "taskSets": [
            {"status": "ACTIVE", "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:6"},
            {
                "status": "PRIMARY",
                "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:4",
            },
        ],
    }

    assert running_task_definition(service).endswith("web:4")
    assert running_task_definition({**service, "taskSets": []}).endswith("web:5")


def test_service_with_the_ecs_controller_is_refused_before_any_deployment(world, clock):
    world.ecs.create_service(
        cluster=world.cluster,
        serviceName="rolling",
        taskDefinition=world.first_revision,
        desiredCount=1,
        launchType="FARGATE",
    )

    with pytest.raises(ServiceStateError, match="uses the ECS deployment controller"):
        run(world, clock, world.first_revision, service="rolling")
    assert world.deployments() == []

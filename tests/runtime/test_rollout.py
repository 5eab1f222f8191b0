"""rollout(): the field-ownership deployment mechanism against moto (ECS + CodeDeploy)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber
from moto.backends import get_backend

from ecs_delivery.runtime.codedeploy import (
    DeploymentFailedError,
    DeploymentInProgressError,
    DeploymentTimeoutError,
    Network,
)
from ecs_delivery.runtime.live import running_task_definition
from ecs_delivery.runtime.rollout import RolloutRequest, ServiceStateError, rollout
from ecs_delivery.runtime.taskdef import describe, images_of


def request_for(world, arn: str, **overrides) -> RolloutRequest:
    values = dict(
        cluster=world.cluster,
        service=world.service,
        template_arn=arn,
        family=world.family,
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

    # The template carries the bootstrap image: Pulumi never declares the pipeline's.
    template = world.pulumi_registers(memory="1024")
    result = run(world, clock, template, wait=False)

    (merged,) = [arn for arn in world.revisions() if arn != shipped]
    assert world.revisions() == [shipped, merged]
    registered = describe(world.ecs, merged)["taskDefinition"]
    assert registered["family"] == world.family
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
                    "TaskDefinition": merged,
                    # The AppSpec is complete: the platform what runs reports.
                    "PlatformVersion": "LATEST",
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
    template = world.pulumi_registers(memory="1024")

    result = run(world, clock, template, sleep=finish_deployments_like_codedeploy(world, clock))

    assert result.action == "deployed"
    assert result.running_task_definition_arn == world.running()
    assert result.images == {world.container: world.pipeline_image}
    assert describe(world.ecs, world.running())["taskDefinition"]["memory"] == "1024"
    assert world.deployments() == [result.deployment_id]
    assert clock.sleeps == [15]


def test_pipeline_image_without_config_change_starts_zero_deployments(world, clock):
    shipped = world.pipeline_ships(world.pipeline_image)

    result = run(world, clock, world.first_revision)

    assert result.action == "none-same-content"
    assert result.running_task_definition_arn == shipped
    assert result.deployment_id is None
    assert world.deployments() == []
    assert world.revisions() == [shipped]  # no unused revision either


def test_the_template_image_is_never_deployed_over_what_runs(world, clock):
    # The template's (bootstrap) image differs from what runs, and memory changes: the
    # rollout deploys the memory, and keeps the pipeline's image.
    world.pipeline_ships(world.pipeline_image)
    template = world.pulumi_registers(image=world.bootstrap_image, memory="2048")

    result = run(world, clock, template, wait=False)

    (deployed,) = [a for a in world.revisions() if a != world.running()]
    assert result.action == "started"
    assert images_of(describe(world.ecs, deployed)["taskDefinition"]) == {
        world.container: world.pipeline_image
    }


def test_a_pinned_image_is_deployed_over_what_runs(world, clock):
    world.pipeline_ships(world.pipeline_image)
    pinned = f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web@sha256:{'c' * 64}"

    result = run(world, clock, world.first_revision, images={world.container: pinned}, wait=False)

    assert result.action == "started"
    spec = json.loads(world.appspec_of(result.deployment_id))
    target = spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
    assert images_of(describe(world.ecs, target)["taskDefinition"]) == {world.container: pinned}


def test_a_network_change_alone_deploys_what_runs_with_the_new_network_in_the_appspec(world, clock):
    shipped = world.pipeline_ships(world.pipeline_image)
    network = Network(("subnet-c", "subnet-a", "subnet-b"), ("sg-tasks",))

    result = run(
        world, clock, world.first_revision, network=network, platform_version="LATEST", wait=False
    )

    assert result.action == "started"
    assert world.revisions() == [shipped]  # same content: nothing new registered
    properties = json.loads(world.appspec_of(result.deployment_id))["Resources"][0][
        "TargetService"
    ]["Properties"]
    assert properties["TaskDefinition"] == shipped
    assert properties["NetworkConfiguration"] == {
        "AwsvpcConfiguration": {
            "Subnets": ["subnet-a", "subnet-b", "subnet-c"],
            "SecurityGroups": ["sg-tasks"],
            "AssignPublicIp": "DISABLED",
        }
    }
    assert properties["PlatformVersion"] == "LATEST"


def test_a_ship_that_lands_before_the_lock_is_stopped_and_merged_again(world, clock):
    """The race of issue 8: the pipeline finishes Z between the rollout's read and its
    CreateDeployment. The rollout must stop its stale deployment (Y + memory) and deploy
    Z + memory instead. Stubber for CodeDeploy: moto implements no StopDeployment."""
    first_ship = world.pipeline_ships(world.pipeline_image)
    template = world.pulumi_registers(memory="1024")
    newer = f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web@sha256:{'d' * 64}"
    stubber = Stubber(world.codedeploy)
    group = {"applicationName": world.application, "deploymentGroupName": world.group}

    def ship_then_accept(*_args, **_kwargs):
        world.pipeline_ships(newer)  # lands while CreateDeployment is on its way

    world.codedeploy.meta.events.register_first(
        "provide-client-params.codedeploy.CreateDeployment", _once(ship_then_accept)
    )
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-STALE0001"},
        {**group, "revision": ANY, "description": ANY},
    )
    stubber.add_response(
        "stop_deployment",
        {"status": "Pending"},
        {"deploymentId": "d-STALE0001", "autoRollbackEnabled": True},
    )
    stubber.add_response(
        "get_deployment", {"deploymentInfo": {"status": "Stopped"}}, {"deploymentId": "d-STALE0001"}
    )
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response("list_deployments", {"deployments": []})
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-FRESH0001"},
        {**group, "revision": ANY, "description": ANY},
    )

    with stubber:
        result = run(world, clock, template, wait=False)

    stubber.assert_no_pending_responses()
    assert result.deployment_id == "d-FRESH0001"
    assert result.running_task_definition_arn != first_ship
    merged = [a for a in world.revisions() if a not in (first_ship, world.running())]
    images = {a: images_of(describe(world.ecs, a)["taskDefinition"]) for a in merged}
    # The first merge (older image) was registered but never deployed; the second has Z.
    assert sorted(i[world.container] for i in images.values()) == sorted(
        [world.pipeline_image, newer]
    )


def _once(hook):
    fired = []

    def handler(*args, **kwargs):
        if not fired:
            fired.append(True)
            hook(*args, **kwargs)

    return handler


def test_failed_deployment_raises_with_code_message_and_rollback(world, clock):
    world.pipeline_ships(world.pipeline_image)
    wanted = world.pulumi_registers(memory="1024")
    # Stubber: moto cannot make a deployment fail (its deployments stay `Created`).
    stubber = Stubber(world.codedeploy)
    stubber.add_response("list_deployments", {"deployments": []})  # the rollout: group free?
    stubber.add_response("list_deployments", {"deployments": []})  # start_deployment: still?
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
    wanted = world.pulumi_registers(memory="1024")

    with pytest.raises(DeploymentInProgressError) as raised:
        run(world, clock, wanted, wait=False)

    message = str(raised.value)
    assert running in message
    assert f"aws deploy stop-deployment --deployment-id {running} --auto-rollback-enabled" in (
        message
    )
    assert "wait" in message
    assert world.deployments() == [running]


def test_a_waiting_rollout_waits_for_a_running_deployment_then_merges_onto_its_result(world, clock):
    # The pipeline's deployment of Z is still moving traffic when `pulumi up` rolls out.
    newer = f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web@sha256:{'e' * 64}"
    pipeline_revision = world.pipeline_ships(newer)
    world.codedeploy_switches_to(world.first_revision)  # blue still PRIMARY mid-deployment
    world.codedeploy.create_deployment(
        applicationName=world.application,
        deploymentGroupName=world.group,
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": json.dumps(_spec(pipeline_revision, world))},
        },
    )
    template = world.pulumi_registers(memory="1024")

    result = run(world, clock, template, sleep=finish_deployments_like_codedeploy(world, clock))

    assert result.action == "deployed"
    running = describe(world.ecs, world.running())["taskDefinition"]
    assert images_of(running) == {world.container: newer}  # Z kept, not the blue image
    assert running["memory"] == "1024"


def _spec(arn: str, world) -> dict:
    return {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": arn,
                        "LoadBalancerInfo": {
                            "ContainerName": world.container,
                            "ContainerPort": world.port,
                        },
                    },
                }
            }
        ],
    }


def test_deployment_that_never_finishes_times_out_with_how_to_check(world, clock):
    world.pipeline_ships(world.pipeline_image)
    wanted = world.pulumi_registers(memory="1024")

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
    wanted = world.pulumi_registers(memory="1024")

    with pytest.raises(ValueError, match="container_port: 9090 is not a port mapping"):
        run(world, clock, wanted, container_port=9090)
    assert world.deployments() == []


def test_rollout_request_rejects_a_bad_arn_before_any_aws_call():
    with pytest.raises(ValueError, match="task_definition_arn: 'web:3' is not a task definition"):
        RolloutRequest(
            cluster="c",
            service="s",
            template_arn="web:3",
            family="f",
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


def test_the_rollouts_appspec_runs_the_validation_hook_like_the_pipelines(world, clock):
    template = world.pulumi_registers(memory="1024")

    result = run(
        world,
        clock,
        template,
        hooks={"AfterAllowTestTraffic": "dev-validation-hook"},
        wait=False,
    )

    spec = json.loads(world.appspec_of(result.deployment_id))
    assert spec["Hooks"] == [{"AfterAllowTestTraffic": "dev-validation-hook"}]


def test_a_ship_names_the_network_and_platform_of_the_primary_task_set_in_its_appspec(world, clock):
    """Issue 21, problem 9: the ship's AppSpec named no network and no platform, so what a
    ship runs on depended on what CodeDeploy does with the omission; a network Pulumi rolled
    out through an AppSpec (it lives on the PRIMARY task set) must survive the next ship."""
    task_set = world.ecs.create_task_set(
        cluster=world.cluster,
        service=world.service,
        taskDefinition=world.first_revision,
        launchType="FARGATE",
        platformVersion="1.4.0",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": ["subnet-b", "subnet-a"],
                "securityGroups": ["sg-rolled-out"],
                "assignPublicIp": "DISABLED",
            }
        },
    )["taskSet"]
    world.ecs.update_service_primary_task_set(
        cluster=world.cluster, service=world.service, primaryTaskSet=task_set["taskSetArn"]
    )

    result = run(world, clock, None, images={world.container: world.pipeline_image}, wait=False)

    properties = json.loads(world.appspec_of(result.deployment_id))["Resources"][0][
        "TargetService"
    ]["Properties"]
    assert properties["NetworkConfiguration"] == {
        "AwsvpcConfiguration": {
            "Subnets": ["subnet-a", "subnet-b"],
            "SecurityGroups": ["sg-rolled-out"],
            "AssignPublicIp": "DISABLED",
        }
    }
    assert properties["PlatformVersion"] == "1.4.0"


SPOT = (("FARGATE", 1, 1), ("FARGATE_SPOT", 3, 0))


def _strategy_of(world, deployment_id):
    properties = json.loads(world.appspec_of(deployment_id))["Resources"][0]["TargetService"][
        "Properties"
    ]
    return properties.get("CapacityProviderStrategy")


def test_a_capacity_provider_change_alone_deploys_what_runs_with_the_strategy_in_the_appspec(
    world, clock
):
    """Issue 18, item 5: UpdateService refuses a strategy on a CODE_DEPLOY service, so a
    Pulumi-owned change to it (Fargate Spot) reaches the service only through the AppSpec."""
    shipped = world.pipeline_ships(world.pipeline_image)

    result = run(world, clock, world.first_revision, capacity_providers=SPOT, wait=False)

    assert result.action == "started"
    assert world.revisions() == [shipped]  # same content: nothing new registered
    assert _strategy_of(world, result.deployment_id) == [
        {"Base": 1, "CapacityProvider": "FARGATE", "Weight": 1},
        {"Base": 0, "CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]


def _primary_on_spot(world):
    """The service's PRIMARY task set runs on SPOT's strategy (as a rollout left it)."""
    task_set = world.ecs.create_task_set(
        cluster=world.cluster,
        service=world.service,
        taskDefinition=world.first_revision,
        capacityProviderStrategy=[
            {"capacityProvider": p, "weight": w, "base": b} for p, w, b in reversed(SPOT)
        ],
    )["taskSet"]
    world.ecs.update_service_primary_task_set(
        cluster=world.cluster, service=world.service, primaryTaskSet=task_set["taskSetArn"]
    )


def test_a_ship_keeps_the_capacity_providers_of_the_primary_task_set(world, clock):
    _primary_on_spot(world)

    ship = run(world, clock, None, images={world.container: world.pipeline_image}, wait=False)
    assert _strategy_of(world, ship.deployment_id) == [
        {"Base": 1, "CapacityProvider": "FARGATE", "Weight": 1},
        {"Base": 0, "CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]


def test_the_same_capacity_providers_as_the_primary_task_set_start_no_deployment(world, clock):
    _primary_on_spot(world)

    result = run(world, clock, world.first_revision, capacity_providers=SPOT, wait=False)

    assert result.action in ("none-service-new", "none-same-content")
    assert world.deployments() == []

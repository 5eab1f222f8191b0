"""Issue 19, item 2: the deployment core on ECS's own blue/green (RolloutRequest.engine "ecs").

The same read / overlay / register / deploy / re-check-under-the-lock / stop-and-merge-again
flow as on CodeDeploy, through UpdateService. moto 5.2 has no service deployments
(List/DescribeServiceDeployments, DescribeServiceRevisions, StopServiceDeployment): they come
from tests/support/ecs_deployments.py over moto (requests checked against botocore's model),
and the exact requests are asserted with botocore's Stubber at the end of this file.
"""

from __future__ import annotations

import datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.codedeploy import Network
from ecs_delivery.runtime.ecs_engine import (
    EcsDeploymentFailedError,
    EcsDeploymentInProgressError,
    EcsEngine,
)
from ecs_delivery.runtime.live import Running
from ecs_delivery.runtime.rollout import (
    RolloutRaceError,
    RolloutRequest,
    ServiceStateError,
    rollout,
)
from ecs_delivery.runtime.taskdef import describe, register_request
from tests.support.ecs_deployments import (
    EcsDeployments,
    image_running,
    memory_running,
    running,
    ship,
    template,
)
from tests.support.moto_world import (
    ACCOUNT,
    CLUSTER,
    CONTAINER,
    FAMILY,
    PIPELINE_IMAGE,
    PORT,
    REGION,
    SERVICE,
    task_definition_spec,
)

SUBNETS = ("subnet-a", "subnet-b")
GROUPS = ("sg-tasks",)
SHIP_IMAGE = PIPELINE_IMAGE.replace("b" * 64, "c" * 64)


def request(arn: str | None, **overrides) -> RolloutRequest:
    values = dict(
        cluster=CLUSTER,
        service=SERVICE,
        template_arn=arn,
        family=FAMILY,
        container_name=CONTAINER,
        container_port=PORT,
        network=Network(SUBNETS, GROUPS),
        platform_version="1.4.0",
        engine="ecs",
        poll_seconds=15,
        timeout_seconds=600,
    )
    values.update(overrides)
    return RolloutRequest(**values)


def run(ecs, clock, arn, *, sleep=None, **overrides):
    return rollout(
        ecs, None, request(arn, **overrides), sleep=sleep or ecs.finishing_sleep(clock), clock=clock
    )


def test_a_memory_change_deploys_through_update_service_keeping_the_shipped_image(ecs, clock):
    ship(ecs, PIPELINE_IMAGE)
    shipped = running(ecs)

    result = run(ecs, clock, template(ecs))

    assert result.action == "deployed"
    (update,) = ecs.updates[1:]  # after the ship's own
    assert update == {
        "cluster": CLUSTER,
        "service": SERVICE,
        "taskDefinition": result.running_task_definition_arn,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(SUBNETS),
                "securityGroups": list(GROUPS),
                "assignPublicIp": "DISABLED",
            }
        },
        "platformVersion": "1.4.0",
    }
    assert running(ecs) == result.running_task_definition_arn != shipped
    assert (image_running(ecs), memory_running(ecs)) == (PIPELINE_IMAGE, "1024")
    assert ecs.deployments[result.deployment_id]["status"] == "SUCCESSFUL"


def test_content_equal_to_what_runs_starts_no_service_deployment(ecs, clock):
    ship(ecs, PIPELINE_IMAGE)
    before = len(ecs.updates)

    # (moto's service reports no network or platform: the request names none either)
    result = run(ecs, clock, template(ecs, memory="512"), network=None, platform_version=None)

    assert result.action == "none-same-content"
    assert len(ecs.updates) == before  # never an empty deployment


def test_a_service_deployment_in_progress_is_refused_naming_it_and_how_to_proceed(ecs, clock):
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=running(ecs))
    (holder,) = ecs.in_progress()
    before = len(ecs.updates)

    with pytest.raises(EcsDeploymentInProgressError) as error:
        run(ecs, clock, template(ecs), wait=False)

    assert len(ecs.updates) == before
    message = str(error.value)
    assert holder in message
    assert f"aws ecs stop-service-deployment --service-deployment-arn {holder}" in message
    assert "run `pulumi up` again" in message


def test_a_waiting_rollout_waits_for_a_running_deployment_then_merges_onto_its_result(ecs, clock):
    # A ship is mid-deployment when the rollout starts; the rollout waits, then merges onto it.
    current = describe(ecs, running(ecs))["taskDefinition"]
    shipped = ecs.register_task_definition(
        **register_request(current, {CONTAINER: PIPELINE_IMAGE})
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=shipped)

    result = run(ecs, clock, template(ecs))

    assert result.action == "deployed"
    assert (image_running(ecs), memory_running(ecs)) == (PIPELINE_IMAGE, "1024")
    assert clock.sleeps  # it waited on the lock


def test_a_ship_that_lands_before_the_update_is_stopped_and_merged_again(ecs, clock):
    """The race: the core read what ran, then a ship updated and finished before our
    UpdateService; ECS records the ship as our source. Ours is stopped (rolled back, before
    traffic moved) and the merge runs again onto the ship: nothing reverted, nothing lost."""
    arn = template(ecs)
    ecs.before_update.append(lambda _params: ship(ecs, SHIP_IMAGE))

    result = run(ecs, clock, arn)

    assert result.action == "deployed"
    assert (image_running(ecs), memory_running(ecs)) == (SHIP_IMAGE, "1024")
    assert len(ecs.stops) == 1
    assert ecs.stops[0]["stopType"] == "ROLLBACK"
    stopped = ecs.deployments[ecs.stops[0]["serviceDeploymentArn"]]
    assert stopped["status"] == "ROLLBACK_SUCCESSFUL"


def test_a_mutant_that_skips_the_recheck_under_the_lock_is_caught(ecs, clock, monkeypatch):
    # The same race with the re-check disabled: the stale merge reverts the ship's image.
    monkeypatch.setattr(
        EcsEngine, "running_under_lock", lambda self, req, dep, expected, read, sleep: expected
    )
    arn = template(ecs)
    ecs.before_update.append(lambda _params: ship(ecs, SHIP_IMAGE))

    run(ecs, clock, arn)

    assert image_running(ecs) != SHIP_IMAGE  # what the real re-check prevents (test above)


def test_a_deployment_that_ecs_rolls_back_raises_naming_it_and_the_reason(ecs, clock):
    def fail(seconds):
        clock.sleep(seconds)
        for arn in ecs.in_progress():
            ecs.roll_back(arn, reason="alarm ecs-delivery-dev-web-green-target-5xx in ALARM")

    first = running(ecs)
    with pytest.raises(EcsDeploymentFailedError) as error:
        run(ecs, clock, template(ecs), sleep=fail)

    assert error.value.rolled_back
    assert "ROLLBACK_SUCCESSFUL: alarm ecs-delivery-dev-web-green-target-5xx in ALARM" in str(
        error.value
    )
    assert running(ecs) == first


def test_a_deployment_that_shipped_and_bakes_counts_as_deployed(ecs, clock):
    def bake(seconds):
        clock.sleep(seconds)
        for arn in ecs.in_progress():
            ecs.bake(arn)

    result = run(ecs, clock, template(ecs), sleep=bake)

    assert result.action == "deployed"
    assert ecs.deployments[result.deployment_id]["status"] == "IN_PROGRESS"  # still baking


def test_a_stop_that_comes_too_late_raises_naming_both_revisions(ecs, clock):
    arn = template(ecs)
    ecs.before_update.append(lambda _params: ship(ecs, SHIP_IMAGE))
    real_stop = ecs.stop_service_deployment

    def finish_first(**params):
        ecs.finish(params["serviceDeploymentArn"])  # it succeeded before the stop arrived
        return real_stop(**params)

    ecs.stop_service_deployment = finish_first

    with pytest.raises(cd.StopTooLateError) as error:
        run(ecs, clock, arn)

    assert error.value.deployed == running(ecs)
    assert (
        error.value.replaced
        == ecs.revisions[
            ecs.deployments[error.value.deployment_id]["sourceServiceRevisions"][0]["arn"]
        ]
    )


def test_a_codedeploy_service_is_refused_by_the_ecs_engine_naming_both_controllers(aws_env, clock):
    with mock_aws():
        moto = client("ecs", boto3.Session(region_name=REGION))
        moto.create_cluster(clusterName=CLUSTER)
        first = moto.register_task_definition(**task_definition_spec(family=FAMILY))[
            "taskDefinition"
        ]["taskDefinitionArn"]
        moto.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=first,
            deploymentController={"type": "CODE_DEPLOY"},
        )
        ecs = EcsDeployments(moto=moto, region=REGION, account=ACCOUNT)
        with pytest.raises(ServiceStateError) as error:
            run(ecs, clock, template(ecs))
    assert "uses the CODE_DEPLOY deployment controller" in str(error.value)
    assert "deploymentController ECS" in str(error.value)
    assert ecs.updates == []


def test_an_ecs_request_needs_no_codedeploy_group_and_names_a_bad_engine():
    assert request(None, images={CONTAINER: PIPELINE_IMAGE}).application == ""
    with pytest.raises(ValueError, match="engine: 'argo' is not an engine"):
        request(None, images={CONTAINER: PIPELINE_IMAGE}, engine="argo")
    with pytest.raises(ValueError, match="application: must be a non-empty string"):
        request(None, images={CONTAINER: PIPELINE_IMAGE}, engine="codedeploy")


# --- the exact requests, against botocore's ECS model (Stubber: moto has none of them) ----

DEPLOYMENT = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{CLUSTER}/{SERVICE}/d1"
REVISION = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{CLUSTER}/{SERVICE}/r2"
TARGET = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:2"
LIVE = Running(
    task_definition_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:1",
    subnets=SUBNETS,
    security_groups=GROUPS,
    platform_version="1.4.0",
    capacity_providers=(("FARGATE_SPOT", 1, 0),),
)
IN_PROGRESS = [
    "PENDING",
    "IN_PROGRESS",
    "STOP_REQUESTED",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
]


def test_the_engine_sends_exactly_these_requests_to_start_and_stop_a_deployment():
    ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    lock = {"cluster": CLUSTER, "service": SERVICE, "status": IN_PROGRESS}
    with Stubber(ecs) as stub:
        stub.add_response("list_service_deployments", {"serviceDeployments": []}, lock)
        stub.add_response(
            "update_service",
            {"service": {"serviceName": SERVICE}},
            {
                "cluster": CLUSTER,
                "service": SERVICE,
                "taskDefinition": TARGET,
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": list(SUBNETS),
                        "securityGroups": list(GROUPS),
                        "assignPublicIp": "DISABLED",
                    }
                },
                "platformVersion": "1.4.0",
                # What runs keeps its capacity providers (the request names none).
                "capacityProviderStrategy": [
                    {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}
                ],
            },
        )
        stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": [{"serviceDeploymentArn": DEPLOYMENT, "status": "PENDING"}]},
            lock,
        )
        stub.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": DEPLOYMENT,
                        "status": "PENDING",
                        "createdAt": datetime.datetime(2026, 1, 1),
                        "targetServiceRevision": {"arn": REVISION},
                    }
                ]
            },
            {"serviceDeploymentArns": [DEPLOYMENT]},
        )
        stub.add_response(
            "describe_service_revisions",
            {"serviceRevisions": [{"serviceRevisionArn": REVISION, "taskDefinition": TARGET}]},
            {"serviceRevisionArns": [REVISION]},
        )
        stub.add_response(
            "stop_service_deployment",
            {"serviceDeploymentArn": DEPLOYMENT},
            {"serviceDeploymentArn": DEPLOYMENT, "stopType": "ROLLBACK"},
        )
        stub.add_response(
            "describe_service_deployments",
            {"serviceDeployments": [{"serviceDeploymentArn": DEPLOYMENT, "status": "STOPPED"}]},
            {"serviceDeploymentArns": [DEPLOYMENT]},
        )
        engine = EcsEngine(ecs)
        req = RolloutRequest(
            cluster=CLUSTER,
            service=SERVICE,
            template_arn=None,
            family=FAMILY,
            container_name=CONTAINER,
            container_port=PORT,
            images={CONTAINER: PIPELINE_IMAGE},
            engine="ecs",
        )
        assert engine.start(req, TARGET, LIVE, "ship", lambda _s: None, lambda: 0.0) == DEPLOYMENT
        engine.stop_and_wait(req, DEPLOYMENT, lambda _s: None, lambda: 0.0)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["PENDING", "STOP_REQUESTED", "ROLLBACK_IN_PROGRESS"])
def test_a_deployment_not_yet_or_no_longer_in_progress_still_holds_the_lock(ecs, clock, status):
    # Counting IN_PROGRESS alone would start a second deployment over a pending or
    # rolling-back one.
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=running(ecs))
    (holder,) = ecs.in_progress()
    ecs.deployments[holder]["status"] = status
    before = len(ecs.updates)

    with pytest.raises(EcsDeploymentInProgressError):
        run(ecs, clock, template(ecs), wait=False)

    assert len(ecs.updates) == before


def test_ships_landing_on_every_merge_give_up_after_the_merge_attempts_reverting_nothing(
    ecs, clock
):
    arn = template(ecs)
    images = iter(PIPELINE_IMAGE.replace("b" * 64, str(n) * 64) for n in range(1, 10))

    def ship_first(_params):
        ship(ecs, next(images))
        ecs.before_update.append(ship_first)  # and again on the next merge

    ecs.before_update.append(ship_first)

    with pytest.raises(RolloutRaceError, match="changed 3 times"):
        run(ecs, clock, arn)

    ecs.before_update.clear()
    assert len(ecs.stops) == 3  # each stale merge withdrawn
    assert image_running(ecs) == PIPELINE_IMAGE.replace("b" * 64, "3" * 64)  # the last ship

"""Every role's policy, as the plan emits it, against the AWS calls its code makes.

Each test seeds moto with the dev stack as planned (its cluster, services, deployment groups,
schedule, buckets, and the role ARNs its revisions name), runs a role's code path through its
public entry point with clients that `CallRecorder` records, and checks that (1) every
request is allowed by a statement whose Resource covers it, and (2) every statement's
(action, resource) is used, save the ones listed with the code path that uses them and why
the test cannot run it. CodeDeploy's ECS deployments are the CodeDeploy simulator's where moto stops
short (completion, StopDeployment).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ecs_delivery.components.state_machine import STEPS, definition
from ecs_delivery.offline.simcloud import plain
from ecs_delivery.runtime import clock as runtime_clock
from tests.runtime.release.test_steps import ExecutionFailed, run_states
from tests.support.iam_calls import CallRecorder, assert_proven, role_statements
from tests.support.role_world import (
    REGION,
    REPO,
    RUNTIME_LOGS,
    SCHEDULE,
    DevWorld,
)

# --- the release steps (Lambda) ---------------------------------------------------------


def _steps_handler(world: DevWorld, monkeypatch: pytest.MonkeyPatch) -> Any:
    """src/ecs_delivery/lambdas/release_steps/handler.py, its clients the world's."""
    monkeypatch.setenv("STATE_BUCKET", world.release_bucket)
    monkeypatch.setenv("INVENTORY_KEY", "inventory.json")
    monkeypatch.setenv("START_GRACE_SECONDS", "0")
    # As planned: with deployment.onTerminationWait `end` the steps end termination waits and
    # the role may ContinueDeployment; this world plans `wait`, so neither (the proof below
    # finds any grant its calls never use).
    planned = plain(
        world.plan.named("aws:lambda/function:Function", "release-start-service").inputs
    )
    monkeypatch.setenv(
        "END_TERMINATION_WAIT", planned["environment"]["variables"]["END_TERMINATION_WAIT"]
    )
    spec = importlib.util.spec_from_file_location(
        "release_steps_handler_iam",
        REPO / "src" / "ecs_delivery" / "lambdas" / "release_steps" / "handler.py",
    )
    assert spec and spec.loader
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    monkeypatch.setattr(handler, "client", lambda service, *a, **k: world.client(service))
    return handler


def run_release(world: DevWorld, handler: Any, manifest: str) -> tuple[str, Any]:
    """The release state machine as planned, each Task its Lambda handler."""
    arns = {step: f"arn:aws:lambda:{REGION}:123456789012:function:{step}" for step in STEPS}
    functions = {arns[step]: getattr(handler, step) for step in STEPS}
    trace: list[str] = []
    try:
        output = run_states(
            definition(arns, max_concurrency=4, poll_seconds=10),
            {"manifest_yaml": manifest},
            functions,
            runtime_clock.sleep,  # the Wait states pass on the simulator's virtual clock
            trace,
            # The execution's name: the runner whose lease the steps take and renew.
            {"Execution": {"Name": f"execution-{manifest.splitlines()[0].split()[-1]}"}},
        )
    except ExecutionFailed as failure:
        return "FAILED", failure.error
    return "SUCCEEDED", output


RELEASE_STEPS_UNUSED = {
    ("Logs", "logs:CreateLogStream"): RUNTIME_LOGS,
    ("Logs", "logs:PutLogEvents"): RUNTIME_LOGS,
    # The deployment core (runtime/rollout.py) polls with GetDeployment only while it waits
    # out its own deployment, stopped because another deployer shipped between its read and
    # the group's lock: tests/runtime/release/test_engine.py (..._merged_again) runs that race.
    ("Deployments", "codedeploy:GetDeployment"): "the core's stop-and-merge after a race",
}
# On the ECS engine every grant is used: the stop of the in-flight ones is the rollback's.
RELEASE_STEPS_UNUSED_ON_ECS = {
    ("Logs", "logs:CreateLogStream"): RUNTIME_LOGS,
    ("Logs", "logs:PutLogEvents"): RUNTIME_LOGS,
}


def _hold(world: DevWorld, services: list[str]) -> None:
    """Deployments of `services` run until stopped, on the world's engine."""
    if world.ecs_deployments is not None:
        world.ecs_deployments.held.update(services)
    else:
        world.simulated.hold(*services)


def _stopped(world: DevWorld) -> int:
    if world.ecs_deployments is not None:
        return len(world.ecs_deployments.stops)
    return len(world.simulated.stopped)


@pytest.mark.parametrize("engine", ["codedeploy", "ecs"])
def test_the_release_steps_role_allows_every_call_of_a_release_and_its_rollback(
    engine: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    world: DevWorld = request.getfixturevalue("world" if engine == "codedeploy" else "ecs_world")
    assert {t["engine"] for t in world.inventory["services"].values()} == {engine}
    handler = _steps_handler(world, monkeypatch)

    result = run_release(world, handler, world.manifest("r1", "2.0.0"))
    assert result[0] == "SUCCEEDED", result[1]
    # A second release whose schedule update fails after both services deployed: the whole
    # release is rolled back.
    refused: list[str] = []

    def refuse_once(**_: Any) -> Any:
        if refused:
            return None
        refused.append("UpdateSchedule")
        error = {"Error": {"Code": "ValidationException", "Message": "refused by the test"}}
        return AWSResponse("https://scheduler", 400, {}, None), error

    handler._context.cache_clear()
    world.client_hooks.append(("scheduler", "before-call.scheduler.UpdateSchedule", refuse_once))
    assert run_release(world, handler, world.manifest("r2", "3.0.0")) == (
        "FAILED",
        "ReleaseRolledBack",
    )

    # A third whose deployments are still in flight when the execution times out: the
    # rollback stops them.
    handler._context.cache_clear()
    monkeypatch.setattr(handler, "client", lambda service, *a, **k: world.client(service))
    _hold(world, [target["service"] for target in world.inventory["services"].values()])
    planned = handler.plan({"manifest_yaml": world.manifest("r3", "4.0.0")})
    for service in planned["services"]:
        # Twice: Step Functions retries a step whose Lambda timed out; the retry finds the
        # deployment the first attempt created.
        for _ in range(2):
            handler.start_service({"release_id": planned["release_id"], "service": service})
    status = handler.rollback({"plan": planned, "error": {"Error": "States.Timeout", "Cause": ""}})
    while status["status"] == "rolling_back":
        runtime_clock.sleep(10)  # the state machine's Wait between polls
        status = handler.rollback_poll({"release_id": planned["release_id"]})
    assert status["status"] == "rolled_back"
    # Every service's deployment was in flight (on the ECS engine dev's worker too).
    assert _stopped(world) == len(planned["services"]) == {"codedeploy": 2, "ecs": 3}[engine]

    assert_proven(
        role_statements(world.plan, "release-steps"),
        world.recorder.requests,
        RELEASE_STEPS_UNUSED if engine == "codedeploy" else RELEASE_STEPS_UNUSED_ON_ECS,
    )


# --- the validation hook (Lambda) -------------------------------------------------------


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_the_validation_hook_role_allows_reading_and_reporting_each_groups_deployment(
    plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stubber, not moto: moto has no PutLifecycleEventHookExecutionStatus.
    sys.path.insert(0, str(REPO / "src" / "ecs_delivery" / "lambdas"))
    from validation_hook import handler

    recorder = CallRecorder()
    codedeploy = recorder.attach(boto3.client("codedeploy", region_name=REGION))
    monkeypatch.setattr(handler, "build_codedeploy_client", lambda: codedeploy)
    # No configuration for the group: the hook reports Failed without probing (the calls
    # to CodeDeploy are the same whatever the verdict).
    monkeypatch.setenv("VALIDATION_CONFIG", "{}")
    monkeypatch.delenv("TEST_URL", raising=False)
    inventory = plan.outputs["releaseInventory"]["services"]
    with Stubber(codedeploy) as stubber:
        for index, target in enumerate(inventory.values()):
            deployment_id, execution = f"d-HOOK{index:05d}", f"hook-{index}"
            stubber.add_response(
                "get_deployment",
                {
                    "deploymentInfo": {
                        "applicationName": target["codedeployApplication"],
                        "deploymentGroupName": target["codedeployGroup"],
                        "deploymentId": deployment_id,
                    }
                },
                {"deploymentId": deployment_id},
            )
            stubber.add_response(
                "put_lifecycle_event_hook_execution_status",
                {"lifecycleEventHookExecutionId": execution},
                {
                    "deploymentId": deployment_id,
                    "lifecycleEventHookExecutionId": execution,
                    "status": "Failed",
                },
            )
            event = {"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": execution}
            handler.handler(event, _Context())
        stubber.assert_no_pending_responses()

    assert_proven(
        role_statements(plan, "validation-hook"),
        recorder.requests,
        {
            ("Logs", "logs:CreateLogStream"): RUNTIME_LOGS,
            ("Logs", "logs:PutLogEvents"): RUNTIME_LOGS,
            # Lambda itself attaches the VPC function's network interfaces with the role.
            **{
                ("VpcNetworkInterfaces", action): "Lambda's VPC networking, not our code"
                for action in (
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:UnassignPrivateIpAddresses",
                )
            },
        },
    )


# --- the scheduler (EventBridge Scheduler runs the task) --------------------------------


def test_the_scheduler_role_allows_running_the_scheduled_task_as_its_target_says(
    world: DevWorld,
) -> None:
    # What EventBridge Scheduler does with the role: RunTask as the planned target says.
    # moto cannot start an awsvpc task (its network-interface model fails, and the plan's
    # subnet ids are placeholders): the call is refused after it was recorded.
    for name in world.inventory["scheduledTasks"]:
        planned = plain(world.plan.named(SCHEDULE, f"task-{name}").inputs)
        target = world.setup["scheduler"].get_schedule(Name=planned["name"])["Target"]
        parameters = target["EcsParameters"]
        network = parameters["NetworkConfiguration"]["awsvpcConfiguration"]
        assert network["Subnets"] and network["SecurityGroups"]
        ecs = world.client("ecs")
        with pytest.raises(ClientError):
            ecs.run_task(
                cluster=target["Arn"],
                taskDefinition=parameters["TaskDefinitionArn"],
                count=parameters["TaskCount"],
                launchType=parameters["LaunchType"],
                enableECSManagedTags=parameters["EnableECSManagedTags"],
                propagateTags=parameters["PropagateTags"],
            )

        assert_proven(
            role_statements(world.plan, f"task-{name}-scheduler"),
            world.recorder.requests,
            {
                ("TagTask", "ecs:TagResource"): (
                    "tags the task RunTask starts (managed tags, propagated from the revision); "
                    "moto starts no awsvpc task, so there is no task ARN to record"
                ),
                ("RunTask", "ecs:RunTask"): (
                    "the unrevisioned family ARN serves a target naming the family alone; "
                    "ours name a revision, so only `family:*` is exercised"
                ),
            },
        )

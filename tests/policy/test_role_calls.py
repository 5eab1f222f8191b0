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
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from ecs_delivery.components.state_machine import STEPS, definition
from ecs_delivery.offline.codedeploy_sim import CodeDeploySim, on_virtual_time
from ecs_delivery.offline.simcloud import plain
from ecs_delivery.runtime import clock as runtime_clock
from tests.conftest import make_plan
from tests.runtime.release.test_steps import ExecutionFailed, run_states
from tests.support.iam_calls import CallRecorder, denied, role_statements, unused

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"
SCHEDULE = "aws:scheduler/schedule:Schedule"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"

# Grants whose callers are AWS services acting for the role, not code a test runs: the
# Lambda and CodeBuild runtimes write the role's logs.
RUNTIME_LOGS = "the Lambda/CodeBuild runtime writes the function's logs, not our code"


@pytest.fixture(scope="module")
def plan():
    return make_plan("dev")


@dataclass
class DevWorld:
    """The dev stack as planned, seeded in moto; `clients` are the code's (recorded) ones."""

    plan: Any
    recorder: CallRecorder
    setup: dict[str, Any]
    simulated: CodeDeploySim
    # (service, event, handler) registered first on each such client made from here on
    client_hooks: list[tuple[str, str, Any]] = field(default_factory=list)

    @property
    def inventory(self) -> dict[str, Any]:
        return self.plan.outputs["releaseInventory"]

    @property
    def release_bucket(self) -> str:
        return str(self.plan.outputs["releaseBucket"])

    def client(self, service: str) -> Any:
        """A client for the code under test: recorded, CodeDeploy simulated."""
        made = self.recorder.attach(boto3.client(service, region_name=REGION))
        for hooked, event, hook in self.client_hooks:
            if hooked == service:
                made.meta.events.register_first(event, hook)
        if service == "ecs":
            self.simulated.observe(made)
        return self.simulated.attach(made) if service == "codedeploy" else made

    def task_definition(self, unit: str) -> dict[str, Any]:
        return plain(self.plan.named(TASK_DEFINITION, unit).inputs)

    def seed(self) -> None:
        ecs, codedeploy = self.setup["ecs"], self.setup["codedeploy"]
        s3, scheduler = self.setup["s3"], self.setup["scheduler"]
        services = self.inventory["services"]
        (cluster,) = {s["cluster"] for s in services.values()}
        ecs.create_cluster(clusterName=cluster)
        (application,) = {s["codedeployApplication"] for s in services.values()}
        codedeploy.create_application(applicationName=application, computePlatform="ECS")
        for name, target in services.items():
            arn = self._register(target["taskFamily"], name, target["container"], "1.0.0")
            ecs.create_service(
                cluster=cluster,
                serviceName=target["service"],
                taskDefinition=arn,
                desiredCount=1,
                launchType="FARGATE",
                deploymentController={"type": "CODE_DEPLOY"},
            )
            group = plain(self.plan.named(GROUP, f"codedeploy-{name}").inputs)
            codedeploy.create_deployment_group(
                applicationName=application,
                deploymentGroupName=target["codedeployGroup"],
                deploymentConfigName=group["deploymentConfigName"],
                serviceRoleArn=f"arn:aws:iam::123456789012:role/{application}-codedeploy",
                deploymentStyle={
                    "deploymentType": "BLUE_GREEN",
                    "deploymentOption": "WITH_TRAFFIC_CONTROL",
                },
                ecsServices=[{"serviceName": target["service"], "clusterName": cluster}],
            )
        for name, task in self.inventory["scheduledTasks"].items():
            arn = self._register(task["taskFamily"], f"task-{name}", task["container"], "1.0.0")
            planned = plain(self.plan.named(SCHEDULE, f"task-{name}").inputs)
            parameters = planned["target"]["ecsParameters"]
            scheduler.create_schedule(
                Name=planned["name"],
                GroupName=planned["groupName"],
                ScheduleExpression=planned["scheduleExpression"],
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={
                    "Arn": planned["target"]["arn"],
                    "RoleArn": planned["target"]["roleArn"],
                    "EcsParameters": {
                        "TaskDefinitionArn": arn,
                        "TaskCount": 1,
                        "LaunchType": parameters["launchType"],
                        "EnableECSManagedTags": parameters["enableEcsManagedTags"],
                        "PropagateTags": parameters["propagateTags"],
                        "NetworkConfiguration": {
                            "awsvpcConfiguration": {
                                "Subnets": parameters["networkConfiguration"]["subnets"],
                                "SecurityGroups": parameters["networkConfiguration"][
                                    "securityGroups"
                                ],
                                "AssignPublicIp": "DISABLED",
                            }
                        },
                    },
                },
            )
        s3.create_bucket(
            Bucket=self.release_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3.put_object(
            Bucket=self.release_bucket, Key="inventory.json", Body=json.dumps(self.inventory)
        )

    def _register(self, family: str, unit: str, container: str, version: str) -> str:
        """A revision of `family` as Pulumi's template registers it (the plan's roles)."""
        planned = self.task_definition(unit)
        return str(
            self.setup["ecs"].register_task_definition(
                family=family,
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu=planned["cpu"],
                memory=planned["memory"],
                executionRoleArn=planned["executionRoleArn"],
                taskRoleArn=planned["taskRoleArn"],
                containerDefinitions=[
                    {
                        "name": container,
                        "image": f"{REGISTRY}/{container}:{version}",
                        "essential": True,
                        # moto's RunTask sums the containers' memory
                        "memory": int(planned["memory"]),
                        "portMappings": [
                            {"containerPort": self._port(container), "protocol": "tcp"}
                        ],
                    }
                ],
                tags=[{"key": k, "value": v} for k, v in sorted(planned["tags"].items())],
            )["taskDefinition"]["taskDefinitionArn"]
        )

    def _port(self, container: str) -> int:
        """The port the inventory routes to (the deployment core refuses any other)."""
        for target in self.inventory["services"].values():
            if target["container"] == container:
                return int(target["containerPort"])
        return 8080

    def manifest(self, release: str, version: str) -> str:
        """Every service and task of the inventory to `version`."""
        lines = [f"release: {release}", f"environment: {self.inventory['environment']}"]
        lines.append("services:")
        for target in self.inventory["services"].values():
            lines.append(f"  {target['container']}:")
            lines.append(f"    image: {REGISTRY}/{target['container']}:{version}")
        lines.append("scheduledTasks:")
        for name, task in self.inventory["scheduledTasks"].items():
            lines.append(f"  {name}:")
            lines.append(f"    image: {REGISTRY}/{task['container']}:{version}")
        return "\n".join(lines) + "\n"


@pytest.fixture
def world(plan) -> Iterator[DevWorld]:
    with mock_aws():
        setup = {
            name: boto3.client(name, region_name=REGION)
            for name in ("ecs", "codedeploy", "s3", "scheduler")
        }
        with on_virtual_time(setup["ecs"]) as simulated:
            built = DevWorld(plan=plan, recorder=CallRecorder(), setup=setup, simulated=simulated)
            built.seed()
            yield built


def assert_proven(statements, recorder: CallRecorder, allowed: dict[tuple[str, str], str]):
    assert recorder.requests, "the code path made no AWS call"
    assert "\n".join(denied(statements, recorder.requests)) == ""
    assert "\n".join(unused(statements, recorder.requests, allowed)) == ""


# --- the release steps (Lambda) ---------------------------------------------------------


def _steps_handler(world: DevWorld, monkeypatch: pytest.MonkeyPatch) -> Any:
    """src/ecs_delivery/lambdas/release_steps/handler.py, its clients the world's."""
    monkeypatch.setenv("STATE_BUCKET", world.release_bucket)
    monkeypatch.setenv("INVENTORY_KEY", "inventory.json")
    monkeypatch.setenv("START_GRACE_SECONDS", "0")
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


def test_the_release_steps_role_allows_every_call_of_a_release_and_its_rollback(
    world: DevWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    world.simulated.hold(*(target["service"] for target in world.inventory["services"].values()))
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
    assert len(world.simulated.stopped) == 2

    assert_proven(
        role_statements(world.plan, "release-steps"), world.recorder, RELEASE_STEPS_UNUSED
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
        recorder,
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
            world.recorder,
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

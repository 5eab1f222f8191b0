"""Scheduled tasks: EventBridge Scheduler runs Fargate tasks privately; tasks follow their service's image."""

from __future__ import annotations

import json

from tests.conftest import make_plan, upstream_outputs
from tests.support.registrations import containers, inputs, policy

TASK = "task-nightly-report"
ROLLOUT = "pulumi-python:dynamic/rollout:TaskRollout"
BOOTSTRAP = "public.ecr.aws/docker/library/busybox:1.36"
API_LIVE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/api@sha256:" + "2" * 64


def test_schedule_runs_the_task_on_the_cluster_in_private_subnets_without_a_public_ip(dev_plan):
    schedule = inputs(dev_plan, "aws:scheduler/schedule:Schedule", TASK)
    assert schedule["scheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule["state"] == "ENABLED"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule["target"]
    assert target["arn"] == "arn:aws:ecs:eu-west-1:123456789012:cluster/ecs-delivery-dev"
    ecs = target["ecsParameters"]
    assert ecs["launchType"] == "FARGATE" and ecs["taskCount"] == 1
    assert ecs["networkConfiguration"] == {
        "subnets": ["network-private-eu-west-1a-id", "network-private-eu-west-1b-id"],
        "securityGroups": [f"{TASK}-task-id"],
        "assignPublicIp": False,
    }
    # The family, not a revision: each run starts the newest revision, which only deployers
    # (the task's rollout among them) register, so Pulumi never names or reverts one.
    assert (
        ecs["taskDefinitionArn"]
        == "arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-delivery-dev-nightly-report"
    )


def test_the_template_lives_outside_the_family_its_schedule_runs(dev_plan):
    template = inputs(dev_plan, "aws:ecs/taskDefinition:TaskDefinition", TASK)
    assert template["family"] == "ecs-delivery-dev-nightly-report-template"
    rollout = dev_plan.named(ROLLOUT, f"{TASK}-rollout")
    assert rollout.inputs["family"] == "ecs-delivery-dev-nightly-report"
    assert rollout.inputs["template_arn"] == (
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/"
        "ecs-delivery-dev-nightly-report-template:1"
    )
    assert rollout.inputs["schedule"] == "default/ecs-delivery-dev-nightly-report"
    schedule = dev_plan.named("aws:scheduler/schedule:Schedule", TASK)
    assert rollout.urn in schedule.options["dependsOn"]


def test_task_container_runs_its_command_listens_on_no_port_and_reads_secrets_by_arn(dev_plan):
    (container,) = containers(dev_plan, TASK)
    assert container["command"] == ["python", "-m", "app.reports", "--nightly"]
    assert "portMappings" not in container
    assert container["readonlyRootFilesystem"] is True and container["user"] == "1000"
    assert [s["name"] for s in container["secrets"]] == ["DATABASE_URL"]
    assert inputs(dev_plan, "aws:ecs/taskDefinition:TaskDefinition", TASK)["skipDestroy"] is True


def test_task_security_group_admits_nothing(dev_plan):
    ingress = [
        r
        for r in dev_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == f"{TASK}-task-id"
    ]
    assert ingress == []


def test_scheduler_role_runs_only_this_family_and_passes_only_the_task_roles_to_ecs(dev_plan):
    statements = {s["Sid"]: s for s in policy(dev_plan, f"{TASK}-scheduler")["Statement"]}
    family = "arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-delivery-dev-nightly-report"
    assert statements["RunTask"]["Resource"] == [f"{family}:*", family]
    assert statements["RunTask"]["Condition"] == {
        "ArnEquals": {"ecs:cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/ecs-delivery-dev"}
    }
    assert statements["PassTaskRoles"]["Resource"] == [
        "arn:aws:iam::123456789012:role/task-nightly-report-execution-"
        + statements["PassTaskRoles"]["Resource"][0].rsplit("-", 1)[-1],
        statements["PassTaskRoles"]["Resource"][1],
    ]
    assert all(
        ":role/task-nightly-report-" in arn for arn in statements["PassTaskRoles"]["Resource"]
    )
    assert statements["PassTaskRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    trust = json.loads(
        inputs(dev_plan, "aws:iam/role:Role", f"{TASK}-scheduler")["assumeRolePolicy"]
    )
    assert trust["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}


def test_a_new_task_that_follows_a_service_starts_on_the_services_live_image():
    plan = make_plan("dev", environment={"services": {"api": {"containers": {"api": API_LIVE}}}})
    # The template declares no live image (a ship must change no input); the first revision
    # of the new family takes what the service runs.
    assert containers(plan, TASK)[0]["image"] == BOOTSTRAP
    rollout = plan.named(ROLLOUT, f"{TASK}-rollout").inputs
    assert rollout["initial_images"] == {"nightly-report": API_LIVE}
    assert rollout["pinned_images"] == {} and "promotion" not in rollout
    resolution = plan.outputs["imageResolution"]["nightly-report"]["nightly-report"]
    assert resolution == {"now": None, "after": API_LIVE, "source": "follows api (live)"}


def test_an_existing_task_that_follows_a_service_keeps_what_it_runs():
    task_image = API_LIVE.replace("2" * 64, "3" * 64)
    environment = {
        "services": {"api": {"containers": {"api": API_LIVE}}},
        "scheduledTasks": {"nightly-report": {"containers": {"nightly-report": task_image}}},
    }
    plan = make_plan("dev", environment=environment)
    rollout = plan.named(ROLLOUT, f"{TASK}-rollout").inputs
    assert containers(plan, TASK)[0]["image"] == BOOTSTRAP
    assert rollout["initial_images"] == {} and rollout["pinned_images"] == {}
    resolution = plan.outputs["imageResolution"]["nightly-report"]["nightly-report"]
    assert (resolution["now"], resolution["after"]) == (task_image, task_image)


def test_a_task_that_follows_a_service_moves_with_a_promotion():
    upstream = (
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/api@sha256:" + "9" * 64
    )
    images = {"api": {"api": upstream}, "web": {"web": upstream}}
    environment = {
        "stacks": {"dev": upstream_outputs(images)},
        "promotionRecords": {"dev": {"3f9c2a1": images}},
    }
    plan = make_plan("prod", environment=environment, overrides={"promoteRelease": "3f9c2a1"})
    assert containers(plan, TASK)[0]["image"] == upstream
    assert containers(plan, "api")[0]["image"] == upstream
    assert plan.named(ROLLOUT, f"{TASK}-rollout").inputs["promotion"] == {
        "release": "3f9c2a1",
        "images": {"nightly-report": upstream},
    }


def test_an_independent_task_keeps_its_live_image():
    task_image = (
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/cleanup@sha256:" + "4" * 64
    )
    overrides = {
        "scheduledTasks": {"cleanup": {"schedule": "rate(1 hour)", "command": ["cleanup"]}}
    }
    plan = make_plan(
        "dev",
        environment={"scheduledTasks": {"cleanup": {"containers": {"cleanup": task_image}}}},
        overrides=overrides,
    )
    assert containers(plan, "task-cleanup")[0]["image"] == BOOTSTRAP  # never what runs
    resolution = plan.outputs["imageResolution"]["cleanup"]["cleanup"]
    assert resolution == {"now": task_image, "after": task_image, "source": "live"}
    fresh = make_plan("dev", overrides=overrides)
    assert (
        containers(fresh, "task-cleanup")[0]["image"]
        == "public.ecr.aws/docker/library/busybox:1.36"
    )


def test_an_independent_tasks_image_is_read_from_the_revision_its_schedule_targets():
    # After a release rollback the schedule targets an older revision than the newest one.
    targeted = "arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-delivery-dev-cleanup:3"
    image = (
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/cleanup@sha256:" + "5" * 64
    )
    overrides = {
        "scheduledTasks": {"cleanup": {"schedule": "rate(1 hour)", "command": ["cleanup"]}}
    }
    environment = {
        "scheduledTasks": {
            "cleanup": {"containers": {"cleanup": image}, "taskDefinitionArn": targeted}
        }
    }
    plan = make_plan("dev", environment=environment, overrides=overrides)
    schedule_reads = [a for t, a in plan.invokes if t == "aws:cloudcontrol/getResource:getResource"]
    assert schedule_reads == [
        {"typeName": "AWS::Scheduler::Schedule", "identifier": "ecs-delivery-dev-cleanup"}
    ]
    container_reads = [
        a["taskDefinition"] for t, a in plan.invokes if t.endswith("getContainerDefinition")
    ]
    assert container_reads == [targeted]
    assert plan.outputs["imageResolution"]["cleanup"]["cleanup"]["now"] == image


def test_a_schedule_that_names_the_family_runs_and_shows_its_newest_revision():
    family = "arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-delivery-dev-cleanup"
    image = API_LIVE.replace("api", "cleanup")
    overrides = {
        "scheduledTasks": {"cleanup": {"schedule": "rate(1 hour)", "command": ["cleanup"]}}
    }
    environment = {
        "scheduledTasks": {
            "cleanup": {"containers": {"cleanup": image}, "taskDefinitionArn": family}
        }
    }
    plan = make_plan("dev", environment=environment, overrides=overrides)
    container_reads = [
        a["taskDefinition"] for t, a in plan.invokes if t.endswith("getContainerDefinition")
    ]
    assert container_reads == ["ecs-delivery-dev-cleanup"]
    assert plan.outputs["imageResolution"]["cleanup"]["cleanup"]["now"] == image


def test_a_task_that_follows_an_arm64_service_runs_on_arm64():
    """Issue 17: the scheduled task's definition hard-coded X86_64, so a task following an
    ARM64 service ran that service's ARM image on x86 (it does not start)."""
    from pathlib import Path

    import yaml

    stack = yaml.safe_load(Path("Pulumi.dev.yaml").read_text())["config"]
    raw, pipeline = stack["ecs-delivery:services"], stack["ecs-delivery:pipeline"]
    services = {name: {**svc, "cpuArchitecture": "ARM64"} for name, svc in raw.items()}
    plan = make_plan(
        "dev",
        overrides={
            "services": services,
            "pipeline": {
                **pipeline,
                "buildImage": "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
            },
        },
    )

    task = plan.named("aws:ecs/taskDefinition:TaskDefinition", TASK)
    assert task.inputs["runtimePlatform"]["cpuArchitecture"] == "ARM64"

"""Scheduled Fargate task: EventBridge Scheduler runs it in the private subnets of the cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.args import checked, from_config
from ecs_delivery.components.codedeploy import pass_role_statement
from ecs_delivery.components.config import (
    KmsConfig,
    ScheduledTaskConfig,
    ServiceConfig,
    StackConfig,
)
from ecs_delivery.components.fargate_service import create_task_egress, missing_network_inputs
from ecs_delivery.components.images import TASK_TAG
from ecs_delivery.components.naming import TYPE_PREFIX
from ecs_delivery.components.rollout import TaskRollout, TaskRolloutArgs
from ecs_delivery.components.task_definition import Container, TaskOwner


@checked
@dataclass(frozen=True, kw_only=True)
class ScheduledTaskArgs:
    """A task run on a schedule by EventBridge Scheduler: its task definition, roles and rule."""

    task_name: str
    # The task's own family (every deployer registers here; its schedule runs the newest
    # revision) and the Pulumi template's, outside it. None: `<family>-template`.
    family: str
    template_family: str | None = None
    container: Container
    cpu: int = from_config(ScheduledTaskConfig, "cpu")
    memory: int = from_config(ScheduledTaskConfig, "memory")
    schedule: str
    timezone: str = from_config(ScheduledTaskConfig, "timezone")
    enabled: bool = from_config(ScheduledTaskConfig, "enabled")
    retry_attempts: int = from_config(ScheduledTaskConfig, "retry_attempts")
    cluster_arn: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    region: str
    account_id: str
    log_retention_days: int = from_config(StackConfig, "log_retention_days")
    # The stack's customer-managed key (kms config); None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    image_repository_arns: pulumi.Input[list[str]] | None = None
    # Bring your own (each None: the task creates it); see FargateServiceArgs. Without
    # security_group_ids the task's own group needs the VPC and its CIDR.
    security_group_ids: list[pulumi.Input[str]] | None = None
    vpc_id: pulumi.Input[str] | None = None
    vpc_cidr: pulumi.Input[str] | None = None
    task_role_arn: pulumi.Input[str] | None = None
    execution_role_arn: pulumi.Input[str] | None = None
    # The image's CPU: a task that follows a service runs that service's image, so its
    # architecture (an ARM64 image on an X86_64 task does not start).
    cpu_architecture: str = from_config(ServiceConfig, "cpu_architecture")
    # Deploy-time ownership (see TaskRolloutArgs): an image pinned in the config, a promotion
    # ({"release", "images"}), the first revision's image, and the stack's AWS settings.
    pinned_image: str | None = None
    promotion: dict[str, Any] | None = None
    initial_image: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class ScheduledTask(TaskOwner, pulumi.ComponentResource):
    """Template, rollout, roles, security group and schedule of one scheduled task.

    `task_definition` is the template (every Pulumi-owned field, in its own family); the
    `rollout` registers those fields onto the newest revision of the task's family at deploy
    time, keeping the image a deployer put there. The schedule names the family, so every
    run starts the newest revision and Pulumi never names (or reverts) a revision.
    """

    schedule: aws.scheduler.Schedule
    rollout: TaskRollout

    def __init__(
        self, name: str, args: ScheduledTaskArgs, opts: pulumi.ResourceOptions | None = None
    ):
        missing = missing_network_inputs(
            args.security_group_ids, vpc_id=args.vpc_id, vpc_cidr=args.vpc_cidr
        )
        if missing:
            raise ValueError(
                f"ScheduledTask {name!r}: without security_group_ids the task creates its own "
                f"group and needs {', '.join(missing)}; pass them or security_group_ids"
            )
        super().__init__(f"{TYPE_PREFIX}:scheduled-task:ScheduledTask", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, TASK_TAG: args.task_name}
        self._create_task_roles(
            name,
            args,
            family=args.family,
            what=f"scheduled task {args.task_name}",
            agent=f"ECS agent role of scheduled task {args.task_name}",
            tags=tags,
        )
        if args.security_group_ids is None:
            group = aws.ec2.SecurityGroup(
                f"{name}-task",
                vpc_id=args.vpc_id,
                description=f"Scheduled task {args.task_name}: no ingress, HTTPS and VPC egress",
                tags={**tags, "Name": f"{name}-task"},
                opts=child,
            )
            create_task_egress(name, group, args.vpc_cidr, parent=self)
            self.security_group_ids = [group.id]
        else:
            self.security_group_ids = list(args.security_group_ids)
        self.task_definition = self._create_task_definition(
            name,
            args,
            family=args.template_family or f"{args.family}-template",
            stream_prefix=args.task_name,
            tags=tags,
        )
        self.rollout = TaskRollout(
            f"{name}-rollout",
            TaskRolloutArgs(
                family=args.family,
                template_arn=self.task_definition.arn,
                region=args.region,
                schedule=f"default/{args.family}",
                pinned_images={args.task_name: args.pinned_image} if args.pinned_image else {},
                promotion=args.promotion,
                initial_images={args.task_name: args.initial_image} if args.initial_image else {},
                profile=args.profile,
                role_arn=args.role_arn,
            ),
            opts=child,
        )
        family_arn = naming.arn(
            "ecs", f"task-definition/{args.family}", region=args.region, account=args.account_id
        )
        scheduler_role, _ = iam.service_role(
            f"{name}-scheduler",
            service="scheduler.amazonaws.com",
            description=f"EventBridge Scheduler runs scheduled task {args.task_name}",
            source_account=args.account_id,
            statements=[
                {
                    "Sid": "RunTask",
                    "Effect": "Allow",
                    "Action": "ecs:RunTask",
                    # Any revision of this family (a release registers new ones), in this cluster only.
                    "Resource": [f"{family_arn}:*", family_arn],
                    "Condition": {"ArnEquals": {"ecs:cluster": args.cluster_arn}},
                },
                {
                    "Sid": "TagTask",
                    "Effect": "Allow",
                    "Action": "ecs:TagResource",
                    "Resource": naming.arn(
                        "ecs", "task/*", region=args.region, account=args.account_id
                    ),
                    "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
                },
                pass_role_statement([self.execution_role_arn, self.task_role_arn]),
            ],
            tags=tags,
            parent=self,
        )
        self.scheduler_role = scheduler_role
        self.schedule = aws.scheduler.Schedule(
            name,
            name=args.family,  # deterministic: the release engine updates it by name
            group_name="default",
            description=f"Runs scheduled task {args.task_name}",
            schedule_expression=args.schedule,
            schedule_expression_timezone=args.timezone,
            state="ENABLED" if args.enabled else "DISABLED",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=args.cluster_arn,
                role_arn=scheduler_role.arn,
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=args.retry_attempts, maximum_event_age_in_seconds=3600
                ),
                ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                    # The family, no revision: each run starts the newest ACTIVE revision.
                    task_definition_arn=family_arn,
                    launch_type="FARGATE",
                    platform_version="LATEST",
                    task_count=1,
                    enable_ecs_managed_tags=True,
                    propagate_tags="TASK_DEFINITION",
                    network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                        subnets=args.subnet_ids,
                        security_groups=self.security_group_ids,
                        assign_public_ip=False,
                    ),
                ),
            ),
            # A release may set container overrides in the target's input; Pulumi never sets
            # them, so it must not remove them either.
            # After the rollout: the family has its newest revision before a run can start.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["target.input"], depends_on=[self.rollout]
            ),
        )
        self.register_outputs(
            {
                "templateTaskDefinitionArn": self.task_definition.arn,
                "taskDefinitionArn": self.rollout.running_task_definition_arn,
                "securityGroupIds": self.security_group_ids,
                "executionRoleArn": self.execution_role_arn,
                "taskRoleArn": self.task_role_arn,
                "schedule": self.schedule.name,
                "scheduleArn": self.schedule.arn,
            }
        )

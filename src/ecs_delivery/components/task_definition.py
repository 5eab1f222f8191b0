"""One Fargate task definition builder, for a service's template and for a scheduled task:
its container, its log group, its execution and task roles, the task definition itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam
from ecs_delivery.components.args import checked


@checked
@dataclass(frozen=True, kw_only=True)
class Container:
    """The Pulumi-owned settings of the service's container; `image` is already resolved."""

    name: str
    image: pulumi.Input[str]
    port: int
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # Hardening is stated by the caller (config owns the secure defaults: read-only, uid 1000).
    readonly_root_filesystem: bool
    user: str | None
    writable_paths: list[str] = field(default_factory=lambda: ["/tmp"])
    command: list[str] | None = None
    # Set only while the container runs its bootstrap image (components/bootstrap.py).
    entry_point: list[str] | None = None
    docker_labels: dict[str, str] = field(default_factory=dict)


def container_definitions(
    container: Container, image: str, *, log_group: str, region: str, stream_prefix: str
) -> str:
    """The containerDefinitions JSON of the task definition (secrets by ARN, never in plain env)."""
    definition: dict = {
        "name": container.name,
        "image": image,
        "essential": True,
        "environment": [{"name": k, "value": v} for k, v in sorted(container.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(container.secrets.items())],
        "readonlyRootFilesystem": container.readonly_root_filesystem,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": stream_prefix,
            },
        },
        "linuxParameters": {"initProcessEnabled": True},
    }
    if container.port:  # scheduled tasks listen on nothing
        definition["portMappings"] = [
            {"containerPort": container.port, "hostPort": container.port, "protocol": "tcp"}
        ]
    if container.user:
        definition["user"] = container.user
    if container.command:
        definition["command"] = container.command
    if container.entry_point:
        definition["entryPoint"] = container.entry_point
    if container.docker_labels:
        definition["dockerLabels"] = container.docker_labels
    if container.readonly_root_filesystem and container.writable_paths:
        definition["mountPoints"] = [
            {"sourceVolume": _volume_name(path), "containerPath": path, "readOnly": False}
            for path in container.writable_paths
        ]
    return json.dumps([definition], sort_keys=True)


# The policy pack's tag for a task whose stack config relaxes the container hardening.
HARDENING_OPT_OUT_TAG = "ecs-delivery:hardening-opt-out"


def hardening_tags(container: Container) -> dict[str, str]:
    """The opt-out tag when the stack config asks for a writable root or a root user, so
    the policy pack sees a decision, not an accident."""
    relaxed = []
    if not container.readonly_root_filesystem:
        relaxed.append("readonlyRootFilesystem")
    if (container.user or "").split(":")[0] in ("", "0", "root"):
        relaxed.append("user")
    return {HARDENING_OPT_OUT_TAG: "stack-config " + " ".join(relaxed)} if relaxed else {}


def _volume_name(path: str) -> str:
    return "writable" + path.replace("/", "-").rstrip("-")


def create_execution_role(
    name: str,
    *,
    description: str,
    log_group_arn: pulumi.Input[str],
    secrets: dict[str, str],
    image_repository_arns: pulumi.Input[list[str]] | None,
    account_id: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """The role the ECS agent uses for a task: its logs, its image repositories, its secrets only."""
    statements: list[dict] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [pulumi.Output.concat(log_group_arn, ":*")],
        }
    ]
    if image_repository_arns is not None:
        statements += [
            # GetAuthorizationToken has no resource-level permissions in IAM.
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "EcrPull",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                "Resource": image_repository_arns,
            },
        ]
    secret_arns = sorted({a for a in secrets.values() if ":secretsmanager:" in a})
    parameter_arns = sorted({a for a in secrets.values() if ":ssm:" in a})
    if secret_arns:
        statements.append(
            {
                "Sid": "Secrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arns,
            }
        )
    if parameter_arns:
        statements.append(
            {
                "Sid": "Parameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": parameter_arns,
            }
        )
    role, _ = iam.service_role(
        name,
        service="ecs-tasks.amazonaws.com",
        description=description,
        source_account=account_id,
        statements=statements,
        tags=tags,
        parent=parent,
    )
    return role


def task_volumes(container: Container) -> list[aws.ecs.TaskDefinitionVolumeArgs]:
    """Writable scratch volumes for the paths a read-only container still needs to write."""
    if not container.readonly_root_filesystem:
        return []
    return [
        aws.ecs.TaskDefinitionVolumeArgs(name=_volume_name(p)) for p in container.writable_paths
    ]


@dataclass(frozen=True)
class TaskRoles:
    """A task's log group and roles; the ARNs are the created roles' or the given ones."""

    log_group: aws.cloudwatch.LogGroup
    execution_role: aws.iam.Role | None
    task_role: aws.iam.Role | None
    execution_role_arn: pulumi.Input[str]
    task_role_arn: pulumi.Input[str]


def create_task_roles(
    name: str,
    *,
    family: str,
    what: str,
    execution_description: str,
    container: Container,
    account_id: str,
    log_retention_days: int,
    kms_key_arn: pulumi.Input[str] | None,
    image_repository_arns: pulumi.Input[list[str]] | None,
    execution_role_arn: pulumi.Input[str] | None,
    task_role_arn: pulumi.Input[str] | None,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> TaskRoles:
    """The log group `/ecs/<family>` and, unless given, the execution role (`<name>-execution`)
    and the task role (`<name>-task`, no permissions) of the task `what` names."""
    child = pulumi.ResourceOptions(parent=parent)
    log_group = aws.cloudwatch.LogGroup(
        name,
        name=f"/ecs/{family}",
        retention_in_days=log_retention_days,
        kms_key_id=kms_key_arn,
        tags=tags,
        opts=child,
    )
    execution_role = (
        create_execution_role(
            f"{name}-execution",
            description=execution_description,
            log_group_arn=log_group.arn,
            secrets=container.secrets,
            image_repository_arns=image_repository_arns,
            account_id=account_id,
            tags=tags,
            parent=parent,
        )
        if execution_role_arn is None
        else None
    )
    task_role = (
        aws.iam.Role(
            f"{name}-task",
            description=f"Application role of {what} (no permissions by default)",
            assume_role_policy=iam.assume_role_policy(
                "ecs-tasks.amazonaws.com", source_account=account_id
            ),
            tags=tags,
            opts=child,
        )
        if task_role_arn is None
        else None
    )
    return TaskRoles(
        log_group=log_group,
        execution_role=execution_role,
        task_role=task_role,
        execution_role_arn=execution_role.arn if execution_role else execution_role_arn,
        task_role_arn=task_role.arn if task_role else task_role_arn,
    )


def create_task_definition(
    name: str,
    *,
    family: str,
    container: Container,
    cpu: int,
    memory: int,
    cpu_architecture: str,
    roles: TaskRoles,
    region: str,
    stream_prefix: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.ecs.TaskDefinition:
    """A Fargate (awsvpc, Linux) task definition of one container logging to `roles.log_group`.

    `cpu_architecture` is the image's: a task that runs a service's image follows the
    service's architecture (an ARM64 image on an X86_64 task does not start).
    """
    definitions = pulumi.Output.all(
        pulumi.Output.from_input(container.image), roles.log_group.name
    ).apply(
        lambda values: container_definitions(
            container, values[0], log_group=values[1], region=region, stream_prefix=stream_prefix
        )
    )
    return aws.ecs.TaskDefinition(
        name,
        family=family,
        requires_compatibilities=["FARGATE"],
        network_mode="awsvpc",
        cpu=str(cpu),
        memory=str(memory),
        execution_role_arn=roles.execution_role_arn,
        task_role_arn=roles.task_role_arn,
        container_definitions=definitions,
        volumes=task_volumes(container),
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture=cpu_architecture
        ),
        # Old revisions stay registered: a CodeDeploy or release rollback (a schedule's
        # too) points back at one.
        skip_destroy=True,
        tags={**tags, **hardening_tags(container)},
        opts=pulumi.ResourceOptions(parent=parent),
    )

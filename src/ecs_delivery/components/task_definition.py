"""One Fargate task-definition builder, for a service's template and for a scheduled task:
the container, the task's log group, its execution and task roles, the task definition."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.args import checked, from_config
from ecs_delivery.components.config import ContainerConfig, ServiceConfig
from ecs_delivery.components.config.services import ContainerHealthCheckConfig, EfsVolumeConfig

ECR_PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]


@dataclass(frozen=True, kw_only=True)
class ContainerHealthCheck:
    """ECS's container health check (containerHealthCheck config)."""

    command: list[str]
    interval_seconds: int = from_config(ContainerHealthCheckConfig, "interval_seconds")
    timeout_seconds: int = from_config(ContainerHealthCheckConfig, "timeout_seconds")
    retries: int = from_config(ContainerHealthCheckConfig, "retries")
    start_period_seconds: int = from_config(ContainerHealthCheckConfig, "start_period_seconds")


@dataclass(frozen=True, kw_only=True)
class EfsVolume:
    """An EFS mount of the container (services.<name>.volumes config)."""

    file_system_id: str
    container_path: str
    read_only: bool = from_config(EfsVolumeConfig, "read_only")
    transit_encryption: bool = from_config(EfsVolumeConfig, "transit_encryption")
    iam_authorization: bool = from_config(EfsVolumeConfig, "iam_authorization")
    access_point_id: str | None = from_config(EfsVolumeConfig, "access_point_id")
    root_directory: str = from_config(EfsVolumeConfig, "root_directory")
    # Given: FargateService admits NFS from its tasks into this group.
    mount_target_security_group_id: str | None = from_config(
        EfsVolumeConfig, "mount_target_security_group_id"
    )

    @property
    def volume_name(self) -> str:
        return "efs" + self.container_path.replace("/", "-").rstrip("-")


@checked
@dataclass(frozen=True, kw_only=True)
class Container:
    """The Pulumi-owned settings of the service's container; `image` is already resolved."""

    name: str
    image: pulumi.Input[str]
    port: int
    environment: dict[str, str] = from_config(ContainerConfig, "environment")
    secrets: dict[str, str] = from_config(ContainerConfig, "secrets")
    # Hardening defaults are the config's secure ones (read-only root, uid 1000).
    readonly_root_filesystem: bool = from_config(ContainerConfig, "readonly_root_filesystem")
    user: str | None = from_config(ContainerConfig, "user")
    writable_paths: list[str] = from_config(ServiceConfig, "writable_paths")
    command: list[str] | None = from_config(ServiceConfig, "command")
    # Set only while the container runs its bootstrap image (components/bootstrap.py).
    entry_point: list[str] | None = None
    docker_labels: dict[str, str] = field(default_factory=dict)
    health_check: ContainerHealthCheck | None = from_config(
        ContainerConfig, "container_health_check"
    )
    efs_volumes: list[EfsVolume] = field(default_factory=list)
    # The port mapping's name and protocol, which Service Connect refers to (None: unnamed).
    port_name: str | None = None
    app_protocol: str | None = None


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
        mapping = {"containerPort": container.port, "hostPort": container.port, "protocol": "tcp"}
        if container.port_name:
            mapping["name"] = container.port_name
        if container.app_protocol:
            mapping["appProtocol"] = container.app_protocol
        definition["portMappings"] = [mapping]
    if container.user:
        definition["user"] = container.user
    if container.command:
        definition["command"] = container.command
    if container.entry_point:
        definition["entryPoint"] = container.entry_point
    if container.docker_labels:
        definition["dockerLabels"] = container.docker_labels
    if check := container.health_check:
        definition["healthCheck"] = {
            "command": check.command,
            "interval": check.interval_seconds,
            "timeout": check.timeout_seconds,
            "retries": check.retries,
            "startPeriod": check.start_period_seconds,
        }
    mounts = [
        {"sourceVolume": _volume_name(path), "containerPath": path, "readOnly": False}
        for path in (container.writable_paths if container.readonly_root_filesystem else [])
    ] + [
        {"sourceVolume": v.volume_name, "containerPath": v.container_path, "readOnly": v.read_only}
        for v in container.efs_volumes
    ]
    if mounts:
        definition["mountPoints"] = mounts
    return json.dumps([definition], sort_keys=True)


def efs_statements(volumes: list[EfsVolume], *, region: str, account_id: str) -> list[dict]:
    """The task role mounts (and, unless read-only, writes) each IAM-authorised file system,
    only through its access point when it has one."""
    statements = []
    for index, volume in enumerate(v for v in volumes if v.iam_authorization):
        actions = ["elasticfilesystem:ClientMount"]
        if not volume.read_only:
            actions.append("elasticfilesystem:ClientWrite")
        arn = naming.arn(
            "elasticfilesystem",
            f"file-system/{volume.file_system_id}",
            region=region,
            account=account_id,
        )
        condition = (
            {
                "StringEquals": {
                    "elasticfilesystem:AccessPointArn": naming.arn(
                        "elasticfilesystem",
                        f"access-point/{volume.access_point_id}",
                        region=region,
                        account=account_id,
                    )
                }
            }
            if volume.access_point_id
            else None
        )
        statements.append(iam.allow(f"Efs{index}", actions, arn, condition))
    return statements


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
        statements += iam.ecr_statements("EcrPull", ECR_PULL_ACTIONS, image_repository_arns)
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
    """Writable scratch volumes for the paths a read-only container still needs to write,
    and the container's EFS volumes."""
    scratch = container.writable_paths if container.readonly_root_filesystem else []
    return [aws.ecs.TaskDefinitionVolumeArgs(name=_volume_name(p)) for p in scratch] + [
        aws.ecs.TaskDefinitionVolumeArgs(
            name=v.volume_name,
            efs_volume_configuration=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationArgs(
                file_system_id=v.file_system_id,
                root_directory=v.root_directory,
                transit_encryption="ENABLED" if v.transit_encryption else "DISABLED",
                authorization_config=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfigArgs(
                    access_point_id=v.access_point_id,
                    iam="ENABLED" if v.iam_authorization else "DISABLED",
                ),
            ),
        )
        for v in container.efs_volumes
    ]


class TaskInputs(Protocol):
    """The fields FargateServiceArgs and ScheduledTaskArgs share, which the builders read."""

    container: Container
    cpu: int
    memory: int
    cpu_architecture: str
    region: str
    account_id: str
    log_retention_days: int
    kms_key_arn: pulumi.Input[str] | None
    image_repository_arns: pulumi.Input[list[str]] | None
    execution_role_arn: pulumi.Input[str] | None
    task_role_arn: pulumi.Input[str] | None


class TaskOwner:
    """Mixed into a component that runs one Fargate task definition (a service, a scheduled
    task): it builds the task's log group, roles and task definition as its children."""

    task_definition: aws.ecs.TaskDefinition
    log_group: aws.cloudwatch.LogGroup
    # What the tasks run with, created or given: the rollout, the scheduler and every
    # PassRole statement use exactly these.
    security_group_ids: list[pulumi.Input[str]]
    execution_role_arn: pulumi.Input[str]
    task_role_arn: pulumi.Input[str]
    # The created ones; None when the Args bring their own.
    execution_role: aws.iam.Role | None
    task_role: aws.iam.Role | None

    def _create_task_roles(
        self,
        name: str,
        args: TaskInputs,
        *,
        family: str,
        what: str,
        agent: str,
        tags: dict,
        task_statements: list[dict] | None = None,
    ) -> None:
        """The log group `/ecs/<family>` and, unless the Args give them, the execution role
        (`<name>-execution`, described by `agent`) and the task role (`<name>-task`, with
        only `task_statements`: EFS mounts, ECS Exec; a given task role must carry them)."""
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            name,
            name=f"/ecs/{family}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=tags,
            opts=child,
        )
        self.execution_role = (
            create_execution_role(
                f"{name}-execution",
                description=agent,
                log_group_arn=self.log_group.arn,
                secrets=args.container.secrets,
                image_repository_arns=args.image_repository_arns,
                account_id=args.account_id,
                tags=tags,
                parent=self,
            )
            if args.execution_role_arn is None
            else None
        )
        self.task_role = (
            aws.iam.Role(
                f"{name}-task",
                description=f"Application role of {what} (no permissions by default)",
                assume_role_policy=iam.assume_role_policy(
                    "ecs-tasks.amazonaws.com", source_account=args.account_id
                ),
                tags=tags,
                opts=child,
            )
            if args.task_role_arn is None
            else None
        )
        statements = efs_statements(
            args.container.efs_volumes, region=args.region, account_id=args.account_id
        ) + list(task_statements or [])
        if self.task_role and statements:
            aws.iam.RolePolicy(
                f"{name}-task",
                role=self.task_role.id,
                policy=iam.output_document(statements),
                opts=child,
            )
        self.execution_role_arn = (
            self.execution_role.arn if self.execution_role else args.execution_role_arn
        )
        self.task_role_arn = self.task_role.arn if self.task_role else args.task_role_arn

    def _create_task_definition(
        self, name: str, args: TaskInputs, *, family: str, stream_prefix: str, tags: dict
    ) -> aws.ecs.TaskDefinition:
        """A Fargate (awsvpc, Linux) task definition of the one container, logging to the
        task's log group, on the image's CPU architecture (a task that runs a service's
        image follows that service's: an ARM64 image on an X86_64 task does not start)."""
        container = args.container
        definitions = pulumi.Output.all(
            pulumi.Output.from_input(container.image), self.log_group.name
        ).apply(
            lambda values: container_definitions(
                container,
                values[0],
                log_group=values[1],
                region=args.region,
                stream_prefix=stream_prefix,
            )
        )
        return aws.ecs.TaskDefinition(
            name,
            family=family,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(args.cpu),
            memory=str(args.memory),
            execution_role_arn=self.execution_role_arn,
            task_role_arn=self.task_role_arn,
            container_definitions=definitions,
            volumes=task_volumes(container),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=args.cpu_architecture
            ),
            # Old revisions stay registered: a CodeDeploy or release rollback (a schedule's
            # too) points back at one.
            skip_destroy=True,
            tags={**tags, **hardening_tags(container)},
            opts=pulumi.ResourceOptions(parent=self),
        )

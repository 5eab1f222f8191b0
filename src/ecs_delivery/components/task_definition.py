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
from ecs_delivery.components.config.containers import ContainerHealthCheckConfig
from ecs_delivery.components.config.services import EfsVolumeConfig

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
    # A sidecar's (the traffic container is always essential and takes the task's limits).
    essential: bool = True
    depends_on: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    cpu: int | None = None
    memory: int | None = None
    memory_reservation: int | None = None
    # "awsfirelens": the logs go through the task's FireLens router (`firelens` True) to
    # the task's log group; the router itself logs there through awslogs.
    log_driver: str = "awslogs"
    firelens: bool = False


def container_definitions(
    containers: list[Container],
    images: list[str],
    *,
    log_group: str,
    region: str,
    stream_prefix: str,
) -> str:
    """The containerDefinitions JSON of the task definition: the traffic container first,
    then its sidecars (secrets by ARN, never in plain env)."""
    definitions = [
        _definition(
            container,
            image,
            log_group=log_group,
            region=region,
            stream_prefix=stream_prefix,
            volume_prefix="" if index == 0 else f"{container.name}-",
        )
        for index, (container, image) in enumerate(zip(containers, images, strict=True))
    ]
    return json.dumps(definitions, sort_keys=True)


def _log_configuration(container: Container, log_group: str, region: str, prefix: str) -> dict:
    if container.log_driver == "awsfirelens":
        # Fluent Bit's cloudwatch_logs output, into the same group and stream naming.
        options = {
            "Name": "cloudwatch_logs",
            "region": region,
            "log_group_name": log_group,
            "log_stream_prefix": f"{prefix}/",
            "auto_create_group": "false",
        }
        return {"logDriver": "awsfirelens", "options": options}
    options = {
        "awslogs-group": log_group,
        "awslogs-region": region,
        "awslogs-stream-prefix": prefix,
    }
    return {"logDriver": "awslogs", "options": options}


def _definition(
    container: Container,
    image: str,
    *,
    log_group: str,
    region: str,
    stream_prefix: str,
    volume_prefix: str,
) -> dict:
    definition: dict = {
        "name": container.name,
        "image": image,
        "essential": container.essential,
        "environment": [{"name": k, "value": v} for k, v in sorted(container.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(container.secrets.items())],
        "readonlyRootFilesystem": container.readonly_root_filesystem,
        "logConfiguration": _log_configuration(container, log_group, region, stream_prefix),
        "linuxParameters": {"initProcessEnabled": True},
    }
    mappings = []
    if container.port:  # scheduled tasks listen on nothing
        mapping = {"containerPort": container.port, "hostPort": container.port, "protocol": "tcp"}
        if container.port_name:
            mapping["name"] = container.port_name
        if container.app_protocol:
            mapping["appProtocol"] = container.app_protocol
        mappings.append(mapping)
    mappings += [{"containerPort": p, "hostPort": p, "protocol": "tcp"} for p in container.ports]
    if mappings:
        definition["portMappings"] = mappings
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
    if container.depends_on:
        definition["dependsOn"] = [
            {"containerName": name, "condition": condition}
            for name, condition in sorted(container.depends_on.items())
        ]
    for key, value in (
        ("cpu", container.cpu),
        ("memory", container.memory),
        ("memoryReservation", container.memory_reservation),
    ):
        if value is not None:
            definition[key] = value
    if container.firelens:
        definition["firelensConfiguration"] = {
            "type": "fluentbit",
            "options": {"enable-ecs-log-metadata": "true"},
        }
    mounts = [
        {"sourceVolume": volume, "containerPath": path, "readOnly": False}
        for volume, path in _scratch(container, volume_prefix)
    ] + [
        {"sourceVolume": v.volume_name, "containerPath": v.container_path, "readOnly": v.read_only}
        for v in container.efs_volumes
    ]
    if mounts:
        definition["mountPoints"] = mounts
    return definition


def _scratch(container: Container, volume_prefix: str) -> list[tuple[str, str]]:
    """(volume, path) of the container's own writable paths on a read-only root; a
    sidecar's volumes carry its name, so no two containers share scratch space."""
    paths = container.writable_paths if container.readonly_root_filesystem else []
    return [(volume_prefix + _volume_name(path), path) for path in paths]


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


def hardening_tags(*containers: Container) -> dict[str, str]:
    """The opt-out tag when the stack config asks for a writable root or a root user, so
    the policy pack sees a decision, not an accident (a sidecar's named `<sidecar>.<field>`)."""
    relaxed = []
    for index, container in enumerate(containers):
        prefix = "" if index == 0 else f"{container.name}."
        if not container.readonly_root_filesystem:
            relaxed.append(prefix + "readonlyRootFilesystem")
        # FireLens requires its router to run as root; the policy pack knows (rules.py).
        if (container.user or "").split(":")[0] in ("", "0", "root") and not container.firelens:
            relaxed.append(prefix + "user")
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


def task_volumes(containers: list[Container]) -> list[aws.ecs.TaskDefinitionVolumeArgs]:
    """Writable scratch volumes for the paths a read-only container still needs to write,
    and the traffic container's EFS volumes."""
    scratch = [
        volume
        for index, container in enumerate(containers)
        for volume, _ in _scratch(container, "" if index == 0 else f"{container.name}-")
    ]
    return [aws.ecs.TaskDefinitionVolumeArgs(name=v) for v in scratch] + [
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
        for v in containers[0].efs_volumes
    ]


def task_containers(args: TaskInputs) -> list[Container]:
    """The traffic container, then its sidecars (a scheduled task has none)."""
    return [args.container, *getattr(args, "sidecars", [])]


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
                secrets={
                    f"{c.name}/{k}": v for c in task_containers(args) for k, v in c.secrets.items()
                },
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
        if any(c.log_driver == "awsfirelens" for c in task_containers(args)):
            # The FireLens router writes the service container's logs as the task role.
            statements.append(
                iam.allow(
                    "FireLensLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(self.log_group.arn, ":*")],
                )
            )
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
        """A Fargate (awsvpc, Linux) task definition of the task's containers, logging to the
        task's log group, on the image's CPU architecture (a task that runs a service's
        image follows that service's: an ARM64 image on an X86_64 task does not start)."""
        containers = task_containers(args)
        definitions = pulumi.Output.all(
            self.log_group.name, *(pulumi.Output.from_input(c.image) for c in containers)
        ).apply(
            lambda values: container_definitions(
                containers,
                values[1:],
                log_group=values[0],
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
            volumes=task_volumes(containers),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=args.cpu_architecture
            ),
            # Old revisions stay registered: a CodeDeploy or release rollback (a schedule's
            # too) points back at one.
            skip_destroy=True,
            tags={**tags, **hardening_tags(*containers)},
            opts=pulumi.ResourceOptions(parent=self),
        )

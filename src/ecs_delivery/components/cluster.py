"""The ECS cluster of a stack (Container Insights, ECS Exec session logging, the Fargate
capacity providers), or one made elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import naming
from ecs_delivery.components.args import checked, derived, from_config, with_defaults
from ecs_delivery.components.config import StackConfig
from ecs_delivery.components.naming import TYPE_PREFIX

FARGATE_PROVIDERS = ["FARGATE", "FARGATE_SPOT"]


@dataclass(frozen=True, kw_only=True)
class ExistingCluster:
    """A cluster made elsewhere: what `EcsCluster` exposes to services and tasks (no resource)."""

    arn: pulumi.Input[str]
    name: str
    # Its ECS Exec session log group, if it logs sessions (the task roles write there).
    exec_log_group_arn: pulumi.Input[str] | None = None


@dataclass(frozen=True, kw_only=True)
class ExecLogging:
    """Where the cluster logs ECS Exec sessions: a log group of its own."""

    retention_days: int
    # The stack's customer-managed key; None: CloudWatch Logs' own encryption.
    kms_key_arn: pulumi.Input[str] | None


@checked
@dataclass(frozen=True, kw_only=True)
class EcsClusterArgs:
    """The ECS cluster: its name, Container Insights and, when needed, ECS Exec logging."""

    cluster_name: str | None = derived("`naming.cluster_name(project, stack)`")
    container_insights: bool = from_config(StackConfig, "container_insights")
    # Given when a service enables ECS Exec: the cluster's executeCommandConfiguration.
    exec_logging: ExecLogging | None = None
    # The Fargate capacity providers when a service uses a strategy (none: launch types only).
    fargate_capacity_providers: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class EcsCluster(pulumi.ComponentResource):
    """One ECS cluster per stack with Container Insights (and ECS Exec session logging)."""

    # The exec session log group's ARN; None without exec_logging.
    exec_log_group_arn: pulumi.Output[str] | None
    capacity_providers: aws.ecs.ClusterCapacityProviders | None

    def __init__(self, name: str, args: EcsClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}:cluster:EcsCluster", name, None, opts)
        project, stack = pulumi.get_project(), pulumi.get_stack()
        args = with_defaults(args, cluster_name=lambda: naming.cluster_name(project, stack))
        child = pulumi.ResourceOptions(parent=self)
        configuration = None
        self.exec_log_group_arn = None
        if logging := args.exec_logging:
            group = aws.cloudwatch.LogGroup(
                f"{name}-exec",
                name=f"/ecs/{args.cluster_name}/exec",
                retention_in_days=logging.retention_days,
                kms_key_id=logging.kms_key_arn,
                tags=args.tags,
                opts=child,
            )
            self.exec_log_group_arn = group.arn
            configuration = aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    logging="OVERRIDE",
                    log_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationLogConfigurationArgs(
                        cloud_watch_log_group_name=group.name,
                        # The agent then refuses to log into a group that lost its key.
                        cloud_watch_encryption_enabled=logging.kms_key_arn is not None,
                    ),
                )
            )
        self.cluster = aws.ecs.Cluster(
            name,
            name=args.cluster_name,
            settings=[
                aws.ecs.ClusterSettingArgs(
                    name="containerInsights",
                    value="enabled" if args.container_insights else "disabled",
                )
            ],
            configuration=configuration,
            tags=args.tags,
            opts=child,
        )
        # Services that use a strategy wait for this (the providers must be associated first).
        self.capacity_providers = (
            aws.ecs.ClusterCapacityProviders(
                name,
                cluster_name=self.cluster.name,
                capacity_providers=FARGATE_PROVIDERS,
                opts=child,
            )
            if args.fargate_capacity_providers
            else None
        )
        self.arn = self.cluster.arn
        self.name = args.cluster_name
        self.register_outputs(
            {
                "arn": self.cluster.arn,
                "name": args.cluster_name,
                "execLogGroupArn": self.exec_log_group_arn,
            }
        )

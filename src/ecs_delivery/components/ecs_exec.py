"""ECS Exec into a service's tasks (enableExecuteCommand): what the task role may do, and
where the SSM agent writes on a read-only root filesystem."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi

from ecs_delivery.components import iam, naming

# Where the SSM agent of ECS Exec writes: writable volumes on a read-only root filesystem
# (AWS supports Exec only on a writable root; these volumes are the workaround of
# aws/containers-roadmap#1359, README: Known limits).
EXEC_AGENT_PATHS = ["/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"]
# The SSM data channel of ECS Exec: these actions have no resource-level permissions.
SSM_CHANNEL_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


def task_statements(
    log_group_arn: pulumi.Input[str] | None, *, region: str, account_id: str
) -> list[dict]:
    """What the SSM agent of ECS Exec does as the task role: open the session channels and
    write session logs to the cluster's exec log group only."""
    statements = [iam.allow("ExecChannels", SSM_CHANNEL_ACTIONS, "*")]
    if log_group_arn is not None:
        statements += [
            # The agent checks the group's encryption before it logs.
            iam.allow(
                "ExecLogGroups",
                ["logs:DescribeLogGroups"],
                naming.arn("logs", "log-group:*", region=region, account=account_id),
            ),
            iam.allow(
                "ExecLogs",
                ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                [pulumi.Output.concat(log_group_arn, ":*")],
            ),
        ]
    return statements


def with_agent_paths(args: Any) -> Any:
    """FargateServiceArgs `args` whose container, with ECS Exec on a read-only root, has the
    SSM agent's paths as writable volumes."""
    container = args.container
    if not (args.enable_execute_command and container.readonly_root_filesystem):
        return args
    paths = [
        *container.writable_paths,
        *(p for p in EXEC_AGENT_PATHS if p not in container.writable_paths),
    ]
    return dataclasses.replace(args, container=dataclasses.replace(container, writable_paths=paths))

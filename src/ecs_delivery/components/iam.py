"""IAM policy documents built as plain JSON (no invokes), so tests can read every statement."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

# IAM's limits (default quotas), checked at plan time: IAM itself refuses only when applying.
INLINE_POLICY_CHARACTERS = 10_240  # all inline policies of one role together
MANAGED_POLICY_CHARACTERS = 6_144
MANAGED_POLICIES_PER_ROLE = 10  # "Managed policies per role", adjustable up to 20


def document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def assume_role_policy(service: str, *, source_account: str | None = None) -> str:
    """Trust policy for an AWS service principal, optionally pinned to our account (confused deputy)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document([statement])


def output_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """A policy document whose statements may hold Outputs (ARNs of other resources)."""
    return pulumi.Output.from_input(statements).apply(document)


def size(text: str) -> int:
    """A policy's size as IAM counts it: its characters, whitespace excluded."""
    return sum(not c.isspace() for c in text)


def within(name: str, text: str, *, limit: int, fix: str) -> str:
    """`text` unchanged, or a refusal naming the policy, its size, IAM's limit and the fix."""
    found = size(text)
    if found > limit:
        # RunError: the plan and `pulumi up` show the message without a traceback.
        raise pulumi.RunError(
            f"{name}: policy of {found:,} characters exceeds IAM's {limit:,}; {fix}"
        )
    return text


def sized_document(
    name: str, statements: list[dict[str, Any]], *, limit: int, fix: str
) -> pulumi.Output[str]:
    """output_document, refused at plan time once its values are known when over `limit`."""
    return output_document(statements).apply(lambda text: within(name, text, limit=limit, fix=fix))


def check_attachments(role: str, count: int, *, fix: str) -> None:
    """Refuse more managed policies on one role than IAM's default quota allows."""
    if count > MANAGED_POLICIES_PER_ROLE:
        raise ValueError(
            f"{role}: {count} managed policies to attach; IAM attaches at most "
            f"{MANAGED_POLICIES_PER_ROLE} to a role by default; {fix}"
        )


def service_role(
    name: str,
    *,
    service: str,
    statements: list[dict[str, Any]],
    parent: pulumi.Resource,
    description: str | None = None,
    source_account: str | None = None,
    tags: dict[str, str] | None = None,
    aliases: list[pulumi.Alias] | None = None,
    size_fix: str | None = None,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role for one AWS service principal with its one inline policy (both named `name`).

    `aliases` apply to both: the two always had the same name. `size_fix`: the policy is
    refused at plan time over IAM's inline limit, with this advice (roles whose policy still
    grows with the services, in pipeline.py and release.py, do not pass it yet).
    """
    child = pulumi.ResourceOptions(parent=parent, aliases=aliases)
    role = aws.iam.Role(
        name,
        description=description,
        assume_role_policy=assume_role_policy(service, source_account=source_account),
        tags=tags or {},
        opts=child,
    )
    text = (
        sized_document(name, statements, limit=INLINE_POLICY_CHARACTERS, fix=size_fix)
        if size_fix
        else output_document(statements)
    )
    policy = aws.iam.RolePolicy(name, role=role.id, policy=text, opts=child)
    return role, policy


def allow(
    sid: str, actions: list[str], resources: Any, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One Allow statement; `condition` only when given (an empty one is not the same)."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def task_definition_statements(family_arns: list[str]) -> list[dict[str, Any]]:
    """Read and register task definitions, tagging only new revisions of the given families.

    `family_arns` are `task-definition/<family>:*` ARNs (naming.arn).
    """
    return [register_task_definitions_statement(), tag_new_revisions_statement(family_arns)]


def register_task_definitions_statement() -> dict[str, Any]:
    # Neither action supports resource-level permissions in IAM; what a registered revision
    # may do is bounded by the roles its registrant may pass.
    return {
        "Sid": "TaskDefinitions",
        "Effect": "Allow",
        "Action": ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"],
        "Resource": "*",
    }


def tag_new_revisions_statement(family_arns: list[str]) -> dict[str, Any]:
    """Tag only revisions being registered, of exactly these families."""
    return {
        "Sid": "TagNewRevisions",
        "Effect": "Allow",
        "Action": "ecs:TagResource",
        "Resource": family_arns,
        "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
    }


def ecr_statements(sid: str, actions: list[str], repositories: Any) -> list[dict[str, Any]]:
    """Registry login and `actions` on exactly `repositories` (ARNs; pushing or pulling)."""
    return [
        # GetAuthorizationToken has no resource-level permissions in IAM.
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": repositories},
    ]


def chunks(values: list[Any], size: int) -> list[list[Any]]:
    """`values` in consecutive lists of at most `size` (per-unit statements across policies,
    each within IAM's size limit)."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def use_connection_statement(connection_arn: pulumi.Input[str], sid: str) -> dict[str, Any]:
    """A pipeline's source action uses a CodeStar/CodeConnections connection: connections
    created as codeconnections are authorised under either prefix, so both are granted."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["codeconnections:UseConnection", "codestar-connections:UseConnection"],
        "Resource": connection_arn,
    }

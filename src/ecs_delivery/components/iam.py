"""IAM policy documents built as plain JSON (no invokes), so tests can read every statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import naming

# IAM's limits (default quotas), checked at plan time: IAM itself refuses only when applying.
INLINE_POLICY_CHARACTERS = 10_240  # all inline policies of one role together
MANAGED_POLICY_CHARACTERS = 6_144
MANAGED_POLICIES_PER_ROLE = 10  # "Managed policies per role", adjustable up to 20
ROLE_NAME_CHARACTERS = 64  # IAM's longest role name: bounds an ARN known only once created
# What `docker push` calls on a repository, and DescribeImages (a build's image look-up).
ECR_PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]


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
        # RunError: the plan and `pulumi up` show the message without a traceback.
        raise pulumi.RunError(
            f"{role}: {count} managed policies to attach; IAM attaches at most "
            f"{MANAGED_POLICIES_PER_ROLE} to a role by default; {fix}"
        )


def longest_role_arn(region: str) -> int:
    """Characters of the longest ARN a role (path "/") can have in `region`'s partition."""
    return len(
        naming.iam_arn("role/" + "r" * ROLE_NAME_CHARACTERS, region=region, account="0" * 12)
    )


def units_per_policy(
    shared: list[dict[str, Any]], unit_characters: int, *, limit: int = MANAGED_POLICY_CHARACTERS
) -> int:
    """How many units of at most `unit_characters` (their ARNs as listed, quotes and commas
    included) fit one policy beside `shared` (the statements as they are with no unit)."""
    room = limit - size(document(shared))
    if room < unit_characters:
        raise ValueError(f"no unit of {unit_characters} characters fits a policy of {limit:,}")
    return room // unit_characters


def attach_policies(
    role_name: str,
    role: aws.iam.Role,
    documents: list[list[dict[str, Any]]],
    *,
    description: str,
    parent: pulumi.Resource,
    tags: dict[str, str],
    fix: str,
) -> list[aws.iam.RolePolicyAttachment]:
    """Managed policies `<role_name>-units-<i>` of `documents`, attached to `role`: refused
    beforehand over the role's quota, and each at plan time over IAM's managed limit."""
    check_attachments(role_name, len(documents), fix=fix)
    child = pulumi.ResourceOptions(parent=parent)
    attachments = []
    for i, statements in enumerate(documents, start=1):
        name = f"{role_name}-units-{i}"
        policy = aws.iam.Policy(
            name,
            description=f"{description}, part {i}",
            policy=sized_document(name, statements, limit=MANAGED_POLICY_CHARACTERS, fix=fix),
            tags=tags,
            opts=child,
        )
        attachments.append(
            aws.iam.RolePolicyAttachment(name, role=role.name, policy_arn=policy.arn, opts=child)
        )
    return attachments


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
    size_fix: str = "put the statements that grow with the services in managed policies "
    "(iam.attach_policies)",
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role for one AWS service principal with its one inline policy (both named `name`).

    `aliases` apply to both: the two always had the same name. The policy is refused at plan
    time over IAM's inline limit, with the advice `size_fix`.
    """
    child = pulumi.ResourceOptions(parent=parent, aliases=aliases)
    role = aws.iam.Role(
        name,
        description=description,
        assume_role_policy=assume_role_policy(service, source_account=source_account),
        tags=tags or {},
        opts=child,
    )
    text = sized_document(name, statements, limit=INLINE_POLICY_CHARACTERS, fix=size_fix)
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


# What the deployment core calls on ECS's own blue/green (runtime/ecs_engine.py).
ECS_ENGINE_SERVICE_ACTIONS = ["ecs:ListServiceDeployments", "ecs:UpdateService"]
ECS_ENGINE_DEPLOYMENT_ACTIONS = ["ecs:DescribeServiceDeployments", "ecs:StopServiceDeployment"]


def ecs_engine_statements(
    clusters: Sequence[str], *, region: str, account_id: str
) -> list[dict[str, Any]]:
    """Deploy through ECS's own blue/green (deployment.engine ecs) on the services of exactly
    these clusters (the stack's own): update a service, find and stop its service deployments,
    read their revisions. The deployer, the pipeline's deploy role and the release steps hold
    these; PassRole for the task roles is each one's own statement."""

    def arns(kind: str) -> list[str]:
        return [
            naming.arn("ecs", f"{kind}/{c}/*", region=region, account=account_id)
            for c in sorted(set(clusters))
        ]

    return [
        allow("EcsEngineServices", list(ECS_ENGINE_SERVICE_ACTIONS), arns("service")),
        allow(
            "EcsEngineDeployments",
            list(ECS_ENGINE_DEPLOYMENT_ACTIONS),
            arns("service-deployment"),
        ),
        allow("EcsEngineRevisions", ["ecs:DescribeServiceRevisions"], arns("service-revision")),
    ]


def deployment_configs_statement(
    names: Sequence[pulumi.Input[str]], *, region: str, account_id: str
) -> dict[str, Any]:
    """GetDeploymentConfig on exactly the configurations the stack's groups use (CreateDeployment
    checks it on the group's), each named once. The deployer, the pipeline's deploy role and
    the release steps all hold this one statement."""

    def arns(values: Sequence[str]) -> list[str]:
        return [
            naming.arn("codedeploy", f"deploymentconfig:{c}", region=region, account=account_id)
            for c in sorted(set(values))
        ]

    plain = all(isinstance(n, str) for n in names)
    return {
        "Sid": "DeploymentConfigs",
        "Effect": "Allow",
        "Action": "codedeploy:GetDeploymentConfig",
        "Resource": arns(names) if plain else pulumi.Output.all(*names).apply(arns),  # type: ignore[arg-type]
    }


def manual_approval_statements(
    cluster: str, services: Sequence[str], *, region: str, account_id: str
) -> list[dict[str, Any]]:
    """What a person needs to answer the manual gate (deployment.manualApproval) of exactly
    these services: find the service's deployment and its paused hook, then continue it or
    roll it back (ContinueServiceDeployment). Nothing else: no UpdateService, no PassRole."""

    def arns(kind: str, suffix: str = "") -> list[str]:
        return [
            naming.arn("ecs", f"{kind}/{cluster}/{s}{suffix}", region=region, account=account_id)
            for s in sorted(set(services))
        ]

    return [
        allow("FindDeployments", ["ecs:ListServiceDeployments"], arns("service")),
        allow(
            "AnswerGate",
            ["ecs:ContinueServiceDeployment", "ecs:DescribeServiceDeployments"],
            arns("service-deployment", "/*"),
        ),
    ]

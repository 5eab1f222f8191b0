"""Least-privilege access for deployers outside the stack (release CLI, CI jobs, image pushers).

A managed policy that allows exactly what a deployment of this stack needs, on this stack's
resources only, and optionally a role that GitHub Actions assumes through OIDC for one
repository and branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import iam, naming
from components.codedeploy import pass_role_statement
from components.naming import TYPE_PREFIX
from components.pipeline import ECR_PUSH_ACTIONS

SCHEDULER = "scheduler.amazonaws.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
DEPLOYMENT_ACTIONS = (
    "codedeploy:BatchGetDeployments",
    "codedeploy:CreateDeployment",
    "codedeploy:GetDeployment",
    "codedeploy:ListDeployments",
    "codedeploy:StopDeployment",
)


@dataclass(frozen=True, kw_only=True)
class GithubOidc:
    """A role GitHub Actions assumes for one repository and branch."""

    repository: str  # "owner/repo"
    branch: str = "main"
    # The account's GitHub OIDC provider; default: the conventional one in this account.
    provider_arn: str | None = None

    def __post_init__(self) -> None:
        owner, _, repo = self.repository.partition("/")
        if not owner or not repo or "/" in repo:
            raise ValueError(f"githubRepository {self.repository!r}: use owner/repo")
        if not self.branch or "*" in self.branch:
            raise ValueError(f"branch {self.branch!r}: name one branch (no wildcards)")


@dataclass(frozen=True, kw_only=True)
class DeployerAccessArgs:
    project: str
    stack: str
    region: str
    account_id: str
    cluster_name: str
    # ECS service names; each has the deployment group of the same key in `deployment_groups`.
    services: Sequence[str]
    application_name: str
    deployment_groups: Sequence[str]
    # The groups' deployment configurations (names; Outputs of the groups are fine).
    deployment_configs: Sequence[pulumi.Input[str]]
    # Families the deployer registers revisions of (services' and scheduled tasks'; never the
    # `-template` families, which only Pulumi registers).
    task_families: Sequence[str]
    # Task and execution roles the registered revisions name (passed only to ECS tasks).
    task_role_arns: Sequence[pulumi.Input[str]]
    # Repositories the deployer pushes to (a downstream stack pushes nothing).
    repository_arns: Sequence[pulumi.Input[str]] = ()
    # Scheduled tasks' schedules ("group/name") and the roles their targets carry.
    schedules: Sequence[str] = ()
    scheduler_role_arns: Sequence[pulumi.Input[str]] = ()
    # The release engine's state bucket (config `release`), if any.
    release_bucket: str | None = None
    github: GithubOidc | None = None
    tags: dict[str, str] = field(default_factory=dict)


def deployer_statements(args: DeployerAccessArgs) -> list[dict[str, Any]]:
    """The policy's statements; "*" only where IAM offers no resource-level permissions."""
    region, account = args.region, args.account_id

    def arn(service: str, resource: str) -> str:
        return naming.arn(service, resource, region=region, account=account)

    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadServices",
            "Effect": "Allow",
            "Action": "ecs:DescribeServices",
            "Resource": [
                arn("ecs", f"service/{args.cluster_name}/{s}") for s in sorted(args.services)
            ],
        },
        *iam.task_definition_statements(
            [arn("ecs", f"task-definition/{f}:*") for f in sorted(args.task_families)]
        ),
        pass_role_statement(args.task_role_arns),
        {
            "Sid": "Deployments",
            "Effect": "Allow",
            "Action": list(DEPLOYMENT_ACTIONS),
            "Resource": [
                arn("codedeploy", f"deploymentgroup:{args.application_name}/{g}")
                for g in sorted(args.deployment_groups)
            ],
        },
        # CreateDeployment also needs these on the application and the group's configuration.
        {
            "Sid": "Revisions",
            "Effect": "Allow",
            "Action": [
                "codedeploy:GetApplicationRevision",
                "codedeploy:RegisterApplicationRevision",
            ],
            "Resource": arn("codedeploy", f"application:{args.application_name}"),
        },
        {
            "Sid": "DeploymentConfigs",
            "Effect": "Allow",
            "Action": "codedeploy:GetDeploymentConfig",
            # Groups often share a configuration: name each one once.
            "Resource": pulumi.Output.all(*args.deployment_configs).apply(
                lambda names: [
                    arn("codedeploy", f"deploymentconfig:{c}") for c in sorted(set(names))
                ]
            ),
        },
    ]
    if args.repository_arns:
        statements += [
            # Registry login has no resource-level permissions in IAM.
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "EcrPush",
                "Effect": "Allow",
                "Action": list(ECR_PUSH_ACTIONS),  # what `docker push` calls, and DescribeImages
                "Resource": list(args.repository_arns),
            },
        ]
    if args.schedules:
        statements += [
            {
                "Sid": "Schedules",
                "Effect": "Allow",
                "Action": ["scheduler:GetSchedule", "scheduler:UpdateSchedule"],
                "Resource": [arn("scheduler", f"schedule/{s}") for s in sorted(args.schedules)],
            },
            {
                "Sid": "PassSchedulerRoles",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": list(args.scheduler_role_arns),
                "Condition": {"StringEquals": {"iam:PassedToService": SCHEDULER}},
            },
        ]
    if args.release_bucket:
        bucket = naming.arn("s3", args.release_bucket, region=region, scoped=False)
        statements += [
            {
                "Sid": "ReleaseState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{bucket}/releases/*",
            },
            {
                "Sid": "ReleaseInventory",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{bucket}/inventory.json",
            },
            # Without ListBucket, S3 answers a read of a release's not-yet-written state with
            # AccessDenied instead of NoSuchKey, and the engine cannot start a new release.
            {
                "Sid": "ReleaseStateMissingIsNotFound",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket,
            },
        ]
    return statements


def github_trust_policy(github: GithubOidc, *, region: str, account_id: str) -> str:
    provider = github.provider_arn or naming.arn(
        "iam", f"oidc-provider/{GITHUB_OIDC_HOST}", region=region, account=account_id, scoped=False
    )
    return iam.document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC_HOST}:sub": f"repo:{github.repository}:ref:refs/heads/{github.branch}",
                    }
                },
            }
        ]
    )


class DeployerAccess(pulumi.ComponentResource):
    """A managed policy for external deployers of this stack (and an optional GitHub OIDC role)."""

    policy: aws.iam.Policy
    role: aws.iam.Role | None

    def __init__(
        self, name: str, args: DeployerAccessArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:deployer:DeployerAccess", name, None, opts)
        if sorted(args.services) != sorted(args.deployment_groups):
            # One group per service (naming.deployment_group); anything else is a wiring error.
            raise ValueError(
                f"{name}: services {sorted(args.services)} and deployment groups "
                f"{sorted(args.deployment_groups)} differ"
            )
        child = pulumi.ResourceOptions(parent=self)
        self.policy = aws.iam.Policy(
            name,
            description=f"Deploy {args.project}-{args.stack}: task definitions, CodeDeploy, ECR push, release state",
            policy=iam.output_document(deployer_statements(args)),
            tags=args.tags,
            opts=child,
        )
        self.role = None
        if args.github:
            self.role = aws.iam.Role(
                f"{name}-github",
                description=f"GitHub Actions {args.github.repository}@{args.github.branch}: deploy {args.stack}",
                assume_role_policy=github_trust_policy(
                    args.github, region=args.region, account_id=args.account_id
                ),
                max_session_duration=3600,
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-github", role=self.role.name, policy_arn=self.policy.arn, opts=child
            )
        self.register_outputs(
            {"policyArn": self.policy.arn, "roleArn": self.role.arn if self.role else None}
        )

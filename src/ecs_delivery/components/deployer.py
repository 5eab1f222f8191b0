"""Least-privilege access for deployers outside the stack (release CLI, CI jobs, image pushers).

Managed policies that allow exactly what a deployment of this stack needs, on this stack's
resources only, and optionally a role that GitHub Actions assumes through OIDC for one
repository and branch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, kms, naming
from ecs_delivery.components.args import from_config
from ecs_delivery.components.codedeploy import pass_role_statement
from ecs_delivery.components.config import KmsConfig
from ecs_delivery.components.naming import TYPE_PREFIX

SCHEDULER = "scheduler.amazonaws.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
DEPLOYMENT_ACTIONS = (
    "codedeploy:BatchGetDeployments",
    "codedeploy:CreateDeployment",
    "codedeploy:GetDeployment",
    "codedeploy:ListDeployments",
    "codedeploy:StopDeployment",
)
# With deployment.onTerminationWait "end", a deployer ends another's termination wait.
END_TERMINATION_WAIT_ACTION = "codedeploy:ContinueDeployment"
# IAM refuses a managed policy over 6,144 characters (whitespace excluded). Each unit (a
# service or scheduled task) adds its two roles and its family, at most about 330 characters
# with 64-character role names; 12 units and the shared statements stay below the limit.
UNITS_PER_POLICY = 12


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
class DeployedUnit:
    """A service or scheduled task whose revisions the deployer registers."""

    family: str  # never a `-template` family: only Pulumi registers those
    role_arns: Sequence[pulumi.Input[str]]  # its task and execution roles


@dataclass(frozen=True, kw_only=True)
class DeployerAccessArgs:
    """Managed policies (and an optional GitHub OIDC role) for deployers outside the stack."""

    project: str
    stack: str
    region: str
    account_id: str
    # Every service of the cluster and every group of the application is the stack's own.
    cluster_name: str
    application_name: str
    # The groups' deployment configuration names (delivery.deployment_configs: plain names,
    # so the policy does not wait for, nor depend on, every group).
    deployment_configs: Sequence[pulumi.Input[str]]
    units: Sequence[DeployedUnit]
    # The stack's ECR namespace to push to (naming.ecr_namespace); None: it pushes nothing
    # (a downstream stack runs its upstream's images).
    ecr_namespace: str | None = None
    # Scheduled tasks' schedules ("group/name") and the roles their targets carry.
    schedules: Sequence[str] = ()
    scheduler_role_arns: Sequence[pulumi.Input[str]] = ()
    # The release engine's state bucket (config `release`), if any.
    release_bucket: str | None = None
    # The stack's customer-managed key (kms config), which encrypts the release bucket.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    github: GithubOidc | None = None
    # deployment.onTerminationWait == "end": its deployers may end a termination wait.
    end_termination_wait: bool = False
    # Who deploys the services: CodeDeploy's groups, or ECS's own blue/green (deployment.engine).
    engine: str = "codedeploy"
    # Some services are workers: ECS's rolling controller deploys them on either engine.
    workers: bool = False
    tags: dict[str, str] = field(default_factory=dict)


def _arn(args: DeployerAccessArgs, service: str, resource: str) -> str:
    return naming.arn(service, resource, region=args.region, account=args.account_id)


def shared_statements(args: DeployerAccessArgs) -> list[dict[str, Any]]:
    """Statements whose size does not grow with the number of services."""
    read_services = {
        "Sid": "ReadServices",
        "Effect": "Allow",
        "Action": "ecs:DescribeServices",
        "Resource": _arn(args, "ecs", f"service/{args.cluster_name}/*"),
    }
    ecs_engine = iam.ecs_engine_statements(
        [args.cluster_name], region=args.region, account_id=args.account_id
    )
    statements: list[dict[str, Any]] = (
        [read_services, *ecs_engine]
        if args.engine == "ecs"
        else [read_services, *_codedeploy_statements(args), *(ecs_engine if args.workers else [])]
    )
    return statements + _push_and_schedule_statements(args)


def _codedeploy_statements(args: DeployerAccessArgs) -> list[dict[str, Any]]:
    return [
        {
            "Sid": "Deployments",
            "Effect": "Allow",
            "Action": [
                *DEPLOYMENT_ACTIONS,
                *([END_TERMINATION_WAIT_ACTION] if args.end_termination_wait else []),
            ],
            "Resource": _arn(args, "codedeploy", f"deploymentgroup:{args.application_name}/*"),
        },
        # CreateDeployment also needs these on the application and the group's configuration.
        {
            "Sid": "Revisions",
            "Effect": "Allow",
            "Action": [
                "codedeploy:GetApplicationRevision",
                "codedeploy:RegisterApplicationRevision",
            ],
            "Resource": _arn(args, "codedeploy", f"application:{args.application_name}"),
        },
        iam.deployment_configs_statement(
            args.deployment_configs, region=args.region, account_id=args.account_id
        ),
    ]


def _push_and_schedule_statements(args: DeployerAccessArgs) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    if args.ecr_namespace:
        statements += [
            # Registry login has no resource-level permissions in IAM.
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            # What `docker push` calls, and DescribeImages.
            {
                "Sid": "EcrPush",
                "Effect": "Allow",
                "Action": list(iam.ECR_PUSH_ACTIONS),
                "Resource": _arn(args, "ecr", f"repository/{args.ecr_namespace}/*"),
            },
        ]
    if args.schedules:
        statements += [
            {
                "Sid": "Schedules",
                "Effect": "Allow",
                "Action": ["scheduler:GetSchedule", "scheduler:UpdateSchedule"],
                "Resource": [
                    _arn(args, "scheduler", f"schedule/{s}") for s in sorted(args.schedules)
                ],
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
        bucket = naming.arn("s3", args.release_bucket, region=args.region, scoped=False)
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
        if args.kms_key_arn is not None:
            statements.append(
                kms.use_statement(
                    args.kms_key_arn,
                    sid="ReleaseStateKey",
                    condition={
                        "StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}
                    },
                )
            )
    return statements


def unit_statements(
    args: DeployerAccessArgs, units: Sequence[DeployedUnit]
) -> list[dict[str, Any]]:
    """Register, tag and pass the roles of exactly these units' revisions."""
    return [
        iam.register_task_definitions_statement(),
        *revision_statements(
            [_arn(args, "ecs", f"task-definition/{u.family}:*") for u in units],
            [arn for u in units for arn in u.role_arns],
        ),
    ]


def revision_statements(
    family_arns: Sequence[str], role_arns: Sequence[pulumi.Input[str]]
) -> list[dict[str, Any]]:
    """Tag new revisions of exactly these families (`task-definition/<family>:*`) and pass
    exactly these task and execution roles to ECS tasks."""
    return [iam.tag_new_revisions_statement(list(family_arns)), pass_role_statement(role_arns)]


def revision_documents(
    family_arns: Sequence[str], role_arns: Sequence[pulumi.Input[str]], *, region: str
) -> list[list[dict[str, Any]]]:
    """revision_statements of every family and role, in as few managed policies as IAM's
    size limit allows whatever the roles' names: a task and an execution role per family.

    For roles whose other statements do not grow with the units (an inline policy holds
    them); role ARNs are known only once created, so each counts as the longest IAM allows.
    """
    longest_family = max((iam.size(json.dumps(f)) + 1 for f in family_arns), default=0)
    per_policy = iam.units_per_policy(
        revision_statements([], []), longest_family + 2 * (iam.longest_role_arn(region) + 3)
    )
    families = iam.chunks(list(family_arns), per_policy)
    roles = iam.chunks(list(role_arns), 2 * per_policy)
    documents = [
        revision_statements(
            families[i] if i < len(families) else [], roles[i] if i < len(roles) else []
        )
        for i in range(max(len(families), len(roles)))
    ]
    # IAM refuses a statement without a resource.
    return [[s for s in statements if s["Resource"]] for statements in documents]


def policy_documents(args: DeployerAccessArgs) -> list[list[dict[str, Any]]]:
    """Statements per managed policy: the shared ones with the first units, then more units."""
    units = list(args.units)
    chunks = iam.chunks(units, UNITS_PER_POLICY)
    documents = [shared_statements(args) + (unit_statements(args, chunks[0]) if chunks else [])]
    documents += [unit_statements(args, chunk) for chunk in chunks[1:]]
    return documents


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
    """Managed policies for external deployers of this stack (and an optional GitHub OIDC role).

    `policy` holds everything a small stack needs; a stack with more than UNITS_PER_POLICY
    services and tasks gets further policies (`policies`) for the rest of its units.
    """

    policy: aws.iam.Policy
    policies: list[aws.iam.Policy]
    role: aws.iam.Role | None

    def __init__(
        self, name: str, args: DeployerAccessArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:deployer:DeployerAccess", name, None, opts)
        templates = [u.family for u in args.units if u.family.endswith("-template")]
        if templates:
            raise ValueError(
                f"{name}: {templates} are template families, registered by Pulumi only"
            )
        child = pulumi.ResourceOptions(parent=self)
        # Extra policies are numbered: a unit's place in the list is its only stable key.
        documents = policy_documents(args)
        names = [name] + [f"{name}-units-{i}" for i in range(2, len(documents) + 1)]
        self.policies = [
            aws.iam.Policy(
                policy_name,
                description=f"Deploy {args.project}-{args.stack} ({policy_name}): task definitions, CodeDeploy, ECR push, release state",
                policy=iam.sized_document(
                    policy_name,
                    statements,
                    limit=iam.MANAGED_POLICY_CHARACTERS,
                    fix="lower deployer.UNITS_PER_POLICY",
                ),
                tags=args.tags,
                opts=child,
            )
            for policy_name, statements in zip(names, documents, strict=True)
        ]
        self.policy = self.policies[0]
        self.role = None
        if args.github:
            iam.check_attachments(
                f"{name}-github",
                len(self.policies),
                fix=(
                    f"{len(args.units)} services and scheduled tasks take "
                    f"{len(self.policies)} deployer policies of up to {UNITS_PER_POLICY}; "
                    "split the stack, or deploy from a role of your own that attaches "
                    "deployerPolicyArns after raising the quota (up to 20)"
                ),
            )
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
            for policy_name, policy in zip(names, self.policies, strict=True):
                aws.iam.RolePolicyAttachment(
                    f"{policy_name}-github", role=self.role.name, policy_arn=policy.arn, opts=child
                )
        self.register_outputs(
            {
                "policyArns": [p.arn for p in self.policies],
                "roleArn": self.role.arn if self.role else None,
            }
        )

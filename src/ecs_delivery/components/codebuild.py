"""One CodeBuild action: its project, its own role and log group, and the tooling it runs.

Every CodeBuild project of both pipelines (components/pipeline.py, components/release.py)
is built here, so they share one environment, one logs setup and one role shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam

# The import root (src/): archive paths are import paths, so a build runs
# `python -m ecs_delivery.runtime.build` with PYTHONPATH at the unpacked zip.
TOOLING_ROOT = Path(__file__).resolve().parents[2]
TOOLING_PACKAGE = "ecs_delivery/runtime"
TOOLING_PARENTS = ("ecs_delivery/__init__.py", "ecs_delivery/inputs.py")


def tooling_files(root: Path = TOOLING_ROOT) -> dict[str, Path]:
    """Archive path -> file for the runtime package the build runs (no __pycache__; test
    doubles live in ecs_delivery.offline, which never ships)."""
    package = root / TOOLING_PACKAGE
    files = {name: root / name for name in TOOLING_PARENTS}
    files.update(
        {
            path.relative_to(root).as_posix(): path
            for path in sorted(package.rglob("*.py"))
            if "__pycache__" not in path.parts
        }
    )
    if f"{TOOLING_PACKAGE}/build.py" not in files:
        raise ValueError(f"{package}: no build.py; the build tooling is missing")
    return files


def tooling_key(root: Path = TOOLING_ROOT) -> str:
    """Content-addressed key: a changed tool is a new object and a new buildspec."""
    digest = hashlib.sha256()
    for name, path in tooling_files(root).items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"tooling/ecs-delivery-tooling-{digest.hexdigest()[:16]}.zip"


def create_tooling(
    name: str,
    *,
    bucket: str,
    key: str,
    parent: pulumi.Resource,
    tags: dict[str, str],
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.s3.BucketObjectv2:
    """The tooling zip at `key` (tooling_key()) in `bucket`, written after the bucket's
    own resources (`depends_on`)."""
    return aws.s3.BucketObjectv2(
        name,
        bucket=bucket,
        key=key,
        source=pulumi.AssetArchive(
            {path: pulumi.FileAsset(str(file)) for path, file in tooling_files().items()}
        ),
        content_type="application/zip",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def environment_type(build_image: str) -> str:
    """CodeBuild's container type for a curated image (ARM images carry 'aarch64')."""
    return "ARM_CONTAINER" if "aarch64" in build_image else "LINUX_CONTAINER"


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """What every project of a stack shares (config pipeline.*, logRetentionDays, kms)."""

    account_id: str
    build_image: str
    build_compute_type: str
    log_retention_days: int
    # The stack's customer-managed key; None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, args: Any) -> BuildSettings:
        """The settings of a component's Args that carry these fields under these names."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def logs_statement(log_group_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Write to the project's own log group only."""
    return {
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [pulumi.Output.concat(log_group_arn, ":*")],
    }


def artifact_statements(
    *, bucket_arn: str, artifact_prefix: str, tooling_key: str, writes_artifacts: bool
) -> list[dict[str, Any]]:
    """What an action's role needs besides its logs: CodeBuild fetches the input artifacts
    and stores the output ones (as AWS documents its service role), the buildspec copies the
    tooling."""
    return [
        {
            "Sid": "PipelineArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"]
            + (["s3:PutObject"] if writes_artifacts else []),
            "Resource": f"{bucket_arn}/{artifact_prefix}*",
        },
        # `aws s3 cp` of the tooling: HeadObject and GetObject of its current version.
        {
            "Sid": "Tooling",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/{tooling_key}",
        },
        {
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation"],
            "Resource": bucket_arn,
        },
    ]


def create_project(
    name: str,
    *,
    settings: BuildSettings,
    parent: pulumi.Resource,
    project_name: str,
    description: str,
    buildspec: str,
    statements: list[dict[str, Any]],
    timeout_minutes: int,
    unit_documents: Sequence[list[dict[str, Any]]] = (),
    log_group: str | None = None,
    role: str | None = None,
    role_description: str | None = None,
    role_aliases: list[pulumi.Alias] | None = None,
    privileged: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.codebuild.Project:
    """A CodePipeline-driven CodeBuild project with its log group and its own role.

    The role (resource `role`, default `name`) may write the log group (resource
    `log_group`, default `name`) and do `statements`, what this action alone needs.
    `unit_documents`: the statements that grow with the services, in managed policies
    attached to the role (iam.attach_policies). `privileged` runs the Docker daemon (docker
    build needs it).
    """
    logs = aws.cloudwatch.LogGroup(
        log_group or name,
        name=f"/aws/codebuild/{project_name}",
        retention_in_days=settings.log_retention_days,
        kms_key_id=settings.kms_key_arn,
        tags=settings.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    project_role, policy = iam.service_role(
        role or name,
        service="codebuild.amazonaws.com",
        description=role_description or f"CodeBuild project {project_name}",
        source_account=settings.account_id,
        statements=[logs_statement(logs.arn), *statements],
        tags=settings.tags,
        parent=parent,
        aliases=role_aliases,
    )
    attachments = iam.attach_policies(
        role or name,
        project_role,
        list(unit_documents),
        description=f"CodeBuild project {project_name}: per-service grants",
        parent=parent,
        tags=settings.tags,
        fix="split the stack's services across stacks, or raise the role's managed-policy "
        "quota (up to 20) and iam.MANAGED_POLICIES_PER_ROLE",
    )
    return aws.codebuild.Project(
        name,
        name=project_name,
        description=description,
        service_role=project_role.arn,
        source=aws.codebuild.ProjectSourceArgs(type="CODEPIPELINE", buildspec=buildspec),
        artifacts=aws.codebuild.ProjectArtifactsArgs(type="CODEPIPELINE"),
        environment=aws.codebuild.ProjectEnvironmentArgs(
            compute_type=settings.build_compute_type,
            image=settings.build_image,
            type=environment_type(settings.build_image),
            image_pull_credentials_type="CODEBUILD",
            privileged_mode=privileged,
        ),
        build_timeout=timeout_minutes,
        logs_config=aws.codebuild.ProjectLogsConfigArgs(
            cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                group_name=logs.name, status="ENABLED"
            ),
            s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
        ),
        encryption_key=settings.kms_key_arn,
        tags=settings.tags,
        # Its first build must find the role's policy in place.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy, *attachments, *depends_on]),
    )

"""The environment's CodePipeline (V2) and CodeBuild projects, with their roles.

First environment (pipeline.source set):

    Source (CodeStar connection or CodeCommit) ► Build (CodeBuild: images, promotion record)
    ► [Approve] ► Deploy (CodeBuild: `delivery.build deploy` per service) ► Publish

Downstream environment (upstreamStack set):

    Source (S3: the upstream's promotion record) ► Validate (CodeBuild: validate the record,
    export PROMOTED_COMMIT/PROMOTED_SUMMARY) ► Approve ("#{Validate.PROMOTED_SUMMARY}")
    ► Deploy ► Publish

Deploy is one CodeBuild action that ships each service in turn through `delivery.rollout`,
the deploy-time mechanism `pulumi up` and the release engine use: it reads what runs, keeps
every Pulumi-owned field and changes only the record's image, and once CodeDeploy holds the
group's lock re-reads what runs, stopping and merging again if a `pulumi up` rollout landed
in between. A Pulumi change is therefore never reverted by the pipeline, whenever it lands.

Publish (CodeBuild) runs after Deploy, so a record names only images that deployed here: it
writes `promotion/<stack>/releases/<commit>.json`, `promotion/<stack>/latest.json` and last
`promotion/<stack>.zip`, the object the next environment's S3 source reads (the bucket is
versioned, as that requires).

Each CodeBuild action has its own project and role: only Build pushes images, only Deploy
reads ECS and deploys, only Publish writes the records.

The stages are first described as plain data (`Stage`, `Action`) and checked by
`check_artifact_wiring` before the Pipeline resource is registered.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.codedeploy import pass_role_statement
from ecs_delivery.components.naming import TYPE_PREFIX, former_name
from ecs_delivery.runtime import buildspec as specs
from ecs_delivery.runtime.promotion import latest_record_key, release_records_pattern

SOURCE_ARTIFACT = "SourceCode"
RECORD_ARTIFACT = "UpstreamRecord"
# Config keys (CodeDeployToECS's) that name one of an action's input artifacts: the wiring
# check holds any action that uses them to its inputs.
ARTIFACT_CONFIG_KEYS = (
    "TaskDefinitionTemplateArtifact",
    "AppSpecTemplateArtifact",
    *(f"Image{i}ArtifactName" for i in range(1, 5)),
)
VARIABLE = re.compile(r"#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_.]+)\}")
# Namespaces CodePipeline defines itself.
BUILTIN_NAMESPACES = {"codepipeline", "variables"}
# The import root (src/): archive paths are import paths, so the build runs
# `python -m ecs_delivery.runtime.build` with PYTHONPATH at the unpacked zip.
TOOLING_ROOT = Path(__file__).resolve().parents[2]
TOOLING_PACKAGE = "ecs_delivery/runtime"
TOOLING_PARENTS = ("ecs_delivery/__init__.py", "ecs_delivery/inputs.py")
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


# --- the pipeline as plain data --------------------------------------------------------


class PipelineWiringError(pulumi.RunError):
    """The stages consume an artifact or variable nothing produced before them.

    A RunError: the engine prints the problems without a traceback, before the pipeline
    (or anything after it) is registered.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("pipeline wiring:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, kw_only=True)
class Action:
    name: str
    category: Literal["Source", "Build", "Test", "Deploy", "Approval", "Invoke"]
    provider: str
    configuration: Mapping[str, str]
    owner: str = "AWS"
    version: str = "1"
    input_artifacts: tuple[str, ...] = ()
    output_artifacts: tuple[str, ...] = ()
    run_order: int = 1
    namespace: str | None = None

    def to_args(self) -> aws.codepipeline.PipelineStageActionArgs:
        return aws.codepipeline.PipelineStageActionArgs(
            name=self.name,
            category=self.category,
            owner=self.owner,
            provider=self.provider,
            version=self.version,
            configuration=dict(self.configuration),
            input_artifacts=list(self.input_artifacts),
            output_artifacts=list(self.output_artifacts),
            run_order=self.run_order,
            namespace=self.namespace,
        )


@dataclass(frozen=True)
class Stage:
    name: str
    actions: tuple[Action, ...]

    def to_args(self) -> aws.codepipeline.PipelineStageArgs:
        return aws.codepipeline.PipelineStageArgs(
            name=self.name, actions=[a.to_args() for a in self.actions]
        )


def check_artifact_wiring(stages: Sequence[Stage]) -> list[str]:
    """Every input artifact and variable comes from an earlier action; names are unique.

    "Earlier" means an earlier stage, or a lower run order in the same stage (actions with
    the same run order run in parallel and cannot see each other's outputs).
    """
    problems: list[str] = []
    if len(stages) < 2:
        problems.append("pipeline: CodePipeline needs at least two stages")
    seen_stages: set[str] = set()
    produced: dict[str, str] = {}
    namespaces: set[str] = set()
    for index, stage in enumerate(stages):
        where_stage = f"stages.{stage.name}"
        if stage.name in seen_stages:
            problems.append(f"{where_stage}: stage name used twice")
        seen_stages.add(stage.name)
        if not stage.actions:
            problems.append(f"{where_stage}: a stage needs at least one action")
        names = [a.name for a in stage.actions]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{where_stage}.{name}: action name used twice in the stage")
        for action in stage.actions:
            is_source = action.category == "Source"
            if index == 0 and not is_source:
                problems.append(
                    f"{where_stage}.{action.name}: the first stage may hold only source actions"
                )
            if index > 0 and is_source:
                problems.append(
                    f"{where_stage}.{action.name}: source actions belong in the first stage"
                )
        for run_order in sorted({a.run_order for a in stage.actions}):
            batch = [a for a in stage.actions if a.run_order == run_order]
            for action in batch:
                problems += _action_problems(f"{where_stage}.{action.name}", action, produced,
                                             namespaces)  # fmt: skip
            for action in batch:
                for artifact in action.output_artifacts:
                    if artifact in produced:
                        problems.append(
                            f"{where_stage}.{action.name}: output artifact {artifact!r} is "
                            f"already produced by {produced[artifact]}; names must be unique"
                        )
                    produced[artifact] = f"{stage.name}.{action.name}"
                if action.namespace:
                    if action.namespace in namespaces:
                        problems.append(
                            f"{where_stage}.{action.name}: namespace {action.namespace!r} "
                            "is used twice"
                        )
                    namespaces.add(action.namespace)
    return problems


def _action_problems(
    where: str, action: Action, produced: Mapping[str, str], namespaces: set[str]
) -> list[str]:
    problems = []
    if action.category == "Source" and action.input_artifacts:
        problems.append(f"{where}: a source action takes no input artifacts")
    for artifact in action.input_artifacts:
        if artifact not in produced:
            problems.append(
                f"{where}: input artifact {artifact!r} is not produced by an earlier action; "
                "add the action that outputs it before this one, or fix the name"
            )
    for key in ARTIFACT_CONFIG_KEYS:
        named = action.configuration.get(key)
        if named is not None and named not in action.input_artifacts:
            problems.append(
                f"{where}: configuration {key} names {named!r}, which is not one of the "
                f"action's input artifacts {list(action.input_artifacts)}"
            )
    for key, value in sorted(action.configuration.items()):
        for namespace, variable in VARIABLE.findall(str(value)):
            if namespace not in namespaces and namespace not in BUILTIN_NAMESPACES:
                problems.append(
                    f"{where}: configuration {key} uses #{{{namespace}.{variable}}}, but no "
                    f"earlier action has namespace {namespace!r}"
                )
    return problems


# --- stage builders ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """The first environment's application source (mirrors config `pipeline.source`)."""

    provider: Literal["codestar", "codecommit"]
    repository: str
    branch: str
    connection_arn: str | None = None


@dataclass(frozen=True, kw_only=True)
class UpstreamRecord:
    """Where the upstream environment publishes its promotion record."""

    stack: str
    bucket: str
    key: str
    # Poll the object instead of an EventBridge rule (the upstream is in another account).
    poll: bool = False


def source_action(source: SourceSettings) -> Action:
    if source.provider == "codestar":
        return Action(
            name="Source",
            category="Source",
            provider="CodeStarSourceConnection",
            configuration={
                "ConnectionArn": source.connection_arn or "",
                "FullRepositoryId": source.repository,
                "BranchName": source.branch,
                "OutputArtifactFormat": "CODE_ZIP",
                "DetectChanges": "true",
            },
            output_artifacts=(SOURCE_ARTIFACT,),
            namespace="Source",
        )
    return Action(
        name="Source",
        category="Source",
        provider="CodeCommit",
        configuration={
            "RepositoryName": source.repository,
            "BranchName": source.branch,
            "OutputArtifactFormat": "CODE_ZIP",
            # An EventBridge rule would be needed to start on push; polling keeps it self-contained.
            "PollForSourceChanges": "true",
        },
        output_artifacts=(SOURCE_ARTIFACT,),
        namespace="Source",
    )


def deploy_stage(*, project: str) -> Stage:
    """One CodeBuild action shipping every service in turn, from this execution's record.

    One action rather than one per service: one project, role and buildspec, every value
    baked in like the other actions'; the services deploy one after another (the project's
    timeout covers them all).
    """
    return Stage(
        "Deploy",
        (
            Action(
                name="Deploy",
                category="Build",
                provider="CodeBuild",
                configuration={"ProjectName": project},
                input_artifacts=(specs.PROMOTION_ARTIFACT,),
            ),
        ),
    )


def publish_stage(*, project: str) -> Stage:
    return Stage(
        "Publish",
        (
            Action(
                name="PromotionRecord",
                category="Build",
                provider="CodeBuild",
                configuration={"ProjectName": project},
                input_artifacts=(specs.PROMOTION_ARTIFACT,),
            ),
        ),
    )


def approval_stage(message: str) -> Stage:
    return Stage(
        "Approve",
        (
            Action(
                name="Approve",
                category="Approval",
                provider="Manual",
                configuration={"CustomData": message},
            ),
        ),
    )


def first_environment_stages(
    *,
    stack: str,
    source: SourceSettings,
    build_project: str,
    approval: bool,
    deploy_project: str,
    publish_project: str,
) -> list[Stage]:
    build = Action(
        name="Build",
        category="Build",
        provider="CodeBuild",
        configuration={"ProjectName": build_project},
        input_artifacts=(SOURCE_ARTIFACT,),
        output_artifacts=(specs.PROMOTION_ARTIFACT,),
        namespace="Build",
    )
    stages = [Stage("Source", (source_action(source),)), Stage("Build", (build,))]
    if approval:
        stages.append(approval_stage(f"Deploy commit #{{Source.CommitId}} to {stack}?"))
    return stages + _deploy_stages(deploy_project, publish_project)


def _deploy_stages(deploy_project: str, publish_project: str) -> list[Stage]:
    """Deploy ► Publish: what runs is read by the deploy itself, after any approval."""
    return [deploy_stage(project=deploy_project), publish_stage(project=publish_project)]


def downstream_stages(
    *,
    stack: str,
    upstream: UpstreamRecord,
    validate_project: str,
    approval: bool,
    deploy_project: str,
    publish_project: str,
) -> list[Stage]:
    source = Action(
        name="UpstreamRecord",
        category="Source",
        provider="S3",
        configuration={
            "S3Bucket": upstream.bucket,
            "S3ObjectKey": upstream.key,
            "PollForSourceChanges": "true" if upstream.poll else "false",
        },
        output_artifacts=(RECORD_ARTIFACT,),
        namespace="Source",
    )
    validate = Action(
        name="Validate",
        category="Build",
        provider="CodeBuild",
        configuration={"ProjectName": validate_project},
        input_artifacts=(RECORD_ARTIFACT,),
        output_artifacts=(specs.PROMOTION_ARTIFACT,),
        namespace="Validate",
    )
    stages = [Stage("Source", (source,)), Stage("Validate", (validate,))]
    if approval:
        stages.append(
            approval_stage(
                f"Promote to {stack} from {upstream.stack}: "
                f"#{{Validate.{specs.PROMOTED_SUMMARY_VAR}}}"
            )
        )
    return stages + _deploy_stages(deploy_project, publish_project)


# --- build tooling -----------------------------------------------------------------------


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


# --- IAM -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeployedService:
    """A service the pipeline deploys, with what its build and deployment touch."""

    name: str
    group_name: str
    container_port: int
    cluster_name: str
    service_name: str
    # The service's own task-definition family: every deployed revision registers there.
    task_family: str
    # Task and execution role ARNs: the Deploy action registers revisions naming them.
    role_arns: list[pulumi.Input[str]]
    # First environment only: where the image is pushed and built from.
    repository_url: str | None = None
    repository_arn: str | None = None
    build_context: str = "."
    dockerfile: str = "Dockerfile"


def _codebuild_base_statements(
    *,
    log_group_arn: pulumi.Input[str],
    bucket_arn: str,
    artifact_prefix: str,
    tooling_key: str,
    writes_artifacts: bool,
    kms_key_arn: pulumi.Input[str] | None,
) -> list[dict[str, Any]]:
    """What every CodeBuild action needs: its logs, the pipeline's artifacts, the tooling."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [pulumi.Output.concat(log_group_arn, ":*")],
        },
        {
            "Sid": "PipelineArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"]
            + (["s3:PutObject"] if writes_artifacts else []),
            "Resource": f"{bucket_arn}/{artifact_prefix}*",
        },
        {
            "Sid": "Tooling",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{bucket_arn}/{tooling_key}",
        },
        {
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation"],
            "Resource": bucket_arn,
        },
    ]
    if kms_key_arn is not None:
        statements.append(_kms_statement(kms_key_arn))
    return statements


def build_role_statements(
    *, services: Sequence[DeployedService], push: bool
) -> list[dict[str, Any]]:
    """Build (first env): ECR login and push to this stack's repositories; Validate: none.

    Neither reads ECS: what runs is read only by Deploy, when it deploys.
    """
    if not push:
        return []
    return [
        # GetAuthorizationToken has no resource-level permissions in IAM.
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "EcrPush",
            "Effect": "Allow",
            "Action": ECR_PUSH_ACTIONS,
            "Resource": [s.repository_arn for s in services if s.repository_arn],
        },
    ]


# What delivery.rollout calls on CodeDeploy: find a running deployment of the group, start
# one, poll it, and stop its own stale one before traffic moves.
DEPLOY_ACTIONS = [
    "codedeploy:CreateDeployment",
    "codedeploy:GetDeployment",
    "codedeploy:ListDeployments",
    "codedeploy:StopDeployment",
]


def deploy_role_statements(
    *,
    region: str,
    account_id: str,
    application_name: str,
    deployment_configs: Sequence[str],
    services: Sequence[DeployedService],
) -> list[dict[str, Any]]:
    """Deploy: read what this stack's services run, register revisions, deploy them."""
    return [
        {
            "Sid": "ReadServices",
            "Effect": "Allow",
            "Action": "ecs:DescribeServices",
            "Resource": [
                naming.arn(
                    "ecs",
                    region=region,
                    account=account_id,
                    resource=f"service/{s.cluster_name}/{s.service_name}",
                )
                for s in services
            ],
        },
        # Describe/Register on "*" (IAM cannot scope them); tags only on the services' own
        # families, never a `-template` one.
        *iam.task_definition_statements(
            [
                naming.arn(
                    "ecs",
                    region=region,
                    account=account_id,
                    resource=f"task-definition/{s.task_family}:*",
                )
                for s in services
            ]
        ),
        pass_role_statement([arn for s in services for arn in s.role_arns]),
        {
            "Sid": "Deployments",
            "Effect": "Allow",
            "Action": DEPLOY_ACTIONS,
            "Resource": [
                naming.arn(
                    "codedeploy",
                    region=region,
                    account=account_id,
                    resource=f"deploymentgroup:{application_name}/{g}",
                )
                for g in sorted({s.group_name for s in services})
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
            "Resource": naming.arn(
                "codedeploy",
                region=region,
                account=account_id,
                resource=f"application:{application_name}",
            ),
        },
        {
            "Sid": "DeploymentConfigs",
            "Effect": "Allow",
            "Action": "codedeploy:GetDeploymentConfig",
            "Resource": [
                naming.arn(
                    "codedeploy",
                    region=region,
                    account=account_id,
                    resource=f"deploymentconfig:{c}",
                )
                for c in sorted(set(deployment_configs))
            ],
        },
    ]


def publish_role_statements(
    *, stack: str, bucket_arn: str, promotion_key: str
) -> list[dict[str, Any]]:
    """Publish: write exactly the record keys of this stack.

    A release's key holds its commit, known only at run time: `releases/*.json` under this
    stack's prefix is the narrowest ARN that names it.
    """
    return [
        {
            "Sid": "PublishPromotionRecords",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": [
                f"{bucket_arn}/{release_records_pattern(stack)}",
                f"{bucket_arn}/{latest_record_key(stack)}",
                f"{bucket_arn}/{promotion_key}",
            ],
        }
    ]


def pipeline_role_statements(
    *,
    region: str,
    account_id: str,
    pipeline_bucket_arn: str,
    artifact_prefix: str,
    project_names: Sequence[str],
    source: SourceSettings | None,
    upstream: UpstreamRecord | None,
    kms_key_arn: pulumi.Input[str] | None = None,
) -> list[dict[str, Any]]:
    """CodePipeline: artifacts, its source and its builds (the Deploy build deploys)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PipelineArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            "Resource": f"{pipeline_bucket_arn}/{artifact_prefix}*",
        },
        {
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:GetBucketVersioning"],
            "Resource": pipeline_bucket_arn,
        },
        {
            "Sid": "Builds",
            "Effect": "Allow",
            "Action": ["codebuild:BatchGetBuilds", "codebuild:StartBuild"],
            "Resource": [
                naming.arn("codebuild", region=region, account=account_id, resource=f"project/{p}")
                for p in project_names
            ],
        },
    ]
    if source is not None and source.provider == "codestar":
        statements.append(iam.use_connection_statement(source.connection_arn, "SourceConnection"))
    if source is not None and source.provider == "codecommit":
        statements.append(
            {
                "Sid": "SourceRepository",
                "Effect": "Allow",
                "Action": [
                    "codecommit:CancelUploadArchive",
                    "codecommit:GetBranch",
                    "codecommit:GetCommit",
                    "codecommit:GetRepository",
                    "codecommit:GetUploadArchiveStatus",
                    "codecommit:UploadArchive",
                ],
                "Resource": naming.arn(
                    "codecommit", region=region, account=account_id, resource=source.repository
                ),
            }
        )
    if upstream is not None:
        statements += [
            {
                "Sid": "UpstreamPromotionRecord",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": naming.s3_arn(f"{upstream.bucket}/{upstream.key}", region=region),
            },
            {
                "Sid": "UpstreamBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:GetBucketVersioning"],
                "Resource": naming.s3_arn(upstream.bucket, region=region),
            },
        ]
    if kms_key_arn is not None:
        statements.append(_kms_statement(kms_key_arn))
    return statements


def _kms_statement(kms_key_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "Sid": "ArtifactKey",
        "Effect": "Allow",
        "Action": [
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*",
        ],  # fmt: skip
        "Resource": kms_key_arn,
    }


# --- the component -----------------------------------------------------------------------


def environment_type(build_image: str) -> str:
    """CodeBuild's container type for a curated image (ARM images carry 'aarch64')."""
    return "ARM_CONTAINER" if "aarch64" in build_image else "LINUX_CONTAINER"


@dataclass(frozen=True, kw_only=True)
class DeliveryPipelineArgs:
    pipeline_name: str
    # CodeBuild projects: Build (first env) or Validate (downstream), Deploy, Publish.
    project_name: str
    deploy_project_name: str
    publish_project_name: str
    stack: str
    region: str
    account_id: str
    application_name: str
    services: list[DeployedService]
    # Deployment configuration name each service's group uses (for GetDeploymentConfig).
    deployment_configs: list[str]
    bucket_name: str
    artifact_prefix: str
    promotion_key: str
    source: SourceSettings | None = None
    upstream: UpstreamRecord | None = None
    # Values the stack config owns (pipeline.*, logRetentionDays): given, never defaulted here.
    approval: bool
    build_compute_type: str
    build_image: str
    build_timeout_minutes: int
    log_retention_days: int
    validation_hook: str | None = None
    # The stack's customer-managed key (kms config); None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None
    # The bucket and its settings: the tooling object is written after them.
    bucket_resources: list[pulumi.Resource] = field(default_factory=list)
    # What must exist before the pipeline's first run (deployment groups, the hook).
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.source is None) == (self.upstream is None):
            raise ValueError("give exactly one of source (first environment) or upstream")

    @property
    def bucket_arn(self) -> str:
        return naming.s3_arn(self.bucket_name, region=self.region)

    @property
    def builds_images(self) -> bool:
        return self.source is not None


def describe_stages(args: DeliveryPipelineArgs) -> list[Stage]:
    """The pipeline's stages as plain data (what `DeliveryPipeline` registers)."""
    common = {
        "stack": args.stack,
        "approval": args.approval,
        "deploy_project": args.deploy_project_name,
        "publish_project": args.publish_project_name,
    }
    if args.source is not None:
        return first_environment_stages(
            source=args.source, build_project=args.project_name, **common
        )
    assert args.upstream is not None  # __post_init__
    return downstream_stages(upstream=args.upstream, validate_project=args.project_name, **common)


def _deploy_fields(service: DeployedService) -> dict[str, Any]:
    """The buildspec's view of a service (its container is named after it)."""
    return {
        "name": service.name,
        "container_name": service.name,
        "container_port": service.container_port,
        "cluster": service.cluster_name,
        "service": service.service_name,
        "family": service.task_family,
    }


def render_buildspecs(args: DeliveryPipelineArgs, tooling_uri: str) -> dict[str, str]:
    """Project name -> its generated buildspec (src/ecs_delivery/runtime/buildspec.py), as YAML."""
    tooling: dict[str, Any] = {"tooling_s3_uri": tooling_uri}
    if args.builds_images:
        first = specs.buildspec(
            [
                specs.BuildService(
                    **_deploy_fields(s),
                    repository_url=s.repository_url or "",
                    context=s.build_context,
                    dockerfile=s.dockerfile,
                )
                for s in args.services
            ],
            region=args.region,
            stack=args.stack,
            **tooling,
        )
    else:
        assert args.upstream is not None  # __post_init__
        first = specs.promotion_buildspec(
            region=args.region,
            stack=args.stack,
            upstream_stack=args.upstream.stack.rsplit("/", 1)[-1],
            **tooling,
        )
    deploy = specs.deploy_buildspec(
        [
            specs.DeployService(**_deploy_fields(s), deployment_group=s.group_name)
            for s in args.services
        ],
        region=args.region,
        application=args.application_name,
        validation_hook=args.validation_hook,
        timeout_minutes=args.build_timeout_minutes,
        **tooling,
    )
    publish = specs.publish_buildspec(
        region=args.region,
        stack=args.stack,
        bucket=args.bucket_name,
        zip_key=args.promotion_key,
        **tooling,
    )
    return {
        args.project_name: specs.render(first),
        args.deploy_project_name: specs.render(deploy),
        args.publish_project_name: specs.render(publish),
    }


class DeliveryPipeline(pulumi.ComponentResource):
    """CodeBuild projects and CodePipeline of one environment, each with its own role."""

    # Its roles once had fixed names; the instance of this name keeps their URNs (aliases).
    HISTORIC_NAME = "pipeline"

    project: aws.codebuild.Project
    deploy_project: aws.codebuild.Project
    publish_project: aws.codebuild.Project
    pipeline: aws.codepipeline.Pipeline
    stages: list[Stage]

    def __init__(
        self, name: str, args: DeliveryPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:pipeline:DeliveryPipeline", name, None, opts)
        # Everything plain is checked before the first child is registered.
        self.stages = describe_stages(args)
        problems = check_artifact_wiring(self.stages)
        if problems:
            raise PipelineWiringError(problems)
        key = self.tooling_key = tooling_key()
        self.buildspecs = render_buildspecs(args, f"s3://{args.bucket_name}/{key}")
        self._args = args
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)

        self.tooling = aws.s3.BucketObjectv2(
            f"{name}-tooling",
            bucket=args.bucket_name,
            key=key,
            source=pulumi.AssetArchive(
                {path: pulumi.FileAsset(str(file)) for path, file in tooling_files().items()}
            ),
            content_type="application/zip",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.bucket_resources)),
        )
        self.project = self._create_project(
            name,
            role="codebuild",
            project_name=args.project_name,
            log_group=f"{name}-build",
            description=(
                "Builds and pushes the images, writes the promotion record"
                if args.builds_images
                else "Checks the upstream promotion record, summarises it for the approval"
            ),
            statements=build_role_statements(services=args.services, push=args.builds_images),
            # docker build needs the Docker daemon; the other actions run no containers.
            privileged=args.builds_images,
        )
        self.deploy_project = self._create_project(
            f"{name}-deploy",
            role="codebuild-deploy",
            project_name=args.deploy_project_name,
            log_group=f"{name}-deploy",
            description="Ships each service's image over what it runs (delivery.rollout)",
            statements=deploy_role_statements(
                region=args.region,
                account_id=args.account_id,
                application_name=args.application_name,
                deployment_configs=args.deployment_configs,
                services=args.services,
            ),
            # Every service deploys in turn, each waiting at most build_timeout_minutes for a
            # running deployment of its group and as long for its own (CodeBuild allows 36 h).
            timeout_minutes=min(2160, 2 * args.build_timeout_minutes * len(args.services)),
            writes_artifacts=False,
        )
        self.publish_project = self._create_project(
            f"{name}-publish",
            role="codebuild-publish",
            project_name=args.publish_project_name,
            log_group=f"{name}-publish",
            description="Publishes the promotion record of what deployed",
            statements=publish_role_statements(
                stack=args.stack, bucket_arn=args.bucket_arn, promotion_key=args.promotion_key
            ),
            # It writes no pipeline artifact: it only reads the record.
            writes_artifacts=False,
        )
        self.pipeline = self._create_pipeline()
        if args.upstream is not None and not args.upstream.poll:
            self._create_trigger(args.upstream)
        self.register_outputs(
            {
                "pipelineName": self.pipeline.name,
                "projectName": self.project.name,
                "deployProjectName": self.deploy_project.name,
                "publishProjectName": self.publish_project.name,
                "toolingKey": key,
            }
        )

    def _former_name(self, new: str, old: str) -> list[pulumi.Alias]:
        return former_name(new, old, owner=self._name == self.HISTORIC_NAME)

    def _create_project(
        self,
        resource_name: str,
        *,
        role: str,
        project_name: str,
        log_group: str,
        description: str,
        statements: list[dict[str, Any]],
        privileged: bool = False,
        writes_artifacts: bool = True,
        timeout_minutes: int | None = None,
    ) -> aws.codebuild.Project:
        """One CodeBuild project with its log group and its own role.

        The role, `<name>-<role>` (`role` alone before child names derived from ours), gets
        what every action needs (its logs, the pipeline's artifacts, the tooling) and
        `statements`, what this action alone needs.
        """
        args = self._args
        logs = aws.cloudwatch.LogGroup(
            log_group,
            name=f"/aws/codebuild/{project_name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=self._child,
        )
        role_name = f"{self._name}-{role}"
        project_role, policy = iam.service_role(
            role_name,
            service="codebuild.amazonaws.com",
            description=f"CodeBuild project {project_name}",
            source_account=args.account_id,
            statements=_codebuild_base_statements(
                log_group_arn=logs.arn,
                bucket_arn=args.bucket_arn,
                artifact_prefix=args.artifact_prefix,
                tooling_key=self.tooling_key,
                writes_artifacts=writes_artifacts,
                kms_key_arn=args.kms_key_arn,
            )
            + statements,
            tags=args.tags,
            parent=self,
            aliases=self._former_name(role_name, role),
        )
        return aws.codebuild.Project(
            resource_name,
            name=project_name,
            description=description,
            service_role=project_role.arn,
            source=aws.codebuild.ProjectSourceArgs(
                type="CODEPIPELINE", buildspec=self.buildspecs[project_name]
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="CODEPIPELINE"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                compute_type=args.build_compute_type,
                image=args.build_image,
                type=environment_type(args.build_image),
                image_pull_credentials_type="CODEBUILD",
                privileged_mode=privileged,
            ),
            build_timeout=timeout_minutes or args.build_timeout_minutes,
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    group_name=logs.name, status="ENABLED"
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            encryption_key=args.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, self.tooling]),
        )

    def _create_pipeline(self) -> aws.codepipeline.Pipeline:
        args = self._args
        role, policy = iam.service_role(
            f"{self._name}-codepipeline",
            service="codepipeline.amazonaws.com",
            description=f"CodePipeline {args.pipeline_name}",
            source_account=args.account_id,
            statements=pipeline_role_statements(
                region=args.region,
                account_id=args.account_id,
                pipeline_bucket_arn=args.bucket_arn,
                artifact_prefix=args.artifact_prefix,
                project_names=[
                    args.project_name,
                    args.deploy_project_name,
                    args.publish_project_name,
                ],
                source=args.source,
                upstream=args.upstream,
                kms_key_arn=args.kms_key_arn,
            ),
            tags=args.tags,
            parent=self,
            aliases=self._former_name(f"{self._name}-codepipeline", "codepipeline"),
        )
        store = aws.codepipeline.PipelineArtifactStoreArgs(
            location=args.bucket_name,
            type="S3",
            encryption_key=aws.codepipeline.PipelineArtifactStoreEncryptionKeyArgs(
                id=args.kms_key_arn, type="KMS"
            )
            if args.kms_key_arn is not None
            else None,
        )
        return aws.codepipeline.Pipeline(
            self._name,
            name=args.pipeline_name,
            pipeline_type="V2",
            # A newer commit or record replaces one still waiting (e.g. at the approval).
            execution_mode="SUPERSEDED",
            role_arn=role.arn,
            artifact_stores=[store],
            stages=[stage.to_args() for stage in self.stages],
            tags=args.tags,
            # A new pipeline starts at once: its deployment groups and roles must exist.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    policy,
                    self.project,
                    self.deploy_project,
                    self.publish_project,
                    *args.bucket_resources,
                    *args.depends_on,
                ],
            ),
        )

    def _create_trigger(self, upstream: UpstreamRecord) -> None:
        """Start on a new upstream record: S3 "Object Created" events through EventBridge."""
        args = self._args
        pipeline_arn = naming.arn(
            "codepipeline", region=args.region, account=args.account_id, resource=args.pipeline_name
        )
        role, _ = iam.service_role(
            f"{self._name}-trigger",
            service="events.amazonaws.com",
            description=f"EventBridge starts {args.pipeline_name} on a new promotion record",
            source_account=args.account_id,
            statements=[
                {
                    "Sid": "StartPipeline",
                    "Effect": "Allow",
                    "Action": "codepipeline:StartPipelineExecution",
                    "Resource": pipeline_arn,
                }
            ],
            tags=args.tags,
            parent=self,
            aliases=self._former_name(f"{self._name}-trigger", "pipeline-trigger"),
        )
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-upstream-record",
            description=f"New promotion record from {upstream.stack}",
            event_pattern=json.dumps(
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [upstream.bucket]},
                        "object": {"key": [upstream.key]},
                    },
                },
                sort_keys=True,
            ),
            tags=args.tags,
            opts=self._child,
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-upstream-record",
            rule=rule.name,
            arn=pipeline_arn,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.pipeline]),
        )

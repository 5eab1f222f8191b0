"""The environment's CodePipeline (V2) and CodeBuild projects, with their roles.

First environment (pipeline.source set):

    Source (CodeStar connection or CodeCommit) ► Build (CodeBuild: images, promotion record)
    ► [Approve] ► Deploy (CodeBuild: `ecs_delivery.runtime.build deploy` per service) ► Publish

Downstream environment (upstreamStack set):

    Source (S3: the upstream's promotion record) ► Validate (CodeBuild: validate the record,
    export PROMOTED_COMMIT/PROMOTED_SUMMARY) ► Approve ("#{Validate.PROMOTED_SUMMARY}")
    ► Deploy ► Publish

Deploy is one CodeBuild action that ships each service in turn through `runtime.rollout`,
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

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import buildspec as specs
from ecs_delivery.components import codebuild, iam, naming
from ecs_delivery.components.codepipeline import (
    SOURCE_ARTIFACT,
    Action,
    SourceSettings,
    Stage,
    approval_stage,
    build_action,
    create_pipeline,
    require_wiring,
    source_action,
    source_statement,
)
from ecs_delivery.components.deployer import END_TERMINATION_WAIT_ACTION, revision_documents
from ecs_delivery.components.naming import TYPE_PREFIX, former_name
from ecs_delivery.runtime.build import FollowerTask
from ecs_delivery.runtime.promotion import latest_record_key, release_records_pattern

RECORD_ARTIFACT = "UpstreamRecord"


# --- stages ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UpstreamRecord:
    """Where the upstream environment publishes its promotion record."""

    stack: str
    bucket: str
    key: str
    # Poll the object instead of an EventBridge rule (the upstream is in another account).
    poll: bool = False


def deploy_stage(*, project: str) -> Stage:
    """One CodeBuild action shipping every service in turn, from this execution's record.

    One action rather than one per service: one project, role and buildspec, every value
    baked in like the other actions'; the services deploy one after another (the project's
    timeout covers them all).
    """
    return Stage("Deploy", (build_action("Deploy", project, inputs=(specs.PROMOTION_ARTIFACT,)),))


def publish_stage(*, project: str) -> Stage:
    action = build_action("PromotionRecord", project, inputs=(specs.PROMOTION_ARTIFACT,))
    return Stage("Publish", (action,))


def first_environment_stages(
    *,
    stack: str,
    source: SourceSettings,
    build_project: str,
    approval: bool,
    deploy_project: str,
    publish_project: str,
) -> list[Stage]:
    build = build_action(
        "Build",
        build_project,
        inputs=(SOURCE_ARTIFACT,),
        outputs=(specs.PROMOTION_ARTIFACT,),
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
    validate = build_action(
        "Validate",
        validate_project,
        inputs=(RECORD_ARTIFACT,),
        outputs=(specs.PROMOTION_ARTIFACT,),
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


# --- IAM -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeployedService:
    """A service the pipeline deploys, with what its build and deployment touch."""

    name: str
    group_name: str
    # None: a worker (no load balancer; ECS's rolling update deploys it).
    container_port: int | None
    cluster_name: str
    service_name: str
    # The service's own task-definition family: every deployed revision registers there.
    task_family: str
    # Task and execution role ARNs: the Deploy action registers revisions naming them.
    role_arns: list[pulumi.Input[str]]
    # Scheduled tasks that follow it: each ship registers its image onto their newest
    # revision, which names these task and execution roles.
    followers: list[FollowerTask] = field(default_factory=list)
    follower_role_arns: list[pulumi.Input[str]] = field(default_factory=list)
    # First environment only: where the image is pushed and built from.
    repository_url: str | None = None
    repository_arn: str | None = None
    build_context: str = "."
    dockerfile: str = "Dockerfile"
    # The sidecars the repository builds: Deploy ships their record images with the
    # service's; the first environment's Build builds each (`built_sidecars`).
    sidecar_containers: list[str] = field(default_factory=list)
    built_sidecars: list[specs.BuiltImage] = field(default_factory=list)
    # Who deploys it: its CodeDeploy group, or ECS's own blue/green (deployment.engine).
    engine: str = "codedeploy"


def build_role_statements(
    *, region: str, account_id: str, ecr_namespace: str | None
) -> list[dict[str, Any]]:
    """Build (first env): ECR login and push to this stack's repositories, every one of
    them in the stack's own namespace (naming.ecr_namespace); Validate (None): none.

    Neither reads ECS: what runs is read only by Deploy, when it deploys.
    """
    if ecr_namespace is None:
        return []
    repositories = naming.arn(
        "ecr", f"repository/{ecr_namespace}/*", region=region, account=account_id
    )
    return iam.ecr_statements("EcrPush", iam.ECR_PUSH_ACTIONS, repositories)


# What runtime.rollout calls on CodeDeploy: find a running deployment of the group, start
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
    end_termination_wait: bool = False,
) -> list[dict[str, Any]]:
    """Deploy: read what this stack's services run, register revisions, deploy them.

    Every service of the stack's cluster and every group of its application is the stack's
    own, so these do not grow with the services; deploy_unit_documents holds what does.
    """

    def arn(service: str, resource: str) -> str:
        return naming.arn(service, resource, region=region, account=account_id)

    on_ecs = sorted({s.cluster_name for s in services if s.engine == "ecs"})
    ecs_engine = iam.ecs_engine_statements(on_ecs, region=region, account_id=account_id)
    if not any(s.engine == "codedeploy" for s in services):
        return [
            _read_services(services, arn),
            iam.register_task_definitions_statement(),
            *ecs_engine,
        ]
    return [
        _read_services(services, arn),
        # IAM cannot scope Describe/Register; tagging and PassRole are scoped per service.
        iam.register_task_definitions_statement(),
        {
            "Sid": "Deployments",
            "Effect": "Allow",
            "Action": DEPLOY_ACTIONS
            + ([END_TERMINATION_WAIT_ACTION] if end_termination_wait else []),
            "Resource": arn("codedeploy", f"deploymentgroup:{application_name}/*"),
        },
        # CreateDeployment also needs these on the application and the group's configuration.
        {
            "Sid": "Revisions",
            "Effect": "Allow",
            "Action": [
                "codedeploy:GetApplicationRevision",
                "codedeploy:RegisterApplicationRevision",
            ],
            "Resource": arn("codedeploy", f"application:{application_name}"),
        },
        iam.deployment_configs_statement(deployment_configs, region=region, account_id=account_id),
        *(ecs_engine if on_ecs else []),
    ]


def _read_services(services: Sequence[DeployedService], arn: Any) -> dict[str, Any]:
    return {
        "Sid": "ReadServices",
        "Effect": "Allow",
        "Action": "ecs:DescribeServices",
        "Resource": [
            arn("ecs", f"service/{c}/*") for c in sorted({s.cluster_name for s in services})
        ],
    }


def deploy_unit_documents(
    *, region: str, account_id: str, services: Sequence[DeployedService]
) -> list[list[dict[str, Any]]]:
    """Deploy's managed policies: tag new revisions of exactly the services' own families and
    their follower tasks' (never a `-template` one), and pass exactly their task and execution
    roles."""
    families = [f for s in services for f in (s.task_family, *(t.family for t in s.followers))]
    return revision_documents(
        [
            naming.arn("ecs", f"task-definition/{family}:*", region=region, account=account_id)
            for family in families
        ],
        [arn for s in services for arn in (*s.role_arns, *s.follower_role_arns)],
        region=region,
    )


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
    if source is not None:
        statements.append(source_statement(source, region=region, account_id=account_id))
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


@dataclass(frozen=True, kw_only=True)
class DeliveryPipelineArgs:
    """The stack's CodePipeline: source or upstream promotion, build, deploy, approval, promote."""

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
    # The stack's ECR namespace (naming.ecr_namespace), which holds every repository Build
    # pushes to (first environment only).
    ecr_namespace: str | None = None
    # Values the stack config owns (pipeline.*, logRetentionDays): given, never defaulted here.
    approval: bool
    build_compute_type: str
    build_image: str
    build_timeout_minutes: int
    log_retention_days: int
    validation_hook: str | None = None
    # deployment.onTerminationWait == "end": a ship ends the group's previous deployment's
    # termination wait instead of waiting for it (and may call ContinueDeployment).
    end_termination_wait: bool = False
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
        if (self.source is None) != (self.ecr_namespace is None):
            raise ValueError("give ecr_namespace with source (only the first environment pushes)")

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
        "engine": service.engine,
        "sidecar_containers": tuple(service.sidecar_containers),
    }


def render_buildspecs(args: DeliveryPipelineArgs, tooling_uri: str) -> dict[str, str]:
    """Project name -> its generated buildspec (src/ecs_delivery/components/buildspec.py), as YAML."""
    tooling: dict[str, Any] = {"tooling_s3_uri": tooling_uri}
    if args.builds_images:
        first = specs.buildspec(
            [
                specs.BuildService(
                    **_deploy_fields(s),
                    repository_url=s.repository_url or "",
                    context=s.build_context,
                    dockerfile=s.dockerfile,
                    built_sidecars=tuple(s.built_sidecars),
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
            specs.DeployService(
                **_deploy_fields(s), deployment_group=s.group_name, tasks=tuple(s.followers)
            )
            for s in args.services
        ],
        region=args.region,
        application=args.application_name,
        validation_hook=args.validation_hook,
        timeout_minutes=args.build_timeout_minutes,
        end_termination_wait=args.end_termination_wait,
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
        require_wiring(self.stages)
        key = self.tooling_key = codebuild.tooling_key()
        self.buildspecs = render_buildspecs(args, f"s3://{args.bucket_name}/{key}")
        self._args = args
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._settings = codebuild.BuildSettings.of(args)

        self.tooling = codebuild.create_tooling(
            f"{name}-tooling",
            bucket=args.bucket_name,
            key=key,
            parent=self,
            tags=args.tags,
            depends_on=args.bucket_resources,
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
            statements=build_role_statements(
                region=args.region,
                account_id=args.account_id,
                ecr_namespace=args.ecr_namespace if args.builds_images else None,
            ),
            # docker build needs the Docker daemon; the other actions run no containers.
            privileged=args.builds_images,
        )
        self.deploy_project = self._create_project(
            f"{name}-deploy",
            role="codebuild-deploy",
            project_name=args.deploy_project_name,
            log_group=f"{name}-deploy",
            description="Ships each service's image over what it runs (runtime.rollout)",
            statements=deploy_role_statements(
                region=args.region,
                account_id=args.account_id,
                application_name=args.application_name,
                deployment_configs=args.deployment_configs,
                services=args.services,
                end_termination_wait=args.end_termination_wait,
            ),
            unit_documents=deploy_unit_documents(
                region=args.region, account_id=args.account_id, services=args.services
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
        unit_documents: list[list[dict[str, Any]]] | None = None,
        privileged: bool = False,
        writes_artifacts: bool = True,
        timeout_minutes: int | None = None,
    ) -> aws.codebuild.Project:
        """One project (codebuild.create_project) whose role, `<name>-<role>` (`role` alone
        before child names derived from ours), also reads the pipeline's artifacts and the
        tooling."""
        args = self._args
        role_name = f"{self._name}-{role}"
        base = codebuild.artifact_statements(
            bucket_arn=args.bucket_arn,
            artifact_prefix=args.artifact_prefix,
            tooling_key=self.tooling_key,
            writes_artifacts=writes_artifacts,
        )
        if args.kms_key_arn is not None:
            base.append(_kms_statement(args.kms_key_arn))
        return codebuild.create_project(
            resource_name,
            settings=self._settings,
            parent=self,
            project_name=project_name,
            description=description,
            buildspec=self.buildspecs[project_name],
            statements=base + statements,
            unit_documents=unit_documents or [],
            timeout_minutes=timeout_minutes or args.build_timeout_minutes,
            log_group=log_group,
            role=role_name,
            role_aliases=self._former_name(role_name, role),
            privileged=privileged,
            depends_on=[self.tooling],
        )

    def _create_pipeline(self) -> aws.codepipeline.Pipeline:
        args = self._args
        return create_pipeline(
            self._name,
            parent=self,
            pipeline_name=args.pipeline_name,
            stages=self.stages,
            role=f"{self._name}-codepipeline",
            role_description=f"CodePipeline {args.pipeline_name}",
            role_statements=pipeline_role_statements(
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
            role_aliases=self._former_name(f"{self._name}-codepipeline", "codepipeline"),
            account_id=args.account_id,
            bucket_name=args.bucket_name,
            kms_key_arn=args.kms_key_arn,
            tags=args.tags,
            # A new pipeline starts at once: its deployment groups and roles must exist.
            depends_on=[
                self.project,
                self.deploy_project,
                self.publish_project,
                *args.bucket_resources,
                *args.depends_on,
            ],
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

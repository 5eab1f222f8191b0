"""Composes the delivery side of one environment: ECR, artifacts, CodeDeploy, hook, pipeline.

`build(...)` checks everything it can before registering a resource and reports every
problem at once as a ConfigError (one line per config key). A downstream environment
(upstreamStack set) reads the upstream's outputs `promotionBucket`, `promotionKey` and
`ecrRepositoryArns` (and `accountId`, optional) at plan time; without them it stops with a
message saying to deploy the upstream first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import naming
from ecs_delivery.components.artifacts import (
    ArtifactBucket,
    ArtifactBucketArgs,
    artifact_bucket_name,
    pipeline_artifact_prefix,
    promotion_key,
)
from ecs_delivery.components.buildspec import BuiltImage
from ecs_delivery.components.codedeploy import (
    AlarmSettings,
    CodeDeployment,
    CodeDeploymentArgs,
    CustomConfig,
    DeploymentTarget,
    check_targets,
    custom_config_name,
)
from ecs_delivery.components.codepipeline import SourceSettings
from ecs_delivery.components.config import ConfigError, ServiceConfig, StackConfig
from ecs_delivery.components.ecr import ImageRepository, ImageRepositoryArgs
from ecs_delivery.components.hook import (
    ServiceProbe,
    ValidationHook,
    ValidationHookArgs,
    check_probes,
)
from ecs_delivery.components.images import read_outputs
from ecs_delivery.components.pipeline import (
    DeliveryPipeline,
    DeliveryPipelineArgs,
    DeployedService,
    UpstreamRecord,
)
from ecs_delivery.components.platform import Environment, Platform, default_tags
from ecs_delivery.runtime.build import FollowerTask

# Outputs a downstream stack reads from its upstream (all exported by `build`).
UPSTREAM_OUTPUTS = ("promotionBucket", "promotionKey", "ecrRepositoryArns")
MAX_FUNCTION_NAME = 64
MAX_PIPELINE_NAME = 100


@dataclass
class Delivery:
    """What the program exports and what other components (rollouts) need."""

    outputs: dict[str, pulumi.Input[Any]]
    deployment_groups: dict[str, aws.codedeploy.DeploymentGroup]
    application_name: str
    repositories: dict[str, ImageRepository] = field(default_factory=dict)
    # The Lambda CodeDeploy runs after test traffic is allowed; every deployer's AppSpec names it.
    validation_hook: str | None = None
    validation_hook_function: pulumi.Resource | None = None
    # The groups' deployment configuration names (plain: no dependency on the groups).
    deployment_configs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Names:
    """Every physical name of the delivery side, deterministic (other code finds them)."""

    prefix: str
    application: str
    groups: dict[str, str]
    repositories: dict[str, str]
    pipeline: str
    project: str
    deploy_project: str
    publish_project: str
    hook: str
    bucket: str
    artifact_prefix: str
    promotion_key: str


def names(cfg: StackConfig, env: Environment) -> Names:
    prefix = naming.name_prefix(env.project, env.stack)
    pipeline = prefix
    return Names(
        prefix=prefix,
        application=naming.codedeploy_application(env.project, env.stack),
        groups={s: naming.deployment_group(s) for s in sorted(cfg.services)},
        repositories={
            key: naming.ecr_repository(env.project, env.stack, key) for key in built_images(cfg)
        },
        pipeline=pipeline,
        project=f"{prefix}-{'validate' if cfg.upstream_stack else 'build'}",
        deploy_project=f"{prefix}-deploy",
        publish_project=f"{prefix}-publish",
        hook=naming.validation_hook(env.project, env.stack),
        bucket=artifact_bucket_name(env.project, env.stack, env.account_id, env.region),
        artifact_prefix=pipeline_artifact_prefix(pipeline),
        promotion_key=promotion_key(env.stack),
    )


def built_images(cfg: StackConfig) -> dict[str, tuple[str, str]]:
    """Every image the pipeline builds, by its key (`naming.built_image`): the service and
    the container it runs in (each service's own, and its sidecars with `build`)."""
    return {
        naming.built_image(name, container): (name, container)
        for name, svc in sorted(cfg.services.items())
        for container in [name, *svc.built_sidecars()]
    }


def repository_url(env: Environment, repository: str) -> str:
    """The repository's URL, known before it exists (the buildspec is plain text)."""
    return f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/{repository}"


def downstream_account_ids(cfg: StackConfig) -> list[str]:
    """Accounts of downstream environments that pull our images and read our records.

    Read from `pipeline.downstreamAccountIds` once the config has it; same-account
    promotion needs none (identity policies suffice).
    """
    return list(getattr(cfg.pipeline, "downstream_account_ids", None) or [])


# --- upstream ----------------------------------------------------------------------------


def read_upstream(upstream: pulumi.StackReference, stack: str) -> dict[str, Any]:
    """The upstream's outputs this stack needs, as plain values; ConfigError when missing.

    Stack-reference outputs are known at preview, so a missing one stops the plan here
    instead of producing a pipeline that reads nothing.
    """
    values = read_outputs(upstream, [*UPSTREAM_OUTPUTS, "accountId", "ecrRepositories"])
    missing = [key for key in UPSTREAM_OUTPUTS if values[key] in (None, "", {}, [])]
    if missing:
        raise ConfigError(
            [
                f"upstreamStack: stack {stack!r} has no output(s) {', '.join(missing)}; deploy "
                f"the upstream first with this version of the program (`pulumi up -s {stack}`), "
                "then preview this stack again"
            ]
        )
    return values


# --- plan-time checks ----------------------------------------------------------------------


def service_probe(name: str, svc: ServiceConfig, group: str) -> ServiceProbe:
    """The hook's settings for one service.

    Without an explicit `validation.path` the hook probes the health-check path: the test
    listener routes like the production one, so '/health' could reach another service.
    With host-header routing the probe sends the first exact host name.
    """
    validation = svc.validation
    path = validation.path if "path" in validation.model_fields_set else svc.health_check.path
    hosts = [h for h in svc.routing.host_headers if "*" not in h and "?" not in h]
    return ServiceProbe(
        service=name,
        group_name=group,
        path=path,
        expected_status=validation.expected_status,
        probes=validation.probes,
        interval_seconds=float(validation.interval_seconds),
        latency_budget_ms=validation.latency_budget_ms,
        host_header=hosts[0] if hosts else None,
    )


def _environment_problems(cfg: StackConfig, n: Names) -> list[str]:
    problems = []
    if len(n.hook) > MAX_FUNCTION_NAME:
        problems.append(
            f"(project/stack): the hook name {n.hook!r} is longer than {MAX_FUNCTION_NAME} "
            "characters; shorten the project or stack name"
        )
    if len(n.pipeline) > MAX_PIPELINE_NAME:
        problems.append(f"(project/stack): the pipeline name {n.pipeline!r} is too long")
    return problems


def _upstream_problems(cfg: StackConfig, upstream_values: dict[str, Any] | None) -> list[str]:
    """A downstream service must have images upstream: promotion rebuilds nothing."""
    if upstream_values is None:
        return []
    known = upstream_values["ecrRepositoryArns"]
    return [
        f"{_key(service, container)}: upstream stack {cfg.upstream_stack!r} builds no images "
        f"for it (its ecrRepositoryArns hold {sorted(known)}); add the "
        f"{'service' if service == container else 'sidecar with `build`'} upstream first"
        for key, (service, container) in built_images(cfg).items()
        if key not in known
    ]


def _key(service: str, container: str) -> str:
    if service == container:
        return f"services.{service}"
    return f"services.{service}.sidecars.{container}.build"


# --- composition -------------------------------------------------------------------------


def build(
    cfg: StackConfig,
    env: Environment,
    platform: Platform,
    upstream_values: dict[str, Any] | None,
    opts: pulumi.ResourceOptions | None = None,
) -> Delivery:
    """Create the delivery side of the environment; ConfigError before any resource if wrong.

    `upstream_values` are the upstream stack's outputs (`read_upstream`), None for the first
    environment; `opts` the options of every top-level resource (a parent and its aliases).
    """
    try:
        n = names(cfg, env)
    except ValueError as exc:
        raise ConfigError([f"(project/stack): {exc}"]) from None
    if cfg.upstream_stack and upstream_values is None:
        raise ValueError("upstreamStack is set: pass the upstream's outputs (read_upstream)")

    alarm_settings = AlarmSettings(**cfg.deployment.alarms.model_dump())
    custom_configs = [
        CustomConfig(key=k, type=c.type, percent=c.percent, interval_minutes=c.interval_minutes)
        for k, c in sorted(cfg.deployment.custom_configs.items())
    ]
    # Workers have no load balancer: no target groups, alarms on them or probes (ECS rolls
    # them out; the pipeline and the release engine deploy them like the others).
    web = [name for name, svc in sorted(cfg.services.items()) if not svc.is_worker]
    targets = [_target(cfg, name, n, platform) for name in web]
    probes = [service_probe(s, cfg.services[s], n.groups[s]) for s in web]
    problems = (
        _environment_problems(cfg, n)
        + _upstream_problems(cfg, upstream_values)
        + check_targets(targets, alarm_settings, custom_configs, n.prefix)
        + check_probes(probes)
    )
    if problems:
        raise ConfigError(problems)

    tags = default_tags(cfg, env)
    downstream_accounts = downstream_account_ids(cfg)
    bucket = ArtifactBucket(
        "artifacts",
        ArtifactBucketArgs(
            bucket_name=n.bucket,
            region=env.region,
            expiring_prefixes=[n.artifact_prefix],
            expiry_days=cfg.pipeline.artifact_expiry_days,
            noncurrent_expiry_days=cfg.pipeline.artifact_expiry_days,
            kms_key_arn=platform.kms_key_arn,
            access_logs=platform.access_logs,
            reader_account_ids=downstream_accounts,
            tags=tags,
            force_destroy=cfg.teardown.force_destroy,
        ),
        opts,
    )
    repositories: dict[str, ImageRepository] = {}
    if not cfg.upstream_stack:
        repositories = {
            key: ImageRepository(
                f"ecr-{key}",
                ImageRepositoryArgs(
                    repository_name=n.repositories[key],
                    region=env.region,
                    keep_tagged_images=cfg.pipeline.ecr_keep_tagged_images,
                    untagged_expiry_days=cfg.pipeline.ecr_untagged_expiry_days,
                    kms_key_arn=platform.kms_key_arn,
                    pull_account_ids=downstream_accounts,
                    tags={**tags, "Service": service},
                    force_delete=cfg.teardown.force_destroy,
                ),
                opts,
            )
            for key, (service, _) in built_images(cfg).items()
        }

    # Every group of the stack's own application, as one pattern: a list of the groups grew
    # the hook's policy past IAM's 10,240 characters at about 110 services.
    group_arns = [
        naming.arn(
            "codedeploy",
            f"deploymentgroup:{n.application}/*",
            region=env.region,
            account=env.account_id,
        )
    ]
    lb = platform.load_balancer
    hook = ValidationHook(
        "validation-hook",
        ValidationHookArgs(
            function_name=n.hook,
            probes=probes,
            test_url=lb.test_url,
            test_listener_port=cfg.load_balancer.test_listener_port,
            vpc_id=platform.network.vpc_id,
            subnet_ids=platform.network.private_subnet_ids,
            load_balancer_security_group_id=lb.security_group_id,
            deployment_group_arns=group_arns,
            region=env.region,
            account_id=env.account_id,
            log_retention_days=cfg.log_retention_days,
            kms_key_arn=platform.kms_key_arn,
            internal_load_balancer=cfg.load_balancer.internal,
            codedeploy_api_cidr=(
                cfg.network.cidr if cfg.network.nat_gateways == "none" else "0.0.0.0/0"
            ),
            tags=tags,
        ),
        opts,
    )
    deployment = CodeDeployment(
        "codedeploy",
        CodeDeploymentArgs(
            application_name=n.application,
            name_prefix=n.prefix,
            targets=targets,
            load_balancer_arn_suffix=lb.arn_suffix,
            region=env.region,
            account_id=env.account_id,
            artifact_bucket_arn=bucket.arn,
            artifact_prefix=n.artifact_prefix,
            alarms=alarm_settings,
            custom_configs=custom_configs,
            termination_wait_minutes=cfg.deployment.termination_wait_minutes,
            hook_function_arn=hook.arn,
            kms_key_arn=platform.kms_key_arn,
            tags=tags,
        ),
        opts,
    )
    pipeline = DeliveryPipeline(
        "pipeline",
        _pipeline_args(
            cfg,
            env,
            n,
            platform,
            targets,
            upstream_values,
            tags,
            bucket_resources=[bucket.bucket, bucket.versioning, bucket.policy],
            depends_on=[hook.function, *deployment.groups.values()],
        ),
        opts,
    )
    outputs = _outputs(cfg, env, n, repositories, upstream_values, pipeline)
    return Delivery(
        outputs=outputs,
        deployment_groups=deployment.groups,
        application_name=n.application,
        repositories=repositories,
        validation_hook=n.hook,
        validation_hook_function=hook.function,
        deployment_configs=deployment_configs(cfg, n, targets),
    )


def _target(cfg: StackConfig, name: str, n: Names, platform: Platform) -> DeploymentTarget:
    return DeploymentTarget.of(
        name,
        platform.services[name],
        platform.load_balancer,
        group_name=n.groups[name],
        cluster_name=platform.cluster.name,
        service_name=naming.service_name(name),
        deployment_config=cfg.services[name].deployment_config or cfg.deployment.config,
        engine=cfg.deployment.engine,
    )


def deployment_configs(cfg: StackConfig, n: Names, targets: list[DeploymentTarget]) -> list[str]:
    """The groups' configuration names, known before the groups exist (deployers read them)."""
    custom = set(cfg.deployment.custom_configs)
    return sorted(
        {
            custom_config_name(n.prefix, t.deployment_config)
            if t.deployment_config in custom
            else t.deployment_config
            for t in targets
            if t.engine == "codedeploy"
        }
    )


def _pipeline_args(
    cfg: StackConfig,
    env: Environment,
    n: Names,
    platform: Platform,
    targets: list[DeploymentTarget],
    upstream_values: dict[str, Any] | None,
    tags: dict[str, str],
    bucket_resources: list[pulumi.Resource],
    depends_on: list[pulumi.Resource],
) -> DeliveryPipelineArgs:
    services = []
    for name in sorted(cfg.services):
        svc = cfg.services[name]
        fargate = platform.services[name]
        repository = n.repositories[name]
        first = not cfg.upstream_stack
        # The tasks that follow the service (a container named after the task): each ship
        # moves them too.
        followers = sorted(
            task for task, t in cfg.scheduled_tasks.items() if t.follows_service == name
        )
        services.append(
            DeployedService(
                name=name,
                group_name=n.groups[name],
                container_port=svc.container_port,
                cluster_name=platform.cluster.name,
                service_name=naming.service_name(name),
                task_family=naming.task_family(env.project, env.stack, name),
                role_arns=[fargate.task_role_arn, fargate.execution_role_arn],
                repository_url=repository_url(env, repository) if first else None,
                repository_arn=naming.ecr_repository_arn(env.region, env.account_id, repository)
                if first
                else None,
                build_context=svc.build.context,
                dockerfile=svc.build.dockerfile,
                sidecar_containers=svc.built_sidecars(),
                built_sidecars=[
                    BuiltImage(
                        container_name=sidecar,
                        repository_url=repository_url(
                            env, n.repositories[naming.built_image(name, sidecar)]
                        ),
                        context=svc.sidecars[sidecar].build.context,
                        dockerfile=svc.sidecars[sidecar].build.dockerfile,
                        field=f"services.{name}.sidecars.{sidecar}.build",
                    )
                    for sidecar in svc.built_sidecars()
                ]
                if first
                else [],
                engine=svc.engine(cfg.deployment.engine),
                followers=[
                    FollowerTask(naming.task_family(env.project, env.stack, task), task)
                    for task in followers
                ],
                follower_role_arns=[
                    arn
                    for task in followers
                    for arn in (
                        platform.tasks[task].task_role_arn,
                        platform.tasks[task].execution_role_arn,
                    )
                ],
            )
        )
    source = cfg.pipeline.source
    upstream = None
    if upstream_values is not None:
        upstream_account = upstream_values.get("accountId")
        upstream = UpstreamRecord(
            stack=str(cfg.upstream_stack),
            bucket=str(upstream_values["promotionBucket"]),
            key=str(upstream_values["promotionKey"]),
            # EventBridge sees S3 events of this account only.
            poll=bool(upstream_account) and upstream_account != env.account_id,
        )
    # A downstream environment asks for approval unless the config says otherwise.
    approval = (
        cfg.pipeline.approval if cfg.pipeline.approval is not None else bool(cfg.upstream_stack)
    )
    return DeliveryPipelineArgs(
        pipeline_name=n.pipeline,
        project_name=n.project,
        deploy_project_name=n.deploy_project,
        publish_project_name=n.publish_project,
        stack=env.stack,
        region=env.region,
        account_id=env.account_id,
        application_name=n.application,
        services=services,
        deployment_configs=deployment_configs(cfg, n, targets),
        bucket_name=n.bucket,
        artifact_prefix=n.artifact_prefix,
        promotion_key=n.promotion_key,
        source=SourceSettings(
            provider=source.provider,
            repository=source.repository,
            branch=source.branch,
            connection_arn=source.connection_arn,
        )
        if source is not None
        else None,
        upstream=upstream,
        ecr_namespace=naming.ecr_namespace(env.project, env.stack) if source is not None else None,
        approval=bool(approval),
        validation_hook=n.hook,
        end_termination_wait=cfg.deployment.on_termination_wait == "end",
        build_compute_type=cfg.pipeline.build_compute_type,
        build_image=cfg.pipeline.build_image,
        build_timeout_minutes=cfg.pipeline.build_timeout_minutes,
        log_retention_days=cfg.log_retention_days,
        kms_key_arn=platform.kms_key_arn,
        bucket_resources=bucket_resources,
        depends_on=depends_on,
        tags=tags,
    )


def _outputs(
    cfg: StackConfig,
    env: Environment,
    n: Names,
    repositories: dict[str, ImageRepository],
    upstream_values: dict[str, Any] | None,
    pipeline: DeliveryPipeline,
) -> dict[str, pulumi.Input[Any]]:
    if upstream_values is None:
        urls: pulumi.Input[Any] = {s: r.url for s, r in repositories.items()}
        arns: pulumi.Input[Any] = {s: r.arn for s, r in repositories.items()}
    else:
        # Images live in the first environment's repositories; pass them on down the chain.
        arns = upstream_values["ecrRepositoryArns"]
        urls = upstream_values.get("ecrRepositories") or {}
    return {
        "accountId": env.account_id,
        "artifactBucket": n.bucket,
        "ecrRepositories": urls,
        "ecrRepositoryArns": arns,
        "codedeployApplication": n.application,
        # A worker has no group: ECS's rolling controller deploys it.
        "deploymentGroups": {s: g for s, g in n.groups.items() if not cfg.services[s].is_worker},
        "pipelineName": pipeline.pipeline.name,
        "promotionBucket": n.bucket,
        "promotionKey": n.promotion_key,
        "validationHook": n.hook,
    }

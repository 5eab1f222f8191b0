"""Composes one environment from its validated config: network, load balancer, services."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import (
    access_logs,
    bootstrap,
    iam,
    kms,
    naming,
    service_connect,
    sidecars,
)
from ecs_delivery.components import edge as edge_front
from ecs_delivery.components.access_logs import AccessLogs
from ecs_delivery.components.artifacts import artifact_bucket_name
from ecs_delivery.components.codedeploy import AlarmSettings, alarm_specs
from ecs_delivery.components.config import ContainerConfig, ServiceConfig, StackConfig
from ecs_delivery.components.fargate_service import (
    Autoscaling,
    CapacityProvider,
    EcsBlueGreen,
    EcsCluster,
    EcsClusterArgs,
    ExecLogging,
    ExistingCluster,
    FargateService,
    FargateServiceArgs,
    ManualGate,
    ScheduledScaling,
)
from ecs_delivery.components.hook import function_arn
from ecs_delivery.components.images import PROJECT_TAG, STACK_TAG
from ecs_delivery.components.load_balancer import (
    ExistingLoadBalancer,
    HealthCheck,
    LoadBalancer,
    LoadBalancerArgs,
    ServiceRoute,
    TargetGroupPair,
)
from ecs_delivery.components.network import ExistingNetwork, Network, NetworkArgs
from ecs_delivery.components.priorities import listener_priorities
from ecs_delivery.components.scheduled_task import ScheduledTask, ScheduledTaskArgs
from ecs_delivery.components.task_definition import Container, ContainerHealthCheck, EfsVolume
from ecs_delivery.components.worker import QueueBacklog, RollingWorker


@dataclass(frozen=True, kw_only=True)
class Environment:
    """Facts about the target account that the program reads once, before building anything."""

    project: str
    stack: str
    region: str
    account_id: str
    availability_zones: list[str]
    aws_profile: str | None = None
    aws_role_arn: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExistingRoles:
    """A service's or task's own roles (each None: created)."""

    task_role_arn: pulumi.Input[str] | None = None
    execution_role_arn: pulumi.Input[str] | None = None


@dataclass(frozen=True, kw_only=True)
class Existing:
    """What the environment brings instead of creating (None or absent: created)."""

    network: ExistingNetwork | None = None
    load_balancer: ExistingLoadBalancer | None = None
    cluster: ExistingCluster | None = None
    # By service or scheduled-task name.
    roles: dict[str, ExistingRoles] = field(default_factory=dict)
    security_group_ids: dict[str, list[pulumi.Input[str]]] = field(default_factory=dict)


@dataclass
class Platform:
    network: Network | ExistingNetwork
    load_balancer: LoadBalancer
    cluster: EcsCluster | ExistingCluster
    services: dict[str, FargateService] = field(default_factory=dict)
    tasks: dict[str, ScheduledTask] = field(default_factory=dict)
    edge: edge_front.Edge = field(default_factory=edge_front.Edge)
    outputs: dict[str, object] = field(default_factory=dict)
    # The stack's customer-managed key (given or created), None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None = None
    # Where access logs go (accessLogs.enabled), None: nowhere.
    access_logs: AccessLogs | None = None


def stack_key(
    cfg: StackConfig,
    env: Environment,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions | None = None,
) -> pulumi.Input[str] | None:
    """The key of `kms` config: the given ARN, a key created for the stack, or None."""
    if cfg.kms.key_arn:
        return cfg.kms.key_arn
    if not cfg.kms.create:
        return None
    key = kms.StackKey(
        "kms",
        kms.StackKeyArgs(
            alias=naming.kms_alias(env.project, env.stack),
            region=env.region,
            account_id=env.account_id,
            tags=tags,
        ),
        opts,
    )
    return key.arn


def access_log_target(
    cfg: StackConfig,
    env: Environment,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions | None = None,
) -> AccessLogs | None:
    """Where the stack's access logs go: the given bucket, a log bucket created here, or None."""
    logs = cfg.access_logs
    if not logs.enabled:
        return None
    if logs.bucket_name:
        return AccessLogs(bucket=logs.bucket_name)
    # The buckets that log here have deterministic names: the policy names each one.
    sources = [artifact_bucket_name(env.project, env.stack, env.account_id, env.region)]
    if cfg.release:
        sources.append(
            naming.release_bucket_name(env.project, env.stack, env.account_id, env.region)
        )
    bucket = access_logs.LogBucket(
        "logs",
        access_logs.LogBucketArgs(
            bucket_name=naming.log_bucket_name(env.project, env.stack, env.account_id, env.region),
            region=env.region,
            account_id=env.account_id,
            source_buckets=sources,
            expiration_days=logs.expiration_days,
            tags=tags,
            force_destroy=cfg.teardown.force_destroy,
        ),
        opts,
    )
    return bucket.target


_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")


def pull_repositories(image: str, *repository_arns: str | None) -> list[str]:
    """The ECR repositories a task pulls from: the given ones, plus the one `image` lives in."""
    arns = [arn for arn in repository_arns if arn]
    match = _ECR_IMAGE.match(image)
    if match:
        account, region, repository = match.groups()
        arns.append(naming.ecr_repository_arn(region, account, repository))
    return sorted(set(arns))


def _pull_arns(
    env: Environment,
    images: list[str],
    owners: list[str],
    upstream_arns: dict[str, str] | None,
) -> list[str]:
    """Where a task's images come from: this stack's repository of each of `owners` (a
    service's and its built sidecars', `naming.built_image`), the upstream's (promotion moves
    its digests), and the declared images' (a pinned sidecar's too). Never what runs now: a
    pipeline ship must not change the execution role."""
    repositories = [
        arn
        for owner in owners
        for arn in (
            naming.ecr_repository_arn(
                env.region, env.account_id, naming.ecr_repository(env.project, env.stack, owner)
            ),
            (upstream_arns or {}).get(owner),
        )
    ]
    return sorted({arn for image in images for arn in pull_repositories(image, *repositories)})


def _service_bootstrap(name: str, svc: ServiceConfig, image: str) -> bootstrap.BootstrapContainer:
    """The service's bootstrap answers its health check and its validation path (a worker's
    only keeps running)."""
    if svc.is_worker:
        return bootstrap.worker_container(image)
    warning = bootstrap.custom_image_warning(
        name, image, port=svc.container_port, path=svc.health_check.path
    )
    if warning:
        pulumi.log.warn(warning)
    return bootstrap.service_container(
        image,
        port=svc.container_port,
        paths=[svc.health_check.path, svc.validation.path],
        writable_paths=svc.writable_paths if svc.readonly_root_filesystem else ["/tmp"],
    )


def container_health_check(
    cfg: ContainerConfig, start: object | None
) -> ContainerHealthCheck | None:
    """The configured check, off while the bootstrap image runs (it may lack the command)."""
    check = cfg.container_health_check
    return ContainerHealthCheck(**check.model_dump()) if check and start is None else None


def autoscaling(svc: ServiceConfig) -> Autoscaling | None:
    if not svc.autoscaling:
        return None
    values = svc.autoscaling.model_dump()
    values["scheduled"] = [ScheduledScaling(**a) for a in values["scheduled"]]
    queue = values.pop("queue")
    values["queue"] = (
        QueueBacklog(
            queue_name=queue["name"],
            backlog_per_task=queue["backlog_per_task"],
            consume=queue["consume"],
        )
        if queue
        else None
    )
    return Autoscaling(**values)


def default_tags(cfg: StackConfig, env: Environment) -> dict[str, str]:
    # The live-image look-up finds this stack's services by these two tags: keep them last.
    return {**cfg.tags, PROJECT_TAG: env.project, STACK_TAG: env.stack}


def build(
    cfg: StackConfig,
    env: Environment,
    images: dict[str, str],
    task_images: dict[str, str] | None = None,
    upstream_repository_arns: dict[str, str] | None = None,
    existing: Existing | None = None,
    bootstrapping: Collection[str] = (),
    opts: pulumi.ResourceOptions | None = None,
    task_rollouts: dict[str, dict[str, Any]] | None = None,
    built_sidecars: dict[str, dict[str, str]] | None = None,
    bootstrapping_sidecars: dict[str, Collection[str]] | None = None,
) -> Platform:
    """Create every resource of the environment.

    `images` maps service -> declared image (what its template carries), `task_images` task ->
    image; `upstream_repository_arns` the upstream's repositories, which promoted images come
    from; `existing` what to use instead of creating (then its config keys are unused);
    `bootstrapping` the services and tasks that run their bootstrap image after this update;
    `opts` the options of every top-level resource (a parent and its aliases);
    `task_rollouts` each task's rollout settings (ScheduledTaskArgs' `pinned_image`,
    `promotion`, `initial_image`); `built_sidecars` service -> sidecar -> declared image of
    the sidecars the pipeline builds, `bootstrapping_sidecars` those of them that run their
    bootstrap image after this update.
    """
    tags = default_tags(cfg, env)
    existing = existing or Existing()
    key_arn = stack_key(cfg, env, tags, opts)
    logs = access_log_target(cfg, env, tags, opts)
    network = existing.network or Network(
        "network",
        NetworkArgs(
            cidr=cfg.network.cidr,
            availability_zones=env.availability_zones[: cfg.network.availability_zones],
            nat_gateways=cfg.network.nat_gateways,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
            region=env.region,
            kms_key_arn=key_arn,
            interface_endpoints=edge_front.interface_endpoints(cfg),
            tags=tags,
        ),
        opts,
    )
    edge = edge_front.certificate_for(cfg, tags, opts)
    # Workers have no load balancer: no target groups, listener rules or priorities.
    routed = {n: s for n, s in sorted(cfg.services.items()) if not s.is_worker}
    priorities = listener_priorities(
        {n: s.routing.model_dump(by_alias=True, exclude_none=True) for n, s in routed.items()}
    )
    lb_cfg = cfg.load_balancer
    load_balancer = LoadBalancer(
        "alb",
        LoadBalancerArgs(
            vpc_id=network.vpc_id,
            existing=existing.load_balancer,
            vpc_cidr=network.vpc_cidr,
            public_subnet_ids=network.public_subnet_ids,
            certificate_arn=lb_cfg.certificate_arn or edge.certificate_arn,
            ssl_policy=lb_cfg.ssl_policy,
            test_listener_port=lb_cfg.test_listener_port,
            test_listener_cidrs=lb_cfg.test_listener_cidrs,
            # An internal load balancer sees the hook's own address, not a NAT gateway's.
            test_listener_nat_ips={} if lb_cfg.internal else network.nat_public_ips,
            domain_name=lb_cfg.domain_name,
            deletion_protection=lb_cfg.deletion_protection,
            idle_timeout_seconds=lb_cfg.idle_timeout_seconds,
            access_logs=logs,
            internal=lb_cfg.internal,
            private_subnet_ids=network.private_subnet_ids,
            client_cidrs=lb_cfg.client_cidrs,
            services=[
                ServiceRoute(
                    name=name,
                    port=svc.container_port,
                    health_check=HealthCheck(**svc.health_check.model_dump()),
                    deregistration_delay_seconds=svc.deregistration_delay_seconds,
                    path_patterns=svc.routing.path_patterns,
                    host_headers=svc.routing.host_headers,
                    priority=priorities[name],
                )
                for name, svc in routed.items()
            ],
            tags=tags,
        ),
        opts,
    )
    cluster = existing.cluster or EcsCluster(
        "cluster",
        EcsClusterArgs(
            cluster_name=naming.cluster_name(env.project, env.stack),
            container_insights=cfg.container_insights,
            exec_logging=ExecLogging(retention_days=cfg.log_retention_days, kms_key_arn=key_arn)
            if any(s.enable_execute_command for s in cfg.services.values())
            else None,
            fargate_capacity_providers=any(s.capacity_providers for s in cfg.services.values()),
            tags=tags,
        ),
        opts,
    )
    cluster_name = cluster.name
    # A strategy's providers must be associated with the cluster before a service names them
    # (a given cluster must have them already).
    provider_association = (
        [cluster.capacity_providers]
        if isinstance(cluster, EcsCluster) and cluster.capacity_providers
        else []
    )
    edge_front.attach(edge, cfg, env.project, env.stack, load_balancer, tags, opts)
    platform = Platform(
        network=network,
        load_balancer=load_balancer,
        cluster=cluster,
        kms_key_arn=key_arn,
        access_logs=logs,
        edge=edge,
    )
    on_ecs = cfg.deployment.engine == "ecs"
    mesh = service_connect.create_mesh(
        cfg,
        name_prefix=naming.name_prefix(env.project, env.stack),
        vpc_id=network.vpc_id,
        tags=tags,
        opts=opts,
    )
    for name, svc in sorted(cfg.services.items()):
        pair = load_balancer.target_groups.get(name)  # None: a worker
        start = _service_bootstrap(name, svc, images[name]) if name in bootstrapping else None
        routed_on_ecs = pair is not None and on_ecs  # ECS's blue/green (a worker rolls)
        asleep = (bootstrapping_sidecars or {}).get(name, ())
        beside = sidecars.containers(
            svc,
            main=name,
            bootstrapping=start is not None,
            built_images=(built_sidecars or {}).get(name),
            built_bootstrapping=asleep,
        )
        platform.services[name] = FargateService(
            name,
            FargateServiceArgs(
                cluster_arn=cluster.arn,
                cluster_name=cluster_name,
                service_name=naming.service_name(name),
                family=naming.task_family(env.project, env.stack, name),
                template_family=naming.template_family(env.project, env.stack, name),
                container=Container(
                    name=name,
                    image=images[name],
                    port=svc.container_port or 0,
                    environment=svc.environment,
                    secrets=svc.secrets,
                    readonly_root_filesystem=svc.readonly_root_filesystem,
                    user=svc.user,
                    writable_paths=svc.writable_paths,
                    command=svc.command,
                    entry_point=start.entry_point if start else None,
                    docker_labels=start.labels if start else {},
                    health_check=container_health_check(svc, start),
                    efs_volumes=[EfsVolume(**v.model_dump()) for v in svc.volumes],
                    # Named on every ECS-engine revision, whether or not Service Connect is on:
                    # ECS checks the port name against the revision a service runs when an
                    # update turns Service Connect on, so a running service can in one update.
                    port_name=name if routed_on_ecs else None,
                    app_protocol="http" if routed_on_ecs else None,
                    **sidecars.main_container_settings(svc, asleep),
                ),
                sidecars=beside,
                task_statements=sidecars.task_statements(
                    svc, region=env.region, account_id=env.account_id
                ),
                cpu=svc.cpu,
                memory=svc.memory,
                desired_count=svc.desired_count,
                vpc_id=network.vpc_id,
                vpc_cidr=network.vpc_cidr,
                subnet_ids=network.private_subnet_ids,
                load_balancer_security_group_id=load_balancer.security_group_id if pair else None,
                target_group_arn=pair.blue.arn if pair else None,
                region=env.region,
                account_id=env.account_id,
                log_retention_days=cfg.log_retention_days,
                kms_key_arn=key_arn,
                health_check_grace_period_seconds=svc.health_check_grace_period_seconds,
                cpu_architecture=svc.cpu_architecture,
                autoscaling=autoscaling(svc),
                enable_execute_command=svc.enable_execute_command,
                exec_log_group_arn=cluster.exec_log_group_arn,
                load_balancer_arn_suffix=load_balancer.arn_suffix,
                target_group_arn_suffixes=[pair.blue.arn_suffix, pair.green.arn_suffix]
                if pair
                else [],
                image_repository_arns=_pull_arns(
                    env,
                    [images[name], *(c.image for c in beside)],
                    [name, *(naming.built_image(name, s) for s in svc.built_sidecars())],
                    upstream_repository_arns,
                ),
                capacity_providers=[
                    CapacityProvider(**c.model_dump()) for c in svc.capacity_providers
                ],
                depends_on=[
                    *([pair.production_rule, pair.test_rule] if pair else []),
                    *(provider_association if svc.capacity_providers else []),
                ],
                security_group_ids=existing.security_group_ids.get(name),
                task_role_arn=existing.roles.get(name, ExistingRoles()).task_role_arn,
                execution_role_arn=existing.roles.get(name, ExistingRoles()).execution_role_arn,
                blue_green=blue_green(cfg, env, name, pair) if pair and on_ecs else None,
                worker=RollingWorker(alarm_names=svc.rollback_alarms) if svc.is_worker else None,
                service_connect=service_connect.for_service(mesh, name, svc),
                tags={**tags, "Service": name},
            ),
            opts,
        )
    for name, task in sorted(cfg.scheduled_tasks.items()):
        image = (task_images or {})[name]
        start = bootstrap.task_container(image) if name in bootstrapping else None
        platform.tasks[name] = ScheduledTask(
            f"task-{name}",
            ScheduledTaskArgs(
                task_name=name,
                family=naming.task_family(env.project, env.stack, name),
                container=Container(
                    name=name,
                    image=image,
                    port=0,
                    environment=task.environment,
                    secrets=task.secrets,
                    readonly_root_filesystem=task.readonly_root_filesystem,
                    user=task.user,
                    command=task.command,
                    entry_point=start.entry_point if start else None,
                    docker_labels=start.labels if start else {},
                    health_check=container_health_check(task, start),
                ),
                cpu=task.cpu,
                memory=task.memory,
                schedule=task.schedule,
                timezone=task.timezone,
                enabled=task.enabled,
                retry_attempts=task.retry_attempts,
                cpu_architecture=(
                    cfg.services[task.follows_service].cpu_architecture
                    if task.follows_service
                    else "X86_64"
                ),
                cluster_arn=cluster.arn,
                vpc_id=network.vpc_id,
                vpc_cidr=network.vpc_cidr,
                subnet_ids=network.private_subnet_ids,
                region=env.region,
                account_id=env.account_id,
                log_retention_days=cfg.log_retention_days,
                kms_key_arn=key_arn,
                image_repository_arns=_pull_arns(
                    env, [image], [task.follows_service or name], upstream_repository_arns
                ),
                security_group_ids=existing.security_group_ids.get(name),
                task_role_arn=existing.roles.get(name, ExistingRoles()).task_role_arn,
                execution_role_arn=existing.roles.get(name, ExistingRoles()).execution_role_arn,
                profile=env.aws_profile,
                role_arn=env.aws_role_arn,
                **(task_rollouts or {}).get(name, {}),
                tags=tags,
            ),
            opts,
        )
    platform.outputs.update(
        {
            "vpcId": network.vpc_id,
            "privateSubnetIds": network.private_subnet_ids,
            "url": load_balancer.url,
            "testUrl": load_balancer.test_url,
            "clusterName": cluster_name,
            "services": {
                name: {
                    "serviceName": s.service.name,
                    "templateTaskDefinitionArn": s.task_definition.arn,
                    **(
                        {
                            "blueTargetGroup": load_balancer.target_groups[name].blue.name,
                            "greenTargetGroup": load_balancer.target_groups[name].green.name,
                        }
                        if name in load_balancer.target_groups
                        else {"kind": "worker"}
                    ),
                }
                for name, s in platform.services.items()
            },
            "scheduledTasks": {
                name: {
                    "taskDefinitionArn": t.rollout.running_task_definition_arn,
                    "templateTaskDefinitionArn": t.task_definition.arn,
                    "schedule": t.schedule.name,
                }
                for name, t in platform.tasks.items()
            },
        }
    )
    if mesh is not None:
        platform.outputs["serviceConnectNamespace"] = mesh.namespace_arn
    if approvers := approver_policy(cfg, env, cluster_name, tags, opts):
        platform.outputs["manualApprovalPolicyArn"] = approvers.arn
    if key_arn is not None:
        platform.outputs["kmsKeyArn"] = key_arn
    if logs is not None:
        platform.outputs["accessLogBucket"] = logs.bucket
    return platform


def blue_green(
    cfg: StackConfig, env: Environment, name: str, pair: TargetGroupPair
) -> EcsBlueGreen:
    """A service's ECS-native blue/green (deployment.engine ecs) from the deployment config:
    the same traffic shifting, alarms (created by the delivery side) and validation hook as
    under CodeDeploy."""
    d = cfg.deployment
    prefix = naming.name_prefix(env.project, env.stack)
    return EcsBlueGreen(
        strategy=d.ecs_strategy(cfg.services[name].deployment_config),
        bake_minutes=d.termination_wait_minutes,
        green_target_group_arn=pair.green.arn,
        production_rule_arn=pair.production_rule.arn,
        test_rule_arn=pair.test_rule.arn,
        alarm_names=[
            spec.name for spec in alarm_specs(name, AlarmSettings(**d.alarms.model_dump()), prefix)
        ],
        hook_function_arn=function_arn(
            env.region, env.account_id, naming.validation_hook(env.project, env.stack)
        ),
        hook_key=naming.deployment_group(name),
        gate=ManualGate(
            stage=d.manual_approval.stage, timeout_minutes=d.manual_approval.timeout_minutes
        )
        if d.manual_approval.enabled
        else None,
    )


def approver_policy(
    cfg: StackConfig,
    env: Environment,
    cluster_name: str,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions | None = None,
) -> aws.iam.Policy | None:
    """The managed policy of the people who answer the manual gate (attach it to their role or
    group), None without a gate."""
    if not (cfg.deployment.manual_approval.enabled and cfg.deployment.engine == "ecs"):
        return None
    prefix = naming.name_prefix(env.project, env.stack)
    return aws.iam.Policy(
        "manual-approval",
        name=f"{prefix}-manual-approval",
        description=f"Continue or roll back the paused ECS deployments of {prefix}'s services",
        policy=iam.document(
            iam.manual_approval_statements(
                cluster_name,
                # A worker's rolling deployments have no gate to answer.
                [naming.service_name(n) for n, s in cfg.services.items() if not s.is_worker],
                region=env.region,
                account_id=env.account_id,
            )
        ),
        tags=tags,
        opts=opts,
    )


def read_environment(
    project: str, stack: str, region: str, profile: str | None, role_arn: str | None
) -> Environment:
    """Account and zones through pulumi-aws invokes (answered by the simulated cloud offline)."""
    identity = aws.get_caller_identity()
    zones = aws.get_availability_zones(state="available")
    return Environment(
        project=project,
        stack=stack,
        region=region,
        account_id=identity.account_id,
        availability_zones=sorted(zones.names),
        aws_profile=profile,
        aws_role_arn=role_arn,
    )

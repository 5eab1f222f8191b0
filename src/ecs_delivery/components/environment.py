"""One environment as one component: the platform, the delivery side, the rollouts, the release
and the deployer access of a stack, built from its validated config.

Every resource is a descendant of the `DeliveryEnvironment`; the ones that were top-level before
it existed carry an alias to the root stack, so existing stacks keep them (their children
inherit that alias).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from ecs_delivery.components import (
    delivery,
    deployer,
    images,
    naming,
    platform,
    release,
    rollout,
    sidecars,
)
from ecs_delivery.components.config import ConfigError, StackConfig
from ecs_delivery.components.naming import TYPE_PREFIX

TYPE = f"{TYPE_PREFIX}:environment:DeliveryEnvironment"


@dataclass(frozen=True, kw_only=True)
class DeliveryEnvironmentArgs:
    """The validated stack config and where it runs (`config.load()`, `config.aws_settings()`)."""

    settings: StackConfig
    project: str
    stack: str
    region: str
    profile: str | None = None
    role_arn: str | None = None


class DeliveryEnvironment(pulumi.ComponentResource):
    """Everything one stack builds; `outputs` holds what the program exports."""

    outputs: dict[str, Any]

    def __init__(
        self, name: str, args: DeliveryEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(TYPE, name, None, opts)
        # Children had the stack as parent before this component: the alias keeps their URNs.
        child = pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]
        )
        self.outputs = _build(args, child)
        self.register_outputs(self.outputs)


def _families(settings: StackConfig, project: str, stack: str) -> dict[str, str]:
    # Each service's and task's own task-definition family: where every deployer registers.
    return {
        name: naming.task_family(project, stack, name)
        for name in [*settings.services, *settings.scheduled_tasks]
    }


def _build(args: DeliveryEnvironmentArgs, opts: pulumi.ResourceOptions) -> dict[str, Any]:
    settings, project, stack = args.settings, args.project, args.stack
    families = _families(settings, project, stack)
    environment = platform.read_environment(
        project=project,
        stack=stack,
        region=args.region,
        profile=args.profile,
        role_arn=args.role_arn,
    )

    # Images belong to the deployer: the program declares one only where the config pins it or
    # promotes a named upstream release; the rollout overlays Pulumi's fields onto what runs.
    upstream_values = None
    if settings.upstream_stack:
        upstream = images.upstream_reference(settings.upstream_stack, project, opts)
        upstream_values = delivery.read_upstream(upstream, settings.upstream_stack)
    last_outputs = images.read_outputs(
        images.own_reference(project, stack, opts),
        ["services", "appliedPromotion", "deploymentEngine", "liveImages"],
    )
    _refuse_engine_switch(settings, last_outputs)
    promoted_release = (
        images.read_release(
            upstream=settings.upstream_stack,
            commit=settings.promote_release,
            bucket=upstream_values["promotionBucket"],
            applied_before=last_outputs["appliedPromotion"],
        )
        if settings.promote_release and upstream_values
        else None
    )
    resolutions = images.resolve_services(
        settings.services,
        project=project,
        stack=stack,
        cluster_arn=naming.cluster_arn(
            environment.region, environment.account_id, naming.cluster_name(project, stack)
        ),
        release=promoted_release,
        known_before=set(last_outputs["services"] or {}),
        last_live_images=last_outputs["liveImages"],
    )
    task_resolutions = images.resolve_tasks(
        settings.scheduled_tasks,
        project=project,
        stack=stack,
        services=resolutions,
        release=promoted_release,
    )
    every = {**resolutions, **task_resolutions}
    built = platform.build(
        settings,
        environment,
        {name: r.declared for name, r in resolutions.items()},
        {name: r.declared for name, r in task_resolutions.items()},
        upstream_repository_arns=(upstream_values or {}).get("ecrRepositoryArns"),
        bootstrapping={name for name, r in every.items() if r.bootstrapping},
        built_sidecars={
            name: {c.container: c.declared for c in r.sidecars} for name, r in resolutions.items()
        },
        bootstrapping_sidecars={
            name: {c.container for c in r.sidecars if c.bootstrapping}
            for name, r in resolutions.items()
        },
        opts=opts,
        task_rollouts={
            name: {
                "pinned_image": r.pinned,
                "promotion": (
                    {"release": promoted_release.commit, "images": {name: r.promoted}}
                    if promoted_release and r.promoted
                    else None
                ),
                "initial_image": r.initial,
            }
            for name, r in task_resolutions.items()
        },
    )
    outputs: dict[str, Any] = dict(built.outputs)
    outputs["liveImages"] = images.live_images_output(every)
    outputs["imageResolution"] = images.resolution_output(every)
    outputs["appliedPromotion"] = settings.promote_release
    # What a reviewer plans timeouts by: production runs a new revision after `shipsInMinutes`
    # (every waiter's deadline covers it); the group takes the next one after `lockedMinutes`.
    if warning := settings.pipeline_timeout_warning():
        pulumi.log.warn(warning)
    outputs["deploymentTime"] = _deployment_time(settings)
    outputs["deploymentEngine"] = settings.deployment.engine

    # The delivery side: ECR, artifacts, CodeBuild, CodeDeploy, validation hook, CodePipeline.
    delivery_side = delivery.build(settings, environment, built, upstream_values, opts)
    outputs.update(delivery_side.outputs)
    _rollouts(settings, environment, built, delivery_side, resolutions, promoted_release, families)

    releases = None
    if settings.release:
        releases, inventory = _release(settings, environment, built, delivery_side, families, opts)
        outputs["releaseInventory"] = inventory
        outputs["releaseStateMachineArn"] = releases.state_machine.arn
        outputs["releasePipelineName"] = releases.pipeline.name
        outputs["releaseBucket"] = releases.bucket_name

    access = _deployer_access(settings, environment, built, delivery_side, releases, families, opts)
    outputs["deployerPolicyArn"] = access.policy.arn
    outputs["deployerPolicyArns"] = [p.arn for p in access.policies]
    return outputs


def _refuse_engine_switch(settings: StackConfig, last_outputs: dict[str, Any]) -> None:
    """A stack whose services run keeps its engine unless the config accepts the switch: it
    changes every service's deployment controller (README: ECS-native blue/green). Stacks
    from before `deploymentEngine` was exported ran CodeDeploy."""
    running = sorted(last_outputs.get("services") or {})
    before = last_outputs.get("deploymentEngine") or "codedeploy"
    wanted = settings.deployment.engine
    if not running or before == wanted or settings.deployment.switch_engine_to == wanted:
        return
    raise ConfigError(
        [
            f"deployment.engine: {wanted} would switch the running services "
            f"{', '.join(running)} from {before}, changing each one's deployment controller; "
            f"set deployment.switchEngineTo: {wanted} to accept it (README: ECS-native "
            "blue/green, migration), or keep deployment.engine: "
            f"{before}"
        ]
    )


def _deployment_time(settings: StackConfig) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "config": svc.deployment_config or settings.deployment.config,
            "shipsInMinutes": settings.deployment.ships_in_minutes(svc.deployment_config),
            "terminationWaitMinutes": settings.deployment.termination_wait_minutes,
            "lockedMinutes": settings.deployment.locked_minutes(svc.deployment_config),
        }
        for name, svc in sorted(settings.services.items())
        if not svc.is_worker  # a rolling update: no traffic shifting or termination wait
    }


def _rollouts(
    settings: StackConfig,
    environment: platform.Environment,
    built: platform.Platform,
    delivery_side: delivery.Delivery,
    resolutions: dict[str, Any],
    promoted_release: Any,
    families: dict[str, str],
) -> None:
    """Pulumi-owned changes (cpu, memory, environment, secrets, network...) reach running
    services through the same CodeDeploy blue/green as the pipeline, merged onto what runs at
    deploy time; identical content starts no deployment."""
    for name, fargate in built.services.items():
        # No group on the ECS engine: ECS deploys the service itself (deployment.engine ecs).
        group = delivery_side.deployment_groups.get(name)
        resolution = resolutions[name]
        rollout.ServiceRollout(
            f"{name}-rollout",
            rollout.ServiceRolloutArgs.of(
                fargate,
                # The cluster resource's output, so that the rollout waits for the cluster.
                cluster_name=built.cluster.cluster.name,
                family=families[name],
                application_name=delivery_side.application_name,
                deployment_group_name=group.deployment_group_name
                if group
                else naming.deployment_group(name),
                # A worker: ECS's rolling controller, whatever deployment.engine says.
                engine=settings.services[name].engine(settings.deployment.engine),
                capacity_providers=[
                    c.model_dump() for c in settings.services[name].capacity_providers
                ]
                or None,
                # Pinned images (a sidecar's, or one the config pins): each rollout deploys
                # them; every other container keeps what runs at deploy time.
                pinned_images={
                    **sidecars.pinned_images(settings.services[name]),
                    **({name: resolution.pinned} if resolution.pinned else {}),
                },
                promotion=_promotion(promoted_release, resolution),
                # A worker has no load balancer to validate through.
                validation_hook=None
                if settings.services[name].is_worker
                else delivery_side.validation_hook,
                region=environment.region,
                profile=environment.aws_profile,
                role_arn=environment.aws_role_arn,
                wait=settings.deployment.wait,
                timeout_minutes=settings.deployment.timeout_minutes,
                end_termination_wait=settings.deployment.on_termination_wait == "end",
            ),
            opts=pulumi.ResourceOptions(
                parent=fargate,
                depends_on=[
                    fargate.service,
                    *([group] if group else []),
                    delivery_side.validation_hook_function,
                ],
            ),
        )


def _promotion(promoted_release: Any, resolution: images.Resolution) -> dict[str, Any] | None:
    """The promoted release's images for a service's containers (its own, its built
    sidecars'), for the rollout to deploy once; None when it names none of them."""
    promoted = {c.container: c.promoted for c in resolution.containers() if c.promoted}
    if not promoted_release or not promoted:
        return None
    return {"release": promoted_release.commit, "images": promoted}


def _unit_roles(built: platform.Platform) -> list[tuple[str, Any]]:
    return [*built.services.items(), *built.tasks.items()]


def _release(
    settings: StackConfig,
    environment: platform.Environment,
    built: platform.Platform,
    delivery_side: delivery.Delivery,
    families: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[release.Release, Any]:
    """Whole-environment releases from a manifest (optional: config `release`)."""
    assert settings.release is not None
    project, stack = environment.project, environment.stack
    cluster_name = naming.cluster_name(project, stack)
    cluster_arn = naming.cluster_arn(environment.region, environment.account_id, cluster_name)
    inventory = release.release_inventory(
        stack=stack,
        production=settings.release.production,
        cluster_name=cluster_name,
        cluster_arn=cluster_arn,
        application=delivery_side.application_name,
        services={name: svc.container_port for name, svc in settings.services.items()},
        groups={name: naming.deployment_group(name) for name in settings.services},
        tasks={name: families[name] for name in settings.scheduled_tasks},
        service_families={name: families[name] for name in settings.services},
        validation_hook=delivery_side.validation_hook,
        engine=settings.deployment.engine,
        engines={
            name: svc.engine(settings.deployment.engine) for name, svc in settings.services.items()
        },
        sidecars={name: svc.built_sidecars() for name, svc in settings.services.items()},
    )
    releases = release.Release(
        "release",
        release.ReleaseArgs(
            project=project,
            stack=stack,
            region=environment.region,
            account_id=environment.account_id,
            inventory=inventory,
            source=release.SourceSettings(**settings.release.source.model_dump()),
            manifest_path=settings.release.manifest_path,
            max_parallel=settings.release.max_parallel,
            poll_seconds=settings.release.poll_seconds,
            deployment_timeout_minutes=settings.release.deployment_timeout_minutes,
            end_termination_wait=settings.deployment.on_termination_wait == "end",
            cluster_arn=cluster_arn,
            deployment_configs=delivery_side.deployment_configs,
            task_role_arns=[
                arn
                for _, unit in _unit_roles(built)
                for arn in (unit.execution_role_arn, unit.task_role_arn)
            ],
            scheduler_role_arns=[t.scheduler_role.arn for t in built.tasks.values()],
            log_retention_days=settings.log_retention_days,
            kms_key_arn=built.kms_key_arn,
            access_logs=built.access_logs,
            force_destroy=settings.teardown.force_destroy,
            build_image=settings.pipeline.build_image,
            build_compute_type=settings.pipeline.build_compute_type,
            tags=platform.default_tags(settings, environment),
        ),
        opts,
    )
    return releases, inventory


def _deployer_access(
    settings: StackConfig,
    environment: platform.Environment,
    built: platform.Platform,
    delivery_side: delivery.Delivery,
    releases: release.Release | None,
    families: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> deployer.DeployerAccess:
    """Least-privilege managed policies for deployers outside the stack (release CLI, CI jobs,
    image pushers): attach every ARN of deployerPolicyArns to their role (one policy up to 12
    services and tasks). A GitHub Actions OIDC role is a DeployerAccessArgs option
    (`github=deployer.GithubOidc(repository="owner/repo", branch="main")`), not wired to config.
    """
    project, stack = environment.project, environment.stack
    return deployer.DeployerAccess(
        "deployer",
        deployer.DeployerAccessArgs(
            project=project,
            stack=stack,
            region=environment.region,
            account_id=environment.account_id,
            cluster_name=naming.cluster_name(project, stack),
            application_name=delivery_side.application_name,
            deployment_configs=delivery_side.deployment_configs,
            units=[
                deployer.DeployedUnit(
                    family=families[name],
                    role_arns=[unit.execution_role_arn, unit.task_role_arn],
                )
                for name, unit in _unit_roles(built)
            ],
            ecr_namespace=(
                naming.ecr_namespace(project, stack) if delivery_side.repositories else None
            ),
            schedules=[f"default/{families[name]}" for name in settings.scheduled_tasks],
            scheduler_role_arns=[t.scheduler_role.arn for t in built.tasks.values()],
            release_bucket=releases.bucket_name if releases else None,
            kms_key_arn=built.kms_key_arn,
            end_termination_wait=settings.deployment.on_termination_wait == "end",
            engine=settings.deployment.engine,
            workers=any(svc.is_worker for svc in settings.services.values()),
            tags=platform.default_tags(settings, environment),
        ),
        opts,
    )

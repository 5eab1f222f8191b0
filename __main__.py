"""ecs-delivery: one environment per stack. Loads config, composes components, exports outputs."""

import pulumi

from ecs_delivery.components import (
    config,
    delivery,
    deployer,
    fargate_service,
    images,
    naming,
    platform,
    release,
    rollout,
)

settings = config.load()
aws_settings = config.aws_settings()
project, stack = pulumi.get_project(), pulumi.get_stack()
# Each service's and task's own task-definition family: where every deployer registers.
families = {
    name: naming.task_family(project, stack, name)
    for name in [*settings.services, *settings.scheduled_tasks]
}
environment = platform.read_environment(
    project=project,
    stack=stack,
    region=aws_settings["region"],
    profile=aws_settings["profile"],
    role_arn=aws_settings["role_arn"],
)

# Images belong to the deployer: the program declares one only where the config pins it or
# promotes a named upstream release; the rollout overlays Pulumi's fields onto what runs.
upstream_values = None
if settings.upstream_stack:
    upstream = images.upstream_reference(settings.upstream_stack, project)
    upstream_values = delivery.read_upstream(upstream, settings.upstream_stack)
last_outputs = images.read_outputs(
    images.own_reference(project, stack), ["services", "appliedPromotion"]
)
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
)
task_resolutions = images.resolve_tasks(
    settings.scheduled_tasks,
    project=project,
    stack=stack,
    services=resolutions,
    release=promoted_release,
)
environment_platform = platform.build(
    settings,
    environment,
    {name: r.declared for name, r in resolutions.items()},
    {name: r.declared for name, r in task_resolutions.items()},
    upstream_repository_arns=(upstream_values or {}).get("ecrRepositoryArns"),
    bootstrapping={
        name for name, r in {**resolutions, **task_resolutions}.items() if r.bootstrapping
    },
)

for key, value in environment_platform.outputs.items():
    pulumi.export(key, value)
pulumi.export("liveImages", images.live_images_output({**resolutions, **task_resolutions}))
pulumi.export("imageResolution", images.resolution_output({**resolutions, **task_resolutions}))
pulumi.export("appliedPromotion", settings.promote_release)
# What a reviewer plans timeouts by: production runs a new revision after `shipsInMinutes`
# (every waiter's deadline covers it); the group takes the next one after `lockedMinutes`.
if warning := settings.pipeline_timeout_warning():
    pulumi.log.warn(warning)
pulumi.export(
    "deploymentTime",
    {
        name: {
            "config": svc.deployment_config or settings.deployment.config,
            "shipsInMinutes": settings.deployment.ships_in_minutes(svc.deployment_config),
            "terminationWaitMinutes": settings.deployment.termination_wait_minutes,
            "lockedMinutes": settings.deployment.locked_minutes(svc.deployment_config),
        }
        for name, svc in sorted(settings.services.items())
    },
)

# The delivery side: ECR, artifacts, CodeBuild, CodeDeploy, validation hook, CodePipeline.
delivery_side = delivery.build(settings, environment, environment_platform, upstream_values)
for key, value in delivery_side.outputs.items():
    pulumi.export(key, value)

# Pulumi-owned changes (cpu, memory, environment, secrets, network...) reach running services
# through the same CodeDeploy blue/green as the pipeline, merged onto what runs at deploy time;
# identical content starts no deployment.
for name, fargate in environment_platform.services.items():
    group = delivery_side.deployment_groups[name]
    resolution = resolutions[name]
    rollout.ServiceRollout(
        f"{name}-rollout",
        rollout.ServiceRolloutArgs(
            cluster_name=environment_platform.cluster.cluster.name,
            service_name=fargate.service.name,
            template_arn=fargate.task_definition.arn,
            family=families[name],
            application_name=delivery_side.application_name,
            deployment_group_name=group.deployment_group_name,
            container_name=name,
            container_port=settings.services[name].container_port,
            subnets=environment_platform.network.private_subnet_ids,
            security_groups=fargate.security_group_ids,
            platform_version=fargate_service.PLATFORM_VERSION,
            pinned_images={name: resolution.pinned} if resolution.pinned else {},
            promotion=(
                {"release": promoted_release.commit, "images": {name: resolution.promoted}}
                if promoted_release and resolution.promoted
                else None
            ),
            validation_hook=delivery_side.validation_hook,
            region=environment.region,
            profile=environment.aws_profile,
            role_arn=environment.aws_role_arn,
            wait=settings.deployment.wait,
            timeout_minutes=settings.deployment.timeout_minutes,
            end_termination_wait=settings.deployment.on_termination_wait == "end",
        ),
        opts=pulumi.ResourceOptions(
            parent=fargate,
            depends_on=[fargate.service, group, delivery_side.validation_hook_function],
        ),
    )

# Whole-environment releases from a manifest (optional: config `release`).
if settings.release:
    cluster_name = naming.cluster_name(project, stack)
    inventory = release.release_inventory(
        stack=stack,
        production=settings.release.production,
        cluster_name=cluster_name,
        cluster_arn=naming.cluster_arn(environment.region, environment.account_id, cluster_name),
        application=delivery_side.application_name,
        services={name: svc.container_port for name, svc in settings.services.items()},
        groups={name: naming.deployment_group(name) for name in settings.services},
        tasks={name: families[name] for name in settings.scheduled_tasks},
        service_families={name: families[name] for name in settings.services},
        validation_hook=delivery_side.validation_hook,
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
            cluster_arn=naming.cluster_arn(
                environment.region, environment.account_id, cluster_name
            ),
            task_role_arns=[
                arn
                for unit in [
                    *environment_platform.services.values(),
                    *environment_platform.tasks.values(),
                ]
                for arn in (unit.execution_role_arn, unit.task_role_arn)
            ],
            scheduler_role_arns=[t.scheduler_role.arn for t in environment_platform.tasks.values()],
            log_retention_days=settings.log_retention_days,
            kms_key_arn=environment_platform.kms_key_arn,
            access_logs=environment_platform.access_logs,
            force_destroy=settings.teardown.force_destroy,
            build_image=settings.pipeline.build_image,
            build_compute_type=settings.pipeline.build_compute_type,
            tags=platform.default_tags(settings, environment),
        ),
    )
    pulumi.export("releaseInventory", inventory)
    pulumi.export("releaseStateMachineArn", releases.state_machine.arn)
    pulumi.export("releasePipelineName", releases.pipeline.name)
    pulumi.export("releaseBucket", releases.bucket_name)

# --- Deployer access (src/ecs_delivery/components/deployer.py) -------------------------------------------------
# Least-privilege managed policies for deployers outside the stack (release CLI, CI jobs, image
# pushers): attach every ARN of deployerPolicyArns to their role (one policy up to 12 services
# and tasks). A GitHub Actions OIDC role is a DeployerAccessArgs option
# (`github=deployer.GithubOidc(repository="owner/repo", branch="main")`), not wired to config yet.
deployer_access = deployer.DeployerAccess(
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
            for name, unit in [
                *environment_platform.services.items(),
                *environment_platform.tasks.items(),
            ]
        ],
        ecr_namespace=naming.ecr_namespace(project, stack) if delivery_side.repositories else None,
        schedules=[f"default/{families[name]}" for name in settings.scheduled_tasks],
        scheduler_role_arns=[t.scheduler_role.arn for t in environment_platform.tasks.values()],
        release_bucket=releases.bucket_name if settings.release else None,
        kms_key_arn=environment_platform.kms_key_arn,
        end_termination_wait=settings.deployment.on_termination_wait == "end",
        tags=platform.default_tags(settings, environment),
    ),
)
pulumi.export("deployerPolicyArn", deployer_access.policy.arn)
pulumi.export("deployerPolicyArns", [p.arn for p in deployer_access.policies])

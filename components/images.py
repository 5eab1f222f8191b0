"""Image resolution by field ownership: the deployer owns images, so Pulumi must never revert one.

Per service and container, in this order: the image pinned in the stack config; the upstream
environment's image when this stack promotes; the image the service runs now (read through
pulumi-aws invokes); the bootstrap image, only when the service does not exist yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.config import ConfigError

PINNED, PROMOTED, LIVE, BOOTSTRAP = "pinned", "promoted", "live", "bootstrap"

# Every resource of a stack carries these tags (components/platform.py default_tags).
PROJECT_TAG, STACK_TAG = "ecs-delivery:project", "ecs-delivery:stack"
TASK_TAG = "ecs-delivery:task"


class LiveImageError(pulumi.RunError):
    """The service exists but its live image cannot be read: refusing to guess."""


@dataclass(frozen=True)
class LiveService:
    """What runs now: `exists` False for a service that was never created."""

    exists: bool
    task_definition_arn: str | None = None
    images: dict[str, str] | None = None
    digests: dict[str, str] | None = None


@dataclass(frozen=True)
class Resolution:
    """The image a container gets, the one it runs now, and why."""

    service: str
    container: str
    image: pulumi.Output[str]
    source: pulumi.Output[str]
    now: str | None
    digest: str | None = None


def existing_services(*, project: str, stack: str) -> set[str]:
    """Names of this stack's ECS services that exist now, found by their tags.

    The tagging API answers with an empty list for a fresh account, where `ecs.get_service`
    would fail the whole program (a failed invoke cannot be caught in a Pulumi program).
    """
    found = aws.resourcegroupstaggingapi.get_resources(
        resource_type_filters=["ecs:service"],
        tag_filters=[
            aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(key=STACK_TAG, values=[stack]),
            aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(
                key=PROJECT_TAG, values=[project]
            ),
        ],
    )
    return {m.resource_arn.rsplit("/", 1)[-1] for m in found.resource_tag_mapping_lists}


def _fail(message: str) -> LiveImageError:
    # Logged first: a failed invoke also fails the program, and the engine reports both.
    pulumi.log.error(message)
    return LiveImageError(message)


def read_live(
    *, cluster_arn: str, service: str, containers: list[str], exists: bool
) -> LiveService:
    """Read the running task definition's images through the ECS invokes."""
    if not exists:
        return LiveService(exists=False)
    try:
        found = aws.ecs.get_service(cluster_arn=cluster_arn, service_name=service)
    except Exception as exc:  # the invoke surfaces provider errors as plain exceptions
        raise _fail(
            f"services.{service}: the service exists (it is tagged for this stack) but could not be "
            f"read in {cluster_arn}: {exc}\nCheck the stack's AWS credentials (ecs:DescribeServices)."
        ) from None
    task_definition = found.task_definition
    images: dict[str, str] = {}
    digests: dict[str, str] = {}
    for container in containers:
        try:
            definition = aws.ecs.get_container_definition(
                task_definition=task_definition, container_name=container
            )
        except Exception as exc:
            raise _fail(
                f"services.{service}: the service exists but the image of container '{container}' "
                f"in its task definition {task_definition} cannot be read: {exc}\n"
                "Refusing to fall back to the bootstrap image: that would revert what the pipeline "
                "deployed. Grant ecs:DescribeTaskDefinition to the stack's credentials, or pin the "
                f"image with services.{service}.image."
            ) from None
        if not definition.image:
            raise _fail(
                f"services.{service}: container '{container}' of {task_definition} reports no image; "
                f"pin one with services.{service}.image."
            )
        images[container] = definition.image
        if definition.image_digest:
            digests[container] = definition.image_digest
    return LiveService(
        exists=True, task_definition_arn=task_definition, images=images, digests=digests
    )


def digest_reference(image: str, digest: str | None) -> str:
    """`repo@sha256:...` where the digest is known: what a downstream stack promotes."""
    if "@" in image or not digest:
        return image
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repository}@{digest}"


def resolve(
    *,
    service: str,
    container: str,
    pinned: str | None,
    bootstrap: str,
    live: LiveService,
    upstream_images: pulumi.Output[Any] | None,
) -> Resolution:
    """Decide one container's image; `upstream_images` is set only when this stack promotes."""
    now = (live.images or {}).get(container) if live.exists else None
    digest = (live.digests or {}).get(container) if live.exists else None
    if pinned:
        return Resolution(
            service,
            container,
            pulumi.Output.from_input(pinned),
            pulumi.Output.from_input(PINNED),
            now,
            digest,
        )
    if live.exists and now is None:
        raise LiveImageError(
            f"services.{service}: the running task definition has no container '{container}'; "
            f"pin the image with services.{service}.image."
        )
    fallback = now if live.exists else bootstrap
    fallback_source = LIVE if live.exists else BOOTSTRAP
    if upstream_images is None:
        return Resolution(
            service,
            container,
            pulumi.Output.from_input(fallback),
            pulumi.Output.from_input(fallback_source),
            now,
            digest,
        )

    def pick(images: Any) -> tuple[str, str]:
        promoted = (
            ((images or {}).get(service) or {}).get(container) if isinstance(images, dict) else None
        )
        if promoted:
            return promoted, PROMOTED
        pulumi.log.warn(
            f"services.{service}: the upstream stack exports no image for container '{container}'; "
            f"keeping the {fallback_source} image {fallback}"
        )
        return fallback, fallback_source

    choice = upstream_images.apply(pick)
    return Resolution(
        service, container, choice.apply(lambda c: c[0]), choice.apply(lambda c: c[1]), now, digest
    )


def upstream_reference(name: str, project: str) -> pulumi.StackReference:
    """`dev` means this project's `dev` stack in the current organization."""
    if name.count("/") == 0:
        name = f"{pulumi.get_organization()}/{project}/{name}"
    elif name.count("/") == 1:
        name = f"{pulumi.get_organization()}/{name}"
    return pulumi.StackReference(f"upstream-{name.rsplit('/', 1)[-1]}", stack_name=name)


def require_upstream_images(reference: pulumi.StackReference, upstream: str) -> pulumi.Output[Any]:
    """The upstream's `liveImages`; a missing output is a clear error, not a silent no-op promotion."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ConfigError(
                [
                    f"upstreamStack: stack {upstream} exports no liveImages; run `pulumi up` on it first, "
                    "or set promote: false"
                ]
            )
        return value

    return reference.get_output("liveImages").apply(check)


def resolve_services(
    services: dict[str, Any],
    *,
    project: str,
    stack: str,
    cluster_arn: str,
    upstream_images: pulumi.Output[Any] | None,
) -> dict[str, Resolution]:
    """Resolve the (single, service-named) container of every configured service."""
    existing = existing_services(project=project, stack=stack)
    resolutions = {}
    for name, svc in sorted(services.items()):
        live = read_live(
            cluster_arn=cluster_arn, service=name, containers=[name], exists=name in existing
        )
        resolutions[name] = resolve(
            service=name,
            container=name,
            pinned=svc.image,
            bootstrap=svc.bootstrap_image,
            live=live,
            upstream_images=upstream_images,
        )
    return resolutions


def live_images_output(
    resolutions: dict[str, Resolution],
) -> dict[str, dict[str, pulumi.Output[str]]]:
    """service -> container -> image after this update, by digest where the digest is known."""
    out: dict[str, dict[str, pulumi.Output[str]]] = {}
    for r in resolutions.values():
        image = pulumi.Output.all(r.image, r.source).apply(
            lambda v, r=r: digest_reference(v[0], r.digest) if v[1] == LIVE else v[0]
        )
        out.setdefault(r.service, {})[r.container] = image
    return out


def resolution_output(resolutions: dict[str, Resolution]) -> dict[str, dict[str, dict[str, Any]]]:
    """What a reviewer reads in a preview: per container the image now, after, and why."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in resolutions.values():
        out.setdefault(r.service, {})[r.container] = {
            "now": r.now,
            "after": r.image,
            "source": r.source,
        }
    return out


def existing_task_definitions(*, project: str, stack: str) -> dict[str, str]:
    """Scheduled task name -> its newest tagged task-definition revision ARN (tasks that exist).

    Existence only: the image comes from the revision the schedule targets (a rolled-back
    release points it at an older revision than the newest one).
    """
    found = aws.resourcegroupstaggingapi.get_resources(
        resource_type_filters=["ecs:task-definition"],
        tag_filters=[
            aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(key=STACK_TAG, values=[stack]),
            aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(
                key=PROJECT_TAG, values=[project]
            ),
            aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(key=TASK_TAG),
        ],
    )
    newest: dict[str, tuple[int, str]] = {}
    for mapping in found.resource_tag_mapping_lists:
        task = mapping.tags.get(TASK_TAG)
        revision = int(mapping.resource_arn.rsplit(":", 1)[-1])
        if task and revision > newest.get(task, (0, ""))[0]:
            newest[task] = (revision, mapping.resource_arn)
    return {task: arn for task, (_, arn) in newest.items()}


def resolve_tasks(
    tasks: dict[str, Any],
    *,
    project: str,
    stack: str,
    services: dict[str, Resolution],
    upstream_images: pulumi.Output[Any] | None,
) -> dict[str, Resolution]:
    """A task that follows a service takes that service's image; others resolve like services."""
    if not tasks:
        return {}
    existing = existing_task_definitions(project=project, stack=stack)
    resolutions = {}
    for name, task in sorted(tasks.items()):
        targeted = (
            _schedule_target(name, naming.task_family(project, stack, name))
            if name in existing
            else None
        )
        live = _read_task_image(name, targeted)
        if task.follows_service:
            followed = services[task.follows_service]
            resolutions[name] = Resolution(
                name,
                name,
                followed.image,
                followed.source.apply(lambda s, f=task.follows_service: f"follows {f} ({s})"),
                (live.images or {}).get(name),
                followed.digest,
            )
            continue
        resolutions[name] = resolve(
            service=name,
            container=name,
            pinned=task.image,
            bootstrap=task.bootstrap_image,
            live=live,
            upstream_images=upstream_images,
        )
    return resolutions


def _schedule_target(task: str, schedule_name: str) -> str:
    """The revision the task's schedule runs now (a release or its rollback may have moved it).

    Read through Cloud Control: pulumi-aws has no schedule data source. Called only for tasks
    whose tagged revisions exist, so the schedule exists too.
    """
    try:
        found = aws.cloudcontrol.get_resource(
            type_name="AWS::Scheduler::Schedule", identifier=schedule_name
        )
        return json.loads(found.properties)["Target"]["EcsParameters"]["TaskDefinitionArn"]
    except Exception as exc:
        raise _fail(
            f"scheduledTasks.{task}: its task definitions exist but its schedule {schedule_name} "
            f"cannot be read: {exc}\nRefusing to guess the image it runs; grant "
            f"scheduler:GetSchedule / cloudformation:GetResource, or pin scheduledTasks.{task}.image."
        ) from None


def _read_task_image(task: str, task_definition: str | None) -> LiveService:
    if task_definition is None:
        return LiveService(exists=False)
    try:
        definition = aws.ecs.get_container_definition(
            task_definition=task_definition, container_name=task
        )
    except Exception as exc:
        raise _fail(
            f"scheduledTasks.{task}: the task exists but the image in {task_definition} cannot be read: "
            f"{exc}\nRefusing to fall back to the bootstrap image; pin it with scheduledTasks.{task}.image."
        ) from None
    digests = {task: definition.image_digest} if definition.image_digest else {}
    return LiveService(
        exists=True,
        task_definition_arn=task_definition,
        images={task: definition.image},
        digests=digests,
    )

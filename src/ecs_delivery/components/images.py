"""Images by field ownership: the deployer owns them, so Pulumi declares one only when told to.

Per service and container the program decides two things:

- the *declared* image, which the Pulumi-registered template revision carries: the image
  pinned in the stack config, else the image of the named upstream release this stack
  promotes, else the bootstrap image. It never depends on what runs, so a pipeline ship
  changes no resource input;
- the image the service runs *after* this update, for the outputs and the plan: the pinned
  image, the promoted one (when that release is not applied yet), else what runs now (read
  through pulumi-aws invokes), else the bootstrap image of a service that does not exist yet.

What actually reaches a running service is decided at deploy time, by the rollout
(`src/ecs_delivery/runtime/rollout.py`), against the revision that runs at that moment.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import naming
from ecs_delivery.components.config import ConfigError
from ecs_delivery.runtime import promotion

PINNED, PROMOTED, LIVE, BOOTSTRAP = "pinned", "promoted", "live", "bootstrap"

# Every resource of a stack carries these tags (src/ecs_delivery/components/platform.py default_tags).
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
class Release:
    """A named upstream release this stack promotes: service -> container -> digest."""

    upstream: str
    commit: str
    images: dict[str, dict[str, str]]
    # True when this stack's last update already applied this release (its own outputs say
    # so): the rollout then leaves whatever runs now, e.g. a newer promotion by the pipeline.
    applied: bool = False

    def image(self, service: str, container: str) -> str | None:
        return (self.images.get(service) or {}).get(container)


@dataclass(frozen=True)
class Resolution:
    """One container's declared image, what it runs now and after this update, and why."""

    service: str
    container: str
    declared: str
    after: str
    source: str
    now: str | None
    digest: str | None = None
    pinned: str | None = None
    promoted: str | None = None
    # It runs its bootstrap image after this update (new, or no release has replaced it yet).
    bootstrapping: bool = False
    # The image a scheduled task's first revision takes (a new task following a running
    # service starts on that service's image); None: the declared one.
    initial: str | None = None
    # A service's sidecars whose images the pipeline builds (`sidecars.<name>.build`): the
    # deployer owns them as it owns the service's own.
    sidecars: tuple[Resolution, ...] = ()

    def containers(self) -> tuple[Resolution, ...]:
        """This container's resolution and its built sidecars'."""
        return (self, *self.sidecars)


def existing_services(*, project: str, stack: str) -> set[str]:
    """Names of this stack's ECS services that exist now, found by their tags.

    The tagging API answers with an empty list for a fresh account, where `ecs.get_service`
    would fail the whole program (a failed invoke cannot be caught in a Pulumi program).
    It is eventually consistent, so `check_existence` compares it with the stack's own
    last outputs before anything is called new.
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


def check_existence(configured: list[str], tagged: set[str], known_before: set[str]) -> None:
    """A service is new only when the tags and the stack's own last outputs agree."""
    disagree = sorted(name for name in configured if name in known_before and name not in tagged)
    if disagree:
        raise _fail(
            "services: "
            + ", ".join(disagree)
            + ": this stack's last update created them (its `services` output lists them), but "
            "the Resource Groups Tagging API does not list them with this stack's tags. "
            "Refusing to treat them as new. If they were just created, wait a minute and run "
            "again (the tagging API lags); if their ecs-delivery:project/ecs-delivery:stack tags "
            "were removed, tag them again."
        )


def _fail(message: str) -> LiveImageError:
    # Logged first: a failed invoke also fails the program, and the engine reports both.
    pulumi.log.error(message)
    return LiveImageError(message)


def read_live(
    *,
    cluster_arn: str,
    service: str,
    containers: list[str],
    exists: bool,
    if_present: tuple[str, ...] = (),
) -> LiveService:
    """Read the running task definition's images through the ECS invokes (display only).

    `if_present`: containers read only when the running revision has them (a sidecar the last
    update added may not run yet: its rollout has not finished, or was rolled back); the others
    must be there.
    """
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
    if if_present:
        has = _container_names(service, task_definition)
        containers = [*containers, *(c for c in if_present if c in has)]
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
                "Refusing to guess what it runs. Grant ecs:DescribeTaskDefinition to the stack's "
                f"credentials, or pin the image with {_pin_key(service, container)}."
            ) from None
        if not definition.image:
            raise _fail(
                f"services.{service}: container '{container}' of {task_definition} reports no image; "
                f"pin one with {_pin_key(service, container)}."
            )
        images[container] = definition.image
        if definition.image_digest:
            digests[container] = definition.image_digest
    return LiveService(
        exists=True, task_definition_arn=task_definition, images=images, digests=digests
    )


def _container_names(service: str, task_definition: str) -> set[str]:
    """The names of the containers of revision `task_definition`."""
    try:
        found = aws.ecs.get_task_definition(task_definition=task_definition)
        return {c["name"] for c in json.loads(found.container_definitions or "[]")}
    except Exception as exc:
        raise _fail(
            f"services.{service}: the service exists but its task definition {task_definition} "
            f"cannot be read: {exc}\nRefusing to guess what it runs. Grant "
            "ecs:DescribeTaskDefinition to the stack's credentials."
        ) from None


def _pin_key(service: str, container: str, what: str = "services") -> str:
    """The config key that pins `container`'s image (the unit's own, or a sidecar's)."""
    if container == service:
        return f"{what}.{service}.image"
    return f"{what}.{service}.sidecars.{container}.image"


def digest_reference(image: str, digest: str | None) -> str:
    """`repo@sha256:...` where the digest is known: names exactly what runs."""
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
    release: Release | None,
    what: str = "services",
) -> Resolution:
    """Decide one container's declared image and the image it runs after this update."""
    now = (live.images or {}).get(container) if live.exists else None
    digest = (live.digests or {}).get(container) if live.exists else None
    if live.exists and now is None and not pinned:
        raise _fail(
            f"{what}.{service}: the running task definition {live.task_definition_arn} has no "
            f"container '{container}'; pin the image with {_pin_key(service, container, what)}."
        )
    running = digest_reference(now, digest) if now else None
    if pinned:
        return Resolution(service, container, pinned, pinned, PINNED, now, digest, pinned=pinned)
    promoted = release.image(service, container) if release else None
    if promoted:
        if release.applied and running:
            return Resolution(
                service, container, promoted, running, LIVE, now, digest, None, promoted
            )
        source = f"{PROMOTED} from {release.upstream}@{release.commit}"
        return Resolution(
            service, container, promoted, promoted, source, now, digest, None, promoted
        )
    if running:
        return Resolution(
            service,
            container,
            bootstrap,
            running,
            LIVE,
            now,
            digest,
            bootstrapping=now == bootstrap,
        )
    return Resolution(
        service, container, bootstrap, bootstrap, BOOTSTRAP, now, digest, bootstrapping=True
    )


# --- promotion of a named upstream release ---------------------------------------------


def upstream_reference(
    name: str, project: str, opts: pulumi.ResourceOptions | None = None
) -> pulumi.StackReference:
    """`dev` means this project's `dev` stack in the current organization."""
    return pulumi.StackReference(
        f"upstream-{name.rsplit('/', 1)[-1]}", stack_name=_qualified(name, project), opts=opts
    )


def own_reference(
    project: str, stack: str, opts: pulumi.ResourceOptions | None = None
) -> pulumi.StackReference:
    """This stack's own last outputs: what its previous update created and applied."""
    return pulumi.StackReference(
        "own-last-outputs", stack_name=_qualified(stack, project), opts=opts
    )


def _qualified(name: str, project: str) -> str:
    if name.count("/") == 0:
        return f"{pulumi.get_organization()}/{project}/{name}"
    if name.count("/") == 1:
        return f"{pulumi.get_organization()}/{name}"
    return name


def read_outputs(reference: pulumi.StackReference, keys: list[str]) -> dict[str, Any]:
    """Plain values of a stack reference's outputs (None when absent).

    Stack-reference outputs are known at preview, so the program can branch on them before
    it registers anything that depends on them.
    """
    from pulumi.runtime.sync_await import _sync_await  # what the SDK's own sync invokes use

    values: dict[str, Any] = {}
    for key in keys:
        details = _sync_await(reference.get_output_details(key))
        values[key] = details.value if details.value is not None else details.secret_value
    return values


def read_release(
    *, upstream: str, commit: str, bucket: str | None, applied_before: str | None
) -> Release:
    """The promotion record the upstream published when it ran release `commit`.

    Only the pipeline publishes records, and only with the digests it deployed, so a bootstrap
    image is never promoted; a service the release does not name keeps what it runs.
    """
    short = upstream.rsplit("/", 1)[-1]
    if not bucket:
        raise ConfigError(
            [
                f"promoteRelease: upstream stack {upstream!r} exports no promotionBucket; run "
                f"`pulumi up -s {short}` with this version of the program first"
            ]
        )
    key = promotion.release_record_key(short, commit)
    try:
        found = aws.s3.get_object(bucket=bucket, key=key)
        origin = f"s3://{bucket}/{key}"
        record = promotion.check_claims(
            promotion.read_record(found.body or "", origin=origin),
            stack=short,
            commit=commit,
            origin=origin,
        )
    except promotion.PromotionRecordError as exc:
        raise ConfigError([f"promoteRelease: {exc}"]) from None
    except Exception as exc:
        message = (
            f"promoteRelease: {commit!r} is not a release {short} has run: s3://{bucket}/{key} "
            f"cannot be read ({exc}). Promote a commit {short}'s pipeline deployed and published "
            f"(its newest: s3://{bucket}/{promotion.latest_record_key(short)})."
        )
        pulumi.log.error(message)
        raise ConfigError([message]) from None
    return Release(
        upstream=short,
        commit=record.commit,
        images={s: dict(c) for s, c in record.images.items()},
        applied=applied_before == commit,
    )


def skipped_services(services: list[str], release: Release | None) -> list[str]:
    """Services the promoted release does not name: they keep what they run."""
    if release is None:
        return []
    return sorted(name for name in services if name not in release.images)


# --- services and tasks ---------------------------------------------------------------


def resolve_services(
    services: dict[str, Any],
    *,
    project: str,
    stack: str,
    cluster_arn: str,
    release: Release | None,
    known_before: set[str] | None = None,
    last_live_images: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Resolution]:
    """Resolve every configured service's own (service-named) container and the sidecars the
    pipeline builds, each like the service's (pin, promotion, what runs, bootstrap).

    A built sidecar is read from what runs only when this stack's last update declared it
    (`last_live_images`, its `liveImages` output: only a `pulumi up` adds a container) and the
    running revision has it; otherwise it is declared as a new one is.
    """
    tagged = existing_services(project=project, stack=stack)
    check_existence(sorted(services), tagged, known_before or set())
    skipped = skipped_services(sorted(services), release)
    if skipped:
        pulumi.log.warn(
            f"promoteRelease {release.commit}: {release.upstream} did not ship "
            f"{', '.join(skipped)} in that release; they keep the image they run"
        )
    resolutions = {}
    for name, svc in sorted(services.items()):
        ran_before = set((last_live_images or {}).get(name) or {})
        live = read_live(
            cluster_arn=cluster_arn,
            service=name,
            containers=[name],
            exists=name in tagged,
            if_present=tuple(c for c in svc.built_sidecars() if c in ran_before),
        )
        own = resolve(
            service=name,
            container=name,
            pinned=svc.image,
            bootstrap=svc.bootstrap_image,
            live=live,
            release=release,
        )
        beside = tuple(
            resolve(
                service=name,
                container=sidecar,
                pinned=svc.sidecars[sidecar].image,
                bootstrap=svc.bootstrap_image,
                live=live if sidecar in (live.images or {}) else LiveService(exists=False),
                release=release,
            )
            for sidecar in svc.built_sidecars()
        )
        resolutions[name] = dataclasses.replace(own, sidecars=beside)
    return resolutions


def live_images_output(resolutions: dict[str, Resolution]) -> dict[str, dict[str, dict[str, str]]]:
    """service -> container -> {image after this update (by digest where known), source}."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for r in _every_container(resolutions):
        out.setdefault(r.service, {})[r.container] = {"image": r.after, "source": r.source}
    return out


def _every_container(resolutions: dict[str, Resolution]) -> list[Resolution]:
    return [c for r in resolutions.values() for c in r.containers()]


def resolution_output(resolutions: dict[str, Resolution]) -> dict[str, dict[str, dict[str, Any]]]:
    """What a reviewer reads in a preview: per container the image now, after, and why."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in _every_container(resolutions):
        out.setdefault(r.service, {})[r.container] = {
            "now": r.now,
            "after": r.after,
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
    release: Release | None,
) -> dict[str, Resolution]:
    """A task that follows a service takes that service's pin and promotion; others resolve
    like services.

    As for services, the declared image (the template's) never depends on what runs; the
    task's rollout keeps the image of the newest revision at deploy time. `after` is what the
    task runs after this update, read from the revision its schedule runs now.
    """
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
        if task.follows_service and services[task.follows_service].bootstrapping:
            # The service's bootstrap cannot run the task's command: the task bootstraps too.
            resolutions[name] = Resolution(
                name,
                name,
                task.bootstrap_image,
                task.bootstrap_image,
                f"follows {task.follows_service} ({BOOTSTRAP})",
                (live.images or {}).get(name),
                None,
                bootstrapping=True,
            )
            continue
        if task.follows_service:
            resolutions[name] = _follower(name, task, services[task.follows_service], live, release)
            continue
        resolved = resolve(
            service=name,
            container=name,
            pinned=task.image,
            bootstrap=task.bootstrap_image,
            live=live,
            release=release,
            what="scheduledTasks",
        )
        resolutions[name] = resolved
    return resolutions


def _follower(
    name: str, task: Any, followed: Resolution, live: LiveService, release: Release | None
) -> Resolution:
    """A task following a running service: the service's pin or promotion goes to both (a
    release moves them together); otherwise the task keeps what it runs, and a new task
    starts on what the service runs."""
    now = (live.images or {}).get(name) if live.exists else None
    digest = (live.digests or {}).get(name) if live.exists else None
    promoted_pending = followed.promoted and not (release and release.applied)
    if followed.pinned:
        after = followed.pinned
    elif promoted_pending:
        after = str(followed.promoted)
    elif now:
        after = digest_reference(now, digest)
    else:
        after = followed.after
    return Resolution(
        name,
        name,
        followed.pinned or followed.promoted or task.bootstrap_image,
        after,
        f"follows {task.follows_service} ({followed.source})",
        now,
        digest,
        pinned=followed.pinned,
        promoted=followed.promoted,
        initial=None if live.exists else followed.after,
    )


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
    # A schedule that names the family runs its newest revision: DescribeTaskDefinition of
    # the family name answers with that one.
    named = task_definition.rsplit("/", 1)[-1]
    try:
        definition = aws.ecs.get_container_definition(
            task_definition=named if ":" not in named else task_definition, container_name=task
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

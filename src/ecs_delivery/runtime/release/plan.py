"""The release plan: which services and scheduled tasks change, compared with what runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecs_delivery.runtime.release.inventory import Inventory, ServiceTarget, TaskTarget
from ecs_delivery.runtime.release.live import (
    Aws,
    LiveStateError,
    TaskDefinitions,
    read_trigger,
    running_task_definitions,
)
from ecs_delivery.runtime.release.manifest import Manifest
from ecs_delivery.runtime.release.state import (
    SCHEMA_VERSION,
    SCHEMA_WITHOUT_SIDECARS,
    ReleaseState,
    ServiceState,
    TaskState,
)


@dataclass(frozen=True)
class ServiceChange:
    """A service whose image, or the image of a sidecar it builds, the release changes."""

    name: str
    target: ServiceTarget
    previous_td: str
    previous_image: str
    image: str
    # Built sidecars the manifest sets: container -> image, and what each runs now.
    sidecar_images: dict[str, str] = field(default_factory=dict)
    previous_sidecar_images: dict[str, str] = field(default_factory=dict)

    @property
    def containers(self) -> dict[str, tuple[str, str]]:
        """container -> (what runs, what the release sets), the main container first."""
        return {
            self.target.container: (self.previous_image, self.image),
            **{
                c: (self.previous_sidecar_images[c], image)
                for c, image in sorted(self.sidecar_images.items())
            },
        }

    def describe(self) -> str:
        """`prev -> new` of the main container, then `sidecar: prev -> new` of each moved
        sidecar."""
        parts = []
        for container, (before, after) in self.containers.items():
            if before == after:
                continue
            main = container == self.target.container
            parts.append(f"{'' if main else f'{container}: '}{before} -> {after}")
        return "; ".join(parts)


@dataclass(frozen=True)
class TaskChange:
    """A scheduled task whose image, schedule or command the release changes."""

    name: str
    target: TaskTarget
    previous_td: str
    previous_image: str
    image: str
    follows_service: str | None
    previous_schedule: str
    schedule: str
    previous_command: list[str] | None
    command: list[str] | None

    @property
    def what(self) -> list[str]:
        changes = []
        if self.image != self.previous_image:
            changes.append("image")
        if self.schedule != self.previous_schedule:
            changes.append("schedule")
        if self.command != self.previous_command:
            changes.append("command")
        return changes


@dataclass(frozen=True)
class Plan:
    """What a release would do, computed from the manifest and the live environment."""

    release_id: str
    environment: str
    manifest_digest: str
    services: tuple[ServiceChange, ...] = ()
    unchanged_services: tuple[str, ...] = ()
    tasks: tuple[TaskChange, ...] = ()
    unchanged_tasks: tuple[str, ...] = ()
    # The manifest's text: a state written by an earlier engine is named by its digest.
    manifest_text: str = ""

    @property
    def has_changes(self) -> bool:
        return bool(self.services or self.tasks)

    def to_state(self, now: float) -> ReleaseState:
        """The release's first persisted state."""
        return ReleaseState(
            release_id=self.release_id,
            environment=self.environment,
            manifest_digest=self.manifest_digest,
            created_at=now,
            updated_at=now,
            services={
                c.name: ServiceState(
                    target=c.target,
                    previous_td=c.previous_td,
                    previous_image=c.previous_image,
                    image=c.image,
                    sidecar_images=dict(c.sidecar_images),
                    previous_sidecar_images=dict(c.previous_sidecar_images),
                )
                for c in self.services
            },
            tasks={
                c.name: TaskState(
                    target=c.target,
                    previous_td=c.previous_td,
                    previous_image=c.previous_image,
                    image=c.image,
                    follows_service=c.follows_service,
                    previous_schedule=c.previous_schedule,
                    schedule=c.schedule,
                    previous_command=c.previous_command,
                    command=c.command,
                )
                for c in self.tasks
            },
            unchanged_services=list(self.unchanged_services),
            unchanged_tasks=list(self.unchanged_tasks),
            schema_version=(
                SCHEMA_VERSION
                if any(c.sidecar_images for c in self.services)
                else SCHEMA_WITHOUT_SIDECARS
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly plan (for `release plan --json` and the approval message)."""
        return {
            "release_id": self.release_id,
            "environment": self.environment,
            "services": [
                {
                    "name": c.name,
                    "from": c.previous_image,
                    "to": c.image,
                    # Every container the release sets (main and sidecars), moved or not.
                    "containers": {
                        container: {"from": before, "to": after}
                        for container, (before, after) in c.containers.items()
                    },
                    "previous_task_definition": c.previous_td,
                }
                for c in self.services
            ],
            "tasks": [
                {
                    "name": c.name,
                    "changes": c.what,
                    "image": {"from": c.previous_image, "to": c.image},
                    "schedule": {"from": c.previous_schedule, "to": c.schedule},
                    "command": {"from": c.previous_command, "to": c.command},
                    "follows_service": c.follows_service,
                }
                for c in self.tasks
            ],
            "unchanged_services": list(self.unchanged_services),
            "unchanged_tasks": list(self.unchanged_tasks),
        }

    def describe(self) -> list[str]:
        """Human-readable lines: one per change, then what stays."""
        lines = [f"release {self.release_id} ({self.environment}):"]
        if not self.has_changes:
            lines.append("  no changes: every service and task already runs what the manifest says")
        for c in self.services:
            lines.append(f"  service {c.name}: {c.describe()}")
        for c in self.tasks:
            parts = []
            if "image" in c.what:
                parts.append(f"image {c.previous_image} -> {c.image}")
            if "schedule" in c.what:
                parts.append(f"schedule {c.previous_schedule} -> {c.schedule}")
            if "command" in c.what:
                parts.append(f"command {c.previous_command} -> {c.command}")
            follows = f" (follows {c.follows_service})" if c.follows_service else ""
            lines.append(f"  task {c.name}{follows}: {'; '.join(parts)}")
        if self.unchanged_services:
            lines.append(f"  unchanged services: {', '.join(self.unchanged_services)}")
        if self.unchanged_tasks:
            lines.append(f"  unchanged tasks: {', '.join(self.unchanged_tasks)}")
        return lines


def _sidecar_image(definitions: TaskDefinitions, service: str, arn: str, container: str) -> str:
    """What a built sidecar runs; a revision without it was deployed before the stack built
    it, and a release cannot add a container (that is Pulumi's)."""
    described = definitions.describe(arn)["taskDefinition"]
    names = [c["name"] for c in described.get("containerDefinitions", [])]
    if container not in names:
        raise LiveStateError(
            f"services.{service}.sidecars.{container}: service {service} runs {arn}, which has "
            f"no container {container!r} (it has: {', '.join(names)}); run `pulumi up` so it "
            "runs the sidecar, then release"
        )
    return definitions.image(arn, container)


def compute_plan(
    aws: Aws,
    manifest: Manifest,
    inventory: Inventory,
    definitions: TaskDefinitions | None = None,
) -> Plan:
    """Compare the manifest with what runs; unchanged services and tasks are skipped.

    A scheduled task that follows a service takes the image the manifest sets for that
    service, or the service's running image when the release does not touch it.
    """
    definitions = definitions or TaskDefinitions(aws)
    # Followed services are read too, so a task can follow a service the release keeps.
    followed = {
        spec.follows_service
        for spec in manifest.scheduled_tasks.values()
        if spec.follows_service is not None
    }
    wanted = {name: inventory.services[name] for name in sorted(set(manifest.services) | followed)}
    running = running_task_definitions(aws, wanted)

    service_changes: list[ServiceChange] = []
    unchanged_services: list[str] = []
    live_image: dict[str, str] = {}
    for name in sorted(wanted):
        target = wanted[name]
        image = definitions.image(running[name], target.container)
        live_image[name] = image
        if name not in manifest.services:
            continue
        spec = manifest.services[name]
        sidecars = {c: _sidecar_image(definitions, name, running[name], c) for c in spec.sidecars}
        change = ServiceChange(
            name, target, running[name], image, spec.image, dict(spec.sidecars), sidecars
        )
        if all(before == after for before, after in change.containers.values()):
            unchanged_services.append(name)
        else:
            service_changes.append(change)

    task_changes: list[TaskChange] = []
    unchanged_tasks: list[str] = []
    for name in sorted(manifest.scheduled_tasks):
        spec = manifest.scheduled_tasks[name]
        target = inventory.scheduled_tasks[name]
        trigger = read_trigger(aws, target)
        current_image = definitions.image(trigger.task_definition, target.container)
        if spec.follows_service is not None:
            followed_spec = manifest.services.get(spec.follows_service)
            image = followed_spec.image if followed_spec else live_image[spec.follows_service]
        else:
            assert spec.image is not None  # the manifest guarantees one of the two
            image = spec.image
        change = TaskChange(
            name=name,
            target=target,
            previous_td=trigger.task_definition,
            previous_image=current_image,
            image=image,
            follows_service=spec.follows_service,
            previous_schedule=trigger.schedule,
            schedule=spec.schedule if spec.schedule is not None else trigger.schedule,
            previous_command=trigger.command,
            command=spec.command if spec.command is not None else trigger.command,
        )
        if change.what:
            task_changes.append(change)
        else:
            unchanged_tasks.append(name)

    return Plan(
        release_id=manifest.release_id,
        environment=manifest.environment,
        manifest_digest=manifest.digest,
        services=tuple(service_changes),
        unchanged_services=tuple(unchanged_services),
        tasks=tuple(task_changes),
        unchanged_tasks=tuple(unchanged_tasks),
        manifest_text=manifest.text,
    )

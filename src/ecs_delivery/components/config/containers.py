"""Models of a task's containers: the fields every container has (a service's, a scheduled
task's, a sidecar's), the task size, where the pipeline builds an image, and the sidecars."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ecs_delivery.components.config.values import (
    ENV_NAME,
    FARGATE_MEMORY,
    SECRET_ARN,
    Flag,
    check_image,
)
from ecs_delivery.inputs import Model, Problems


class BuildConfig(Model):
    """Where CodeBuild finds the service's Dockerfile in the application repository."""

    context: str = Field(".", description="Docker build context, relative to the repository root.")
    dockerfile: str = Field("Dockerfile", description="Dockerfile path, relative to the context.")


class ContainerHealthCheckConfig(Model):
    """ECS's own check inside the container (ranges are the ECS API's); an essential container
    that turns unhealthy stops its task, and a service replaces it."""

    command: list[str] = Field(
        min_length=2,
        description="`[CMD, <exe>, <args>...]` or `[CMD-SHELL, <command line>]`; the image must have the executable (e.g. `curl`).",
    )
    interval_seconds: int = Field(30, ge=5, le=300, description="Seconds between checks.")
    timeout_seconds: int = Field(
        5, ge=2, le=60, description="Seconds a check may take before it counts as failed."
    )
    retries: int = Field(
        3, ge=1, le=10, description="Consecutive failures before the container is unhealthy."
    )
    start_period_seconds: int = Field(
        0,
        ge=0,
        le=300,
        description="Seconds after start in which failures do not count (a slow start).",
    )

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if value[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError(
                f"starts with {value[0]!r}; start it with CMD (exec form) or CMD-SHELL "
                "(a shell command line), e.g. [CMD-SHELL, 'curl -f http://localhost:8080/health || exit 1']"
            )
        return value


class ContainerFields(Model):
    """What every container says about itself (a service's, a scheduled task's, a sidecar's):
    image, environment, secrets, hardening, health check."""

    image: str | None = Field(
        None, description="Pin an image (wins over promotion and the live image)."
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Plain environment variables; a name that looks like a secret (PASSWORD, TOKEN, API_KEY, ...) is refused: use `secrets`.",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Variable name to Secrets Manager secret or SSM parameter ARN (never plain values).",
    )
    readonly_root_filesystem: Flag = Field(True, description="Read-only root filesystem.")
    user: str | None = Field(
        "1000", description="User the container runs as (non-root); null: the image's own."
    )
    plain_environment_allowed: list[str] = Field(
        default_factory=list,
        description="Plain variables whose name only looks like a secret (e.g. `TOKEN_URL`).",
    )
    container_health_check: ContainerHealthCheckConfig | None = Field(
        None,
        description="ECS container health check (not the target group's `healthCheck`); a service's or task's own container has none while it runs its bootstrap image. Omitted: none (ECS sees only whether the process runs).",
    )

    _image = field_validator("image")(check_image)

    @field_validator("environment")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"invalid variable name(s) {bad}; use letters, digits and '_'")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        problems = []
        for key, arn in value.items():
            if not ENV_NAME.match(key):
                problems.append(f"{key!r} is not a variable name")
            if not SECRET_ARN.match(arn):
                problems.append(
                    f"{key}: {arn!r} is not a Secrets Manager or SSM parameter ARN; "
                    "store the value there and give its ARN (secrets never go in plain environment)"
                )
        clash = sorted(set(value) & set(info.data.get("environment") or {}))
        if clash:
            problems.append(f"{clash} also set in environment; keep each variable in one place")
        if problems:
            raise ValueError("; ".join(problems))
        return value


class ContainerConfig(ContainerFields):
    """What a service and a scheduled task both say about their container, and its task size."""

    cpu: int = Field(
        256, description="Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384."
    )
    memory: int = Field(
        512, description="Memory in MiB, valid for `cpu` (e.g. cpu 256: 512, 1024 or 2048)."
    )

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if value not in FARGATE_MEMORY:
            raise ValueError(
                f"{value} is not a Fargate cpu size; allowed: {', '.join(map(str, FARGATE_MEMORY))}"
            )
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        allowed = FARGATE_MEMORY.get(cpu) if cpu is not None else None
        if allowed and value not in allowed:
            step = allowed[1] - allowed[0]
            shown = (
                ", ".join(map(str, allowed))
                if len(allowed) <= 8
                else f"{allowed[0]} to {allowed[-1]} in steps of {step}"
            )
            raise ValueError(f"{value} is not valid for cpu {cpu}; allowed: {shown}")
        return value


# A container's name in a task definition (ECS: up to 255 letters, digits, '-' and '_').
CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
# What a container waits for in another before it starts (ECS's containerDependency).
Condition = Literal["START", "COMPLETE", "SUCCESS", "HEALTHY"]
DEPENDS_ON = (
    "Container name to what this one waits for: START, COMPLETE, SUCCESS or HEALTHY (the "
    "other container needs a `containerHealthCheck`)."
)
# The ready-made sidecars (logRouter, otelCollector): pinned public ECR images, upgraded here.
LOG_ROUTER, OTEL_COLLECTOR = "log-router", "otel-collector"
FIRELENS_IMAGE = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.4"
OTEL_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"


def check_writable_paths(value: list[str], info: ValidationInfo) -> list[str]:
    """A field validator: absolute paths, and only on a read-only root filesystem."""
    bad = [p for p in value if not p.startswith("/")]
    if bad:
        raise ValueError(f"{bad} must be absolute paths")
    if info.data.get("readonly_root_filesystem") is False and value != ["/tmp"]:
        raise ValueError("only used with readonlyRootFilesystem: true; remove it")
    return value


class SidecarConfig(ContainerFields):
    """A container beside the service's own in each task (a log router, a proxy, a collector).

    Its image is either pinned here (`image`: Pulumi owns it, every rollout deploys it) or
    built by the pipeline from the application repository (`build`: the deployer owns it,
    like the service's own image, and `pulumi up` never reverts a shipped one)."""

    image: str | None = Field(
        None,
        description="The sidecar's image, pinned (a digest `repo@sha256:...` or a version tag): a change rolls out blue/green; a pipeline ship of the service keeps it. With `build`, a pin that wins over what the pipeline ships (as the service's own `image`). Required without `build`.",
    )
    build: BuildConfig | None = Field(
        None,
        description="The pipeline builds this sidecar's image from the application repository (into its own ECR repository, `<service>/<sidecar>`), ships it with the service's and promotes it downstream; the deployer owns it: `pulumi up` keeps the image that runs. Until a first ship it runs the service's `bootstrapImage` asleep (no health check). Omitted: `image` is pinned.",
    )
    essential: Flag = Field(
        False, description="The task stops when this container stops (false: it may exit)."
    )
    depends_on: dict[str, Condition] = Field(default_factory=dict, description=DEPENDS_ON)
    port_mappings: list[int] = Field(
        default_factory=list,
        max_length=10,
        description="TCP ports the container listens on, reachable inside the VPC as the task's security group allows; never `containerPort`. Omitted: none (other containers of the task reach it on localhost anyway).",
    )
    command: list[str] | None = Field(
        None, description="Container command. Omitted: the image's own."
    )
    cpu: int | None = Field(
        None,
        ge=0,
        le=16384,
        description="CPU units reserved for the container; with the other sidecars' within the task's `cpu`. Omitted: shared.",
    )
    memory: int | None = Field(
        None,
        ge=6,
        description="Hard memory limit in MiB (the container is stopped above it); with the other sidecars' (or their `memoryReservation`) within the task's `memory`.",
    )
    memory_reservation: int | None = Field(
        None, ge=6, description="Memory in MiB kept for the container; at most `memory`."
    )
    writable_paths: list[str] = Field(
        default_factory=lambda: ["/tmp"],
        max_length=5,
        description="Absolute paths given writable volumes (the container's own) on a read-only root filesystem; at most 5.",
    )

    _writable = field_validator("writable_paths")(check_writable_paths)

    @field_validator("port_mappings")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 1 <= p <= 65535]
        if bad or len(set(value)) < len(value):
            raise ValueError(f"{value}: give each port once, each 1-65535")
        return value

    @model_validator(mode="after")
    def _image_or_build(self) -> SidecarConfig:
        if self.image is None and self.build is None:
            raise Problems(
                [
                    (
                        "image",
                        "required: pin an image (Pulumi owns it), or give `build` (the "
                        "pipeline builds it from the repository and the deployer owns it)",
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _reservation(self) -> SidecarConfig:
        if self.memory and self.memory_reservation and self.memory_reservation > self.memory:
            raise Problems(
                [
                    (
                        "memoryReservation",
                        f"{self.memory_reservation} is above memory ({self.memory}); lower it",
                    )
                ]
            )
        return self


def ready_made_sidecars(log_router: str | None, otel_collector: bool) -> dict[str, SidecarConfig]:
    """The sidecars `logRouter` and `otelCollector` add, as if configured in `sidecars`."""
    made = {}
    if log_router == "firelens":
        # FireLens needs Fluent Bit to run as root (aws/containers-roadmap#2122); the policy
        # pack admits that for a FireLens router only.
        made[LOG_ROUTER] = SidecarConfig(
            image=FIRELENS_IMAGE, essential=True, user="0", memory_reservation=50
        )
    if otel_collector:
        made[OTEL_COLLECTOR] = SidecarConfig(
            image=OTEL_IMAGE,
            command=["--config=/etc/ecs/ecs-default-config.yaml"],
            memory_reservation=64,
        )
    return made

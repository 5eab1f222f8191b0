"""Models of what runs: Fargate services (and their routing, health checks, scaling,
validation) and scheduled tasks, on the container fields of `containers.py`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ecs_delivery.components import bootstrap
from ecs_delivery.components.config.containers import (
    FIRELENS_IMAGE,
    LOG_ROUTER,
    OTEL_COLLECTOR,
    OTEL_IMAGE,
    BuildConfig,
    Condition,
    ContainerConfig,
    SidecarConfig,
    check_writable_paths,
    ready_made_sidecars,
)
from ecs_delivery.components.config.values import (
    Flag,
    check_image,
)
from ecs_delivery.components.config.workers import QueueScalingConfig, WorkerFields
from ecs_delivery.inputs import Model, Problems
from ecs_delivery.runtime.release.manifest import schedule_problem


class HealthCheckConfig(Model):
    """Target-group health check; every value explicit (API and provider defaults differ)."""

    path: str = Field("/health", description="Health-check path, starting with `/`.")
    matcher: str = Field(
        "200", description="HTTP codes that count as healthy (e.g. `200` or `200-299`)."
    )
    interval_seconds: int = Field(10, ge=5, le=300, description="Seconds between health checks.")
    timeout_seconds: int = Field(
        5, ge=2, le=120, description="Seconds before a check fails; less than `intervalSeconds`."
    )
    healthy_threshold: int = Field(
        2, ge=2, le=10, description="Consecutive successes before a target is healthy."
    )
    unhealthy_threshold: int = Field(
        2, ge=2, le=10, description="Consecutive failures before a target is unhealthy."
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheckConfig:
        if self.timeout_seconds >= self.interval_seconds:
            raise Problems(
                [
                    (
                        "timeoutSeconds",
                        f"{self.timeout_seconds} must be less than intervalSeconds ({self.interval_seconds})",
                    )
                ]
            )
        return self


class RoutingConfig(Model):
    """How the listeners route to the service: path patterns and/or host headers."""

    path_patterns: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="Path patterns routed to the service (e.g. `/api/*`); at most 5.",
    )
    host_headers: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="Host headers routed to the service; at most 5.",
    )
    priority: int | None = Field(
        None,
        ge=1,
        le=50000,
        description="Listener rule priority, unique per stack (lower is evaluated first). Omitted: derived from the service name alone (1000-49999, so adding or removing a service moves no other rule; of two names with the same number, the later in name order takes the next free one), a catch-all (`/*` only) 50000.",
    )

    @model_validator(mode="after")
    def _something(self) -> RoutingConfig:
        if not self.path_patterns and not self.host_headers:
            raise Problems(
                [
                    (
                        "pathPatterns",
                        "give at least one path pattern or host header, e.g. pathPatterns: ['/*']",
                    )
                ]
            )
        return self


class ScheduledScalingConfig(Model):
    """A scheduled change of the scaling bounds (e.g. fewer tasks at night)."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,39}$",
        description="Name of the action, unique per service (a-z, 0-9, `-`).",
    )
    schedule: str = Field(
        description="`cron(0 20 * * ? *)` (six fields), `rate(1 day)` or `at(2026-01-01T00:00:00)`."
    )
    timezone: str = Field("UTC", description="Time zone of a cron or at schedule.")
    min_capacity: int | None = Field(None, ge=0, description="Fewest tasks from then on.")
    max_capacity: int | None = Field(None, ge=0, description="Most tasks from then on.")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        # Application Auto Scaling takes the same expressions as EventBridge: one rule.
        if problem := schedule_problem(value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _bounds(self) -> ScheduledScalingConfig:
        if self.min_capacity is None and self.max_capacity is None:
            raise Problems([("minCapacity", "give minCapacity, maxCapacity or both")])
        if (
            self.min_capacity is not None
            and self.max_capacity is not None
            and self.max_capacity < self.min_capacity
        ):
            raise Problems(
                [("maxCapacity", f"{self.max_capacity} is below minCapacity ({self.min_capacity})")]
            )
        return self


class AutoscalingConfig(Model):
    """Target tracking on CPU, memory and/or requests per task, plus scheduled bounds."""

    min_capacity: int = Field(ge=1, description="Fewest tasks.")
    max_capacity: int = Field(ge=1, description="Most tasks; at least `minCapacity`.")
    target_cpu_percent: float | None = Field(
        60, gt=0, le=100, description="Average CPU the service is scaled to; null: not on CPU."
    )
    target_memory_percent: float | None = Field(
        None,
        gt=0,
        le=100,
        description="Average memory the service is scaled to. Omitted: not on memory.",
    )
    requests_per_target: int | None = Field(
        None,
        ge=1,
        le=1000000,
        description="Load balancer requests per task and minute the service is scaled to, counted over both blue/green target groups (README: Service runtime). Omitted: not on requests.",
    )
    scale_in_cooldown_seconds: int = Field(
        300, ge=0, description="Seconds after a scale-in before the next."
    )
    scale_out_cooldown_seconds: int = Field(
        60, ge=0, description="Seconds after a scale-out before the next."
    )
    scheduled: list[ScheduledScalingConfig] = Field(
        default_factory=list,
        max_length=20,
        description="Scheduled changes of `minCapacity`/`maxCapacity`; at most 20.",
    )
    queue: QueueScalingConfig | None = Field(
        None,
        description="Worker only: target tracking on an SQS queue's backlog per task. Omitted: not on a queue.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.max_capacity < self.min_capacity:
            raise Problems(
                [("maxCapacity", f"{self.max_capacity} is below minCapacity ({self.min_capacity})")]
            )
        if (
            self.target_cpu_percent is None
            and self.target_memory_percent is None
            and self.requests_per_target is None
            and self.queue is None
        ):
            raise Problems(
                [
                    (
                        "targetCpuPercent",
                        "null with no targetMemoryPercent, requestsPerTarget or queue: nothing to scale on; set one",
                    )
                ]
            )
        names = [action.name for action in self.scheduled]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise Problems([("scheduled", f"names {twice} used twice; give each action its own")])
        return self


class ValidationConfig(Model):
    """What the AfterAllowTestTraffic hook probes through the test listener."""

    path: str = Field(
        "/health", description="Path probed through the test listener, starting with `/`."
    )
    expected_status: int = Field(
        200, ge=100, le=599, description="HTTP status every probe must get."
    )
    probes: int = Field(
        5, ge=1, le=100, description="How many probes; all must fit in one Lambda invocation."
    )
    interval_seconds: float = Field(1, ge=0, le=60, description="Seconds between probes.")
    latency_budget_ms: int = Field(
        1000, ge=1, le=60000, description="Slowest answer a probe accepts, in milliseconds."
    )

    _path = field_validator("path")(HealthCheckConfig._path.__func__)

    @model_validator(mode="after")
    def _fits_one_invocation(self) -> ValidationConfig:
        from ecs_delivery.components.hook import MAX_PROBE_SECONDS, ServiceProbe

        probe = ServiceProbe(
            service="", group_name="", path=self.path, expected_status=self.expected_status,
            probes=self.probes, interval_seconds=self.interval_seconds,
            latency_budget_ms=self.latency_budget_ms,
        )  # fmt: skip
        if probe.worst_case_seconds > MAX_PROBE_SECONDS:
            raise ValueError(
                f"{self.probes} probes may take {probe.worst_case_seconds:g} s, more than one "
                f"Lambda invocation allows ({MAX_PROBE_SECONDS} s); lower probes, "
                "intervalSeconds or latencyBudgetMs"
            )
        return self


class EfsVolumeConfig(Model):
    """An EFS file system mounted into the service's container, encrypted in transit and
    authorised by the task role (IAM) unless turned off."""

    file_system_id: str = Field(
        pattern=r"^fs-[0-9a-f]{8,40}$", description="EFS file system id (`fs-...`)."
    )
    access_point_id: str | None = Field(
        None,
        pattern=r"^fsap-[0-9a-f]{8,40}$",
        description="EFS access point (`fsap-...`); the task role may mount only through it. Omitted: the file system itself.",
    )
    root_directory: str = Field(
        "/",
        description="Directory of the file system to mount; only `/` with `accessPointId` (the access point sets it).",
    )
    container_path: str = Field(description="Absolute path in the container.")
    read_only: Flag = Field(True, description="Mount read-only; false also grants ClientWrite.")
    transit_encryption: Flag = Field(True, description="TLS between the task and EFS.")
    iam_authorization: Flag = Field(
        True,
        description="Mount as the task role (`elasticfilesystem:ClientMount`, `ClientWrite` unless `readOnly`, granted on this file system only); needs `transitEncryption`.",
    )
    mount_target_security_group_id: str | None = Field(
        None,
        pattern=r"^sg-[0-9a-f]{8,17}$",
        description="Security group of the file system's mount targets: gets an NFS (2049) ingress rule from the service's tasks only. Omitted: no rule (the group must admit the tasks already).",
    )

    @field_validator("root_directory", "container_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EfsVolumeConfig:
        problems = []
        if self.access_point_id and self.root_directory != "/":
            problems.append(
                (
                    "rootDirectory",
                    "only / with accessPointId (the access point sets the root); remove it",
                )
            )
        if not self.transit_encryption and (self.iam_authorization or self.access_point_id):
            problems.append(
                (
                    "transitEncryption",
                    "false needs iamAuthorization: false and no accessPointId (ECS requires TLS for both); keep it true",
                )
            )
        if problems:
            raise Problems(problems)
        return self


class CapacityProviderConfig(Model):
    """One Fargate capacity provider of the service's strategy."""

    provider: Literal["FARGATE", "FARGATE_SPOT"] = Field(
        description="`FARGATE` (on demand) or `FARGATE_SPOT` (interruptible, cheaper)."
    )
    weight: int = Field(1, ge=0, le=1000, description="Share of the tasks beyond the bases.")
    base: int = Field(
        0, ge=0, le=100000, description="Tasks placed here first; only one provider may have one."
    )


# What ECS accepts for a Cloud Map service name and a client alias (ServiceConnectService).
DISCOVERY_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")
CLIENT_DNS_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,126}$")


class ServiceConnectConfig(Model):
    """The service in the stack's Service Connect namespace (deployment.engine ecs): reachable
    by the other services at `dnsName:port`, and a client of theirs."""

    enabled: Flag = Field(
        False,
        description="Join the stack's Service Connect namespace (`serviceConnect.namespaceArn`, or one the stack creates): ECS adds its proxy to each task, the other services reach this one at `http://<dnsName>:<port>` and only through the stack's Service Connect client group. Needs `deployment.engine: ecs`.",
    )
    discovery_name: str | None = Field(
        None,
        description="Cloud Map service name, unique in the namespace. Omitted: the service's name.",
    )
    dns_name: str | None = Field(
        None,
        description="Name the other services call this one by. Omitted: the service's name.",
    )
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port the other services call this one on. Omitted: `containerPort`.",
    )

    @field_validator("discovery_name")
    @classmethod
    def _discovery(cls, value: str | None) -> str | None:
        if value is not None and not DISCOVERY_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a Cloud Map service name (1-64 chars of a-z, 0-9, '_', '-', not starting with '-')"
            )
        return value

    @field_validator("dns_name")
    @classmethod
    def _dns(cls, value: str | None) -> str | None:
        if value is not None and not CLIENT_DNS_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a client alias (1-127 chars of a-z, 0-9, '_', '.', '-', not starting with '-')"
            )
        return value


class ServiceConfig(ContainerConfig, WorkerFields):
    """One Fargate service: behind the load balancer, deployed blue/green, or a worker
    (`kind: worker`) without one, deployed by ECS's rolling controller."""

    container_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Container and target-group port; required for `kind: web`.",
    )
    desired_count: int = Field(
        2,
        ge=0,
        le=1000,
        description="Tasks to run; with autoscaling, the count at creation (then autoscaling owns it).",
    )
    bootstrap_image: str = Field(
        bootstrap.DEFAULT_IMAGE,
        description="Image of a service before its first release; a busybox image serves the health check and validation path on `containerPort` (busybox `httpd`, files under the first writable path); any other image runs as it is.",
    )
    health_check: HealthCheckConfig = Field(
        HealthCheckConfig(), description="Target-group health check."
    )
    deregistration_delay_seconds: int = Field(
        15, ge=0, le=3600, description="Target-group deregistration delay."
    )
    health_check_grace_period_seconds: int = Field(
        30, ge=0, le=2147483647, description="ECS health-check grace period after a task starts."
    )
    routing: RoutingConfig = Field(
        RoutingConfig(path_patterns=["/*"]), description="How the listeners route to the service."
    )
    autoscaling: AutoscalingConfig | None = Field(
        None, description="Target-tracking autoscaling on CPU. Omitted: a fixed `desiredCount`."
    )
    writable_paths: list[str] = Field(
        default_factory=lambda: ["/tmp"],
        max_length=5,
        description="Absolute paths given writable volumes on a read-only root filesystem; at most 5.",
    )
    cpu_architecture: Literal["X86_64", "ARM64"] = Field(
        "X86_64",
        description="CPU architecture of the tasks; must match `pipeline.buildImage` in the first environment.",
    )
    command: list[str] | None = Field(
        None, description="Container command. Omitted: the image's own."
    )
    validation: ValidationConfig = Field(
        ValidationConfig(), description="What the blue/green validation hook probes."
    )
    build: BuildConfig = Field(
        BuildConfig(), description="Where CodeBuild finds the service's Dockerfile."
    )
    deployment_config: str | None = Field(
        None,
        description="CodeDeploy traffic shifting for this service. Omitted: `deployment.config`.",
    )
    enable_execute_command: Flag = Field(
        False,
        description="ECS Exec into the service's tasks: the task role gets the SSM channel permissions, sessions are logged to the cluster's exec log group; on a read-only root the SSM agent's paths get writable volumes. Reaches only tasks started afterwards (README: Known limits).",
    )
    capacity_providers: list[CapacityProviderConfig] = Field(
        default_factory=list,
        max_length=2,
        description="Capacity provider strategy, e.g. a base on `FARGATE` and the rest weighted to `FARGATE_SPOT`; on a running service a change rolls out blue/green through the AppSpec. Omitted: launch type `FARGATE` (on a running service: keep what runs).",
    )
    volumes: list[EfsVolumeConfig] = Field(
        default_factory=list,
        max_length=10,
        description="EFS file systems mounted into the container; at most 10.",
    )
    service_connect: ServiceConnectConfig = Field(
        ServiceConnectConfig(),
        description="Service-to-service traffic through ECS Service Connect (deployment.engine ecs).",
    )
    sidecars: dict[str, SidecarConfig] = Field(
        default_factory=dict,
        description="Containers beside the service's own in each task, by container name; the service's own container (named after the service) stays the one the target groups and deployments send traffic to. With `logRouter` and `otelCollector` at most 9 (ECS: 10 containers per task).",
    )
    depends_on: dict[str, Condition] = Field(
        default_factory=dict,
        description="Sidecar name to what the service's container waits for: START, COMPLETE, SUCCESS or HEALTHY (the sidecar needs a `containerHealthCheck`). With `logRouter`, the router's START is added.",
    )
    log_router: Literal["firelens"] | None = Field(
        None,
        description=f"`firelens`: a `{LOG_ROUTER}` sidecar (AWS for Fluent Bit, `{FIRELENS_IMAGE}`, essential, 50 MiB reserved, as root: FireLens requires it) routes the service container's logs to the service's log group (`awsfirelens`, the task role may write there only); its own logs go there through `awslogs`. Omitted: the service logs through `awslogs`.",
    )
    otel_collector: Flag = Field(
        False,
        description=f"An `{OTEL_COLLECTOR}` sidecar (AWS Distro for OpenTelemetry, `{OTEL_IMAGE}`, its ECS default config, 64 MiB reserved, not essential): the app sends OTLP to localhost:4317/4318; traces go to X-Ray, metrics to CloudWatch (EMF in `/aws/ecs/application/metrics`), and the task role gets exactly those permissions.",
    )

    _bootstrap_image = field_validator("bootstrap_image")(check_image)

    @field_validator("autoscaling")
    @classmethod
    def _autoscaling(
        cls, value: AutoscalingConfig | None, info: ValidationInfo
    ) -> AutoscalingConfig | None:
        desired = info.data.get("desired_count")
        if (
            value
            and desired is not None
            and not value.min_capacity <= desired <= value.max_capacity
        ):
            raise ValueError(
                f"desiredCount {desired} is outside minCapacity..maxCapacity ({value.min_capacity}..{value.max_capacity}); set it inside"
            )
        return value

    @field_validator("capacity_providers")
    @classmethod
    def _strategy(cls, value: list[CapacityProviderConfig]) -> list[CapacityProviderConfig]:
        names = [item.provider for item in value]
        if len(set(names)) < len(names):
            raise ValueError(f"{names} names a provider twice; give each once")
        if sum(1 for item in value if item.base) > 1:
            raise ValueError("only one provider may have a base; set the other's base to 0")
        if value and not any(item.weight for item in value):
            raise ValueError("every weight is 0; give at least one provider a weight above 0")
        return value

    @field_validator("volumes")
    @classmethod
    def _volume_paths(
        cls, value: list[EfsVolumeConfig], info: ValidationInfo
    ) -> list[EfsVolumeConfig]:
        paths = [volume.container_path for volume in value]
        taken = (
            set(info.data.get("writable_paths") or [])
            if info.data.get("readonly_root_filesystem") is not False
            else set()
        )
        twice = sorted({p for p in paths if paths.count(p) > 1} | (set(paths) & taken))
        if twice:
            raise ValueError(
                f"containerPath {twice} mounted twice (or also in writablePaths); give each mount its own path"
            )
        return value

    _paths = field_validator("writable_paths")(check_writable_paths)

    def task_sidecars(self) -> dict[str, SidecarConfig]:
        """Every sidecar of the task: the configured ones and the ready-made ones."""
        return {**self.sidecars, **ready_made_sidecars(self.log_router, self.otel_collector)}

    def built_sidecars(self) -> list[str]:
        """The sidecars the pipeline builds (`build`): their images are the deployer's."""
        return sorted(name for name, cfg in self.sidecars.items() if cfg.build is not None)


class ScheduledTaskConfig(ContainerConfig):
    """A Fargate task run on a schedule by EventBridge Scheduler in the private subnets."""

    schedule: str = Field(
        description="`rate(5 minutes)`, `cron(0 3 * * ? *)` (six fields) or `at(2026-01-01T00:00:00)`."
    )
    command: list[str] = Field(min_length=1, description="The container command.")
    follows_service: str | None = Field(
        None,
        description="Take this service's image: each pipeline ship, release or promotion of it moves both together.",
    )
    bootstrap_image: str = Field(
        bootstrap.DEFAULT_IMAGE,
        description="Image before the first release (also while a followed service has none); a busybox image runs `true` and exits 0; afterwards the live image is kept.",
    )
    timezone: str = Field("UTC", description="Time zone of a cron or at schedule.")
    enabled: Flag = Field(True, description="Whether the schedule runs.")
    retry_attempts: int = Field(
        2, ge=0, le=185, description="EventBridge Scheduler retries of a failed start."
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        # The release manifest's rule: one rule, so a release can set what the stack file can.
        if problem := schedule_problem(value):
            raise ValueError(problem)
        return value

    _bootstrap_image = field_validator("bootstrap_image")(check_image)

    @model_validator(mode="after")
    def _image_source(self) -> ScheduledTaskConfig:
        if self.follows_service and self.image:
            raise Problems(
                [
                    (
                        "image",
                        "a task that followsService takes the service's image; remove image or followsService",
                    )
                ]
            )
        return self

"""A service's sidecars from its config: the configured ones and the ready-made FireLens log
router and OpenTelemetry collector, as Containers beside the traffic container, and what the
task role needs for the ready-made ones."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ecs_delivery.components import bootstrap, iam, naming
from ecs_delivery.components.config import ServiceConfig
from ecs_delivery.components.config.containers import LOG_ROUTER
from ecs_delivery.components.task_definition import Container, ContainerHealthCheck

# The collector's ECS default config sends traces to X-Ray and metrics as EMF to this group.
OTEL_METRICS_LOG_GROUP = "/aws/ecs/application/metrics"
# X-Ray's trace and sampling actions have no resource types: "*" is the narrowest grant.
XRAY_ACTIONS = [
    "xray:GetSamplingRules",
    "xray:GetSamplingStatisticSummaries",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
]


def containers(
    svc: ServiceConfig,
    *,
    main: str,
    bootstrapping: bool,
    built_images: Mapping[str, str] | None = None,
    built_bootstrapping: Collection[str] = (),
) -> list[Container]:
    """The task's sidecars in name order, each running its pinned image, or a built one its
    declared image (`built_images`). A container that runs its bootstrap image (the traffic
    container `main` when `bootstrapping`, a built sidecar in `built_bootstrapping`) has no
    health check, so waiting for it to be HEALTHY becomes waiting for its START."""
    asleep = {
        name: bootstrap.worker_container(image, "sidecar")
        for name, image in (built_images or {}).items()
        if name in built_bootstrapping
    }
    unchecked = {*asleep, *([main] if bootstrapping else [])}

    def waits(cfg: Any) -> dict[str, str]:
        return {
            other: "START" if other in unchecked and condition == "HEALTHY" else condition
            for other, condition in cfg.depends_on.items()
        }

    return [
        Container(
            name=name,
            image=(built_images or {}).get(name) or cfg.image,
            port=0,
            ports=list(cfg.port_mappings),
            environment=cfg.environment,
            secrets=cfg.secrets,
            readonly_root_filesystem=cfg.readonly_root_filesystem,
            user=cfg.user,
            writable_paths=cfg.writable_paths,
            command=cfg.command,
            entry_point=asleep[name].entry_point if name in asleep else None,
            docker_labels=asleep[name].labels if name in asleep else {},
            health_check=ContainerHealthCheck(**cfg.container_health_check.model_dump())
            if cfg.container_health_check and name not in asleep
            else None,
            essential=cfg.essential,
            depends_on=waits(cfg),
            cpu=cfg.cpu,
            memory=cfg.memory,
            memory_reservation=cfg.memory_reservation,
            firelens=name == LOG_ROUTER and svc.log_router == "firelens",
        )
        for name, cfg in sorted(svc.task_sidecars().items())
    ]


def main_container_settings(
    svc: ServiceConfig, built_bootstrapping: Collection[str] = ()
) -> dict[str, Any]:
    """What the sidecars change on the traffic container: what it waits for (a built sidecar
    asleep on its bootstrap image has no health check: START), how it logs."""
    depends_on = {
        other: "START" if other in built_bootstrapping and condition == "HEALTHY" else condition
        for other, condition in svc.depends_on.items()
    }
    if svc.log_router == "firelens":
        # Its first lines go through the router, so the router must run before it starts.
        depends_on.setdefault(LOG_ROUTER, "START")
        return {"depends_on": depends_on, "log_driver": "awsfirelens"}
    return {"depends_on": depends_on}


def pinned_images(svc: ServiceConfig) -> dict[str, str]:
    """Container -> image of every pinned sidecar: Pulumi owns them, so each rollout deploys
    them. A built sidecar without a pin is the deployer's: the rollout keeps what runs."""
    return {name: cfg.image for name, cfg in svc.task_sidecars().items() if cfg.image}


def task_statements(svc: ServiceConfig, *, region: str, account_id: str) -> list[dict]:
    """The collector's permissions, only when it runs (FireLens's come with its log driver)."""
    if not svc.otel_collector:
        return []
    group = naming.arn(
        "logs", f"log-group:{OTEL_METRICS_LOG_GROUP}", region=region, account=account_id
    )
    return [
        iam.allow("OtelTraces", XRAY_ACTIONS, "*"),
        iam.allow("OtelMetricsGroup", ["logs:CreateLogGroup"], group),
        iam.allow(
            "OtelMetrics",
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            f"{group}:*",
        ),
    ]

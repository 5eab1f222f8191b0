"""Checks across keys. Over the models (called by `StackConfig`'s validators, so they are
part of the schema: a config they admit is never refused later by a component), and over
the raw values (so they report even when other keys are invalid). Model checks return
(key path, message) pairs; raw checks return whole lines.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

from ecs_delivery.components.config.containers import CONTAINER_NAME, ready_made_sidecars
from ecs_delivery.components.config.delivery import (
    CODEDEPLOY_PREDEFINED,
    ECS_BAKE_MAX_MINUTES,
    ECS_LINEAR_MIN_PERCENT,
    START_AND_VALIDATE_MINUTES,
    DeploymentConfig,
    PipelineConfig,
    ReleaseConfig,
    TeardownConfig,
)
from ecs_delivery.components.config.network import LoadBalancerConfig, NetworkConfig
from ecs_delivery.components.config.services import ScheduledTaskConfig, ServiceConfig
from ecs_delivery.components.config.values import SECRET_LIKE, SERVICE_NAME
from ecs_delivery.components.edge_names import (
    MAX_CERTIFICATE_NAMES,
    certificate_names,
    edge_names,
    in_zone,
    is_zone_id,
)
from ecs_delivery.components.priorities import (  # noqa: F401  (re-exported)
    CATCH_ALL_PRIORITY,
    derived_priority,
    listener_priorities,
)
from ecs_delivery.inputs import elide

# --- over the models ---------------------------------------------------------------------


def build_arch_problems(
    services: dict[str, ServiceConfig], pipeline: PipelineConfig, upstream_stack: str | None
) -> list[tuple[str, str]]:
    """The first environment builds every service's images on `pipeline.buildImage`."""
    from ecs_delivery.components.codebuild import environment_type

    if upstream_stack:  # a downstream stack builds nothing
        return []
    arm = environment_type(pipeline.build_image) == "ARM_CONTAINER"
    build_arch = "ARM64" if arm else "X86_64"
    return [
        (
            f"services.{name}.cpuArchitecture",
            f"{svc.cpu_architecture} images cannot be built on pipeline.buildImage "
            f"{pipeline.build_image!r} ({build_arch}); use a matching CodeBuild image",
        )
        for name, svc in sorted(services.items())
        if svc.cpu_architecture != build_arch
    ]


def timeout_problems(
    d: DeploymentConfig, services: dict[str, ServiceConfig], release: ReleaseConfig | None
) -> list[tuple[str, str]]:
    """Every deployer's timeout covers a deployment of the configured shape (issue 21:
    prod's canary and termination wait outlived the pipeline's and the releases')."""
    configs = {svc.deployment_config or d.config for svc in services.values()}
    slowest = max(configs or {d.config}, key=d.ships_in_minutes)
    ships = d.ships_in_minutes(slowest)
    gate = f" + {d.gate_minutes()} at the manual gate" if d.gate_minutes() else ""
    why = (
        f"a deployment ships in about {ships} min ({START_AND_VALIDATE_MINUTES} to start "
        f"and validate{gate} + {d.shift_minutes(slowest)} of traffic shifting with {slowest})"
    )
    problems = []
    if d.timeout_minutes < ships:
        problems.append(
            (
                "deployment.timeoutMinutes",
                f"{d.timeout_minutes} is shorter than {why}; set at least {ships}",
            )
        )
    if release and release.deployment_timeout_minutes < ships:
        problems.append(
            (
                "release.deploymentTimeoutMinutes",
                f"{release.deployment_timeout_minutes} is shorter than {why}; set at least {ships}",
            )
        )
    return problems


def ecs_engine_problems(d: DeploymentConfig) -> list[tuple[str, str]]:
    """With `deployment.engine: ecs` the mapped values must fit what ECS accepts; what only
    ECS's own blue/green has is refused on CodeDeploy's."""
    if d.engine != "ecs":
        return (
            [
                (
                    "deployment.manualApproval.enabled",
                    "a PAUSE lifecycle hook needs deployment.engine ecs (CodeDeploy's "
                    "deployments have none); set deployment.engine: ecs, or remove it and gate "
                    "releases with pipeline.approval",
                )
            ]
            if d.manual_approval.enabled
            else []
        )
    problems = []
    if d.termination_wait_minutes > ECS_BAKE_MAX_MINUTES:
        problems.append(
            (
                "deployment.terminationWaitMinutes",
                f"{d.termination_wait_minutes} is longer than ECS's {ECS_BAKE_MAX_MINUTES}-minute "
                f"bake time (deployment.engine ecs); set at most {ECS_BAKE_MAX_MINUTES}",
            )
        )
    for key, custom in sorted(d.custom_configs.items()):
        path = f"deployment.customConfigs.{key}"
        if custom.interval_minutes > ECS_BAKE_MAX_MINUTES:
            problems.append(
                (
                    f"{path}.intervalMinutes",
                    f"{custom.interval_minutes} is longer than ECS's {ECS_BAKE_MAX_MINUTES}-minute "
                    f"step bake time (deployment.engine ecs); set at most {ECS_BAKE_MAX_MINUTES}",
                )
            )
        if custom.type == "linear" and custom.percent < ECS_LINEAR_MIN_PERCENT:
            problems.append(
                (
                    f"{path}.percent",
                    f"{custom.percent} is below the {ECS_LINEAR_MIN_PERCENT} percent ECS's linear "
                    f"steps move at least (deployment.engine ecs); set {ECS_LINEAR_MIN_PERCENT} or more",
                )
            )
    return problems


MAX_CONTAINERS = 10  # per task definition (ECS quota)


def container_problems(services: dict[str, ServiceConfig]) -> list[tuple[str, str]]:
    """Each service's containers together: names, dependencies, ports and limits."""
    problems: list[tuple[str, str]] = []
    for name, svc in sorted(services.items()):
        problems += _task_containers(f"services.{name}", name, svc)
    return problems


def _task_containers(path: str, main: str, svc: ServiceConfig) -> list[tuple[str, str]]:
    problems = []
    made = ready_made_sidecars(svc.log_router, svc.otel_collector)
    for sidecar in svc.sidecars:
        if sidecar == main or sidecar in made:
            owner = "the service's own container" if sidecar == main else "a ready-made sidecar"
            problems.append(
                (f"{path}.sidecars.{sidecar}", f"the name is taken by {owner}; rename it")
            )
        elif not CONTAINER_NAME.match(sidecar):
            problems.append(
                (f"{path}.sidecars.{sidecar}", "use 1-255 letters, digits, '-' and '_'")
            )
    sidecars = svc.task_sidecars()
    if 1 + len(sidecars) > MAX_CONTAINERS:
        problems.append(
            (f"{path}.sidecars", f"{1 + len(sidecars)} containers; a task holds {MAX_CONTAINERS}")
        )
    checked = {
        main: svc.container_health_check,
        **{n: c.container_health_check for n, c in sidecars.items()},
    }
    waits = {main: dict(svc.depends_on), **{n: dict(c.depends_on) for n, c in sidecars.items()}}
    for container, needs in waits.items():
        key = f"{path}.dependsOn" if container == main else f"{path}.sidecars.{container}.dependsOn"
        for other, condition in sorted(needs.items()):
            if other == container or other not in checked:
                known = sorted(set(checked) - {container})
                problems.append(
                    (
                        key,
                        f"{other!r} is not another container of the task; use one of {', '.join(known)}",
                    )
                )
            elif condition == "HEALTHY" and checked[other] is None:
                problems.append(
                    (
                        key,
                        f"{other}: HEALTHY needs {other}'s containerHealthCheck; add one or wait for START",
                    )
                )
    if cycle := _cycle(waits):
        problems.append(
            (
                f"{path}.sidecars",
                f"dependsOn goes round in a circle ({' -> '.join(cycle)}); break it",
            )
        )
    for sidecar, cfg in sorted(sidecars.items()):
        if svc.container_port in cfg.port_mappings:
            problems.append(
                (
                    f"{path}.sidecars.{sidecar}.portMappings",
                    f"{svc.container_port} is the service's containerPort (its traffic); use another",
                )
            )
    ports = [p for cfg in sidecars.values() for p in cfg.port_mappings]
    if twice := sorted({p for p in ports if ports.count(p) > 1}):
        problems.append(
            (f"{path}.sidecars", f"ports {twice} mapped by two sidecars; give each its own")
        )
    cpu = sum(cfg.cpu or 0 for cfg in sidecars.values())
    if cpu > svc.cpu:
        problems.append(
            (
                f"{path}.sidecars",
                f"cpu {cpu} in sidecars is more than the task's cpu ({svc.cpu}); lower theirs or raise the task's",
            )
        )
    memory = sum(cfg.memory or cfg.memory_reservation or 0 for cfg in sidecars.values())
    if memory >= svc.memory:
        problems.append(
            (
                f"{path}.sidecars",
                f"memory {memory} MiB in sidecars leaves the service's container none of the task's {svc.memory}; lower theirs or raise the task's",
            )
        )
    return problems


def _cycle(waits: dict[str, dict[str, str]]) -> list[str]:
    """A circle of dependsOn (ECS refuses the task definition), as the containers in it."""

    def visit(node: str, trail: list[str]) -> list[str]:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        for other in sorted(waits.get(node, {})):
            if found := visit(other, [*trail, node]):
                return found
        return []

    for start in sorted(waits):
        if found := visit(start, []):
            return found
    return []


def service_connect_problems(
    d: DeploymentConfig, services: dict[str, ServiceConfig]
) -> list[tuple[str, str]]:
    """Service Connect only on the ECS engine, each service under its own names."""
    joined = {n: s for n, s in sorted(services.items()) if s.service_connect.enabled}
    if d.engine != "ecs":
        return [
            (
                f"services.{name}.serviceConnect.enabled",
                "Service Connect needs deployment.engine ecs (a CODE_DEPLOY-controlled service "
                "cannot use Service Connect); set deployment.engine: ecs, or remove it",
            )
            for name in joined
        ]
    problems = []
    seen: dict[tuple[str, object], str] = {}
    for name, svc in joined.items():
        sc = svc.service_connect
        keys = {
            "discoveryName": (sc.discovery_name or name,),
            "dnsName": (sc.dns_name or name, sc.port or svc.container_port),
        }
        for key, value in keys.items():
            other = seen.setdefault((key, value), name)
            if other != name:
                shown = ":".join(map(str, value))
                problems.append(
                    (
                        f"services.{name}.serviceConnect.{key}",
                        f"{shown!r} is services.{other}'s already (one namespace); "
                        f"give services.{name}.serviceConnect.{key} a name of its own",
                    )
                )
    return problems


def teardown_problems(
    teardown: TeardownConfig, lb: LoadBalancerConfig, release: ReleaseConfig | None
) -> list[tuple[str, str]]:
    """forceDestroy only where nothing marks the stack as production."""
    marks = [
        key
        for key, marked in (
            ("loadBalancer.deletionProtection", lb.deletion_protection),
            ("release.production", bool(release and release.production)),
        )
        if marked
    ]
    if not (teardown.force_destroy and marks):
        return []
    return [
        (
            "teardown.forceDestroy",
            f"refused on a production stack ({', '.join(marks)}); "
            "empty its buckets and repositories by hand (README: Teardown)",
        )
    ]


# A private ECR image: the only kind tasks can pull through VPC endpoints (no NAT).
PRIVATE_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")


def host_headers(services: dict[str, ServiceConfig]) -> list[str]:
    """Every service's host headers, services by name."""
    return [h for _, svc in sorted(services.items()) for h in svc.routing.host_headers]


def zone_name(lb: LoadBalancerConfig) -> str | None:
    """The zone's name when the config gives one; None for a zone id (known after look-up)."""
    zone = lb.hosted_zone
    return None if zone is None or is_zone_id(zone) else zone


def creates_certificate(lb: LoadBalancerConfig) -> bool:
    """Whether the stack creates (and DNS-validates) the load balancer's certificate."""
    return bool(lb.hosted_zone and lb.domain_name and not lb.certificate_arn)


def edge_problems(
    lb: LoadBalancerConfig, services: dict[str, ServiceConfig]
) -> list[tuple[str, str]]:
    """A created certificate: its names in the zone, and not more than ACM takes."""
    if not lb.hosted_zone or not creates_certificate(lb):
        return []
    assert lb.domain_name is not None
    zone = zone_name(lb)
    problems = []
    if zone is not None and not in_zone(lb.domain_name, zone):
        problems.append(
            (
                "loadBalancer.domainName",
                f"{lb.domain_name!r} is outside loadBalancer.hostedZone {zone!r}, where the "
                "created certificate is validated; give a name in that zone, or certificateArn",
            )
        )
    names = certificate_names(
        lb.domain_name, edge_names(lb.domain_name, host_headers(services), zone)
    )
    if len(names) > MAX_CERTIFICATE_NAMES:
        problems.append(
            (
                "loadBalancer.hostedZone",
                f"the created certificate would carry {len(names)} names (domainName and the "
                f"services' host headers in the zone{'' if zone else '; with a zone id every one counts'}), "
                f"more than ACM's {MAX_CERTIFICATE_NAMES}; give certificateArn, or fewer host headers",
            )
        )
    return problems


def no_nat_problems(
    network: NetworkConfig,
    lb: LoadBalancerConfig,
    services: dict[str, ServiceConfig],
    tasks: dict[str, ScheduledTaskConfig],
) -> list[tuple[str, str]]:
    """natGateways none: what the program then needs, one line per missing piece."""
    if network.nat_gateways != "none":
        return []
    problems = []
    if not lb.internal:
        problems.append(
            (
                "network.natGateways",
                "none needs loadBalancer.internal: true (the validation hook in the private "
                "subnets reaches an internet-facing load balancer's test listener only through "
                "NAT); set it, or use single or perAz",
            )
        )
    units = [("services", n, u) for n, u in sorted(services.items())] + [
        ("scheduledTasks", n, u) for n, u in sorted(tasks.items())
    ]
    for section, name, unit in units:
        for key, image in (("bootstrapImage", unit.bootstrap_image), ("image", unit.image)):
            if image is not None and not PRIVATE_ECR_IMAGE.match(image):
                problems.append(
                    (
                        f"{section}.{name}.{key}",
                        f"{image!r} cannot be pulled without NAT (natGateways: none); use an "
                        "image in private ECR in this region (e.g. an ECR pull-through cache "
                        "repository), or natGateways single",
                    )
                )
    return problems


# --- over the raw values -----------------------------------------------------------------


# What a service without `routing` gets: the model's default, never restated here.
_DEFAULT_ROUTING = (
    ServiceConfig.model_fields["routing"].get_default().model_dump(by_alias=True, exclude_none=True)
)


def _raw_routing(svc: Any) -> dict[str, Any]:
    """A service's raw routing values; the default routing when it gives none."""
    routing = svc.get("routing") if isinstance(svc, dict) else None
    return routing if isinstance(routing, dict) else _DEFAULT_ROUTING


def _catch_all(routing: dict[str, Any]) -> bool:
    return routing.get("pathPatterns") == ["/*"] and not routing.get("hostHeaders")


def routing_priorities(services: dict[str, ServiceConfig]) -> dict[str, int]:
    """Each service's listener-rule priority (ecs_delivery.components.priorities)."""
    return listener_priorities(
        {
            n: s.routing.model_dump(by_alias=True, exclude_none=True)
            for n, s in services.items()
            if not s.is_worker
        }
    )


def _priority_problems(services: dict[str, Any]) -> list[str]:
    """Explicit priorities used twice, or equal to the catch-all's (derived ones never collide)."""
    problems = []
    taken: dict[Any, tuple[str, str]] = {}
    for name, svc in services.items():
        routing = _raw_routing(svc)
        if routing.get("priority") is not None:
            prio, how = routing["priority"], "set"
        elif _catch_all(routing):
            prio, how = CATCH_ALL_PRIORITY, "catch-all"
        else:
            continue
        if prio in taken and how == "set":
            problems.append(
                f"services.{name}.routing.priority: {prio} is also used by service {taken[prio][0]}; priorities must be unique"
            )
        elif prio in taken and how == taken[prio][1] == "catch-all":
            continue  # two catch-alls: reported once, by the routing check
        elif prio in taken:
            problems.append(
                f"services.{name}.routing.priority: {prio} (its {how} priority) is also used by "
                f"service {taken[prio][0]}; set routing.priority on one of them to a free number"
            )
        else:
            taken[prio] = (name, how)
    return problems


def raw_problems(raw: dict[str, Any]) -> list[str]:
    """Checks across keys, run on the raw values so they report even when other keys are bad."""
    problems: list[str] = []
    services = raw.get("services")
    if isinstance(services, dict):
        for name in services:
            if not SERVICE_NAME.match(str(name)):
                problems.append(
                    f"services.{name}: the name must be 1-24 chars of a-z, 0-9 and '-', starting with a letter (it becomes AWS names)"
                )
        # Workers have no listener rule: their (default) routing takes no priority.
        routed = {
            n: s
            for n, s in services.items()
            if not (isinstance(s, dict) and s.get("kind") == "worker")
        }
        problems.extend(_priority_problems(routed))
        catch_all = [name for name, svc in routed.items() if _catch_all(_raw_routing(svc))]
        if len(catch_all) > 1:
            problems.append(
                f"services: {elide(catch_all)} all route every path ('/*'); give each service routing.pathPatterns or routing.hostHeaders"
            )
    tasks = raw.get("scheduledTasks")
    if isinstance(tasks, dict):
        service_names = set(services) if isinstance(services, dict) else None
        for name, task in tasks.items():
            if not SERVICE_NAME.match(str(name)):
                problems.append(
                    f"scheduledTasks.{name}: the name must be 1-24 chars of a-z, 0-9 and '-', starting with a letter"
                )
            if isinstance(services, dict) and name in services:
                problems.append(
                    f"scheduledTasks.{name}: a service has the same name; task and service names must differ"
                )
            follows = task.get("followsService") if isinstance(task, dict) else None
            # Without valid services there is nothing to check against (that error is reported).
            if follows is not None and service_names is not None and follows not in service_names:
                problems.append(
                    f"scheduledTasks.{name}.followsService: {follows!r} is not a service of this stack; use one of {elide(sorted(service_names))}"
                )
    pipeline = raw.get("pipeline") if isinstance(raw.get("pipeline"), dict) else {}
    if raw.get("upstreamStack") and pipeline.get("source"):
        problems.append(
            "pipeline.source: a downstream stack (upstreamStack set) takes the upstream's promotion record; remove pipeline.source"
        )
    if not raw.get("upstreamStack") and not pipeline.get("source"):
        problems.append(
            "pipeline.source: required for the first environment (no upstreamStack): e.g. {provider: codestar, connectionArn: ..., repository: owner/app}"
        )
    deployment = raw.get("deployment") if isinstance(raw.get("deployment"), dict) else {}
    known_configs = set(CODEDEPLOY_PREDEFINED) | set(deployment.get("customConfigs") or {})
    chosen = [("deployment.config", deployment.get("config"))]
    if isinstance(services, dict):
        chosen += [
            (f"services.{n}.deploymentConfig", s.get("deploymentConfig"))
            for n, s in services.items()
            if isinstance(s, dict)
        ]
    for path, name in chosen:
        if name is not None and name not in known_configs:
            problems.append(
                f"{path}: unknown deployment configuration {name!r}; use one of {elide(sorted(known_configs), 8)} or define it in deployment.customConfigs"
            )
    for section in ("services", "scheduledTasks"):
        units = raw.get(section)
        for name, unit in (units or {}).items() if isinstance(units, dict) else ():
            problems.extend(_secret_like_environment(f"{section}.{name}", unit))
            sidecars = unit.get("sidecars") if isinstance(unit, dict) else None
            for sidecar, cfg in (sidecars or {}).items() if isinstance(sidecars, dict) else ():
                problems.extend(
                    _secret_like_environment(f"{section}.{name}.sidecars.{sidecar}", cfg)
                )
    if raw.get("promoteRelease") and not raw.get("upstreamStack"):
        problems.append(
            "promoteRelease: needs upstreamStack (the stack that published the release)"
        )
    return problems


def _secret_like_environment(path: str, unit: Any) -> list[str]:
    """Plain variables whose name looks like a secret, unless listed in plainEnvironmentAllowed."""
    if not isinstance(unit, dict) or not isinstance(unit.get("environment"), dict):
        return []
    allowed = unit.get("plainEnvironmentAllowed")
    allowed = [str(a) for a in allowed] if isinstance(allowed, list) else []
    problems = [
        f"{path}.environment.{key}: looks like a secret; move it to {path}.secrets (a Secrets "
        f"Manager or SSM ARN), or list it in {path}.plainEnvironmentAllowed if it is not one"
        for key in unit["environment"]
        if SECRET_LIKE.search(str(key)) and key not in allowed
    ]
    # A stale opt-out would silently let the next variable of that name through.
    problems += [
        f"{path}.plainEnvironmentAllowed: {name!r} is not in {path}.environment; remove it"
        for name in allowed
        if name not in unit["environment"]
    ]
    return problems


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in the installed botocore's endpoint data."""
    import botocore

    # The file itself: botocore.loaders would import most of botocore (a quarter of a second
    # of a plan) to find it; a botocore that ships it otherwise (compressed) goes through it.
    path = Path(botocore.__file__).parent / "data" / "endpoints.json"
    if path.is_file():
        endpoints = json.loads(path.read_text(encoding="utf-8"))
    else:
        import botocore.loaders

        endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(r for p in endpoints["partitions"] for r in p["regions"])


def region_problems(region: str | None, allowed: Any) -> list[str]:
    """`aws:region` missing, or unknown to botocore and not in `allowedRegions`."""
    import botocore

    if not region:
        return [
            "aws:region: required; run `pulumi config set aws:region <region>` (e.g. eu-west-1)"
        ]
    allowed = [str(a) for a in allowed] if isinstance(allowed, list) else []
    if region in known_regions() or region in allowed:
        return []
    close = difflib.get_close_matches(region, sorted(known_regions()), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return [
        f"aws:region: {region!r} is not a region botocore {botocore.__version__} knows; {hint}"
        f"if it is a new region, allow it with ecs-delivery:allowedRegions: [{region}]"
    ]

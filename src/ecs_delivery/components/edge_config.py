"""Schema checks across keys for the edge (DNS, certificate) and for a VPC without NAT.

Called by `StackConfig`'s model validator, so they are part of the schema: a config they
admit is never refused later by a component. Each returns (key path, message) pairs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ecs_delivery.components.edge_names import (
    MAX_CERTIFICATE_NAMES,
    certificate_names,
    edge_names,
    in_zone,
    is_zone_id,
)

if TYPE_CHECKING:
    from ecs_delivery.components.config import StackConfig

# A private ECR image: the only kind tasks can pull through VPC endpoints (no NAT).
PRIVATE_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")


def host_headers(cfg: StackConfig) -> list[str]:
    return [h for _, svc in sorted(cfg.services.items()) for h in svc.routing.host_headers]


def zone_name(cfg: StackConfig) -> str | None:
    """The zone's name when the config gives one; None for a zone id (known after look-up)."""
    zone = cfg.load_balancer.hosted_zone
    return None if zone is None or is_zone_id(zone) else zone


def creates_certificate(cfg: StackConfig) -> bool:
    lb = cfg.load_balancer
    return bool(lb.hosted_zone and lb.domain_name and not lb.certificate_arn)


def edge_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    lb = cfg.load_balancer
    if not lb.hosted_zone or not creates_certificate(cfg):
        return []
    assert lb.domain_name is not None
    zone = zone_name(cfg)
    problems = []
    if zone is not None and not in_zone(lb.domain_name, zone):
        problems.append(
            (
                "loadBalancer.domainName",
                f"{lb.domain_name!r} is outside loadBalancer.hostedZone {zone!r}, where the "
                "created certificate is validated; give a name in that zone, or certificateArn",
            )
        )
    names = certificate_names(lb.domain_name, edge_names(lb.domain_name, host_headers(cfg), zone))
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


def no_nat_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    """natGateways none: what the program then needs, one line per missing piece."""
    if cfg.network.nat_gateways != "none":
        return []
    problems = []
    if not cfg.load_balancer.internal:
        problems.append(
            (
                "network.natGateways",
                "none needs loadBalancer.internal: true (the validation hook in the private "
                "subnets reaches an internet-facing load balancer's test listener only through "
                "NAT); set it, or use single or perAz",
            )
        )
    units = [("services", n, u) for n, u in sorted(cfg.services.items())] + [
        ("scheduledTasks", n, u) for n, u in sorted(cfg.scheduled_tasks.items())
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

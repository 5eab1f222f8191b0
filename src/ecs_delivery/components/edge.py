"""The load balancer's edge from config: hosted zone, created certificate, alias records, WAF.

`platform.build` calls `certificate_for` before the load balancer (its HTTPS listeners wait
for the certificate) and `attach` after it (records and the WAF association need its ARN
and DNS name).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from ecs_delivery.components import naming
from ecs_delivery.components.config import (
    ConfigError,
    StackConfig,
    creates_certificate,
    host_headers,
)
from ecs_delivery.components.dns import (
    AliasRecords,
    AliasRecordsArgs,
    DnsValidatedCertificate,
    DnsValidatedCertificateArgs,
    HostedZone,
    look_up_zone,
)
from ecs_delivery.components.edge_names import EdgeNames, certificate_names, edge_names, in_zone
from ecs_delivery.components.load_balancer import LoadBalancer
from ecs_delivery.components.waf import Baseline, WebFirewall, WebFirewallArgs

# The interface endpoints a VPC without NAT needs for this program: image pulls (ECR and the
# S3 gateway endpoint the network always has), task logs, and the validation hook's verdict.
NO_NAT_ENDPOINTS = ("codedeploy", "ecr.api", "ecr.dkr", "logs")


@dataclass
class Edge:
    zone: HostedZone | None = None
    names: EdgeNames | None = None
    certificate: DnsValidatedCertificate | None = None
    records: AliasRecords | None = None
    firewall: WebFirewall | None = None

    @property
    def certificate_arn(self) -> pulumi.Input[str] | None:
        return self.certificate.certificate_arn if self.certificate else None


def interface_endpoints(cfg: StackConfig) -> list[str]:
    """Endpoints for natGateways none: the fixed ones, plus Secrets Manager / SSM when used."""
    arns = [
        arn
        for unit in [*cfg.services.values(), *cfg.scheduled_tasks.values()]
        for arn in unit.secrets.values()
    ]
    used = {kind for kind in ("secretsmanager", "ssm") if any(f":{kind}:" in a for a in arns)}
    return sorted({*NO_NAT_ENDPOINTS, *used})


def _zone_problems(cfg: StackConfig, zone: HostedZone) -> list[str]:
    """What only the looked-up zone can tell (a zone id's name, whether it is private)."""
    if not creates_certificate(cfg.load_balancer):
        return []
    problems = []
    key = f"loadBalancer.hostedZone: {cfg.load_balancer.hosted_zone}"
    if zone.private:
        problems.append(
            f"{key} is a private zone; ACM validates a certificate only through public DNS: "
            "give a public zone, or certificateArn"
        )
    domain = cfg.load_balancer.domain_name or ""
    if not in_zone(domain, zone.name):
        problems.append(
            f"loadBalancer.domainName: {domain!r} is outside the hosted zone {zone.name!r} "
            f"({cfg.load_balancer.hosted_zone}), where the created certificate is validated; "
            "give a name in that zone, or certificateArn"
        )
    return problems


def certificate_for(
    cfg: StackConfig, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None
) -> Edge:
    """Look up the hosted zone and, when the config asks for it, create the certificate."""
    lb = cfg.load_balancer
    if not lb.hosted_zone:
        return Edge()
    zone = look_up_zone(lb.hosted_zone)
    problems = _zone_problems(cfg, zone)
    if problems:
        raise ConfigError(problems)
    names = edge_names(lb.domain_name, host_headers(cfg.services), zone.name)
    if names.skipped:
        pulumi.log.warn(
            "loadBalancer.hostedZone: no DNS record for "
            + "; ".join(f"{name!r} ({why})" for name, why in names.skipped)
        )
    edge = Edge(zone=zone, names=names)
    if creates_certificate(cfg.load_balancer):
        assert lb.domain_name is not None
        edge.certificate = DnsValidatedCertificate(
            "certificate",
            DnsValidatedCertificateArgs(
                zone_id=zone.zone_id,
                names=certificate_names(lb.domain_name, names),
                tags=tags,
            ),
            opts,
        )
    return edge


def attach(
    edge: Edge,
    cfg: StackConfig,
    project: str,
    stack: str,
    load_balancer: LoadBalancer,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions | None = None,
) -> None:
    """Alias records to the load balancer and its WAF association, as configured."""
    lb = cfg.load_balancer
    if edge.zone and edge.names and edge.names.in_zone:
        if load_balancer.zone_id is None:
            raise ValueError(
                "loadBalancer.hostedZone: alias records need the load balancer's hosted zone id; "
                "give ExistingLoadBalancer(zone_id=...) or leave hostedZone unset"
            )
        edge.records = AliasRecords(
            "dns",
            AliasRecordsArgs(
                zone_id=edge.zone.zone_id,
                names=edge.names.in_zone,
                load_balancer_dns_name=load_balancer.dns_name,
                load_balancer_zone_id=load_balancer.zone_id,
                dual_stack=False,  # the load balancer is IPv4 only (ipAddressType ipv4)
            ),
            opts,
        )
    if lb.web_acl_arn or lb.waf:
        edge.firewall = WebFirewall(
            "waf",
            WebFirewallArgs(
                load_balancer_arn=load_balancer.arn,
                web_acl_arn=lb.web_acl_arn,
                baseline=Baseline(
                    name=naming.web_acl_name(project, stack), rate_limit=lb.waf.rate_limit
                )
                if lb.waf
                else None,
                tags=tags,
            ),
            opts,
        )

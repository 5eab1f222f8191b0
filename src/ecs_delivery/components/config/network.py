"""Models of the network and the load balancer in front of the services."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ecs_delivery.components.config.values import ACM_ARN, DNS_NAME, WEB_ACL_ARN, Flag
from ecs_delivery.components.edge_names import is_zone_id
from ecs_delivery.inputs import Model, Problems


class NetworkConfig(Model):
    """VPC layout: CIDR, how many availability zones, NAT gateway policy."""

    cidr: str = Field(
        "10.0.0.0/16",
        description="Private IPv4 CIDR of the VPC, /16 to /24; public subnets take eighths 1-3, private ones 5-7.",
    )
    availability_zones: Literal[2, 3] = Field(
        2, description="How many availability zones (the first available ones, sorted)."
    )
    nat_gateways: Literal["none", "single", "perAz"] = Field(
        "single",
        description="NAT gateways: `single`, `perAz` or `none` (VPC endpoints instead; needs `loadBalancer.internal: true` and every image in private ECR).",
    )
    flow_log_retention_days: int = Field(30, ge=1, description="Days VPC flow logs are kept.")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a network CIDR ({exc}); use e.g. 10.0.0.0/16"
            ) from None
        if net.version != 4 or not 16 <= net.prefixlen <= 24:
            raise ValueError(
                f"{value} must be an IPv4 CIDR from /16 to /24 (subnets are /prefix+3)"
            )
        if not net.is_private:
            raise ValueError(
                f"{value} is not a private range; use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        return value


class WafConfig(Model):
    """The platform's WAF baseline: AWS managed rule groups and a per-IP rate limit."""

    rate_limit: int = Field(
        2000,
        ge=10,
        le=2000000000,
        description="Requests one client IP may send in 5 minutes before WAF blocks it.",
    )


class LoadBalancerConfig(Model):
    """Application Load Balancer: production listener (80/443) and a closed test listener."""

    certificate_arn: str | None = Field(
        None,
        description="ACM certificate: HTTPS on 443 with `sslPolicy` and an HTTP to HTTPS redirect; the test listener uses HTTPS too. Omitted: HTTP only.",
    )
    domain_name: str | None = Field(
        None,
        description="DNS name the certificate covers, pointing at the load balancer; required with `certificateArn`.",
    )
    ssl_policy: str = Field(
        "ELBSecurityPolicy-TLS13-1-2-2021-06", description="TLS policy of the HTTPS listeners."
    )
    test_listener_port: int = Field(
        8443,
        ge=1,
        le=65535,
        description="Port of the test listener used for blue/green validation (not 80 or 443).",
    )
    test_listener_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the test listener; empty keeps it closed; `0.0.0.0/0` is refused.",
    )
    deletion_protection: Flag = Field(False, description="Load balancer deletion protection.")
    idle_timeout_seconds: int = Field(60, ge=1, le=4000, description="Load balancer idle timeout.")
    hosted_zone: str | None = Field(
        None,
        description="Route 53 hosted zone (id `Z...` or public zone name): alias records for `domainName` and the host headers in the zone; with `domainName` and no `certificateArn`, a DNS-validated ACM certificate. Omitted: no DNS records.",
    )
    web_acl_arn: str | None = Field(
        None,
        description="An existing regional WAFv2 web ACL to associate with the load balancer; not with `waf`.",
    )
    waf: WafConfig | None = Field(
        None,
        description="Create a WAF web ACL (AWS common, known-bad-inputs and IP-reputation rules, a rate limit) for the load balancer; not with `webAclArn`. Omitted: no WAF (it costs money per month).",
    )
    internal: Flag = Field(
        False,
        description="Put the load balancer in the private subnets (not reachable from the internet); the validation hook reaches it inside the VPC.",
    )
    client_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs the production listeners of an internal load balancer admit; only with `internal: true`. Omitted: the VPC CIDR.",
    )

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is not None and not ACM_ARN.match(value):
            raise ValueError(
                f"{value!r} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
            )
        return value

    @field_validator("domain_name")
    @classmethod
    def _domain(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not DNS_NAME.match(value):
            raise ValueError(f"{value!r} is not a DNS name (e.g. shop.example.com)")
        return value

    @model_validator(mode="after")
    def _https_needs_a_name(self) -> LoadBalancerConfig:
        if self.certificate_arn and not self.domain_name:
            raise Problems(
                [
                    (
                        "domainName",
                        "required with certificateArn: a name the certificate covers, pointing at the load balancer (URLs and the validation hook use it)",
                    )
                ]
            )
        return self

    @field_validator("hosted_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and not (is_zone_id(value) or DNS_NAME.match(value.rstrip("."))):
            raise ValueError(
                f"{value!r} is neither a hosted zone id (Z0123456789ABC) nor a zone name (example.com)"
            )
        return value.rstrip(".") if value else value

    @field_validator("web_acl_arn")
    @classmethod
    def _web_acl(cls, value: str | None) -> str | None:
        if value is not None and not WEB_ACL_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a regional WAFv2 web ACL ARN (arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)"
            )
        return value

    @field_validator("client_cidrs")
    @classmethod
    def _client_cidrs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and not info.data.get("internal"):
            raise ValueError(
                "only for an internal load balancer (internal: true); a public one admits the world on 80/443"
            )
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR; use e.g. 10.0.0.0/8") from None
            if net.version != 4:
                raise ValueError(f"{cidr} is not an IPv4 CIDR; the load balancer's rules are IPv4")
            if net.prefixlen == 0:
                raise ValueError(
                    f"{cidr} admits every address; use internal: false for a public load balancer"
                )
        return value

    @model_validator(mode="after")
    def _one_waf(self) -> LoadBalancerConfig:
        if self.web_acl_arn and self.waf:
            raise Problems(
                [
                    (
                        "waf",
                        "give either webAclArn (an existing web ACL) or waf (create one), not both",
                    )
                ]
            )
        return self

    @field_validator("test_listener_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if value in (80, 443):
            raise ValueError(f"{value} is a production port; pick another (default 8443)")
        return value

    @field_validator("test_listener_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR; use e.g. 10.0.0.0/16") from None
            if net.prefixlen == 0:
                raise ValueError(
                    f"{cidr} opens the test listener to the world; list your VPN or office CIDRs"
                )
        return value

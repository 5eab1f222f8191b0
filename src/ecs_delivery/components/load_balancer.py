"""Application Load Balancer with a production and a test listener and blue/green target groups."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ecs_delivery.components.access_logs import ALB_ACCESS_PREFIX, ALB_CONNECTION_PREFIX, AccessLogs
from ecs_delivery.components.args import checked, from_config
from ecs_delivery.components.config import (
    HealthCheckConfig,
    LoadBalancerConfig,
    RoutingConfig,
    ServiceConfig,
)
from ecs_delivery.components.naming import TYPE_PREFIX

WORLD = "0.0.0.0/0"


@checked
@dataclass(frozen=True, kw_only=True)
class HealthCheck:
    """The target groups' health check of one service (services.<name>.healthCheck)."""

    path: str = from_config(HealthCheckConfig, "path")
    matcher: str = from_config(HealthCheckConfig, "matcher")
    interval_seconds: int = from_config(HealthCheckConfig, "interval_seconds")
    timeout_seconds: int = from_config(HealthCheckConfig, "timeout_seconds")
    healthy_threshold: int = from_config(HealthCheckConfig, "healthy_threshold")
    unhealthy_threshold: int = from_config(HealthCheckConfig, "unhealthy_threshold")


@checked
@dataclass(frozen=True, kw_only=True)
class ServiceRoute:
    """One service's target groups and how the listeners reach them."""

    name: str
    port: int
    health_check: HealthCheck = from_config(ServiceConfig, "health_check", HealthCheck)
    deregistration_delay_seconds: int = from_config(ServiceConfig, "deregistration_delay_seconds")
    path_patterns: list[str]
    host_headers: list[str] = from_config(RoutingConfig, "host_headers")
    priority: int


@dataclass(frozen=True, kw_only=True)
class ExistingLoadBalancer:
    """An ALB made elsewhere, with its two listeners: only target groups and rules are added.

    Its security group must admit the world on the production listener and only the
    validation hook (or your CIDRs) on the test listener: the component adds no rule to it.
    """

    arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    production_listener_arn: pulumi.Input[str]
    test_listener_arn: pulumi.Input[str]
    dns_name: pulumi.Input[str]
    # Whether the listeners speak HTTPS (the URLs say so).
    https: bool
    # Its canonical hosted zone id, for alias records (loadBalancer.hostedZone); None: no records.
    zone_id: pulumi.Input[str] | None = None


def arn_suffix(load_balancer_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """`app/<name>/<id>`, what CloudWatch's LoadBalancer dimension names."""
    return pulumi.Output.from_input(load_balancer_arn).apply(
        lambda arn: arn.split(":loadbalancer/", 1)[1]
    )


@checked
@dataclass(frozen=True, kw_only=True)
class LoadBalancerArgs:
    """The ALB with its production and test listeners and each service's blue/green target groups."""

    vpc_id: pulumi.Input[str]
    services: list[ServiceRoute]
    # Bring your own: an existing ALB and listeners (None: the component creates them). Then
    # only vpc_id, services, test_listener_port and domain_name are used.
    existing: ExistingLoadBalancer | None = None
    # For a created ALB: its public subnets, and the VPC CIDR its targets live in.
    vpc_cidr: pulumi.Input[str] | None = None
    public_subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    # An ARN, or a CertificateValidation's output so the HTTPS listeners wait for issuance.
    certificate_arn: pulumi.Input[str] | None = from_config(LoadBalancerConfig, "certificate_arn")
    ssl_policy: str = from_config(LoadBalancerConfig, "ssl_policy")
    test_listener_port: int = from_config(LoadBalancerConfig, "test_listener_port")
    test_listener_cidrs: list[str] = from_config(LoadBalancerConfig, "test_listener_cidrs")
    # The VPC's NAT addresses, so probes from inside the VPC (the validation hook) get in.
    test_listener_nat_ips: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # A name covered by the certificate that resolves to this load balancer (HTTPS test URL).
    domain_name: str | None = from_config(LoadBalancerConfig, "domain_name")
    deletion_protection: bool = from_config(LoadBalancerConfig, "deletion_protection")
    idle_timeout_seconds: int = from_config(LoadBalancerConfig, "idle_timeout_seconds")
    # Access and connection logs (accessLogs config); None: none.
    access_logs: AccessLogs | None
    # Internal: in `private_subnet_ids`, production listeners open to `client_cidrs` only.
    internal: bool = from_config(LoadBalancerConfig, "internal")
    private_subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    client_cidrs: list[str] = from_config(LoadBalancerConfig, "client_cidrs")
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetGroupPair:
    blue: aws.lb.TargetGroup
    green: aws.lb.TargetGroup
    production_rule: aws.lb.ListenerRule
    test_rule: aws.lb.ListenerRule


class LoadBalancer(pulumi.ComponentResource):
    """ALB: 80/443 open to the world (internal: to its clients), the test listener only to the
    configured CIDRs."""

    # Created or given: what other components use.
    arn: pulumi.Input[str]
    arn_suffix: pulumi.Output[str]
    security_group_id: pulumi.Input[str]
    production_listener_arn: pulumi.Input[str]
    test_listener_arn: pulumi.Input[str]
    dns_name: pulumi.Input[str]
    target_groups: dict[str, TargetGroupPair]
    # The created ones; None with an existing load balancer.
    alb: aws.lb.LoadBalancer | None
    security_group: aws.ec2.SecurityGroup | None
    production_listener: aws.lb.Listener | None
    test_listener: aws.lb.Listener | None

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        subnets = args.private_subnet_ids if args.internal else args.public_subnet_ids
        if args.existing is None and (args.vpc_cidr is None or not subnets):
            kind = "private_subnet_ids (internal)" if args.internal else "public_subnet_ids"
            raise ValueError(
                f"LoadBalancer {name!r}: a created load balancer needs vpc_cidr and "
                f"{kind}; pass them, or an existing load balancer (existing=...)"
            )
        super().__init__(f"{TYPE_PREFIX}:load-balancer:LoadBalancer", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        if args.existing is not None:
            self._adopt(args.existing)
        else:
            self._create(args.certificate_arn is not None)
        self.target_groups = {route.name: self._create_route(route) for route in args.services}
        https = args.existing.https if args.existing else args.certificate_arn is not None
        scheme = "https" if https else "http"
        host = args.domain_name or self.dns_name
        self.url = pulumi.Output.concat(scheme, "://", host)
        self.test_url = pulumi.Output.concat(scheme, "://", host, f":{args.test_listener_port}")
        self.register_outputs(
            {
                "dnsName": self.dns_name,
                "productionListenerArn": self.production_listener_arn,
                "testListenerArn": self.test_listener_arn,
                "securityGroupId": self.security_group_id,
            }
        )

    def _adopt(self, existing: ExistingLoadBalancer) -> None:
        self.alb = self.security_group = self.production_listener = self.test_listener = None
        self.arn = existing.arn
        self.arn_suffix = arn_suffix(existing.arn)
        self.security_group_id = existing.security_group_id
        self.production_listener_arn = existing.production_listener_arn
        self.test_listener_arn = existing.test_listener_arn
        self.dns_name = existing.dns_name
        self.zone_id = existing.zone_id

    def _create(self, https: bool) -> None:
        args, name = self._args, self._name
        self.security_group = self._create_security_group(https)
        self.security_group_id = self.security_group.id
        self.alb = aws.lb.LoadBalancer(
            name,
            load_balancer_type="application",
            internal=args.internal,
            subnets=args.private_subnet_ids if args.internal else args.public_subnet_ids,
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.deletion_protection,
            idle_timeout=args.idle_timeout_seconds,
            desync_mitigation_mode="defensive",
            **self._logs(args.access_logs),
            # With a web ACL, a WAF outage fails closed: requests are not let through unchecked.
            enable_waf_fail_open=False,
            tags=args.tags,
            # ELB checks that it may write to the bucket when logging is turned on.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=args.access_logs.depends_on if args.access_logs else []
            ),
        )
        self.arn = self.alb.arn
        self.arn_suffix = self.alb.arn_suffix
        self.dns_name = self.alb.dns_name
        self.zone_id = self.alb.zone_id
        self.production_listener = self._create_production_listeners(https)
        self.test_listener = self._listener(
            f"{name}-test", args.test_listener_port, https, self._not_found()
        )
        self.production_listener_arn = self.production_listener.arn
        self.test_listener_arn = self.test_listener.arn

    @staticmethod
    def _logs(logs: AccessLogs | None) -> dict[str, object]:
        if logs is None:
            return {}
        return {
            "access_logs": aws.lb.LoadBalancerAccessLogsArgs(
                bucket=logs.bucket, prefix=ALB_ACCESS_PREFIX, enabled=True
            ),
            "connection_logs": aws.lb.LoadBalancerConnectionLogsArgs(
                bucket=logs.bucket, prefix=ALB_CONNECTION_PREFIX, enabled=True
            ),
        }

    @staticmethod
    def _not_found() -> aws.lb.ListenerDefaultActionArgs:
        return aws.lb.ListenerDefaultActionArgs(
            type="fixed-response",
            fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                content_type="text/plain", message_body="not found", status_code="404"
            ),
        )

    def _create_security_group(self, https: bool) -> aws.ec2.SecurityGroup:
        args = self._args
        group = aws.ec2.SecurityGroup(
            f"{self._name}-alb",
            vpc_id=args.vpc_id,
            description=(
                "Internal listeners of the load balancer; test listener from listed CIDRs only"
                if args.internal
                else "Public listeners of the load balancer; test listener from listed CIDRs only"
            ),
            tags={**args.tags, "Name": f"{self._name}-alb"},
            opts=self._child,
        )
        public_ports = [80, 443] if https else [80]
        if args.internal:
            self._internal_ingress(group, public_ports)
        world_ports = [] if args.internal else public_ports
        for port in world_ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-alb-{port}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=WORLD,
                description=f"Public listener {port}",
                opts=self._child,
            )
        for cidr in args.test_listener_cidrs:
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-alb-test-{cidr.replace('/', '-').replace(':', '-')}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=args.test_listener_port,
                to_port=args.test_listener_port,
                cidr_ipv4=cidr,
                description="Test listener for blue/green validation",
                opts=self._child,
            )
        for az, ip in sorted(args.test_listener_nat_ips.items()):
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-alb-test-nat-{az}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=args.test_listener_port,
                to_port=args.test_listener_port,
                cidr_ipv4=pulumi.Output.concat(ip, "/32"),
                description=f"Test listener from the NAT gateway in {az} (validation hook)",
                opts=self._child,
            )
        # Targets live in the VPC: the load balancer needs to reach nothing else.
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-alb-to-vpc",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=0,
            to_port=65535,
            cidr_ipv4=args.vpc_cidr,
            description="Health checks and traffic to targets in the VPC",
            opts=self._child,
        )
        return group

    def _internal_ingress(self, group: aws.ec2.SecurityGroup, ports: list[int]) -> None:
        """An internal load balancer's production ports: its clients' CIDRs, never the world."""
        for cidr in self._args.client_cidrs or [self._args.vpc_cidr]:
            for port in ports:
                aws.vpc.SecurityGroupIngressRule(
                    f"{self._name}-alb-{port}-{cidr.replace('/', '-')}",
                    security_group_id=group.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    description=f"Internal listener {port}",
                    opts=self._child,
                )

    def _listener(
        self, name: str, port: int, https: bool, default_action: aws.lb.ListenerDefaultActionArgs
    ) -> aws.lb.Listener:
        return aws.lb.Listener(
            name,
            load_balancer_arn=self.alb.arn,
            port=port,
            protocol="HTTPS" if https else "HTTP",
            ssl_policy=self._args.ssl_policy if https else None,
            certificate_arn=self._args.certificate_arn if https else None,
            default_actions=[default_action],
            tags=self._args.tags,
            opts=self._child,
        )

    def _create_production_listeners(self, https: bool) -> aws.lb.Listener:
        if not https:
            return self._listener(f"{self._name}-http", 80, False, self._not_found())
        aws.lb.Listener(
            f"{self._name}-http-redirect",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        port="443", protocol="HTTPS", status_code="HTTP_301"
                    ),
                )
            ],
            tags=self._args.tags,
            opts=self._child,
        )
        return self._listener(f"{self._name}-https", 443, True, self._not_found())

    def _target_group(self, route: ServiceRoute, color: str) -> aws.lb.TargetGroup:
        hc = route.health_check
        return aws.lb.TargetGroup(
            f"{self._name}-{route.name}-{color}",
            vpc_id=self._args.vpc_id,
            target_type="ip",
            protocol="HTTP",
            port=route.port,
            deregistration_delay=route.deregistration_delay_seconds,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                protocol="HTTP",
                port="traffic-port",
                path=hc.path,
                matcher=hc.matcher,
                interval=hc.interval_seconds,
                timeout=hc.timeout_seconds,
                healthy_threshold=hc.healthy_threshold,
                unhealthy_threshold=hc.unhealthy_threshold,
            ),
            tags={**self._args.tags, "Service": route.name, "Color": color},
            opts=self._child,
        )

    def _create_route(self, route: ServiceRoute) -> TargetGroupPair:
        blue = self._target_group(route, "blue")
        green = self._target_group(route, "green")
        conditions = []
        if route.path_patterns:
            conditions.append(
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(
                        values=route.path_patterns
                    )
                )
            )
        if route.host_headers:
            conditions.append(
                aws.lb.ListenerRuleConditionArgs(
                    host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(
                        values=route.host_headers
                    )
                )
            )

        def rule(listener_arn: pulumi.Input[str], kind: str) -> aws.lb.ListenerRule:
            # CodeDeploy swaps the forwarded target group on every deployment; Pulumi must
            # never swap it back, so the action belongs to CodeDeploy after creation.
            return aws.lb.ListenerRule(
                f"{self._name}-{route.name}-{kind}",
                listener_arn=listener_arn,
                priority=route.priority,
                conditions=conditions,
                actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=blue.arn)],
                tags={**self._args.tags, "Service": route.name},
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["actions"]),
            )

        return TargetGroupPair(
            blue=blue,
            green=green,
            production_rule=rule(self.production_listener_arn, "production"),
            test_rule=rule(self.test_listener_arn, "test"),
        )

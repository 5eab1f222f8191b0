"""Service Connect for the services on ECS's own controller (deployment.engine ecs): one
namespace per stack (created, or the given one) and one client security group that every
Service Connect task carries and every Service Connect service admits its port from."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ecs_delivery.components.config import ServiceConfig, StackConfig
from ecs_delivery.components.fargate_service import ServiceConnect


@dataclass(frozen=True, kw_only=True)
class Mesh:
    """What the stack's Service Connect services share."""

    namespace_arn: pulumi.Input[str]
    client_security_group_id: pulumi.Input[str]


def create_mesh(
    cfg: StackConfig,
    *,
    name_prefix: str,
    vpc_id: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions | None = None,
) -> Mesh | None:
    """The namespace and the client group, once a service enables Service Connect (the schema
    admits it only on the ECS engine); None otherwise."""
    if not any(s.service_connect.enabled for s in cfg.services.values()):
        return None
    namespace_arn = cfg.service_connect.namespace_arn or (
        aws.servicediscovery.HttpNamespace(
            "service-connect",
            name=name_prefix,
            description=f"Service Connect namespace of {name_prefix}'s services",
            tags=tags,
            opts=opts,
        ).arn
    )
    # No rules of its own (the provider drops AWS's default egress): the group only marks
    # the callers; the tasks' own groups say where they may connect.
    clients = aws.ec2.SecurityGroup(
        "service-connect-clients",
        vpc_id=vpc_id,
        description=f"Service Connect clients of {name_prefix}: admitted by the services' groups",
        tags={**tags, "Name": f"{name_prefix}-service-connect-clients"},
        opts=opts,
    )
    return Mesh(namespace_arn=namespace_arn, client_security_group_id=clients.id)


def for_service(mesh: Mesh | None, name: str, svc: ServiceConfig) -> ServiceConnect | None:
    """The service's Service Connect settings, its name and containerPort where none is given."""
    sc = svc.service_connect
    if mesh is None or not sc.enabled:
        return None
    return ServiceConnect(
        namespace=mesh.namespace_arn,
        discovery_name=sc.discovery_name or name,
        dns_name=sc.dns_name or name,
        port=sc.port or svc.container_port,
        client_security_group_id=mesh.client_security_group_id,
    )

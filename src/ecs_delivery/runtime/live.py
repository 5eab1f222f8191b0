"""What a CodeDeploy-controlled ECS service runs now: the one answer every deployer uses.

The rollout of a `pulumi up`, the pipeline's deploy step and the release engine all read the
running revision here, immediately before they deploy, so that each overlays only the fields
it owns onto what runs at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class NotRunningError(Exception):
    """The service reports no revision: there is nothing to read what runs from."""


@dataclass(frozen=True)
class Running:
    """What serves traffic: the PRIMARY task set's revision, network, platform and
    capacity providers."""

    task_definition_arn: str
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool = False
    platform_version: str | None = None
    # (provider, weight, base) of the capacity provider strategy, by provider; () a launch type.
    capacity_providers: tuple[tuple[str, int, int], ...] = ()
    # Task sets other than the PRIMARY one: a deployment is moving traffic right now.
    other_task_sets: tuple[str, ...] = field(default=())


def running_task_definition(service: Mapping[str, Any]) -> str:
    """The revision a service runs: its PRIMARY task set's, else the service's own field.

    With the CODE_DEPLOY controller, CodeDeploy's task sets carry the truth; the service's
    taskDefinition is the fallback for a service that has none yet.
    """
    return running(service).task_definition_arn


def _primary(service: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for task_set in service.get("taskSets") or []:
        if task_set.get("status") == "PRIMARY" and task_set.get("taskDefinition"):
            return task_set
    return None


def running(service: Mapping[str, Any]) -> Running:
    """`Running` of one DescribeServices `services[]` entry."""
    primary = _primary(service)
    source: Mapping[str, Any] = primary if primary is not None else service
    arn = source.get("taskDefinition")
    if not arn:
        raise NotRunningError(
            f"ECS service {service.get('serviceName', '?')} reports no task definition and no "
            "PRIMARY task set; cannot tell what it runs (wait for its deployment to finish)"
        )
    network = (source.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    others = tuple(
        str(task_set.get("id") or task_set.get("taskSetArn") or "?")
        for task_set in service.get("taskSets") or []
        if task_set is not primary and task_set.get("status") != "DRAINING"
    )
    return Running(
        task_definition_arn=str(arn),
        subnets=tuple(sorted(network.get("subnets") or [])),
        security_groups=tuple(sorted(network.get("securityGroups") or [])),
        assign_public_ip=network.get("assignPublicIp") == "ENABLED",
        platform_version=source.get("platformVersion"),
        capacity_providers=strategy(
            (p.get("capacityProvider"), p.get("weight", 0), p.get("base", 0))
            for p in source.get("capacityProviderStrategy") or []
        ),
        other_task_sets=others,
    )


def strategy(entries: Any) -> tuple[tuple[str, int, int], ...]:
    """A capacity provider strategy as (provider, weight, base), in one order to compare."""
    return tuple(sorted((str(p), int(w), int(b)) for p, w, b in entries))

"""Reading the running stack's configuration: the only module that reads `pulumi.Config`."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pydantic import ValidationError

from ecs_delivery.components.config import checks
from ecs_delivery.components.config.errors import ConfigError, typo_cascade, validation_problems
from ecs_delivery.components.config.stack import StackConfig

NAMESPACE = "ecs-delivery"


def parse(raw: dict[str, Any]) -> StackConfig:
    """Validate the `ecs-delivery:` keys of a stack (namespace stripped); raise ConfigError listing every problem."""
    problems = checks.raw_problems(raw)
    try:
        parsed = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, StackConfig))
        raise ConfigError(typo_cascade(problems)) from None
    if problems:
        raise ConfigError(problems)
    return parsed


def _raw_namespace_config() -> dict[str, Any]:
    """All `ecs-delivery:*` keys of the running stack, JSON values decoded."""
    from pulumi.runtime.config import CONFIG  # the only enumerable view of stack config

    raw: dict[str, Any] = {}
    for key, value in CONFIG.get().items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            raw[name] = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raw[name] = value
    return raw


def load() -> StackConfig:
    """Read and validate the current stack's configuration (and the AWS region it needs)."""
    raw = _raw_namespace_config()
    problems = checks.region_problems(pulumi.Config("aws").get("region"), raw.get("allowedRegions"))
    try:
        parsed = parse(raw)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return parsed


def aws_settings() -> dict[str, str | None]:
    """Region, profile and assumed role from the stack's `aws:` configuration."""
    aws = pulumi.Config("aws")
    role = aws.get_object("assumeRoles") or aws.get_object("assumeRole")
    if isinstance(role, list):
        role = role[0] if role else None
    return {
        "region": aws.get("region"),
        "profile": aws.get("profile"),
        "role_arn": (role or {}).get("roleArn") if isinstance(role, dict) else None,
    }

"""Reading the running stack's configuration: the only module that reads `pulumi.Config`."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
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


@cache
def _aws_settings() -> frozenset[str]:
    """The aws provider's config keys, from the installed SDK (plus `assumeRole`, which
    older providers read and aws_settings() still does)."""
    import inspect

    import pulumi_aws.config as aws_config

    names = {
        re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
        for name, _ in inspect.getmembers(
            aws_config.vars._ExportableConfig, lambda o: isinstance(o, property)
        )
    }
    return frozenset(names | {"assumeRole"})


def key_problems(keys: list[str]) -> list[str]:
    """Keys no one reads: an unknown aws: setting, or a namespace that is a typo of ours
    (other namespaces belong to other providers, e.g. awsx, and are left alone)."""
    problems = []
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace == "aws" and name not in _aws_settings():
            close = difflib.get_close_matches(name, sorted(_aws_settings()), n=1)
            hint = f"; did you mean aws:{close[0]}?" if close else " (see the pulumi-aws docs)"
            problems.append(f"{key}: not a setting of the aws provider{hint}")
        elif namespace not in (NAMESPACE, "aws") and (
            meant := difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.75)
        ):
            problems.append(
                f"{key}: no namespace {namespace!r} is read by this program; "
                f"did you mean {meant[0]}:{name}?"
            )
    return problems


def load() -> StackConfig:
    """Read and validate the current stack's configuration (and the AWS region it needs)."""
    from pulumi.runtime.config import CONFIG

    raw = _raw_namespace_config()
    problems = key_problems(list(CONFIG.get()))
    problems += checks.region_problems(
        pulumi.Config("aws").get("region"), raw.get("allowedRegions")
    )
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

"""The moto world and ECS service deployments (tests/support/ecs_deployments.py)."""

from tests.support.ecs_deployments import ecs  # noqa: F401
from tests.support.moto_world import aws_env, clock  # noqa: F401

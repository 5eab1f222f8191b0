"""The moto world (tests/support/moto_world.py): fake environment, clock, deployed service."""

from tests.support.ecs_deployments import ecs  # noqa: F401, E402 (issue 19's ECS engine)
from tests.support.moto_world import aws_env, clock, world  # noqa: F401

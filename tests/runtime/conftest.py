"""The moto world (tests/support/moto_world.py): fake environment, clock, deployed service."""

from tests.support.moto_world import aws_env, clock, world  # noqa: F401

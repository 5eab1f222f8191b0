"""EngineConfig refuses numbers a release could never finish with (issue 15: `nan` timeouts
and poll intervals hung `release apply`; the Lambda steps build the config from environment
variables, where no CLI check runs first)."""

from __future__ import annotations

import math

import pytest

from ecs_delivery.runtime.release.engine import EngineConfig


@pytest.mark.parametrize(
    "field", ["poll_seconds", "deployment_timeout_seconds", "register_rate", "start_grace_seconds"]
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_a_number_that_is_not_finite_or_is_negative_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        EngineConfig(**{field: value})


def test_the_defaults_are_accepted():
    assert EngineConfig().poll_seconds == 15.0

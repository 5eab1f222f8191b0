"""`make plan CONFIG=...` overrides: a dotted key sets one value inside the stack file's."""

from __future__ import annotations

import pytest

from ecs_delivery.offline.plan import PlanError, _override


def test_a_dotted_key_sets_one_nested_value_and_keeps_its_siblings():
    values = {"ecs-delivery:network": {"cidr": "10.20.0.0/16", "natGateways": "single"}}
    _override(values, "ecs-delivery:network.natGateways", "none")
    assert values == {"ecs-delivery:network": {"cidr": "10.20.0.0/16", "natGateways": "none"}}


def test_a_dotted_key_creates_missing_mappings_and_leaves_the_original_untouched():
    original = {"web": {"containerPort": 8080}}
    values = {"ecs-delivery:services": original}
    _override(values, "ecs-delivery:services.web.routing.hostHeaders", ["a.example.com"])
    assert values["ecs-delivery:services"]["web"] == {
        "containerPort": 8080,
        "routing": {"hostHeaders": ["a.example.com"]},
    }
    assert original == {"web": {"containerPort": 8080}}


def test_a_plain_key_replaces_the_whole_value():
    values = {"ecs-delivery:network": {"cidr": "10.20.0.0/16"}}
    _override(values, "ecs-delivery:network", {"natGateways": "none"})
    assert values == {"ecs-delivery:network": {"natGateways": "none"}}


def test_a_dotted_key_through_a_scalar_is_a_plan_error():
    values = {"ecs-delivery:network": {"cidr": "10.20.0.0/16"}}
    with pytest.raises(PlanError, match="cidr is not a mapping"):
        _override(values, "ecs-delivery:network.cidr.x", 1)

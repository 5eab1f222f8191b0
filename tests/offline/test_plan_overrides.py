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


def test_a_json_object_on_the_command_line_sets_only_the_keys_it_names():
    """Issue 16, problem 4: `-c 'network={"availabilityZones": 3}'` (the README's example)
    reset the network's other keys (its CIDR) to their defaults."""
    from ecs_delivery.offline.plan import _parse_overrides

    overrides = _parse_overrides(['network={"availabilityZones": 3, "nat": {"mode": "single"}}'])
    values = {"ecs-delivery:network": {"cidr": "10.20.0.0/16", "availabilityZones": 2}}
    for key, value in overrides.items():
        _override(values, f"ecs-delivery:{key}", value)

    assert values == {
        "ecs-delivery:network": {
            "cidr": "10.20.0.0/16",
            "availabilityZones": 3,
            "nat": {"mode": "single"},
        }
    }


def test_an_empty_json_object_on_the_command_line_still_empties_the_block():
    from ecs_delivery.offline.plan import _parse_overrides

    assert _parse_overrides(["scheduledTasks={}"]) == {"scheduledTasks": {}}


def test_an_upstream_stack_without_a_stack_file_is_named_with_its_key_and_line(tmp_path):
    import shutil

    from ecs_delivery.offline.plan import ROOT, run

    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    text = (tmp_path / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(
        text.replace("config:\n", "config:\n  ecs-delivery:upstreamStack: qa\n", 1)
    )
    with pytest.raises(PlanError) as error:
        run("dev", root=tmp_path)
    assert str(error.value) == (
        "Pulumi.dev.yaml:3: upstreamStack: no stack file Pulumi.qa.yaml for the upstream stack "
        "(known stacks: dev); name a stack of this project, or give its outputs with --live "
        "(stacks: {qa: {...}})"
    )

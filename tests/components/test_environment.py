"""The DeliveryEnvironment component: the parent of everything a stack builds."""

from __future__ import annotations

from pathlib import Path

from ecs_delivery.components.environment import TYPE

ROOT = Path(__file__).resolve().parents[2]


def test_every_resource_of_the_dev_plan_descends_from_the_delivery_environment(dev_plan):
    by_urn = {r.urn: r for r in dev_plan.resources}
    (environment,) = [r for r in dev_plan.resources if r.type == TYPE]

    def ancestors(urn: str) -> list[str]:
        found = []
        while urn in by_urn:
            urn = by_urn[urn].parent
            found.append(urn)
        return found

    outside = [
        f"{r.type} {r.name}"
        for r in dev_plan.resources
        if r is not environment and environment.urn not in ancestors(r.urn)
    ]
    assert outside == []
    assert len(dev_plan.resources) > 100


def test_the_environments_direct_children_keep_their_urns_through_an_alias_to_the_stack(
    dev_plan,
):
    (environment,) = [r for r in dev_plan.resources if r.type == TYPE]
    children = [r for r in dev_plan.resources if r.parent == environment.urn]
    assert children
    assert [
        r.name for r in children if not any("noParent: true" in a for a in r.options["aliases"])
    ] == []


def test_the_program_is_at_most_30_lines():
    lines = (ROOT / "__main__.py").read_text().splitlines()
    assert len(lines) <= 30, len(lines)

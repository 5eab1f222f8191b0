"""Listener-rule priorities stay unique on one listener at 500 and 1000 services.

Priorities were CRC32 of the name alone, so at 500 services svc207 and svc438 got the same
number and the plan refused (AWS refuses two rules of one priority on a listener).
"""

from __future__ import annotations

import pytest

from ecs_delivery.components import config, priorities
from tests.components.test_release import _many_services


def _routings(count: int) -> dict[str, dict]:
    return {name: svc["routing"] for name, svc in _many_services(count).items()}


@pytest.mark.parametrize("count", [500, 1000])
def test_every_service_gets_its_own_priority_and_only_a_collision_moves_one(count):
    assigned = priorities.listener_priorities(_routings(count))
    assert len(set(assigned.values())) == count
    assert all(1000 <= p < 50000 for p in assigned.values())
    # A service whose hashed number no name before it (in name order) has keeps that number.
    moved = [n for n, p in assigned.items() if p != priorities.derived_priority(n)]
    firsts: dict[int, str] = {}
    for name in sorted(assigned):
        firsts.setdefault(priorities.derived_priority(name), name)
    assert moved and all(firsts[priorities.derived_priority(n)] != n for n in moved)
    assert "svc438" in moved and assigned["svc207"] == priorities.derived_priority("svc207")


def test_adding_a_service_moves_no_priority_of_the_others_unless_it_takes_their_number():
    before = priorities.listener_priorities(_routings(500))
    after = priorities.listener_priorities({**_routings(500), "zz-new": {"pathPatterns": ["/z/*"]}})
    assert {n: after[n] for n in before} == before


def test_explicit_and_catch_all_priorities_are_kept_and_derived_ones_step_around_them():
    taken = priorities.derived_priority("svc001")
    assigned = priorities.listener_priorities(
        {
            "pinned": {"pathPatterns": ["/p/*"], "priority": taken},
            "svc001": {"pathPatterns": ["/s/*"]},
            "web": {"pathPatterns": ["/*"]},
        }
    )
    assert assigned == {"pinned": taken, "svc001": taken + 1, "web": 50000}


def test_todays_derived_priorities_are_unchanged_where_names_do_not_collide():
    assert priorities.derived_priority("admin") == config.derived_priority("admin")


@pytest.mark.parametrize("count", [500, 1000])
def test_a_stack_of_many_services_is_accepted_with_unique_priorities(count):
    raw = {
        "services": _many_services(count),
        "pipeline": {"source": {"provider": "codecommit", "repository": "app"}},
    }
    parsed = config.parse(raw)
    assert len(set(config.routing_priorities(parsed.services).values())) == count

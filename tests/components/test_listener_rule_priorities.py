"""Issue 16, problem 2: a service keeps its listener-rule priority when others come and go.

Priorities followed name order, so adding `admin` moved `api` from 100 to 110 in the same
`up` that created `admin` at 100 (AWS refuses a duplicate priority on a listener).
"""

from __future__ import annotations

import json

import pytest

from ecs_delivery.components import config
from ecs_delivery.offline.simcloud import plain
from tests.conftest import make_plan, upstream_outputs

RULE = "aws:lb/listenerRule:ListenerRule"
REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"


def _rules(plan) -> dict[str, str]:
    return {r.name: json.dumps(plain(r.inputs), sort_keys=True) for r in plan.of_type(RULE)}


def _with_service(stack: str, name: str, path: str) -> dict:
    services = make_plan(stack).outputs["services"]  # the stack's own services, as planned
    assert name not in services
    return {f"services.{name}": {"containerPort": 8080, "routing": {"pathPatterns": [path]}}}


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize(("name", "path"), [("admin", "/admin/*"), ("zeta", "/zeta/*")])
def test_adding_a_service_changes_no_existing_listener_rule(stack, name, path):
    # prod promotes from dev: dev builds the new service too.
    built = {n: {n: f"{REPO}/{n}@sha256:{'1' * 64}"} for n in ("api", "web", name)}
    environment = {"stacks": {"dev": upstream_outputs(built)}} if stack == "prod" else None
    before = _rules(make_plan(stack, environment=environment))
    added = _with_service(stack, name, path)
    after = _rules(make_plan(stack, environment=environment, overrides=added))

    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == [f"alb-{name}-production", f"alb-{name}-test"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_existing_stacks_keep_todays_priorities(stack):
    rules = {r.name: r.inputs["priority"] for r in make_plan(stack).of_type(RULE)}
    assert rules == {
        "alb-api-production": 100,
        "alb-api-test": 100,
        "alb-web-production": 50000,
        "alb-web-test": 50000,
    }


def test_a_derived_priority_depends_on_the_name_alone():
    one = {"admin": config.ServiceConfig(container_port=80, routing={"path_patterns": ["/a/*"]})}
    many = {
        **one,
        **{
            n: config.ServiceConfig(container_port=80, routing={"path_patterns": [f"/{n}/*"]})
            for n in ("aaa", "billing", "search")
        },
    }
    assert config.routing_priorities(one)["admin"] == config.routing_priorities(many)["admin"]
    assert config.routing_priorities(one)["admin"] == config.derived_priority("admin")


def _colliding_names() -> tuple[str, str]:
    seen: dict[int, str] = {}
    for i in range(10000):
        name = f"svc{i}"
        other = seen.setdefault(config.derived_priority(name), name)
        if other != name:
            return other, name
    raise AssertionError("no collision among 10000 names")


def test_two_names_with_the_same_derived_priority_are_accepted_the_later_one_steps_on():
    """They used to be refused (the 500-service plan hit svc207/svc438): now the name that
    sorts later takes the next free number, and the one that sorts first keeps its own."""
    first, second = _colliding_names()
    raw = {
        "services": {
            n: {"containerPort": 80, "routing": {"pathPatterns": [f"/{n}/*"]}}
            for n in (first, second)
        },
        "pipeline": {"source": {"provider": "codecommit", "repository": "app"}},
    }
    parsed = config.parse(raw)
    got = config.routing_priorities(parsed.services)
    earlier, later = sorted((first, second))
    assert got[earlier] == config.derived_priority(earlier)
    assert got[later] == config.derived_priority(later) + 1

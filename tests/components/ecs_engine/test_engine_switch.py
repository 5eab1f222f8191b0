"""Issue 19, item 3 (migration): the plan refuses to switch the engine of a stack whose
services run, unless the config accepts it (`deployment.switchEngineTo`), and says how."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError
from ecs_delivery.offline import plan as plan_tool
from tests.conftest import make_plan

RUNNING = {"services": {"api": {"serviceName": "api"}, "web": {"serviceName": "web"}}}
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/{0}@sha256:" + "a" * 64
# What the simulated cloud's ECS and tagging API report for those services.
LIVE = {"services": {n: {"containers": {n: IMAGE.format(n)}} for n in ("api", "web")}}


def _running(previous: dict) -> dict:
    return {**LIVE, "stacks": {"dev": previous}}


def _refusal(previous: dict, **overrides) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        plan_tool.run(
            "dev",
            environment=plan_tool.SimulatedEnvironment(stacks={"dev": previous}),
            overrides=overrides,
        )
    return error.value


def test_a_switch_of_a_running_codedeploy_stack_to_ecs_is_refused_naming_the_opt_in():
    # A stack from before `deploymentEngine` was exported ran CodeDeploy.
    error = _refusal(RUNNING, **{"deployment.engine": "ecs"})

    assert error.problems == [
        "deployment.engine: ecs would switch the running services api, web from codedeploy, "
        "changing each one's deployment controller; set deployment.switchEngineTo: ecs to "
        "accept it (README: ECS-native blue/green, migration), or keep deployment.engine: "
        "codedeploy"
    ]
    # Nothing is created: no resource is registered before the refusal.
    assert [r.type for r in error.registrations if r.custom] == []


def test_a_switch_back_to_codedeploy_is_refused_too():
    error = _refusal({**RUNNING, "deploymentEngine": "ecs"})
    assert error.problems[0].startswith("deployment.engine: codedeploy would switch")


def test_the_opt_in_names_the_engine_it_allows_and_nothing_else():
    # Left committed after the switch to ecs, it does not let a switch back through.
    error = _refusal({**RUNNING, "deploymentEngine": "ecs"}, **{"deployment.switchEngineTo": "ecs"})
    assert "set deployment.switchEngineTo: codedeploy" in error.problems[0]


def test_with_the_opt_in_the_switch_plans_and_records_the_new_engine():
    plan = make_plan(
        "dev",
        environment=_running(RUNNING),
        overrides={"deployment.engine": "ecs", "deployment.switchEngineTo": "ecs"},
    )
    assert plan.outputs["deploymentEngine"] == "ecs"


def test_a_new_stack_or_an_unchanged_engine_plans_without_the_opt_in():
    assert (
        make_plan("dev", overrides={"deployment.engine": "ecs"}).outputs["deploymentEngine"]
        == "ecs"
    )
    same = make_plan(
        "dev",
        environment=_running({**RUNNING, "deploymentEngine": "ecs"}),
        overrides={"deployment.engine": "ecs"},
    )
    assert same.outputs["deploymentEngine"] == "ecs"

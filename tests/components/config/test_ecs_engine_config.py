"""Issue 19, item 1: `deployment.engine` and the mapping of the deployment config to ECS's
own blue/green (strategy, step share and bake)."""

from __future__ import annotations

import pytest

from ecs_delivery.components import config
from ecs_delivery.components.config import ConfigError
from ecs_delivery.components.config.delivery import EcsStrategy

SOURCE = {"source": {"provider": "codecommit", "repository": "app"}}
SERVICES = {"web": {"containerPort": 8080}}


def _parse(**deployment):
    return config.parse(
        {
            "services": SERVICES,
            "pipeline": {**SOURCE, "buildTimeoutMinutes": 120},
            "deployment": deployment,
        }
    )


def test_the_engine_defaults_to_codedeploy():
    assert _parse().deployment.engine == "codedeploy"


@pytest.mark.parametrize(
    ("name", "custom", "expected"),
    [
        ("CodeDeployDefault.ECSAllAtOnce", None, EcsStrategy("BLUE_GREEN")),
        ("CodeDeployDefault.ECSCanary10Percent5Minutes", None, EcsStrategy("CANARY", 10, 5)),
        ("CodeDeployDefault.ECSCanary10Percent15Minutes", None, EcsStrategy("CANARY", 10, 15)),
        ("CodeDeployDefault.ECSLinear10PercentEvery1Minutes", None, EcsStrategy("LINEAR", 10, 1)),
        ("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", None, EcsStrategy("LINEAR", 10, 3)),
        (
            "steps",
            {"type": "linear", "percent": 25, "intervalMinutes": 4},
            EcsStrategy("LINEAR", 25, 4),
        ),
        (
            "bird",
            {"type": "canary", "percent": 20, "intervalMinutes": 7},
            EcsStrategy("CANARY", 20, 7),
        ),
    ],
)
def test_each_deployment_config_maps_to_one_ecs_strategy(name, custom, expected):
    deployment = {"engine": "ecs", "config": name}
    if custom:
        deployment["customConfigs"] = {name: custom}
    assert _parse(**deployment).deployment.ecs_strategy() == expected


def _problems(**deployment) -> list[str]:
    with pytest.raises(ConfigError) as error:
        _parse(**deployment)
    return error.value.problems


def test_a_termination_wait_longer_than_ecs_bake_time_is_refused_with_engine_ecs():
    assert _problems(engine="ecs", terminationWaitMinutes=2000) == [
        "deployment.terminationWaitMinutes: 2000 is longer than ECS's 1440-minute bake time "
        "(deployment.engine ecs); set at most 1440"
    ]
    assert _parse(terminationWaitMinutes=2000).deployment.termination_wait_minutes == 2000


def test_linear_steps_below_three_percent_and_long_intervals_are_refused_with_engine_ecs():
    problems = _problems(
        engine="ecs",
        customConfigs={"tiny": {"type": "linear", "percent": 2, "intervalMinutes": 1500}},
    )
    assert problems == [
        "deployment.customConfigs.tiny.intervalMinutes: 1500 is longer than ECS's 1440-minute "
        "step bake time (deployment.engine ecs); set at most 1440",
        "deployment.customConfigs.tiny.percent: 2 is below the 3 percent ECS's linear steps "
        "move at least (deployment.engine ecs); set 3 or more",
    ]


def test_an_unknown_engine_is_refused_naming_the_key_and_the_choices():
    (problem,) = _problems(engine="argo")
    assert problem.startswith("deployment.engine:")
    assert "'codedeploy'" in problem and "'ecs'" in problem

"""Issue 21, problem 8: every deployer's timeout covers a deployment of the configured shape.

An ECS blue/green deployment ships (production runs the new revision) after it started,
validated and shifted traffic; it holds the group until the termination wait ends. Waiters
return once it shipped, so their timeouts must cover that, and the plan says how long both
take per service.
"""

from __future__ import annotations

import pytest

from ecs_delivery.components import config
from ecs_delivery.components.config import ConfigError
from tests.conftest import make_plan

SOURCE = {"source": {"provider": "codecommit", "repository": "app"}}
SERVICES = {
    "web": {"containerPort": 8080},
    "api": {"containerPort": 8000, "routing": {"pathPatterns": ["/api/*"]}},
}


def _problems(**raw) -> list[str]:
    with pytest.raises(ConfigError) as error:
        config.parse({"services": SERVICES, "pipeline": SOURCE, **raw})
    return error.value.problems


@pytest.mark.parametrize(
    ("name", "custom", "minutes"),
    [
        ("CodeDeployDefault.ECSAllAtOnce", None, 5),
        ("CodeDeployDefault.ECSCanary10Percent5Minutes", None, 10),
        ("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", None, 35),
        # Four steps of 25 %, each taking its interval, as the predefined linear ones count.
        ("slow", {"type": "linear", "percent": 25, "intervalMinutes": 4}, 5 + 4 * 4),
        ("once", {"type": "canary", "percent": 20, "intervalMinutes": 7}, 5 + 7),
    ],
)
def test_a_deployment_ships_after_start_validation_and_its_traffic_shift(name, custom, minutes):
    deployment = {"config": name, **({"customConfigs": {name: custom}} if custom else {})}
    pipeline = {**SOURCE, "buildTimeoutMinutes": 120}  # two services, one after another
    parsed = config.parse({"services": SERVICES, "pipeline": pipeline, "deployment": deployment})

    assert parsed.deployment.ships_in_minutes() == minutes
    assert (
        parsed.deployment.locked_minutes() == minutes + parsed.deployment.termination_wait_minutes
    )


def test_a_timeout_that_cannot_cover_a_deployment_is_refused_naming_both_numbers():
    problems = _problems(
        deployment={
            "config": "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
            "timeoutMinutes": 20,
        },
        pipeline={**SOURCE, "buildTimeoutMinutes": 120},
    )

    assert problems == [
        "deployment.timeoutMinutes: 20 is shorter than a deployment ships in about 35 min (5 "
        "to start and validate + 30 of traffic shifting with "
        "CodeDeployDefault.ECSLinear10PercentEvery3Minutes); set at least 35",
    ]


def test_a_pipeline_build_too_short_for_its_services_one_after_another_is_a_warning():
    slow = {"config": "CodeDeployDefault.ECSLinear10PercentEvery3Minutes"}
    parsed = config.parse(
        {
            "services": SERVICES,
            "pipeline": {**SOURCE, "buildTimeoutMinutes": 60},
            "deployment": slow,
        }
    )

    assert parsed.pipeline_timeout_warning() == (
        "pipeline.buildTimeoutMinutes: 60 cannot cover 2 deployments one after another (about "
        "70 min until they all ship); set at least 70, or expect the deploy stage to time out"
    )


def test_prods_settings_fit_its_canary_and_hour_long_termination_wait_and_the_plan_says_so():
    """Prod waits 60 minutes after a 5-minute canary: waiting for `Succeeded` needed 70 min
    per service against a 30-minute build; waiting until it shipped needs 10."""
    outputs = make_plan("prod").outputs

    assert outputs["deploymentTime"]["web"] == {
        "config": "CodeDeployDefault.ECSCanary10Percent5Minutes",
        "shipsInMinutes": 10,
        "terminationWaitMinutes": 60,
        "lockedMinutes": 70,
    }
    # api shifts with its own configuration: ten linear steps a minute apart.
    assert outputs["deploymentTime"]["api"]["config"] == (
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"
    )
    assert outputs["deploymentTime"]["api"]["shipsInMinutes"] == 15
    assert set(outputs["deploymentTime"]) == set(make_plan("prod").outputs["services"])

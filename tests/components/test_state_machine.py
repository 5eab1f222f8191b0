"""Structure of the Step Functions definition."""

from __future__ import annotations

import copy
import json

import pytest

from ecs_delivery.components.state_machine import STEPS, check_definition, definition

ARNS = {step: f"arn:aws:lambda:eu-west-1:123456789012:function:release-{step}" for step in STEPS}


def test_definition_has_every_state_reachable_and_every_task_caught_into_rollback() -> None:
    defn = definition(ARNS, max_concurrency=7, poll_seconds=30)

    assert check_definition(defn) == []
    json.dumps(defn)  # serialisable as the resource's definition


def test_map_runs_with_the_configured_concurrency_and_polls_with_a_wait() -> None:
    defn = definition(ARNS, max_concurrency=7, poll_seconds=30)
    deploy = defn["States"]["DeployServices"]

    assert deploy["Type"] == "Map" and deploy["MaxConcurrency"] == 7
    inner = deploy["ItemProcessor"]["States"]
    assert inner["WaitForDeployment"] == {"Type": "Wait", "Seconds": 30, "Next": "PollService"}
    waits = {c["StringEquals"]: c["Next"] for c in inner["DeploymentDone?"]["Choices"]}
    # starting: another run's claimed start may still become a deployment (polled again)
    assert waits == {
        "deployed": "ServiceDeployed",
        "deploying": "WaitForDeployment",
        "starting": "WaitForDeployment",
    }
    assert deploy["Catch"][-1]["Next"] == "Rollback"


def test_every_task_state_and_the_map_have_a_catch_all() -> None:
    defn = definition(ARNS, max_concurrency=3, poll_seconds=10)
    states = dict(defn["States"])
    states.update(defn["States"]["DeployServices"]["ItemProcessor"]["States"])
    tasks = [name for name, s in states.items() if s["Type"] in ("Task", "Map")]

    assert sorted(tasks) == sorted(
        [
            "Plan",
            "DeployServices",
            "StartService",
            "PollService",
            "UpdateTasks",
            "Rollback",
            "PollRollback",
        ]
    )
    for name in tasks:
        # States.ALL comes last (AWS refuses it before another catcher).
        assert states[name]["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
    assert {states[n]["Resource"] for n in tasks if n != "DeployServices"} == set(ARNS.values())


def test_rollback_polls_until_done_and_ends_in_a_fail_state() -> None:
    states = definition(ARNS, max_concurrency=3, poll_seconds=10)["States"]

    done = states["RollbackDone?"]
    assert {c["StringEquals"]: c["Next"] for c in done["Choices"]} == {
        "rolling_back": "WaitForRollback",
        "rolled_back": "ReleaseRolledBack",
        "nothing_deployed": "NothingDeployed",
    }
    assert done["Default"] == "RollbackFailed"
    assert states["ReleaseRolledBack"]["Type"] == "Fail"
    assert states["RollbackFailed"]["Type"] == "Fail"


def test_check_reports_an_unreachable_state() -> None:
    defn = definition(ARNS, max_concurrency=3, poll_seconds=10)
    defn["States"]["Orphan"] = {"Type": "Pass", "End": True}

    assert check_definition(defn) == ["Orphan: unreachable from Plan"]


def test_check_reports_a_task_without_catch_and_a_catch_that_skips_rollback() -> None:
    defn = definition(ARNS, max_concurrency=3, poll_seconds=10)
    broken = copy.deepcopy(defn)
    del broken["States"]["UpdateTasks"]["Catch"]
    broken["States"]["Plan"]["Catch"][-1]["Next"] = "Released"
    del broken["States"]["DeployServices"]["ItemProcessor"]["States"]["PollService"]["Catch"]

    assert sorted(check_definition(broken)) == [
        "DeployServices/PollService: Task without a Catch for States.ALL",
        "Plan: Catch does not lead to Rollback",
        "UpdateTasks: Task without a Catch for States.ALL",
    ]


@pytest.mark.parametrize(
    ("arns", "concurrency", "poll", "message"),
    [
        ({k: v for k, v in ARNS.items() if k != "rollback"}, 3, 10, "missing rollback"),
        ({**ARNS, "deploy": "arn"}, 3, 10, "unknown steps deploy"),
        (ARNS, 0, 10, "max_concurrency: 0 must be an integer >= 1"),
        (ARNS, 3, 0, "poll_seconds: 0 must be an integer >= 1"),
    ],
)
def test_definition_refuses_bad_arguments(arns, concurrency, poll, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        definition(arns, max_concurrency=concurrency, poll_seconds=poll)

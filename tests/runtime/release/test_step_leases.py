"""One runner per release, on the state machine too: an execution holds the release's lease.

Issue 21, problem 6: an operator's `release apply` and the release pipeline's execution of
the same release both deployed; the loser failed on the busy group and rolled the whole
release back. The CLI runner already held a lease; these tests run the state machine's
definition (the interpreter of test_steps.py) against the simulated AWS next to a CLI
runner of the same release.
"""

from __future__ import annotations

from typing import Any

import pytest

from ecs_delivery.components.state_machine import check_definition, definition
from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.engine import ReleaseBusyError, ReleaseEngine, prepare
from ecs_delivery.runtime.release.live import TaskDefinitions
from ecs_delivery.runtime.release.manifest import load_manifest
from ecs_delivery.runtime.release.state import StateStore

from .conftest import aws_of, config
from .test_steps import ARNS, execute, services


def _operator(sim: SimulatedAws, text: str) -> ReleaseEngine:
    """The operator's `release apply` of the manifest: its engine, the release begun."""
    manifest = load_manifest(text, sim.inventory, "release.yaml")
    store = StateStore(sim.clients.s3, sim.bucket, manifest.release_id, sim.clock)
    aws = aws_of(sim)
    state, plan = prepare(aws, store, manifest, sim.inventory, TaskDefinitions(aws))
    engine = ReleaseEngine(aws, store, config(), owner="operator@laptop")
    if state is None:
        engine.begin(plan)
    return engine


def _state(sim: SimulatedAws, release: str = "dev-r1") -> Any:
    return StateStore(sim.clients.s3, sim.bucket, release, sim.clock).load()


def test_an_execution_of_a_release_another_runner_holds_ends_busy_and_rolls_nothing_back(
    sim: SimulatedAws,
) -> None:
    text = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    operator = _operator(sim, text)
    operator.take_lease()
    operator.start_service("svc-000")  # the operator's deployment is in flight

    status, error, trace = execute(sim, {"manifest_yaml": text})

    assert (status, error) == ("FAILED", "ReleaseBusy")
    assert "Rollback" not in trace and "StartService" not in trace
    state = _state(sim)
    assert state.status == "running" and state.lease.owner == "operator@laptop"
    # Only the operator's deployment, not stopped (on the scaled clock it may have finished).
    assert [d.status for d in sim.codedeploy.deployments] in (["InProgress"], ["Succeeded"])
    # The operator's run goes on and succeeds.
    assert operator.run().status == "succeeded"


def test_release_apply_while_an_execution_runs_is_refused_naming_the_execution(
    sim: SimulatedAws,
) -> None:
    text = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    refusals: list[str] = []

    def operator_applies(step: str, _event: dict[str, Any]) -> None:
        if step == "poll_service" and not refusals:
            with pytest.raises(ReleaseBusyError) as busy:
                _operator(sim, text).run()
            refusals.append(str(busy.value))

    status, _, trace = execute(sim, {"manifest_yaml": text}, "exec-42", operator_applies)

    assert status == "SUCCEEDED" and "Rollback" not in trace
    assert "is being run by execution exec-42" in refusals[0]
    assert "nothing was done" in refusals[0]
    state = _state(sim)
    assert state.status == "succeeded" and state.lease is None
    assert all(sim.live_image(n) == sim.image(n, "2.0.0") for n in services(2))


@pytest.mark.parametrize("then_timed_out", [False, True], ids=["next-step", "timed-out"])
def test_a_runner_taking_the_release_over_ends_the_execution_without_a_rollback(
    sim: SimulatedAws, then_timed_out: bool
) -> None:
    """The operator takes the release over while exec-1 polls: exec-1's next step stops it.
    `timed-out`: Lambda ended that poll at its timeout (or the step raised) instead, so the
    Catch starts exec-1's rollback, which leaves the release to the operator."""
    text = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    operators: list[ReleaseEngine] = []

    def operator_takes_over(step: str, _event: dict[str, Any]) -> None:
        if step == "poll_service" and not operators:
            operators.append(_operator(sim, text))
            operators[0].take_lease(take_over=True)
            if then_timed_out:
                raise TimeoutError("Task timed out after 300.00 seconds")

    status, error, trace = execute(sim, {"manifest_yaml": text}, "exec-1", operator_takes_over)

    assert (status, error) == ("FAILED", "ReleaseBusy")
    assert ("Rollback" in trace) is then_timed_out and "PollRollback" not in trace
    state = _state(sim)
    assert state.status == "running" and state.lease.owner == "operator@laptop"
    assert not [d for d in sim.codedeploy.deployments if d.status == "Stopped"]
    assert operators[0].run(take_over=True).status == "succeeded"
    assert all(sim.live_image(n) == sim.image(n, "2.0.0") for n in services(2))


def test_an_execution_input_with_take_over_takes_a_dead_runners_release(
    sim: SimulatedAws,
) -> None:
    text = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    _operator(sim, text).take_lease()  # the operator's laptop died with the lease live

    status, _, _ = execute(sim, {"manifest_yaml": text, "take_over": True})

    assert status == "SUCCEEDED"
    assert _state(sim).status == "succeeded"


def test_a_take_over_leaves_a_start_another_run_claimed_until_the_grace_is_over(
    sim: SimulatedAws,
) -> None:
    """The operator's run claimed svc-000's start and stalled before creating it (the state
    it left); a take-over polls the claim, as the stalled run may still create it, and
    derives the start again only after the grace: one deployment per service."""
    text = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    operator = _operator(sim, text)
    operator.take_lease()
    claimed_at = sim.clock.time()

    def claim(st: Any) -> None:
        svc = st.services["svc-000"]
        svc.status, svc.new_td, svc.started_at = (
            "starting",
            sim.task_definitions["svc-000"],
            claimed_at,
        )

    operator.store.update(claim)
    polls: list[float] = []

    def watch(step: str, _event: dict[str, Any]) -> None:
        if step == "poll_service" and _event["service"] == "svc-000":
            polls.append(sim.clock.time() - claimed_at)

    status, _, _ = execute(
        sim, {"manifest_yaml": text, "take_over": True}, "exec-1", watch, start_grace_seconds=300
    )

    assert status == "SUCCEEDED"
    deployed = [d for d in sim.codedeploy.deployments if d.group.label == "svc-000"]
    assert len(deployed) == 1 and deployed[0].status == "Succeeded"
    assert sim.live_image("svc-000") == sim.image("svc-000", "2.0.0")
    # It was polled, not deployed, while the claim was younger than the grace.
    assert deployed[0].created - claimed_at >= 300
    assert [p for p in polls if p < 300]


def test_release_apply_taking_over_a_claimed_start_deploys_it_once_the_grace_is_over(
    sim: SimulatedAws,
) -> None:
    """The CLI's loop asks a claimed start again at its polls instead of dropping it (it
    then finished the release with svc-000 never deployed)."""
    text = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    operator = _operator(sim, text)
    operator.take_lease()
    claimed_at = sim.clock.time()

    def claim(st: Any) -> None:
        svc = st.services["svc-000"]
        svc.status, svc.new_td = "starting", sim.task_definitions["svc-000"]
        svc.started_at = claimed_at

    operator.store.update(claim)
    other = ReleaseEngine(
        aws_of(sim), operator.store, config(start_grace_seconds=60), owner="ci@runner"
    )

    assert other.run(take_over=True).status == "succeeded"
    deployed = [d for d in sim.codedeploy.deployments if d.group.label == "svc-000"]
    assert len(deployed) == 1 and deployed[0].created - claimed_at >= 60
    assert sim.live_image("svc-000") == sim.image("svc-000", "2.0.0")


def test_every_step_of_the_definition_sends_a_busy_release_to_a_fail_state_not_the_rollback():
    machine = definition(ARNS, max_concurrency=4, poll_seconds=10)
    states = dict(machine["States"])
    states.update(machine["States"]["DeployServices"]["ItemProcessor"]["States"])
    tasks = {n: s for n, s in states.items() if s["Type"] in ("Task", "Map")}

    for name, state in tasks.items():
        first = state["Catch"][0]
        assert first["ErrorEquals"] == ["ReleaseBusyError"], name
        assert states[first["Next"]]["Type"] == "Fail", name
    assert states["ReleaseBusy"]["Error"] == "ReleaseBusy"
    assert check_definition(machine) == []


def test_the_check_refuses_a_busy_catch_that_starts_the_rollback():
    machine = definition(ARNS, max_concurrency=4, poll_seconds=10)
    machine["States"]["Plan"]["Catch"][0]["Next"] = "Rollback"

    assert check_definition(machine) == [
        "Plan: a ReleaseBusyError Catch must end in a Fail state (another runner holds the "
        "release: rolling it back would undo that runner's deployments)"
    ]

"""Every order of two runners of one release, against moto and the one CodeDeploy simulator.

Actors A and B are two Step Functions executions of the same release: each calls the release's
Lambda steps as the state machine routes them (plan, start, poll until `deployed`, update
tasks; ReleaseBusyError ends it ReleaseBusy, a failed step or a poll answering anything but
deploying/deployed starts the rollback), each with its own Runner. The steps are the calls
that matter: every S3 PutObject of the release's state key (each transition, and the lease,
is a conditional write of that one object) on a gated S3 client per runner, and the ECS and
CodeDeploy steps of tests/runtime/test_interleavings_release.py. A read of the state is not a
step: it happens right after the runner's previous step, so a write decided on a stale read
(the window between a step's lease check and its writes) is among the orders. Two writes are
not steps, because their place changes nothing: a creation that cannot land (the state
exists), and the lease write of B's Plan, which comes with its read as one step (a write of
A between them only makes B re-read and apply the same lease claim again).

How many steps a runner takes depends on the order (a refused runner stops after one or
two, the other takes a dozen), so fixed-length schedules would run the same order many
times over (C(24, 12) strings for 60 to 360 orders). The exploration walks the tree of
choices instead: each run records where the other runner could have moved, and each choice
not taken yet is a new run; every order runs exactly once.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from ecs_delivery.runtime.aws import client
from ecs_delivery.runtime.release.engine import (
    EngineConfig,
    ReleaseBusyError,
    ReleaseStopped,
    ServiceDeploymentFailed,
)
from ecs_delivery.runtime.release.lifecycle import execution_lease_seconds
from ecs_delivery.runtime.release.live import Aws, Clients
from ecs_delivery.runtime.release.steps import (
    Runner,
    StepContext,
    plan_step,
    poll_service_step,
    rollback_poll_step,
    rollback_step,
    start_service_step,
    update_tasks_step,
)
from tests.support.release_interleavings import (
    BUCKET,
    MANIFEST,
    POLLS,
    RELEASED,
    ReleaseOutcome,
    _plain,
)
from tests.support.rollout_interleavings import (
    IMAGES,
    REGION,
    SESSION,
    Scheduler,
    actor,
    fresh_moto,
    many_runs,
)

from .test_interleavings import ACTORS, World, settle
from .test_interleavings_release import INVENTORY

CONFIG = EngineConfig(poll_seconds=1, deployment_timeout_seconds=10_000, start_grace_seconds=0)
LEASE = execution_lease_seconds(CONFIG.poll_seconds)
RELEASE_ID = "dev-r1"
STATE_KEY = f"releases/{RELEASE_ID}/state.json"


@dataclass(frozen=True)
class RunnersScenario:
    """A and B run the release. `late`: A's Plan has taken the lease before B's first step;
    `take_over`: B's input says take_over: true (A is alive: the worst case); `lapse`: A
    stalls past its lease as B begins."""

    late: bool = False
    take_over: bool = False
    lapse: bool = False
    # Lambda ends a step's invocation this long after it began (SFN's Catch then starts the
    # rollback); the start grace is as long, as in the stack. 0: no timeout and no grace (the
    # CLI's default).
    step_timeout: float = 0
    # Explore only orders with at most this many switches between runners after `forced`.
    switches: int | None = None
    stalled: bool = False  # `forced` runs A up to its claim of the start (A stalls there)

    @property
    def config(self) -> EngineConfig:
        return replace(CONFIG, start_grace_seconds=self.step_timeout)

    @property
    def forced(self) -> str:
        """The steps every order starts with: A's two Plan writes (create, take the lease),
        and with `stalled` its start's lease check and claim."""
        return "AAAA" if self.stalled else "AA" if self.late else ""


@dataclass
class RunnersOutcome(ReleaseOutcome):
    # What each runner's execution ended as: succeeded, busy, nothing to do, or its rollback.
    ended: dict[str, str] = field(default_factory=dict)
    # What the runners did, in order: (runner, "write", state) for every state write that
    # landed, (runner, "deploy", id) for every deployment CodeDeploy accepted, (runner, "stop",
    # id) for every StopDeployment.
    log: list[tuple[str, str, Any]] = field(default_factory=list)
    final_state: dict[str, Any] = field(default_factory=dict)
    order: str = ""


class _Created(dict):
    """World.created_by that also logs, in order, which runner created which deployment."""

    def __init__(self, log: list[tuple[str, str, Any]]) -> None:
        super().__init__()
        self.log = log

    def __setitem__(self, deployment_id: str, runner: str) -> None:
        super().__setitem__(deployment_id, runner)
        self.log.append((runner, "deploy", deployment_id))


class RunnersWorld(World):
    """The release's one service; both runners' polls move the release's deployments (the
    state names one deployment for the release, whoever created it)."""

    def __init__(self, outcome: RunnersOutcome, scheduler: Scheduler) -> None:
        super().__init__(outcome, scheduler)
        self.log = outcome.log
        self.created_by = _Created(self.log)
        self.pending: dict[str, dict[str, Any]] = {}
        self.merged: set[str] = set()

    def gate(self, actor: str, service: str, operation: str, params: dict[str, Any]) -> None:
        super().gate(actor, service, operation, params)
        if operation == "StopDeployment":
            self.log.append((actor, "stop", params["deploymentId"]))

    def _finishes(self, actor: str, deployment_ids: list[str]) -> bool:
        return any(
            i in self.created_by and self.sim.deployment(i).ended is None for i in deployment_ids
        )

    def _finish(self, actor: str, deployment_id: str) -> None:
        super()._finish(self.created_by.get(deployment_id, actor), deployment_id)

    def state_write(self, actor: str, params: dict[str, Any]) -> None:
        """Before a runner's PutObject: a step when it writes the state, except a creation
        that cannot land (the state exists: refused whenever it comes, and the runner's next
        write is conditional on what it reads then)."""
        if params.get("Key") != STATE_KEY:
            return
        if actor in self.merged:
            self.merged.discard(actor)  # B's Plan: its read of the state was the step
        elif "IfNoneMatch" not in params or not self._state_exists():
            self.scheduler.step(actor)
        self.pending[actor] = json.loads(params["Body"])

    def _state_exists(self) -> bool:
        listed = _plain("s3").list_objects_v2(Bucket=BUCKET, Prefix=STATE_KEY)
        return listed.get("KeyCount", 0) > 0

    def state_written(self, actor: str, status_code: int) -> None:
        state = self.pending.pop(actor, None)
        if state is not None and status_code < 300:
            self.log.append((actor, "write", state))


class LambdaTimedOut(BaseException):  # noqa: N818 (Lambda's own word for it)
    """Lambda ended the step's invocation at its timeout: the step's code runs no further
    (a BaseException, as a killed process runs no `except Exception` of its own)."""


class Explorer(Scheduler):
    """The scheduler, recording each step's runner and whether another could have moved;
    a runner whose step's invocation outlived the step timeout while it waited is killed."""

    def __init__(self, schedule: str, step_timeout: float = 0) -> None:
        super().__init__(schedule)
        self.step_timeout = step_timeout
        self.trace: list[str] = []
        self.choice: list[bool] = []
        self.clock: Any = None
        self.invoked: dict[str, float] = {}  # when each runner's current invocation began

    def step(self, actor: str) -> None:
        super().step(actor)
        self.trace.append(actor)
        self.choice.append(any(not g.dead for n, g in self.actors.items() if n != actor))
        began = self.invoked.get(actor, math.inf)
        if self.step_timeout and self.clock.time() - began >= self.step_timeout:
            raise LambdaTimedOut(f"{actor}'s step ran past its {self.step_timeout} s timeout")

    def invoke(self, actor: str, step: Any, *args: Any) -> Any:
        """One invocation of a step's Lambda by `actor`'s execution."""
        self.invoked[actor] = self.clock.time()
        try:
            return step(*args)
        finally:
            self.invoked.pop(actor, None)


class _S3:
    """One S3 client per runner, built once, whose state writes wait for its turn."""

    def __init__(self) -> None:
        self.built: dict[str, Any] = {}

    def of(self, runner: str) -> Any:
        if runner not in self.built:
            s3 = client("s3", SESSION)
            s3.meta.events.register(
                "before-parameter-build.s3.PutObject",
                lambda params, **_: ACTORS.world.state_write(runner, params),
            )
            s3.meta.events.register(
                "after-call.s3.PutObject",
                lambda http_response, **_: ACTORS.world.state_written(
                    runner, http_response.status_code
                ),
            )
            self.built[runner] = s3
        return self.built[runner]


S3 = _S3()


def _execution(world: RunnersWorld, name: str, take_over: bool, config: EngineConfig) -> str:
    """One execution of the state machine by runner `name`; what it ended as."""
    ecs, codedeploy = ACTORS.of(name)
    clients = Clients(ecs, codedeploy, S3.of(name), _plain("events"), _plain("scheduler"))
    clock = world.sim.clock
    ctx = StepContext(Aws(clients, clock), BUCKET, config)
    # The plan's read of what runs is not a step (the start reads again); its writes are.
    plain = StepContext(Aws(replace(clients, ecs=world.ecs), clock), BUCKET, config)
    runner = Runner(name, LEASE, take_over)
    invoke = functools.partial(world.scheduler.invoke, name)
    plan: dict[str, Any] | None = None
    try:
        plan = invoke(plan_step, plain, MANIFEST, INVENTORY, runner)
        if not plan["has_changes"]:
            return "nothing to do"
        release = plan["release_id"]
        for service in plan["services"]:
            status = invoke(start_service_step, ctx, release, service, runner)["status"]
            for _poll in range(POLLS):
                clock.sleep(CONFIG.poll_seconds)  # WaitForDeployment
                status = invoke(poll_service_step, ctx, release, service, runner)["status"]
                if status == "deployed":
                    break
                if status not in ("deploying", "starting"):  # DeploymentDone?'s Default
                    raise ServiceDeploymentFailed(service, f"poll answered {status}")
        invoke(update_tasks_step, ctx, release, runner)
        return "succeeded"
    except ReleaseBusyError:
        return "busy"
    except (ServiceDeploymentFailed, ReleaseStopped, LambdaTimedOut) as failed:
        # SFN's Catch (States.ALL) routes a failed or timed-out step to the rollback.
        error = {"Error": type(failed).__name__, "Cause": str(failed)}
        event = {"plan": plan, "error": error} if plan else {"manifest_yaml": MANIFEST}
        try:
            status = invoke(rollback_step, ctx, {**event, "error": error}, runner)["status"]
            for _poll in range(POLLS):
                if status != "rolling_back":
                    break
                clock.sleep(CONFIG.poll_seconds)
                status = invoke(rollback_poll_step, ctx, RELEASE_ID, runner)["status"]
        except ReleaseBusyError:
            return "busy"
        return f"rollback {status}"


def run_runners(schedule: str, scenario: RunnersScenario) -> tuple[RunnersOutcome, Explorer]:
    outcome = RunnersOutcome()
    with fresh_moto():
        scheduler = Explorer(schedule, scenario.step_timeout)
        world = RunnersWorld(outcome, scheduler)
        scheduler.clock = world.sim.clock
        ACTORS.world = world
        for name in "AB":
            world.sim.attach(ACTORS.of(name)[1])
        _plain("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )

        def runner(name: str):
            def body() -> None:
                if name == "B" and scenario.late:
                    # B begins: its Plan reads the state and writes its lease in one step (a
                    # write of A between them only makes B re-read and write it again).
                    scheduler.step("B")
                    world.merged.add("B")
                    if scenario.lapse:
                        world.sim.clock.advance(LEASE + 1)  # A stalled past its lease
                take_over = name == "B" and scenario.take_over
                outcome.ended[name] = _execution(world, name, take_over, scenario.config)

            return actor(outcome, name, body)

        scheduler.run({"A": runner("A"), "B": runner("B")})
        settle(world, outcome)
        state = _plain("s3").get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read()
        outcome.final_state = json.loads(state)
    outcome.order = "".join(scheduler.trace)
    return outcome, scheduler


def runner_problems(outcome: RunnersOutcome, scenario: RunnersScenario) -> list[str]:
    """What went wrong in one order; empty when every invariant holds."""
    found = [f"{name} failed with {error!r}" for name, error in outcome.errors.items()]
    if outcome.empty_deployments:
        found.append(f"empty deployments of {outcome.empty_deployments}")
    rollbacks = [f"{n} ended {e}" for n, e in sorted(outcome.ended.items()) if "rollback" in e]
    found += [f"a good release was rolled back: {r}" for r in rollbacks]
    state = outcome.final_state
    if state.get("status") != "succeeded" or state.get("lease") is not None:
        found.append(f"the release ended {state.get('status')} (lease {state.get('lease')})")
    if outcome.ran != [IMAGES[0], RELEASED]:
        found.append(f"ran {[i[-8:] for i in outcome.ran]}, not the release's image once")
    deployed = [e for e in outcome.log if e[1] == "deploy"]
    if len(deployed) != 1:
        found.append(f"{len(deployed)} deployments of the release's image: {deployed}")
    stops = [e for e in outcome.log if e[1] == "stop"]
    if stops:
        found.append(f"stopped the release's deployment: {stops}")
    found += _one_runner(outcome, scenario)
    return found


def _one_runner(outcome: RunnersOutcome, scenario: RunnersScenario) -> list[str]:
    """One runner runs the release; the other changes nothing of it."""
    log, found = outcome.log, []
    if not scenario.late:
        # The loser may have written the release's first state, nothing else.
        deployers = {who for who, kind, _ in log if kind == "deploy"}
        for loser in sorted(set("AB") - deployers):
            writes = [what for who, kind, what in log if who == loser and kind == "write"]
            if any(w["version"] != 0 for w in writes):
                found.append(f"{loser} deployed nothing but wrote versions {_versions(writes)}")
            if outcome.ended.get(loser) not in ("busy", "nothing to do"):
                found.append(f"{loser} deployed nothing and ended {outcome.ended.get(loser)}")
        return found
    taken = next(
        (i for i, e in enumerate(log) if e[:2] == ("B", "write") and _holder(e) == "B"), None
    )
    if taken is None:  # A kept the lease (renewed it first) or finished first: B did nothing
        if mine := [e[:2] for e in log if e[0] == "B"]:
            found.append(f"B never held the release but did {mine}")
        return found
    # After B's take-over A writes nothing and stops nothing; the one call it may still make
    # is the CreateDeployment of the start it claimed before (no write comes between a claim
    # and its CreateDeployment), and then that deployment is the one B adopted.
    before = [what for who, kind, what in log[:taken] if (who, kind) == ("A", "write")]
    claimed = before[-1]["services"]["web"]["status"] == "starting"
    recorded = outcome.final_state["services"]["web"]["deployment_id"]
    for who, kind, what in log[taken:]:
        if who == "A" and not (kind == "deploy" and claimed and what == recorded):
            found.append(
                f"A did {kind} {_versions([what]) if kind == 'write' else what} "
                "after B took the release over"
            )
    if outcome.ended.get("A") != "busy":
        found.append(f"A ended {outcome.ended.get('A')} after B's take-over, not busy")
    return found


def _holder(entry: tuple[str, str, Any]) -> str:
    return str((entry[2].get("lease") or {}).get("owner", ""))[-1:]


def _versions(writes: list[Any]) -> list[Any]:
    return [(w["version"], w["status"], w["services"]["web"]["status"]) for w in writes]


def explore(
    scenario: RunnersScenario, part: str = "", first: bool = False
) -> tuple[dict[str, list[str]], list[str]]:
    """Every order starting with `scenario.forced + part` (only up to the first failing one,
    with `first`): the failing ones, and every order run."""
    start = scenario.forced + part
    todo, failures, runs = [start], {}, []
    with many_runs():
        _explore(scenario, start, first, todo, failures, runs)
    return failures, runs


def _explore(
    scenario: RunnersScenario,
    start: str,
    first: bool,
    todo: list[str],
    failures: dict[str, list[str]],
    runs: list[str],
) -> None:
    while todo and not (first and failures):
        schedule = todo.pop()
        outcome, scheduler = run_runners(schedule, scenario)
        if not outcome.order.startswith(start):
            continue  # a runner ended inside the part's prefix: another part runs this order
        runs.append(outcome.order)
        if found := runner_problems(outcome, scenario):
            failures[outcome.order] = found
        # Each step past the schedule where the other runner could have moved instead
        # roots a subtree of orders no run has taken yet.
        trace = outcome.order
        for i in range(len(schedule), len(trace)):
            if scheduler.choice[i]:
                order = trace[:i] + ("B" if trace[i] == "A" else "A")
                if scenario.switches is None or _switches(order, start) <= scenario.switches:
                    todo.append(order)


def _switches(order: str, start: str) -> int:
    """How often the order passes from one runner to the other after `start`."""
    tail = order[max(len(start) - 1, 0) :]
    return sum(a != b for a, b in itertools.pairwise(tail))


TOGETHER = RunnersScenario()
TAKE_OVER = RunnersScenario(late=True, take_over=True)
LAPSE = RunnersScenario(late=True, lapse=True)
# A part is the orders under one prefix of this many choices: about RUNS_PER_PART orders each
# (60 orders together, 360 with a take-over or a lapse).
DEPTH = {TOGETHER: 1, TAKE_OVER: 3, LAPSE: 3}
# Without a step timeout and a start grace (the CLI's defaults), a runner stalled between its
# claim and its CreateDeployment while B takes over is not told apart from a dead one: B
# derives the start again and finishes the release, then A creates a second (empty)
# deployment; its own re-check stops it before traffic moves. These are the problems of
# exactly those orders; STALLED below explores them with the Lambda steps' timeout and grace.
STALLED_START = {
    "empty deployments",
    "2 deployments of the release's image",
    "stopped the release's deployment",
    "A did deploy",
    "A did stop",
}
# A stalls right after its claim while B takes the release over; every order after that
# with up to three switches (A stalls for any number of B's steps, resumes, B goes on).
STALLED = RunnersScenario(late=True, take_over=True, step_timeout=3, switches=3, stalled=True)


def parts(scenario: RunnersScenario) -> list[str]:
    return ["".join(p) for p in itertools.product("AB", repeat=DEPTH[scenario])]


def _beyond_the_stalled_start(failures: dict[str, list[str]]) -> dict[str, list[str]]:
    def known(problem: str) -> bool:
        return any(problem.startswith(k) for k in STALLED_START)

    return {o: f for o, f in failures.items() if not all(known(p) for p in f)}


def test_the_exploration_runs_each_order_once_and_the_parts_cover_them():
    every = [o for part in parts(TOGETHER) for o in explore(TOGETHER, part)[1]]
    assert len(every) == len(set(every)) == 60
    assert all(o.count("B") <= 2 or o.count("A") <= 2 for o in every)  # one runner deploys


@pytest.mark.parametrize("part", parts(TOGETHER))
def test_two_executions_started_together_deploy_the_release_once_and_one_ends_busy(part):
    failures, runs = explore(TOGETHER, part)
    assert failures == {} and runs


@pytest.mark.parametrize("part", parts(TAKE_OVER))
def test_a_take_over_of_a_live_runner_stops_it_before_it_changes_the_release(part):
    failures, runs = explore(TAKE_OVER, part)
    assert _beyond_the_stalled_start(failures) == {} and runs


@pytest.mark.parametrize("part", parts(LAPSE))
def test_a_runner_whose_lease_lapsed_stops_once_another_takes_the_release(part):
    failures, runs = explore(LAPSE, part)
    assert _beyond_the_stalled_start(failures) == {} and runs


def test_a_runner_that_lost_the_race_writes_nothing_to_the_release_the_winner_finished():
    """B read the release before A took the lease, then A ran it to the end: B's lease
    claim, re-applied to A's finished release, wrote B's lease onto it (and B's execution
    reported success for A's release)."""
    outcome, _ = run_runners("AB" + "A" * 11, TOGETHER)
    assert runner_problems(outcome, TOGETHER) == []
    assert outcome.ended == {"A": "succeeded", "B": "nothing to do"}


def test_a_step_in_flight_when_the_release_is_taken_over_writes_nothing_after_it():
    """A's poll checked its lease, B took the release over and recorded its deployment, then
    A's write (re-applied onto B's state after the conflict) still landed: the lease was
    checked on the state read at the step's start, never on the state written."""
    outcome, _ = run_runners("AAABABABABABAABBBB", TAKE_OVER)
    assert runner_problems(outcome, TAKE_OVER) == []
    assert outcome.ended == {"A": "busy", "B": "succeeded"}


def test_a_runner_stalled_between_its_claim_and_its_deployment_deploys_nothing_after_a_take_over():
    """A claimed web's start, then stalled before creating it while B took over: B derived
    the start again and deployed, then A's create made a second deployment. B now waits out
    the grace (A's step is killed at its timeout first) or adopts what A created."""
    outcome, _ = run_runners("AAAABBBBBBBAAAAABBB", STALLED)
    assert runner_problems(outcome, STALLED) == []


def test_a_runner_stalled_after_its_claim_deploys_the_release_once_in_every_order_with_a_timeout():
    """With the Lambda steps' timeout and the start grace as long: B polls A's claim until
    the grace is over (A's step is ended first) or adopts what A created meanwhile."""
    failures, runs = explore(STALLED)
    assert failures == {} and len(runs) > 10


def test_the_exploration_sees_a_runner_that_no_longer_checks_its_lease(monkeypatch):
    """The harness can fail: steps that no longer hold the lease (no check, no renewal, no
    check on every write) let A change the release after B took it over."""
    import ecs_delivery.runtime.release.steps as steps

    monkeypatch.setattr(steps, "_hold", lambda engine, runner: None)
    failures, _ = explore(TAKE_OVER, "AAA", first=True)
    assert _beyond_the_stalled_start(failures), "the mutant survived every order"

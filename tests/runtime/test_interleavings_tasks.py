"""Every order of a `pulumi up` task rollout with a release's task update (and its rollback),
against moto.

A scheduled task's schedule names its family, so each run starts the family's newest ACTIVE
revision, and every deployer registers onto it through runtime.task_rollout.deploy_task. Actor U
is what TaskRollout's provider does on `update` (a template with new memory and environment);
actor R is the release engine's task step (`update_tasks_step`) and, in the rollback scenarios,
then `release rollback` (`rollback_step`). Both run as greenlets on the gated clients and the
scheduler of tests/runtime/test_interleavings.py. The steps are the ECS calls that matter: a read
of the family's newest revision (DescribeTaskDefinition by family, ListTaskDefinitions) and a
registration into the family. Describing a numbered revision or the template is no step: a
registered revision never changes, so those reads commute with everything.

Unlike the services' explorations, the orders are not listed up front: a registration that is
overtaken adds steps (a merge again), so the exploration runs one order, then branches at every
step where another actor could have gone first (stateless depth-first search), until every order
has run once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any
from unittest import mock

import pytest

import ecs_delivery.components.rollout as rollout_component
from ecs_delivery.components.rollout import TaskRolloutProvider
from ecs_delivery.runtime.build import FollowerTask, move_followers
from ecs_delivery.runtime.clock import VirtualClock
from ecs_delivery.runtime.release.engine import EngineConfig
from ecs_delivery.runtime.release.inventory import Inventory
from ecs_delivery.runtime.release.live import Aws, Clients
from ecs_delivery.runtime.release.state import StateStore
from ecs_delivery.runtime.release.steps import (
    StepContext,
    plan_step,
    rollback_poll_step,
    rollback_step,
    update_tasks_step,
)
from ecs_delivery.runtime.taskdef import images_of, same_content
from tests.support.release_interleavings import BUCKET, POLLS, _plain
from tests.support.rollout_interleavings import (
    ACCOUNT,
    IMAGES,
    REGION,
    Scheduler,
    actor,
    fresh_moto,
    many_runs,
)
from tests.support.rollout_interleavings import _spec as service_spec  # one container's revision

from .test_interleavings import ACTORS

CLUSTER, TASK, FAMILY, CONTAINER = "c", "report", "c-report", "report"
FAMILY_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}"
BEFORE = IMAGES[0]  # what the task runs when the run begins
RELEASED = IMAGES[1]  # the release's image
PINNED = IMAGES[2]  # an image the stack pins (Pulumi deploys it, newer than the release's)
SHIPPED = IMAGES[3]  # the pipeline's ship of the service the task follows
# Pulumi's fields before and after the `up`: what the template changes.
OLD, NEW = ("512", "info"), ("1024", "debug")
INVENTORY = Inventory.model_validate(
    {
        "environment": "dev",
        "scheduledTasks": {
            TASK: {
                "cluster": CLUSTER,
                "taskFamily": FAMILY,
                "container": CONTAINER,
                "schedule": {"name": TASK},
            }
        },
    }
)
MANIFEST = (
    f"release: r1\nenvironment: dev\nservices: {{}}\n"
    f"scheduledTasks:\n  {TASK}: {{image: '{RELEASED}'}}\n"
)
# A task rollout's inputs as the TaskRollout resource records them (components/rollout.py).
PROPS = {
    "family": FAMILY,
    "pinned_images": {},
    "promotion": None,
    "initial_images": {},
    "schedule": f"default/{TASK}",
    "region": REGION,
    "profile": None,
    "role_arn": None,
}


def _spec(family: str, image: str, fields: tuple[str, str]) -> dict[str, Any]:
    """The task's revision: its container serves no port and carries LOG_LEVEL."""
    memory, log_level = fields
    spec = service_spec(image, memory, family=family, container=CONTAINER, port=None)
    spec["containerDefinitions"][0]["environment"] = [{"name": "LOG_LEVEL", "value": log_level}]
    return spec


def _fields(definition: dict[str, Any]) -> tuple[str, str]:
    """Pulumi's fields this exploration changes: memory and the container's environment."""
    (env,) = definition["containerDefinitions"][0]["environment"]
    return str(definition["memory"]), env["value"]


@dataclass
class TaskOutcome:
    """One run: the order its steps took, each registration, and what each actor reported."""

    taken: list[str] = field(default_factory=list)
    # (actor, image, Pulumi's fields) of each revision registered, in order.
    registered: list[tuple[str, str, tuple[str, str]]] = field(default_factory=list)
    empty_registrations: list[str] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    up_action: str = ""
    release_status: str = ""
    task_rollback: str | None = None
    rollback_note: str | None = None
    final_image: str = ""
    final_fields: tuple[str, str] = ("", "")


class Recorder(Scheduler):
    """The shared scheduler, recording which actor took each step."""

    def __init__(self, schedule: str, taken: list[str]) -> None:
        super().__init__(schedule)
        self.taken = taken

    def step(self, actor: str) -> None:
        super().step(actor)  # returns when it is this actor's turn
        self.taken.append(actor)


class TaskWorld:
    """One moto account: a task family whose schedule names the family, and the gate."""

    def __init__(self, outcome: TaskOutcome, scheduler: Scheduler, trigger_reads: bool) -> None:
        self.outcome, self.scheduler = outcome, scheduler
        self.trigger_reads = trigger_reads
        self.registrar: dict[int, str] = {}  # revision -> the actor that registered it
        self.ecs = ACTORS.plain()[0]
        self.ecs.create_cluster(clusterName=CLUSTER)
        self.ecs.register_task_definition(**_spec(FAMILY, BEFORE, OLD))
        _plain("scheduler").create_schedule(
            Name=TASK,
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
                "EcsParameters": {"TaskDefinitionArn": FAMILY_ARN, "LaunchType": "FARGATE"},
            },
        )

    def gate(self, actor: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if service != "ecs":
            return
        newest_read = operation == "ListTaskDefinitions" or (
            operation == "DescribeTaskDefinition"
            and params["taskDefinition"] in (FAMILY, FAMILY_ARN)
        )
        registration = operation == "RegisterTaskDefinition" and params["family"] == FAMILY
        if not (newest_read or registration):
            return
        if newest_read and "include" not in params and not self.trigger_reads:
            # The release's read of what its trigger runs (deploy_task's reads carry tags)
            # records only what a rollback restores: without a rollback, its place among the
            # other steps changes nothing.
            return
        self.scheduler.step(actor)
        if registration:
            # The call is made right after this returns, before any other actor runs. Empty: it
            # adds nothing to what runs, the newest revision, unless that is the actor's own
            # (re-registered once overtaken: see runtime/task_rollout.py).
            newest = self.newest()
            self.registrar[newest["revision"] + 1] = actor
            if same_content(params, newest) and self.registrar.get(newest["revision"]) != actor:
                self.outcome.empty_registrations.append(f"{actor} onto {newest['revision']}")
            self.outcome.registered.append((actor, images_of(params)[CONTAINER], _fields(params)))

    def newest(self) -> dict[str, Any]:
        return self.ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]


@dataclass(frozen=True)
class TaskScenario:
    """R releases RELEASED to the task (then, with `rollback`, rolls the release back) while U
    rolls out Pulumi's NEW fields; with `released_first`, the release finished before U began
    and R's rollback is what meets U; with `pinned`, the `up` also pins PINNED (an image); with
    `ship`, a third deployer S, the pipeline, moves the task to SHIPPED meanwhile."""

    rollback: bool
    released_first: bool = False
    pinned: bool = False
    ship: bool = False


def run_task_interleaving(schedule: str, scenario: TaskScenario) -> TaskOutcome:
    outcome = TaskOutcome()
    with fresh_moto():
        scheduler = Recorder(schedule, outcome.taken)
        world = TaskWorld(outcome, scheduler, trigger_reads=scenario.rollback)
        ACTORS.world = world  # type: ignore[assignment]  # the gated clients call its gate
        old_template = world.ecs.register_task_definition(
            **_spec(f"{FAMILY}-template", "placeholder", OLD)
        )["taskDefinition"]["taskDefinitionArn"]
        template = world.ecs.register_task_definition(
            **_spec(f"{FAMILY}-template", "placeholder", NEW)
        )["taskDefinition"]["taskDefinitionArn"]
        _plain("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        clock = VirtualClock()
        config = EngineConfig(poll_seconds=1, deployment_timeout_seconds=10_000)

        def context(ecs: Any) -> StepContext:
            clients = Clients(
                ecs, ACTORS.plain()[1], _plain("s3"), _plain("events"), _plain("scheduler")
            )
            return StepContext(Aws(clients, clock), BUCKET, config)

        ctx = context(ACTORS.of("R")[0])
        # The plan reads what the task runs but decides nothing the task step does not read
        # again: not a step.
        plan = plan_step(context(world.ecs), MANIFEST, INVENTORY)
        rid = plan["release_id"]
        if scenario.released_first:
            update_tasks_step(context(world.ecs), rid)

        def release() -> None:
            if not scenario.released_first:
                outcome.release_status = update_tasks_step(ctx, rid)["status"]
            if scenario.rollback:
                error = {"Error": "Requested", "Cause": "release rollback"}
                status = rollback_step(ctx, {"plan": plan, "error": error})["status"]
                for _poll in range(POLLS):
                    if status != "rolling_back":
                        break
                    clock.sleep(1)
                    status = rollback_poll_step(ctx, rid)["status"]
                outcome.release_status = status

        def pulumi_up() -> None:
            olds = {**PROPS, "template_arn": old_template}
            pins = {CONTAINER: PINNED} if scenario.pinned else {}
            news = {**PROPS, "template_arn": template, "pinned_images": pins}
            gated = ACTORS.of("U")[0]

            def client(service: str, _session: Any) -> Any:
                return gated if service == "ecs" else _plain(service)

            # The provider's own code, on this run's gated client instead of a new one.
            with mock.patch.object(rollout_component, "client", client):
                result = TaskRolloutProvider().update(FAMILY, olds, news)
            outcome.up_action = result.outs["action"]

        def pipeline() -> None:
            move_followers(ACTORS.of("S")[0], [FollowerTask(FAMILY, CONTAINER)], SHIPPED)

        actors = {"R": actor(outcome, "R", release), "U": actor(outcome, "U", pulumi_up)}
        if scenario.ship:
            actors["S"] = actor(outcome, "S", pipeline)
        scheduler.run(actors)
        task = StateStore(_plain("s3"), BUCKET, rid, clock).load().tasks[TASK]  # type: ignore[union-attr]
        outcome.task_rollback, outcome.rollback_note = task.rollback, task.rollback_note
        final = world.newest()
        outcome.final_image, outcome.final_fields = images_of(final)[CONTAINER], _fields(final)
    return outcome


def task_problems(outcome: TaskOutcome, scenario: TaskScenario) -> list[str]:
    """What went wrong in one run; empty when every invariant holds."""
    found = [f"{name} failed with {error!r}" for name, error in outcome.errors.items()]
    if outcome.empty_registrations:
        found.append(f"registered what the newest revision carries: {outcome.empty_registrations}")
    # Each registration carries its registrar's own change (a release's image, a rollback's
    # previous image, Pulumi's fields and pin); one with neither deployer's is a lost update.
    for who, image, fields in outcome.registered:
        if who == "U" and (fields != NEW or (scenario.pinned and image != PINNED)):
            found.append(f"pulumi up registered {fields} {image[-8:]}, not its own change")
        # (R registers PINNED only over its own overtaken revision: what is current again.)
        if who == "R" and image not in (RELEASED, BEFORE, *([PINNED] if scenario.pinned else [])):
            found.append(f"the release registered {image[-8:]}")
        if who == "S" and image != SHIPPED:
            found.append(f"the ship registered {image[-8:]}")
        if not scenario.rollback and (image, fields) == (BEFORE, OLD):
            found.append("a revision with neither the release's image nor Pulumi's fields")
    if outcome.errors:
        return found
    if outcome.final_fields != NEW:
        found.append(f"pulumi up reported {outcome.up_action} but runs {outcome.final_fields}")
    # Of the image deployers (the release, the ship, a pinning `up`), the last to register wins.
    movers = {"R", "S", *(["U"] if scenario.pinned else [])}
    moved = [image for who, image, _ in outcome.registered if who in movers]
    if scenario.rollback:
        allowed = ("rolled_back", "superseded") if scenario.pinned else ("rolled_back",)
        if outcome.release_status != "rolled_back" or outcome.task_rollback not in allowed:
            found.append(
                f"the rollback ended {outcome.release_status}, the task "
                f"{outcome.task_rollback} ({outcome.rollback_note})"
            )
        if outcome.task_rollback == "superseded" and PINNED not in (outcome.rollback_note or ""):
            found.append(f"the rollback kept an image nobody deployed: {outcome.rollback_note}")
        # Never over a newer image: a pinned one stays; without one, the release's goes back.
        wanted = PINNED if scenario.pinned else BEFORE
        if outcome.final_image != wanted:
            found.append(f"rolled back, but the task runs {outcome.final_image[-8:]}")
    elif outcome.final_image != (moved[-1] if moved else RELEASED):
        found.append(f"the release and the up succeeded but it runs {outcome.final_image[-8:]}")
    return found


@dataclass
class Exploration:
    orders: list[str] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)


def explore(scenario: TaskScenario, first: bool = False, start: str = "") -> Exploration:
    """Run every order of the actors' steps that begins with `start` once (depth-first: each
    run's order branches at each later step where another live actor could have gone
    instead); the failing orders."""
    done = Exploration()
    pending = [start]
    with many_runs():
        _explore(done, pending, scenario, first)
    return done


def _explore(done: Exploration, pending: list[str], scenario: TaskScenario, first: bool) -> None:
    while pending:
        prefix = pending.pop()
        outcome = run_task_interleaving(prefix, scenario)
        taken = "".join(outcome.taken)
        assert taken.startswith(prefix), f"the run left its schedule {prefix!r}: {taken!r}"
        done.orders.append(taken)
        # An actor with a step left at position i was waiting there: it could have gone first.
        for i in range(len(prefix), len(taken)):
            pending += [taken[:i] + other for other in sorted(set(taken[i:]) - {taken[i]})]
        if found := task_problems(outcome, scenario):
            done.failures[taken] = found
            if first:
                break


RELEASE_VS_UP = TaskScenario(rollback=False)
RELEASE_AND_ROLLBACK_VS_UP = TaskScenario(rollback=True)
ROLLBACK_VS_UP = TaskScenario(rollback=True, released_first=True)
RELEASE_VS_PIN = TaskScenario(rollback=False, pinned=True)
# Three deployers at once: a release, a ship of the followed service and an `up`.
RELEASE_VS_SHIP_VS_UP = TaskScenario(rollback=False, ship=True)
ROLLBACK_VS_PIN = TaskScenario(rollback=True, released_first=True, pinned=True)


@pytest.mark.parametrize(
    ("scenario", "steps"),
    [(RELEASE_VS_UP, "RRUU"), (RELEASE_AND_ROLLBACK_VS_UP, "RRRRRRUU")],
    ids=["release", "release-then-rollback"],
)
def test_alone_each_deployer_reads_the_newest_once_and_registers_once(scenario, steps):
    """R's task update reads the newest revision and registers (with a rollback to follow, it
    reads what the trigger runs first, and so does the rollback); U reads and registers. One
    after the other, nobody merges twice."""
    outcome = run_task_interleaving(steps, scenario)
    assert "".join(outcome.taken) == steps
    assert [who for who, *_ in outcome.registered] == ["R"] * (1 + scenario.rollback) + ["U"]
    assert outcome.final_fields == NEW
    assert outcome.final_image == (BEFORE if scenario.rollback else RELEASED)
    assert task_problems(outcome, scenario) == []


def test_the_exploration_runs_every_order_of_the_steps_exactly_once():
    """Without a race the actors take 2 steps each: each of those orders begins some explored
    order; the merges after an overtaken registration add the longer ones."""
    orders = explore(RELEASE_VS_UP).orders
    assert len(orders) == len(set(orders))
    assert {"".join(p) for p in itertools.permutations("RRUU")} <= {o[:4] for o in orders}
    assert any(len(order) > 4 for order in orders)


@pytest.mark.parametrize(
    "scenario",
    [RELEASE_VS_UP, RELEASE_AND_ROLLBACK_VS_UP, ROLLBACK_VS_UP, RELEASE_VS_PIN, ROLLBACK_VS_PIN],
    ids=["release", "release-then-rollback", "rollback", "release-vs-pin", "rollback-vs-pin"],
)
def test_a_task_update_during_an_up_keeps_both_changes_in_every_order(scenario):
    assert explore(scenario).failures == {}


# The three deployers' exploration (about 500 orders) in parts, one per order of the first
# two steps, so that pytest-xdist spreads it (each actor takes at least two steps).
THREE_PARTS = ["".join(p) for p in itertools.product("RUS", repeat=2)]


@pytest.mark.parametrize("start", THREE_PARTS)
def test_a_release_a_ship_and_an_up_at_once_keep_all_three_changes_in_every_order(start):
    """The README's old limit (two deployers at once, not three): with the pipeline moving the
    task to its new image too, the last image deployer's image and Pulumi's fields run."""
    assert explore(RELEASE_VS_SHIP_VS_UP, start=start).failures == {}


def _trust_every_registration(protocol: Any) -> tuple[Any, str, Any]:
    """No merge again: a registration counts as current even when another came in between."""
    return protocol._Revisions, "overtaken", lambda self, number, read: False


def _ignore_expected_images(protocol: Any) -> tuple[Any, str, Any]:
    """A rollback that no longer checks that the release's image is what runs."""
    real = protocol._nothing_to_add
    return (
        protocol,
        "_nothing_to_add",
        lambda change, base: real(replace(change, expect_images={}), base),
    )


@pytest.mark.parametrize(
    ("mutant", "scenario", "symptom"),
    [
        (_trust_every_registration, RELEASE_VS_UP, "succeeded but it runs"),
        (_ignore_expected_images, ROLLBACK_VS_PIN, "rolled back, but the task runs"),
    ],
    ids=["no-merge-again", "rollback-over-a-newer-image"],
)
def test_the_exploration_catches_a_broken_protocol(monkeypatch, mutant, scenario, symptom):
    """The harness can fail: each mutant of runtime/task_rollout.py loses a change that
    reported success in some order (a lost update; a rollback over a pinned image)."""
    import ecs_delivery.runtime.task_rollout as protocol

    monkeypatch.setattr(*mutant(protocol))
    failures = explore(scenario, first=True).failures
    assert failures, "the mutant survived every order"
    assert any(symptom in problem for found in failures.values() for problem in found), failures

"""The Lambda steps, run by a small interpreter of the state machine's definition.

Step Functions has no offline runner here (moto's Step Functions does not invoke Lambda
tasks), so `run_definition` interprets the subset of Amazon States Language the definition
uses (Task, Choice, Wait, Map, Succeed, Fail; Parameters, ItemSelector, ResultPath, Catch)
and calls the step functions directly. Map items run one after another.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecs_delivery.components.state_machine import STEPS, definition
from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.engine import ReleaseInputError
from ecs_delivery.runtime.release.manifest import ManifestError
from ecs_delivery.runtime.release.state import StateStore
from ecs_delivery.runtime.release.steps import (
    StepContext,
    load_inventory_object,
    manifest_text,
    plan_step,
    poll_service_step,
    rollback_poll_step,
    rollback_step,
    runner_of,
    split_execution,
    start_service_step,
    update_tasks_step,
)

from .conftest import aws_of, config

REPO = Path(__file__).resolve().parents[3]


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def _get(data: Any, path: str, context: dict[str, Any]) -> Any:
    root, rest = (context, path[2:]) if path.startswith("$$") else (data, path[1:])
    for part in [p for p in rest.split(".") if p]:
        root = root[part]
    return root


def _set(data: dict[str, Any], path: str | None, value: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return value
    result = json.loads(json.dumps(data))
    parts = path[2:].split(".")
    node = result
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def _select(template: dict[str, Any], data: Any, context: dict[str, Any]) -> dict[str, Any]:
    return {
        (key[:-2] if key.endswith(".$") else key): (
            _get(data, value, context) if key.endswith(".$") else value
        )
        for key, value in template.items()
    }


def _choose(state: dict[str, Any], data: Any) -> str:
    for rule in state["Choices"]:
        try:
            value = _get(data, rule["Variable"], {})
        except (KeyError, IndexError, TypeError):
            continue
        if "StringEquals" in rule and value == rule["StringEquals"]:
            return str(rule["Next"])
        if "BooleanEquals" in rule and value is rule["BooleanEquals"]:
            return str(rule["Next"])
        if "NumericGreaterThan" in rule and value > rule["NumericGreaterThan"]:
            return str(rule["Next"])
    return str(state["Default"])


def run_states(
    machine: dict[str, Any],
    data: Any,
    functions: dict[str, Callable[[Any], Any]],
    sleep: Callable[[float], None],
    trace: list[str],
    context: dict[str, Any] | None = None,
) -> Any:
    """Run a (sub-)machine; returns its output or raises ExecutionFailed."""
    context = context or {}
    name = machine["StartAt"]
    while True:
        state = machine["States"][name]
        trace.append(name)
        kind = state["Type"]
        if kind == "Succeed":
            return data
        if kind == "Fail":
            raise ExecutionFailed(state["Error"], state["Cause"])
        if kind == "Wait":
            sleep(state["Seconds"])
        elif kind == "Choice":
            name = _choose(state, data)
            continue
        elif kind in ("Task", "Map"):
            try:
                if kind == "Task":
                    task_input = (
                        _select(state["Parameters"], data, context)
                        if "Parameters" in state
                        else data
                    )
                    try:
                        result = functions[state["Resource"]](task_input)
                    except ExecutionFailed:
                        raise
                    except Exception as error:
                        raise ExecutionFailed(type(error).__name__, str(error)) from error
                else:
                    for item in _get(data, state["ItemsPath"], context):
                        item_context = {**context, "Map": {"Item": {"Value": item}}}
                        item_input = _select(state["ItemSelector"], data, item_context)
                        run_states(
                            state["ItemProcessor"],
                            item_input,
                            functions,
                            sleep,
                            trace,
                            item_context,
                        )
                    result = None
                data = _set(data, state.get("ResultPath", "$"), result)
            except ExecutionFailed as failure:
                catcher = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if {"States.ALL", failure.error} & set(c["ErrorEquals"])
                    ),
                    None,
                )
                if catcher is None:
                    raise
                data = _set(
                    data,
                    catcher.get("ResultPath", "$"),
                    {"Error": failure.error, "Cause": failure.cause},
                )
                name = catcher["Next"]
                continue
        if state.get("End"):
            return data
        name = state["Next"]


ARNS = {step: f"arn:aws:lambda:eu-west-1:123456789012:function:release-{step}" for step in STEPS}


def execute(
    sim: SimulatedAws,
    execution_input: dict[str, Any],
    name: str = "exec-1",
    before: Callable[[str, dict[str, Any]], None] | None = None,
    start_grace_seconds: float = 0,
) -> tuple[str, Any, list[str]]:
    """Run the release state machine as execution `name`; ("SUCCEEDED", output, trace) or
    ("FAILED", error, trace). `before(step, event)` runs before each Lambda step."""
    settings = config(start_grace_seconds=start_grace_seconds)
    ctx = StepContext(aws=aws_of(sim), bucket=sim.bucket, config=settings)

    def plan(e: dict[str, Any]) -> Any:
        execution, runner = split_execution(e)
        return plan_step(ctx, manifest_text(ctx.aws, execution), sim.inventory, runner)

    steps = {
        "plan": plan,
        "start_service": lambda e: start_service_step(
            ctx, e["release_id"], e["service"], runner_of(e)
        ),
        "poll_service": lambda e: poll_service_step(
            ctx, e["release_id"], e["service"], runner_of(e)
        ),
        "update_tasks": lambda e: update_tasks_step(ctx, e["release_id"], runner_of(e)),
        "rollback": lambda e: rollback_step(ctx, *split_execution(e)),
        "rollback_poll": lambda e: rollback_poll_step(ctx, e["release_id"], runner_of(e)),
    }

    def call(step: str) -> Callable[[Any], Any]:
        def run(event: Any) -> Any:
            if before is not None:
                before(step, event)
            return steps[step](event)

        return run

    functions = {ARNS[step]: call(step) for step in STEPS}
    machine = definition(ARNS, max_concurrency=4, poll_seconds=10)
    trace: list[str] = []
    context = {"Execution": {"Name": name}}
    try:
        output = run_states(machine, execution_input, functions, sim.clock.sleep, trace, context)
    except ExecutionFailed as failure:
        return "FAILED", failure.error, trace
    return "SUCCEEDED", output, trace


def services(count: int) -> list[str]:
    return [f"svc-{i:03d}" for i in range(count)]


def test_state_machine_with_the_lambda_steps_deploys_services_then_tasks(sim: SimulatedAws) -> None:
    text = sim.manifest_yaml(
        "r1", "2.0.0", services=services(4), tasks={"job-01": {"followsService": "svc-002"}}
    )

    status, output, trace = execute(sim, {"manifest_yaml": text})

    assert status == "SUCCEEDED"
    assert trace[-2:] == ["UpdateTasks", "Released"]
    assert output["plan"]["services"] == services(4)
    assert all(sim.live_image(n) == sim.image(n, "2.0.0") for n in services(4))
    assert sim.task_image("job-01") == sim.image("svc-002", "2.0.0")
    assert StateStore(sim.clients.s3, sim.bucket, "dev-r1", sim.clock).load().status == "succeeded"


def test_state_machine_rolls_the_whole_release_back_when_a_service_fails(sim: SimulatedAws) -> None:
    sim.codedeploy.fail("svc-002")
    text = sim.manifest_yaml("r1", "2.0.0", services=services(4))

    status, error, trace = execute(sim, {"manifest_yaml": text})

    assert (status, error) == ("FAILED", "ReleaseRolledBack")
    assert "ServiceFailed" in trace and "Rollback" in trace and "PollRollback" in trace
    assert {n: sim.live_task_definition(n) for n in services(4)} == {
        n: sim.task_definitions[n] for n in services(4)
    }
    state = StateStore(sim.clients.s3, sim.bucket, "dev-r1", sim.clock).load()
    assert state.status == "rolled_back" and state.failed_item == "svc-002"


def test_state_machine_with_a_bad_manifest_fails_without_deploying(sim: SimulatedAws) -> None:
    text = "release: r1\nenvironment: dev\nservices:\n  ghost: {image: 'repo/ghost:1'}\n"

    status, error, trace = execute(sim, {"manifest_yaml": text})

    assert (status, error) == ("FAILED", "ReleaseFailed")
    assert trace == ["Plan", "Rollback", "RollbackDone?", "NothingDeployed"]
    assert sim.codedeploy.deployments == []


def test_a_manifest_with_a_yaml_tag_fails_plan_as_bad_input_and_ends_nothing_deployed(
    sim: SimulatedAws,
) -> None:
    text = sim.manifest_yaml("r1", "2.0.0", services=services(1)).replace(
        "image:", "image: !env", 1
    )
    ctx = StepContext(aws=aws_of(sim), bucket=sim.bucket, config=config())

    with pytest.raises(ManifestError, match=r"the YAML tag !env is not supported"):
        plan_step(ctx, text, sim.inventory)
    status, error, trace = execute(sim, {"manifest_yaml": text})

    assert (status, error) == ("FAILED", "ReleaseFailed")
    assert trace == ["Plan", "Rollback", "RollbackDone?", "NothingDeployed"]
    assert sim.codedeploy.deployments == []


def test_state_machine_with_nothing_to_change_succeeds_at_once(sim: SimulatedAws) -> None:
    text = sim.manifest_yaml("r1", "1.0.0", services=services(3))

    status, _, trace = execute(sim, {"manifest_yaml": text})

    assert status == "SUCCEEDED" and trace == ["Plan", "AnyServices?", "NoChanges"]


def test_handlers_read_their_environment_and_call_the_steps(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler builds real boto3 clients; moto answers them (CodeDeploy is not needed
    # by plan and rollback of a release whose services never started).
    sim.clients.s3.put_object(
        Bucket=sim.bucket,
        Key="config/inventory.json",
        Body=sim.inventory.model_dump_json(by_alias=True),
    )
    monkeypatch.setenv("STATE_BUCKET", sim.bucket)
    monkeypatch.setenv("INVENTORY_KEY", "config/inventory.json")
    spec = importlib.util.spec_from_file_location(
        "release_steps_handler",
        REPO / "src" / "ecs_delivery" / "lambdas" / "release_steps" / "handler.py",
    )
    assert spec and spec.loader
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)

    planned = handler.plan(
        {"manifest_yaml": sim.manifest_yaml("r9", "2.0.0", services=services(2))}
    )
    rolled = handler.rollback(
        {"plan": planned, "error": {"Error": "States.Timeout", "Cause": "test"}}
    )

    assert planned == {
        "release_id": "dev-r9",
        "has_changes": True,
        "services": services(2),
        "service_count": 2,
        "tasks": [],
    }
    assert rolled == {"release_id": "dev-r9", "status": "rolled_back"}
    state = StateStore(sim.clients.s3, sim.bucket, "dev-r9", sim.clock).load()
    assert state.failure == "States.Timeout: test"


def test_failed_plan_of_a_reused_release_name_leaves_the_earlier_release_alone(
    sim: SimulatedAws,
) -> None:
    first = sim.manifest_yaml("r1", "2.0.0", services=services(2))
    assert execute(sim, {"manifest_yaml": first})[0] == "SUCCEEDED"

    # Same release name, different manifest: the plan refuses it, and the rollback must
    # not undo release r1, which succeeded earlier.
    second = sim.manifest_yaml("r1", "3.0.0", services=services(2))
    status, error, trace = execute(sim, {"manifest_yaml": second})

    assert (status, error) == ("FAILED", "ReleaseFailed")
    assert trace == ["Plan", "Rollback", "RollbackDone?", "NothingDeployed"]
    assert all(sim.live_image(n) == sim.image(n, "2.0.0") for n in services(2))
    assert StateStore(sim.clients.s3, sim.bucket, "dev-r1", sim.clock).load().status == "succeeded"


def test_start_step_of_a_service_whose_revision_keeps_changing_names_the_service_once(
    racing_sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecs_delivery.runtime.release.engine import ServiceDeploymentFailed

    sim = racing_sim
    ctx = StepContext(aws=aws_of(sim), bucket=sim.bucket, config=config())
    plan = plan_step(ctx, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]), sim.inventory)
    real_register = sim.raw_ecs.register_task_definition
    target = sim.inventory.services["svc-000"]

    ships = iter(range(1, 100))

    def someone_ships_after_every_registration(**kwargs: Any) -> Any:
        response = real_register(**kwargs)
        # The pipeline ships another image each time: what runs keeps changing.
        image = sim.image("svc-000", f"9.{next(ships)}.0")
        containers = [{**c, "image": image} for c in kwargs["containerDefinitions"]]
        again = real_register(**{**kwargs, "containerDefinitions": containers, "tags": []})[
            "taskDefinition"
        ]["taskDefinitionArn"]
        sim.land(target, again)
        return response

    monkeypatch.setattr(
        sim.raw_ecs, "register_task_definition", someone_ships_after_every_registration
    )
    with pytest.raises(ServiceDeploymentFailed) as failure:
        start_service_step(ctx, plan["release_id"], "svc-000")

    assert str(failure.value).startswith("service svc-000: what the service runs changed")
    assert "service svc-000: service" not in str(failure.value)


def _handler_module(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    monkeypatch.setenv("STATE_BUCKET", "state-bucket")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(
        "release_steps_handler_env",
        REPO / "src" / "ecs_delivery" / "lambdas" / "release_steps" / "handler.py",
    )
    assert spec and spec.loader
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    return handler


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEPLOYMENT_TIMEOUT_SECONDS", "nan", "DEPLOYMENT_TIMEOUT_SECONDS: nan is not a finite"),
        ("DEPLOYMENT_TIMEOUT_SECONDS", "-1", "DEPLOYMENT_TIMEOUT_SECONDS: -1 must be more than 0"),
        ("START_GRACE_SECONDS", "inf", "START_GRACE_SECONDS: inf is not a finite number"),
        ("START_GRACE_SECONDS", "soon", "START_GRACE_SECONDS: soon is not a number"),
        ("END_TERMINATION_WAIT", "yes", "END_TERMINATION_WAIT: 'yes' is not a flag; give true"),
        ("END_TERMINATION_WAIT", "True", "END_TERMINATION_WAIT: 'True' is not a flag; give true"),
    ],
)
def test_the_steps_refuse_a_value_in_their_environment_that_is_not_valid_for_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    handler = _handler_module(monkeypatch, **{name: value})
    with pytest.raises(ReleaseInputError, match=message):
        handler.start_service({"release_id": "dev-r1", "service": "web"})


@pytest.mark.parametrize(("value", "ends"), [(None, False), ("false", False), ("true", True)])
def test_the_steps_end_a_termination_wait_only_when_their_environment_says_true(
    monkeypatch: pytest.MonkeyPatch, value: str | None, ends: bool
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("END_TERMINATION_WAIT", raising=False)
    handler = _handler_module(
        monkeypatch, **({} if value is None else {"END_TERMINATION_WAIT": value})
    )
    assert handler._context().config.end_termination_wait is ends


@pytest.mark.parametrize(
    ("step", "event", "message"),
    [
        ("start_service", {"service": "web"}, "event.release_id: required"),
        ("start_service", {"release_id": "dev-r1", "service": 3}, "event.service: give a name"),
        ("poll_service", [], "event: expected a JSON object"),
        ("rollback_poll", {"release_id": ""}, "event.release_id: give a name"),
        (
            "poll_service",
            {"release_id": "dev-r1", "service": "web", "runner": "x", "lease_seconds": "nan"},
            "event.lease_seconds: nan is not a finite number",
        ),
        (
            "update_tasks",
            {"release_id": "dev-r1", "runner": "", "lease_seconds": 660},
            "event.runner: give a name",
        ),
    ],
)
def test_a_step_event_without_its_fields_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, step: str, event: Any, message: str
) -> None:
    handler = _handler_module(monkeypatch)
    with pytest.raises(ReleaseInputError, match=message):
        getattr(handler, step)(event)


def test_a_manifest_or_inventory_object_that_is_not_in_s3_is_refused_naming_where_it_was_looked_for(
    sim: SimulatedAws,
) -> None:
    """Against moto's S3: the user's manifest_s3_uri and the stack's INVENTORY_KEY are
    input; a missing object or bucket is named (was a bare NoSuchKey / NoSuchBucket)."""
    aws = aws_of(sim)
    missing = f"s3://{sim.bucket}/releases/missing.yaml"

    with pytest.raises(ReleaseInputError) as no_key:
        manifest_text(aws, {"manifest_s3_uri": missing})
    with pytest.raises(ReleaseInputError) as no_bucket:
        manifest_text(aws, {"manifest_s3_uri": "s3://no-such-bucket-here/m.yaml"})
    with pytest.raises(ReleaseInputError) as no_inventory:
        load_inventory_object(aws, sim.bucket, "config/inventory.json")

    assert str(no_key.value) == (
        f"manifest_s3_uri: {missing}: no such object; upload the manifest there first"
    )
    assert str(no_bucket.value) == (
        "manifest_s3_uri: s3://no-such-bucket-here/m.yaml: no such bucket"
    )
    assert str(no_inventory.value) == (
        f"INVENTORY_KEY: s3://{sim.bucket}/config/inventory.json: no such object; the "
        "stack's `pulumi up` writes the release inventory there: run it first"
    )

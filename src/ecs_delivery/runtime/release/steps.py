"""The engine's steps as the Step Functions state machine calls them (via Lambda).

Each function takes a StepContext (clients, state bucket, engine config) and plain values
from the execution's data, and returns a small JSON-friendly dict. The Lambda handlers in
lambda_src/release_steps/handler.py only read their environment and call these.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from ecs_delivery import inputs
from ecs_delivery.runtime.aws import is_throttling
from ecs_delivery.runtime.release.engine import (
    EngineConfig,
    ReleaseBusyError,
    ReleaseEngine,
    ReleaseInputError,
    ReleaseStopped,
    ServiceDeploymentFailed,
    prepare,
)
from ecs_delivery.runtime.release.inventory import Inventory
from ecs_delivery.runtime.release.live import Aws, TaskDefinitions
from ecs_delivery.runtime.release.manifest import (
    ManifestError,
    load_manifest,
    parse_yaml,
    release_of,
    same_manifest,
)
from ecs_delivery.runtime.release.state import StateStore


class Throttled(RuntimeError):
    """AWS kept throttling after the engine's backoff; Step Functions retries the step."""


@dataclass(frozen=True)
class Runner:
    """The state machine execution that runs a release: it holds the release's lease, so
    that a `release apply` of the same release is refused while it runs (and the other way
    round). The definition passes it to every step (`runner`, `lease_seconds`)."""

    execution: str
    lease_seconds: float
    take_over: bool = False

    @property
    def owner(self) -> str:
        return f"execution {self.execution}"


@dataclass(frozen=True)
class StepContext:
    """What every step needs: AWS, the state bucket and the engine's settings; the task
    definitions described so far (a revision never changes, so a Lambda container keeps
    them across the steps it runs)."""

    aws: Aws
    bucket: str
    config: EngineConfig

    @cached_property
    def definitions(self) -> TaskDefinitions:
        return TaskDefinitions(self.aws)

    def engine(self, release: str, runner: Runner | None = None) -> ReleaseEngine:
        store = StateStore(self.aws.clients.s3, self.bucket, release, self.aws.clock)
        if store.load() is None:
            raise ReleaseInputError(f"release {release} has no state in s3://{self.bucket}")
        return self._engine(store, runner)

    def _engine(self, store: StateStore, runner: Runner | None) -> ReleaseEngine:
        owner = runner and runner.owner
        return ReleaseEngine(
            self.aws, store, self.config, definitions=self.definitions, owner=owner
        )


def event_field(event: Any, name: str) -> str:
    """A name the state machine passes in the event; a bad event is bad input, named."""
    if not isinstance(event, dict):
        raise ReleaseInputError(f"event: expected a JSON object, got {type(event).__name__}")
    if name not in event:
        raise ReleaseInputError(f"event.{name}: required; the state machine passes it")
    value = event[name]
    if not isinstance(value, str) or not value:
        raise ReleaseInputError(f"event.{name}: give a name (a non-empty string), got {value!r}")
    return value


def runner_of(event: Any, take_over: bool = False) -> Runner | None:
    """The execution a step runs for; None from a definition older than leases (an
    execution started before the upgrade finishes as it began, without a lease)."""
    if not isinstance(event, dict) or "runner" not in event:
        return None
    try:
        seconds = inputs.number(event.get("lease_seconds"), "event.lease_seconds", at_most=86_400)
    except inputs.ReadError as error:
        raise ReleaseInputError(str(error)) from None
    return Runner(event_field(event, "runner"), seconds, take_over)


def split_execution(event: Any) -> tuple[Any, Runner | None]:
    """(the execution document, its runner) from the input of the Plan and Rollback steps:
    `{"execution": <document>, "runner": <name>, "lease_seconds": n}`; an older definition
    passed the document alone. The document's `take_over: true` takes a dead runner's
    lease over."""
    if not isinstance(event, dict) or "execution" not in event:
        return event, None
    execution = event["execution"]
    take_over = isinstance(execution, dict) and execution.get("take_over", False)
    if not isinstance(take_over, bool):  # "yes" would silently not take over
        raise ReleaseInputError(
            f"execution input: take_over: give true or false (a JSON boolean), got {take_over!r}"
        )
    return execution, runner_of(event, take_over)


def environment_number(
    environ: Any, name: str, default: float, at_most: float, zero: bool = False
) -> float:
    """A positive (with `zero`, or 0), finite number from the Lambda's environment (NaN
    would never time out)."""
    try:
        return inputs.number(environ.get(name, str(default)), name, at_most=at_most, zero=zero)
    except inputs.ReadError as error:
        raise ReleaseInputError(str(error)) from None


def environment_flag(environ: Any, name: str, default: bool) -> bool:
    """`true` or `false` from the Lambda's environment (the component writes exactly these);
    anything else is refused, naming the variable, rather than read as either."""
    value = environ.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise ReleaseInputError(f"{name}: {value!r} is not a flag; give true or false")
    return value == "true"


def read_s3_text(aws: Aws, uri: str, named: str = "manifest_s3_uri", fix: str = "") -> str:
    """The text of an s3://bucket/key object; `named` is the input that gave the URI, and a
    missing object or bucket is refused naming it (with `fix`, what puts the object there)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ReleaseInputError(f"{named}: {uri!r} is not s3://bucket/key")
    try:
        response = aws.call(aws.clients.s3.get_object, Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "NoSuchKey":
            raise ReleaseInputError(f"{named}: {uri}: no such object{fix}") from None
        if code == "NoSuchBucket":
            raise ReleaseInputError(f"{named}: {uri}: no such bucket") from None
        raise
    try:
        return inputs.decode(response["Body"].read(inputs.MAX_BYTES + 1), uri)
    except inputs.ReadError as error:
        raise ReleaseInputError(str(error)) from None


def load_inventory_object(aws: Aws, bucket: str, key: str) -> Inventory:
    """The releaseInventory JSON the stack wrote to s3://bucket/key."""
    from ecs_delivery.runtime.release.inventory import parse_inventory

    uri = f"s3://{bucket}/{key}"
    try:
        fix = "; the stack's `pulumi up` writes the release inventory there: run it first"
        data = inputs.parse_json(read_s3_text(aws, uri, "INVENTORY_KEY", fix), uri)
    except inputs.ReadError as error:
        raise ReleaseInputError(str(error)) from None
    return parse_inventory(data, source=uri)


def manifest_text(aws: Aws, event: dict[str, Any]) -> str:
    """The manifest from the execution input (inline text or an S3 object)."""
    if not isinstance(event, dict):
        raise ReleaseInputError(
            f"execution input: expected a JSON object, got {type(event).__name__}"
        )
    if isinstance(event.get("manifest_yaml"), str):
        return str(event["manifest_yaml"])
    if isinstance(event.get("manifest_s3_uri"), str):
        fix = "; upload the manifest there first"
        return read_s3_text(aws, event["manifest_s3_uri"], "manifest_s3_uri", fix)
    raise ReleaseInputError("execution input: give manifest_yaml or manifest_s3_uri")


def check_syntax(text: str) -> None:
    """Refuse manifest text that is not YAML (tags, duplicates, budgets) before any AWS call."""
    _, problems = parse_yaml(text, "the execution's manifest")
    if problems:
        raise ManifestError(problems)


def _guard(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ClientError as error:
        if is_throttling(error):
            raise Throttled(str(error)) from error
        raise


def plan_step(
    ctx: StepContext, text: str, inventory: Inventory, runner: Runner | None = None
) -> dict[str, Any]:
    """Validate the manifest, plan or resume the release; list the services left to deploy.

    Raises ManifestError (nothing deployed) for a bad manifest, ReleaseBusyError (nothing
    done) while another runner holds the release.
    """
    manifest = load_manifest(text, inventory, "the execution's manifest")
    store = StateStore(ctx.aws.clients.s3, ctx.bucket, manifest.release_id, ctx.aws.clock)
    state, plan = _guard(prepare, ctx.aws, store, manifest, inventory, ctx.definitions)
    engine = ctx._engine(store, runner)
    if state is None:
        assert plan is not None
        if not plan.has_changes:
            return _plan_result(manifest.release_id, [], [], has_changes=False)
        state = engine.begin(plan)
    if state.status == "succeeded":
        return _plan_result(state.release_id, [], [], has_changes=False)
    if state.status != "running":
        raise ReleaseInputError(
            f"release {state.release_id} is {state.status}; a release name is used once"
        )
    if runner is not None:
        _guard(engine.take_lease, runner.lease_seconds, runner.take_over)
        state = engine.store.state
        if state.status == "succeeded":  # the runner that won the race finished it
            return _plan_result(state.release_id, [], [], has_changes=False)
    left = sorted(n for n, s in state.services.items() if s.status != "deployed")
    return _plan_result(state.release_id, left, sorted(state.tasks), has_changes=True)


def _plan_result(
    release: str, services: list[str], tasks: list[str], has_changes: bool
) -> dict[str, Any]:
    return {
        "release_id": release,
        "has_changes": has_changes,
        "services": services,
        "service_count": len(services),
        "tasks": tasks,
    }


def _hold(engine: ReleaseEngine, runner: Runner | None) -> None:
    """Stop (ReleaseBusyError, no rollback) once another runner holds the release."""
    if runner is not None:
        _guard(engine.hold_lease, runner.lease_seconds)


def start_service_step(
    ctx: StepContext, release: str, service: str, runner: Runner | None = None
) -> dict[str, Any]:
    """Register and start one service's deployment (once, however often it is called)."""
    engine = ctx.engine(release, runner)
    _hold(engine, runner)
    return {"release_id": release, "service": service, "status": _start(engine, service)}


def _start(engine: ReleaseEngine, service: str) -> str:
    """The service's start; a failure is recorded (the release then rolls back)."""
    try:
        return str(_guard(engine.start_service, service))
    except (Throttled, ReleaseStopped, ReleaseBusyError):
        raise
    except ServiceDeploymentFailed as error:
        engine.fail_service(service, error.reason)
        raise
    except Exception as error:
        engine.fail_service(service, str(error))
        raise ServiceDeploymentFailed(service, str(error)) from error


def poll_service_step(
    ctx: StepContext, release: str, service: str, runner: Runner | None = None
) -> dict[str, Any]:
    """Poll one service's deployment: status deploying or deployed (starting while another
    run's claim of its start may still become a deployment: the start is asked again);
    raises when it failed or when the release is being rolled back."""
    engine = ctx.engine(release, runner)
    _hold(engine, runner)
    state = engine.store.state
    if state.status != "running":
        raise ReleaseStopped(f"release {release} is {state.status}")
    if state.services[service].status in ("pending", "starting"):
        return {"release_id": release, "service": service, "status": _start(engine, service)}
    status = _guard(engine.poll_services, [service])[service]
    if status == "failed":
        error = engine.store.state.services[service].error or "deployment failed"
        raise ServiceDeploymentFailed(service, error)
    return {"release_id": release, "service": service, "status": status}


def update_tasks_step(
    ctx: StepContext, release: str, runner: Runner | None = None
) -> dict[str, Any]:
    """Point the scheduled tasks at their new revisions and mark the release succeeded."""
    engine = ctx.engine(release, runner)
    _hold(engine, runner)
    _guard(engine.update_tasks)
    status = engine.finish()
    if runner is not None:
        _guard(engine.drop_lease)
    return {"release_id": release, "status": status}


def _release_to_roll_back(ctx: StepContext, event: dict[str, Any]) -> StateStore | None:
    """The state of the release this execution started, or None if it started none."""
    if not isinstance(event, dict):  # the plan refused this input: nothing was started
        return None
    plan = event.get("plan")
    if isinstance(plan, dict) and isinstance(plan.get("release_id"), str):
        store = StateStore(ctx.aws.clients.s3, ctx.bucket, plan["release_id"], ctx.aws.clock)
        return store if store.load() is not None else None
    # The plan step failed. It may have written the state before failing; the manifest
    # names the release, and only a state written from this very manifest text is ours
    # (an earlier release under the same name must not be touched).
    try:
        text = manifest_text(ctx.aws, event)
    except (ReleaseInputError, ClientError):
        return None
    release = release_of(text)
    if release is None:
        return None
    store = StateStore(ctx.aws.clients.s3, ctx.bucket, release, ctx.aws.clock)
    state = store.load()
    if state is None or not same_manifest(state.manifest_digest, text):
        return None
    return store


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return "the release failed"
    cause = str(error.get("Cause", ""))
    with contextlib.suppress(ValueError, AttributeError):
        cause = str(json.loads(cause).get("errorMessage", cause))
    return f"{error.get('Error', 'Error')}: {cause}"[:1000]


def _rollback_result(engine: ReleaseEngine, runner: Runner | None) -> dict[str, Any]:
    """One step of the rollback; a settled rollback gives up this execution's lease (a
    rollback needs none: every runner may help finish one)."""
    status = _guard(engine.rollback_step)
    if status != "rolling_back" and runner is not None:
        _guard(engine.drop_lease)
    return {"release_id": engine.release_id, "status": status}


def rollback_step(
    ctx: StepContext, event: dict[str, Any], runner: Runner | None = None
) -> dict[str, Any]:
    """Start rolling the release back (the whole execution document is the input)."""
    store = _release_to_roll_back(ctx, event)
    if store is None:
        return {"release_id": None, "status": "nothing_deployed"}
    engine = ctx._engine(store, runner)
    # The failed item (if a service or task failed) is found in the state by the engine.
    _guard(engine.start_rollback, _error_text(event.get("error")), None, runner is not None)
    return _rollback_result(engine, runner)


def rollback_poll_step(
    ctx: StepContext, release: str, runner: Runner | None = None
) -> dict[str, Any]:
    """Move the rollback one step on: status rolling_back, rolled_back or rollback_failed."""
    return _rollback_result(ctx.engine(release, runner), runner)


__all__ = [
    "ManifestError",
    "StepContext",
    "check_syntax",
    "environment_number",
    "event_field",
    "Throttled",
    "load_inventory_object",
    "manifest_text",
    "plan_step",
    "poll_service_step",
    "rollback_poll_step",
    "rollback_step",
    "Runner",
    "runner_of",
    "split_execution",
    "start_service_step",
    "update_tasks_step",
]

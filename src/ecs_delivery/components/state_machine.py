"""The Step Functions definition that runs a release with the engine's Lambda steps.

    Plan ─► AnyServices? ─► DeployServices (Map, MaxConcurrency) ─► UpdateTasks ─► Released
                 └──────────────(no services)──────────────────────┘
    Map item: StartService ─► WaitForDeployment ─► PollService ─► DeploymentDone?
                                   ▲──── deploying, or starting ──────┘
    Any Task error ─► Rollback ─► RollbackDone? ─► WaitForRollback ─► PollRollback ─┐
                                       ▲──────────────── rolling_back ────────────────┘
        rolled_back ─► ReleaseRolledBack (Fail); nothing_deployed ─► NothingDeployed (Fail);
        anything else ─► RollbackFailed (Fail)
    ReleaseBusyError from any step ─► ReleaseBusy (Fail): another runner holds the release

Each execution holds the release's lease (its Name is the runner; `take_over: true` in the
input takes a dead runner's lease): a `release apply` of a release an execution runs is
refused, and an execution of a release someone else runs ends without rolling it back.

Inside the Map, a failed deployment or step ends the item in ServiceFailed (Fail); that
fails the Map, whose Catch starts the rollback. The rollback works from the persisted
release state, not from the execution's data, so it also covers items the Map cancelled.
"""

from __future__ import annotations

from typing import Any

from ecs_delivery.runtime.release.lifecycle import execution_lease_seconds

STEPS = ("plan", "start_service", "poll_service", "update_tasks", "rollback", "rollback_poll")
ROLLBACK_STATE = "Rollback"

# Lambda's own transient failures, retried before anything is caught.
_LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Raised by the handlers when AWS kept throttling after the engine's own backoff.
THROTTLED_ERROR = "Throttled"
# Raised by a step while another runner holds the release's lease: the execution ends
# without a rollback (rolling back would undo that runner's deployments).
BUSY_ERROR = "ReleaseBusyError"
BUSY_STATE = "ReleaseBusy"


def _retry() -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": _LAMBDA_TRANSIENT,
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2.0,
            "JitterStrategy": "FULL",
        },
        {
            "ErrorEquals": [THROTTLED_ERROR],
            "IntervalSeconds": 5,
            "MaxAttempts": 8,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 120,
            "JitterStrategy": "FULL",
        },
    ]


def _catch(catch_to: str, busy_to: str) -> list[dict[str, Any]]:
    return [
        {"ErrorEquals": [BUSY_ERROR], "ResultPath": "$.error", "Next": busy_to},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to},
    ]


def _task(
    arn: str, nxt: str | None, catch_to: str, busy_to: str = BUSY_STATE, **extra: Any
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": arn,
        **extra,
        "Retry": _retry(),
        "Catch": _catch(catch_to, busy_to),
    }
    if nxt is None:
        state["End"] = True
    else:
        state["Next"] = nxt
    return state


def definition(
    step_function_arns: dict[str, str], max_concurrency: int, poll_seconds: int
) -> dict[str, Any]:
    """The Amazon States Language definition (a dict; json.dumps it for the resource).

    `step_function_arns` maps each step (plan, start_service, poll_service, update_tasks,
    rollback, rollback_poll) to its Lambda function ARN. Execution input:
    `{"manifest_yaml": "<text>"}` or `{"manifest_s3_uri": "s3://bucket/key"}`.
    """
    missing = [step for step in STEPS if not step_function_arns.get(step)]
    unknown = sorted(set(step_function_arns) - set(STEPS))
    problems = []
    if missing:
        problems.append(f"step_function_arns: missing {', '.join(missing)}")
    if unknown:
        problems.append(f"step_function_arns: unknown steps {', '.join(unknown)}")
    if not isinstance(max_concurrency, int) or max_concurrency < 1:
        problems.append(f"max_concurrency: {max_concurrency!r} must be an integer >= 1")
    if not isinstance(poll_seconds, int) or poll_seconds < 1:
        problems.append(f"poll_seconds: {poll_seconds!r} must be an integer >= 1")
    if problems:
        raise ValueError("; ".join(problems))
    arn = step_function_arns
    # Every step is told which execution runs the release, for the release's lease.
    runner = {
        "runner.$": "$$.Execution.Name",
        "lease_seconds": execution_lease_seconds(poll_seconds),
    }
    whole_document = {"execution.$": "$", **runner}

    item_processor = {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "StartService",
        "States": {
            "StartService": _task(
                arn["start_service"],
                "WaitForDeployment",
                "ServiceFailed",
                "ServiceBusy",
                ResultPath="$.step",
            ),
            "WaitForDeployment": {
                "Type": "Wait",
                "Seconds": poll_seconds,
                "Next": "PollService",
            },
            "PollService": _task(
                arn["poll_service"],
                "DeploymentDone?",
                "ServiceFailed",
                "ServiceBusy",
                Parameters={
                    "release_id.$": "$.release_id",
                    "service.$": "$.service",
                    **runner,
                },
                ResultPath="$.step",
            ),
            "DeploymentDone?": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.step.status",
                        "StringEquals": "deployed",
                        "Next": "ServiceDeployed",
                    },
                    {
                        "Variable": "$.step.status",
                        "StringEquals": "deploying",
                        "Next": "WaitForDeployment",
                    },
                    {
                        # another run's claim of the start may still become a deployment
                        "Variable": "$.step.status",
                        "StringEquals": "starting",
                        "Next": "WaitForDeployment",
                    },
                ],
                "Default": "ServiceFailed",
            },
            "ServiceDeployed": {"Type": "Succeed"},
            "ServiceFailed": {
                "Type": "Fail",
                "Error": "ServiceDeploymentFailed",
                "Cause": "a service's deployment failed or its step raised; see the release state",
            },
            "ServiceBusy": {
                "Type": "Fail",
                "Error": BUSY_ERROR,
                "Cause": "another runner took the release over",
            },
        },
    }
    states: dict[str, Any] = {
        "Plan": _task(
            arn["plan"],
            "AnyServices?",
            ROLLBACK_STATE,
            Parameters=whole_document,
            ResultPath="$.plan",
        ),
        "AnyServices?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.plan.has_changes", "BooleanEquals": False, "Next": "NoChanges"},
                {
                    "Variable": "$.plan.service_count",
                    "NumericGreaterThan": 0,
                    "Next": "DeployServices",
                },
            ],
            "Default": "UpdateTasks",
        },
        "NoChanges": {"Type": "Succeed", "Comment": "everything already runs the manifest"},
        "DeployServices": {
            "Type": "Map",
            "ItemsPath": "$.plan.services",
            "ItemSelector": {
                "release_id.$": "$.plan.release_id",
                "service.$": "$$.Map.Item.Value",
                **runner,
            },
            "MaxConcurrency": max_concurrency,
            "ItemProcessor": item_processor,
            "ResultPath": None,
            "Next": "UpdateTasks",
            "Catch": _catch(ROLLBACK_STATE, BUSY_STATE),
        },
        "UpdateTasks": _task(
            arn["update_tasks"],
            "Released",
            ROLLBACK_STATE,
            Parameters={"release_id.$": "$.plan.release_id", **runner},
            ResultPath="$.tasks",
        ),
        "Released": {"Type": "Succeed"},
        # The rollback task gets the whole execution document: it finds the release from
        # $.plan when the plan ran, or from the manifest in the input when it did not.
        ROLLBACK_STATE: _task(
            arn["rollback"],
            "RollbackDone?",
            "RollbackFailed",
            Parameters=whole_document,
            ResultPath="$.rollback",
        ),
        "WaitForRollback": {"Type": "Wait", "Seconds": poll_seconds, "Next": "PollRollback"},
        "PollRollback": _task(
            arn["rollback_poll"],
            "RollbackDone?",
            "RollbackFailed",
            Parameters={"release_id.$": "$.rollback.release_id", **runner},
            ResultPath="$.rollback",
        ),
        "RollbackDone?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.rollback.status",
                    "StringEquals": "rolling_back",
                    "Next": "WaitForRollback",
                },
                {
                    "Variable": "$.rollback.status",
                    "StringEquals": "rolled_back",
                    "Next": "ReleaseRolledBack",
                },
                {
                    "Variable": "$.rollback.status",
                    "StringEquals": "nothing_deployed",
                    "Next": "NothingDeployed",
                },
            ],
            "Default": "RollbackFailed",
        },
        BUSY_STATE: {
            "Type": "Fail",
            "Error": BUSY_STATE,
            "Cause": "another runner holds the release (a `release apply`, or an execution that "
            "took it over); nothing was rolled back. Follow it with `release status`; to take "
            'over a dead runner\'s release, start the execution with "take_over": true',
        },
        "ReleaseRolledBack": {
            "Type": "Fail",
            "Error": "ReleaseRolledBack",
            "Cause": "the release failed and every service and task is back on its previous revision",
        },
        "NothingDeployed": {
            "Type": "Fail",
            "Error": "ReleaseFailed",
            "Cause": "the release failed before anything was deployed (see the Plan step's error)",
        },
        "RollbackFailed": {
            "Type": "Fail",
            "Error": "RollbackFailed",
            "Cause": "the rollback did not finish; a person must look (`release status`, `release rollback`)",
        },
    }
    return {
        "Comment": "ecs-delivery release: deploy services in parallel, update scheduled tasks, "
        "roll the whole release back on any failure",
        "StartAt": "Plan",
        "States": states,
    }


# --------------------------------------------------------------------------- checks


def _targets(state: dict[str, Any]) -> list[str]:
    """Every state a state can go to next (Next, Choice branches, Default, Catch)."""
    targets = []
    if "Next" in state:
        targets.append(state["Next"])
    for choice in state.get("Choices", []):
        targets.append(choice["Next"])
    if "Default" in state:
        targets.append(state["Default"])
    for catcher in state.get("Catch", []):
        targets.append(catcher["Next"])
    return targets


def _reachable(states: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        name = stack.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        stack.extend(_targets(states[name]))
    return seen


def _check_scope(
    states: dict[str, Any], start: str, scope: str, in_map: bool, problems: list[str]
) -> None:
    for name, state in states.items():
        for target in _targets(state):
            if target not in states:
                problems.append(f"{scope}{name}: goes to unknown state {target}")
    reachable = _reachable(states, start)
    if start not in states:
        problems.append(f"{scope}StartAt names unknown state {start}")
    for name in sorted(set(states) - reachable):
        problems.append(f"{scope}{name}: unreachable from {start}")
    rollback_path = _reachable(states, ROLLBACK_STATE) if ROLLBACK_STATE in states else set()

    for name, state in states.items():
        if state.get("Type") not in ("Task", "Map", "Parallel"):
            continue
        catch_all = [c for c in state.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])]
        if not catch_all:
            problems.append(f"{scope}{name}: {state['Type']} without a Catch for States.ALL")
            continue
        for catcher in state.get("Catch", []):
            busy = BUSY_ERROR in catcher.get("ErrorEquals", [])
            if busy and states.get(catcher["Next"], {}).get("Type") != "Fail":
                problems.append(
                    f"{scope}{name}: a {BUSY_ERROR} Catch must end in a Fail state (another "
                    "runner holds the release: rolling it back would undo that runner's "
                    "deployments)"
                )
        target = catch_all[0]["Next"]
        if in_map:
            # Inside a Map an item can only fail; the Map's own Catch starts the rollback.
            if states.get(target, {}).get("Type") != "Fail":
                problems.append(f"{scope}{name}: Catch inside the Map must end in a Fail state")
        elif name in rollback_path:
            if states.get(target, {}).get("Type") != "Fail":
                problems.append(f"{scope}{name}: a rollback step's Catch must end in a Fail state")
        elif ROLLBACK_STATE not in _reachable(states, target):
            problems.append(f"{scope}{name}: Catch does not lead to {ROLLBACK_STATE}")
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            _check_scope(
                processor.get("States", {}),
                processor.get("StartAt", ""),
                f"{scope}{name}/",
                True,
                problems,
            )


def check_definition(defn: dict[str, Any]) -> list[str]:
    """Structural problems: unknown targets, unreachable states, Tasks whose errors do not
    lead to the rollback (or, inside a Map or on the rollback path, to a Fail state)."""
    problems: list[str] = []
    states = defn.get("States", {})
    if ROLLBACK_STATE not in states:
        problems.append(f"no {ROLLBACK_STATE} state")
    _check_scope(states, defn.get("StartAt", ""), "", False, problems)
    return problems

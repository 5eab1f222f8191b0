"""Issue 19, item 1: the validation hook answers ECS's own blue/green lifecycle hook
(POST_TEST_TRAFFIC_SHIFT) with the same probes as CodeDeploy's, and always answers.

ECS takes the verdict as the function's return value ({"hookStatus": ...}); no AWS call is
made, so the test needs no client at all: a local HTTP server stands in for the test listener.
"""

from __future__ import annotations

import json

import pytest
from validation_hook import handler, logic

from tests.lambdas.validation_hook.test_handler import FakeContext

SERVICE_ARN = "arn:aws:ecs:eu-west-1:123456789012:service/dev-cluster/web"


def ecs_event(details: object = None) -> dict:
    """The shape ECS sends to a Lambda lifecycle hook, with the hook's hookDetails."""
    event = {
        "executionDetails": {
            "testTrafficWeights": {},
            "productionTrafficWeights": {},
            "serviceArn": SERVICE_ARN,
            "targetServiceRevisionArn": f"{SERVICE_ARN.replace(':service/', ':service-revision/')}/1",
        },
        "executionId": "a1b2c3d4-5678-90ab-cdef-000000000001",
        "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "resourceArn": f"{SERVICE_ARN.replace(':service/', ':service-deployment/')}/dep1",
    }
    if details is not None:
        event["hookDetails"] = details
    return event


@pytest.fixture
def ecs_env(monkeypatch, listener):
    monkeypatch.setenv("TEST_URL", listener.base_url)
    monkeypatch.setenv(
        "VALIDATION_CONFIG",
        json.dumps(
            {
                "web": {"probes": 2, "interval_seconds": 0.01, "path": "/health"},
                "api": {"probes": 2, "interval_seconds": 0.01, "path": "/error"},
            }
        ),
    )

    def no_client():
        raise AssertionError("an ECS hook answers by its return value: no CodeDeploy client")

    monkeypatch.setattr(handler, "build_codedeploy_client", no_client)


def test_an_ecs_hook_probes_the_test_listener_and_answers_succeeded(ecs_env, listener):
    answer = handler.handler(ecs_event({"deploymentGroup": "web"}), FakeContext(60_000))

    assert answer == {"hookStatus": "SUCCEEDED"}
    assert listener.seen.paths() == ["/health", "/health"]


def test_an_ecs_hook_finds_its_probes_by_hook_details_given_as_json_text(ecs_env, listener):
    # The service's hook holds hookDetails as JSON text; the key picks api's failing path.
    answer = handler.handler(ecs_event(json.dumps({"deploymentGroup": "api"})), FakeContext(60_000))

    assert answer == {"hookStatus": "FAILED"}
    assert listener.seen.paths() == ["/error"]  # the verdict cannot change after one failure


def test_without_hook_details_the_service_name_of_the_arn_is_the_key(ecs_env, listener):
    assert handler.handler(ecs_event(), FakeContext(60_000)) == {"hookStatus": "SUCCEEDED"}


@pytest.mark.parametrize(
    "config",
    [None, "{not json", json.dumps({"web": {"probes": "many"}})],
    ids=["missing", "malformed", "invalid"],
)
def test_an_ecs_hook_always_answers_failed_when_its_config_is_broken(
    monkeypatch, listener, config, capsys
):
    monkeypatch.setenv("TEST_URL", listener.base_url)
    if config is None:
        monkeypatch.delenv("VALIDATION_CONFIG", raising=False)
    else:
        monkeypatch.setenv("VALIDATION_CONFIG", config)

    answer = handler.handler(ecs_event({"deploymentGroup": "web"}), FakeContext(60_000))

    assert answer == {"hookStatus": "FAILED"}
    assert listener.seen.paths() == []
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in logged][-2:] == ["validation_error", "answered"]


def test_an_unknown_service_answers_failed_naming_the_missing_entry(ecs_env, listener, capsys):
    answer = handler.handler(ecs_event({"deploymentGroup": "worker"}), FakeContext(60_000))

    assert answer == {"hookStatus": "FAILED"}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    unknown = next(line for line in logged if line["event"] == "unknown_deployment_group")
    assert "VALIDATION_CONFIG on this Lambda has an entry for 'worker'" in unknown["fix"]


def test_a_probe_that_raises_still_answers_failed(ecs_env):
    def broken_probe(url, *, timeout_seconds, host_header):
        raise RuntimeError("socket layer exploded")

    answer = logic.run_ecs_hook(
        ecs_event({"deploymentGroup": "web"}),
        environment=handler.read_environment(
            {"TEST_URL": "http://127.0.0.1:1", "VALIDATION_CONFIG": json.dumps({"web": {}})}
        ),
        probe=broken_probe,
        deadline=float("inf"),
    )

    assert answer == {"hookStatus": "FAILED"}


def test_an_ecs_hook_out_of_time_answers_failed_without_probing(ecs_env, listener):
    # Less time left than the reserve for the answer: no probe starts.
    answer = handler.handler(ecs_event({"deploymentGroup": "web"}), FakeContext(1_000))

    assert answer == {"hookStatus": "FAILED"}
    assert listener.seen.paths() == []


def test_a_codedeploy_event_is_not_taken_for_an_ecs_one():
    assert not logic.is_ecs_event({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h"})
    assert logic.is_ecs_event(ecs_event())

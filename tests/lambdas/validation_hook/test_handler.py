"""The Lambda entry point end to end: environment, event, context, CodeDeploy report."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from validation_hook import handler

HOOK_DIR = (
    Path(__file__).resolve().parents[3] / "src" / "ecs_delivery" / "lambdas" / "validation_hook"
)


class FakeContext:
    """The part of the Lambda context object the handler uses."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_env(monkeypatch, codedeploy, listener):
    """The Lambda's environment as the stack sets it, with the stubbed client wired in."""
    monkeypatch.setenv("TEST_URL", listener.base_url)
    monkeypatch.setenv(
        "VALIDATION_CONFIG",
        json.dumps({"web-dev": {"probes": 2, "interval_seconds": 0.01, "path": "/health"}}),
    )
    monkeypatch.setattr(handler, "build_codedeploy_client", lambda: codedeploy.client)
    return monkeypatch


def event_for(codedeploy) -> dict[str, str]:
    # The shape CodeDeploy sends to an ECS lifecycle hook.
    return {
        "DeploymentId": codedeploy.deployment_id,
        "LifecycleEventHookExecutionId": codedeploy.hook_execution_id,
    }


def log_lines(capsys) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_handler_probes_the_test_listener_and_reports_succeeded(
    lambda_env, codedeploy, listener, capsys
):
    codedeploy.expect_get_deployment("web-dev")
    codedeploy.expect_report("Succeeded")

    result = handler.handler(event_for(codedeploy), FakeContext(remaining_ms=60_000))

    assert result == {"deploymentId": codedeploy.deployment_id, "status": "Succeeded"}
    codedeploy.stubber.assert_no_pending_responses()
    assert listener.seen.paths() == ["/health", "/health"]
    events = [line["event"] for line in log_lines(capsys)]
    assert events == ["hook_started", "probe", "probe", "validation_result", "reported"]


def test_handler_reports_failed_when_green_answers_5xx(lambda_env, codedeploy, listener):
    lambda_env.setenv("VALIDATION_CONFIG", json.dumps({"web-dev": {"path": "/error"}}))
    codedeploy.expect_get_deployment("web-dev")
    codedeploy.expect_report("Failed")

    result = handler.handler(event_for(codedeploy), FakeContext(remaining_ms=60_000))

    assert result["status"] == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    assert listener.seen.paths() == ["/error"]


def test_handler_reports_failed_when_validation_config_is_missing(lambda_env, codedeploy, capsys):
    lambda_env.delenv("VALIDATION_CONFIG")
    codedeploy.expect_get_deployment("web-dev")
    codedeploy.expect_report("Failed")

    result = handler.handler(event_for(codedeploy), FakeContext(remaining_ms=60_000))

    assert result["status"] == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    error = next(line for line in log_lines(capsys) if line["event"] == "validation_error")
    assert "VALIDATION_CONFIG: not set" in error["error"]


def test_handler_with_too_little_time_left_reports_failed_without_probing(
    lambda_env, codedeploy, listener
):
    codedeploy.expect_get_deployment("web-dev")
    codedeploy.expect_report("Failed")
    too_little = int(handler.REPORT_RESERVE_SECONDS * 1000) - 1

    result = handler.handler(event_for(codedeploy), FakeContext(remaining_ms=too_little))

    assert result["status"] == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    assert listener.seen.paths() == []


@pytest.mark.parametrize("missing", ["DeploymentId", "LifecycleEventHookExecutionId"])
def test_event_without_an_id_raises_naming_the_field_and_calls_nothing(
    lambda_env, codedeploy, listener, capsys, missing
):
    event = event_for(codedeploy)
    del event[missing]

    with pytest.raises(handler.InvalidHookEvent) as raised:
        handler.handler(event, FakeContext(remaining_ms=60_000))

    assert str(raised.value).startswith(
        f"invalid lifecycle hook event ({missing}: missing or empty)"
    )
    # No stubbed responses were queued: any CodeDeploy call would have raised instead.
    codedeploy.stubber.assert_no_pending_responses()
    assert listener.seen.paths() == []
    (logged,) = log_lines(capsys)
    assert logged["event"] == "invalid_event"
    assert logged["received_keys"] == sorted(event)


def test_event_that_is_not_an_object_names_both_fields():
    with pytest.raises(handler.InvalidHookEvent) as raised:
        handler.parse_event(None)

    assert (
        "(DeploymentId: missing or empty; LifecycleEventHookExecutionId: missing or empty)"
        in str(raised.value)
    )


def test_read_environment_turns_an_empty_test_url_into_none():
    env = handler.read_environment({"TEST_URL": "", "VALIDATION_CONFIG": "{}"})

    assert env == handler.logic.HookEnvironment(test_url=None, validation_config="{}")


def test_codedeploy_client_retries_and_uses_the_lambda_region(aws_env):
    client = handler.build_codedeploy_client()

    assert client.meta.service_model.service_name == "codedeploy"
    assert client.meta.region_name == "eu-west-1"
    # One retry and short timeouts keep the report inside the time reserved for it.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert client.meta.config.read_timeout == 2


def test_zip_of_the_folder_alone_imports_as_handler_dot_handler(tmp_path):
    """Archive root = the folder's contents, as `pulumi.FileArchive(src/ecs_delivery/lambdas/validation_hook)`."""
    archive = tmp_path / "hook.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for source in sorted(HOOK_DIR.glob("*.py")):
            zipped.write(source, source.name)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import handler; "
        "print(handler.logic.__name__, callable(handler.handler), 'validation_hook' in sys.modules)"
    )

    # -I: no PYTHONPATH, no cwd on sys.path, so only the archive can provide the modules.
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(archive)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["logic", "True", "False"]

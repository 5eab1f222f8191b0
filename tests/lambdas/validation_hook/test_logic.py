"""The hook's logic against a real HTTP server on 127.0.0.1 and a stubbed CodeDeploy."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from validation_hook import logic

GROUP = "web-dev"


def environment(test_url: str | None = None, **settings: Any) -> logic.HookEnvironment:
    """Hook environment with one service entry for GROUP."""
    config = {"probes": 3, "interval_seconds": 0.5, "latency_budget_ms": 1000, **settings}
    return logic.HookEnvironment(test_url=test_url, validation_config=json.dumps({GROUP: config}))


def hook_of(codedeploy) -> logic.HookEvent:
    return logic.HookEvent(
        deployment_id=codedeploy.deployment_id, hook_execution_id=codedeploy.hook_execution_id
    )


def logs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def run(codedeploy, env: logic.HookEnvironment, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "codedeploy": codedeploy.client,
        "environment": env,
        "sleep": RecordingSleep(),
        "deadline": time.monotonic() + 30,
    }
    kwargs.update(overrides)
    return logic.run_hook(hook_of(codedeploy), **kwargs)


# --------------------------------------------------------------------------- verdicts


def test_healthy_green_passes_every_probe_and_reports_succeeded(codedeploy, listener, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Succeeded")
    sleep = RecordingSleep()

    status = run(codedeploy, environment(url=listener.base_url), sleep=sleep)

    assert status == "Succeeded"
    codedeploy.stubber.assert_no_pending_responses()
    assert listener.seen.paths() == ["/health", "/health", "/health"]
    assert sleep.calls == [0.5, 0.5]  # between probes, not after the last
    probes = [line for line in logs(capsys) if line["event"] == "probe"]
    assert [(p["probe"], p["status"], p["outcome"]) for p in probes] == [
        (1, 200, "passed"),
        (2, 200, "passed"),
        (3, 200, "passed"),
    ]
    assert all(p["deployment_id"] == codedeploy.deployment_id for p in probes)
    assert all(p["deployment_group"] == GROUP for p in probes)
    assert all(isinstance(p["latency_ms"], float) for p in probes)


def test_server_error_fails_validation_at_the_first_probe_and_reports_failed(
    codedeploy, listener, capsys
):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url=listener.base_url, path="/error"))

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    assert listener.seen.paths() == ["/error"]  # all must pass, so one failure decides
    (probe,) = [line for line in logs(capsys) if line["event"] == "probe"]
    assert probe["status"] == 503
    assert probe["reason"] == "expected status 200, got 503"


def test_response_slower_than_latency_budget_fails_validation(codedeploy, listener, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(
        codedeploy, environment(url=listener.base_url, path="/slow", latency_budget_ms=100)
    )

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    (probe,) = [line for line in logs(capsys) if line["event"] == "probe"]
    assert probe["status"] == 200
    assert probe["latency_ms"] >= 300
    assert probe["reason"].startswith("latency ")
    assert probe["reason"].endswith(" ms above budget 100 ms")


def test_response_slower_than_probe_timeout_fails_validation_as_timeout(
    codedeploy, listener, capsys
):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url=listener.base_url, path="/slow", timeout_seconds=0.1))

    assert status == "Failed"
    (probe,) = [line for line in logs(capsys) if line["event"] == "probe"]
    assert probe["status"] is None
    assert probe["reason"] == "timed out after 0.1 s"
    assert probe["latency_ms"] < 300


def test_connection_refused_fails_validation_and_reports_failed(
    codedeploy, closed_port_url, capsys
):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url=closed_port_url))

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    (probe,) = [line for line in logs(capsys) if line["event"] == "probe"]
    assert probe["status"] is None
    assert probe["reason"].startswith("ConnectionRefusedError")


def test_wrong_path_answered_404_fails_validation(codedeploy, listener, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url=listener.base_url, path="/no-such-health"))

    assert status == "Failed"
    (probe,) = [line for line in logs(capsys) if line["event"] == "probe"]
    assert probe["reason"] == "expected status 200, got 404"


def test_redirect_is_reported_as_its_status_and_not_followed(codedeploy, listener, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url=listener.base_url, path="/redirect"))

    assert status == "Failed"
    assert listener.seen.paths() == ["/redirect"]
    (probe,) = [line for line in logs(capsys) if line["event"] == "probe"]
    assert probe["status"] == 302


def test_expected_status_other_than_200_is_honoured(codedeploy, listener):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Succeeded")

    status = run(
        codedeploy, environment(url=listener.base_url, path="/redirect", expected_status=302)
    )

    assert status == "Succeeded"


def test_host_header_is_sent_so_host_based_listener_rules_route_to_the_service(
    codedeploy, listener
):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Succeeded")

    status = run(
        codedeploy,
        environment(url=listener.base_url, path="/vhost", host_header="web.internal", probes=1),
    )

    assert status == "Succeeded"
    assert listener.seen.requests == [("/vhost", "web.internal")]


def test_test_url_is_the_default_base_url_and_keeps_its_path_prefix(codedeploy, listener):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    run(codedeploy, environment(test_url=listener.base_url + "/api/", probes=1))

    assert listener.seen.paths() == ["/api/health"]


def test_probe_ignores_proxy_settings_and_reaches_the_listener_directly(
    codedeploy, listener, monkeypatch
):
    # A proxy would carry probes away from the test listener; this one does not even exist.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Succeeded")

    status = run(codedeploy, environment(url=listener.base_url, probes=1))

    assert status == "Succeeded"
    assert listener.seen.paths() == ["/health"]


# --------------------------------------------------------------------------- min_successes


class ScriptedProbe:
    """Answers with the given statuses in order; records the calls."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, float, str | None]] = []

    def __call__(
        self, url: str, *, timeout_seconds: float, host_header: str | None
    ) -> logic.ProbeResponse:
        self.calls.append((url, timeout_seconds, host_header))
        return logic.ProbeResponse(status=self.statuses.pop(0), latency_ms=5.0)


def test_min_successes_tolerates_that_many_failed_probes(codedeploy):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Succeeded")
    probe = ScriptedProbe([503, 200, 503, 200, 200])

    status = run(
        codedeploy,
        environment(url="http://green.test", probes=5, min_successes=3),
        probe=probe,
    )

    assert status == "Succeeded"
    assert len(probe.calls) == 5


def test_probing_stops_once_min_successes_can_no_longer_be_reached(codedeploy, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")
    probe = ScriptedProbe([200, 503, 503, 200, 200])

    status = run(
        codedeploy,
        environment(url="http://green.test", probes=5, min_successes=4),
        probe=probe,
    )

    assert status == "Failed"
    assert len(probe.calls) == 3
    (result,) = [line for line in logs(capsys) if line["event"] == "validation_result"]
    assert result == {
        "event": "validation_result",
        "deployment_id": codedeploy.deployment_id,
        "deployment_group": GROUP,
        "successes": 1,
        "failures": 2,
        "required_successes": 4,
        "outcome": "Failed",
    }


# --------------------------------------------------------------------------- time budget


class FakeClock:
    """A clock that advances only when the fake sleep or probe says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_probing_stops_with_failed_before_the_deadline_instead_of_being_killed(codedeploy, capsys):
    clock = FakeClock()
    timeouts: list[float] = []

    def slow_probe(url: str, *, timeout_seconds: float, host_header: str | None):
        timeouts.append(timeout_seconds)
        clock.now += 2.0
        return logic.ProbeResponse(status=200, latency_ms=2.0)

    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(
        codedeploy,
        environment(url="http://green.test", probes=5, interval_seconds=1, timeout_seconds=3),
        probe=slow_probe,
        clock=clock,
        sleep=clock.sleep,
        deadline=clock.now + 7.5,
    )

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    # t=0 probe (2 s), sleep 1, t=3 probe, sleep 1, t=6: 1.5 s left, the timeout shrinks to fit.
    assert timeouts == [3, 3, 1.5]
    assert clock.sleeps == [1, 1]  # no pointless sleep once the next probe cannot start
    (result,) = [line for line in logs(capsys) if line["event"] == "validation_result"]
    assert result["outcome"] == "Failed"
    assert result["successes"] == 3
    assert "raise the function timeout" in result["reason"]


def test_deadline_already_passed_reports_failed_without_probing(codedeploy):
    clock = FakeClock()
    probe = ScriptedProbe([200])
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(
        codedeploy,
        environment(url="http://green.test"),
        probe=probe,
        clock=clock,
        deadline=clock.now - 1,
    )

    assert status == "Failed"
    assert probe.calls == []


# --------------------------------------------------------------------------- always reports


def test_exception_inside_the_probe_still_reports_failed(codedeploy, capsys):
    def broken_probe(url: str, *, timeout_seconds: float, host_header: str | None):
        raise RuntimeError("probe exploded")

    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url="http://green.test"), probe=broken_probe)

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    error = next(line for line in logs(capsys) if line["event"] == "validation_error")
    assert error["error_type"] == "RuntimeError"
    assert error["error"] == "probe exploded"
    assert error["deployment_group"] == GROUP


def test_base_exception_inside_the_logic_is_reported_as_failed_before_it_propagates(codedeploy):
    def interrupted_probe(url: str, *, timeout_seconds: float, host_header: str | None):
        raise KeyboardInterrupt

    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")

    with pytest.raises(KeyboardInterrupt):
        run(codedeploy, environment(url="http://green.test"), probe=interrupted_probe)

    codedeploy.stubber.assert_no_pending_responses()


def test_malformed_validation_config_reports_failed_and_logs_the_reason(codedeploy, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.expect_report("Failed")
    env = logic.HookEnvironment(test_url="http://green.test", validation_config="{not json")

    status = run(codedeploy, env)

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    error = next(line for line in logs(capsys) if line["event"] == "validation_error")
    assert error["error_type"] == "ValidationConfigError"
    assert error["error"].startswith(
        "invalid VALIDATION_CONFIG:\nVALIDATION_CONFIG: not valid JSON"
    )


def test_unknown_deployment_group_reports_failed_and_says_how_to_fix_it(codedeploy, capsys):
    codedeploy.expect_get_deployment(group="api-dev")
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url="http://green.test"), probe=ScriptedProbe([]))

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    unknown = next(line for line in logs(capsys) if line["event"] == "unknown_deployment_group")
    assert unknown["deployment_group"] == "api-dev"
    assert unknown["configured_groups"] == [GROUP]
    assert unknown["fix"] == (
        "add validation settings for this service to the stack config so that "
        "VALIDATION_CONFIG on this Lambda has an entry for 'api-dev'"
    )


def test_failing_get_deployment_still_reports_failed(codedeploy, capsys):
    codedeploy.stubber.add_client_error(
        "get_deployment",
        service_error_code="DeploymentDoesNotExistException",
        service_message="no such deployment",
        expected_params={"deploymentId": codedeploy.deployment_id},
    )
    codedeploy.expect_report("Failed")

    status = run(codedeploy, environment(url="http://green.test"))

    assert status == "Failed"
    codedeploy.stubber.assert_no_pending_responses()
    error = next(line for line in logs(capsys) if line["event"] == "validation_error")
    assert error["error_type"] == "DeploymentDoesNotExistException"


def test_failed_report_is_logged_and_reraised(codedeploy, listener, capsys):
    codedeploy.expect_get_deployment()
    codedeploy.stubber.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        service_error_code="LifecycleEventAlreadyCompletedException",
        service_message="already completed",
    )

    with pytest.raises(Exception, match="already completed") as raised:
        run(codedeploy, environment(url=listener.base_url, probes=1))

    assert type(raised.value).__name__ == "LifecycleEventAlreadyCompletedException"
    failed = next(line for line in logs(capsys) if line["event"] == "report_failed")
    assert failed["status"] == "Succeeded"
    assert failed["error_type"] == "LifecycleEventAlreadyCompletedException"


# --------------------------------------------------------------------------- config parsing


def test_config_defaults_apply_and_test_url_fills_a_missing_url():
    services = logic.parse_validation_config('{"web-dev": {}}', default_url="http://alb:8443")

    assert services == {
        "web-dev": logic.ServiceValidation(
            url="http://alb:8443",
            path="/health",
            expected_status=200,
            probes=5,
            min_successes=None,
            interval_seconds=1.0,
            latency_budget_ms=1000.0,
            timeout_seconds=3.0,
            host_header=None,
        )
    }
    assert services["web-dev"].required_successes == 5
    assert services["web-dev"].probe_url == "http://alb:8443/health"


def test_config_errors_are_reported_together_one_line_per_key_path():
    raw = json.dumps(
        {
            "web-dev": {"probes": 0, "path": "health", "retries": 3},
            "api-dev": {"expected_status": True, "min_successes": 9, "probes": 3},
            "worker-dev": "yes",
        }
    )

    with pytest.raises(logic.ValidationConfigError) as raised:
        logic.parse_validation_config(raw, default_url=None)

    assert raised.value.problems == (
        "VALIDATION_CONFIG.web-dev.retries: unknown setting; allowed: expected_status, "
        "host_header, interval_seconds, latency_budget_ms, min_successes, path, probes, "
        "timeout_seconds, url",
        "VALIDATION_CONFIG.web-dev.url: missing and TEST_URL is not set; set one of them",
        "VALIDATION_CONFIG.web-dev.path: must be a string starting with '/', got 'health'",
        "VALIDATION_CONFIG.web-dev.probes: must be an integer between 1 and 100, got 0",
        "VALIDATION_CONFIG.api-dev.url: missing and TEST_URL is not set; set one of them",
        "VALIDATION_CONFIG.api-dev.expected_status: must be an integer between 100 and 599, "
        "got True",
        "VALIDATION_CONFIG.api-dev.min_successes: 9 is more than probes (3)",
        "VALIDATION_CONFIG.worker-dev: must be an object, got str",
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "VALIDATION_CONFIG: not set; give the Lambda a JSON object"),
        ("[]", "VALIDATION_CONFIG: must be a JSON object keyed by deployment group name, got list"),
        ('{"w": {"url": "ftp://x"}}', "VALIDATION_CONFIG.w.url: must be an http:// or https://"),
    ],
)
def test_config_that_is_not_a_mapping_of_groups_is_rejected(raw, problem):
    with pytest.raises(logic.ValidationConfigError) as raised:
        logic.parse_validation_config(raw, default_url="http://alb:8443")

    assert raised.value.problems[0].startswith(problem)

"""Validation logic of the blue/green validation hook: probe green, report the verdict (CodeDeploy's
`AfterAllowTestTraffic`, or ECS's POST_TEST_TRAFFIC_SHIFT lifecycle hook, which takes the verdict
as the function's return value).

Only the standard library is used here: the Lambda Python runtime ships boto3 but not
`requests` or pydantic, and the archive holds nothing but this folder.

Rule: a probe passes when it connects, answers with `expected_status` and does so within
`latency_budget_ms`. Validation succeeds when at least `min_successes` probes pass
(default: all of them). Probing stops as soon as the verdict cannot change any more, or when
the Lambda is about to run out of time (then the verdict is Failed). Whatever happens inside,
the verdict is reported to CodeDeploy, because an unreported hook blocks the deployment until
the hook times out (one hour).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

SUCCEEDED = "Succeeded"
FAILED = "Failed"

_CONFIG_KEYS = frozenset(
    {
        "url",
        "path",
        "expected_status",
        "probes",
        "min_successes",
        "interval_seconds",
        "latency_budget_ms",
        "timeout_seconds",
        "host_header",
    }
)
# Enough to see that the body arrives; a health endpoint that streams megabytes is not our business.
_MAX_BODY_BYTES = 64 * 1024


class ValidationConfigError(ValueError):
    """VALIDATION_CONFIG is malformed; `problems` holds one line per key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid VALIDATION_CONFIG:\n" + "\n".join(self.problems))


@dataclass(frozen=True, kw_only=True)
class HookEvent:
    """The two ids CodeDeploy sends to a lifecycle hook; both are needed to report back."""

    deployment_id: str
    hook_execution_id: str


@dataclass(frozen=True, kw_only=True)
class HookEnvironment:
    """The Lambda's configuration as plain strings, parsed (and validated) inside the guard."""

    test_url: str | None
    validation_config: str | None


@dataclass(frozen=True, kw_only=True)
class ServiceValidation:
    """How to validate one service (one deployment group) through the test listener."""

    url: str
    path: str = "/health"
    expected_status: int = 200
    probes: int = 5
    min_successes: int | None = None  # None: every probe must pass
    interval_seconds: float = 1.0
    latency_budget_ms: float = 1000.0
    timeout_seconds: float = 3.0
    host_header: str | None = None

    @property
    def required_successes(self) -> int:
        return self.probes if self.min_successes is None else self.min_successes

    @property
    def probe_url(self) -> str:
        # Keeps a path prefix in `url` (http://alb:8443/api + /health -> /api/health).
        return self.url.rstrip("/") + "/" + self.path.lstrip("/")


@dataclass(frozen=True, kw_only=True)
class ProbeResponse:
    """What one HTTP probe saw: a status, or an error if no response arrived."""

    status: int | None
    latency_ms: float
    error: str | None = None


class Probe(Protocol):
    def __call__(
        self, url: str, *, timeout_seconds: float, host_header: str | None
    ) -> ProbeResponse: ...


class CodeDeployClient(Protocol):
    def get_deployment(self, **kwargs: Any) -> dict[str, Any]: ...

    def put_lifecycle_event_hook_execution_status(self, **kwargs: Any) -> dict[str, Any]: ...


def log(event: str, **fields: Any) -> None:
    """Write one JSON object per line; stdout lines reach CloudWatch Logs unmodified."""
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


# --------------------------------------------------------------------------- configuration


def parse_validation_config(
    raw: str | None, *, default_url: str | None
) -> dict[str, ServiceValidation]:
    """Parse VALIDATION_CONFIG (deployment group name -> settings); report every problem at once."""
    if raw is None or not raw.strip():
        raise ValidationConfigError(
            [
                "VALIDATION_CONFIG: not set; give the Lambda a JSON object mapping each "
                "deployment group name to its validation settings"
            ]
        )
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationConfigError([f"VALIDATION_CONFIG: not valid JSON ({exc})"]) from None
    if not isinstance(document, dict):
        raise ValidationConfigError(
            [
                f"VALIDATION_CONFIG: must be a JSON object keyed by deployment group name, "
                f"got {type(document).__name__}"
            ]
        )
    problems: list[str] = []
    services: dict[str, ServiceValidation] = {}
    for group, settings in document.items():
        parsed = _parse_service(f"VALIDATION_CONFIG.{group}", settings, default_url, problems)
        if parsed is not None:
            services[group] = parsed
    if problems:
        raise ValidationConfigError(problems)
    return services


def _parse_service(
    where: str, settings: Any, default_url: str | None, problems: list[str]
) -> ServiceValidation | None:
    if not isinstance(settings, dict):
        problems.append(f"{where}: must be an object, got {type(settings).__name__}")
        return None
    before = len(problems)
    for key in sorted(set(settings) - _CONFIG_KEYS):
        problems.append(
            f"{where}.{key}: unknown setting; allowed: {', '.join(sorted(_CONFIG_KEYS))}"
        )

    url = settings.get("url", default_url)
    if url is None:
        problems.append(f"{where}.url: missing and TEST_URL is not set; set one of them")
    elif not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append(f"{where}.url: must be an http:// or https:// URL, got {url!r}")

    path = settings.get("path", "/health")
    if not isinstance(path, str) or not path.startswith("/"):
        problems.append(f"{where}.path: must be a string starting with '/', got {path!r}")

    host_header = settings.get("host_header")
    if host_header is not None and (not isinstance(host_header, str) or not host_header.strip()):
        problems.append(
            f"{where}.host_header: must be a non-empty string or null, got {host_header!r}"
        )

    expected_status = _number(
        where, settings, "expected_status", 200, problems, integer=True, low=100, high=599
    )
    probes = _number(where, settings, "probes", 5, problems, integer=True, low=1, high=100)
    interval = _number(where, settings, "interval_seconds", 1.0, problems, low=0, high=60)
    budget = _number(where, settings, "latency_budget_ms", 1000.0, problems, low=1, high=60_000)
    timeout = _number(where, settings, "timeout_seconds", 3.0, problems, low=0.001, high=60)
    min_successes = settings.get("min_successes")
    if min_successes is not None:
        min_successes = _number(
            where, settings, "min_successes", None, problems, integer=True, low=1, high=100
        )
        if isinstance(min_successes, int) and isinstance(probes, int) and min_successes > probes:
            problems.append(
                f"{where}.min_successes: {min_successes} is more than probes ({probes})"
            )

    if len(problems) > before:
        return None
    return ServiceValidation(
        url=url,
        path=path,
        expected_status=int(expected_status),
        probes=int(probes),
        min_successes=None if min_successes is None else int(min_successes),
        interval_seconds=float(interval),
        latency_budget_ms=float(budget),
        timeout_seconds=float(timeout),
        host_header=host_header,
    )


def _number(
    where: str,
    settings: Mapping[str, Any],
    key: str,
    default: float | None,
    problems: list[str],
    *,
    low: float,
    high: float,
    integer: bool = False,
) -> float | int | None:
    value = settings.get(key, default)
    kind = "an integer" if integer else "a number"
    # bool is an int subclass in Python; `"probes": true` is a mistake, not 1.
    valid_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not valid_type:
        problems.append(f"{where}.{key}: must be {kind} between {low} and {high}, got {value!r}")
        return None
    if value < low or value > high:
        problems.append(f"{where}.{key}: must be {kind} between {low} and {high}, got {value!r}")
        return None
    return value


# --------------------------------------------------------------------------- probing


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the status it is: following it could leave the test listener."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_probe(
    url: str,
    *,
    timeout_seconds: float,
    host_header: str | None,
    clock: Callable[[], float] = time.perf_counter,
) -> ProbeResponse:
    """GET `url` once; network failures become a response with `error`, never an exception."""
    request = urllib.request.Request(url, method="GET")
    if host_header:
        request.add_header("Host", host_header)
    # No ProxyHandler entries: an HTTP(S)_PROXY in the environment must not carry probes
    # elsewhere. Built per call, as the default handler would read the environment here too.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    started = clock()
    try:
        with opener.open(request, timeout=timeout_seconds) as response:
            response.read(_MAX_BODY_BYTES)
            status = response.status
    except urllib.error.HTTPError as exc:  # a non-2xx answer is still an answer
        status = exc.code
        exc.close()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, socket.timeout | TimeoutError):
            error = f"timed out after {timeout_seconds:g} s"
        else:
            error = f"{type(reason).__name__}: {reason}"
        return ProbeResponse(status=None, latency_ms=_ms(clock() - started), error=error)
    return ProbeResponse(status=status, latency_ms=_ms(clock() - started))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def judge(response: ProbeResponse, settings: ServiceValidation) -> str | None:
    """Why a probe failed, or None when it passed."""
    if response.error is not None:
        return response.error
    if response.status != settings.expected_status:
        return f"expected status {settings.expected_status}, got {response.status}"
    if response.latency_ms > settings.latency_budget_ms:
        return f"latency {response.latency_ms:g} ms above budget {settings.latency_budget_ms:g} ms"
    return None


def validate_service(
    settings: ServiceValidation,
    *,
    probe: Probe,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    deadline: float,
    log_fields: Mapping[str, Any],
) -> str:
    """Probe until the verdict is decided or time runs out; return Succeeded or Failed."""
    required = settings.required_successes
    allowed_failures = settings.probes - required
    successes = failures = 0
    for number in range(1, settings.probes + 1):
        remaining = deadline - clock()
        if remaining <= 0:
            return _out_of_time(settings, successes, failures, log_fields)
        response = probe(
            settings.probe_url,
            timeout_seconds=min(settings.timeout_seconds, remaining),
            host_header=settings.host_header,
        )
        reason = judge(response, settings)
        if reason is None:
            successes += 1
        else:
            failures += 1
        log(
            "probe",
            **log_fields,
            probe=number,
            of=settings.probes,
            url=settings.probe_url,
            status=response.status,
            latency_ms=response.latency_ms,
            outcome="passed" if reason is None else "failed",
            reason=reason,
        )
        if successes >= required or failures > allowed_failures:
            break  # the verdict cannot change any more
        if number < settings.probes:
            if clock() + settings.interval_seconds >= deadline:
                return _out_of_time(settings, successes, failures, log_fields)
            sleep(settings.interval_seconds)
    outcome = SUCCEEDED if successes >= required else FAILED
    log(
        "validation_result",
        **log_fields,
        successes=successes,
        failures=failures,
        required_successes=required,
        outcome=outcome,
    )
    return outcome


def _out_of_time(
    settings: ServiceValidation, successes: int, failures: int, log_fields: Mapping[str, Any]
) -> str:
    log(
        "validation_result",
        **log_fields,
        successes=successes,
        failures=failures,
        required_successes=settings.required_successes,
        outcome=FAILED,
        reason="Lambda time nearly used up before probing finished; raise the function "
        "timeout or lower probes/interval_seconds/timeout_seconds",
    )
    return FAILED


# --------------------------------------------------------------------------- the hook


def run_hook(
    hook: HookEvent,
    *,
    codedeploy: CodeDeployClient,
    environment: HookEnvironment,
    probe: Probe = http_probe,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float,
) -> str:
    """Validate the deployment's green tasks and always report the verdict to CodeDeploy.

    `deadline` is a `clock()` value after which no probe starts; the caller leaves room
    after it for the report. Returns the reported status.
    """
    fields: dict[str, Any] = {"deployment_id": hook.deployment_id}
    status = FAILED
    try:
        status = _validate_or_fail(
            lambda: deployment_group_of(codedeploy, hook.deployment_id),
            environment,
            fields,
            probe=probe,
            clock=clock,
            sleep=sleep,
            deadline=deadline,
        )
    finally:
        # Also runs for BaseException; the report goes out before the exception continues.
        report(codedeploy, hook, status, fields)
    return status


def validate(
    key: str,
    environment: HookEnvironment,
    *,
    probe: Probe,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    deadline: float,
    log_fields: Mapping[str, Any],
) -> str:
    """The verdict on the service whose VALIDATION_CONFIG entry is `key` (its deployment
    group name, under either engine): Succeeded or Failed; raises on a malformed config."""
    services = parse_validation_config(
        environment.validation_config, default_url=environment.test_url
    )
    settings = services.get(key)
    if settings is None:
        log(
            "unknown_deployment_group",
            **log_fields,
            configured_groups=sorted(services),
            outcome=FAILED,
            fix=f"add validation settings for this service to the stack config so that "
            f"VALIDATION_CONFIG on this Lambda has an entry for '{key}'",
        )
        return FAILED
    return validate_service(
        settings, probe=probe, clock=clock, sleep=sleep, deadline=deadline, log_fields=log_fields
    )


# ------------------------------------------------------------- ECS's own blue/green hook

# What ECS takes back from a Lambda lifecycle hook: its return value is the report.
ECS_HOOK_STATUS = {SUCCEEDED: "SUCCEEDED", FAILED: "FAILED"}


def is_ecs_event(event: Any) -> bool:
    """An ECS lifecycle-hook invocation (deployment.engine ecs), not a CodeDeploy one."""
    return isinstance(event, Mapping) and ("lifecycleStage" in event or "executionDetails" in event)


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    details = event.get("hookDetails")
    if isinstance(details, str):  # a JSON string, as the service's hook configuration holds it
        details = json.loads(details)
    return details if isinstance(details, Mapping) else {}


def ecs_validation_key(event: Mapping[str, Any]) -> str:
    """The VALIDATION_CONFIG key of an ECS invocation: `hookDetails.deploymentGroup` (set on
    the service's hook), else the service's name from its ARN."""
    key = _details(event).get("deploymentGroup")
    if isinstance(key, str) and key:
        return key
    execution = event.get("executionDetails")
    service_arn = (execution if isinstance(execution, Mapping) else event).get("serviceArn")
    if isinstance(service_arn, str) and "/" in service_arn:
        return service_arn.rsplit("/", 1)[-1]
    raise ValueError(
        "hookDetails.deploymentGroup: missing, and no executionDetails.serviceArn to tell the "
        "service by; set hookDetails on the service's lifecycle hook (FargateService does)"
    )


def run_ecs_hook(
    event: Any,
    *,
    environment: HookEnvironment,
    probe: Probe = http_probe,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float,
) -> dict[str, str]:
    """Validate the green tasks of an ECS deployment with the same probes as under CodeDeploy,
    and always answer: {"hookStatus": SUCCEEDED|FAILED} (any failure inside answers FAILED,
    so ECS rolls back at once instead of treating a crash as a failed invocation)."""
    fields: dict[str, Any] = {}

    def key_of() -> str:
        fields["service_deployment"] = str(event.get("resourceArn", "?"))
        fields["lifecycle_stage"] = str(event.get("lifecycleStage", "?"))
        return ecs_validation_key(event)

    status = _validate_or_fail(
        key_of, environment, fields, probe=probe, clock=clock, sleep=sleep, deadline=deadline
    )
    answer = {"hookStatus": ECS_HOOK_STATUS[status]}
    log("answered", **fields, **answer)
    return answer


def _validate_or_fail(
    key_of: Callable[[], str], environment: HookEnvironment, fields: dict[str, Any], **probing: Any
) -> str:
    """validate() for the settings key `key_of()` names; FAILED, logged, on any exception:
    either hook must still answer (CodeDeploy's report, ECS's hookStatus)."""
    try:
        fields["deployment_group"] = key = key_of()
        return validate(key, environment, log_fields=fields, **probing)
    except Exception as exc:
        log(
            "validation_error",
            **fields,
            error_type=type(exc).__name__,
            error=str(exc),
            outcome=FAILED,
        )
        return FAILED


def deployment_group_of(codedeploy: CodeDeployClient, deployment_id: str) -> str:
    """The deployment group name, which keys the per-service settings."""
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return info["deploymentGroupName"]


def report(
    codedeploy: CodeDeployClient, hook: HookEvent, status: str, log_fields: Mapping[str, Any]
) -> None:
    """Send the verdict; a failed report is logged and re-raised (CodeDeploy then times out)."""
    try:
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=hook.deployment_id,
            lifecycleEventHookExecutionId=hook.hook_execution_id,
            status=status,
        )
    except Exception as exc:
        log(
            "report_failed",
            **log_fields,
            status=status,
            error_type=type(exc).__name__,
            error=str(exc),
        )
        raise
    log("reported", **log_fields, status=status)

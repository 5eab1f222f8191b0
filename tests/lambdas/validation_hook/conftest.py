"""Fixtures for the validation hook: a real HTTP server on 127.0.0.1 and a stubbed CodeDeploy."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

LAMBDA_SRC = Path(__file__).resolve().parents[3] / "src" / "ecs_delivery" / "lambdas"
# The package layout (archive root = src/ecs_delivery/lambdas/) keeps `handler`/`logic` out of the global
# module namespace, so other Lambdas' modules of the same name cannot clash in one pytest run.
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

SLOW_SECONDS = 0.3
DEPLOYMENT_ID = "d-TESTGREEN1"
HOOK_EXECUTION_ID = "hook-exec-0001"
GROUP = "web-dev"


@dataclass
class Seen:
    """Requests the server answered: (path, Host header)."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, host: str | None) -> None:
        with self.lock:
            self.requests.append((path, host))

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]


class _Routes(BaseHTTPRequestHandler):
    seen: Seen  # set on the subclass per server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.add(self.path, self.headers.get("Host"))
        if self.path == "/health":
            self._answer(200)
        elif self.path == "/error":
            self._answer(503)
        elif self.path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._answer(200)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/vhost":
            self._answer(200 if self.headers.get("Host") == "web.internal" else 404)
        else:
            self._answer(404)

    def _answer(self, status: int) -> None:
        body = b'{"ok": true}' if status == 200 else b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # The timeout test hangs up before /slow answers; the broken pipe is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class TestListener:
    """The local stand-in for the ALB test listener."""

    base_url: str
    seen: Seen


@pytest.fixture(scope="session")
def _server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    routes = type("Routes", (_Routes,), {"seen": seen})
    server = _QuietServer(("127.0.0.1", 0), routes)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def listener(_server: tuple[str, Seen]) -> TestListener:
    base_url, seen = _server
    with seen.lock:
        seen.requests.clear()
    return TestListener(base_url=base_url, seen=seen)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on a port that was bound and closed again: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass
class StubbedCodeDeploy:
    """A real botocore CodeDeploy client behind a Stubber, with the calls the hook makes.

    Stubber, not moto: moto does not implement put_lifecycle_event_hook_execution_status.
    The Stubber also checks every request and response against the CodeDeploy API model.
    """

    client: Any
    stubber: Stubber
    deployment_id: str = DEPLOYMENT_ID
    hook_execution_id: str = HOOK_EXECUTION_ID

    def expect_get_deployment(self, group: str = GROUP) -> None:
        self.stubber.add_response(
            "get_deployment",
            {
                "deploymentInfo": {
                    "applicationName": "web",
                    "deploymentGroupName": group,
                    "deploymentId": self.deployment_id,
                    "status": "InProgress",
                    "computePlatform": "ECS",
                }
            },
            {"deploymentId": self.deployment_id},
        )

    def expect_report(self, status: str) -> None:
        self.stubber.add_response(
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": self.hook_execution_id},
            {
                "deploymentId": self.deployment_id,
                "lifecycleEventHookExecutionId": self.hook_execution_id,
                "status": status,
            },
        )


@pytest.fixture
def codedeploy(aws_env: None) -> Iterator[StubbedCodeDeploy]:
    client = boto3.client("codedeploy", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield StubbedCodeDeploy(client=client, stubber=stubber)

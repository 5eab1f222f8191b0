"""The hook reports before its Lambda ends, even when CodeDeploy's endpoint never answers.

A real socket on 127.0.0.1 accepts connections and never answers; the hook's own client
(its timeouts and retry budget, scaled down so the test is fast) reports to it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import BotoCoreError
from validation_hook import handler


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # held open, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_the_report_client_gives_up_within_its_budget_against_an_endpoint_that_never_answers(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    connect, read = 0.1, 0.2  # the real client's timeouts, scaled down
    client = handler.build_codedeploy_client(
        handler.client_config(connect_timeout=connect, read_timeout=read),
        endpoint_url=silent_endpoint,
    )

    started = time.monotonic()
    with pytest.raises(BotoCoreError):
        client.put_lifecycle_event_hook_execution_status(
            deploymentId="d-1", lifecycleEventHookExecutionId="h-1", status="Succeeded"
        )
    elapsed = time.monotonic() - started

    assert elapsed <= handler.report_budget_seconds(connect, read)


def test_the_real_report_budget_fits_in_what_the_hook_keeps_back_for_reporting() -> None:
    budget = handler.report_budget_seconds(handler.CONNECT_TIMEOUT, handler.READ_TIMEOUT)

    assert budget <= handler.REPORT_RESERVE_SECONDS
    config = handler.client_config()
    assert (config.connect_timeout, config.read_timeout) == (
        handler.CONNECT_TIMEOUT,
        handler.READ_TIMEOUT,
    )

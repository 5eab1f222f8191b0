"""Issue 16, problem 1: the first deploy comes up healthy on its bootstrap image.

The bootstrap must answer the configured health check on the configured port as user 1000 on
a read-only root filesystem with only /tmp writable, and a scheduled task's bootstrap exits 0.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from ecs_delivery.components import bootstrap
from tests.conftest import make_plan
from tests.support.registrations import containers

REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"


def _definition(plan, name: str) -> dict:
    """The service's own container: the first (dev gives web a FireLens router beside it)."""
    container, *_sidecars = containers(plan, name)
    return container


def _live(images: dict[str, str]) -> dict:
    return {"services": {name: {"containers": {name: image}} for name, image in images.items()}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float) -> tuple[int, str]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize(
    ("port", "paths", "files"),
    [
        (8080, ["/health"], ["/health"]),
        (8000, ["/api/health"], ["/api/health"]),
        (3000, ["/a/b/c/ready", "/status/"], ["/a/b/c/ready", "/status/index.html"]),
        (8080, ["/health", "/health"], ["/health"]),
        (9090, ["/live?full=1", "/it's%20ok"], ["/live", "/it's ok"]),
    ],
)
def test_the_bootstrap_command_writes_each_path_and_serves_the_port(port, paths, files):
    container = bootstrap.service_container(
        bootstrap.DEFAULT_IMAGE, port=port, paths=paths, writable_paths=["/tmp"]
    )
    assert container.image == bootstrap.DEFAULT_IMAGE
    assert container.entry_point[:2] == ["sh", "-c"]
    script = container.entry_point[2]
    root = "/tmp/bootstrap-www"
    assert script.endswith(f"exec busybox httpd -f -v -p {port} -h {root}")
    lines = [shlex.split(line) for line in script.splitlines()]
    written = {words[-1] for words in lines if words[0] == "echo"}
    assert written == {f"{root}/index.html", *(root + f for f in files)}
    # Every directory a file needs is created before the file is written.
    assert lines[1][:2] == ["mkdir", "-p"]
    assert {str(Path(f).parent) for f in written} <= set(lines[1][2:])


def test_the_bootstrap_refuses_a_path_that_leaves_its_web_root():
    with pytest.raises(ValueError, match="leaves the web root"):
        bootstrap.service_container(
            bootstrap.DEFAULT_IMAGE, port=80, paths=["/../etc/passwd"], writable_paths=["/tmp"]
        )


def test_a_bootstrap_that_is_not_busybox_runs_as_it_is_and_is_warned_about():
    image = "public.ecr.aws/nginx/nginx:1.27-alpine"
    assert bootstrap.service_container(image, port=8080, paths=["/health"], writable_paths=[])
    assert bootstrap.task_container(image).entry_point is None
    assert "/health on port 8080" in bootstrap.custom_image_warning(
        "web", image, port=8080, path="/health"
    )


def test_the_dev_plan_bootstraps_each_service_on_its_own_port_and_health_path():
    plan = make_plan("dev")
    for service, port, path in [("web", 8080, "/health"), ("api", 8000, "/api/health")]:
        container = _definition(plan, service)
        assert container["image"] == bootstrap.DEFAULT_IMAGE
        assert container["user"] == "1000" and container["readonlyRootFilesystem"] is True
        script = container["entryPoint"][2]
        assert f"-p {port} " in script
        assert f"> /tmp/bootstrap-www{path}" in script
        assert container["dockerLabels"] == {bootstrap.LABEL: "service"}
        assert {"containerPath": "/tmp", "readOnly": False} in [
            {k: m[k] for k in ("containerPath", "readOnly")} for m in container["mountPoints"]
        ]
    assert not [w for w in plan.warnings if "bootstrapImage" in w]


def test_a_task_that_follows_a_service_without_a_release_exits_0_on_busybox():
    task = _definition(make_plan("dev"), "task-nightly-report")
    assert task["image"] == bootstrap.DEFAULT_IMAGE
    assert task["entryPoint"] == ["true"]  # `true python -m app.reports ...` exits 0
    assert task["command"] == ["python", "-m", "app.reports", "--nightly"]


def test_the_plan_warns_about_a_bootstrap_image_of_the_users_own():
    plan = make_plan(
        "dev", overrides={"services.web.bootstrapImage": "public.ecr.aws/nginx/nginx:1.27-alpine"}
    )
    (warning,) = [w for w in plan.warnings if "bootstrapImage" in w]
    assert warning.startswith("services.web.bootstrapImage: 'public.ecr.aws/nginx/nginx:1.27")
    assert "/health on port 8080" in warning
    assert "entryPoint" not in _definition(plan, "web")


def test_a_service_with_a_release_drops_the_bootstrap_entry_point():
    live = {"web": f"{REPO}/web@sha256:{'1' * 64}", "api": f"{REPO}/api@sha256:{'2' * 64}"}
    plan = make_plan("dev", environment=_live(live))
    assert "entryPoint" not in _definition(plan, "web")
    assert "dockerLabels" not in _definition(plan, "web")
    # A new task following a running service starts on its image (the rollout's initial
    # image), so its template carries no bootstrap entry point either.
    task = _definition(plan, "task-nightly-report")
    assert "entryPoint" not in task and "dockerLabels" not in task
    rollout = plan.named("pulumi-python:dynamic/rollout:TaskRollout", "task-nightly-report-rollout")
    assert rollout.inputs["initial_images"] == {"nightly-report": live["api"]}


def test_a_service_still_on_its_bootstrap_image_keeps_serving_its_health_check():
    # Created earlier, no release shipped yet (or the first one rolled back).
    live = {"web": bootstrap.DEFAULT_IMAGE, "api": f"{REPO}/api@sha256:{'2' * 64}"}
    plan = make_plan("dev", environment=_live(live))
    assert "-p 8080 " in _definition(plan, "web")["entryPoint"][2]
    assert "entryPoint" not in _definition(plan, "api")


def _run_busybox_script(script: str, web_root: Path) -> subprocess.Popen:
    # As user 1000 where the tests run as root, like the task (its /tmp is its only writable path).
    as_user = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]
    prefix = as_user if os.geteuid() == 0 and shutil.which("setpriv") else []
    return subprocess.Popen(
        [*prefix, "busybox", "sh", "-c", script.replace("/tmp/bootstrap-www", str(web_root))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.skipif(shutil.which("busybox") is None, reason="no busybox on PATH (apt busybox)")
@pytest.mark.parametrize("path", ["/health", "/api/v1/health", "/"])
def test_the_bootstrap_command_answers_its_path_when_run_by_busybox(path):
    port = _free_port()
    container = bootstrap.service_container(
        bootstrap.DEFAULT_IMAGE, port=port, paths=[path], writable_paths=["/tmp"]
    )
    writable = Path(tempfile.mkdtemp(prefix="bootstrap-"))
    writable.chmod(0o777)
    process = _run_busybox_script(container.entry_point[2], writable / "www")
    try:
        status, body = _get(f"http://127.0.0.1:{port}{path}", time.monotonic() + 10)
        assert status == 200 and "bootstrap" in body
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(writable)


def _docker_image_present(image: str) -> str | None:
    """Why a docker run cannot happen here, or None."""
    if shutil.which("docker") is None:
        return "no docker on PATH"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return "docker daemon not reachable"
    found = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=False
    )
    return None if found.returncode == 0 else f"{image} not pulled (tests pull nothing)"


def test_the_bootstrap_container_is_healthy_read_only_as_user_1000_under_docker():
    reason = _docker_image_present(bootstrap.DEFAULT_IMAGE)
    if reason:
        pytest.skip(reason)
    port = _free_port()
    container = bootstrap.service_container(
        bootstrap.DEFAULT_IMAGE, port=8080, paths=["/api/health"], writable_paths=["/tmp"]
    )
    run = subprocess.run(
        ["docker", "run", "-d", "--rm", "--read-only", "--tmpfs", "/tmp", "--user", "1000"]
        + ["-p", f"127.0.0.1:{port}:8080", "--entrypoint", "sh", container.image, "-c"]
        + [container.entry_point[2]],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        status, _ = _get(f"http://127.0.0.1:{port}/api/health", time.monotonic() + 20)
        assert status == 200
    finally:
        subprocess.run(["docker", "rm", "-f", run.stdout.strip()], capture_output=True, check=False)

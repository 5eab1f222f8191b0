"""ecs_delivery.components.buildspec: structure of the generated buildspecs, and their shell run for real.

The shell tests run the generated commands in bash with `python` and `docker` replaced by
recorders, so quoting and exit-code handling are checked by the shell itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_delivery.components.buildspec import (
    ARTIFACT_ROOT,
    BUILD_REQUIREMENTS,
    PROMOTION_ARTIFACT,
    BuildService,
    DeployService,
    buildspec,
    deploy_buildspec,
    promotion_buildspec,
    publish_buildspec,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
OTHER_REGISTRY = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BASH = shutil.which("bash")

WEB = BuildService(
    name="web",
    repository_url=f"{REGISTRY}/shop/web",
    container_name="app",
    container_port=8080,
    cluster="dev",
    service="dev-web",
    family="shop-dev-web",
    deployment_group="web",
)
API = BuildService(
    name="api",
    repository_url=f"{REGISTRY}/shop/api",
    container_name="api",
    container_port=9000,
    cluster="dev",
    service="dev-api",
    family="shop-dev-api",
    deployment_group="api",
    context="services/api",
    dockerfile="docker/Dockerfile.prod",
    validation_hook="dev-api-validate",
)


def _spec(**kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"region": "eu-west-1", "stack": "dev"}
    return buildspec([WEB, API], **(options | kwargs))


def _deploy(**kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "region": "eu-west-1",
        "application": "shop-dev",
        "validation_hook": "dev-hook",
    }
    return deploy_buildspec([WEB, API], **(options | kwargs))


def _commands(spec: dict[str, Any], phase: str) -> list[str]:
    return spec["phases"][phase]["commands"]


def test_phases_run_in_order_and_abort_on_the_first_failure() -> None:
    phases = _spec()["phases"]

    assert list(phases) == ["install", "pre_build", "build", "post_build"]
    assert phases["install"] == {"runtime-versions": {"python": "3.11"}}
    for name in ("pre_build", "build", "post_build"):
        assert phases[name]["on-failure"] == "ABORT"


def test_pre_build_logs_in_once_per_registry_and_computes_the_tag() -> None:
    other = replace(WEB, name="worker", repository_url=f"{OTHER_REGISTRY}/worker")
    pre_build = _commands(
        buildspec([WEB, API, other], region="eu-west-1", stack="dev"), "pre_build"
    )

    logins = [c for c in pre_build if "docker login" in c]
    assert logins == [
        "aws ecr get-login-password --region eu-west-1 | docker login --username AWS "
        f"--password-stdin {REGISTRY}",
        "aws ecr get-login-password --region us-east-1 | docker login --username AWS "
        f"--password-stdin {OTHER_REGISTRY}",
    ]
    assert any(
        c.startswith('IMAGE_TAG="$(python -m ecs_delivery.runtime.build')
        and "$CODEBUILD_RESOLVED_SOURCE_VERSION" in c
        for c in pre_build
    )


def test_build_and_post_build_mention_each_service() -> None:
    spec = _spec()
    build, post_build = _commands(spec, "build"), _commands(spec, "post_build")

    for service in (WEB, API):
        assert sum(f"docker build --tag {service.repository_url}:" in c for c in build) == 1
        assert sum(f"docker push {service.repository_url}:" in c for c in post_build) == 1
    # The build reads nothing about what runs: the Deploy action does, when it deploys.
    assert not [
        c for c in build + post_build if "ecs_delivery.runtime.build --region eu-west-1 deploy" in c
    ]
    assert "--file services/api/docker/Dockerfile.prod" in build[1]
    assert build[1].endswith(" services/api; fi")
    record = [c for c in post_build if " promotion-record " in c]
    assert len(record) == 1
    assert f"--image web/app={WEB.repository_url}:" in record[0]
    assert f"--image api/api={API.repository_url}:" in record[0]


def test_each_service_gets_its_own_hook_or_the_default() -> None:
    build = _commands(_deploy(), "build")
    web = next(c for c in build if "deploy --name web " in c)
    api = next(c for c in build if "deploy --name api " in c)

    assert web.endswith("--validation-hook dev-hook")
    assert api.endswith("--validation-hook dev-api-validate")


def test_a_single_output_artifact_is_the_primary_one_with_its_files_at_the_root() -> None:
    # CodeBuild hands an action's only output artifact the primary artifact definition.
    assert _spec()["artifacts"] == {
        "base-directory": f"{ARTIFACT_ROOT}/{PROMOTION_ARTIFACT}",
        "files": ["promotion.json"],
    }


def test_deploy_ships_every_service_in_turn_from_the_record_and_writes_no_artifact() -> None:
    spec = _deploy()
    build = _commands(spec, "build")

    assert [c.split(" --name ")[1].split()[0] for c in build] == ["web", "api"]
    assert "artifacts" not in spec
    assert build[0] == (
        "python -m ecs_delivery.runtime.build --region eu-west-1 deploy --name web --cluster dev "
        "--service dev-web --family shop-dev-web --container app --container-port 8080 "
        "--application shop-dev --group web --timeout-minutes 60 --record promotion.json "
        "--validation-hook dev-hook"
    )


def test_deploy_needs_each_services_group_and_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match=r"services.web.deployment_group: is required"):
        deploy_buildspec(
            [replace(WEB, deployment_group=None)], region="eu-west-1", application="shop-dev"
        )
    with pytest.raises(ValueError, match=r"timeout_minutes: 0 must be"):
        _deploy(timeout_minutes=0)
    with pytest.raises(ValueError, match=r"application: is required"):
        _deploy(application="")


def test_tooling_is_downloaded_and_put_on_pythonpath_when_given() -> None:
    spec = _spec(tooling_s3_uri="s3://artifacts/tooling/delivery.zip")

    install = _commands(spec, "install")
    assert install[0].startswith(
        "aws s3 cp --only-show-errors s3://artifacts/tooling/delivery.zip "
    )
    assert install[-1].endswith(" ".join(BUILD_REQUIREMENTS))
    assert spec["env"]["variables"]["PYTHONPATH"] == "/opt/ecs-delivery-tooling"


def test_build_requirements_match_the_pins_in_requirements_txt() -> None:
    pins = {
        line.split("==")[0].lower(): line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }

    for requirement in BUILD_REQUIREMENTS:
        assert pins[requirement.split("==")[0].lower()] == requirement


def test_only_the_publish_buildspec_publishes_and_it_names_the_stack_bucket_and_zip() -> None:
    spec = publish_buildspec(
        region="eu-west-1", stack="dev", bucket="artifacts", zip_key="promotion/dev.zip"
    )
    assert _commands(spec, "build") == [
        "python -m ecs_delivery.runtime.build --region eu-west-1 publish-records --record promotion.json "
        "--stack dev --bucket artifacts --zip-key promotion/dev.zip"
    ]
    assert "artifacts" not in spec
    assert "--bucket" not in str(_spec()["phases"]) + str(_deploy()["phases"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bucket": "a/b"}, "bucket: 'a/b' is not an S3 bucket name"),
        ({"zip_key": "promotion/dev.json"}, "zip_key: 'promotion/dev.json' must end in .zip"),
        ({"record_file": "/abs.json"}, "record_file: '/abs.json' must be a path relative"),
    ],
)
def test_bad_publish_settings_are_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    options: dict[str, Any] = {
        "region": "eu-west-1",
        "stack": "dev",
        "bucket": "artifacts",
        "zip_key": "promotion/dev.zip",
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        publish_buildspec(**(options | change))


def test_render_is_yaml_that_parses_back_to_the_same_buildspec() -> None:
    spec = _spec(tooling_s3_uri="s3://artifacts/tooling/delivery.zip")
    text = render(spec)

    assert yaml.safe_load(text) == spec
    assert text.startswith("version: 0.2\n")
    assert "envsubst" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"name": "web.app"},
            "services.web.app.name: 'web.app' cannot name a CodePipeline artifact",
        ),
        ({"name": "x" * 101}, "cannot name a CodePipeline artifact"),
        ({"name": "promotion"}, "reserved for the promotion record"),
        (
            {"repository_url": "nginx:latest"},
            "services.web.repository_url: 'nginx:latest' is not an ECR",
        ),
        ({"repository_url": f"{REGISTRY}/web:1.0"}, "is not an ECR repository URL"),
        ({"container_port": 0}, "services.web.container_port: 0 is not a port"),
        ({"context": "../other"}, "services.web.context: '../other' must be a relative path"),
        ({"dockerfile": "/Dockerfile"}, "services.web.dockerfile"),
        ({"container_name": "app;rm"}, "services.web.container_name"),
        ({"family": "shop dev"}, "services.web.family: 'shop dev' is not a task-definition"),
        ({"family": ""}, "services.web.family"),
    ],
)
def test_bad_service_settings_are_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        replace(WEB, **change)


def test_duplicate_service_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"services: names must be unique; repeated: \['web'\]"):
        buildspec([WEB, replace(API, name="web")], region="eu-west-1", stack="dev")


def test_promotion_buildspec_builds_nothing_reads_nothing_and_exports_the_approval_variables():
    spec = promotion_buildspec(region="eu-west-1", stack="prod")
    text = render(spec)

    assert "docker" not in text and " deploy --name " not in text
    assert spec["env"]["exported-variables"] == ["PROMOTED_COMMIT", "PROMOTED_SUMMARY"]
    (record,) = _commands(spec, "build")
    assert "--source-stack prod --from-record promotion.json" in record
    assert spec["artifacts"]["files"] == ["promotion.json"]


def test_deploy_buildspec_ships_a_downstream_service_from_the_record() -> None:
    deploy = DeployService(
        name="web",
        container_name="app",
        container_port=8080,
        cluster="prod",
        service="prod-web",
        family="shop-prod-web",
        deployment_group="web",
    )
    spec = deploy_buildspec([deploy], region="eu-west-1", application="shop-prod")
    (command,) = _commands(spec, "build")
    assert command == (
        "python -m ecs_delivery.runtime.build --region eu-west-1 deploy --name web --cluster prod "
        "--service prod-web --family shop-prod-web --container app --container-port 8080 "
        "--application shop-prod --group web --timeout-minutes 60 --record promotion.json"
    )


# --- the generated shell, run by bash ---------------------------------------------------

RECORDER = """
import json, os, sys
name = os.path.basename(sys.argv[1])
with open(os.environ["SHIM_LOG"], "a") as log:
    log.write(json.dumps([name, *sys.argv[2:]]) + "\\n")
sys.exit(int(os.environ.get("FAKE_" + name.upper() + "_RC", "0")))
"""


@pytest.fixture
def shell(tmp_path: Path) -> Any:
    """Run one buildspec command in bash; `python`/`docker` only record their argv."""
    if BASH is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "recorder.py").write_text(RECORDER)
    for tool in ("python", "docker", "aws"):
        shim = bin_dir / tool
        shim.write_text(
            f'#!/bin/sh\nexec {sys.executable} {tmp_path / "recorder.py"} {tool} "$@"\n'
        )
        shim.chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(command: str, **env: str) -> tuple[int, list[list[str]]]:
        log.write_text("")
        variables = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "SHIM_LOG": str(log),
            "IMAGE_TAG": COMMIT[:12],
            "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT,
            **env,
        }
        done = subprocess.run([BASH, "-c", command], env=variables, capture_output=True, timeout=10)
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return done.returncode, calls

    return run


@pytest.mark.parametrize(
    ("exists_rc", "expected_rc", "docker_called"),
    [("3", 0, True), ("0", 0, False), ("1", 1, False), ("2", 2, False)],
)
def test_docker_build_runs_only_when_the_tag_is_missing_and_errors_stop_the_build(
    shell: Any, exists_rc: str, expected_rc: int, docker_called: bool
) -> None:
    command = _commands(_spec(), "build")[0]

    rc, calls = shell(command, FAKE_PYTHON_RC=exists_rc)

    assert (rc != 0) == (expected_rc != 0)
    assert calls[0][:6] == [
        "python",
        "-m",
        "ecs_delivery.runtime.build",
        "--region",
        "eu-west-1",
        "image-exists",
    ]
    assert calls[0][-2:] == ["--tag", COMMIT[:12]]
    assert any(call[0] == "docker" for call in calls) is docker_called


def test_docker_build_gets_the_tag_expanded_and_the_paths_as_single_arguments(shell: Any) -> None:
    spaced = replace(API, context="services/my api", dockerfile="Dockerfile")
    command = _commands(buildspec([spaced], region="eu-west-1", stack="dev"), "build")[0]

    rc, calls = shell(command, FAKE_PYTHON_RC="3")

    assert rc == 0
    assert calls[1] == [
        "docker", "build",
        "--tag", f"{API.repository_url}:{COMMIT[:12]}",
        "--file", "services/my api/Dockerfile",
        "--label", f"org.opencontainers.image.revision={COMMIT}",
        "services/my api",
    ]  # fmt: skip


def test_hostile_values_reach_the_tool_verbatim_and_are_never_run(
    shell: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = replace(WEB, cluster=f"dev'; touch {marker}; '", service=f"$(touch {marker})")
    command = next(
        c
        for c in _commands(
            deploy_buildspec(
                [hostile], region="eu-west-1", application="shop-dev", validation_hook="`id`"
            ),
            "build",
        )
        if " deploy " in c
    )

    rc, calls = shell(command)

    assert rc == 0 and not marker.exists()
    argv = calls[0]
    assert argv[argv.index("--cluster") + 1] == hostile.cluster
    assert argv[argv.index("--service") + 1] == hostile.service
    assert argv[argv.index("--validation-hook") + 1] == "`id`"
    assert argv[argv.index("--record") + 1] == "promotion.json"


def test_post_build_stops_before_pushing_when_the_build_phase_failed(shell: Any) -> None:
    guard = _commands(_spec(), "post_build")[0]

    assert shell(guard, CODEBUILD_BUILD_SUCCEEDING="0")[0] != 0
    assert shell(guard, CODEBUILD_BUILD_SUCCEEDING="1")[0] == 0


def test_image_tag_line_sets_the_short_commit_with_the_real_tool(tmp_path: Path) -> None:
    if BASH is None:
        pytest.skip("bash is not installed")
    line = next(c for c in _commands(_spec(), "pre_build") if c.startswith("IMAGE_TAG="))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "src")}

    ok = subprocess.run(
        [BASH, "-c", f'{line} && echo "$IMAGE_TAG"'],
        env={**env, "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT},
        capture_output=True,
        text=True,
        timeout=20,
    )
    empty = subprocess.run(
        [BASH, "-c", f'{line} && echo "tag=$IMAGE_TAG"'],
        env={**env, "CODEBUILD_RESOLVED_SOURCE_VERSION": ""},
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert (ok.returncode, ok.stdout) == (0, f"{COMMIT[:12]}\n")
    assert empty.returncode == 1 and "tag=" not in empty.stdout
    assert "CODEBUILD_RESOLVED_SOURCE_VERSION is not set" in empty.stderr


def test_a_failing_record_check_fails_the_promotion_build(shell: Any) -> None:
    spec = promotion_buildspec(region="eu-west-1", stack="prod")
    first = _commands(spec, "pre_build")[0]

    assert shell(first, FAKE_PYTHON_RC="1")[0] != 0
    assert shell(first)[0] == 0

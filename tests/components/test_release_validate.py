"""The release pipeline's Validate step, its commands run by /bin/sh (dash on this machine,
as on CodeBuild's standard images): a rejected manifest must fail the step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ecs_delivery.components.release_pipeline import validate_buildspec

# Stands in for `python`: the release plan refuses the manifest (exit 2), as the CLI does.
FAKE_PYTHON = """#!/bin/sh
case "$*" in
  *"ecs_delivery.runtime.release plan"*)
    if [ "$PLAN_STATUS" = 0 ]; then echo "web: 1.0.0 -> 2.0.0"; exit 0; fi
    echo "manifest release.yaml is invalid (1 problems; nothing deployed):" >&2
    echo "  services.web.image: required key is missing" >&2
    exit "$PLAN_STATUS" ;;
esac
exec "$REAL_PYTHON" "$@"
"""


def _run_build_commands(tmp_path: Path, plan_status: int) -> tuple[int, str, int]:
    """Run the build phase as CodeBuild does: one shell, commands in order, stop at the
    first that fails. Returns (index of the failing command or -1, output, status)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(FAKE_PYTHON)
    (bin_dir / "python").chmod(0o755)
    (tmp_path / "release.yaml").write_text("release: r1\nenvironment: prod\n")
    spec = validate_buildspec("release.yaml", "inventory.json", "state-bucket", "s3://t/z.zip")
    commands = [c.replace("/tmp/", f"{tmp_path}/") for c in spec["phases"]["build"]["commands"]]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env |= {"REAL_PYTHON": sys.executable, "PLAN_STATUS": str(plan_status)}
    output = ""
    for index, command in enumerate(commands):
        done = subprocess.run(
            ["/bin/sh", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        output += done.stdout + done.stderr
        if done.returncode != 0:
            return index, output, done.returncode
    return -1, output, 0


def test_a_rejected_manifest_fails_the_validate_step_under_a_shell_without_pipefail(
    tmp_path: Path,
) -> None:
    failed_at, output, status = _run_build_commands(tmp_path, plan_status=2)

    assert failed_at == 0 and status != 0
    assert "services.web.image: required key is missing" in output
    assert not (tmp_path / "release-input.json").exists()


def test_an_accepted_manifest_passes_validate_showing_the_plan_and_writing_the_input(
    tmp_path: Path,
) -> None:
    failed_at, output, _ = _run_build_commands(tmp_path, plan_status=0)

    assert failed_at == -1
    assert "web: 1.0.0 -> 2.0.0" in output
    assert (tmp_path / "release-input.json").exists()

"""The real-engine path: `pulumi preview` of the dev stack through the Automation API.

Runs only where the Pulumi CLI is on PATH and AWS credentials are present (CI with an AWS
role); everywhere else it skips with the reason. The offline plan covers the same program
under Pulumi's mock runtime.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(shutil.which("pulumi") is None, reason="the Pulumi CLI is not on PATH"),
    pytest.mark.skipif(
        not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")),
        reason="no AWS credentials in the environment (AWS_ACCESS_KEY_ID or AWS_PROFILE)",
    ),
]


def test_dev_preview_with_the_real_engine_registers_the_planned_resources(tmp_path):
    from pulumi import automation

    backend = tmp_path / "state"
    backend.mkdir()
    env = {"PULUMI_BACKEND_URL": backend.as_uri(), "PULUMI_CONFIG_PASSPHRASE": "offline-test"}
    stack = automation.create_or_select_stack(
        stack_name="dev",
        work_dir=str(ROOT),
        opts=automation.LocalWorkspaceOptions(env_vars=env),
    )
    result = stack.preview()
    created = result.change_summary.get("create", 0)
    from ecs_delivery.offline import plan as plan_tool

    offline = plan_tool.run("dev")
    assert created == len(offline.resources) + 1  # + the stack itself

"""Issue 16, problem 5: a FargateService (CODE_DEPLOY controller) composed without a
ServiceRollout never rolls out a change, yet `ecs-delivery diff` said "rolls out blue/green".
The plan refuses it, naming the service and what to add."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ecs_delivery.offline import plan as plan_tool

EXAMPLE = plan_tool.ROOT / "examples" / "library"
ROLLOUTS = "for name, service in services.items():\n    group = deployment.groups[name]\n"


def _without_rollouts(tmp_path: Path) -> Path:
    """examples/library as a user who left out the rollout loop would write it."""
    project = tmp_path / "library"
    shutil.copytree(EXAMPLE, project)
    program = (project / "__main__.py").read_text()
    start = program.index(ROLLOUTS)
    end = program.index('pulumi.export("url"', start)
    (project / "__main__.py").write_text(program[:start] + program[end:])
    return project


def test_a_fargate_service_without_a_rollout_is_refused_at_plan_time(tmp_path):
    with pytest.raises(plan_tool.PlanError) as error:
        plan_tool.run("dev", root=_without_rollouts(tmp_path))
    lines = str(error.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "FargateService 'api'",
        "FargateService 'web'",
    ]
    assert "never reach its running tasks" in lines[0]
    assert "ServiceRollout('api-rollout'" in lines[0]
    assert "CodeDeployment" in lines[0] and "examples/library/__main__.py" in lines[0]


def test_the_plan_command_prints_the_refusal_without_a_traceback(tmp_path):
    project = _without_rollouts(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.plan", "--stack", "dev"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: FargateService 'api': ")
    assert "Traceback" not in done.stderr


def test_the_wired_example_still_plans():
    plan = plan_tool.run("dev", root=EXAMPLE)
    assert {r.name for r in plan.resources if r.name.endswith("-rollout")} == {
        "api-rollout",
        "web-rollout",
    }

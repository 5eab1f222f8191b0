"""Plans as a first `pulumi preview` sees them: every output of a resource being created is
unknown (the engine computes it later), so the program must not branch on one or bake one
into another resource as if it were known."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.simcloud import plain


@pytest.fixture(scope="module", params=["dev", "prod"])
def first_preview(request) -> plan_tool.Plan:
    return plan_tool.run(request.param, preview=True)


def test_both_stacks_plan_as_a_first_preview(first_preview):
    assert len(first_preview.resources) > 100
    assert first_preview.outputs["vpcId"] == "<computed>"


def test_no_mock_id_or_arn_stands_in_for_an_unknown_value(first_preview):
    # Under preview=False the simulated cloud answers ids like "network-id" and ARNs it
    # makes up; a first preview has none of them, so none may appear in any input.
    text = json.dumps([plain(r.inputs) for r in first_preview.resources])
    assert '-id"' not in text and "-id/" not in text
    assert "<computed>" in text


def test_the_template_and_its_rollout_wait_for_computed_values(first_preview):
    template = next(
        r
        for r in first_preview.resources
        if r.type == "aws:ecs/taskDefinition:TaskDefinition" and r.name == "web"
    )
    rollout = next(r for r in first_preview.resources if r.name == "web-rollout")
    assert plain(template.inputs)["executionRoleArn"] == "<computed>"
    assert plain(rollout.inputs)["template_arn"] == "<computed>"
    assert rollout.inputs["family"].endswith("-web")  # plain values stay known


def test_make_plan_preview_prints_computed_values(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.plan", "--stack", "dev", "--preview"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert 'vpcId: "<computed>"' in result.stdout

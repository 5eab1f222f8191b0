"""The offline plan command: both stacks plan, the JSON contract, config errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dev_plan_prints_the_tree_and_writes_the_json_contract(tmp_path):
    target = tmp_path / "plan.json"
    result = _plan("--stack", "dev", "--json", str(target))
    assert result.returncode == 0, result.stderr
    assert "[ecs-delivery:service:FargateService] web" in result.stdout
    assert 'deploymentController={"type":"CODE_DEPLOY"}' in result.stdout
    assert "outputs:" in result.stdout
    plan = json.loads(target.read_text())
    assert plan["stack"] == "dev"
    assert set(plan) >= {"stack", "resources", "outputs"}
    for resource in plan["resources"]:
        assert set(resource) >= {"urn", "type", "name", "parent", "inputs", "options"}
        assert set(resource["options"]) >= {
            "ignoreChanges",
            "dependsOn",
            "protect",
            "deleteBeforeReplace",
        }
    services = [r for r in plan["resources"] if r["type"] == "aws:ecs/service:Service"]
    assert sorted(r["name"] for r in services) == ["api", "web"]
    assert plan["outputs"]["clusterName"] == "ecs-delivery-dev"


def test_prod_plan_succeeds(prod_plan):
    assert len(prod_plan.of_type("aws:ecs/service:Service")) == 2
    assert prod_plan.outputs["url"].startswith("https://")


def test_config_error_exits_non_zero_with_the_key_and_no_traceback():
    result = _plan("--stack", "dev", "-c", 'network={"cidr": "10.0.0.0/8"}')
    assert result.returncode == 1
    assert "network.cidr: 10.0.0.0/8 must be an IPv4 CIDR from /16 to /24" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_config_error_registers_no_resource():
    from components.config import ConfigError
    from tools import plan as plan_tool

    try:
        plan_tool.run("dev", overrides={"services": {"web": {"containerPort": 0}}})
    except ConfigError as exc:
        assert "services.web.containerPort" in str(exc)
        assert exc.registrations == []
    else:
        raise AssertionError("a bad config must fail the plan")


def test_unknown_stack_names_the_known_ones():
    result = _plan("--stack", "qa")
    assert result.returncode == 1
    assert "no stack file Pulumi.qa.yaml; known stacks: dev, prod" in result.stderr


def test_the_readme_examples_plan(tmp_path):
    for args in (
        ["--stack", "dev", "--live", "examples/live-dev.yaml"],
        ["--stack", "prod", "--live", "examples/live-prod.yaml"],
        ["--stack", "prod", "--live", "examples/live-prod.yaml", "-c", "promoteRelease=3f9c2a1"],
    ):
        result = _plan(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "images (now -> after, why):" in result.stdout
    assert "[promoted from dev@3f9c2a1, CHANGES]" in result.stdout


def test_a_malformed_simulated_environment_names_the_key_and_changes_nothing(tmp_path):
    live = tmp_path / "live.yaml"
    live.write_text("services:\n  web:\n    contaners: {web: 'x:1'}\n")
    target = tmp_path / "plan.json"
    result = _plan("--stack", "dev", "--live", str(live), "--json", str(target))
    assert result.returncode == 1
    assert "invalid simulated environment" in result.stderr
    assert "services.web.contaners: Extra inputs are not permitted" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()


def test_a_config_override_without_a_value_is_refused():
    result = _plan("--stack", "dev", "-c", "promote")
    assert result.returncode == 1
    assert "-c 'promote': use key=value (e.g. -c promote=true)" in result.stderr

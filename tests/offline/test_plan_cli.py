"""The offline plan command: both stacks plan, the JSON contract, config errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.plan", *args],
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
    assert sorted(r["name"] for r in services) == ["api", "mailer", "web"]
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
    from ecs_delivery.components.config import ConfigError
    from ecs_delivery.offline import plan as plan_tool

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


# One case each, so that pytest-xdist spreads the three plans (each a process of its own).
@pytest.mark.parametrize(
    "args, tag",
    [
        (["--stack", "dev", "--live", "examples/live-dev.yaml"], ""),
        (["--stack", "prod", "--live", "examples/live-prod.yaml"], ""),
        (
            [
                "--stack",
                "prod",
                "--live",
                "examples/live-prod.yaml",
                "-c",
                "promoteRelease=3f9c2a1",
            ],
            "[promoted from dev@3f9c2a1, CHANGES]",
        ),
    ],
    ids=["dev", "prod", "prod-promotion"],
)
def test_the_readme_examples_plan(args, tag):
    result = _plan(*args)
    assert result.returncode == 0, (args, result.stderr)
    assert "images (now -> after, why):" in result.stdout
    assert tag in result.stdout


def test_a_malformed_simulated_environment_names_the_key_and_changes_nothing(tmp_path):
    live = tmp_path / "live.yaml"
    live.write_text("services:\n  web:\n    contaners: {web: 'x:1'}\n")
    target = tmp_path / "plan.json"
    result = _plan("--stack", "dev", "--live", str(live), "--json", str(target))
    assert result.returncode == 1
    assert "invalid simulated environment" in result.stderr
    assert (
        f"{live}:3: services.web.contaners: unknown key; did you mean 'containers'?"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not target.exists()


def test_a_config_override_without_a_value_is_refused():
    result = _plan("--stack", "dev", "-c", "promote")
    assert result.returncode == 1
    assert "-c 'promote': use key=value (e.g. -c promoteRelease=3f9c2a1)" in result.stderr


# --- bad stack files: one line per problem, with file and line, exit 1, no traceback --------


def _project(tmp_path: Path, **stacks: str) -> Path:
    """A project directory with the real program and the given `Pulumi.<stack>.yaml` texts."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    for stack, text in stacks.items():
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(text)
    return tmp_path


def _dev_with(old: str, new: str) -> str:
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def _refused(tmp_path: Path, *args: str) -> str:
    result = _plan("--root", str(tmp_path), *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    return result.stderr


def test_a_yaml_syntax_error_names_file_and_line(tmp_path):
    text = _dev_with('pathPatterns: ["/api/*"]', 'pathPatterns: ["/api/*"')
    stderr = _refused(_project(tmp_path, dev=text), "--stack", "dev")
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: Pulumi.dev.yaml:"), stderr
    assert "not valid YAML" in lines[0]


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path):
    stderr = _refused(_project(tmp_path, dev="config: [a, b]\n"), "--stack", "dev")
    assert stderr == (
        "error: Pulumi.dev.yaml:1: config must be a mapping of key: value (got a list)\n"
    )


def test_a_duplicate_key_is_refused_naming_both_lines(tmp_path):
    text = _dev_with("      memory: 512\n", "      memory: 512\n      memory: 1024\n")
    stderr = _refused(_project(tmp_path, dev=text), "--stack", "dev")
    first = _line_of(text, "memory: 512")
    assert stderr == (
        f"error: Pulumi.dev.yaml:{first + 1}: duplicate key 'memory' (first at line {first}); "
        "YAML keeps only the last one: remove one of them\n"
    )


def test_an_upstream_cycle_is_named(tmp_path):
    prod = (
        (ROOT / "Pulumi.prod.yaml")
        .read_text()
        .replace("upstreamStack: dev", "upstreamStack: staging")
    )
    staging = (ROOT / "Pulumi.prod.yaml").read_text()
    staging = staging.replace("upstreamStack: dev", "upstreamStack: prod")
    stderr = _refused(_project(tmp_path, prod=prod, staging=staging), "--stack", "staging")
    line = _line_of(staging, "upstreamStack")
    assert stderr.startswith(
        f"error: Pulumi.prod.yaml:{line}: upstreamStack: the stacks promote from each other "
        "in a cycle: staging -> prod -> staging;"
    ), stderr


def test_yaml_1_1_yes_and_a_quoted_true_are_not_booleans(tmp_path):
    text = _dev_with("deletionProtection: false", "deletionProtection: yes")
    text = text.replace(
        "ecs-delivery:logRetentionDays: 14",
        'ecs-delivery:containerInsights: "true"\n  ecs-delivery:logRetentionDays: 14',
    )
    stderr = _refused(_project(tmp_path, dev=text), "--stack", "dev")
    assert (
        f"  Pulumi.dev.yaml:{_line_of(text, 'deletionProtection')}: loadBalancer.deletionProtection: "
        "use true or false (an unquoted YAML boolean), got 'yes'\n" in stderr
    ), stderr
    assert (
        f"  Pulumi.dev.yaml:{_line_of(text, 'containerInsights')}: containerInsights: "
        "use true or false (an unquoted YAML boolean), got 'true'\n" in stderr
    ), stderr


def test_a_plain_password_names_its_line_and_the_fix(tmp_path):
    text = _dev_with(
        "        LOG_LEVEL: debug\n    api:",
        "        LOG_LEVEL: debug\n        DB_PASSWORD: hunter2\n    api:",
    )
    stderr = _refused(_project(tmp_path, dev=text), "--stack", "dev")
    assert (
        f"  Pulumi.dev.yaml:{_line_of(text, 'DB_PASSWORD')}: services.web.environment.DB_PASSWORD: "
        "looks like a secret; move it to services.web.secrets" in stderr
    ), stderr


def test_a_bad_simulated_environment_file_gets_the_stack_file_style(tmp_path):
    live = tmp_path / "live.yaml"
    live.write_text("services:\n  web:\n    unreadable: yes\n  api: [\n")
    stderr = _refused(ROOT, "--stack", "dev", "--live", str(live))
    assert stderr.startswith(f"error: {live}:"), stderr
    assert "not valid YAML" in stderr and len(stderr.strip().splitlines()) == 1
    live.write_text("services:\n  web:\n    unreadable: yes\n")
    stderr = _refused(ROOT, "--stack", "dev", "--live", str(live))
    assert (
        f"  {live}:3: services.web.unreadable: use true or false (an unquoted YAML boolean), "
        "got 'yes'\n" in stderr
    ), stderr


def test_json_into_a_missing_folder_is_refused_before_planning(tmp_path):
    result = _plan("--stack", "dev", "--json", str(tmp_path / "nope" / "plan.json"))

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: --json {tmp_path / 'nope' / 'plan.json'}: the folder {tmp_path / 'nope'} does "
        "not exist; create it or write the plan elsewhere"
    )
    assert result.stdout == ""

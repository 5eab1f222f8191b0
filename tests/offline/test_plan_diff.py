"""`make diff`: what a change does per resource, and per service whether it rolls out."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from pulumi.runtime.proto import alias_pb2

from ecs_delivery.offline import diff

ROOT = Path(__file__).resolve().parents[2]


def _diff(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.diff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _changed_project(tmp_path: Path, stack_text: str) -> Path:
    """A copy of the project whose dev stack changes web's memory and one variable."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((ROOT / name).read_text())
    web, api = stack_text.split("    api:\n", 1)
    assert "memory: 512" in web and "LOG_LEVEL: debug" in web
    web = web.replace("memory: 512", "memory: 1024").replace("LOG_LEVEL: debug", "LOG_LEVEL: info")
    (project / "Pulumi.dev.yaml").write_text(web + "    api:\n" + api)
    return project


WEB_CHANGE = [
    "+- replace aws:ecs/taskDefinition:TaskDefinition web (forced by every input)",
    "    containerDefinitions.web.environment.LOG_LEVEL: debug → info",
    "    memory: 512 → 1024",
    # Wrapped at 120 between tokens, the continuation indented.
    "service web: rolls out blue/green: web.environment.LOG_LEVEL debug → info, "
    "memory 512 → 1024; image web: (not deployed",
    "  yet) -> public.ecr.aws/docker/library/busybox:1.36",
]


def test_a_memory_and_an_environment_change_print_exactly_those_and_the_rollout(tmp_path):
    base = tmp_path / "base.json"
    done = subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.plan", "--stack", "dev", "--json", str(base)],
        cwd=ROOT,
    )
    assert done.returncode == 0
    project = _changed_project(tmp_path, (ROOT / "Pulumi.dev.yaml").read_text())

    result = _diff("--stack", "dev", "--base", str(base), "--root", str(project))

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == WEB_CHANGE


def test_a_git_ref_base_is_planned_in_a_worktree_that_is_removed_afterwards(tmp_path):
    def worktrees() -> set[str]:
        listed = subprocess.run(
            ["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        return {
            line.split(" ", 1)[1] for line in listed.splitlines() if line.startswith("worktree ")
        }

    own_tmp = tmp_path / "tmp"  # where the diff makes its worktree, apart from other runs
    own_tmp.mkdir()
    text = subprocess.run(
        ["git", "show", "HEAD:Pulumi.dev.yaml"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    project = _changed_project(tmp_path, text)

    result = _diff(
        "--stack",
        "dev",
        "--base",
        _commit(),
        "--root",
        str(project),
        # The worktree's plan takes the release steps' zip from this checkout's cache (the same
        # content-addressed file) instead of running pip in the worktree.
        env={
            **os.environ,
            "TMPDIR": str(own_tmp),
            "ECS_DELIVERY_LAMBDA_CACHE": str(ROOT / "build" / "lambda"),
        },
    )

    assert result.returncode == 1, result.stderr
    # Uncommitted code changes (e.g. Lambda code) may add lines; the config change is all there.
    lines = result.stdout.splitlines()
    start = lines.index(WEB_CHANGE[0])
    assert lines[start : start + 3] == WEB_CHANGE[:3]
    assert WEB_CHANGE[3] in lines and WEB_CHANGE[4] in lines
    assert not [path for path in worktrees() if path.startswith(str(own_tmp))]
    assert list(own_tmp.iterdir()) == []


def test_the_same_plan_is_no_change_and_exits_0(tmp_path):
    base = tmp_path / "plan.json"
    done = subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.plan", "--stack", "dev", "--json", str(base)],
        cwd=ROOT,
    )
    assert done.returncode == 0
    result = _diff("--stack", "dev", "--base", str(base))
    assert (result.returncode, result.stdout) == (0, "no changes\n"), result.stderr


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (
            "no-such-ref-or-file",
            "error: --base no-such-ref-or-file: neither a plan JSON file nor a git ref",
        ),
        ("README.md", "error: README.md:1:1: not valid JSON"),
    ],
)
def test_a_bad_base_exits_2_with_the_reason(base, message):
    result = _diff("--stack", "dev", "--base", base)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


# --- the comparison itself, on small plans ------------------------------------------------


def _resource(type_: str, name: str, inputs: dict, parent: str = "", **options) -> dict:
    return {
        "urn": f"urn:pulumi:dev::p::{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": parent,
        "custom": True,
        "inputs": inputs,
        "options": {"ignoreChanges": [], **options},
    }


BASE = {
    "resources": [
        _resource("aws:ecs/service:Service", "web", {"desiredCount": 1, "taskDefinition": "a:1"}),
        _resource(
            "aws:ecs/taskDefinition:TaskDefinition",
            "web",
            {"memory": "512", "containerDefinitions": json.dumps([{"name": "web", "image": "x"}])},
        ),
        _resource("pulumi-python:dynamic:Resource", "web-rollout", {"platform_version": "1.4.0"}),
        _resource("aws:lb/targetGroup:TargetGroup", "alb-web-blue", {"port": 8080}),
        _resource("aws:cloudwatch/logGroup:LogGroup", "old", {"name": "/old"}),
    ],
    "outputs": {"imageResolution": {"web": {"web": {"now": "x", "after": "x", "source": "live"}}}},
}


def _changed(mutate) -> tuple[str, bool]:
    new = copy.deepcopy(BASE)
    mutate(new)
    return diff.render(BASE, new)


def _set(new: dict, name: str, type_: str, key: str, value) -> None:
    next(r for r in new["resources"] if r["name"] == name and r["type"] == type_)["inputs"][key] = (
        value
    )


def test_a_desired_count_change_updates_in_place_and_does_not_roll_out():
    text, changed = _changed(lambda p: _set(p, "web", "aws:ecs/service:Service", "desiredCount", 3))
    assert changed
    assert text.splitlines() == [
        "~ update aws:ecs/service:Service web",
        "    desiredCount: 1 → 3",
        "service web: no rollout; image web: x (unchanged)",
    ]


def test_an_ignored_input_is_no_change():
    def mutate(plan):
        service = plan["resources"][0]
        service["inputs"]["taskDefinition"] = "a:2"
        service["options"]["ignoreChanges"] = ["taskDefinition"]
        plan["resources"][0] = service

    base = copy.deepcopy(BASE)
    base["resources"][0]["options"]["ignoreChanges"] = ["taskDefinition"]
    new = copy.deepcopy(base)
    mutate(new)
    assert diff.render(base, new) == ("no changes", False)


def test_a_change_of_the_rollout_resource_rolls_out_with_the_input_named():
    text, _ = _changed(
        lambda p: _set(
            p, "web-rollout", "pulumi-python:dynamic:Resource", "platform_version", "LATEST"
        )
    )
    assert (
        "service web: rolls out blue/green: platform_version 1.4.0 → LATEST; image web: x (unchanged)"
        in text
    )


def test_a_replace_forcing_input_is_named_and_a_new_image_shows_now_and_after():
    def mutate(plan):
        _set(plan, "alb-web-blue", "aws:lb/targetGroup:TargetGroup", "port", 9090)
        plan["outputs"]["imageResolution"]["web"]["web"]["after"] = "y"

    text, _ = _changed(mutate)
    assert text.splitlines()[:2] == [
        "+- replace aws:lb/targetGroup:TargetGroup alb-web-blue (forced by port)",
        "    port: 8080 → 9090",
    ]
    assert "service web: no rollout; image web: x -> y" in text
    assert "outputs that change: imageResolution" in text


def test_created_and_deleted_resources_are_listed():
    def mutate(plan):
        plan["resources"] = [r for r in plan["resources"] if r["name"] != "old"]
        plan["resources"].append(_resource("aws:cloudwatch/logGroup:LogGroup", "new", {}))

    text, _ = _changed(mutate)
    assert text.splitlines() == [
        "+ create aws:cloudwatch/logGroup:LogGroup new",
        "- delete aws:cloudwatch/logGroup:LogGroup old",
    ]


def test_environment_and_secrets_compare_by_variable_name():
    old = {
        "containerDefinitions": json.dumps(
            [
                {
                    "name": "web",
                    "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                }
            ]
        )
    }
    new = {
        "containerDefinitions": json.dumps(
            [
                {
                    "name": "web",
                    "environment": [
                        {"name": "B", "value": "2"},
                        {"name": "A", "value": "1"},
                        {"name": "C", "value": "3"},
                    ],
                }
            ]
        )
    }
    assert diff.changed_inputs(old, new) == [("containerDefinitions.web.environment.C", None, "3")]


# --- how it is called ------------------------------------------------------------------------


def test_make_diff_passes_stack_base_live_and_config():
    done = subprocess.run(
        ["make", "-n", "diff", "STACK=prod", "BASE=origin/main", "LIVE=l.yaml", "CONFIG=a=1 b=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (
        ".venv/bin/ecs-delivery diff --stack prod --base origin/main --live l.yaml -c a=1 -c b=2"
        in done.stdout
    ), done.stdout + done.stderr


def test_the_pull_request_preview_runs_the_offline_diff_beside_pulumi_preview():
    import yaml

    job = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())["jobs"]["preview"]
    steps = job["steps"]
    names = [s.get("name") or s.get("uses") for s in steps]
    diff_step = steps[names.index("Offline plan diff against the base branch")]
    assert names.index("Offline plan diff against the base branch") < names.index(
        "pulumi/actions@v6"
    )
    assert (
        '.venv/bin/ecs-delivery diff --stack "$STACK" --base "origin/$BASE_REF"' in diff_step["run"]
    )
    assert diff_step["env"] == {
        "STACK": "${{ matrix.stack }}",
        "BASE_REF": "${{ github.base_ref }}",
    }
    assert steps[0]["with"]["fetch-depth"] == 0  # the base branch must be there to plan it


def test_policy_statements_compare_by_sid_and_lists_say_what_was_added_and_removed():
    def policy(resources):
        statement = {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": resources,
        }
        return {"policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}

    base = {"resources": [_resource("aws:iam/rolePolicy:RolePolicy", "r", policy(["a", "b"]))]}
    new = {"resources": [_resource("aws:iam/rolePolicy:RolePolicy", "r", policy(["b", "c"]))]}
    assert diff.render(base, new)[0].splitlines() == [
        "~ update aws:iam/rolePolicy:RolePolicy r",
        "    policy.Statement.Read.Resource: removed a; added c",
    ]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ([], "base.json: not a plan JSON (a JSON list)"),
        ({"stack": "dev", "resources": [1]}, "base.json: resources.0: Input should be"),
        ({"stack": "dev", "resources": [{"urn": "u", "type": "t"}]}, "resources.0.name: required"),
        (
            {"stack": "dev", "resources": [{"urn": "u", "type": "t", "name": "n", "options": []}]},
            "base.json: resources.0.options: Input should be a valid dictionary",
        ),
        ({"stack": "dev", "resources": [], "outputs": {"imageResolution": []}}, "imageResolution"),
        ({"resources": []}, "base.json: stack: required"),
    ],
)
def test_a_malformed_base_plan_exits_2_with_one_message_naming_the_field(
    tmp_path, capsys, plan, message
):
    base = tmp_path / "base.json"
    base.write_text(json.dumps(plan))

    code = diff.main(["--stack", "dev", "--base", str(base)])

    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert err.startswith("error: ") and err.count("error: ") == 1


def test_a_base_plan_of_another_stack_is_refused_unless_allowed(tmp_path, capsys):
    base = tmp_path / "prod.json"
    base.write_text(json.dumps({"stack": "prod", "resources": []}))

    code = diff.main(["--stack", "dev", "--base", str(base)])

    err = capsys.readouterr().err
    assert code == 2
    assert "the plan is of stack 'prod', not --stack dev" in err
    assert "--allow-other-stack" in err
    checked = diff.read_plan_file(base, "prod.json", "dev", other_stack=True)
    assert checked["stack"] == "prod"


def test_a_change_of_a_rollout_setting_alone_is_no_rollout():
    """The rollout provider starts no deployment for a setting (timeout, wait, region, the
    termination-wait choice): the diff read such a change as "rolls out blue/green"."""
    text, changed = _changed(
        lambda p: _set(p, "web-rollout", "pulumi-python:dynamic:Resource", "timeout_minutes", 90)
    )
    assert changed
    assert "service web: no rollout; image web: x (unchanged)" in text


def _moved_plans() -> tuple[dict, dict]:
    """A component moved from the stack into a new parent with an alias to the stack, as the
    mock monitor records it (a child's URN names only its parent's own type)."""
    root = "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev"
    network = "urn:pulumi:dev::p::pulumi:pulumi:Stack$ecs-delivery:network:Network::network"
    vpc = _resource("aws:ec2/vpc:Vpc", "network", {"cidrBlock": "10.0.0.0/16"}, network)
    vpc["urn"] = "urn:pulumi:dev::p::ecs-delivery:network:Network$aws:ec2/vpc:Vpc::network"
    component = {"type": "ecs-delivery:network:Network", "name": "network", "custom": False}
    base = {
        "stack": "dev",
        "project": "p",
        "resources": [{**component, "urn": network, "parent": root, "options": {}}, vpc],
    }
    env_type = "ecs-delivery:environment:DeliveryEnvironment"
    env = f"urn:pulumi:dev::p::pulumi:pulumi:Stack${env_type}::dev"
    alias = text_format.MessageToString(alias_pb2.Alias(spec=alias_pb2.Alias.Spec(noParent=True)))
    moved = {
        **component,
        "urn": f"urn:pulumi:dev::p::{env_type}$ecs-delivery:network:Network::network",
        "parent": env,
        "options": {"aliases": [alias]},
    }
    new_vpc = {**vpc, "parent": moved["urn"]}
    new = {
        **base,
        "resources": [
            {"urn": env, "type": env_type, "name": "dev", "parent": root, "custom": False},
            moved,
            new_vpc,
        ],
    }
    return base, new


def test_a_resource_moved_under_a_new_parent_with_an_alias_to_its_old_urn_is_no_change():
    base, new = _moved_plans()
    text, _ = diff.render(base, new)
    assert text.splitlines() == ["+ create ecs-delivery:environment:DeliveryEnvironment dev"]


def test_a_moved_resource_whose_inputs_change_is_an_update_not_a_create_and_delete():
    base, new = _moved_plans()
    base["resources"][0]["inputs"] = {"cidr": "10.0.0.0/16"}
    new["resources"][1]["inputs"] = {"cidr": "10.1.0.0/16"}
    text, _ = diff.render(base, new)
    assert sorted(text.splitlines()) == [
        "    cidr: 10.0.0.0/16 → 10.1.0.0/16",
        "+ create ecs-delivery:environment:DeliveryEnvironment dev",
        "~ update ecs-delivery:network:Network network",
    ]


def test_adding_a_service_gives_a_short_diff_a_reviewer_can_read():
    """Issue 16, problem 6: adding a service gave a 178-line diff, two whole buildspecs
    printed old → new at column 0 and lines of ARNs over 120 characters."""
    from ecs_delivery.offline.plan import stack_config
    from tests.conftest import make_plan

    services = dict(stack_config("dev")["ecs-delivery:services"])
    services["admin"] = {"containerPort": 8080, "routing": {"pathPatterns": ["/admin/*"]}}
    base = make_plan("dev").to_json()
    new = make_plan("dev", overrides={"services": services}).to_json()

    text, changed = diff.render(base, new)
    lines = text.splitlines()

    assert changed and len(lines) <= 80, text
    assert [line for line in lines if len(line) > 120] == []
    # Multi-line values are a unified diff indented under their key, not old → new.
    buildspec = lines.index("    source.buildspec:")
    assert all(line.startswith("      ") for line in lines[buildspec + 1 : buildspec + 4])
    assert any(line.startswith("      + ") for line in lines)
    assert "ecs-delivery-dev/admin --tag" in text  # the admin image's build, added
    # One changed line shows what changed in it, word by word.
    assert any(line.startswith("      ~ ") for line in lines) and "{+admin/admin=" in text
    # A token (an ARN) is never split across lines.
    arns = [t for line in lines for t in line.split() if t.startswith("arn:aws:iam::")]
    assert arns and all(
        t.rstrip(",").endswith(("admin-execution-d58fb3c", "admin-task-8189122")) for t in arns[:2]
    )


def test_wrapping_breaks_between_tokens_and_keeps_a_long_token_whole():
    line = "    policy.Resource: added " + ", ".join(
        f"arn:aws:iam::1:role/r{i:03d}" for i in range(9)
    )
    token = "x" * 130

    wrapped = diff.wrap(line, 60) + diff.wrap(f"    key: {token} tail", 60)

    assert all(len(w) <= 60 or token in w for w in wrapped)
    assert " ".join(w.strip() for w in wrapped[:-3]) == line.strip()
    assert f"      {token}" in wrapped


def test_a_git_ref_base_plans_with_the_lambda_zips_already_built_here(tmp_path, monkeypatch):
    """Issue 16, problem 6: `diff --base <git ref>` rebuilt the Lambda zips from the package
    index in every worktree (143 s against 38 s with the cache). Zips are cached by the hash
    of their inputs, so the worktree's plan may share this checkout's cache."""
    from ecs_delivery.components.lambda_package import CACHE_DIR_VARIABLE, cache_dir

    monkeypatch.delenv(CACHE_DIR_VARIABLE, raising=False)
    tree = tmp_path / "base"
    (tree / "src" / "ecs_delivery" / "offline").mkdir(parents=True)
    (tree / "src" / "ecs_delivery" / "offline" / "plan.py").write_text("")

    _, env = diff._plan_command(tree)

    assert env[CACHE_DIR_VARIABLE] == str(cache_dir())


def test_a_git_ref_base_without_git_exits_2_naming_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    assert diff.main(["--stack", "dev", "--base", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --base HEAD: git is not installed"), err


def test_a_worktree_git_cannot_add_exits_2_with_gits_reason(tmp_path, monkeypatch, capsys):
    """A stand-in `git` on PATH (the real one for everything but `worktree add`, which it
    refuses as a full disk would): diff must report git's reason, not a traceback."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True)
    fake = tmp_path / "git"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = worktree ] && [ "$2" = add ]; then\n'
        "  echo 'fatal: could not create work tree dir: No space left on device' >&2; exit 128\n"
        "fi\n"
        f'exec {real.stdout.strip()} "$@"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert diff.main(["--stack", "dev", "--base", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --base HEAD: git worktree add failed: fatal: could not create"), (
        err
    )

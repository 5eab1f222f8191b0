"""What a change does: the offline plan of the working tree against a base plan.

    python -m ecs_delivery.offline.diff --stack dev --base origin/main [--live examples/live-dev.yaml] [-c key=value]
    python -m ecs_delivery.offline.diff --stack dev --base old-plan.json

`--base` is a plan JSON written by `make plan PLAN_JSON=...`, or a git ref whose plan is built
in a temporary `git worktree` (removed afterwards) with the same `--live` and `-c`. Prints per
resource create / update (input: old → new) / replace (and the input that forces it) / delete,
then per changed service whether it rolls out blue/green and why, with its images now -> after.
Exit 0: no change; 1: changes; 2: error (bad input, a plan that fails).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from pulumi.runtime.proto import alias_pb2
from pydantic import BaseModel, ConfigDict, Field

from ecs_delivery import inputs
from ecs_delivery.components.lambda_package import CACHE_DIR_VARIABLE, cache_dir
from ecs_delivery.components.rollout import SETTING_INPUTS
from ecs_delivery.offline.plan import ROOT
from ecs_delivery.offline.plan_tree import TASK_DEFINITION, compact, wrap

SERVICE = "aws:ecs/service:Service"
PLAN_MAX_BYTES = 256 << 20  # a plan of hundreds of services is tens of MiB
DYNAMIC = "pulumi-python:dynamic"

# Inputs whose change replaces the resource (the provider's ForceNew attributes, for the types
# this program uses); "*" means every input. Other types and inputs update in place. The real
# `pulumi preview` is the authority; this table only has to be right for what reviewers see.
REPLACED_BY: dict[str, set[str]] = {
    TASK_DEFINITION: {"*"},  # task definitions are immutable: a change is a new revision
    "aws:codedeploy/deploymentConfig:DeploymentConfig": {"*"},
    "aws:ec2/vpc:Vpc": {"cidrBlock", "instanceTenancy"},
    "aws:ec2/subnet:Subnet": {"vpcId", "cidrBlock", "availabilityZone"},
    "aws:ec2/securityGroup:SecurityGroup": {"name", "namePrefix", "vpcId", "description"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {"securityGroupId"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {"securityGroupId"},
    "aws:ec2/natGateway:NatGateway": {"subnetId", "allocationId", "connectivityType"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": {"vpcId", "serviceName", "vpcEndpointType"},
    "aws:ec2/routeTable:RouteTable": {"vpcId"},
    "aws:ec2/routeTableAssociation:RouteTableAssociation": {"subnetId", "gatewayId"},
    "aws:ec2/flowLog:FlowLog": {"vpcId", "logDestination", "trafficType", "iamRoleArn"},
    "aws:lb/loadBalancer:LoadBalancer": {"name", "internal", "loadBalancerType"},
    "aws:lb/targetGroup:TargetGroup": {"name", "port", "protocol", "vpcId", "targetType"},
    "aws:lb/listener:Listener": {"loadBalancerArn"},
    "aws:lb/listenerRule:ListenerRule": {"listenerArn"},
    "aws:ecs/cluster:Cluster": {"name"},
    "aws:ecs/service:Service": {"name", "cluster", "launchType"},
    "aws:cloudwatch/logGroup:LogGroup": {"name"},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"name"},
    "aws:iam/role:Role": {"name", "path"},
    "aws:iam/rolePolicy:RolePolicy": {"name", "role"},
    "aws:ecr/repository:Repository": {"name"},
    "aws:codedeploy/application:Application": {"name", "computePlatform"},
    "aws:codedeploy/deploymentGroup:DeploymentGroup": {"appName"},
    "aws:lambda/function:Function": {"name"},
    "aws:scheduler/schedule:Schedule": {"name", "groupName"},
    "aws:codebuild/project:Project": {"name"},
    "aws:codepipeline/pipeline:Pipeline": {"name"},
    "aws:sfn/stateMachine:StateMachine": {"name"},
    "aws:s3/bucket:Bucket": {"bucket"},
    "aws:s3/bucketV2:BucketV2": {"bucket"},
    "aws:appautoscaling/target:Target": {"resourceId", "scalableDimension", "serviceNamespace"},
    "aws:appautoscaling/policy:Policy": {"name", "resourceId", "scalableDimension"},
}
OPTIONS = ("ignoreChanges", "protect", "deleteBeforeReplace", "retainOnDelete")


class DiffError(Exception):
    """The diff cannot be made (bad base, a plan that fails); the message says why."""


# --- comparing inputs ------------------------------------------------------------------


def _normal(value: Any) -> Any:
    """Inputs in a comparable shape: JSON text decoded, lists of named items keyed by name."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _normal(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        for key in ("name", "Sid"):  # containers, variables, ports; IAM statements
            names = [v.get(key) if isinstance(v, dict) else None for v in value]
            if value and all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
                keyed = {}
                for item in value:
                    rest = {k: v for k, v in item.items() if k != key}
                    # {name, value} pairs (environment, secrets) read best as name: value.
                    pair = set(rest) in ({"value"}, {"valueFrom"})
                    keyed[item[key]] = _normal(next(iter(rest.values())) if pair else rest)
                return keyed
        return [_normal(v) for v in value]
    return value


def _differences(old: Any, new: Any, at: str) -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict) and old and new:
        return [
            found
            for key in sorted(set(old) | set(new), key=str)
            for found in _differences(old.get(key), new.get(key), f"{at}.{key}" if at else key)
        ]
    return [] if old == new else [(at, old, new)]


def changed_inputs(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every input that differs; missing is None. A mapping that is
    new (or gone) as a whole is one change, not one per key inside it."""
    return _differences(_normal(old), _normal(new), "")


def _ignored(path: str, ignore: list[str]) -> bool:
    return any(path == i or path.startswith(f"{i}.") for i in ignore)


def _show(value: Any) -> str:
    """A value on one line, with a space after each item, so that wrapping breaks between
    items and never inside one."""
    if value is None:
        return "(none)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return compact(value)


def _items(values: list[Any]) -> str:
    # One item after another, so that a long list wraps between its items.
    return ", ".join(_show(v) for v in values)


def _change(old: Any, new: Any) -> str:
    """`old → new`; for two lists, what was removed and what was added."""
    if isinstance(old, list) and isinstance(new, list):
        removed = [v for v in old if v not in new]
        added = [v for v in new if v not in old]
        parts = [
            f"removed {_items(removed)}" if removed else "",
            f"added {_items(added)}" if added else "",
        ]
        return "; ".join(p for p in parts if p) or f"reordered {_items(new)}"
    return f"{_show(old)} → {_show(new)}"


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _input_lines(path: str, old: Any, new: Any) -> list[str]:
    """One changed input: `path: old → new`, or for text over several lines (buildspecs,
    scripts) a unified diff of its lines, indented under the key."""
    if not (_multiline(old) or _multiline(new)):
        return [f"    {path}: {_change(old, new)}"]
    before = old.splitlines() if isinstance(old, str) else []
    after = new.splitlines() if isinstance(new, str) else []
    hunks: list[list[str]] = []
    for line in difflib.unified_diff(before, after, lineterm="", n=0):
        if line.startswith("@@"):
            hunks.append([])
        elif not line.startswith(("---", "+++")):
            hunks[-1].append(line)
    body = []
    for hunk in hunks:
        if body:
            body.append("      ...")
        if len(hunk) == 2 and hunk[0][0] == "-" and hunk[1][0] == "+":
            body.append(f"      ~ {_word_diff(hunk[0][1:], hunk[1][1:])}")  # one line changed
        else:
            body += [f"      {line[0]} {line[1:]}" for line in hunk]
    return [f"    {path}:", *body]


def _word_diff(old: str, new: str) -> str:
    """One line changed: the new line, with what was removed as [-old-] and what was
    added as {+new+} (as `git diff --word-diff`)."""
    a, b = old.split(" "), new.split(" ")
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2]
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


# --- the diff --------------------------------------------------------------------------


@dataclass
class Change:
    action: str  # create | update | replace | delete
    resource: dict[str, Any]
    inputs: list[tuple[str, Any, Any]] = field(default_factory=list)
    forced_by: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        r = self.resource
        mark = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}[self.action]
        why = f" (forced by {', '.join(self.forced_by)})" if self.forced_by else ""
        head = f"{mark} {self.action} {r['type']} {r['name']}{why}"
        return [head] + [line for p, a, b in self.inputs for line in _input_lines(p, a, b)]


def _replace_reasons(type_: str, paths: list[str], options: dict[str, Any]) -> list[str]:
    forcing = REPLACED_BY.get(type_, set()) | set(options.get("replaceOnChanges") or [])
    if "*" in forcing:
        return ["every input"] if paths else []
    tops = sorted({p.split(".", 1)[0] for p in paths})
    return [p for p in tops if p in forcing]


def plan_urn(plan: dict[str, Any], parent: str, type_: str, name: str) -> str:
    """A URN as the plan's mock monitor builds it (pulumi.runtime.mocks.MockMonitor.make_urn)."""
    if parent:
        type_ = parent.split("::")[2].split("$")[-1] + "$" + type_
    return f"urn:pulumi:{plan.get('stack', '')}::{plan.get('project', '')}::{type_}::{name}"


def claimed_urns(plan: dict[str, Any]) -> dict[str, set[str]]:
    """Per resource, the URNs it answers to: its own and its aliases', with the aliases its
    ancestors carry inherited (as the engine does: a re-parented component keeps its tree)."""
    by_urn = {r["urn"]: r for r in plan["resources"]}
    project, stack = plan.get("project", ""), plan.get("stack", "")
    root = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    claims: dict[str, set[str]] = {}

    def of(urn: str) -> set[str]:
        if urn not in by_urn:
            return {urn}
        if urn not in claims:
            r = by_urn[urn]
            parents = of(r["parent"]) if r.get("parent") else {""}
            found = {urn} | {plan_urn(plan, p, r["type"], r["name"]) for p in parents}
            for text in (r.get("options") or {}).get("aliases") or []:
                alias = text_format.Parse(text, alias_pb2.Alias())
                if alias.urn:
                    found.add(alias.urn)
                    continue
                spec = alias.spec
                # The mock monitor gives top-level resources the stack as parent.
                olds = {root} if spec.noParent else {spec.parentUrn} if spec.parentUrn else parents
                found |= {
                    plan_urn(plan, p, spec.type or r["type"], spec.name or r["name"]) for p in olds
                }
            claims[urn] = found
        return claims[urn]

    return {urn: of(urn) for urn in by_urn}


def resource_changes(base: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    before = {r["urn"]: r for r in base["resources"]}
    after = {r["urn"]: r for r in new["resources"]}
    # A new URN whose alias names a base URN that is gone is that resource, moved (no change).
    moved = {
        old: urn
        for urn, claims in claimed_urns(new).items()
        if urn not in before
        for old in claims
        if old in before and old not in after
    }
    for old, urn in moved.items():
        after[old] = after.pop(urn)
    changes = []
    for urn in sorted(set(before) | set(after)):
        old, cur = before.get(urn), after.get(urn)
        if old is None:
            changes.append(Change("create", cur))
            continue
        if cur is None:
            changes.append(Change("delete", old))
            continue
        ignore = cur.get("options", {}).get("ignoreChanges") or []
        inputs = [
            c
            for c in changed_inputs(old.get("inputs") or {}, cur.get("inputs") or {})
            if not _ignored(c[0], ignore)
        ]
        inputs += [
            (f"(option) {o}", old.get("options", {}).get(o), cur.get("options", {}).get(o))
            for o in OPTIONS
            if old.get("options", {}).get(o) != cur.get("options", {}).get(o)
        ]
        if not inputs:
            continue
        reasons = _replace_reasons(cur["type"], [p for p, _, _ in inputs], cur.get("options", {}))
        changes.append(Change("replace" if reasons else "update", cur, inputs, reasons))
    return changes


def _rollout_parts(changes: list[Change], service: str) -> list[Change]:
    """Changes to what a deployment of `service` registers: its task definition or rollout
    (not the rollout's settings: the provider starts no deployment for those)."""
    parts = []
    for c in changes:
        if c.resource["type"] == TASK_DEFINITION and c.resource["name"] == service:
            parts.append(c)
        elif c.resource["type"].startswith(DYNAMIC) and c.resource["name"] == f"{service}-rollout":
            deploys = [i for i in c.inputs if i[0].split(".")[0] not in SETTING_INPUTS]
            if deploys or c.action in ("create", "delete", "replace"):
                parts.append(replace(c, inputs=deploys) if c.action == "update" else c)
    return parts


def _images(plan: dict[str, Any], service: str) -> str:
    resolution = (plan.get("outputs", {}).get("imageResolution") or {}).get(service) or {}
    return "; ".join(
        f"image {c}: {r.get('after')} (unchanged)"
        if r.get("now") == r.get("after")
        else f"image {c}: {r.get('now') or '(not deployed yet)'} -> {r.get('after')}"
        for c, r in sorted(resolution.items())
    )


def _belongs(change: Change, service: str) -> bool:
    r = change.resource
    parent = r.get("parent") or ""
    return (
        r["name"] in (service, f"alb-{service}")
        or r["name"].startswith((f"{service}-", f"alb-{service}-"))
        or parent.endswith(f":FargateService::{service}")
    )


def service_lines(base: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> list[str]:
    """One line per service that this change touches: whether it rolls out, and why."""
    names = sorted(
        {r["name"] for plan in (base, new) for r in plan["resources"] if r["type"] == SERVICE}
    )
    lines = []
    for service in names:
        parts = _rollout_parts(changes, service)
        images = _images(new, service)
        images_changed = images != _images(base, service)
        if not parts and not images_changed and not any(_belongs(c, service) for c in changes):
            continue
        if any(c.action in ("create", "delete") for c in parts):
            verdict = "is created" if any(c.action == "create" for c in parts) else "is deleted"
        elif parts:
            why = ", ".join(
                f"{path.removeprefix('containerDefinitions.')} {_change(a, b)}"
                for c in parts
                for path, a, b in c.inputs
            )
            verdict = f"rolls out blue/green: {why}"
        else:
            verdict = "no rollout"
        lines.append(f"service {service}: {verdict}" + (f"; {images}" if images else ""))
    return lines


def output_lines(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    old, cur = base.get("outputs") or {}, new.get("outputs") or {}
    changed = [key for key in sorted(set(old) | set(cur)) if old.get(key) != cur.get(key)]
    return [f"outputs that change: {', '.join(changed)}"] if changed else []


def render(base: dict[str, Any], new: dict[str, Any]) -> tuple[str, bool]:
    """The diff text and whether anything changes."""
    changes = resource_changes(base, new)
    lines = [line for c in changes for line in c.lines()]
    lines += service_lines(base, new, changes) + output_lines(base, new)
    lines = [part for line in lines for part in wrap(line)]  # between tokens, at WIDTH
    return ("\n".join(lines) if lines else "no changes"), bool(lines)


# --- plans to compare ------------------------------------------------------------------


def _plan_args(stack: str, live: str | None, config: list[str]) -> list[str]:
    args = ["--stack", stack]
    if live:
        args += ["--live", str(Path(live).resolve())]
    for pair in config:
        args += ["-c", pair]
    return args


def _plan_command(tree: Path) -> tuple[list[str], dict[str, str]]:
    """How `tree` plans itself: with its own copy of ecs-delivery when the tree holds one
    (this repository, at any commit), else with the installed package (a user's project)."""
    if (tree / "src" / "ecs_delivery" / "offline" / "plan.py").is_file():
        module, path = "ecs_delivery.offline.plan", [str(tree / "src"), str(tree)]
    elif (tree / "tools" / "plan.py").is_file():  # commits before the src/ layout
        module, path = "tools.plan", [str(tree)]
    else:
        return [sys.executable, "-m", "ecs_delivery.offline.plan"], dict(os.environ)
    # The Lambda zips are cached by the hash of their inputs: the tree shares this
    # checkout's cache instead of building every zip again from the package index.
    env = {
        CACHE_DIR_VARIABLE: str(cache_dir()),
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
    }
    return [sys.executable, "-m", module], env


def _run_plan(cwd: Path, args: list[str], what: str) -> dict[str, Any]:
    command, env = _plan_command(cwd)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "plan.json"
        done = subprocess.run(
            [*command, *args, "--json", str(target)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not target.exists():
            raise DiffError(f"the plan of {what} fails:\n{done.stderr.strip()}")
        return json.loads(target.read_text())


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class PlanResource(_Loose):
    urn: str
    type: str
    name: str
    parent: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class PlanOutputs(_Loose):
    image_resolution: dict[str, dict[str, dict[str, Any]]] | None = Field(
        default=None, alias="imageResolution"
    )


class PlanFile(_Loose):
    """What the diff reads of a plan JSON (`make plan PLAN_JSON=...`); the rest is kept."""

    stack: str
    resources: list[PlanResource]
    outputs: PlanOutputs = Field(default_factory=PlanOutputs)


def read_plan_file(path: Path, name: str, stack: str, other_stack: bool = False) -> dict[str, Any]:
    """A plan JSON checked for the shape the diff reads and for being a plan of `stack`."""
    try:
        plan = inputs.load_json(path, name, max_bytes=PLAN_MAX_BYTES)
        if not isinstance(plan, dict):
            raise inputs.ReadError(f"{name}: not a plan JSON (a JSON {type(plan).__name__})")
        checked = inputs.validate(PlanFile, plan, name=name)
    except inputs.ReadError as exc:
        raise DiffError(f"{exc}\nwrite the base plan with `make plan PLAN_JSON=...`") from None
    if checked.stack != stack and not other_stack:
        raise DiffError(
            f"{name}: stack: the plan is of stack {checked.stack!r}, not --stack {stack}; "
            f"give a plan of {stack}, or pass --allow-other-stack to compare across stacks"
        )
    return plan


def _git(base: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise DiffError(
            f"--base {base}: git is not installed (a git ref base is planned in a git worktree); "
            "install git, or give a plan JSON written by `make plan PLAN_JSON=...`"
        ) from None


def base_plan(
    base: str, args: list[str], root: Path = ROOT, *, stack: str = "", other_stack: bool = True
) -> dict[str, Any]:
    """The base plan: a plan JSON file, or the plan of a git ref in a temporary worktree."""
    path = Path(base)
    if path.is_file():
        return read_plan_file(path, base, stack, other_stack)
    found = _git(base, root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    if found.returncode != 0:
        raise DiffError(f"--base {base}: neither a plan JSON file nor a git ref")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        added = _git(
            base, root, "worktree", "add", "--quiet", "--detach", str(tree), found.stdout.strip()
        )
        if added.returncode != 0:
            reason = added.stderr.strip().splitlines()[-1:] or [f"exit {added.returncode}"]
            raise DiffError(f"--base {base}: git worktree add failed: {reason[0]}")
        try:
            return _run_plan(tree, args, base)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=root, capture_output=True
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecs-delivery diff", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--base", required=True, help="a plan JSON file or a git ref")
    parser.add_argument("--live", help="simulated environment file, for both plans")
    parser.add_argument("-c", "--config", action="append", default=[], help="key=value, both plans")
    # The project whose stack files make the new side (tests use a copy); default: this one.
    parser.add_argument(
        "--allow-other-stack",
        action="store_true",
        help="compare with a base plan of another stack (refused by default)",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan_args = _plan_args(args.stack, args.live, args.config)
    try:
        base = base_plan(args.base, plan_args, stack=args.stack, other_stack=args.allow_other_stack)
        new = _run_plan(ROOT, [*plan_args, "--root", str(args.root.resolve())], "the working tree")
    except DiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text, changed = render(base, new)
    print(text)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())

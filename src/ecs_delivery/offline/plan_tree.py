"""The readable plan: the component tree with one line per fact a reviewer must see.

Works on the JSON form of a plan (`Plan.to_json()`), so a saved `PLAN_JSON` renders the same.
Lines fit a terminal (`WIDTH`): a longer value is cut with a `…(+N chars)` marker; the JSON
keeps everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

WIDTH = 120
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


def fit(line: str, width: int = WIDTH) -> str:
    """`line` cut to `width` characters, saying how many were left out."""
    if len(line) <= width:
        return line
    cut = width - 14
    return f"{line[:cut]}…(+{len(line) - cut} chars)"


def wrap(line: str, width: int = WIDTH, indent: str | None = None, marker: str = "") -> list[str]:
    """`line` in lines of at most `width`, broken between tokens only: an ARN, a digest or a
    CIDR is never split (a token longer than the width stands on a line of its own).
    Continuation lines start with `indent` (default: two more than the line's) and `marker`."""
    if len(line) <= width:
        return [line]
    lead = len(line) - len(line.lstrip(" "))
    start = (" " * (lead + 2) if indent is None else indent) + marker
    first, *tokens = line[lead:].split(" ")
    out, current = [], line[:lead] + first
    for token in tokens:
        if len(current) + 1 + len(token) <= width:
            current = f"{current} {token}"
        else:
            out.append(current)
            current = start + token
    out.append(current)
    return out


def fold(line: str, width: int = WIDTH, indent: str = "", most: int = 4) -> list[str]:
    """`line` wrapped between tokens into at most `most` lines of `width` (continuations
    marked ↳), then cut; only a token longer than a whole line is split inside."""
    lines: list[str] = []
    for part in wrap(line, width, indent, "↳ "):
        while len(part) > width:  # one token longer than the line (a JSON blob)
            lines.append(part[:width])
            part = f"{indent}↳ {part[width:]}"
        lines.append(part)
    if len(lines) > most:
        rest = " ".join(p.removeprefix(f"{indent}↳ ") for p in lines[most - 1 :])
        lines = [*lines[: most - 1], fit(f"{indent}↳ {rest}", width)]
    return lines


def compact(value: Any) -> str:
    """A value on one line: strings bare, everything else as sorted-key JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def containers(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The decoded container definitions of a task definition's inputs ([] when computed)."""
    try:
        decoded = json.loads(inputs.get("containerDefinitions") or "[]")
    except (TypeError, ValueError):
        return []
    return decoded if isinstance(decoded, list) else []


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM policy document given as JSON text or a mapping."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return [statements] if isinstance(statements, dict) else list(statements)


def pairs(value: Any) -> str:
    """A mapping as `key=value` pairs in key order (anything else: compact)."""
    if not isinstance(value, dict):
        return compact(value)
    return " ".join(f"{k}={compact(v)}" for k, v in sorted(value.items()))


def _listed(value: Any) -> list[str]:
    return [compact(v) for v in (value if isinstance(value, list) else [value])]


# --- facts per resource type ------------------------------------------------------------


def _task_definition(i: dict[str, Any]) -> Iterator[str]:
    yield f"family {i.get('family')}: cpu {i.get('cpu')}, memory {i.get('memory')}"
    for c in containers(i):
        name = c.get("name")
        yield f"container {name}: image {c.get('image')}"
        ports = ", ".join(
            f"{p.get('containerPort')}/{p.get('protocol', 'tcp')}"
            for p in c.get("portMappings", [])
        )
        yield (
            f"container {name}: ports {ports or 'none'}, user {c.get('user', 'image default')}, "
            f"read-only root {str(c.get('readonlyRootFilesystem', False)).lower()}"
        )
        for env in sorted(c.get("environment", []), key=lambda e: e.get("name", "")):
            yield f"container {name}: env {env.get('name')}={env.get('value')}"
        for secret in sorted(c.get("secrets", []), key=lambda e: e.get("name", "")):
            yield f"container {name}: secret {secret.get('name')} from {secret.get('valueFrom')}"
        if c.get("healthCheck"):
            yield f"container {name}: health check {pairs(c['healthCheck'])}"
        if c.get("command"):
            yield f"container {name}: command {compact(c['command'])}"


def _service(i: dict[str, Any]) -> Iterator[str]:
    yield f"desiredCount={i.get('desiredCount')}  launchType={i.get('launchType')}"
    yield f"deploymentController={compact(i.get('deploymentController'))}"
    yield f"network {pairs(i.get('networkConfiguration'))}"
    if "healthCheckGracePeriodSeconds" in i:
        yield f"healthCheckGracePeriodSeconds={i['healthCheckGracePeriodSeconds']}"


def _deployment_group(i: dict[str, Any]) -> Iterator[str]:
    yield f"deployment config {i.get('deploymentConfigName')}"
    style = i.get("deploymentStyle") or {}
    yield f"style {style.get('deploymentType')} {style.get('deploymentOption')}"
    pair = (i.get("loadBalancerInfo") or {}).get("targetGroupPairInfo") or {}
    groups = [g.get("name") for g in pair.get("targetGroups", [])]
    yield f"target groups {', '.join(map(str, groups))}"
    for route in ("prodTrafficRoute", "testTrafficRoute"):
        yield f"{route}: {', '.join(_listed((pair.get(route) or {}).get('listenerArns')))}"
    rollback = i.get("autoRollbackConfiguration") or {}
    yield f"auto rollback {compact(rollback.get('enabled'))} on {', '.join(_listed(rollback.get('events')))}"
    terminate = (i.get("blueGreenDeploymentConfig") or {}).get(
        "terminateBlueInstancesOnDeploymentSuccess"
    ) or {}
    yield f"blue tasks: {terminate.get('action')} after {terminate.get('terminationWaitTimeInMinutes')} min"
    for alarm in (i.get("alarmConfiguration") or {}).get("alarms", []):
        yield f"alarm {alarm}"


def _deployment_config(i: dict[str, Any]) -> Iterator[str]:
    yield f"{i.get('deploymentConfigName')}: traffic {compact(i.get('trafficRoutingConfig'))}"


def _alarm(i: dict[str, Any]) -> Iterator[str]:
    yield (
        f"{i.get('statistic')} {i.get('metricName')} {i.get('comparisonOperator')} "
        f"{i.get('threshold')} for {i.get('evaluationPeriods')} x {i.get('period')} s"
    )
    yield f"dimensions {pairs(i.get('dimensions'))}"


def _rule(direction: str) -> Callable[[dict[str, Any]], Iterator[str]]:
    def facts(i: dict[str, Any]) -> Iterator[str]:
        ports = f"{i.get('fromPort')}-{i.get('toPort')}" if "fromPort" in i else "all"
        peer = next(
            (
                f"{k} {i[k]}"
                for k in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId")
                if i.get(k)
            ),
            "nowhere",
        )
        word = "from" if direction == "ingress" else "to"
        yield f"{direction} {i.get('ipProtocol')} {ports} {word} {peer}"

    return facts


def _role(i: dict[str, Any]) -> Iterator[str]:
    for s in policy_statements(i.get("assumeRolePolicy")):
        principal = compact(s.get("Principal"))
        yield f"assumed by {principal}" + (
            f" if {compact(s['Condition'])}" if s.get("Condition") else ""
        )
    for arn in i.get("managedPolicyArns") or []:
        yield f"managed policy {arn}"


def _statements(document: Any) -> Iterator[str]:
    if document == "<computed>":
        # A document the program did not build with iam.output_document, in a first preview.
        yield "policy <computed> (known once the resources it names exist)"
        return
    for s in policy_statements(document):
        sid = f" [{s['Sid']}]" if s.get("Sid") else ""
        yield f"{s.get('Effect')}{sid} {', '.join(_listed(s.get('Action') or s.get('NotAction')))}"
        for resource in _listed(s.get("Resource") or s.get("NotResource")):
            yield f"  on {resource}"
        if s.get("Condition"):
            yield f"  if {compact(s['Condition'])}"


def _schedule(i: dict[str, Any]) -> Iterator[str]:
    yield f"schedule {i.get('scheduleExpression')} ({i.get('scheduleExpressionTimezone', 'UTC')}), {i.get('state')}"
    ecs = (i.get("target") or {}).get("ecsParameters") or {}
    if ecs:
        yield f"runs {ecs.get('taskDefinitionArn')} x {ecs.get('taskCount')}"
    retry = (i.get("target") or {}).get("retryPolicy") or {}
    if retry:
        yield f"retries {retry.get('maximumRetryAttempts')}"


def _target_group(i: dict[str, Any]) -> Iterator[str]:
    yield f"port {i.get('port')} {i.get('protocol')} targetType={i.get('targetType')} deregistrationDelay={i.get('deregistrationDelay')}"
    yield f"healthCheck {pairs(i.get('healthCheck'))}"


def _record(i: dict[str, Any]) -> Iterator[str]:
    yield f"{i.get('type')} {i.get('name')} in zone {i.get('zoneId')}"
    for alias in i.get("aliases") or []:
        yield f"alias to {alias.get('name')} (evaluateTargetHealth={alias.get('evaluateTargetHealth')})"
    if i.get("records"):
        yield f"records {compact(i['records'])} ttl={i.get('ttl')}"


def _web_acl(i: dict[str, Any]) -> Iterator[str]:
    def kind(action: Any) -> str:
        return ", ".join(action) if isinstance(action, dict) else str(action)

    yield f"{i.get('name')} scope={i.get('scope')} default {kind(i.get('defaultAction'))}"
    for rule in sorted(i.get("rules") or [], key=lambda r: r.get("priority", 0)):
        statement = rule.get("statement") or {}
        managed = statement.get("managedRuleGroupStatement")
        rate = statement.get("rateBasedStatement")
        if managed:
            group = "" if managed.get("name") == rule.get("name") else f" {managed.get('name')}"
            what = f"{managed.get('vendorName')} managed group{group}, override {kind(rule.get('overrideAction'))}"
        elif rate:
            what = f"{kind(rule.get('action'))} over {rate.get('limit')} requests per {rate.get('aggregateKeyType')} per {rate.get('evaluationWindowSec')} s"
        else:
            what = compact(statement)
        yield f"rule {rule.get('priority')} {rule.get('name')}: {what}"


def _keys(*keys: str) -> Callable[[dict[str, Any]], Iterator[str]]:
    def facts(i: dict[str, Any]) -> Iterator[str]:
        shown = [f"{k}={compact(i[k])}" for k in keys if i.get(k) not in (None, [], {})]
        if shown:
            yield "  ".join(shown)

    return facts


FACTS: dict[str, Callable[[dict[str, Any]], Iterator[str]]] = {
    TASK_DEFINITION: _task_definition,
    "aws:ecs/service:Service": _service,
    "aws:codedeploy/deploymentGroup:DeploymentGroup": _deployment_group,
    "aws:codedeploy/deploymentConfig:DeploymentConfig": _deployment_config,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _rule("ingress"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _rule("egress"),
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": lambda i: _statements(i.get("policy")),
    "aws:iam/policy:Policy": lambda i: _statements(i.get("policy")),
    "aws:s3/bucketPolicy:BucketPolicy": lambda i: _statements(i.get("policy")),
    "aws:scheduler/schedule:Schedule": _schedule,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:ec2/vpc:Vpc": _keys("cidrBlock"),
    "aws:ec2/subnet:Subnet": _keys("availabilityZone", "cidrBlock", "mapPublicIpOnLaunch"),
    "aws:lb/loadBalancer:LoadBalancer": _keys(
        "internal", "dropInvalidHeaderFields", "enableDeletionProtection", "idleTimeout"
    ),
    "aws:lb/listener:Listener": _keys("port", "protocol", "sslPolicy", "certificateArn"),
    "aws:lb/listenerRule:ListenerRule": _keys("priority", "conditions"),
    "aws:ecs/cluster:Cluster": _keys("name", "settings"),
    "aws:cloudwatch/logGroup:LogGroup": _keys("name", "retentionInDays"),
    "aws:appautoscaling/target:Target": _keys("minCapacity", "maxCapacity"),
    "aws:appautoscaling/policy:Policy": _keys("targetTrackingScalingPolicyConfiguration"),
    "aws:ecr/repository:Repository": _keys(
        "name", "imageTagMutability", "imageScanningConfiguration"
    ),
    "aws:acm/certificate:Certificate": _keys(
        "domainName", "subjectAlternativeNames", "validationMethod"
    ),
    "aws:route53/record:Record": _record,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:wafv2/webAclAssociation:WebAclAssociation": _keys("webAclArn", "resourceArn"),
}


def resource_facts(resource: dict[str, Any]) -> list[str]:
    """The fact lines of one resource (its options included), unwrapped."""
    inputs = resource.get("inputs") or {}
    facts = FACTS.get(resource["type"])
    if facts is None and resource["type"].startswith("pulumi-python:dynamic"):
        lines = [f"{k}={compact(v)}" for k, v in sorted(inputs.items()) if not k.startswith("__")]
    else:
        lines = list(facts(inputs)) if facts else []
    if resource["type"] == TASK_DEFINITION and ":FargateService" in (resource.get("parent") or ""):
        lines.insert(1, "a change here registers a new revision and rolls out blue/green")
    options = resource.get("options") or {}
    if options.get("ignoreChanges"):
        lines.append(f"ignoreChanges={options['ignoreChanges']}")
    for option in ("protect", "deleteBeforeReplace", "retainOnDelete"):
        if options.get(option):
            lines.append(f"{option}=true")
    return lines


def render(plan: dict[str, Any], width: int = WIDTH) -> str:
    """The tree of a plan (JSON form): components, their resources, one fact per line."""
    resources = plan["resources"]
    children: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        children.setdefault(r.get("parent") or "", []).append(r)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r["name"], r["type"]))
    title = f"{plan['project']}-{plan['stack']}"
    lines = [f"stack {title}: {len(resources)} resources (ids and addresses simulated offline)"]

    def walk(parent: str, depth: int) -> None:
        for r in children.get(parent, []):
            kind = r["type"] if r.get("custom", True) else f"[{r['type']}]"
            lines.append(fit(f"{'  ' * depth}- {kind} {r['name']}", width))
            indent = "  " * (depth + 1)
            for fact in resource_facts(r):
                lines.extend(fold(f"{indent}· {fact}", width, indent + "  "))
            walk(r["urn"], depth + 1)

    stack_urn_suffix = f"pulumi:pulumi:Stack::{title}"
    for parent in sorted(p for p in children if p == "" or p.endswith(stack_urn_suffix)):
        walk(parent, 1)
    resolution = plan["outputs"].get("imageResolution") or {}
    if resolution:
        lines.append("images (now -> after, why):")
        for service, images in sorted(resolution.items()):
            for container, r in sorted(images.items()):
                change = "unchanged" if r["now"] == r["after"] else "CHANGES"
                lines.append(f"  {service}/{container}: [{r['source']}, {change}]")
                # Image references are wrapped, not cut: a reviewer compares digests.
                lines += fold(f"    now   {r['now'] or '(not deployed yet)'}", width, "    ")
                lines += fold(f"    after {r['after']}", width, "    ")
    for warning in plan.get("warnings", []):
        lines.append(fit(f"warning: {warning}", width))
    lines.append("outputs:")
    for key, value in sorted(plan["outputs"].items()):
        lines.append(fit(f"  {key}: {json.dumps(value, sort_keys=True)}", width))
    return "\n".join(lines)

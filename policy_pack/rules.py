"""The project's security rules as plain functions over (type, props), shared by the pack and tests.

A resource rule returns one message per violation (an empty list: compliant). `props` are a
resource's inputs as the engine sees them: camelCase keys, policy documents as JSON text. This
module imports nothing from the program, so the pack runs in its own virtual environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WORLD = ("0.0.0.0/0", "::/0")
WORLD_PORTS = (80, 443)
# Fields CodeDeploy changes on every blue/green deployment (src/ecs_delivery/components/fargate_service.py
# CODEDEPLOY_OWNED); desiredCount may be ignored too, when autoscaling owns it, and launchType,
# which a service takes at creation only (a later strategy travels in the AppSpec).
CODEDEPLOY_OWNED = (
    "taskDefinition",
    "loadBalancers",
    "networkConfiguration",
    "platformVersion",
    "capacityProviderStrategies",
)
AUTOSCALING_OWNED = ("desiredCount",)
# ECS's own blue/green strategies (deployment.engine ecs): the same fields belong to deployers.
ECS_BLUE_GREEN = ("BLUE_GREEN", "CANARY", "LINEAR")
CREATION_ONLY = ("launchType",)
# A task definition tagged with this key (value: the reason) may run a writable root
# filesystem or as root; nothing else is exempt.
HARDENING_OPT_OUT_TAG = "ecs-delivery:hardening-opt-out"
# ELB policies whose minimum protocol is TLS 1.2 or 1.3 (TLS13-1-0/1-1 and FS-1-1 admit older ones).
TLS12_POLICY = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)-")
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)", re.IGNORECASE
)
SECRET_VALUE = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{16}$|-----BEGIN [A-Z ]*PRIVATE KEY-----")
PASSED_TO_SERVICE = "iam:PassedToService"

# Where IAM policy documents live, per resource type: (property, is a list of {policy: ...}).
POLICY_DOCUMENTS: dict[str, tuple[str, bool]] = {
    "aws:iam/rolePolicy:RolePolicy": ("policy", False),
    "aws:iam/policy:Policy": ("policy", False),
    "aws:iam/userPolicy:UserPolicy": ("policy", False),
    "aws:iam/groupPolicy:GroupPolicy": ("policy", False),
    "aws:iam/role:Role": ("inlinePolicies", True),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy", False),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": ("policy", False),
}


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def documents(type_: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The IAM policy documents a resource carries, parsed."""
    where = POLICY_DOCUMENTS.get(type_)
    if not where:
        return []
    key, nested = where
    texts = [p.get("policy") for p in _list(props.get(key))] if nested else [props.get(key)]
    return [json.loads(t) if isinstance(t, str) else t for t in texts if t]


def allow_statements(type_: str, props: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for document in documents(type_, props):
        for statement in _list(document.get("Statement")):
            if statement.get("Effect") == "Allow":
                yield statement


# --- resource rules ------------------------------------------------------------------------


def world_ingress_only_http(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    """Ingress from 0.0.0.0/0 or ::/0 only on TCP 80 and 443."""
    if type_ == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        rules = [
            (
                [props.get("cidrIpv4"), props.get("cidrIpv6")],
                props.get("ipProtocol"),
                props.get("fromPort"),
                props.get("toPort"),
            )
        ]
    elif type_ == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if props.get("type") != "ingress":
            return []
        rules = [
            (
                _list(props.get("cidrBlocks")) + _list(props.get("ipv6CidrBlocks")),
                props.get("protocol"),
                props.get("fromPort"),
                props.get("toPort"),
            )
        ]
    elif type_ in (
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    ):
        rules = [
            (
                _list(r.get("cidrBlocks")) + _list(r.get("ipv6CidrBlocks")),
                r.get("protocol"),
                r.get("fromPort"),
                r.get("toPort"),
            )
            for r in _list(props.get("ingress"))
        ]
    else:
        return []
    problems = []
    for cidrs, protocol, from_port, to_port in rules:
        world = sorted({c for c in cidrs if c in WORLD})
        if not world:
            continue
        single_web_port = (
            str(protocol).lower() in ("tcp", "6")
            and from_port == to_port
            and from_port is not None
            and int(from_port) in WORLD_PORTS
        )
        if not single_web_port:
            problems.append(
                f"ingress from {', '.join(world)} on {protocol} {from_port}-{to_port}: "
                "the world may reach only TCP 80 and 443"
            )
    return problems


def pass_role_scoped(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    """iam:PassRole only on named roles and only with an iam:PassedToService condition."""
    problems = []
    for statement in allow_statements(type_, props):
        actions = [a.lower() for a in _list(statement.get("Action"))]
        if "iam:passrole" not in actions:
            continue
        sid = statement.get("Sid", "<no Sid>")
        resources = _list(statement.get("Resource"))
        if not resources or any("*" in r for r in resources):
            problems.append(f"statement {sid}: iam:PassRole on {resources}; name the exact roles")
        conditions = statement.get("Condition") or {}
        if not any(PASSED_TO_SERVICE in block for block in conditions.values()):
            problems.append(
                f"statement {sid}: iam:PassRole without an {PASSED_TO_SERVICE} condition"
            )
    return problems


def no_wildcard_actions(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    """No Allow of `*`, `service:*` or NotAction (Deny statements may use them)."""
    problems = []
    for statement in allow_statements(type_, props):
        sid = statement.get("Sid", "<no Sid>")
        wide = [a for a in _list(statement.get("Action")) if a == "*" or a.endswith(":*")]
        if wide:
            problems.append(f"statement {sid}: allows {wide}; list the actions needed")
        if "NotAction" in statement:
            problems.append(f"statement {sid}: Allow with NotAction grants everything else")
    return problems


def _containers(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = props.get("containerDefinitions")
    return json.loads(value) if isinstance(value, str) else _list(value)


def container_secrets_by_arn(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    """Secrets come from Secrets Manager or SSM by ARN, never as plain environment values."""
    if type_ != "aws:ecs/taskDefinition:TaskDefinition":
        return []
    problems = []
    for container in _containers(props):
        name = container.get("name")
        for variable in _list(container.get("environment")):
            key, value = variable.get("name", ""), str(variable.get("value", ""))
            if SECRET_NAME.search(key) or SECRET_VALUE.search(value):
                problems.append(
                    f"container {name}: environment {key} looks like a secret; "
                    "pass it in `secrets` as a Secrets Manager or SSM parameter ARN"
                )
        for secret in _list(container.get("secrets")):
            if not str(secret.get("valueFrom", "")).startswith("arn:"):
                problems.append(
                    f"container {name}: secret {secret.get('name')} is not an ARN "
                    f"({secret.get('valueFrom')!r})"
                )
    return problems


def containers_hardened(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    """Read-only root filesystem and a non-root user, unless the task opts out by tag; a
    FireLens log router may run as root (FireLens requires it: aws/containers-roadmap#2122)."""
    if type_ != "aws:ecs/taskDefinition:TaskDefinition":
        return []
    if (props.get("tags") or {}).get(HARDENING_OPT_OUT_TAG):
        return []
    problems = []
    for container in _containers(props):
        name = container.get("name")
        if container.get("readonlyRootFilesystem") is not True:
            problems.append(f"container {name}: root filesystem is writable")
        user = str(container.get("user") or "")
        if user.split(":")[0] in ("", "0", "root") and not container.get("firelensConfiguration"):
            problems.append(f"container {name}: runs as root (user {user or 'unset'})")
    if problems:
        problems = [
            f"{p}; fix it or tag the task definition {HARDENING_OPT_OUT_TAG}=<reason>"
            for p in problems
        ]
    return problems


def log_retention_set(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    if type_ != "aws:cloudwatch/logGroup:LogGroup":
        return []
    if not props.get("retentionInDays"):
        return ["log group keeps logs forever; set retentionInDays"]
    return []


def kms_key_rotated(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    if type_ != "aws:kms/key:Key":
        return []
    spec = props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and props.get("enableKeyRotation") is not True:
        return ["symmetric key without automatic rotation; set enableKeyRotation"]
    return []


def ecr_immutable_scanned(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    if type_ != "aws:ecr/repository:Repository":
        return []
    problems = []
    if props.get("imageTagMutability") != "IMMUTABLE":
        problems.append(
            f"image tags are {props.get('imageTagMutability') or 'MUTABLE'}; set IMMUTABLE"
        )
    if (props.get("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        problems.append("images are not scanned on push; set imageScanningConfiguration.scanOnPush")
    return problems


def https_listener_tls12(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    if type_ != "aws:lb/listener:Listener" or props.get("protocol") not in ("HTTPS", "TLS"):
        return []
    policy = props.get("sslPolicy")
    if not (isinstance(policy, str) and TLS12_POLICY.match(policy)):
        return [
            f"{props.get('protocol')} listener on {props.get('port')} uses "
            f"{policy or 'the default policy (TLS 1.0)'}; use a TLS 1.2+ policy such as "
            "ELBSecurityPolicy-TLS13-1-2-2021-06"
        ]
    return []


def ecs_service_private(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    if type_ != "aws:ecs/service:Service":
        return []
    if (props.get("networkConfiguration") or {}).get("assignPublicIp") is True:
        return ["tasks get public IPs; run them in private subnets with assignPublicIp false"]
    return []


def codedeploy_service_ignores_owned_fields(
    type_: str, props: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> list[str]:
    """A blue/green service (CODE_DEPLOY, or ECS's own BLUE_GREEN/CANARY/LINEAR) ignores what
    its deployments own, and nothing Pulumi owns: on ECS an update of those fields would start
    a deployment outside the deployment core, from the revision Pulumi created it with."""
    if type_ != "aws:ecs/service:Service":
        return []
    controller = (props.get("deploymentController") or {}).get("type")
    strategy = (props.get("deploymentConfiguration") or {}).get("strategy")
    if controller != "CODE_DEPLOY" and not (controller == "ECS" and strategy in ECS_BLUE_GREEN):
        return []
    ignored = set(ignore_changes)
    missing = [f for f in CODEDEPLOY_OWNED if f not in ignored]
    extra = sorted(ignored - set(CODEDEPLOY_OWNED) - set(AUTOSCALING_OWNED) - set(CREATION_ONLY))
    problems = []
    if missing:
        problems.append(
            f"ignoreChanges lacks {missing}: the next update would "
            + (
                "revert CodeDeploy's deployment"
                if controller == "CODE_DEPLOY"
                else "start an ECS deployment outside the deployment core"
            )
        )
    if extra:
        problems.append(
            f"ignoreChanges has {extra}: Pulumi-owned fields would never reach the service"
        )
    return problems


# --- stack rule: S3 buckets are separate resources in pulumi-aws ----------------------------


@dataclass(frozen=True)
class StackResource:
    """What the stack rule needs of a resource: its dependencies tie a setting to its bucket."""

    type: str
    urn: str
    props: Mapping[str, Any]
    dependencies: Sequence[str] = ()


BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SETTINGS = {
    "encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "versioning": "aws:s3/bucketVersioning:BucketVersioning",
    "publicAccessBlock": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "policy": "aws:s3/bucketPolicy:BucketPolicy",
}
ENCRYPTION = ("AES256", "aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def _denies_insecure_transport(props: Mapping[str, Any]) -> bool:
    for document in documents(BUCKET_SETTINGS["policy"], props):
        for statement in _list(document.get("Statement")):
            condition = (statement.get("Condition") or {}).get("Bool") or {}
            actions = _list(statement.get("Action"))
            if (
                statement.get("Effect") == "Deny"
                and statement.get("Principal") in ("*", {"AWS": "*"})
                and str(condition.get("aws:SecureTransport")).lower() == "false"
                and ("s3:*" in actions or "*" in actions)
            ):
                return True
    return False


def _setting_ok(kind: str, props: Mapping[str, Any]) -> bool:
    if kind == "encryption":
        rules = _list(props.get("rules"))
        return bool(rules) and all(
            (r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") in ENCRYPTION
            for r in rules
        )
    if kind == "versioning":
        return (props.get("versioningConfiguration") or {}).get("status") == "Enabled"
    if kind == "publicAccessBlock":
        return all(props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)
    return _denies_insecure_transport(props)


NEEDS = {
    "encryption": "default encryption (BucketServerSideEncryptionConfiguration)",
    "versioning": "versioning Enabled (BucketVersioning)",
    "publicAccessBlock": "all four public access blocks (BucketPublicAccessBlock)",
    "policy": "a bucket policy denying requests without TLS (aws:SecureTransport false)",
}


def s3_buckets_secured(resources: Iterable[StackResource]) -> list[tuple[str, str]]:
    """(bucket URN, message) for each bucket lacking one of its settings."""
    resources = list(resources)
    buckets = [r for r in resources if r.type == BUCKET]
    problems = []
    for bucket in buckets:
        settings = [r for r in resources if bucket.urn in r.dependencies]
        for kind, type_ in BUCKET_SETTINGS.items():
            if not any(r.type == type_ and _setting_ok(kind, r.props) for r in settings):
                problems.append(
                    (bucket.urn, f"bucket {bucket.props.get('bucket')} lacks {NEEDS[kind]}")
                )
    return problems


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[str, Mapping[str, Any], Sequence[str]], list[str]]


RESOURCE_RULES = (
    Rule(
        "world-ingress-only-http",
        "Ingress from 0.0.0.0/0 or ::/0 only on TCP 80 and 443.",
        world_ingress_only_http,
    ),
    Rule(
        "pass-role-scoped",
        "iam:PassRole only on named roles, with an iam:PassedToService condition.",
        pass_role_scoped,
    ),
    Rule("no-wildcard-actions", "No Allow of *, service:* or NotAction.", no_wildcard_actions),
    Rule(
        "container-secrets-by-arn",
        "Container secrets only by ARN; no secret-looking plain environment values.",
        container_secrets_by_arn,
    ),
    Rule(
        "containers-hardened",
        f"Read-only root filesystem and non-root user, unless tagged {HARDENING_OPT_OUT_TAG}.",
        containers_hardened,
    ),
    Rule("log-retention-set", "CloudWatch log groups set retentionInDays.", log_retention_set),
    Rule("kms-key-rotated", "Symmetric KMS keys rotate automatically.", kms_key_rotated),
    Rule(
        "ecr-immutable-scanned",
        "ECR repositories: immutable tags, scan on push.",
        ecr_immutable_scanned,
    ),
    Rule(
        "https-listener-tls12",
        "HTTPS/TLS listeners use a TLS 1.2+ security policy.",
        https_listener_tls12,
    ),
    Rule("ecs-service-private", "ECS services assign no public IPs.", ecs_service_private),
    Rule(
        "codedeploy-service-ignores-owned-fields",
        "CODE_DEPLOY services ignore exactly the fields CodeDeploy deploys (plus desiredCount).",
        codedeploy_service_ignores_owned_fields,
    ),
)
STACK_RULE_NAME = "s3-buckets-secured"
STACK_RULE_DESCRIPTION = "S3 buckets: encrypted, versioned, public access blocked, TLS-only policy."

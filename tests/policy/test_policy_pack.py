"""The CrossGuard pack: every policy passes on both stacks' plans, and each fires on its bad case.

Policies are driven through pulumi-policy's own argument types (ResourceValidationArgs,
StackValidationArgs), built from the offline plan's registrations: `inputs` are what the engine
sees, and `options.ignoreChanges` is what pulumi-policy exposes as `args.opts.ignore_changes`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)

from ecs_delivery.components.fargate_service import CODEDEPLOY_OWNED
from ecs_delivery.offline.simcloud import Registration, plain
from policy_pack import pack, rules
from tests.conftest import make_plan

PACK_DIR = Path(__file__).resolve().parents[2] / "policy_pack"
POLICIES = pack.policies()
RESOURCE_POLICIES = [p for p in POLICIES if not isinstance(p, StackValidationPolicy)]
STACK_POLICY = next(p for p in POLICIES if isinstance(p, StackValidationPolicy))


def _options(registration: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(registration.options.get("protect")),
        ignore_changes=list(registration.options.get("ignoreChanges") or []),
        delete_before_replace=registration.options.get("deleteBeforeReplace"),
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=registration.parent or None,
    )


def resource_violations(registration: Registration) -> list[tuple[str, str]]:
    """(policy, message) for every resource policy's violation on one registration."""
    args = ResourceValidationArgs(
        resource_type=registration.type,
        props=plain(registration.inputs),
        urn=registration.urn,
        name=registration.name,
        opts=_options(registration),
        provider=None,
    )
    found: list[tuple[str, str]] = []
    for policy in RESOURCE_POLICIES:
        policy.validate(args, lambda message, urn=None, p=policy: found.append((p.name, message)))
    return found


def stack_violations(registrations: list[Registration]) -> list[tuple[str, str, str]]:
    by_urn: dict[str, PolicyResource] = {}
    for r in registrations:
        by_urn[r.urn] = PolicyResource(
            resource_type=r.type,
            props=plain(r.inputs),
            urn=r.urn,
            name=r.name,
            opts=_options(r),
            provider=None,
            parent=None,
            dependencies=[],
            property_dependencies={},
        )
    for r in registrations:
        by_urn[r.urn].dependencies = [
            by_urn[u] for u in r.options.get("dependsOn") or [] if u in by_urn
        ]
    found: list[tuple[str, str, str]] = []
    STACK_POLICY.validate(
        StackValidationArgs(list(by_urn.values())),
        lambda message, urn=None: found.append((STACK_POLICY.name, message, urn)),
    )
    return found


def _all_violations(registrations: list[Registration]) -> list[tuple[str, str]]:
    found = [v for r in registrations for v in resource_violations(r)]
    return found + [(name, message) for name, message, _ in stack_violations(registrations)]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_policy_passes_on_the_stacks_plan(stack):
    plan = make_plan(stack)
    assert _all_violations(plan.resources) == []


def test_every_policy_passes_on_an_internal_load_balancer_without_nat():
    from tests.components.test_internal_load_balancer import NO_NAT

    assert _all_violations(make_plan("dev", overrides=NO_NAT).resources) == []


def test_every_policy_passes_on_the_ecs_engine_with_a_manual_gate_and_service_connect():
    gated_and_connected = {
        "deployment.engine": "ecs",
        "deployment.manualApproval.enabled": True,
        "deployment.timeoutMinutes": 60,
        "services.web.serviceConnect.enabled": True,
        "services.api.serviceConnect.enabled": True,
    }
    assert _all_violations(make_plan("dev", overrides=gated_and_connected).resources) == []


def test_pack_has_one_policy_per_rule_with_unique_names():
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) == len(rules.RESOURCE_RULES) + 1


def _changed(registration: Registration, *, inputs=None, options=None) -> Registration:
    return dataclasses.replace(
        registration,
        inputs={**plain(registration.inputs), **(inputs or {})},
        options={**registration.options, **(options or {})},
    )


def _policy_document(plan, name: str) -> dict:
    return json.loads(plan.named("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


def _with_statement(plan, name: str, statement: dict) -> Registration:
    registration = plan.named("aws:iam/rolePolicy:RolePolicy", name)
    document = _policy_document(plan, name)
    document["Statement"].append(statement)
    return _changed(registration, inputs={"policy": json.dumps(document)})


def _containers(plan, name: str) -> list[dict]:
    task = plan.named("aws:ecs/taskDefinition:TaskDefinition", name)
    return json.loads(task.inputs["containerDefinitions"])


def _with_container(plan, name: str, **changes) -> Registration:
    containers = _containers(plan, name)
    containers[0].update(changes)
    task = plan.named("aws:ecs/taskDefinition:TaskDefinition", name)
    return _changed(task, inputs={"containerDefinitions": json.dumps(containers)})


def _bad_cases(dev, prod):
    ingress = dev.named("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "alb-alb-80")
    web = dev.named("aws:ecs/service:Service", "web")
    yield (
        "world-ingress-only-http",
        _changed(ingress, inputs={"fromPort": 22, "toPort": 22}),
        "ingress from 0.0.0.0/0 on tcp 22-22: the world may reach only TCP 80 and 443",
    )
    yield (
        "pass-role-scoped",
        _with_statement(
            dev,
            "pipeline-codebuild",
            {
                "Sid": "Bad",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": ["arn:aws:iam::123456789012:role/x"],
            },
        ),
        "statement Bad: iam:PassRole without an iam:PassedToService condition",
    )
    yield (
        "no-wildcard-actions",
        _with_statement(
            dev,
            "pipeline-codebuild",
            {"Sid": "Bad", "Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*"},
        ),
        "statement Bad: allows ['s3:*']; list the actions needed",
    )
    yield (
        "container-secrets-by-arn",
        _with_container(dev, "web", environment=[{"name": "DB_PASSWORD", "value": "hunter2"}]),
        "container web: environment DB_PASSWORD looks like a secret; pass it in `secrets` as a "
        "Secrets Manager or SSM parameter ARN",
    )
    yield (
        "containers-hardened",
        _with_container(dev, "web", user="0"),
        "container web: runs as root (user 0); fix it or tag the task definition "
        "ecs-delivery:hardening-opt-out=<reason>",
    )
    yield (
        "log-retention-set",
        _changed(
            dev.named("aws:cloudwatch/logGroup:LogGroup", "network-flow-logs"),
            inputs={"retentionInDays": None},
        ),
        "log group keeps logs forever; set retentionInDays",
    )
    yield (
        "kms-key-rotated",
        _changed(prod.named("aws:kms/key:Key", "kms"), inputs={"enableKeyRotation": False}),
        "symmetric key without automatic rotation; set enableKeyRotation",
    )
    yield (
        "ecr-immutable-scanned",
        _changed(
            dev.named("aws:ecr/repository:Repository", "ecr-web"),
            inputs={"imageTagMutability": "MUTABLE"},
        ),
        "image tags are MUTABLE; set IMMUTABLE",
    )
    yield (
        "https-listener-tls12",
        _changed(
            prod.named("aws:lb/listener:Listener", "alb-https"),
            inputs={"sslPolicy": "ELBSecurityPolicy-TLS13-1-1-2021-06"},
        ),
        "HTTPS listener on 443 uses ELBSecurityPolicy-TLS13-1-1-2021-06; use a TLS 1.2+ policy "
        "such as ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    network = copy.deepcopy(plain(web.inputs["networkConfiguration"]))
    network["assignPublicIp"] = True
    yield (
        "ecs-service-private",
        _changed(web, inputs={"networkConfiguration": network}),
        "tasks get public IPs; run them in private subnets with assignPublicIp false",
    )
    yield (
        "codedeploy-service-ignores-owned-fields",
        _changed(web, options={"ignoreChanges": [*CODEDEPLOY_OWNED, "cpu"]}),
        "ignoreChanges has ['cpu']: Pulumi-owned fields would never reach the service",
    )


BAD_CASE_NAMES = [rule.name for rule in rules.RESOURCE_RULES]


@pytest.mark.parametrize("policy_name", BAD_CASE_NAMES)
def test_each_resource_policy_fires_exactly_once_on_its_bad_resource(
    policy_name, dev_plan, prod_plan
):
    cases = {
        name: (registration, message)
        for name, registration, message in _bad_cases(dev_plan, prod_plan)
    }
    assert sorted(cases) == sorted(BAD_CASE_NAMES)  # a bad case for every policy
    registration, message = cases[policy_name]
    assert resource_violations(registration) == [(policy_name, message)]


def test_s3_stack_policy_fires_once_for_a_bucket_without_versioning(dev_plan):
    versioning = dev_plan.named("aws:s3/bucketVersioning:BucketVersioning", "artifacts")
    resources = [r for r in dev_plan.resources if r.urn != versioning.urn]
    bucket = dev_plan.named("aws:s3/bucket:Bucket", "artifacts")
    assert stack_violations(resources) == [
        (
            "s3-buckets-secured",
            "bucket ecs-delivery-dev-123456789012-eu-west-1-artifacts lacks versioning Enabled "
            "(BucketVersioning)",
            bucket.urn,
        )
    ]
    assert _all_violations(resources) == [
        (
            "s3-buckets-secured",
            "bucket ecs-delivery-dev-123456789012-eu-west-1-artifacts lacks versioning Enabled "
            "(BucketVersioning)",
        )
    ]


def test_s3_stack_policy_wants_a_tls_only_policy_and_every_public_access_block(dev_plan):
    policy = dev_plan.named("aws:s3/bucketPolicy:BucketPolicy", "artifacts")
    block = dev_plan.named("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "artifacts")
    document = json.loads(policy.inputs["policy"])
    for statement in document["Statement"]:
        statement["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    changed = {
        policy.urn: _changed(policy, inputs={"policy": json.dumps(document)}),
        block.urn: _changed(block, inputs={"restrictPublicBuckets": False}),
    }
    resources = [changed.get(r.urn, r) for r in dev_plan.resources]
    assert [m for _, m, _ in stack_violations(resources)] == [
        "bucket ecs-delivery-dev-123456789012-eu-west-1-artifacts lacks all four public access "
        "blocks (BucketPublicAccessBlock)",
        "bucket ecs-delivery-dev-123456789012-eu-west-1-artifacts lacks a bucket policy denying "
        "requests without TLS (aws:SecureTransport false)",
    ]


def test_hardening_opt_out_is_a_tag_with_a_reason(dev_plan):
    writable = _with_container(dev_plan, "web", readonlyRootFilesystem=False)
    assert [p for p, _ in resource_violations(writable)] == ["containers-hardened"]
    tags = {
        **writable.inputs["tags"],
        rules.HARDENING_OPT_OUT_TAG: "vendor image writes /var/cache",
    }
    assert resource_violations(_changed(writable, inputs={"tags": tags})) == []
    empty = {**writable.inputs["tags"], rules.HARDENING_OPT_OUT_TAG: ""}
    assert [p for p, _ in resource_violations(_changed(writable, inputs={"tags": empty}))] == [
        "containers-hardened"
    ]


def test_world_ingress_rule_covers_ipv6_inline_rules_and_all_protocols():
    check = rules.world_ingress_only_http
    assert check(
        "aws:ec2/securityGroup:SecurityGroup",
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
    ) == ["ingress from ::/0 on -1 0-0: the world may reach only TCP 80 and 443"]
    assert (
        check(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"cidrIpv6": "::/0", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443},
        )
        == []
    )
    assert check(
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        {
            "type": "ingress",
            "cidrBlocks": ["0.0.0.0/0"],
            "protocol": "tcp",
            "fromPort": 80,
            "toPort": 443,
        },
    ) == ["ingress from 0.0.0.0/0 on tcp 80-443: the world may reach only TCP 80 and 443"]


def test_codedeploy_rule_knows_the_fields_the_program_leaves_to_codedeploy():
    assert list(rules.CODEDEPLOY_OWNED) == CODEDEPLOY_OWNED
    service = {"deploymentController": {"type": "CODE_DEPLOY"}}
    check = rules.codedeploy_service_ignores_owned_fields
    assert check(
        "aws:ecs/service:Service", service, ["taskDefinition", "networkConfiguration"]
    ) == [
        "ignoreChanges lacks ['loadBalancers', 'platformVersion', 'capacityProviderStrategies']: "
        "the next update would revert CodeDeploy's deployment"
    ]
    assert check("aws:ecs/service:Service", {"deploymentController": {"type": "ECS"}}, []) == []


@pytest.mark.parametrize("strategy", ["BLUE_GREEN", "CANARY", "LINEAR"])
def test_an_ecs_blue_green_service_must_ignore_the_same_fields_as_a_codedeploy_one(strategy):
    # Issue 19: on the ECS engine an update of the task definition starts a deployment.
    service = {
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {"strategy": strategy},
    }
    check = rules.codedeploy_service_ignores_owned_fields
    assert check("aws:ecs/service:Service", service, ["loadBalancers"]) == [
        "ignoreChanges lacks ['taskDefinition', 'networkConfiguration', 'platformVersion', "
        "'capacityProviderStrategies']: the next update would start an ECS deployment outside "
        "the deployment core"
    ]
    assert check("aws:ecs/service:Service", service, [*CODEDEPLOY_OWNED, "launchType"]) == []


def test_pass_role_on_star_and_deny_statements(dev_plan):
    assert rules.pass_role_scoped(
        "aws:iam/policy:Policy",
        {
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Sid": "P",
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
                            },
                        }
                    ]
                }
            )
        },
    ) == ["statement P: iam:PassRole on ['*']; name the exact roles"]
    # The artifact bucket's TLS-only policy denies s3:*: a Deny is not a grant.
    bucket_policy = dev_plan.named("aws:s3/bucketPolicy:BucketPolicy", "artifacts")
    assert "s3:*" in bucket_policy.inputs["policy"]
    assert rules.no_wildcard_actions(bucket_policy.type, plain(bucket_policy.inputs)) == []


def test_the_pack_starts_and_announces_its_port():
    # Run like the CLI runs a Python pack (its directory's __main__.py): it must build every
    # policy, start serving and announce its gRPC port on stdout.
    process = subprocess.Popen(
        [sys.executable, "."], cwd=PACK_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = process.stdout.readline().decode().strip()
        assert line.isdigit(), line or process.stderr.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_stack_that_relaxes_hardening_in_config_is_tagged_and_passes():
    from tests.conftest import make_plan

    task_definition = "aws:ecs/taskDefinition:TaskDefinition"
    plan = make_plan(
        "dev",
        overrides={
            "services": {
                "web": {"containerPort": 8080, "readonlyRootFilesystem": False, "user": "0"},
            },
            "scheduledTasks": {},
        },
    )
    (web,) = [r for r in plan.resources if r.type == task_definition and r.name == "web"]
    assert (
        web.inputs["tags"][rules.HARDENING_OPT_OUT_TAG]
        == "stack-config readonlyRootFilesystem user"
    )
    assert resource_violations(web) == []
    (default,) = [
        r for r in make_plan("dev").resources if r.type == task_definition and r.name == "web"
    ]
    assert rules.HARDENING_OPT_OUT_TAG not in default.inputs["tags"]


def test_only_a_firelens_router_may_run_as_root_in_an_untagged_task(dev_plan):
    # dev's web runs a FireLens router as root (FireLens requires it) and is not tagged.
    web = dev_plan.named("aws:ecs/taskDefinition:TaskDefinition", "web")
    router = [c for c in _containers(dev_plan, "web") if c["name"] == "log-router"]
    assert [(c["user"], "firelensConfiguration" in c) for c in router] == [("0", True)]
    assert rules.HARDENING_OPT_OUT_TAG not in web.inputs["tags"]
    assert resource_violations(web) == []
    # The same container without firelensConfiguration is any root container.
    plain_root = [
        {k: v for k, v in c.items() if k != "firelensConfiguration"}
        for c in _containers(dev_plan, "web")
    ]
    changed = _changed(web, inputs={"containerDefinitions": json.dumps(plain_root)})
    assert resource_violations(changed) == [
        (
            "containers-hardened",
            "container log-router: runs as root (user 0); fix it or tag the task definition "
            f"{rules.HARDENING_OPT_OUT_TAG}=<reason>",
        )
    ]

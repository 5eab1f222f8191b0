"""Every IAM document of a plan fits AWS's size limits at 30 and at 200 services.

IAM refuses, at apply time only, a role whose inline policies add up to more than 10,240
characters, a managed policy over 6,144, a trust policy over 2,048 and an eleventh managed
policy attached to a role (default quotas); S3 refuses a bucket policy over 20 KB. IAM does
not count whitespace. The shared CodeDeploy role named every service's task set, alarms and
roles in one inline policy: past about 15 services `pulumi up` failed (README known limits);
the pipeline's build and deploy roles, the release's Validate step and its steps' role grew
with the services the same way until they named the stack's cluster, application and ECR
namespace once and put the per-service families and roles in managed policies.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pulumi
import pytest

from ecs_delivery.components import iam, naming
from ecs_delivery.components.deployer import revision_documents
from tests.components.test_release import _many_services
from tests.conftest import make_plan
from tests.support.plans import as_list

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"

INLINE_PER_ROLE, MANAGED, TRUST, ATTACHED_PER_ROLE = 10_240, 6_144, 2_048, 10
BUCKET_POLICY_BYTES = 20 * 1024


def _size(document: str) -> int:
    """As IAM counts: the characters of the document, whitespace excluded."""
    return sum(not c.isspace() for c in json.dumps(json.loads(document), separators=(",", ":")))


def _role_of(reference: str, roles: set[str]) -> str:
    """The role a policy or attachment names: `<role>-id` (its id) or `<role>-<suffix>`."""
    role = (
        reference.removesuffix("-id") if reference.endswith("-id") else reference.rsplit("-", 1)[0]
    )
    assert role in roles, f"{reference} names no role of the plan"
    return role


def _problems(count: int) -> list[str]:
    plan = make_plan("dev", overrides={"services": _many_services(count), "scheduledTasks": {}})
    roles = {r.name for r in plan.of_type(ROLE)}
    problems = []
    inline: dict[str, int] = defaultdict(int)
    for policy in plan.of_type(ROLE_POLICY):
        inline[_role_of(str(policy.inputs["role"]), roles)] += _size(policy.inputs["policy"])
    attached: dict[str, int] = defaultdict(int)
    for attachment in plan.of_type(ATTACHMENT):
        attached[_role_of(str(attachment.inputs["role"]), roles)] += 1
    for role in plan.of_type(ROLE):
        if _size(role.inputs["assumeRolePolicy"]) > TRUST:
            problems.append(f"role {role.name}: trust policy over {TRUST}")
    problems += [
        f"role {r}: inline {n} > {INLINE_PER_ROLE}"
        for r, n in inline.items()
        if n > INLINE_PER_ROLE
    ]
    problems += [
        f"role {r}: {n} attached > {ATTACHED_PER_ROLE}"
        for r, n in attached.items()
        if n > ATTACHED_PER_ROLE
    ]
    for policy in plan.of_type(POLICY):
        if (size := _size(policy.inputs["policy"])) > MANAGED:
            problems.append(f"policy {policy.name}: {size} > {MANAGED}")
    for policy in plan.of_type(BUCKET_POLICY):
        if (size := len(policy.inputs["policy"].encode())) > BUCKET_POLICY_BYTES:
            problems.append(f"bucket policy {policy.name}: {size} bytes > {BUCKET_POLICY_BYTES}")
    return problems  # fmt: skip


@pytest.mark.parametrize("count", [30, 200])
def test_every_policy_of_a_plan_is_within_aws_size_limits(count):
    assert _problems(count) == []


@pytest.mark.parametrize("region", ["eu-west-1", "us-isob-east-1"])
def test_per_service_grants_fit_managed_policies_whatever_the_role_names(region):
    """Role ARNs are known only once created: with IAM's longest role names (64 characters)
    every per-service policy stays within 6,144 characters in every partition, and in the
    `aws` partition 200 services of dev's names still fit ten (`aws-iso-b`'s longer ARNs
    take eleven: the plan refuses them, naming the fix)."""
    partition = naming.partition(region)
    families = [
        naming.arn(
            "ecs",
            f"task-definition/ecs-delivery-dev-svc{i:03d}:*",
            region=region,
            account="123456789012",
        )
        for i in range(200)
    ]
    roles = [f"arn:{partition}:iam::123456789012:role/{i:04d}{'r' * 60}" for i in range(400)]
    documents = revision_documents(families, roles, region=region)
    assert [_size(iam.document(d)) <= MANAGED for d in documents] == [True] * len(documents)
    assert len(documents) == (10 if partition == "aws" else 11)
    assert sorted(a for d in documents for s in d for a in as_list(s["Resource"])) == sorted(
        families + roles
    )


def test_more_per_service_policies_than_iam_attaches_to_a_role_are_refused_naming_the_fix():
    """Past 210 services of dev's names (21 a policy), the deploy role would need an eleventh
    managed policy: refused before any is registered, naming the role, the count and the fix."""
    families = [
        naming.arn(
            "ecs",
            f"task-definition/ecs-delivery-dev-svc{i:03d}:*",
            region="eu-west-1",
            account="123456789012",
        )
        for i in range(211)
    ]
    documents = revision_documents(families, ["role"] * 422, region="eu-west-1")
    with pytest.raises(pulumi.RunError) as refused:
        iam.attach_policies(
            "pipeline-codebuild-deploy",
            None,  # refused before the role is used
            documents,
            description="per-service grants",
            parent=None,
            tags={},
            fix="split the stack",
        )
    assert str(refused.value) == (
        "pipeline-codebuild-deploy: 11 managed policies to attach; IAM attaches at most 10 "
        "to a role by default; split the stack"
    )

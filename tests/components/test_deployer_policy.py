"""Deployer access: the managed policy covers every AWS call the deployment code makes, and no more.

The calls are read from the sources with `ast` (every `<client>.<method>` reference on an ecs,
codedeploy, s3, ecr, scheduler or events client, called or passed to a retry helper) and mapped
to IAM actions through botocore's service models, so a new call in the engine fails here until
the policy grants it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import botocore.session
import pulumi
import pytest
from botocore import xform_name

from ecs_delivery.components import naming
from ecs_delivery.components.deployer import GithubOidc
from ecs_delivery.offline import plan as plan_tool
from tests.support.registrations import inputs

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "ecs_delivery" / "runtime"
POLICY = "aws:iam/policy:Policy"
CLIENTS = ("ecs", "codedeploy", "s3", "ecr", "scheduler", "events")
# What a deployment runs: the release engine (CLI and Lambda steps), the rollout through
# CodeDeploy, and the pipeline's build tool (paths under src/ecs_delivery/runtime).
DEPLOYMENT_SOURCES = sorted(
    p.relative_to(RUNTIME).as_posix()
    for p in [
        *(RUNTIME / "release").glob("*.py"),
        RUNTIME / "rollout.py",
        RUNTIME / "codedeploy.py",
        # The CodeDeploy engine (the ECS engine's calls: tests/components/ecs_engine).
        RUNTIME / "engines.py",
        RUNTIME / "taskdef.py",
        RUNTIME / "live.py",
        RUNTIME / "build.py",
    ]
)
# Actions AWS requires beyond the calls themselves, each with its reason: nothing else may be granted.
REQUIRED_BESIDE_CALLS = {
    "codedeploy:GetApplicationRevision": "CreateDeployment reads the revision",
    "codedeploy:RegisterApplicationRevision": "CreateDeployment registers the AppSpec revision",
    "codedeploy:GetDeploymentConfig": "CreateDeployment reads the group's configuration",
    "ecs:TagResource": "RegisterTaskDefinition with tags",
    "iam:PassRole": "revisions name task/execution roles; schedules name their role",
    "s3:ListBucket": "a missing release state must read as NoSuchKey, not AccessDenied",
    "ecr:GetAuthorizationToken": "docker login",
    "ecr:BatchCheckLayerAvailability": "docker push",
    "ecr:InitiateLayerUpload": "docker push",
    "ecr:UploadLayerPart": "docker push",
    "ecr:CompleteLayerUpload": "docker push",
    "ecr:PutImage": "docker push",
    "ecr:BatchGetImage": "docker push/pull of an existing manifest",
    "ecr:GetDownloadUrlForLayer": "docker pull of a base layer already pushed",
}
# IAM offers no resource-level permissions for these: the only actions allowed on "*".
NO_RESOURCE_LEVEL = {
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecr:GetAuthorizationToken",
}


def _operations(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def _client_name(node: ast.expr) -> str | None:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    name = (name or "").lstrip("_")
    return name if name in CLIENTS else None


def deployment_calls() -> dict[str, set[str]]:
    """IAM action -> the files whose code calls it."""
    operations = {client: _operations(client) for client in CLIENTS}
    found: dict[str, set[str]] = {}
    for path in DEPLOYMENT_SOURCES:
        for node in ast.walk(ast.parse((RUNTIME / path).read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            client = _client_name(node.value)
            if client and node.attr in operations[client]:
                action = f"{client}:{operations[client][node.attr]}"
                found.setdefault(action, set()).add(path)
    return found


def ecs_engine_calls() -> set[str]:
    """IAM actions the ECS engine's module calls on its client (a worker's deployments)."""
    operations = _operations("ecs")
    found = set()
    for node in ast.walk(ast.parse((RUNTIME / "ecs_engine.py").read_text())):
        is_call = isinstance(node, ast.Attribute) and _client_name(node.value) == "ecs"
        if is_call and node.attr in operations:
            found.add(f"ecs:{operations[node.attr]}")
    return found


def _documents(plan) -> dict[str, dict]:
    """The deployer's managed policies by name (one for a small stack)."""
    return {
        r.name: json.loads(r.inputs["policy"])
        for r in plan.of_type(POLICY)
        if r.name == "deployer" or r.name.startswith("deployer-units-")
    }


def _statements(plan) -> list[dict]:
    return [s for d in _documents(plan).values() for s in d["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _granted(plan) -> set[str]:
    return {a for s in _statements(plan) if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def test_the_walk_finds_the_engines_calls():
    calls = deployment_calls()
    # Spot checks that the walk sees both called and passed-on methods (aws.call(fn, ...)).
    # The release's rollback stops through its engine (runtime/engines.py), which calls codedeploy.py.
    assert calls["codedeploy:StopDeployment"] == {"codedeploy.py"}
    assert calls["codedeploy:BatchGetDeployments"] == {"engines.py"}
    assert "release/live.py" in calls["ecs:DescribeServices"]
    assert calls["s3:PutObject"] == {"release/state.py"}
    assert calls["ecr:DescribeImages"] == {"build.py"}
    assert len(calls) >= 15


def test_the_stacks_schedule_tasks_with_the_scheduler_only(dev_plan, prod_plan):
    # The engine's EventBridge-rule calls serve rule-triggered tasks; this program makes none,
    # so the policy grants no events:* action.
    for plan in (dev_plan, prod_plan):
        tasks = plan.outputs["releaseInventory"]["scheduledTasks"]
        assert tasks and all("schedule" in t and "rule" not in t for t in tasks.values())


# Called only when the stack chooses so, and granted only then (tests/runtime/test_prod_timing.py
# plans deployment.onTerminationWait: end and finds it granted).
ONLY_WHEN_CHOSEN = {"codedeploy:ContinueDeployment"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_call_the_deployment_code_makes_is_granted(dev_plan, prod_plan, stack):
    plan = {"dev": dev_plan, "prod": prod_plan}[stack]
    needed = {a for a in deployment_calls() if not a.startswith("events:")} - ONLY_WHEN_CHOSEN
    if stack == "prod":
        # prod promotes dev's images: it has no repositories, so nothing to push or look up.
        assert plan.outputs["ecrRepositoryArns"] and not plan.of_type(
            "aws:ecr/repository:Repository"
        )
        needed = {a for a in needed if not a.startswith("ecr:")}
    assert needed - _granted(plan) == set()


def test_nothing_is_granted_beyond_the_calls_and_what_aws_requires_for_them(dev_plan, prod_plan):
    calls = set(deployment_calls()) - ONLY_WHEN_CHOSEN
    # dev's worker (mailer) is deployed by the ECS engine: its calls are granted too.
    assert (
        _granted(dev_plan)
        == (calls - {a for a in calls if a.startswith("events:")})
        | set(REQUIRED_BESIDE_CALLS)
        | ecs_engine_calls()
    )
    assert not {a for a in _granted(prod_plan) if a.startswith("ecr:")}


def _own_resources(plan) -> dict[str, set[str]]:
    """Every ARN (or stack-owned pattern) this stack's policy may name, from the plan itself."""
    region, account = "eu-west-1", plan.outputs["accountId"]

    def arn(service: str, resource: str) -> str:
        return naming.arn(service, resource, region=region, account=account)

    (cluster,) = [r.inputs["name"] for r in plan.of_type("aws:ecs/cluster:Cluster")]
    (application,) = [
        r.inputs["name"] for r in plan.of_type("aws:codedeploy/application:Application")
    ]
    groups = plan.of_type("aws:codedeploy/deploymentGroup:DeploymentGroup")
    repositories = [r.inputs["name"] for r in plan.of_type("aws:ecr/repository:Repository")]
    namespaces = {name.split("/")[0] for name in repositories}
    assert len(namespaces) <= 1  # one namespace, holding every repository of the stack
    bucket = f"arn:aws:s3:::{plan.outputs['releaseBucket']}"
    return {
        # The cluster, the application and the ECR namespace are the stack's own: so is
        # everything in them.
        "patterns": {
            arn("ecs", f"service/{cluster}/*"),
            # A worker's service deployments and revisions, in the same cluster.
            arn("ecs", f"service-deployment/{cluster}/*"),
            arn("ecs", f"service-revision/{cluster}/*"),
            arn("codedeploy", f"deploymentgroup:{application}/*"),
            *(arn("ecr", f"repository/{ns}/*") for ns in namespaces),
        },
        "arns": {
            arn("ecs", f"task-definition/{r.inputs['family'].removesuffix('-template')}:*")
            for r in plan.of_type("aws:ecs/taskDefinition:TaskDefinition")
        }
        | {arn("codedeploy", f"application:{application}")}
        | {
            arn("codedeploy", f"deploymentconfig:{g.inputs['deploymentConfigName']}")
            for g in groups
        }
        | {
            arn("scheduler", f"schedule/{r.inputs['groupName']}/{r.inputs['name']}")
            for r in plan.of_type("aws:scheduler/schedule:Schedule")
        }
        | {bucket, f"{bucket}/releases/*", f"{bucket}/inventory.json"}
        | ({plan.outputs["kmsKeyArn"]} if "kmsKeyArn" in plan.outputs else set()),
        "roles": {r.name for r in plan.of_type("aws:iam/role:Role")},
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_resource_is_one_of_the_stacks_own(dev_plan, prod_plan, stack):
    plan = {"dev": dev_plan, "prod": prod_plan}[stack]
    own = _own_resources(plan)
    for statement in _statements(plan):
        actions = set(_as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                assert actions <= NO_RESOURCE_LEVEL, statement
            elif actions == {"iam:PassRole"}:
                # role/<logical name>-<suffix>: a task, execution or scheduler role of this stack.
                logical = resource.split("role/", 1)[1].rsplit("-", 1)[0]
                assert logical in own["roles"], resource
                assert logical.endswith(("-execution", "-task", "-scheduler")), resource
            else:
                assert resource in own["patterns"] | own["arns"], (statement["Sid"], resource)
    assert not [r for s in _statements(plan) for r in _as_list(s["Resource"]) if "-template" in r]


def test_pass_role_goes_only_to_ecs_tasks_and_the_scheduler(dev_plan):
    passing = {s["Sid"]: s for s in _statements(dev_plan) if s["Action"] == "iam:PassRole"}
    assert passing["PassTaskRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert (
        len(passing["PassTaskRoles"]["Resource"]) == 8
    )  # web, api, mailer, nightly-report: execution + task
    assert passing["PassSchedulerRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert len(passing) == 2


def test_the_stack_exports_the_policy_arn(dev_plan, prod_plan):
    for plan in (dev_plan, prod_plan):
        assert plan.outputs["deployerPolicyArn"].startswith("arn:aws:iam:")
        assert plan.outputs["deployerPolicyArn"].split("/")[-1].startswith("deployer-")


TWO_DEPLOYERS = """
from ecs_delivery.components.deployer import DeployedUnit, DeployerAccess, DeployerAccessArgs, GithubOidc

def args(stack, units, github=None):
    return DeployerAccessArgs(
        project="shop",
        stack=stack,
        region="cn-north-1",
        account_id="111111111111",
        cluster_name=f"shop-{stack}",
        application_name=f"shop-{stack}",
        deployment_configs=["CodeDeployDefault.ECSAllAtOnce"],
        units=[
            DeployedUnit(
                family=f"shop-{stack}-svc{i}",
                role_arns=[
                    f"arn:aws-cn:iam::111111111111:role/svc{i}-execution-{'e' * 48}",
                    f"arn:aws-cn:iam::111111111111:role/svc{i}-task-{'t' * 53}",
                ],
            )
            for i in range(units)
        ],
        ecr_namespace=f"shop-{stack}",
        kms_key_arn=None,
        github=github,
    )

DeployerAccess("plain", args("dev", 1))
DeployerAccess("ci", args("prod", 30, GithubOidc(repository="example-org/shop", branch="release")))
"""


def test_two_deployers_coexist_and_the_github_role_trusts_one_repository_and_branch(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: deployers\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(TWO_DEPLOYERS)
    plan = plan_tool.run("t", config={"aws:region": "cn-north-1"}, root=tmp_path)
    # 30 units with 64-character role names: three policies, each within IAM's size limit.
    policies = {r.name: json.loads(r.inputs["policy"]) for r in plan.of_type(POLICY)}
    assert sorted(policies) == ["ci", "ci-units-2", "ci-units-3", "plain"]
    for document in policies.values():
        assert len(json.dumps(document, separators=(",", ":"))) <= 6144
    passed = [
        r
        for name in ("ci", "ci-units-2", "ci-units-3")
        for s in policies[name]["Statement"]
        if s["Sid"] == "PassTaskRoles"
        for r in s["Resource"]
    ]
    assert len(passed) == len(set(passed)) == 60
    assert [r.name for r in plan.of_type("aws:iam/role:Role")] == ["ci-github"]
    trust = json.loads(inputs(plan, "aws:iam/role:Role", "ci-github")["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {
                "Federated": "arn:aws-cn:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"
            },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                    "token.actions.githubusercontent.com:sub": "repo:example-org/shop:ref:refs/heads/release",
                }
            },
        }
    ]
    attachments = plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert sorted(a.name for a in attachments) == [
        "ci-github",
        "ci-units-2-github",
        "ci-units-3-github",
    ]
    assert all(a.inputs["role"].startswith("ci-github") for a in attachments)
    # ARNs in the region's partition.
    resources = [
        r for s in policies["plain"]["Statement"] for r in _as_list(s["Resource"]) if r != "*"
    ]
    assert resources and all(r.startswith("arn:aws-cn:") for r in resources)
    assert "arn:aws-cn:codedeploy:cn-north-1:111111111111:deploymentgroup:shop-dev/*" in resources


def test_a_template_family_is_refused(tmp_path):
    program = TWO_DEPLOYERS.replace(
        'family=f"shop-{stack}-svc{i}"', 'family=f"shop-{stack}-svc{i}-template"'
    )
    (tmp_path / "Pulumi.yaml").write_text("name: deployers\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(program)
    with pytest.raises(Exception, match=r"\['shop-dev-svc0-template'\] are template families"):
        plan_tool.run("t", config={"aws:region": "cn-north-1"}, root=tmp_path)


@pytest.mark.parametrize(
    ("repository", "branch", "message"),
    [
        ("shop", "main", "githubRepository 'shop': use owner/repo"),
        ("org/shop/extra", "main", "githubRepository 'org/shop/extra': use owner/repo"),
        ("org/shop", "release/*", r"branch 'release/\*': name one branch \(no wildcards\)"),
    ],
)
def test_github_option_refuses_a_vague_repository_or_branch(repository, branch, message):
    with pytest.raises(ValueError, match=message):
        GithubOidc(repository=repository, branch=branch)


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-west-1", "aws"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_arn_partition_follows_the_region(region, partition):
    assert naming.partition(region) == partition
    assert naming.arn("s3", "b", region=region, scoped=False) == f"arn:{partition}:s3:::b"


def test_a_forty_service_stack_gets_policies_within_iams_size_limit():
    from tools.bench_plan import synthetic_config

    plan = plan_tool.run("dev", config=synthetic_config(40))
    documents = _documents(plan)
    assert sorted(documents) == [
        "deployer",
        "deployer-units-2",
        "deployer-units-3",
        "deployer-units-4",
    ]
    assert all(len(json.dumps(d, separators=(",", ":"))) <= 6144 for d in documents.values())
    passed = {
        r for s in _statements(plan) if s["Sid"] == "PassTaskRoles" for r in _as_list(s["Resource"])
    }
    assert len(passed) == 80  # every service's execution and task role, once
    assert plan.outputs["deployerPolicyArns"][0] == plan.outputs["deployerPolicyArn"]
    assert len(plan.outputs["deployerPolicyArns"]) == 4


def test_a_policy_over_iams_size_limit_refuses_the_plan_naming_its_size_and_the_fix(
    tmp_path, monkeypatch
):
    from ecs_delivery.components import deployer

    monkeypatch.setattr(deployer, "UNITS_PER_POLICY", 30)  # 30 units with long roles: too big
    (tmp_path / "Pulumi.yaml").write_text("name: deployers\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(TWO_DEPLOYERS)
    with pytest.raises(pulumi.RunError) as refused:
        plan_tool.run("t", config={"aws:region": "cn-north-1"}, root=tmp_path)
    assert re.fullmatch(
        r"ci: policy of \d{1,2},\d{3} characters exceeds IAM's 6,144; "
        r"lower deployer.UNITS_PER_POLICY",
        str(refused.value),
    )


def test_more_deployer_policies_than_a_role_may_attach_refuse_the_plan_naming_the_numbers(
    tmp_path,
):
    # 121 units take 11 policies of 12: the GitHub role could attach only 10 (IAM's default).
    program = TWO_DEPLOYERS.replace('args("prod", 30,', 'args("prod", 121,')
    (tmp_path / "Pulumi.yaml").write_text("name: deployers\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(program)
    with pytest.raises(Exception) as refused:
        plan_tool.run("t", config={"aws:region": "cn-north-1"}, root=tmp_path)
    assert str(refused.value).endswith(
        "ci-github: 11 managed policies to attach; IAM attaches at most 10 to a role by "
        "default; 121 services and scheduled tasks take 11 deployer policies of up to 12; "
        "split the stack, or deploy from a role of your own that attaches "
        "deployerPolicyArns after raising the quota (up to 20)"
    )


def test_the_plan_command_prints_a_role_over_its_policy_quota_as_one_error_without_traceback(
    tmp_path, capsys
):
    program = TWO_DEPLOYERS.replace('args("prod", 30,', 'args("prod", 121,')
    (tmp_path / "Pulumi.yaml").write_text("name: deployers\nruntime: python\n")
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  aws:region: cn-north-1\n")
    (tmp_path / "__main__.py").write_text(program)
    assert plan_tool.main(["--stack", "t", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: ci-github: 11 managed policies to attach; IAM attaches at most")

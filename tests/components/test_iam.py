"""IAM: one role per service principal, scoped resources, PassRole only to ECS tasks."""

from __future__ import annotations

import json

import pytest

from tests.support.iam_calls import role_statements
from tests.support.plans import (
    ROLE,
    as_list,
    documents,
    inputs,
    policy,
    statement,
)

# Actions IAM offers no resource-level permissions for: the only ones allowed on "*".
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
}
DELIVERY_ROLES = (
    "pipeline-codebuild",
    "pipeline-codebuild-deploy",
    "pipeline-codebuild-publish",
    "codedeploy-api",
    "codedeploy-web",
    "pipeline-codepipeline",
    "validation-hook",
)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_policy_allows_a_wildcard_action_or_passrole_on_everything(dev, prod, stack):
    plan = {"dev": dev, "prod": prod}[stack]
    found = documents(plan)
    assert len(found) > 10
    for type_, name, document in found:
        for stmt in document["Statement"]:
            assert "NotAction" not in stmt and "NotResource" not in stmt, (type_, name)
            if stmt["Effect"] != "Allow":
                continue
            actions = as_list(stmt["Action"])
            assert not [a for a in actions if a == "*" or a.endswith(":*")], (type_, name, actions)
            if "iam:PassRole" in actions:
                resources = as_list(stmt["Resource"])
                assert resources and not any("*" in r for r in resources), (type_, name)
                if stmt.get("Sid") == "PassSchedulerRoles":
                    # The release engine (its Lambda steps, or an external deployer) retargets
                    # schedules: it passes only the schedulers' own roles, only to the Scheduler.
                    assert name in ("release-steps", "deployer"), (type_, name)
                    assert all(
                        r.split("/")[-1].startswith("task-") and "-scheduler-" in r
                        for r in resources
                    )
                    assert stmt["Condition"] == {
                        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
                    }, (type_, name)
                    continue
                assert stmt["Condition"] == {
                    "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
                }, (type_, name)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_delivery_roles_use_star_resources_only_for_actions_without_resource_permissions(
    dev, prod, stack
):
    plan = {"dev": dev, "prod": prod}[stack]
    for role in DELIVERY_ROLES:
        for stmt in policy(plan, role)["Statement"]:
            if "*" in as_list(stmt["Resource"]):
                assert set(as_list(stmt["Action"])) <= STAR_RESOURCE_ACTIONS, (role, stmt)


def test_each_service_principal_has_its_own_role_pinned_to_the_account(dev):
    principals = {
        "pipeline-codebuild": "codebuild.amazonaws.com",
        "pipeline-codebuild-deploy": "codebuild.amazonaws.com",
        "pipeline-codebuild-publish": "codebuild.amazonaws.com",
        "codedeploy-api": "codedeploy.amazonaws.com",
        "codedeploy-web": "codedeploy.amazonaws.com",
        "pipeline-codepipeline": "codepipeline.amazonaws.com",
        "validation-hook": "lambda.amazonaws.com",
    }
    for role, principal in principals.items():
        trust = json.loads(inputs(dev, ROLE, role)["assumeRolePolicy"])
        assert trust["Statement"] == [
            {
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ]


def _passed(plan, role: str) -> list[str]:
    """The roles a role may pass, from its inline policy and the managed ones attached."""
    passing = [s for s in role_statements(plan, role) if s.get("Sid") == "PassTaskRoles"]
    assert passing
    resources = [arn for s in passing for arn in s["Resource"]]
    assert all(a.startswith("arn:aws:iam::123456789012:role/") for a in resources)
    return sorted(arn.rsplit("/", 1)[1].rsplit("-", 1)[0] for arn in resources)


def test_passrole_names_exactly_the_task_and_execution_roles(dev):
    assert _passed(dev, "pipeline-codebuild-deploy") == [
        "api-execution",
        "api-task",
        "mailer-execution",  # the worker, shipped by the same deploy step (ECS engine)
        "mailer-task",
        # nightly-report follows api: api's ships register its revisions too.
        "task-nightly-report-execution",
        "task-nightly-report-task",
        "web-execution",
        "web-task",
    ]
    # Each deployment group's role passes its own service's roles only.
    assert _passed(dev, "codedeploy-api") == ["api-execution", "api-task"]
    assert _passed(dev, "codedeploy-web") == ["web-execution", "web-task"]


def test_a_groups_codedeploy_role_touches_only_its_service_listeners_alarms_and_hook(dev):
    document = policy(dev, "codedeploy-web")
    task_sets = statement(document, "TaskSets")
    assert task_sets["Resource"] == [
        "arn:aws:ecs:eu-west-1:123456789012:service/ecs-delivery-dev/web",
        "arn:aws:ecs:eu-west-1:123456789012:task-set/ecs-delivery-dev/web/*",
    ]
    swap = statement(document, "SwapTargetGroups")["Resource"]
    # Our two listeners, and the rules of exactly those two (rule ARNs end in a random id).
    listeners = swap[:2]
    assert [a.split(":listener/")[1].rsplit("-", 1)[0] for a in listeners] == [
        "alb-http",
        "alb-test",
    ]
    assert swap[2:] == [a.replace(":listener/", ":listener-rule/") + "/*" for a in listeners]
    alarms = statement(document, "ReadAlarms")["Resource"]
    assert len(alarms) == 4 and all(":alarm:ecs-delivery-dev-web-" in a for a in alarms)
    assert statement(document, "ValidationHook") == {
        "Sid": "ValidationHook",
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:ecs-delivery-dev-validation-hook",
    }


def test_codebuild_pushes_only_to_this_stacks_repositories(dev, prod):
    push = statement(policy(dev, "pipeline-codebuild"), "EcrPush")
    # The stack's own namespace (naming.ecr_namespace): every repository in it is the stack's.
    assert push["Resource"] == "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-dev/*"
    assert "ecr:PutImage" in push["Action"]
    # The downstream build pushes nothing.
    sids = {s.get("Sid") for s in policy(prod, "pipeline-codebuild")["Statement"]}
    assert "EcrPush" not in sids and "EcrLogin" not in sids


def test_codepipeline_uses_the_connection_and_starts_only_our_builds_and_deploys_nothing(dev):
    document = policy(dev, "pipeline-codepipeline")
    assert statement(document, "SourceConnection")["Resource"] == (
        "arn:aws:codeconnections:eu-west-1:111111111111:connection/8c2b6f0e-1f7a-4d0e-a3a1-6e4b2d9c7f11"
    )
    actions = {a for s in document["Statement"] for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("codedeploy:", "ecs:", "iam:"))}
    assert statement(document, "Builds")["Resource"] == [
        "arn:aws:codebuild:eu-west-1:123456789012:project/ecs-delivery-dev-build",
        "arn:aws:codebuild:eu-west-1:123456789012:project/ecs-delivery-dev-deploy",
        "arn:aws:codebuild:eu-west-1:123456789012:project/ecs-delivery-dev-publish",
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deploy_role_reads_ecs_and_deploys_and_only_this_stacks_services(dev, prod, stack):
    plan = {"dev": dev, "prod": prod}[stack]
    document = policy(plan, "pipeline-codebuild-deploy")
    arn = "arn:aws:{}:eu-west-1:123456789012:{}"
    # The stack's own cluster and application name every service and group once.
    assert statement(document, "ReadServices")["Resource"] == [
        arn.format("ecs", f"service/ecs-delivery-{stack}/*")
    ]
    # The services' families and roles are in the managed policies attached to the role.
    attached = {"Statement": role_statements(plan, "pipeline-codebuild-deploy")[len(document["Statement"]) :]}  # fmt: skip
    assert statement(attached, "TagNewRevisions") == {
        "Sid": "TagNewRevisions",
        "Effect": "Allow",
        "Action": "ecs:TagResource",
        "Resource": [
            arn.format("ecs", f"task-definition/ecs-delivery-{stack}-api:*"),
            # nightly-report follows api: api's ships register its revisions too.
            arn.format("ecs", f"task-definition/ecs-delivery-{stack}-nightly-report:*"),
            # dev's worker (prod has none).
            *(
                [arn.format("ecs", "task-definition/ecs-delivery-dev-mailer:*")]
                if stack == "dev"
                else []
            ),
            arn.format("ecs", f"task-definition/ecs-delivery-{stack}-web:*"),
        ],
        "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
    }
    # Describe and Register: IAM has no resource-level permissions for them.
    assert statement(document, "TaskDefinitions")["Resource"] == "*"
    assert statement(document, "Deployments") == {
        "Sid": "Deployments",
        "Effect": "Allow",
        "Action": [
            "codedeploy:CreateDeployment",
            "codedeploy:GetDeployment",
            "codedeploy:ListDeployments",
            "codedeploy:StopDeployment",
        ],
        "Resource": arn.format("codedeploy", f"deploymentgroup:ecs-delivery-{stack}/*"),
    }
    assert statement(document, "Revisions")["Resource"] == arn.format(
        "codedeploy", f"application:ecs-delivery-{stack}"
    )
    configs = statement(document, "DeploymentConfigs")
    assert configs["Action"] == "codedeploy:GetDeploymentConfig"
    assert all(":deploymentconfig:" in r for r in configs["Resource"])
    assert "-template" not in json.dumps(document) + json.dumps(attached)
    for role in ("pipeline-codebuild", "pipeline-codebuild-publish"):
        actions = [a for s in policy(plan, role)["Statement"] for a in as_list(s["Action"])]
        assert not [a for a in actions if a.startswith("ecs:")], role


def test_prod_pipeline_reads_only_the_upstream_record(prod):
    document = policy(prod, "pipeline-codepipeline")
    assert statement(document, "UpstreamPromotionRecord")["Resource"] == (
        "arn:aws:s3:::ecs-delivery-dev-123456789012-eu-west-1-artifacts/promotion/dev.zip"
    )
    assert "SourceConnection" not in {s.get("Sid") for s in document["Statement"]}


def test_hook_reports_only_on_this_applications_deployment_groups(dev):
    document = policy(dev, "validation-hook")
    assert statement(document, "ReportVerdict") == {
        "Sid": "ReportVerdict",
        "Effect": "Allow",
        "Action": ["codedeploy:GetDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus"],
        "Resource": [
            "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:ecs-delivery-dev/*"
        ],
    }
    logs = statement(document, "Logs")["Resource"]
    assert logs == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ecs-delivery-dev-validation-hook:*"
    ]

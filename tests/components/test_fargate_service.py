"""FargateService component: CODE_DEPLOY service, task definition, roles, security group, scaling."""

from __future__ import annotations

import json

from ecs_delivery.components.fargate_service import FargateService, FargateServiceArgs
from ecs_delivery.components.task_definition import Container
from tests.support.registrations import containers, inputs, policy, register

SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def test_service_uses_the_codedeploy_controller_and_starts_on_the_blue_target_group(dev_plan):
    web = inputs(dev_plan, SERVICE, "web")
    assert web["deploymentController"] == {"type": "CODE_DEPLOY"}
    assert web["launchType"] == "FARGATE"
    assert web["loadBalancers"] == [
        {
            "containerName": "web",
            "containerPort": 8080,
            "targetGroupArn": web["loadBalancers"][0]["targetGroupArn"],
        }
    ]
    assert "alb-web-blue" in web["loadBalancers"][0]["targetGroupArn"]


def test_service_ignores_exactly_the_fields_codedeploy_owns(dev_plan, prod_plan):
    # AWS refuses UpdateService for these on a CODE_DEPLOY service; the rollout's AppSpec
    # carries taskDefinition, networkConfiguration, platformVersion and the strategy.
    codedeploy_owned = [
        "taskDefinition",
        "loadBalancers",
        "networkConfiguration",
        "platformVersion",
        "capacityProviderStrategies",
    ]
    # Set at creation only: the provider replaces a service to change its launch type.
    creation_only = ["launchType"]
    assert dev_plan.named(SERVICE, "web").options["ignoreChanges"] == [
        *codedeploy_owned,
        *creation_only,
    ]
    # With autoscaling, the scaler owns the desired count too.
    assert prod_plan.named(SERVICE, "web").options["ignoreChanges"] == [
        *codedeploy_owned,
        *creation_only,
        "desiredCount",
    ]


def test_tasks_run_in_private_subnets_without_a_public_ip(dev_plan):
    network = inputs(dev_plan, SERVICE, "api")["networkConfiguration"]
    assert network["assignPublicIp"] is False
    assert network["subnets"] == ["network-private-eu-west-1a-id", "network-private-eu-west-1b-id"]
    assert network["securityGroups"] == ["api-tasks-id"]


def test_service_is_created_after_its_listener_rules(dev_plan):
    depends = dev_plan.named(SERVICE, "web").options["dependsOn"]
    assert any(d.endswith("::alb-web-production") for d in depends)
    assert any(d.endswith("::alb-web-test") for d in depends)


def test_service_security_group_admits_only_the_load_balancer_on_the_container_port(dev_plan):
    rules = [
        r.inputs
        for r in dev_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == "web-tasks-id"
    ]
    assert rules == [
        {
            "securityGroupId": "web-tasks-id",
            "referencedSecurityGroupId": "alb-alb-id",
            "ipProtocol": "tcp",
            "fromPort": 8080,
            "toPort": 8080,
            "description": "Container port from the load balancer",
        }
    ]


def test_task_definition_is_fargate_awsvpc_with_explicit_size_and_keeps_old_revisions(dev_plan):
    task = inputs(dev_plan, TASK, "api")
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("512", "1024")
    assert task["skipDestroy"] is True
    # The template lives outside the service's own family: nothing that deploys "the
    # latest revision of the family" can pick up its placeholder image.
    assert task["family"] == "ecs-delivery-dev-api-template"
    assert task["executionRoleArn"] != task["taskRoleArn"]


def test_container_is_read_only_non_root_logged_and_reads_secrets_by_arn(dev_plan):
    (api,) = containers(dev_plan, "api")
    assert api["readonlyRootFilesystem"] is True and api["user"] == "1000"
    assert api["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/ecs-delivery-dev-api",
            "awslogs-region": "eu-west-1",
            "awslogs-stream-prefix": "api",
        },
    }
    assert api["secrets"] == [
        {
            "name": "DATABASE_URL",
            "valueFrom": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:dev/api/database-url-AbCdEf",
        }
    ]
    assert all(e["name"] != "DATABASE_URL" for e in api["environment"])
    # dev's EFS volume (tests/components/test_dev_demo.py) beside the writable /tmp.
    assert api["mountPoints"] == [
        {"sourceVolume": "writable-tmp", "containerPath": "/tmp", "readOnly": False},
        {"sourceVolume": "efs-data", "containerPath": "/data", "readOnly": True},
    ]
    assert [v["name"] for v in inputs(dev_plan, TASK, "api")["volumes"]] == [
        "writable-tmp",
        "efs-data",
    ]


def test_log_group_has_retention(dev_plan, prod_plan):
    assert inputs(dev_plan, "aws:cloudwatch/logGroup:LogGroup", "api")["retentionInDays"] == 14
    assert inputs(prod_plan, "aws:cloudwatch/logGroup:LogGroup", "api")["retentionInDays"] == 365


def test_execution_role_may_write_its_logs_and_read_only_the_listed_secrets(dev_plan):
    statements = {s["Sid"]: s for s in policy(dev_plan, "api-execution")["Statement"]}
    assert sorted(statements) == ["EcrLogin", "EcrPull", "Logs", "Secrets"]
    assert statements["EcrPull"]["Resource"] == [
        "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-dev/api"
    ]
    assert statements["Secrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert statements["Secrets"]["Resource"] == [
        "arn:aws:secretsmanager:eu-west-1:111111111111:secret:dev/api/database-url-AbCdEf"
    ]
    assert statements["Logs"]["Resource"] == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/ecs-delivery-dev-api:*"
    ]
    # web lists no secrets, so its role reads none.
    assert [s["Sid"] for s in policy(dev_plan, "web-execution")["Statement"]] == [
        "Logs",
        "EcrLogin",
        "EcrPull",
    ]


def test_task_and_execution_roles_trust_only_ecs_tasks_of_this_account(dev_plan):
    for name in ("api-execution", "api-task"):
        trust = json.loads(inputs(dev_plan, "aws:iam/role:Role", name)["assumeRolePolicy"])
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    # The application role holds only what its options need: mailer's, which has no EFS, ECS
    # Exec or sidecar option, may only consume the queue it scales on (api's mounts EFS:
    # tests/components/test_dev_demo.py).
    statements = json.loads(
        inputs(dev_plan, "aws:iam/rolePolicy:RolePolicy", "mailer-task")["policy"]
    )
    assert [s["Sid"] for s in statements["Statement"]] == ["ConsumeQueue"]


def test_cluster_has_container_insights_and_a_deterministic_name(dev_plan):
    cluster = inputs(dev_plan, "aws:ecs/cluster:Cluster", "cluster")
    assert cluster["name"] == "ecs-delivery-dev"
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enabled"}]


def test_autoscaling_tracks_cpu_between_the_configured_bounds(prod_plan, dev_plan):
    target = inputs(prod_plan, "aws:appautoscaling/target:Target", "api")
    assert (target["minCapacity"], target["maxCapacity"]) == (3, 20)
    assert target["resourceId"] == "service/ecs-delivery-prod/api"
    scaling = inputs(prod_plan, "aws:appautoscaling/policy:Policy", "api-cpu")[
        "targetTrackingScalingPolicyConfiguration"
    ]
    assert scaling["targetValue"] == 55
    assert scaling["predefinedMetricSpecification"] == {
        "predefinedMetricType": "ECSServiceAverageCPUUtilization"
    }
    # dev scales only its worker, on its queue (tests/components/test_workers.py).
    assert [t.name for t in dev_plan.of_type("aws:appautoscaling/target:Target")] == ["mailer"]


def _library_service(**given) -> FargateServiceArgs:
    """Only what a library user must decide: the rest is derived or the config's default."""
    return FargateServiceArgs(
        cluster_arn="arn:aws:ecs:eu-west-2:123456789012:cluster/library-test",
        container=Container(name="web", image="public.ecr.aws/nginx/nginx:1.27", port=8080),
        subnet_ids=["subnet-0a", "subnet-0b"],
        target_group_arn="arn:aws:elasticloadbalancing:eu-west-2:123456789012:targetgroup/web/1",
        vpc_id="vpc-0123",
        vpc_cidr="10.1.0.0/16",
        load_balancer_security_group_id="sg-0alb",
        **given,
    )


def test_an_omitted_name_region_or_account_is_derived_from_naming_and_the_aws_provider():
    built: list[FargateService] = []
    # register() runs project "library", stack "test"; the provider's region is eu-west-2.
    plan = register(
        lambda: built.append(FargateService("web", _library_service())), region="eu-west-2"
    )
    args = built[0].args
    assert (args.cluster_name, args.service_name, args.family, args.template_family) == (
        "library-test",
        "web",
        "library-test-web",
        "library-test-web-template",
    )
    assert (args.region, args.account_id) == ("eu-west-2", "123456789012")
    assert inputs(plan, SERVICE, "web")["name"] == "web"
    assert inputs(plan, TASK, "web")["family"] == "library-test-web-template"
    assert (
        containers(plan, "web")[0]["logConfiguration"]["options"]["awslogs-region"] == "eu-west-2"
    )
    # The execution role trusts ECS tasks of the provider's account only.
    trust = json.loads(inputs(plan, "aws:iam/role:Role", "web-execution")["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }


def test_given_names_region_and_account_are_kept():
    built: list[FargateService] = []
    given = dict(
        cluster_name="shop",
        service_name="shop-web",
        family="shop-web",
        template_family="shop-web-template",
        region="eu-west-1",
        account_id="210987654321",
    )
    plan = register(
        lambda: built.append(FargateService("web", _library_service(**given))), region="eu-west-2"
    )
    assert {key: getattr(built[0].args, key) for key in given} == given
    assert inputs(plan, SERVICE, "web")["name"] == "shop-web"
    assert inputs(plan, TASK, "web")["family"] == "shop-web-template"
    assert (
        containers(plan, "web")[0]["logConfiguration"]["options"]["awslogs-region"] == "eu-west-1"
    )
    trust = json.loads(inputs(plan, "aws:iam/role:Role", "web-execution")["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "210987654321"}
    }

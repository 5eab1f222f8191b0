"""Each service gets a rollout resource: Pulumi-owned changes go out through CodeDeploy blue/green."""

from __future__ import annotations

from ecs_delivery.components.config.containers import FIRELENS_IMAGE
from tests.conftest import make_plan

ROLLOUT = "pulumi-python:dynamic/rollout:ServiceRollout"


def test_every_service_has_a_rollout_of_its_pulumi_task_definition_through_its_deployment_group(
    dev_plan,
):
    rollouts = {r.name: r for r in dev_plan.of_type(ROLLOUT)}
    assert sorted(rollouts) == ["api-rollout", "mailer-rollout", "web-rollout"]
    web = rollouts["web-rollout"]
    # __provider is the pickled provider the engine runs (the same code as src/ecs_delivery/runtime/rollout.py).
    assert {k: v for k, v in web.inputs.items() if k != "__provider"} == {
        "application_name": "ecs-delivery-dev",
        "cluster_name": "ecs-delivery-dev",
        "container_name": "web",
        "container_port": 8080,
        "deployment_group_name": "web",
        "region": "eu-west-1",
        "service_name": "web",
        "template_arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-delivery-dev-web-template:1",
        "family": "ecs-delivery-dev-web",
        "subnets": ["network-private-eu-west-1a-id", "network-private-eu-west-1b-id"],
        "security_groups": ["web-tasks-id"],
        "assign_public_ip": False,
        "platform_version": "LATEST",
        # web's FireLens router (Pulumi.dev.yaml): its image is pinned in code, so Pulumi owns it.
        "pinned_images": {"log-router": FIRELENS_IMAGE},
        "validation_hook": "ecs-delivery-dev-validation-hook",
        "engine": "codedeploy",
        "timeout_minutes": 30,
        "end_termination_wait": False,
        "wait": True,
    }
    depends = web.options["dependsOn"]
    assert any(d.endswith("aws:ecs/service:Service::web") for d in depends)
    assert any(
        d.endswith("aws:codedeploy/deploymentGroup:DeploymentGroup::codedeploy-web")
        for d in depends
    )
    assert any(d.endswith("aws:lambda/function:Function::validation-hook") for d in depends)
    assert web.parent.endswith("ecs-delivery:service:FargateService::web")


def test_rollout_waits_as_configured_per_stack(prod_plan):
    api = prod_plan.named(ROLLOUT, "api-rollout").inputs
    assert (api["wait"], api["timeout_minutes"], api["container_port"]) == (True, 90, 8000)


def test_rollout_credentials_come_from_the_stacks_aws_configuration_not_the_shell():
    role = "arn:aws:iam::123456789012:role/deployer"
    plan = make_plan(
        "dev", overrides={"aws:profile": "platform-dev", "aws:assumeRoles": [{"roleArn": role}]}
    )
    web = plan.named(ROLLOUT, "web-rollout").inputs
    assert (web["region"], web["profile"], web["role_arn"]) == ("eu-west-1", "platform-dev", role)


def test_going_from_two_to_three_zones_rolls_the_new_network_out_through_codedeploy():
    """Done-when of issue 8: AWS refuses UpdateService for networkConfiguration on a
    CODE_DEPLOY service, so the new subnets must travel in the rollout (its AppSpec), and every
    service input that changes must be one the service ignores."""
    live = {"services": {"web": {"containers": {"web": "registry/web@sha256:" + "1" * 64}}}}
    two = make_plan("dev", environment=live)
    three = make_plan(
        "dev",
        environment=live,
        overrides={"network": {"cidr": "10.20.0.0/16", "availabilityZones": 3}},
    )

    before = two.named(ROLLOUT, "web-rollout").inputs
    after = three.named(ROLLOUT, "web-rollout").inputs
    assert len(before["subnets"]) == 2 and len(after["subnets"]) == 3
    assert {k for k in after if after[k] != before.get(k)} == {"subnets"}

    service_before = two.named("aws:ecs/service:Service", "web")
    service_after = three.named("aws:ecs/service:Service", "web")
    changed = {
        k for k in service_after.inputs if service_after.inputs[k] != service_before.inputs.get(k)
    }
    assert changed == {"networkConfiguration"}
    assert changed <= set(service_after.options["ignoreChanges"])


def test_adding_fargate_spot_to_a_running_service_rolls_the_strategy_out_through_codedeploy():
    """Issue 18, item 5: UpdateService refuses a strategy on a CODE_DEPLOY service, so a
    strategy configured on a running service travels in the rollout (its AppSpec); the
    service ignores it after creation, and nothing else of the rollout changes."""
    live = {"services": {"web": {"containers": {"web": "registry/web@sha256:" + "1" * 64}}}}
    strategy = [{"provider": "FARGATE", "base": 1}, {"provider": "FARGATE_SPOT", "weight": 3}]
    before = make_plan("dev", environment=live)
    after = make_plan(
        "dev", environment=live, overrides={"services.web.capacityProviders": strategy}
    )

    old, new = (
        before.named(ROLLOUT, "web-rollout").inputs,
        after.named(ROLLOUT, "web-rollout").inputs,
    )
    assert old.get("capacity_providers") is None
    assert new["capacity_providers"] == [
        {"provider": "FARGATE", "weight": 1, "base": 1},
        {"provider": "FARGATE_SPOT", "weight": 3, "base": 0},
    ]
    assert {k for k in new if new[k] != old.get(k)} == {"capacity_providers"}
    service = after.named("aws:ecs/service:Service", "web")
    assert "capacityProviderStrategies" in service.options["ignoreChanges"]

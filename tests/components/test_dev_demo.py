"""Issue 18, "Done when": the committed Pulumi.dev.yaml demonstrates the service runtime. Its plan
holds a traffic container with a sidecar, container health checks, a worker without a load
balancer, an EFS volume and Fargate Spot (each option's own tests: test_service_runtime.py,
test_sidecars.py, test_workers.py; every task definition against RegisterTaskDefinition:
test_service_runtime.py::test_every_task_definition_with_the_runtime_options_fits_register_task_definition).
"""

from __future__ import annotations

import pytest

from ecs_delivery.offline.plan import Plan
from tests.conftest import make_plan
from tests.support.registrations import containers, inputs, policy

TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
ACCOUNT = "123456789012"
DIGEST = "@sha256:" + "7" * 64
# What Pulumi.dev.yaml names outside the stack (like its secret ARNs).
FS = "fs-0a1b2c3d4e5f60718"
ACCESS_POINT = "fsap-0a1b2c3d4e5f60718"


@pytest.fixture(scope="module")
def shipped() -> Plan:
    """dev after a first ship of every service: released images, so the health checks are on
    (a bootstrap image need not have the check's command)."""
    live = {
        name: {
            "containers": {name: f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop/{name}{DIGEST}"}
        }
        for name in ("web", "api", "mailer")
    }
    return make_plan("dev", environment={"services": live})


def test_dev_web_runs_its_traffic_container_first_and_a_firelens_sidecar_beside_it(dev_plan):
    web, router = containers(dev_plan, "web")
    assert (web["name"], router["name"]) == ("web", "log-router")
    assert web["portMappings"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]
    assert web["logConfiguration"]["logDriver"] == "awsfirelens"
    assert web["dependsOn"] == [{"containerName": "log-router", "condition": "START"}]
    assert router["firelensConfiguration"]["type"] == "fluentbit"
    assert "portMappings" not in router or router["portMappings"] == []
    # The target group and the deployments name the traffic container, never the sidecar.
    (balanced,) = inputs(dev_plan, SERVICE, "web")["loadBalancers"]
    assert (balanced["containerName"], balanced["containerPort"]) == ("web", 8080)


def test_dev_web_has_its_container_health_check_once_it_runs_a_released_image(shipped):
    web, _router = containers(shipped, "web")
    assert web["healthCheck"] == {
        "command": [
            "CMD-SHELL",
            "wget -q -O /dev/null http://localhost:8080/health || exit 1",
        ],
        "interval": 30,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 15,
    }


def test_dev_mailer_is_a_worker_without_target_groups_listener_rules_or_deployment_group(
    dev_plan,
):
    service = inputs(dev_plan, SERVICE, "mailer")
    assert service["deploymentController"] == {"type": "ECS"}
    assert "loadBalancers" not in service
    (mailer,) = containers(dev_plan, "mailer")
    assert "portMappings" not in mailer or mailer["portMappings"] == []
    load_balancer_parts = [
        r.name
        for kind in (
            "aws:lb/targetGroup:TargetGroup",
            "aws:lb/listenerRule:ListenerRule",
            "aws:codedeploy/deploymentGroup:DeploymentGroup",
        )
        for r in dev_plan.of_type(kind)
        if "mailer" in r.name
    ]
    assert load_balancer_parts == []
    # The web services keep theirs.
    assert {r.name for r in dev_plan.of_type("aws:lb/targetGroup:TargetGroup")} == {
        "alb-api-blue",
        "alb-api-green",
        "alb-web-blue",
        "alb-web-green",
    }
    # Scaled on its queue's backlog per task.
    target = inputs(dev_plan, "aws:appautoscaling/target:Target", "mailer")
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 4)
    queue = inputs(dev_plan, "aws:appautoscaling/policy:Policy", "mailer-queue")
    assert queue["targetTrackingScalingPolicyConfiguration"]["targetValue"] == 100


def test_dev_api_mounts_its_efs_volume_with_tls_and_iam_through_the_access_point(dev_plan):
    (efs,) = [v for v in inputs(dev_plan, TASK, "api")["volumes"] if "efsVolumeConfiguration" in v]
    assert efs == {
        "name": "efs-data",
        "efsVolumeConfiguration": {
            "fileSystemId": FS,
            "rootDirectory": "/",
            "transitEncryption": "ENABLED",
            "authorizationConfig": {"accessPointId": ACCESS_POINT, "iam": "ENABLED"},
        },
    }
    (api,) = containers(dev_plan, "api")
    assert {"sourceVolume": "efs-data", "containerPath": "/data", "readOnly": True} in api[
        "mountPoints"
    ]
    # Read-only: the task role may mount, not write, and only through the access point.
    assert policy(dev_plan, "api-task")["Statement"] == [
        {
            "Sid": "Efs0",
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount"],
            "Resource": f"arn:aws:elasticfilesystem:eu-west-1:{ACCOUNT}:file-system/{FS}",
            "Condition": {
                "StringEquals": {
                    "elasticfilesystem:AccessPointArn": (
                        f"arn:aws:elasticfilesystem:eu-west-1:{ACCOUNT}:access-point/{ACCESS_POINT}"
                    )
                }
            },
        }
    ]


def test_dev_mailer_runs_on_fargate_spot_on_a_cluster_with_both_fargate_providers(dev_plan):
    mailer = dev_plan.named(SERVICE, "mailer")
    assert "launchType" not in mailer.inputs
    assert mailer.inputs["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}
    ]
    association = dev_plan.named(
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster"
    )
    assert association.inputs["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert association.urn in mailer.options["dependsOn"]
    # The web services keep the launch type.
    assert {inputs(dev_plan, SERVICE, n)["launchType"] for n in ("api", "web")} == {"FARGATE"}

"""The service runtime (issue 18): container health checks, ECS Exec, EFS volumes, richer
autoscaling, each planned under the mock runtime with its exact inputs."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.components.config import ConfigError, parse
from ecs_delivery.offline.plan import Plan
from tests.conftest import make_plan
from tests.support import shapes
from tests.support.plans import documents
from tests.support.registrations import containers, inputs, policy

from .config.test_config_errors import with_

TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
POLICY = "aws:appautoscaling/policy:Policy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DIGEST = "@sha256:" + "3" * 64
LIVE = {
    name: {"containers": {name: f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop/{name}{DIGEST}"}}
    for name in ("web", "api")
}
FS = "fs-0123456789abcdef0"
ACCESS_POINT = "fsap-0123456789abcdef0"
SHARED_FS = "fs-0fedcba9876543210"
MOUNT_TARGETS = "sg-0123456789abcdef0"
FS_ARN = f"arn:aws:elasticfilesystem:eu-west-1:{ACCOUNT}:file-system/{FS}"
HEALTH = ["CMD-SHELL", "test -f /tmp/ready"]


@pytest.fixture(scope="module")
def runtime() -> Plan:
    """dev running released images (no bootstrap), with the stack key, EFS on api, api
    scaling on memory and requests with a night schedule, a checked scheduled task."""
    return make_plan(
        "dev",
        environment={"services": LIVE},
        overrides={
            "kms": {"keyArn": KEY},
            "services.api.volumes": [
                {
                    "fileSystemId": FS,
                    "accessPointId": ACCESS_POINT,
                    "containerPath": "/data",
                    "readOnly": False,
                    "mountTargetSecurityGroupId": MOUNT_TARGETS,
                },
                {"fileSystemId": SHARED_FS, "containerPath": "/shared"},
            ],
            "services.api.autoscaling": {
                "minCapacity": 1,
                "maxCapacity": 4,
                "targetCpuPercent": None,
                "targetMemoryPercent": 70,
                "requestsPerTarget": 500,
                "scheduled": [
                    {
                        "name": "night",
                        "schedule": "cron(0 20 * * ? *)",
                        "timezone": "Europe/Berlin",
                        "minCapacity": 1,
                        "maxCapacity": 1,
                    }
                ],
            },
            "scheduledTasks.nightly-report.containerHealthCheck": {
                "command": HEALTH,
                "intervalSeconds": 60,
                "timeoutSeconds": 10,
                "retries": 2,
                "startPeriodSeconds": 30,
            },
        },
    )


def refusal(config: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(config)
    return str(caught.value)


# --- container health checks ---------------------------------------------------------


def test_container_health_check_reaches_the_container_definition_with_every_value(runtime):
    # dev gives web a FireLens router (Pulumi.dev.yaml): the traffic container comes first.
    web, _router = containers(runtime, "web")
    assert web["healthCheck"] == {
        "command": ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/health || exit 1"],
        "interval": 30,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 15,
    }
    # api states none: ECS then only sees whether the process runs.
    assert "healthCheck" not in containers(runtime, "api")[0]


def test_scheduled_task_takes_its_health_check_from_the_shared_container_config(runtime):
    (task,) = containers(runtime, "task-nightly-report")
    assert task["healthCheck"] == {
        "command": HEALTH,
        "interval": 60,
        "timeout": 10,
        "retries": 2,
        "startPeriod": 30,
    }


def test_health_check_is_off_while_the_bootstrap_image_runs(dev_plan):
    # The committed dev plan starts web on busybox, which need not have the check's command.
    web, _router = containers(dev_plan, "web")
    assert web["image"].startswith("public.ecr.aws/docker/library/busybox")
    assert "healthCheck" not in web


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("intervalSeconds", 4, "intervalSeconds: Input should be greater than or equal to 5"),
        ("timeoutSeconds", 61, "timeoutSeconds: Input should be less than or equal to 60"),
        ("retries", 0, "retries: Input should be greater than or equal to 1"),
        (
            "startPeriodSeconds",
            301,
            "startPeriodSeconds: Input should be less than or equal to 300",
        ),
        ("command", ["curl", "-f", "x"], "command: starts with 'curl'; start it with CMD"),
        ("command", ["CMD"], "command: List should have at least 2 items"),
    ],
)
def test_health_check_outside_the_ecs_ranges_is_one_line_naming_the_key(key, value, expected):
    check = {"command": HEALTH, key: value}
    for owner in ("services.web", "scheduledTasks.job"):
        config = with_(f"{owner}.containerHealthCheck", check)
        if owner.startswith("scheduledTasks"):
            config["scheduledTasks"]["job"].update(schedule="rate(1 hour)", command=["run"])
        lines = [line for line in refusal(config).splitlines() if "containerHealthCheck" in line]
        assert len(lines) == 1 and lines[0].strip().startswith(
            f"{owner}.containerHealthCheck.{expected}"
        ), lines


# --- ECS Exec ------------------------------------------------------------------------


def test_ecs_exec_is_off_unless_a_service_enables_it(prod_plan):
    assert {s.name: s.inputs["enableExecuteCommand"] for s in prod_plan.of_type(SERVICE)} == {
        "api": False,
        "web": False,
    }
    assert "configuration" not in inputs(prod_plan, "aws:ecs/cluster:Cluster", "cluster")
    assert not any("ssmmessages" in json.dumps(document) for _, _, document in documents(prod_plan))


def test_ecs_exec_grants_the_ssm_channels_and_session_logs_to_that_services_task_role_only(
    dev_plan,
):
    assert inputs(dev_plan, SERVICE, "web")["enableExecuteCommand"] is True
    assert inputs(dev_plan, SERVICE, "api")["enableExecuteCommand"] is False
    assert policy(dev_plan, "web-task")["Statement"] == [
        {
            "Sid": "ExecChannels",
            "Effect": "Allow",
            "Action": [
                "ssmmessages:CreateControlChannel",
                "ssmmessages:CreateDataChannel",
                "ssmmessages:OpenControlChannel",
                "ssmmessages:OpenDataChannel",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ExecLogGroups",
            "Effect": "Allow",
            "Action": ["logs:DescribeLogGroups"],
            "Resource": f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:*",
        },
        {
            "Sid": "ExecLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": [
                f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/ecs-delivery-dev/exec:*"
            ],
        },
        # web's FireLens router (Pulumi.dev.yaml) writes its logs as the task role.
        {
            "Sid": "FireLensLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/ecs-delivery-dev-web:*"],
        },
    ]
    holders = [name for _, name, doc in documents(dev_plan) if "ssmmessages" in json.dumps(doc)]
    assert holders == ["web-task"]


def test_cluster_logs_exec_sessions_to_its_own_group_encrypted_with_the_stack_key(
    runtime, dev_plan
):
    group = inputs(runtime, "aws:cloudwatch/logGroup:LogGroup", "cluster-exec")
    assert (group["name"], group["retentionInDays"], group["kmsKeyId"]) == (
        "/ecs/ecs-delivery-dev/exec",
        14,
        KEY,
    )
    assert inputs(runtime, "aws:ecs/cluster:Cluster", "cluster")["configuration"] == {
        "executeCommandConfiguration": {
            "logging": "OVERRIDE",
            "logConfiguration": {
                "cloudWatchLogGroupName": "/ecs/ecs-delivery-dev/exec",
                "cloudWatchEncryptionEnabled": True,
            },
        }
    }
    # Without a stack key: CloudWatch Logs' own encryption, and the agent does not demand a key.
    assert "kmsKeyId" not in inputs(dev_plan, "aws:cloudwatch/logGroup:LogGroup", "cluster-exec")
    log = inputs(dev_plan, "aws:ecs/cluster:Cluster", "cluster")["configuration"]
    assert (
        log["executeCommandConfiguration"]["logConfiguration"]["cloudWatchEncryptionEnabled"]
        is False
    )


def test_exec_on_a_read_only_root_gives_the_ssm_agent_writable_volumes(runtime):
    # dev gives web a FireLens router (Pulumi.dev.yaml): the traffic container comes first.
    web, _router = containers(runtime, "web")
    assert web["readonlyRootFilesystem"] is True
    assert web["mountPoints"] == [
        {"sourceVolume": name, "containerPath": path, "readOnly": False}
        for name, path in [
            ("writable-tmp", "/tmp"),
            ("writable-managed-agents", "/managed-agents"),
            ("writable-var-lib-amazon-ssm", "/var/lib/amazon/ssm"),
            ("writable-var-log-amazon-ssm", "/var/log/amazon/ssm"),
        ]
    ]
    # api has no exec: only its own scratch path (and its EFS mounts).
    assert [m["containerPath"] for m in containers(runtime, "api")[0]["mountPoints"]] == [
        "/tmp",
        "/data",
        "/shared",
    ]


# --- EFS -----------------------------------------------------------------------------


def test_efs_volumes_mount_with_tls_and_iam_by_default_through_the_access_point(runtime):
    volumes = inputs(runtime, TASK, "api")["volumes"]
    assert volumes == [
        {"name": "writable-tmp"},
        {
            "name": "efs-data",
            "efsVolumeConfiguration": {
                "fileSystemId": FS,
                "rootDirectory": "/",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {"accessPointId": ACCESS_POINT, "iam": "ENABLED"},
            },
        },
        {
            "name": "efs-shared",
            "efsVolumeConfiguration": {
                "fileSystemId": SHARED_FS,
                "rootDirectory": "/",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {"iam": "ENABLED"},
            },
        },
    ]
    mounts = containers(runtime, "api")[0]["mountPoints"]
    assert mounts[1:] == [
        {"sourceVolume": "efs-data", "containerPath": "/data", "readOnly": False},
        {"sourceVolume": "efs-shared", "containerPath": "/shared", "readOnly": True},
    ]


def test_task_role_mounts_each_file_system_only_and_writes_only_where_not_read_only(runtime):
    assert policy(runtime, "api-task")["Statement"] == [
        {
            "Sid": "Efs0",
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            "Resource": FS_ARN,
            "Condition": {
                "StringEquals": {
                    "elasticfilesystem:AccessPointArn": f"arn:aws:elasticfilesystem:eu-west-1:{ACCOUNT}:access-point/{ACCESS_POINT}"
                }
            },
        },
        {
            "Sid": "Efs1",
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount"],
            "Resource": f"arn:aws:elasticfilesystem:eu-west-1:{ACCOUNT}:file-system/{SHARED_FS}",
        },
    ]


def test_nfs_is_admitted_into_the_mount_target_group_from_the_service_tasks_only(runtime):
    nfs = [r.inputs for r in runtime.of_type(INGRESS) if r.inputs.get("fromPort") == 2049]
    assert nfs == [
        {
            "securityGroupId": MOUNT_TARGETS,
            "referencedSecurityGroupId": "api-tasks-id",
            "ipProtocol": "tcp",
            "fromPort": 2049,
            "toPort": 2049,
            "description": "NFS from the tasks of api",
        }
    ]
    assert not any("cidrIpv4" in rule for rule in nfs)


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        (
            {"fileSystemId": FS, "containerPath": "/d", "transitEncryption": False},
            "services.web.volumes.0.transitEncryption: false needs iamAuthorization: false",
        ),
        (
            {
                "fileSystemId": FS,
                "containerPath": "/d",
                "accessPointId": ACCESS_POINT,
                "rootDirectory": "/x",
            },
            "services.web.volumes.0.rootDirectory: only / with accessPointId",
        ),
        (
            {"fileSystemId": "vol-1", "containerPath": "/d"},
            "services.web.volumes.0.fileSystemId: String should match pattern",
        ),
        (
            {"fileSystemId": FS, "containerPath": "/tmp"},
            "services.web.volumes: containerPath ['/tmp'] mounted twice (or also in writablePaths)",
        ),
    ],
)
def test_an_inconsistent_efs_volume_is_one_line_naming_the_key(volume, expected):
    lines = refusal(with_("services.web.volumes", [volume])).splitlines()
    assert [line.strip() for line in lines if "volumes" in line][0].startswith(expected)


# --- autoscaling ---------------------------------------------------------------------


def _tracking(plan: Plan, name: str) -> dict:
    return inputs(plan, POLICY, name)["targetTrackingScalingPolicyConfiguration"]


def test_autoscaling_tracks_memory_and_requests_per_task_over_both_target_groups(runtime):
    names = sorted(p.name for p in runtime.of_type(POLICY) if p.name.startswith("api-"))
    assert names == ["api-memory", "api-requests"]  # targetCpuPercent: null
    assert _tracking(runtime, "api-memory") == {
        "targetValue": 70,
        "scaleInCooldown": 300,
        "scaleOutCooldown": 60,
        "predefinedMetricSpecification": {
            "predefinedMetricType": "ECSServiceAverageMemoryUtilization"
        },
    }
    requests = _tracking(runtime, "api-requests")
    assert requests["targetValue"] == 500
    # The simulated cloud's ARN suffixes of the load balancer and api's blue and green groups.
    balancer = "app/alb-6e226a9/e685bf22c2ac39cb"
    groups = [
        "targetgroup/alb-api-blue-b063f7b/bda22eb87966b1ae",
        "targetgroup/alb-api-green-b971e32/c4e6337494e4cf03",
    ]
    assert requests["customizedMetricSpecification"] == {
        "metrics": [
            *(
                {
                    "id": f"m{index}",
                    "returnData": False,
                    "metricStat": {
                        "stat": "Sum",
                        "metric": {
                            "namespace": "AWS/ApplicationELB",
                            "metricName": "RequestCountPerTarget",
                            "dimensions": [
                                {"name": "LoadBalancer", "value": balancer},
                                {"name": "TargetGroup", "value": group},
                            ],
                        },
                    },
                }
                for index, group in enumerate(groups)
            ),
            {
                "id": "requests",
                "expression": "FILL(m0, 0) + FILL(m1, 0)",
                "label": "Requests per task of api (blue + green)",
                "returnData": True,
            },
        ]
    }


def test_scheduled_scaling_sets_the_bounds_of_the_services_scalable_target(runtime):
    action = inputs(runtime, "aws:appautoscaling/scheduledAction:ScheduledAction", "api-night")
    assert action == {
        "name": "api-night",
        "serviceNamespace": "ecs",
        "scalableDimension": "ecs:service:DesiredCount",
        "resourceId": "service/ecs-delivery-dev/api",
        "schedule": "cron(0 20 * * ? *)",
        "timezone": "Europe/Berlin",
        "scalableTargetAction": {"minCapacity": 1, "maxCapacity": 1},
    }


@pytest.mark.parametrize(
    ("autoscaling", "expected"),
    [
        (
            {"minCapacity": 1, "maxCapacity": 2, "targetCpuPercent": None},
            "services.web.autoscaling.targetCpuPercent: null with no targetMemoryPercent",
        ),
        (
            {
                "minCapacity": 1,
                "maxCapacity": 2,
                "scheduled": [{"name": "n", "schedule": "rate(1 day)"}],
            },
            "services.web.autoscaling.scheduled.0.minCapacity: give minCapacity, maxCapacity or both",
        ),
        (
            {
                "minCapacity": 1,
                "maxCapacity": 2,
                "scheduled": [{"name": "n", "schedule": "cron(0 20 * * ?)", "minCapacity": 1}],
            },
            'services.web.autoscaling.scheduled.0.schedule: "cron(0 20 * * ?)" has 5 fields',
        ),
    ],
)
def test_autoscaling_without_a_metric_or_with_a_bad_schedule_is_one_line(autoscaling, expected):
    config = with_(
        "services.web", {"containerPort": 8080, "desiredCount": 1, "autoscaling": autoscaling}
    )
    lines = [line.strip() for line in refusal(config).splitlines() if "autoscaling" in line]
    assert len(lines) == 1 and lines[0].startswith(expected), lines


# --- capacity providers --------------------------------------------------------------


def test_a_capacity_provider_strategy_replaces_the_launch_type_on_a_cluster_with_both_providers():
    plan = make_plan(
        "dev",
        overrides={
            "services.api.capacityProviders": [
                {"provider": "FARGATE", "base": 1, "weight": 1},
                {"provider": "FARGATE_SPOT", "weight": 3},
            ]
        },
    )
    api = plan.named(SERVICE, "api")
    assert "launchType" not in api.inputs
    assert api.inputs["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0},
    ]
    association = plan.named("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster")
    assert association.inputs == {
        "clusterName": "ecs-delivery-dev",
        "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
    }
    assert association.urn in api.options["dependsOn"]
    # web keeps its launch type and does not wait for the association.
    web = plan.named(SERVICE, "web")
    assert web.inputs["launchType"] == "FARGATE" and "capacityProviderStrategies" not in web.inputs
    assert association.urn not in web.options["dependsOn"]


def test_without_a_strategy_the_cluster_gets_no_capacity_providers(prod_plan):
    assert prod_plan.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders") == []
    assert all(s.inputs["launchType"] == "FARGATE" for s in prod_plan.of_type(SERVICE))


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            [{"provider": "FARGATE", "base": 1}, {"provider": "FARGATE_SPOT", "base": 1}],
            "only one provider may have a base",
        ),
        ([{"provider": "FARGATE_SPOT", "weight": 0}], "every weight is 0"),
        ([{"provider": "FARGATE"}, {"provider": "FARGATE"}], "names a provider twice"),
        ([{"provider": "EC2"}], "provider: Input should be 'FARGATE' or 'FARGATE_SPOT'"),
    ],
)
def test_an_invalid_capacity_provider_strategy_is_one_line_naming_the_key(strategy, expected):
    lines = refusal(with_("services.web.capacityProviders", strategy)).splitlines()
    (line,) = [line.strip() for line in lines if "capacityProviders" in line]
    assert line.startswith("services.web.capacityProviders") and expected in line, line


# --- API shapes ----------------------------------------------------------------------


# Every task definition of each plan: dev's has a sidecar, health checks, EFS and a worker.
TASKS = {
    "runtime": ["api", "mailer", "task-nightly-report", "web"],
    "dev": ["api", "mailer", "task-nightly-report", "web"],
    "prod": ["api", "task-nightly-report", "web"],
}


@pytest.mark.parametrize("which", sorted(TASKS))
def test_every_task_definition_with_the_runtime_options_fits_register_task_definition(
    which, runtime, dev_plan, prod_plan
):
    plan = {"runtime": runtime, "dev": dev_plan, "prod": prod_plan}[which]
    tasks = plan.of_type(TASK)
    assert sorted(t.name for t in tasks) == TASKS[which]
    for task in tasks:
        request = shapes.register_task_definition(task.inputs)
        assert shapes.validation_errors("ecs", "RegisterTaskDefinition", request) == "", task.name


def _pascal(value):
    """Provider inputs of Application Auto Scaling in the API's PascalCase (same names);
    whole numbers as int (the wire format has only floats)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key[0].upper() + key[1:]: _pascal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_pascal(item) for item in value]
    return value


def test_scaling_policies_and_scheduled_actions_fit_the_application_auto_scaling_api(runtime):
    for reg in runtime.of_type(POLICY):
        i = reg.inputs
        request = {
            "PolicyName": reg.name,
            "ServiceNamespace": i["serviceNamespace"],
            "ResourceId": i["resourceId"],
            "ScalableDimension": i["scalableDimension"],
            "PolicyType": i["policyType"],
            "TargetTrackingScalingPolicyConfiguration": _pascal(
                i["targetTrackingScalingPolicyConfiguration"]
            ),
        }
        assert (
            shapes.validation_errors("application-autoscaling", "PutScalingPolicy", request) == ""
        )
    (action,) = runtime.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    request = {k[0].upper() + k[1:]: v for k, v in action.inputs.items() if k != "name"}
    request["ScheduledActionName"] = action.inputs["name"]
    request["ScalableTargetAction"] = _pascal(action.inputs["scalableTargetAction"])
    assert shapes.validation_errors("application-autoscaling", "PutScheduledAction", request) == ""

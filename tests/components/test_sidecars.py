"""Several containers per task (issue 18, item 1): sidecars, the FireLens log router and the
OpenTelemetry collector, planned under the mock runtime with their exact inputs."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError, parse
from ecs_delivery.components.config.containers import FIRELENS_IMAGE, OTEL_IMAGE
from ecs_delivery.components.task_definition import HARDENING_OPT_OUT_TAG
from ecs_delivery.offline.plan import Plan
from tests.conftest import make_plan
from tests.support import shapes
from tests.support.registrations import containers, inputs, policy

from .config.test_config_errors import with_

TASK = "aws:ecs/taskDefinition:TaskDefinition"
ROLLOUT = "pulumi-python:dynamic/rollout:ServiceRollout"
ACCOUNT = "123456789012"
LOG_GROUP = "/ecs/ecs-delivery-dev-web"
LOG_GROUP_ARN = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:{LOG_GROUP}"
DIGEST = "@sha256:" + "3" * 64
LIVE = {
    name: {"containers": {name: f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop/{name}{DIGEST}"}}
    for name in ("web", "api")
}
PROXY = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shared/proxy@sha256:{'4' * 64}"
PROXY_CERT = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:dev/proxy/cert-AbCdEf"
READY = ["CMD-SHELL", "wget -q -O /dev/null http://localhost:9901/ready || exit 1"]
PROXY_CONFIG = {
    "image": PROXY,
    "essential": True,
    "dependsOn": {"log-router": "START"},
    "portMappings": [9901],
    "environment": {"ENVOY_LOG_LEVEL": "info"},
    "secrets": {"PROXY_CERT": PROXY_CERT},
    "containerHealthCheck": {"command": READY, "intervalSeconds": 10},
    "cpu": 64,
    "memory": 128,
    "memoryReservation": 64,
}
AWSLOGS = {
    "logDriver": "awslogs",
    "options": {
        "awslogs-group": LOG_GROUP,
        "awslogs-region": "eu-west-1",
        "awslogs-stream-prefix": "web",
    },
}


def _scratch(container: str) -> list[dict]:
    return [
        {"sourceVolume": f"{container}-writable-tmp", "containerPath": "/tmp", "readOnly": False}
    ]


@pytest.fixture(scope="module")
def sidecars() -> Plan:
    """dev running released images; web (FireLens router from Pulumi.dev.yaml) with a proxy
    sidecar it waits for and the OpenTelemetry collector."""
    return make_plan(
        "dev",
        environment={"services": LIVE},
        overrides={
            "services.web.sidecars": {"proxy": PROXY_CONFIG},
            "services.web.dependsOn": {"proxy": "HEALTHY"},
            "services.web.otelCollector": True,
        },
    )


def refusal(config: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(config)
    return str(caught.value)


def test_sidecars_follow_the_traffic_container_with_their_exact_definitions(sidecars):
    web, router, collector, proxy = containers(sidecars, "web")
    assert [web["name"], web["essential"]] == ["web", True]
    assert router == {
        "name": "log-router",
        "image": FIRELENS_IMAGE,
        "essential": True,
        "environment": [],
        "secrets": [],
        "readonlyRootFilesystem": True,
        "logConfiguration": AWSLOGS,
        "linuxParameters": {"initProcessEnabled": True},
        "user": "0",
        "memoryReservation": 50,
        "firelensConfiguration": {
            "type": "fluentbit",
            "options": {"enable-ecs-log-metadata": "true"},
        },
        "mountPoints": _scratch("log-router"),
    }
    assert collector == {
        "name": "otel-collector",
        "image": OTEL_IMAGE,
        "essential": False,
        "environment": [],
        "secrets": [],
        "readonlyRootFilesystem": True,
        "logConfiguration": AWSLOGS,
        "linuxParameters": {"initProcessEnabled": True},
        "user": "1000",
        "command": ["--config=/etc/ecs/ecs-default-config.yaml"],
        "memoryReservation": 64,
        "mountPoints": _scratch("otel-collector"),
    }
    assert proxy == {
        "name": "proxy",
        "image": PROXY,
        "essential": True,
        "environment": [{"name": "ENVOY_LOG_LEVEL", "value": "info"}],
        "secrets": [{"name": "PROXY_CERT", "valueFrom": PROXY_CERT}],
        "readonlyRootFilesystem": True,
        "logConfiguration": AWSLOGS,
        "linuxParameters": {"initProcessEnabled": True},
        "portMappings": [{"containerPort": 9901, "hostPort": 9901, "protocol": "tcp"}],
        "user": "1000",
        "healthCheck": {
            "command": READY,
            "interval": 10,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 0,
        },
        "dependsOn": [{"containerName": "log-router", "condition": "START"}],
        "cpu": 64,
        "memory": 128,
        "memoryReservation": 64,
        "mountPoints": _scratch("proxy"),
    }
    volumes = [v["name"] for v in inputs(sidecars, TASK, "web")["volumes"]]
    assert {"log-router-writable-tmp", "otel-collector-writable-tmp", "proxy-writable-tmp"} <= set(
        volumes
    )


def test_the_traffic_container_logs_through_firelens_after_the_router_and_its_sidecar_start(
    sidecars,
):
    (web, *_) = containers(sidecars, "web")
    assert web["logConfiguration"] == {
        "logDriver": "awsfirelens",
        "options": {
            "Name": "cloudwatch_logs",
            "region": "eu-west-1",
            "log_group_name": LOG_GROUP,
            "log_stream_prefix": "web/",
            "auto_create_group": "false",
        },
    }
    assert web["dependsOn"] == [
        {"containerName": "log-router", "condition": "START"},
        {"containerName": "proxy", "condition": "HEALTHY"},
    ]
    # The target groups and the deployments still name the traffic container.
    rollout = inputs(sidecars, ROLLOUT, "web-rollout")
    assert (rollout["container_name"], rollout["container_port"]) == ("web", 8080)


def test_every_sidecars_pinned_image_reaches_the_rollout_of_its_service_only(sidecars):
    assert inputs(sidecars, ROLLOUT, "web-rollout")["pinned_images"] == {
        "log-router": FIRELENS_IMAGE,
        "otel-collector": OTEL_IMAGE,
        "proxy": PROXY,
    }
    assert inputs(sidecars, ROLLOUT, "api-rollout")["pinned_images"] == {}


def test_the_task_role_may_write_the_routed_logs_and_telemetry_only_where_the_options_are_on(
    sidecars,
):
    statements = {s["Sid"]: s for s in policy(sidecars, "web-task")["Statement"]}
    assert statements["FireLensLogs"] == {
        "Sid": "FireLensLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [f"{LOG_GROUP_ARN}:*"],
    }
    metrics = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/ecs/application/metrics"
    assert [statements[s] for s in ("OtelTraces", "OtelMetricsGroup", "OtelMetrics")] == [
        {
            "Sid": "OtelTraces",
            "Effect": "Allow",
            "Action": [
                "xray:GetSamplingRules",
                "xray:GetSamplingStatisticSummaries",
                "xray:GetSamplingTargets",
                "xray:PutTelemetryRecords",
                "xray:PutTraceSegments",
            ],
            "Resource": "*",
        },
        {
            "Sid": "OtelMetricsGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup"],
            "Resource": metrics,
        },
        {
            "Sid": "OtelMetrics",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": f"{metrics}:*",
        },
    ]
    # mailer has neither option (nor EFS or ECS Exec): its task role may only consume the
    # queue it scales on.
    mailer = policy(sidecars, "mailer-task")["Statement"]
    assert [s["Sid"] for s in mailer] == ["ConsumeQueue"]


def test_the_execution_role_reads_a_sidecars_secret_and_pulls_its_private_image(sidecars):
    statements = {s["Sid"]: s for s in policy(sidecars, "web-execution")["Statement"]}
    assert statements["Secrets"]["Resource"] == [PROXY_CERT]
    assert (
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/shared/proxy"
        in (statements["EcrPull"]["Resource"])
    )


def test_only_a_sidecar_that_relaxes_hardening_in_config_tags_the_task(sidecars):
    # The router runs as root because FireLens requires it, which the policy pack admits.
    assert HARDENING_OPT_OUT_TAG not in inputs(sidecars, TASK, "web")["tags"]
    relaxed = make_plan(
        "dev",
        environment={"services": LIVE},
        overrides={"services.web.sidecars": {"proxy": {"image": PROXY, "user": "0"}}},
    )
    assert inputs(relaxed, TASK, "web")["tags"][HARDENING_OPT_OUT_TAG] == (
        "stack-config proxy.user"
    )


def test_a_task_with_sidecars_fits_register_task_definition(sidecars):
    request = shapes.register_task_definition(inputs(sidecars, TASK, "web"))
    assert len(request["containerDefinitions"]) == 4
    assert shapes.validation_errors("ecs", "RegisterTaskDefinition", request) == ""


def test_waiting_for_the_bootstrap_container_to_be_healthy_becomes_waiting_for_its_start():
    sidecar = {"image": PROXY, "dependsOn": {"web": "HEALTHY"}}
    overrides = {"services.web.sidecars": {"proxy": sidecar}}
    # web runs its bootstrap image in the committed dev plan: it has no health check then.
    (*_, booting) = containers(make_plan("dev", overrides=overrides), "web")
    (*_, released) = containers(
        make_plan("dev", environment={"services": LIVE}, overrides=overrides), "web"
    )
    assert booting["dependsOn"] == [{"containerName": "web", "condition": "START"}]
    assert released["dependsOn"] == [{"containerName": "web", "condition": "HEALTHY"}]


@pytest.mark.parametrize(
    ("configured", "extra", "expected"),
    [
        (
            {"proxy": {"image": PROXY, "cpu": 200}, "agent": {"image": PROXY, "cpu": 100}},
            {},
            "services.web.sidecars: cpu 300 in sidecars is more than the task's cpu (256); lower theirs or raise the task's",
        ),
        (
            {
                "proxy": {"image": PROXY, "memory": 256},
                "agent": {"image": PROXY, "memoryReservation": 256},
            },
            {},
            "services.web.sidecars: memory 512 MiB in sidecars leaves the service's container none of the task's 512; lower theirs or raise the task's",
        ),
        (
            {"proxy": {"image": PROXY, "portMappings": [8080]}},
            {},
            "services.web.sidecars.proxy.portMappings: 8080 is the service's containerPort (its traffic); use another",
        ),
        (
            {"proxy": {"image": PROXY, "dependsOn": {"wbe": "START"}}},
            {},
            "services.web.sidecars.proxy.dependsOn: 'wbe' is not another container of the task; use one of web",
        ),
        (
            {"proxy": {"image": PROXY}},
            {"dependsOn": {"proxy": "HEALTHY"}},
            "services.web.dependsOn: proxy: HEALTHY needs proxy's containerHealthCheck; add one or wait for START",
        ),
        (
            {"proxy": {"image": PROXY, "dependsOn": {"web": "START"}}},
            {"dependsOn": {"proxy": "START"}},
            "services.web.sidecars: dependsOn goes round in a circle (proxy -> web -> proxy); break it",
        ),
        (
            {"web": {"image": PROXY}},
            {},
            "services.web.sidecars.web: the name is taken by the service's own container; rename it",
        ),
        (
            {"log-router": {"image": PROXY}},
            {"logRouter": "firelens"},
            "services.web.sidecars.log-router: the name is taken by a ready-made sidecar; rename it",
        ),
        (
            {f"s{i}": {"image": PROXY} for i in range(9)},
            {"otelCollector": True},
            "services.web.sidecars: 11 containers; a task holds 10",
        ),
        (
            {"proxy": {"image": PROXY, "environment": {"API_TOKEN": "x"}}},
            {},
            "services.web.sidecars.proxy.environment.API_TOKEN: looks like a secret; move it to services.web.sidecars.proxy.secrets",
        ),
        (
            {"proxy": {"image": PROXY, "memory": 64, "memoryReservation": 128}},
            {},
            "services.web.sidecars.proxy.memoryReservation: 128 is above memory (64); lower it",
        ),
        (
            {"proxy": {"essential": True}},
            {},
            "services.web.sidecars.proxy.image: required",
        ),
        (
            {"proxy": {"image": PROXY, "dependsOn": {"web": "RUNNING"}}},
            {},
            "services.web.sidecars.proxy.dependsOn.web: Input should be 'START', 'COMPLETE', 'SUCCESS' or 'HEALTHY'",
        ),
    ],
)
def test_a_sidecar_that_does_not_fit_its_task_is_one_line_naming_the_key(
    configured, extra, expected
):
    config = with_("services.web.sidecars", configured)
    config["services"]["web"].update(extra)
    assert expected in refusal(config)


def test_a_log_router_other_than_firelens_is_refused_naming_the_choice():
    assert "services.web.logRouter: Input should be 'firelens'" in refusal(
        with_("services.web.logRouter", "fluentd")
    )

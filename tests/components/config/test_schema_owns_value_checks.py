"""Values components would refuse are refused by the config schema first, naming the key."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError, parse

from .test_config_errors import with_

ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/shop"

CASES = [
    (
        with_("deployment.alarms.periodSeconds", 10),
        "deployment.alarms.periodSeconds: 10 is shorter than the load balancer's 60-second "
        "metrics (the alarms would never see data); use 60 or 300",
    ),
    (
        with_("deployment.alarms.periodSeconds", 30),
        "deployment.alarms.periodSeconds: 30 is shorter than the load balancer's 60-second "
        "metrics (the alarms would never see data); use 60 or 300",
    ),
    (
        with_("deployment.alarms.periodSeconds", 120),
        "deployment.alarms.periodSeconds: 120 is not an alarm period here; use 60 or 300",
    ),
    (
        with_(
            "services.web",
            {"containerPort": 8080, "bootstrapImage": f"{ECR}/web:bootstrap"},
        )
        | {"network": {"natGateways": "none"}},
        "network.natGateways: none needs loadBalancer.internal: true (the validation hook in "
        "the private subnets reaches an internet-facing load balancer's test listener only "
        "through NAT); set it, or use single or perAz",
    ),
    (
        with_("network.natGateways", "none") | {"loadBalancer": {"internal": True}},
        "services.web.bootstrapImage: 'public.ecr.aws/docker/library/busybox:1.36' cannot be pulled "
        "without NAT (natGateways: none); use an image in private ECR in this region (e.g. an "
        "ECR pull-through cache repository), or natGateways single",
    ),
    (
        with_(
            "services.web.validation",
            {"probes": 100, "intervalSeconds": 60, "latencyBudgetMs": 60000},
        ),
        "services.web.validation: 100 probes may take 11940 s, more than one Lambda invocation "
        "allows (880 s); lower probes, intervalSeconds or latencyBudgetMs",
    ),
    (
        with_("services.web.validation.path", "health"),
        "services.web.validation.path: 'health' must start with '/'",
    ),
    (
        with_("services.web.cpuArchitecture", "ARM64"),
        "services.web.cpuArchitecture: ARM64 images cannot be built on pipeline.buildImage "
        "'aws/codebuild/amazonlinux2-x86_64-standard:5.0' (X86_64); use a matching CodeBuild image",
    ),
]


@pytest.mark.parametrize(("config", "expected"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_values_a_component_would_refuse_are_refused_by_the_schema(config, expected):
    with pytest.raises(ConfigError) as caught:
        parse(config)
    assert caught.value.problems == [expected]


@pytest.mark.parametrize("period", [60, 300])
def test_alarm_periods_the_load_balancer_metrics_support_are_accepted(period):
    assert (
        parse(with_("deployment.alarms.periodSeconds", period)).deployment.alarms.period_seconds
        == period
    )


def test_an_arm_build_image_builds_arm_services():
    config = with_("services.web.cpuArchitecture", "ARM64")
    config["pipeline"]["buildImage"] = "aws/codebuild/amazonlinux2-aarch64-standard:3.0"
    assert parse(config).services["web"].cpu_architecture == "ARM64"

"""The validation-hook Lambda: its settings, network path and plan-time validation."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError
from ecs_delivery.components.hook import ServiceProbe, check_probes, source_files
from ecs_delivery.lambdas.validation_hook import logic
from tests.conftest import make_plan
from tests.support.plans import EGRESS, FUNCTION, INGRESS, inputs, stack_value


def test_hook_runs_the_handler_in_the_private_subnets_with_its_own_group(dev):
    function = inputs(dev, FUNCTION, "validation-hook")
    assert function["name"] == "ecs-delivery-dev-validation-hook"
    assert (function["runtime"], function["handler"]) == ("python3.12", "handler.handler")
    assert function["vpcConfig"] == {
        "subnetIds": dev.outputs["privateSubnetIds"],
        "securityGroupIds": ["validation-hook-id"],
    }
    # 5 probes of up to 3 s, 1 s apart (19 s) + 5 s report reserve + 15 s start-up.
    assert function["timeout"] == 39
    assert function["loggingConfig"] == {
        "logFormat": "Text",
        "logGroup": "/aws/lambda/ecs-delivery-dev-validation-hook",
    }
    log_group = inputs(dev, "aws:cloudwatch/logGroup:LogGroup", "validation-hook")
    assert log_group["retentionInDays"] == 14


def test_hook_archive_holds_exactly_the_functions_source_files(dev):
    archive = dev.named(FUNCTION, "validation-hook").inputs["code"]
    assert sorted(archive.assets) == ["__init__.py", "handler.py", "logic.py"]
    assert sorted(source_files()) == ["__init__.py", "handler.py", "logic.py"]


def test_validation_config_parses_with_the_hooks_own_parser_per_deployment_group(dev):
    environment = inputs(dev, FUNCTION, "validation-hook")["environment"]["variables"]
    assert environment["TEST_URL"] == dev.outputs["testUrl"]
    parsed = logic.parse_validation_config(
        environment["VALIDATION_CONFIG"], default_url=environment["TEST_URL"]
    )
    assert sorted(parsed) == ["api", "web"]
    # Without validation.path the hook probes the health check: the test listener routes
    # /health to web, so api is probed on its own path.
    assert parsed["api"] == logic.ServiceValidation(
        url=dev.outputs["testUrl"],
        path="/api/health",
        expected_status=200,
        probes=5,
        interval_seconds=1.0,
        latency_budget_ms=1000.0,
        timeout_seconds=3.0,
    )
    assert parsed["web"].probe_url == dev.outputs["testUrl"] + "/health"


def test_test_listener_admits_the_hooks_nat_address_and_nothing_from_the_world(dev):
    # The hook reaches the internet-facing ALB through NAT: the ALB sees the NAT's address.
    admitted = [r.inputs for r in dev.of_type(INGRESS) if r.inputs.get("fromPort") == 8443]
    from_nat = [r for r in admitted if r.get("cidrIpv4", "").endswith("/32")]
    # 203.0.113.64 is the simulated cloud's public IP of the Elastic IP network-nat-eu-west-1a.
    assert [(r["securityGroupId"], r["cidrIpv4"]) for r in from_nat] == [
        ("alb-alb-id", "203.0.113.64/32")
    ]
    assert not [r for r in admitted if r.get("cidrIpv4") == "0.0.0.0/0"]
    # Nothing may open a connection to the hook.
    assert not [
        r for r in dev.of_type(INGRESS) if r.inputs["securityGroupId"] == "validation-hook-id"
    ]
    egress = sorted(
        (r.inputs["fromPort"], r.inputs["cidrIpv4"])
        for r in dev.of_type(EGRESS)
        if r.inputs["securityGroupId"] == "validation-hook-id"
    )
    assert egress == [(443, "0.0.0.0/0"), (8443, "0.0.0.0/0")]


def test_an_explicit_validation_path_and_host_routing_reach_the_hook():
    services = stack_value("dev", "services")
    services["api"]["validation"] = {"path": "/api/ready", "probes": 3}
    services["api"]["routing"] = {"pathPatterns": ["/api/*"], "hostHeaders": ["api.example.com"]}
    plan = make_plan("dev", overrides={"services": services})
    raw = inputs(plan, FUNCTION, "validation-hook")["environment"]["variables"]["VALIDATION_CONFIG"]
    api = logic.parse_validation_config(raw, default_url="http://x:8443")["api"]
    assert (api.path, api.probes, api.host_header) == ("/api/ready", 3, "api.example.com")


def test_validation_longer_than_one_lambda_invocation_is_refused():
    services = stack_value("dev", "services")
    services["web"]["validation"] = {"probes": 100, "intervalSeconds": 60, "latencyBudgetMs": 60000}
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"services": services})
    assert error.value.problems == [
        "services.web.validation: 100 probes may take 11940 s, more than one Lambda invocation "
        "allows (880 s); lower probes, intervalSeconds or latencyBudgetMs"
    ]


def test_hook_settings_the_function_would_reject_are_reported_by_config_key():
    probe = ServiceProbe(
        service="web", group_name="web", path="health", expected_status=200, probes=5,
        interval_seconds=1.0, latency_budget_ms=1000,
    )  # fmt: skip
    assert check_probes([probe]) == [
        "services.web.validation.path: must be a string starting with '/', got 'health'"
    ]


def test_a_vpc_without_nat_is_refused_naming_each_missing_piece():
    network = {**stack_value("dev", "network"), "natGateways": "none"}
    with pytest.raises(ConfigError) as error:
        make_plan("dev", overrides={"network": network})
    no_pull = (
        "cannot be pulled without NAT (natGateways: none); use an image in private ECR in this "
        "region (e.g. an ECR pull-through cache repository), or natGateways single"
    )
    assert error.value.problems == [
        "network.natGateways: none needs loadBalancer.internal: true (the validation hook in "
        "the private subnets reaches an internet-facing load balancer's test listener only "
        "through NAT); set it, or use single or perAz",
        f"services.api.bootstrapImage: 'public.ecr.aws/docker/library/busybox:1.36' {no_pull}",
        f"services.mailer.bootstrapImage: 'public.ecr.aws/docker/library/busybox:1.36' {no_pull}",
        f"services.web.bootstrapImage: 'public.ecr.aws/docker/library/busybox:1.36' {no_pull}",
        "scheduledTasks.nightly-report.bootstrapImage: "
        f"'public.ecr.aws/docker/library/busybox:1.36' {no_pull}",
    ]

"""Args fields the program fills from config have no default of their own: config owns it."""

from __future__ import annotations

import dataclasses

import pytest

from components.codedeploy import AlarmSettings, CodeDeploymentArgs
from components.ecr import ImageRepositoryArgs
from components.fargate_service import Autoscaling, Container, FargateServiceArgs
from components.hook import ValidationHookArgs
from components.load_balancer import LoadBalancerArgs
from components.network import NetworkArgs
from components.release import ReleaseArgs
from components.scheduled_task import ScheduledTaskArgs
from components.waf import Baseline

CONFIG_OWNED = {
    Container: ["readonly_root_filesystem", "user"],
    Autoscaling: ["scale_in_cooldown_seconds", "scale_out_cooldown_seconds"],
    FargateServiceArgs: [
        "log_retention_days", "health_check_grace_period_seconds", "cpu_architecture",
    ],
    ScheduledTaskArgs: ["timezone", "enabled", "retry_attempts", "log_retention_days"],
    LoadBalancerArgs: [
        "ssl_policy", "test_listener_port", "deletion_protection", "idle_timeout_seconds",
        "internal", "client_cidrs",
    ],
    NetworkArgs: ["nat_gateways", "flow_log_retention_days", "region"],
    ImageRepositoryArgs: ["keep_tagged_images", "untagged_expiry_days"],
    AlarmSettings: [f.name for f in dataclasses.fields(AlarmSettings)],
    CodeDeploymentArgs: ["alarms", "termination_wait_minutes"],
    ValidationHookArgs: ["log_retention_days", "internal_load_balancer"],
    Baseline: ["rate_limit"],
    ReleaseArgs: ["log_retention_days"],
}  # fmt: skip


@pytest.mark.parametrize("cls", list(CONFIG_OWNED), ids=lambda c: c.__name__)
def test_config_owned_fields_have_no_component_default(cls):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    restated = [
        name
        for name in CONFIG_OWNED[cls]
        if fields[name].default is not dataclasses.MISSING
        or fields[name].default_factory is not dataclasses.MISSING
    ]
    assert restated == [], f"{cls.__name__} restates config defaults for {restated}"

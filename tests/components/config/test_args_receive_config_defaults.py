"""Args fields the program fills from config have no default of their own: config owns it."""

from __future__ import annotations

import dataclasses

import pytest

from ecs_delivery.components.access_logs import LogBucketArgs
from ecs_delivery.components.artifacts import ArtifactBucketArgs
from ecs_delivery.components.codedeploy import AlarmSettings, CodeDeploymentArgs
from ecs_delivery.components.deployer import DeployerAccessArgs
from ecs_delivery.components.ecr import ImageRepositoryArgs
from ecs_delivery.components.fargate_service import Autoscaling, FargateServiceArgs
from ecs_delivery.components.hook import ValidationHookArgs
from ecs_delivery.components.load_balancer import LoadBalancerArgs
from ecs_delivery.components.network import NetworkArgs
from ecs_delivery.components.pipeline import DeliveryPipelineArgs
from ecs_delivery.components.release import ReleaseArgs
from ecs_delivery.components.scheduled_task import ScheduledTaskArgs
from ecs_delivery.components.task_definition import Container
from ecs_delivery.components.waf import Baseline

CONFIG_OWNED = {
    Container: ["readonly_root_filesystem", "user"],
    Autoscaling: ["scale_in_cooldown_seconds", "scale_out_cooldown_seconds"],
    FargateServiceArgs: [
        "log_retention_days", "health_check_grace_period_seconds", "cpu_architecture",
        "kms_key_arn",
    ],
    ScheduledTaskArgs: [
        "timezone", "enabled", "retry_attempts", "log_retention_days", "kms_key_arn",
        "cpu_architecture",
    ],
    LoadBalancerArgs: [
        "ssl_policy", "test_listener_port", "deletion_protection", "idle_timeout_seconds",
        "access_logs", "internal", "client_cidrs",
    ],
    NetworkArgs: ["nat_gateways", "flow_log_retention_days", "region", "kms_key_arn"],
    ImageRepositoryArgs: [
        "keep_tagged_images", "untagged_expiry_days", "kms_key_arn", "force_delete",
    ],
    ArtifactBucketArgs: ["kms_key_arn", "access_logs", "force_destroy"],
    LogBucketArgs: ["force_destroy"],
    DeliveryPipelineArgs: [
        "approval", "build_compute_type", "build_image", "build_timeout_minutes",
        "log_retention_days", "kms_key_arn",
    ],
    DeployerAccessArgs: ["kms_key_arn"],
    AlarmSettings: [f.name for f in dataclasses.fields(AlarmSettings)],
    CodeDeploymentArgs: ["alarms", "termination_wait_minutes", "kms_key_arn"],
    ValidationHookArgs: ["log_retention_days", "kms_key_arn", "internal_load_balancer"],
    Baseline: ["rate_limit"],
    ReleaseArgs: [
        "log_retention_days", "kms_key_arn", "access_logs", "force_destroy", "build_image",
        "build_compute_type",
    ],
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

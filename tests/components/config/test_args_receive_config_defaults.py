"""Args fields the program fills from config default to the config model's own default (read
from the model, never restated), or have none where the program derives the value."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ecs_delivery.components.access_logs import LogBucketArgs
from ecs_delivery.components.args import from_config, mirrored
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
from tools import config_docs

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


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _has_default(field: dataclasses.Field) -> bool:
    return (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    )


@pytest.mark.parametrize("cls", list(CONFIG_OWNED), ids=lambda c: c.__name__)
def test_config_owned_fields_restate_no_default(cls):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    restated = [
        name
        for name in CONFIG_OWNED[cls]
        if _has_default(fields[name]) and mirrored(fields[name]) is None
    ]
    assert restated == [], f"{cls.__name__} restates config defaults for {restated}"


@pytest.mark.parametrize("cls", config_docs.args_classes(), ids=lambda c: c.__name__)
def test_every_mirrored_default_is_the_config_models(cls):
    for field in dataclasses.fields(cls):
        if (source := mirrored(field)) is None:
            continue
        model, name = source
        expected = model.model_fields[name].get_default(call_default_factory=True)
        got = _default(field)
        if dataclasses.is_dataclass(got):  # a nested Args class mirrors a nested model
            got, expected = dataclasses.asdict(got), expected.model_dump()
        assert got == expected, f"{cls.__name__}.{field.name}: {got!r} != {model.__name__}.{name}"


def test_a_library_user_gets_the_secure_container_defaults():
    container = Container(name="web", image="nginx", port=8080)
    assert (container.readonly_root_filesystem, container.user) == (True, "1000")
    assert container.writable_paths == ["/tmp"]
    assert container.writable_paths is not Container(name="a", image="b", port=1).writable_paths


def test_a_nested_default_is_built_from_its_args_class():
    alarms = dataclasses.fields(CodeDeploymentArgs)
    field = next(f for f in alarms if f.name == "alarms")
    assert field.default_factory() == AlarmSettings()


def test_a_setting_without_a_default_cannot_be_mirrored():
    from ecs_delivery.components.config import AutoscalingConfig, ServiceConfig

    # (containerPort has a default now: None, a worker's; required only for kind web)
    with pytest.raises(
        TypeError, match=r"^AutoscalingConfig.min_capacity has no default to mirror$"
    ):
        from_config(AutoscalingConfig, "min_capacity")
    with pytest.raises(TypeError, match=r"^ServiceConfig.health_check is a model: give the Args"):
        from_config(ServiceConfig, "health_check")

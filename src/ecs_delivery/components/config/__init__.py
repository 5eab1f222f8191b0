"""Typed, validated stack configuration, split by job: the models (`values`, `network`,
`services`, `delivery`, `stack`), the checks across keys (`checks`), error formatting
(`errors`) and reading the running stack (`loader`, the only module that reads `pulumi.Config`).

Every problem in a stack file is collected and reported at once, one line per key path,
before any resource is registered (`ConfigError` is a `pulumi.RunError`, so the engine
prints the message without a traceback). Import from here: the modules are the layout.
"""

from ecs_delivery.components.config.checks import (
    CATCH_ALL_PRIORITY,
    creates_certificate,
    derived_priority,
    host_headers,
    known_regions,
    region_problems,
    routing_priorities,
    zone_name,
)
from ecs_delivery.components.config.containers import BuildConfig, ContainerConfig
from ecs_delivery.components.config.delivery import (
    CODEDEPLOY_PREDEFINED,
    PREDEFINED_SHIFT_MINUTES,
    START_AND_VALIDATE_MINUTES,
    AccessLogsConfig,
    AlarmConfig,
    CustomDeploymentConfig,
    DeploymentConfig,
    KmsConfig,
    PipelineConfig,
    ReleaseConfig,
    SourceConfig,
    TeardownConfig,
)
from ecs_delivery.components.config.errors import RETIRED_KEYS, ConfigError, validation_problems
from ecs_delivery.components.config.loader import NAMESPACE, aws_settings, load, parse
from ecs_delivery.components.config.network import LoadBalancerConfig, NetworkConfig, WafConfig
from ecs_delivery.components.config.services import (
    AutoscalingConfig,
    HealthCheckConfig,
    RoutingConfig,
    ScheduledTaskConfig,
    ServiceConfig,
    ValidationConfig,
)
from ecs_delivery.components.config.stack import StackConfig
from ecs_delivery.components.config.values import (
    ACM_ARN,
    DNS_NAME,
    ENV_NAME,
    FARGATE_MEMORY,
    IMAGE_GRAMMAR,
    KMS_KEY_ARN,
    S3_BUCKET_NAME,
    SECRET_ARN,
    SECRET_LIKE,
    SERVICE_NAME,
    STACK_NAME,
    WEB_ACL_ARN,
    Flag,
    image_reference_problems,
)

__all__ = [
    "ACM_ARN",
    "CATCH_ALL_PRIORITY",
    "CODEDEPLOY_PREDEFINED",
    "DNS_NAME",
    "ENV_NAME",
    "FARGATE_MEMORY",
    "IMAGE_GRAMMAR",
    "KMS_KEY_ARN",
    "NAMESPACE",
    "PREDEFINED_SHIFT_MINUTES",
    "RETIRED_KEYS",
    "S3_BUCKET_NAME",
    "SECRET_ARN",
    "SECRET_LIKE",
    "SERVICE_NAME",
    "STACK_NAME",
    "START_AND_VALIDATE_MINUTES",
    "WEB_ACL_ARN",
    "AccessLogsConfig",
    "AlarmConfig",
    "AutoscalingConfig",
    "BuildConfig",
    "ConfigError",
    "ContainerConfig",
    "CustomDeploymentConfig",
    "DeploymentConfig",
    "Flag",
    "HealthCheckConfig",
    "KmsConfig",
    "LoadBalancerConfig",
    "NetworkConfig",
    "PipelineConfig",
    "ReleaseConfig",
    "RoutingConfig",
    "ScheduledTaskConfig",
    "ServiceConfig",
    "SourceConfig",
    "StackConfig",
    "TeardownConfig",
    "ValidationConfig",
    "WafConfig",
    "aws_settings",
    "creates_certificate",
    "derived_priority",
    "host_headers",
    "image_reference_problems",
    "known_regions",
    "load",
    "parse",
    "region_problems",
    "routing_priorities",
    "validation_problems",
    "zone_name",
]

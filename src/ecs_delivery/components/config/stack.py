"""The model of a whole stack file: every section, and the checks that cross them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ecs_delivery.components.config import checks
from ecs_delivery.components.config.delivery import (
    AccessLogsConfig,
    DeploymentConfig,
    KmsConfig,
    PipelineConfig,
    ReleaseConfig,
    TeardownConfig,
)
from ecs_delivery.components.config.network import LoadBalancerConfig, NetworkConfig
from ecs_delivery.components.config.services import ScheduledTaskConfig, ServiceConfig
from ecs_delivery.components.config.values import CLOUD_MAP_NAMESPACE_ARN, STACK_NAME, Flag
from ecs_delivery.components.config.workers import queue_scaling_problems
from ecs_delivery.inputs import Model, Problems


class ServiceConnectNamespaceConfig(Model):
    """Where the services that enable `serviceConnect` find each other."""

    namespace_arn: str | None = Field(
        None,
        description="An existing Cloud Map namespace (HTTP or private DNS) in the stack's region. Omitted: the stack creates an HTTP namespace `<project>-<stack>` once a service enables Service Connect.",
    )

    @field_validator("namespace_arn")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and not CLOUD_MAP_NAMESPACE_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a Cloud Map namespace ARN (arn:aws:servicediscovery:<region>:<account>:namespace/ns-<id>)"
            )
        return value


class StackConfig(Model):
    """Everything a stack file may say, under the `ecs-delivery:` namespace."""

    network: NetworkConfig = Field(NetworkConfig(), description="VPC layout.")
    load_balancer: LoadBalancerConfig = Field(
        LoadBalancerConfig(), description="Application Load Balancer."
    )
    services: dict[str, ServiceConfig] = Field(
        min_length=1,
        description="Services by name (at least one); a name is 1-24 chars of a-z, 0-9 and `-`, starting with a letter.",
    )
    scheduled_tasks: dict[str, ScheduledTaskConfig] = Field(
        default_factory=dict, description="Scheduled tasks by name (distinct from service names)."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags on every resource (plus `ecs-delivery:project` and `ecs-delivery:stack`); `aws:` keys are reserved.",
    )
    log_retention_days: Literal[
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    ] = Field(
        30, description="Days container, hook and pipeline logs are kept (a CloudWatch Logs value)."
    )
    container_insights: Flag = Field(True, description="ECS Container Insights on the cluster.")
    upstream_stack: str | None = Field(
        None,
        description="The stack this environment promotes images from (`<stack>`, `<project>/<stack>` or `<org>/<project>/<stack>`).",
    )
    promote_release: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._\-]{1,128}$",
        description="The upstream release (commit of its promotion record) whose images this stack takes; safe to leave committed; needs `upstreamStack`.",
    )
    deployment: DeploymentConfig = Field(
        DeploymentConfig(), description="CodeDeploy traffic shifting and rollout waiting."
    )
    pipeline: PipelineConfig = Field(
        PipelineConfig(), description="The environment's CodePipeline."
    )
    release: ReleaseConfig | None = Field(
        None, description="Whole-environment releases from a manifest. Omitted: no release engine."
    )
    access_logs: AccessLogsConfig = Field(
        AccessLogsConfig(), description="Load balancer and S3 server access logs."
    )
    kms: KmsConfig = Field(KmsConfig(), description="Customer-managed encryption key.")
    teardown: TeardownConfig = Field(
        TeardownConfig(), description="What `pulumi destroy` may delete with its contents."
    )
    service_connect: ServiceConnectNamespaceConfig = Field(
        ServiceConnectNamespaceConfig(),
        description="The namespace of the services that enable `serviceConnect`.",
    )
    allowed_regions: list[str] = Field(
        default_factory=list,
        description="Regions accepted for `aws:region` besides the ones the installed botocore knows (a region newer than it).",
    )

    @field_validator("upstream_stack")
    @classmethod
    def _stack_ref(cls, value: str | None) -> str | None:
        if value is not None and not STACK_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a stack name; use <stack>, <project>/<stack> or <org>/<project>/<stack>"
            )
        return value

    @model_validator(mode="after")
    def _build_arch(self) -> StackConfig:
        return self._refuse(
            checks.build_arch_problems(self.services, self.pipeline, self.upstream_stack)
        )

    @model_validator(mode="after")
    def _timeouts_cover_a_deployment(self) -> StackConfig:
        return self._refuse(checks.timeout_problems(self.deployment, self.services, self.release))

    @model_validator(mode="after")
    def _ecs_engine_fits(self) -> StackConfig:
        return self._refuse(
            checks.ecs_engine_problems(self.deployment)
            + checks.service_connect_problems(self.deployment, self.services)
        )

    @model_validator(mode="after")
    def _containers_fit_their_tasks(self) -> StackConfig:
        return self._refuse(checks.container_problems(self.services))

    @model_validator(mode="after")
    def _queue_scaling_has_its_metric(self) -> StackConfig:
        return self._refuse(queue_scaling_problems(self.services, self.container_insights))

    def ships_in_minutes(self, service: str) -> int:
        """Minutes until a deployment of `service` ships, with its own traffic shifting."""
        return self.deployment.ships_in_minutes(self.services[service].deployment_config)

    def pipeline_timeout_warning(self) -> str | None:
        """The pipeline's deploy step ships every service one after another in one build: a
        warning when its build timeout cannot cover them (CodeBuild's 8-hour limit makes it a
        warning, not a refusal, for large stacks)."""
        total = sum(self.ships_in_minutes(name) for name in self.services)
        if self.pipeline.build_timeout_minutes >= total:
            return None
        return (
            f"pipeline.buildTimeoutMinutes: {self.pipeline.build_timeout_minutes} cannot cover "
            f"{len(self.services)} deployments one after another (about {total} min until they "
            f"all ship); set at least {total}, or expect the deploy stage to time out"
        )

    @model_validator(mode="after")
    def _teardown_not_in_production(self) -> StackConfig:
        return self._refuse(
            checks.teardown_problems(self.teardown, self.load_balancer, self.release)
        )

    @model_validator(mode="after")
    def _edge(self) -> StackConfig:
        lb = self.load_balancer
        return self._refuse(
            checks.edge_problems(lb, self.services)
            + checks.no_nat_problems(self.network, lb, self.services, self.scheduled_tasks)
        )

    def _refuse(self, problems: list[tuple[str, str]]) -> StackConfig:
        if problems:
            raise Problems(problems)
        return self

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if k.lower().startswith("aws:") or len(k) > 128]
        if bad:
            raise ValueError(f"tag key(s) {bad} are reserved or too long")
        return value

"""Models of how changes ship and what the stack keeps: CodeDeploy traffic shifting, the
pipeline, whole-environment releases, access logs, the KMS key, teardown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ecs_delivery.components.config.values import KMS_KEY_ARN, S3_BUCKET_NAME, Flag
from ecs_delivery.inputs import Model, Problems

CODEDEPLOY_PREDEFINED = [
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
]


class CustomDeploymentConfig(Model):
    """A traffic-shifting configuration of our own (TimeBasedCanary or TimeBasedLinear)."""

    type: Literal["canary", "linear"] = Field(
        description="`canary` (one step, then all) or `linear` (equal steps)."
    )
    percent: int = Field(ge=1, le=99, description="Traffic moved per step.")
    interval_minutes: int = Field(ge=1, le=2880, description="Minutes between steps.")


class AlarmConfig(Model):
    """CloudWatch alarms on both target groups that stop and roll back a deployment."""

    target_5xx_count: int = Field(
        5,
        ge=1,
        alias="target5xxCount",
        description="Target 5xx responses per period that stop a deployment.",
    )
    unhealthy_hosts: int = Field(1, ge=1, description="Unhealthy targets that stop a deployment.")
    latency_p99_seconds: float | None = Field(
        None,
        gt=0,
        description="p99 target response time that stops a deployment. Omitted: no latency alarm.",
    )
    evaluation_periods: int = Field(
        2, ge=1, le=10, description="Periods over the threshold before an alarm fires."
    )
    period_seconds: int = Field(
        60,
        description="Alarm period in seconds: 60 or 300 (load balancer metrics are published once a minute).",
        json_schema_extra={"enum": [60, 300]},
    )

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, value: int) -> int:
        # CloudWatch takes 10, 30 or multiples of 60, but ALB metrics come once a minute:
        # a shorter period never sees data (the CodeDeployment component refuses it too).
        if value in (10, 30):
            raise ValueError(
                f"{value} is shorter than the load balancer's 60-second metrics "
                "(the alarms would never see data); use 60 or 300"
            )
        if value not in (60, 300):
            raise ValueError(f"{value} is not an alarm period here; use 60 or 300")
        return value


# Minutes before traffic shifting starts: the replacement task set starts and passes its
# health checks, takes test traffic, and the validation hook runs. An allowance to design
# timeouts to, not a measurement.
START_AND_VALIDATE_MINUTES = 5
# Minutes of traffic shifting of the predefined configurations (linear: ten steps).
PREDEFINED_SHIFT_MINUTES = {
    "CodeDeployDefault.ECSAllAtOnce": 0,
    "CodeDeployDefault.ECSCanary10Percent5Minutes": 5,
    "CodeDeployDefault.ECSCanary10Percent15Minutes": 15,
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": 10,
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": 30,
}


# ECS-native blue/green (deployment.engine `ecs`): what ECS accepts for the mapped values.
ECS_BAKE_MAX_MINUTES = 1440
ECS_LINEAR_MIN_PERCENT = 3
# The predefined configurations as (type, percent, interval minutes); all at once: None.
PREDEFINED_SHAPES: dict[str, tuple[str, int, int] | None] = {
    "CodeDeployDefault.ECSAllAtOnce": None,
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("canary", 10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("canary", 10, 15),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("linear", 10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("linear", 10, 3),
}


# Where a manual gate may pause an ECS deployment: the stages ECS runs once per deployment.
# Not PRE_PRODUCTION_TRAFFIC_SHIFT (once before every canary or linear step) nor the two
# traffic-shift stages (ECS runs their hooks again during a rollback: a gate there would hold
# the rollback itself).
GateStage = Literal[
    "PRE_SCALE_UP", "POST_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"
]


class ManualApprovalConfig(Model):
    """A manual gate in every ECS deployment: a PAUSE lifecycle hook that waits for a person to
    continue or roll back (ContinueServiceDeployment), and rolls back on its own at the timeout."""

    enabled: Flag = Field(
        False,
        description="Pause every service's deployment at `stage` until a person continues it or rolls it back (`aws ecs continue-service-deployment`, with the stack's `manualApprovalPolicyArn`; README: ECS-native blue/green, manual approval). Needs `engine: ecs`.",
    )
    stage: GateStage = Field(
        "POST_TEST_TRAFFIC_SHIFT",
        description="Where the deployment waits: `POST_TEST_TRAFFIC_SHIFT` (green takes all test traffic, production still on blue; the validation hook runs at the same stage and must pass too), `PRE_SCALE_UP`, `POST_SCALE_UP` or `POST_PRODUCTION_TRAFFIC_SHIFT` (production on green, blue still running until the bake ends).",
    )
    timeout_minutes: int = Field(
        30,
        ge=1,
        le=1440,
        description="Minutes the gate waits; then ECS rolls the deployment back. Counted in every deployer's time (`timeoutMinutes` must cover it).",
    )


@dataclass(frozen=True)
class EcsStrategy:
    """A traffic-shifting configuration as the ECS deployment controller takes it."""

    strategy: Literal["BLUE_GREEN", "CANARY", "LINEAR"]
    # CANARY: the canary's share and its bake; LINEAR: each step's share and bake.
    percent: int | None = None
    step_minutes: int | None = None


class DeploymentConfig(Model):
    """How deployments shift traffic (through CodeDeploy or ECS itself) and how `pulumi up`
    waits for Pulumi-owned rollouts."""

    engine: Literal["codedeploy", "ecs"] = Field(
        "codedeploy",
        description="Who runs blue/green deployments: `codedeploy` (a CodeDeploy application and one deployment group per service) or `ecs` (the ECS deployment controller's own blue/green: `config`/`customConfigs` map to its BLUE_GREEN, CANARY or LINEAR strategy, `terminationWaitMinutes` to its bake time, the alarms roll back, the validation hook runs at POST_TEST_TRAFFIC_SHIFT; no CodeDeploy resources). On a stack whose services run, a switch changes their deployment controller and is refused without `switchEngineTo` (README: ECS-native blue/green).",
    )
    switch_engine_to: Literal["codedeploy", "ecs"] | None = Field(
        None,
        description="Accept that `engine` changes on a stack whose services already run: each service's deployment controller changes, which the plan otherwise refuses (README: ECS-native blue/green). It allows only a switch to the engine it names, so leaving it committed is harmless.",
    )
    config: str = Field(
        "CodeDeployDefault.ECSAllAtOnce",
        description="Traffic shifting: a predefined `CodeDeployDefault.ECS*` configuration or a `customConfigs` name.",
    )
    custom_configs: dict[str, CustomDeploymentConfig] = Field(
        default_factory=dict, description="Traffic-shifting configurations of our own, by name."
    )
    termination_wait_minutes: int = Field(
        5, ge=0, le=2880, description="How long the old (blue) tasks stay after traffic moved."
    )
    alarms: AlarmConfig = Field(
        AlarmConfig(), description="Alarms that stop and roll back a deployment."
    )
    on_termination_wait: Literal["wait", "end"] = Field(
        "wait",
        description="What a deployment does when the group's previous one is still in its termination wait: `wait` for it (the old tasks stay until then, so the previous deployment can still be stopped and rolled back), or `end` it at once (ContinueDeployment; its old tasks are deleted). For `pulumi up` rollouts, pipeline ships and releases (their deploys and their rollbacks' redeploys); with `wait` a release's deploy fails on the busy group, as on any busy group, and its rollback waits.",
    )
    manual_approval: ManualApprovalConfig = Field(
        ManualApprovalConfig(),
        description="A manual gate in each ECS deployment (a PAUSE lifecycle hook).",
    )
    wait: Flag = Field(True, description="Whether `pulumi up` waits for a rollout it started.")
    timeout_minutes: int = Field(
        60, ge=1, le=1440, description="How long `pulumi up` waits for a rollout."
    )

    def shift_minutes(self, config: str | None = None) -> int:
        """Minutes CodeDeploy spends moving production traffic with `config` (a service's
        own `deploymentConfig`; omitted: `deployment.config`)."""
        name = config or self.config
        if name in PREDEFINED_SHIFT_MINUTES:
            return PREDEFINED_SHIFT_MINUTES[name]
        custom = self.custom_configs.get(name)
        if custom is None:
            return 0  # unknown names are refused elsewhere
        # Counted like the predefined ones (ECSLinear10PercentEvery1Minutes: 10 minutes).
        steps = 1 if custom.type == "canary" else -(-100 // custom.percent)
        return steps * custom.interval_minutes

    def shape(self, config: str | None = None) -> tuple[str, int, int] | None:
        """(type, percent, interval minutes) of `config` (omitted: `deployment.config`);
        None: all at once (or an unknown name, refused elsewhere)."""
        name = config or self.config
        if name in PREDEFINED_SHAPES:
            return PREDEFINED_SHAPES[name]
        custom = self.custom_configs.get(name)
        return (custom.type, custom.percent, custom.interval_minutes) if custom else None

    def ecs_strategy(self, config: str | None = None) -> EcsStrategy:
        """`config` as the ECS controller's strategy (the one mapping of engine `ecs`)."""
        shape = self.shape(config)
        if shape is None:
            return EcsStrategy(strategy="BLUE_GREEN")
        kind, percent, minutes = shape
        strategy = "CANARY" if kind == "canary" else "LINEAR"
        return EcsStrategy(strategy=strategy, percent=percent, step_minutes=minutes)

    def gate_minutes(self) -> int:
        """The longest a deployment waits at the manual gate (ECS rolls back after it)."""
        gate = self.manual_approval
        return gate.timeout_minutes if gate.enabled and self.engine == "ecs" else 0

    def ships_in_minutes(self, config: str | None = None) -> int:
        """Until production runs the new revision (termination wait started): what every
        waiter waits for, so what every deployer's timeout must cover."""
        return START_AND_VALIDATE_MINUTES + self.gate_minutes() + self.shift_minutes(config)

    def locked_minutes(self, config: str | None = None) -> int:
        """Until the group takes the next deployment: shipped, then the termination wait."""
        return self.ships_in_minutes(config) + self.termination_wait_minutes


class SourceConfig(Model):
    """Where the first environment's pipeline takes the application source from."""

    provider: Literal["codestar", "codecommit"] = Field(
        description="`codestar` (a CodeStar/CodeConnections connection, e.g. GitHub) or `codecommit`."
    )
    repository: str = Field(
        description="Repository: `owner/name` for codestar, the repository name for codecommit."
    )
    branch: str = Field("main", description="Branch that triggers the pipeline.")
    connection_arn: str | None = Field(
        None, description="CodeStar/CodeConnections connection ARN; required for codestar."
    )

    @model_validator(mode="after")
    def _connection(self) -> SourceConfig:
        if self.provider == "codestar" and not self.connection_arn:
            raise Problems(
                [
                    (
                        "connectionArn",
                        "required for provider codestar (a CodeStar/CodeConnections connection ARN)",
                    )
                ]
            )
        if self.provider == "codestar" and "/" not in self.repository:
            raise Problems(
                [
                    (
                        "repository",
                        f"{self.repository!r} must be owner/name for a CodeStar connection",
                    )
                ]
            )
        return self


class PipelineConfig(Model):
    """The environment's CodePipeline: source (or upstream promotion record), build, deploy."""

    source: SourceConfig | None = Field(
        None,
        description="Application source of the first environment; required without `upstreamStack`, refused with it.",
    )
    approval: Flag | None = Field(
        None,
        description="Manual approval before deploy. Omitted: true when `upstreamStack` is set, false otherwise.",
    )
    build_compute_type: Literal[
        "BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"
    ] = Field("BUILD_GENERAL1_SMALL", description="CodeBuild compute size.")
    build_image: str = Field(
        "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
        description="CodeBuild image; an `aarch64` image builds ARM64 services.",
    )
    build_timeout_minutes: int = Field(30, ge=5, le=480, description="CodeBuild timeout.")
    ecr_keep_tagged_images: int = Field(
        50, ge=1, le=1000, description="Newest tagged images each ECR repository keeps."
    )
    ecr_untagged_expiry_days: int = Field(
        7, ge=1, description="Days before untagged ECR images expire."
    )
    artifact_expiry_days: int = Field(
        30,
        ge=1,
        description="Days before pipeline artifacts (current and noncurrent versions) expire.",
    )


class ReleaseConfig(Model):
    """Whole-environment releases from a manifest: Step Functions engine + release pipeline."""

    source: SourceConfig = Field(
        description="Repository holding the release manifests (as `pipeline.source`)."
    )
    manifest_path: str = Field(
        "releases/{stack}.yaml",
        description="Manifest path in that repository; `{stack}` is the stack name.",
    )
    max_parallel: int = Field(
        10, ge=1, le=40, description="Deployments the release engine runs at once."
    )
    poll_seconds: int = Field(
        30, ge=5, le=600, description="Seconds between status polls of a deployment."
    )
    deployment_timeout_minutes: int = Field(
        60, ge=5, le=1440, description="How long the engine waits for one deployment."
    )
    production: Flag = Field(
        False, description="Production: manifests must name images by digest or immutable tag."
    )


class AccessLogsConfig(Model):
    """Access logs: the load balancer's access and connection logs, S3 server access logs."""

    enabled: Flag = Field(
        True,
        description="ALB access and connection logs, and server access logs of the artifact (promotion) and release-state buckets, into one log bucket (SSE-S3: the only encryption ELB log delivery supports). Costs only S3 storage.",
    )
    bucket_name: str | None = Field(
        None,
        description="An existing log bucket in the stack's region (SSE-S3, with the ELB and S3 log-delivery grants of `components/access_logs.py`); no bucket is created. Omitted: the stack creates `<project>-<stack>-<account>-<region>-logs`.",
    )
    expiration_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Days before log objects in the created log bucket expire (noncurrent versions too).",
    )

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not S3_BUCKET_NAME.match(value) or ".." in value):
            raise ValueError(
                f"{value!r} is not an S3 bucket name (3-63 chars of a-z, 0-9, '.', '-')"
            )
        return value


class KmsConfig(Model):
    """Customer-managed KMS key for buckets, ECR, logs, CodeBuild, CodePipeline, Lambda, Step Functions."""

    key_arn: str | None = Field(
        None,
        description="An existing symmetric KMS key in the stack's region (its key policy must let this account's IAM policies use it and CloudWatch Logs encrypt with it). Omitted (and `create` false): AWS-managed encryption.",
    )
    create: Flag = Field(
        False,
        description="Create a key for this stack (rotation on, least-privilege key policy); about 1 USD a month. Not with `keyArn`.",
    )

    @field_validator("key_arn")
    @classmethod
    def _key_arn(cls, value: str | None) -> str | None:
        if value is not None and not KMS_KEY_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>); an alias ARN cannot scope IAM policies"
            )
        return value

    @model_validator(mode="after")
    def _one_key(self) -> KmsConfig:
        if self.key_arn and self.create:
            raise Problems(
                [
                    (
                        "create",
                        "not with keyArn: use the given key (remove create) or create one (remove keyArn)",
                    )
                ]
            )
        return self


class TeardownConfig(Model):
    """What `pulumi destroy` may delete with its contents (non-production stacks only)."""

    force_destroy: Flag = Field(
        False,
        description="`pulumi destroy` empties and deletes the stack's buckets (artifacts, release state, logs) and ECR repositories with their images. Refused on a production stack (`loadBalancer.deletionProtection` or `release.production`). Omitted: a non-empty bucket or repository stops the destroy.",
    )

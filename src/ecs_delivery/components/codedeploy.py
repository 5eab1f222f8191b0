"""CodeDeploy blue/green for ECS: application, deployment groups, traffic configs, alarms, roles.

One deployment group per service shifts traffic between its blue and green target groups on
the production listener, after the green tasks passed validation through the test listener.
CloudWatch alarms on both target groups stop the deployment, and a stopped or failed
deployment rolls back by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, kms, naming
from ecs_delivery.components.args import (
    checked,
    derived,
    from_config,
    provider_account,
    provider_region,
    with_defaults,
)
from ecs_delivery.components.config import AlarmConfig, DeploymentConfig, KmsConfig
from ecs_delivery.components.naming import TYPE_PREFIX, former_name

CODE_DEPLOY = "CODE_DEPLOY"
# The controller of a service that ECS deploys blue/green itself (deployment.engine ecs).
ECS_CONTROLLER = "ECS"
# CodeDeploy accepts at most 10 alarms per deployment group.
MAX_ALARMS_PER_GROUP = 10
ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
# Application Load Balancer metrics are published once a minute.
ALB_METRIC_PERIODS = (60, 300)
ECS_TASKS = "ecs-tasks.amazonaws.com"


def deployment_controller_of(service: Any) -> str | None:
    """The deployment controller a FargateService-like component builds its ECS service with.

    A component says so with a plain `deployment_controller` attribute, on itself or on its
    args. FargateService always builds CODE_DEPLOY (src/ecs_delivery/components/fargate_service.py) and does
    not expose the attribute yet, so it is recognised by type. None: cannot tell.
    """
    for holder in (service, getattr(service, "args", None), getattr(service, "_args", None)):
        value = getattr(holder, "deployment_controller", None) if holder is not None else None
        if isinstance(value, str):
            return value
    from ecs_delivery.components.fargate_service import FargateService

    return CODE_DEPLOY if isinstance(service, FargateService) else None


@dataclass(frozen=True, kw_only=True)
class TargetGroupRef:
    """One target group as CodeDeploy and CloudWatch name it (name and ARN suffix)."""

    name: pulumi.Input[str]
    arn_suffix: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class DeploymentTarget:
    """One service CodeDeploy deploys: where it runs, how traffic reaches it, what it runs as."""

    service: str  # the service's key in the stack config
    group_name: str
    cluster_name: str
    service_name: str
    deployment_controller: str | None
    # Predefined name, or the key of one of `CodeDeploymentArgs.custom_configs`.
    deployment_config: str = from_config(DeploymentConfig, "config")
    blue: TargetGroupRef
    green: TargetGroupRef
    production_listener_arn: pulumi.Input[str]
    test_listener_arn: pulumi.Input[str]
    # The task and execution roles: CodeDeploy passes them when it creates the task set.
    role_arns: list[pulumi.Input[str]]
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # `ecs`: ECS deploys the service itself; only its alarms are made here (no group, no role).
    engine: Literal["codedeploy", "ecs"] = from_config(DeploymentConfig, "engine")

    @property
    def expected_controller(self) -> str:
        return CODE_DEPLOY if self.engine == "codedeploy" else ECS_CONTROLLER

    @classmethod
    def of(cls, name: str, service: Any, load_balancer: Any, **settings: Any) -> DeploymentTarget:
        """The target of FargateService `service` (config key `name`) behind `load_balancer`'s
        target groups of `name`: where it runs, its roles and its ECS service from the
        component; `settings` sets the rest (group_name: naming.deployment_group(name))."""
        pair = load_balancer.target_groups[name]
        args = getattr(service, "args", None)  # a FargateService-like one may give them instead
        derived: dict[str, Any] = {
            "service": name,
            "group_name": naming.deployment_group(name),
            "cluster_name": settings.get("cluster_name") or args.cluster_name,
            "service_name": settings.get("service_name") or args.service_name,
            "deployment_controller": deployment_controller_of(service),
            "blue": TargetGroupRef(name=pair.blue.name, arn_suffix=pair.blue.arn_suffix),
            "green": TargetGroupRef(name=pair.green.name, arn_suffix=pair.green.arn_suffix),
            "production_listener_arn": load_balancer.production_listener_arn,
            "test_listener_arn": load_balancer.test_listener_arn,
            "role_arns": [service.task_role_arn, service.execution_role_arn],
            "depends_on": [service.service],
        }
        return cls(**{**derived, **settings})


@dataclass(frozen=True, kw_only=True)
class AlarmSettings:
    """Thresholds of the alarms that stop and roll back a deployment (deployment.alarms)."""

    target_5xx_count: int = from_config(AlarmConfig, "target_5xx_count")
    unhealthy_hosts: int = from_config(AlarmConfig, "unhealthy_hosts")
    latency_p99_seconds: float | None = from_config(AlarmConfig, "latency_p99_seconds")
    evaluation_periods: int = from_config(AlarmConfig, "evaluation_periods")
    period_seconds: int = from_config(AlarmConfig, "period_seconds")


@dataclass(frozen=True, kw_only=True)
class CustomConfig:
    """A TimeBasedCanary/TimeBasedLinear traffic-shifting configuration of our own."""

    key: str
    type: Literal["canary", "linear"]
    percent: int
    interval_minutes: int


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm on one target group (plain values; dimensions added later)."""

    service: str
    color: str
    kind: str
    name: str
    metric_name: str
    threshold: float
    comparison: str
    statistic: str | None = None
    extended_statistic: str | None = None


def alarm_specs(service: str, settings: AlarmSettings, name_prefix: str) -> list[AlarmSpec]:
    """The alarms of one service: 5xx and unhealthy hosts (and p99 latency) on blue and green."""
    specs = []
    for color in ("blue", "green"):
        base = {"service": service, "color": color}
        specs.append(
            AlarmSpec(
                **base,
                kind="target-5xx",
                name=f"{name_prefix}-{service}-{color}-target-5xx",
                metric_name="HTTPCode_Target_5XX_Count",
                statistic="Sum",
                threshold=settings.target_5xx_count,
                comparison="GreaterThanOrEqualToThreshold",
            )
        )
        specs.append(
            AlarmSpec(
                **base,
                kind="unhealthy-hosts",
                name=f"{name_prefix}-{service}-{color}-unhealthy-hosts",
                metric_name="UnHealthyHostCount",
                statistic="Maximum",
                threshold=settings.unhealthy_hosts,
                comparison="GreaterThanOrEqualToThreshold",
            )
        )
        if settings.latency_p99_seconds is not None:
            specs.append(
                AlarmSpec(
                    **base,
                    kind="latency-p99",
                    name=f"{name_prefix}-{service}-{color}-latency-p99",
                    metric_name="TargetResponseTime",
                    extended_statistic="p99",
                    threshold=settings.latency_p99_seconds,
                    comparison="GreaterThanThreshold",
                )
            )
    return specs


def custom_config_name(name_prefix: str, key: str) -> str:
    """Deployment configurations are account-wide: the stack prefix keeps ours apart."""
    return f"{name_prefix}-{key}"


def check_targets(
    targets: Sequence[DeploymentTarget],
    settings: AlarmSettings,
    custom_configs: Sequence[CustomConfig],
    name_prefix: str,
) -> list[str]:
    """Problems that must stop the program before any resource: one line per config key."""
    problems = []
    for target in targets:
        if target.engine == "ecs" and target.deployment_controller != ECS_CONTROLLER:
            found = target.deployment_controller or "an unknown"
            problems.append(
                f"services.{target.service}: its ECS service uses {found} deployment controller; "
                f"deployment.engine ecs needs deploymentController.type {ECS_CONTROLLER} "
                "(build the service with FargateServiceArgs.blue_green)"
            )
        elif target.engine == "codedeploy" and target.deployment_controller != CODE_DEPLOY:
            found = target.deployment_controller or "an unknown"
            problems.append(
                f"services.{target.service}: its ECS service uses {found} deployment controller; "
                "a CodeDeploy blue/green deployment group needs deploymentController.type "
                f"{CODE_DEPLOY} (build the service with FargateService, or remove the service "
                "from CodeDeploy)"
            )
        count = len(alarm_specs(target.service, settings, name_prefix))
        if count > MAX_ALARMS_PER_GROUP:
            problems.append(
                f"deployment.alarms: {count} alarms for deployment group {target.group_name}; "
                f"CodeDeploy allows at most {MAX_ALARMS_PER_GROUP} per group"
            )
    if settings.period_seconds not in ALB_METRIC_PERIODS:
        problems.append(
            f"deployment.alarms.periodSeconds: {settings.period_seconds} is shorter than the "
            "load balancer's 60-second metrics (the alarms would never see data); use 60 or 300"
        )
    keys = {c.key for c in custom_configs}
    for config in custom_configs:
        name = custom_config_name(name_prefix, config.key)
        if len(name) > 100:
            problems.append(
                f"deployment.customConfigs.{config.key}: the name {name!r} is longer than "
                "CodeDeploy's 100 characters; use a shorter key"
            )
    for target in targets:
        chosen = target.deployment_config
        if not chosen.startswith("CodeDeployDefault.") and chosen not in keys:
            problems.append(
                f"services.{target.service}.deploymentConfig: {chosen!r} is neither predefined "
                "nor defined in deployment.customConfigs"
            )
    return problems


def role_statements(
    *,
    region: str,
    account_id: str,
    targets: Sequence[DeploymentTarget],
    alarm_names: Sequence[str],
    hook_function_arn: str | None,
    artifact_bucket_arn: pulumi.Input[str],
    artifact_prefix: str,
) -> list[dict[str, Any]]:
    """What CodeDeploy does during an ECS blue/green deployment, on exactly our resources."""
    services = [
        naming.arn(
            "ecs", f"service/{t.cluster_name}/{t.service_name}", region=region, account=account_id
        )
        for t in targets
    ]
    task_sets = [
        naming.arn(
            "ecs",
            f"task-set/{t.cluster_name}/{t.service_name}/*",
            region=region,
            account=account_id,
        )
        for t in targets
    ]
    listeners = _unique(
        [t.production_listener_arn for t in targets] + [t.test_listener_arn for t in targets]
    )
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TaskSets",
            "Effect": "Allow",
            "Action": [
                "ecs:CreateTaskSet",
                "ecs:DeleteTaskSet",
                "ecs:DescribeServices",
                "ecs:UpdateServicePrimaryTaskSet",
            ],
            "Resource": services + task_sets,
        },
        # Elastic Load Balancing Describe* calls have no resource-level permissions in IAM.
        {
            "Sid": "DescribeLoadBalancing",
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            "Resource": "*",
        },
        {
            "Sid": "SwapTargetGroups",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"],
            # The rules of exactly our two listeners, as a pattern of the listener ARNs: naming
            # each rule made every group depend on every service (issue 20).
            "Resource": _unique(listeners + [rules_of(arn) for arn in listeners]),
        },
        {
            "Sid": "ReadAlarms",
            "Effect": "Allow",
            "Action": "cloudwatch:DescribeAlarms",
            "Resource": [
                naming.arn("cloudwatch", f"alarm:{name}", region=region, account=account_id)
                for name in alarm_names
            ],
        },
        {
            "Sid": "ReadRevisions",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": pulumi.Output.concat(artifact_bucket_arn, "/", artifact_prefix, "*"),
        },
        pass_role_statement([arn for t in targets for arn in t.role_arns]),
    ]
    if hook_function_arn:
        statements.append(
            {
                "Sid": "ValidationHook",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": hook_function_arn,
            }
        )
    return statements


def rules_of(listener_arn: pulumi.Input[str]) -> pulumi.Input[str]:
    """The rule pattern of one listener (naming.listener_rules_arn), plain or an Output."""
    if isinstance(listener_arn, str):
        return naming.listener_rules_arn(listener_arn)
    return pulumi.Output.from_input(listener_arn).apply(naming.listener_rules_arn)


def pass_role_statement(role_arns: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """iam:PassRole on exactly the services' task and execution roles, only to ECS tasks."""
    return {
        "Sid": "PassTaskRoles",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": list(role_arns),
        "Condition": {"StringEquals": {"iam:PassedToService": ECS_TASKS}},
    }


def _unique(values: list[Any]) -> list[Any]:
    """Order-preserving de-duplication: equal strings, or the very same Output object."""
    seen: set[Any] = set()
    result = []
    for value in values:
        key = value if isinstance(value, str) else id(value)
        if key not in seen:
            seen.add(key)
            result.append(value)
    return result


@checked
@dataclass(frozen=True, kw_only=True)
class CodeDeploymentArgs:
    """One CodeDeploy application with a blue/green group, alarms and auto-rollback per target."""

    application_name: str | None = derived("`naming.codedeploy_application(project, stack)`")
    # Prefix of account-wide names (alarms, custom configs).
    name_prefix: str | None = derived("`naming.name_prefix(project, stack)`")
    targets: list[DeploymentTarget]
    load_balancer_arn_suffix: pulumi.Input[str]
    region: str | None = derived("the AWS provider's (`aws.get_region`)")
    account_id: str | None = derived("the AWS provider's (`aws.get_caller_identity`)")
    artifact_bucket_arn: pulumi.Input[str]
    artifact_prefix: str
    alarms: AlarmSettings = from_config(DeploymentConfig, "alarms", AlarmSettings)
    custom_configs: list[CustomConfig] = field(default_factory=list)
    termination_wait_minutes: int = from_config(DeploymentConfig, "termination_wait_minutes")
    # The AfterAllowTestTraffic Lambda's ARN: CodeDeploy must be allowed to invoke it.
    hook_function_arn: str | None = None
    # The stack's customer-managed key, which encrypts the artifact bucket; None: SSE-S3.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    tags: dict[str, str] = field(default_factory=dict)


class CodeDeployment(pulumi.ComponentResource):
    """The stack's CodeDeploy application with one blue/green deployment group per service,
    and every service's alarms (a service on the ECS engine gets its alarms only: the same
    resources, so a switch of engine keeps them)."""

    # Children once had fixed names; the instance of this name keeps their URNs (aliases).
    HISTORIC_NAME = "codedeploy"

    # None when no service deploys through CodeDeploy (deployment.engine ecs).
    application: aws.codedeploy.Application | None
    groups: dict[str, aws.codedeploy.DeploymentGroup]
    roles: dict[str, aws.iam.Role]  # per service: the role its deployment group runs with
    alarm_names: dict[str, list[str]]

    def __init__(
        self, name: str, args: CodeDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:codedeploy:CodeDeployment", name, None, opts)
        project, stack = pulumi.get_project(), pulumi.get_stack()
        args = with_defaults(
            args,
            application_name=lambda: naming.codedeploy_application(project, stack),
            name_prefix=lambda: naming.name_prefix(project, stack),
        )
        problems = check_targets(args.targets, args.alarms, args.custom_configs, args.name_prefix)
        if problems:
            raise ValueError("; ".join(problems))
        # Asked of the provider only once the targets are known to be good.
        args = with_defaults(
            args, region=lambda: provider_region(self), account_id=lambda: provider_account(self)
        )
        self._args = args
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        deployed = [t for t in args.targets if t.engine == "codedeploy"]
        self.application = (
            aws.codedeploy.Application(
                name,
                name=args.application_name,
                compute_platform="ECS",
                tags=args.tags,
                opts=self._child,
            )
            if deployed or not args.targets
            else None
        )
        # ECS takes canary and linear as numbers: custom configurations only for CodeDeploy.
        self.configs = (
            {c.key: self._create_config(c) for c in args.custom_configs} if self.application else {}
        )
        self.alarm_names = {}
        # Each group waits for its own alarms only (a group per service: keeps this linear).
        alarms: dict[str, list[aws.cloudwatch.MetricAlarm]] = {}
        for target in args.targets:
            alarms[target.service] = [
                self._create_alarm(target, spec) for spec in self._specs(target)
            ]
            self.alarm_names[target.service] = [s.name for s in self._specs(target)]
        # A role per group: its policy names one service's task sets, alarms and roles, so it
        # stays the same size at any number of services (one shared role passed IAM's 10,240
        # characters at about 15) and a group can touch nothing of another service.
        self.roles = {}
        self.groups = {}
        for target in deployed:
            role, role_policy = self._create_role(target)
            self.roles[target.service] = role
            self.groups[target.service] = self._create_group(
                target, role, [role_policy, *alarms[target.service]]
            )
        self.register_outputs(
            {
                "application": self.application.name if self.application else None,
                "deploymentGroups": {s: g.deployment_group_name for s, g in self.groups.items()},
                "roleArns": {s: r.arn for s, r in self.roles.items()},
            }
        )

    def _specs(self, target: DeploymentTarget) -> list[AlarmSpec]:
        return alarm_specs(target.service, self._args.alarms, self._args.name_prefix)

    def _create_config(self, config: CustomConfig) -> aws.codedeploy.DeploymentConfig:
        routing = (
            aws.codedeploy.DeploymentConfigTrafficRoutingConfigArgs(
                type="TimeBasedCanary",
                time_based_canary=aws.codedeploy.DeploymentConfigTrafficRoutingConfigTimeBasedCanaryArgs(
                    percentage=config.percent, interval=config.interval_minutes
                ),
            )
            if config.type == "canary"
            else aws.codedeploy.DeploymentConfigTrafficRoutingConfigArgs(
                type="TimeBasedLinear",
                time_based_linear=aws.codedeploy.DeploymentConfigTrafficRoutingConfigTimeBasedLinearArgs(
                    percentage=config.percent, interval=config.interval_minutes
                ),
            )
        )
        return aws.codedeploy.DeploymentConfig(
            f"{self._name}-config-{config.key}",
            deployment_config_name=custom_config_name(self._args.name_prefix, config.key),
            compute_platform="ECS",
            traffic_routing_config=routing,
            opts=self._renamed(f"{self._name}-config-{config.key}", f"config-{config.key}"),
        )

    def _renamed(
        self, new: str, old: str, depends_on: list[pulumi.Resource] | None = None
    ) -> pulumi.ResourceOptions:
        """Options of a child named `new` that was named `old` before names derived from ours."""
        owner = self._name == self.HISTORIC_NAME
        return pulumi.ResourceOptions(
            parent=self, depends_on=depends_on, aliases=former_name(new, old, owner=owner)
        )

    def _create_alarm(
        self, target: DeploymentTarget, spec: AlarmSpec
    ) -> aws.cloudwatch.MetricAlarm:
        args = self._args
        group = target.blue if spec.color == "blue" else target.green
        settings = args.alarms
        old = f"{target.service}-{spec.color}-{spec.kind}"
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{old}",
            name=spec.name,
            alarm_description=(
                f"Stops and rolls back a deployment of {target.service}: {spec.metric_name} "
                f"on the {spec.color} target group"
            ),
            namespace="AWS/ApplicationELB",
            metric_name=spec.metric_name,
            statistic=spec.statistic,
            extended_statistic=spec.extended_statistic,
            dimensions={
                "LoadBalancer": args.load_balancer_arn_suffix,
                "TargetGroup": group.arn_suffix,
            },
            period=settings.period_seconds,
            evaluation_periods=settings.evaluation_periods,
            datapoints_to_alarm=settings.evaluation_periods,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            # An idle target group (green between deployments) publishes nothing: not a failure.
            treat_missing_data="notBreaching",
            tags={**args.tags, "Service": target.service},
            opts=self._renamed(f"{self._name}-{old}", old),
        )

    def _create_role(self, target: DeploymentTarget) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        args = self._args
        return iam.service_role(
            f"{self._name}-{target.service}",
            service="codedeploy.amazonaws.com",
            description=f"CodeDeploy blue/green deployments of {args.application_name}/{target.group_name}",
            source_account=args.account_id,
            statements=role_statements(
                region=args.region,
                account_id=args.account_id,
                targets=[target],
                alarm_names=self.alarm_names[target.service],
                hook_function_arn=args.hook_function_arn,
                artifact_bucket_arn=args.artifact_bucket_arn,
                artifact_prefix=args.artifact_prefix,
            )
            + (
                [
                    kms.use_statement(
                        args.kms_key_arn,
                        sid="ReadRevisionsKey",
                        condition={
                            "StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}
                        },
                    )
                ]
                if args.kms_key_arn is not None
                else []
            ),
            tags={**args.tags, "Service": target.service},
            parent=self,
            size_fix=(
                f"the role of group {target.group_name} names that service's task sets, alarms "
                "and roles only: give it fewer roles (DeploymentTarget.role_arns)"
            ),
        )

    def _config_name(self, target: DeploymentTarget) -> pulumi.Input[str]:
        config = self.configs.get(target.deployment_config)
        return config.deployment_config_name if config else target.deployment_config

    def _create_group(
        self, target: DeploymentTarget, role: aws.iam.Role, depends_on: list[pulumi.Resource]
    ) -> aws.codedeploy.DeploymentGroup:
        args = self._args
        assert self.application is not None  # groups only for CodeDeploy's targets
        return aws.codedeploy.DeploymentGroup(
            f"{self._name}-{target.service}",
            app_name=self.application.name,
            deployment_group_name=target.group_name,
            service_role_arn=role.arn,
            deployment_config_name=self._config_name(target),
            deployment_style=aws.codedeploy.DeploymentGroupDeploymentStyleArgs(
                deployment_type="BLUE_GREEN", deployment_option="WITH_TRAFFIC_CONTROL"
            ),
            blue_green_deployment_config=aws.codedeploy.DeploymentGroupBlueGreenDeploymentConfigArgs(
                deployment_ready_option=aws.codedeploy.DeploymentGroupBlueGreenDeploymentConfigDeploymentReadyOptionArgs(
                    action_on_timeout="CONTINUE_DEPLOYMENT"
                ),
                terminate_blue_instances_on_deployment_success=aws.codedeploy.DeploymentGroupBlueGreenDeploymentConfigTerminateBlueInstancesOnDeploymentSuccessArgs(
                    action="TERMINATE",
                    termination_wait_time_in_minutes=args.termination_wait_minutes,
                ),
            ),
            ecs_service=aws.codedeploy.DeploymentGroupEcsServiceArgs(
                cluster_name=target.cluster_name, service_name=target.service_name
            ),
            load_balancer_info=aws.codedeploy.DeploymentGroupLoadBalancerInfoArgs(
                target_group_pair_info=aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoArgs(
                    prod_traffic_route=aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoProdTrafficRouteArgs(
                        listener_arns=[target.production_listener_arn]
                    ),
                    test_traffic_route=aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoTestTrafficRouteArgs(
                        listener_arns=[target.test_listener_arn]
                    ),
                    target_groups=[
                        aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoTargetGroupArgs(
                            name=target.blue.name
                        ),
                        aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoTargetGroupArgs(
                            name=target.green.name
                        ),
                    ],
                )
            ),
            auto_rollback_configuration=aws.codedeploy.DeploymentGroupAutoRollbackConfigurationArgs(
                enabled=True, events=list(ROLLBACK_EVENTS)
            ),
            alarm_configuration=aws.codedeploy.DeploymentGroupAlarmConfigurationArgs(
                enabled=True,
                alarms=self.alarm_names[target.service],
                # Unknown alarm state must not let a bad version through.
                ignore_poll_alarm_failure=False,
            ),
            tags={**args.tags, "Service": target.service},
            opts=self._renamed(
                f"{self._name}-{target.service}",
                target.service,
                depends_on=[*depends_on, *self.configs.values(), *target.depends_on],
            ),
        )

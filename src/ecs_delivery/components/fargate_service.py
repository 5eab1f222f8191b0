"""Fargate service deployed blue/green, by CodeDeploy or by ECS itself, or rolled out as a worker:
task definition, roles, logs, security group, scaling."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import ecs_exec, iam, naming, worker
from ecs_delivery.components.args import (
    checked,
    derived,
    from_config,
    provider_account,
    provider_region,
    with_defaults,
)
from ecs_delivery.components.cluster import (  # noqa: F401  (re-exported: their home was here)
    FARGATE_PROVIDERS,
    EcsCluster,
    EcsClusterArgs,
    ExecLogging,
    ExistingCluster,
)
from ecs_delivery.components.config import AutoscalingConfig, KmsConfig, ServiceConfig, StackConfig
from ecs_delivery.components.config.delivery import EcsStrategy, ManualApprovalConfig
from ecs_delivery.components.config.services import CapacityProviderConfig, ScheduledScalingConfig
from ecs_delivery.components.naming import TYPE_PREFIX
from ecs_delivery.components.task_definition import Container, TaskOwner

# Fields a CODE_DEPLOY service takes only through a CodeDeploy deployment (AWS refuses
# UpdateService for them): Pulumi sets them at creation, then the rollout carries changes
# to taskDefinition, networkConfiguration, platformVersion and the capacity provider
# strategy in the AppSpec, and
# CodeDeploy swaps loadBalancers' target group on every deployment. On the ECS engine the
# same fields belong to the deployment core too: a change of any of them through UpdateService
# starts a deployment, so only the core makes it (merged onto what runs, under the lock), and
# `pulumi up` never starts one by itself nor puts back the revision it created the service with.
CODEDEPLOY_OWNED = [
    "taskDefinition",
    "loadBalancers",
    "networkConfiguration",
    "platformVersion",
    "capacityProviderStrategies",
]
# Set at creation only: the provider would replace the service to change it. A strategy
# configured later reaches the tasks through the AppSpec (the task sets take it instead).
CREATION_ONLY = ["launchType"]
# The stage of an ECS blue/green deployment where CodeDeploy's AfterAllowTestTraffic was: the
# green tasks take all test traffic, production still runs blue.
ECS_VALIDATION_STAGE = "POST_TEST_TRAFFIC_SHIFT"
ELB_DESCRIBE_ACTIONS = [
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
]
PLATFORM_VERSION = "LATEST"
NFS_PORT = 2049


@dataclass(frozen=True, kw_only=True)
class CapacityProvider:
    """One entry of a service's capacity provider strategy (FARGATE or FARGATE_SPOT)."""

    provider: str
    weight: int = from_config(CapacityProviderConfig, "weight")
    base: int = from_config(CapacityProviderConfig, "base")


@dataclass(frozen=True, kw_only=True)
class ScheduledScaling:
    """A scheduled change of a service's capacity bounds."""

    name: str
    schedule: str
    timezone: str = from_config(ScheduledScalingConfig, "timezone")
    min_capacity: int | None = from_config(ScheduledScalingConfig, "min_capacity")
    max_capacity: int | None = from_config(ScheduledScalingConfig, "max_capacity")


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """Target-tracking (and scheduled) scaling of a service's desired count."""

    min_capacity: int
    max_capacity: int
    # Each target given (None: not on it) is one target-tracking policy.
    target_cpu_percent: float | None = from_config(AutoscalingConfig, "target_cpu_percent")
    scale_in_cooldown_seconds: int = from_config(AutoscalingConfig, "scale_in_cooldown_seconds")
    scale_out_cooldown_seconds: int = from_config(AutoscalingConfig, "scale_out_cooldown_seconds")
    target_memory_percent: float | None = from_config(AutoscalingConfig, "target_memory_percent")
    requests_per_target: int | None = from_config(AutoscalingConfig, "requests_per_target")
    scheduled: list[ScheduledScaling] = field(default_factory=list)
    queue: worker.QueueBacklog | None = None  # a worker's queue (backlog per task)


@dataclass(frozen=True, kw_only=True)
class ManualGate:
    """A PAUSE lifecycle hook: ECS waits at `stage` for ContinueServiceDeployment, and rolls
    back once `timeout_minutes` pass without one."""

    stage: str = from_config(ManualApprovalConfig, "stage")
    timeout_minutes: int = from_config(ManualApprovalConfig, "timeout_minutes")


@dataclass(frozen=True, kw_only=True)
class EcsBlueGreen:
    """ECS-native blue/green (deployment.engine ecs): strategy, bake, alarms, routes, hook."""

    strategy: EcsStrategy
    bake_minutes: int
    green_target_group_arn: pulumi.Input[str]
    # The load balancer's rules of this service: ECS moves them between blue and green.
    production_rule_arn: pulumi.Input[str]
    test_rule_arn: pulumi.Input[str]
    # Alarms that stop and roll back a deployment (they exist elsewhere: names only).
    alarm_names: list[str] = field(default_factory=list)
    # The validation hook Lambda and the key of this service in its VALIDATION_CONFIG.
    hook_function_arn: str | None = None
    hook_key: str | None = None
    # A manual gate (deployment.manualApproval), None: none.
    gate: ManualGate | None = None


@dataclass(frozen=True, kw_only=True)
class ServiceConnect:
    """The service in a Service Connect namespace: a server at `dns_name:port` (its container's
    named port) and a client of the others, admitted only from the clients' security group."""

    namespace: pulumi.Input[str]
    discovery_name: str
    dns_name: str
    port: int
    # Every Service Connect task carries this group; the service admits its port from it only.
    client_security_group_id: pulumi.Input[str]


@checked
@dataclass(frozen=True, kw_only=True)
class FargateServiceArgs:
    """One Fargate service (blue/green behind the load balancer, or a rolling worker without
    one): its task, roles, security group, logs and scaling."""

    cluster_arn: pulumi.Input[str]
    # Omitted (None), each is derived from the project, the stack and the resource name.
    cluster_name: str | None = derived("`naming.cluster_name(project, stack)`, as EcsClusterArgs'")
    service_name: str | None = derived("`naming.service_name(name)`")
    # The service's own family (deployers register here) and the template's, outside it.
    family: str | None = derived("`naming.task_family(project, stack, name)`")
    template_family: str | None = derived("`naming.template_family(project, stack, name)`")
    container: Container
    # Containers beside the traffic container in each task (log router, proxy, collector).
    sidecars: list[Container] = field(default_factory=list)
    cpu: int = from_config(ServiceConfig, "cpu")
    memory: int = from_config(ServiceConfig, "memory")
    desired_count: int = from_config(ServiceConfig, "desired_count")
    subnet_ids: list[pulumi.Input[str]]
    # The blue target group; None with `worker` (no load balancer).
    target_group_arn: pulumi.Input[str] | None = None
    region: str | None = derived("the AWS provider's (`aws.get_region`)")
    account_id: str | None = derived("the AWS provider's (`aws.get_caller_identity`)")
    log_retention_days: int = from_config(StackConfig, "log_retention_days")
    # The stack's customer-managed key (kms config); None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    health_check_grace_period_seconds: int = from_config(
        ServiceConfig, "health_check_grace_period_seconds"
    )
    cpu_architecture: str = from_config(ServiceConfig, "cpu_architecture")
    autoscaling: Autoscaling | None = from_config(ServiceConfig, "autoscaling")
    # ECR repositories the execution role may pull from (exact ARNs); public images need none.
    image_repository_arns: pulumi.Input[list[str]] | None = None
    # Created before the service: the target group must be attached to a listener first.
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # Bring your own (each None: the service creates it). Existing security groups replace the
    # service's own group and its rules; then the VPC and the load balancer's group are unused.
    security_group_ids: list[pulumi.Input[str]] | None = None
    vpc_id: pulumi.Input[str] | None = None
    vpc_cidr: pulumi.Input[str] | None = None
    load_balancer_security_group_id: pulumi.Input[str] | None = None
    # Existing roles replace the created ones (the execution role must read the log group,
    # the images and the secrets); PassRole statements elsewhere name exactly these ARNs.
    task_role_arn: pulumi.Input[str] | None = None
    execution_role_arn: pulumi.Input[str] | None = None
    # More task-role permissions, e.g. a sidecar's (EFS and ECS Exec ones are derived).
    task_statements: list[dict] = field(default_factory=list)
    # ECS Exec (enableExecuteCommand config); sessions are logged to the cluster's log group.
    enable_execute_command: bool = from_config(ServiceConfig, "enable_execute_command")
    exec_log_group_arn: pulumi.Input[str] | None = None
    # For scaling on requests: the load balancer's and both target groups' ARN suffixes
    # (CloudWatch's dimensions); CodeDeploy moves traffic between the two groups.
    load_balancer_arn_suffix: pulumi.Input[str] | None = None
    target_group_arn_suffixes: list[pulumi.Input[str]] = field(default_factory=list)
    # A capacity provider strategy (the cluster must have the providers); empty: launch type FARGATE.
    capacity_providers: list[CapacityProvider] = field(default_factory=list)
    # None: the CODE_DEPLOY controller (a CodeDeploy group deploys it); given: ECS's own.
    blue_green: EcsBlueGreen | None = None
    # Service Connect (ECS controller only; the container's port must be named).
    service_connect: ServiceConnect | None = None
    # Given: a worker (no load balancer), deployed by ECS's rolling controller.
    worker: worker.RollingWorker | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def deployment_controller(self) -> str:
        return "CODE_DEPLOY" if self.blue_green is None and self.worker is None else "ECS"

    def with_defaults(self, name: str, parent: pulumi.Resource) -> FargateServiceArgs:
        """These args with each omitted name, region and account derived (service `name`)."""
        project, stack = pulumi.get_project(), pulumi.get_stack()
        return with_defaults(
            self,
            cluster_name=lambda: naming.cluster_name(project, stack),
            service_name=lambda: naming.service_name(name),
            family=lambda: naming.task_family(project, stack, name),
            template_family=lambda: naming.template_family(project, stack, name),
            region=lambda: provider_region(parent),
            account_id=lambda: provider_account(parent),
        )


def missing_network_inputs(
    security_group_ids: list[pulumi.Input[str]] | None, **needed: pulumi.Input[str] | None
) -> list[str]:
    """The fields a created security group needs that are not given (none when groups are)."""
    if security_group_ids is not None:
        return []
    return [key for key, value in needed.items() if value is None]


def create_task_egress(
    name: str, group: aws.ec2.SecurityGroup, vpc_cidr: pulumi.Input[str], *, parent: pulumi.Resource
) -> None:
    """What a task may reach: HTTPS anywhere (ECR, Secrets Manager, logs, AWS APIs through NAT
    or endpoints) and TCP inside the VPC (databases, other services)."""
    child = pulumi.ResourceOptions(parent=parent)
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-https-out",
        security_group_id=group.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4="0.0.0.0/0",
        description="HTTPS to AWS APIs and registries",
        opts=child,
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-vpc-out",
        security_group_id=group.id,
        ip_protocol="tcp",
        from_port=0,
        to_port=65535,
        cidr_ipv4=vpc_cidr,
        description="Databases and services inside the VPC",
        opts=child,
    )


class FargateService(TaskOwner, pulumi.ComponentResource):
    """A Fargate service in private subnets whose rollouts belong to the deployment core
    (through CodeDeploy, ECS's own blue/green with `blue_green`, or ECS's rolling update of a
    `worker`, components/worker.py).

    `task_definition` is the template: every Pulumi-owned field, with the declared image
    (pinned, promoted or bootstrap). A brand-new service starts on it; afterwards the
    rollout overlays its fields onto whatever runs, so it never runs again.
    """

    service: aws.ecs.Service
    # Created, or None when the Args bring their own groups (TaskOwner has the rest).
    security_group: aws.ec2.SecurityGroup | None
    # The role ECS's blue/green assumes (with `blue_green`), None under CodeDeploy.
    blue_green_role: aws.iam.Role | None

    def __init__(
        self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        missing = missing_network_inputs(
            args.security_group_ids,
            vpc_id=args.vpc_id,
            vpc_cidr=args.vpc_cidr,
            **(
                {}
                if args.worker
                else {"load_balancer_security_group_id": args.load_balancer_security_group_id}
            ),
        )
        if (args.worker is None) == (args.target_group_arn is None) or (
            args.worker and (args.blue_green or args.service_connect)
        ):
            raise ValueError(
                f"FargateService {name!r}: give target_group_arn (a service behind the load "
                "balancer) or worker (none: no target group, blue_green or service_connect)"
            )
        if missing:
            raise ValueError(
                f"FargateService {name!r}: without security_group_ids the service creates its "
                f"own group and needs {', '.join(missing)}; pass them or security_group_ids"
            )
        scaling = args.autoscaling
        if (
            scaling
            and scaling.requests_per_target
            and not (args.load_balancer_arn_suffix and len(args.target_group_arn_suffixes) == 2)
        ):
            raise ValueError(
                f"FargateService {name!r}: scaling on requests_per_target needs "
                "load_balancer_arn_suffix and both target_group_arn_suffixes (blue, green)"
            )
        if args.service_connect and not (args.blue_green and args.container.port_name):
            raise ValueError(
                f"FargateService {name!r}: service_connect needs blue_green (ECS's controller; "
                "a CODE_DEPLOY service cannot use Service Connect) and container.port_name"
            )
        super().__init__(f"{TYPE_PREFIX}:service:FargateService", name, None, opts)
        args = ecs_exec.with_agent_paths(args.with_defaults(name, parent=self))
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        self._create_task_roles(
            name,
            args,
            family=args.family,
            what=args.service_name,
            agent=f"ECS agent role of {args.service_name}: pull image, write logs, read its secrets",
            tags=args.tags,
            task_statements=(
                ecs_exec.task_statements(
                    args.exec_log_group_arn, region=args.region, account_id=args.account_id
                )
                if args.enable_execute_command
                else []
            )
            + worker.queue_statements(
                args.autoscaling.queue if args.autoscaling else None,
                region=args.region,
                account_id=args.account_id,
            )
            + args.task_statements,
        )
        self.security_group = (
            self._create_security_group() if args.security_group_ids is None else None
        )
        self.security_group_ids = (
            [self.security_group.id] if self.security_group else list(args.security_group_ids)
        )
        if args.service_connect:
            # The client group marks this service's tasks as callers of the others.
            self.security_group_ids.append(args.service_connect.client_security_group_id)
        self._create_nfs_rules()
        self.task_definition = self._create_task_definition(
            name, args, family=args.template_family, stream_prefix=args.service_name, tags=args.tags
        )
        self.blue_green_role, role_policy = (
            self._create_blue_green_role(args.blue_green) if args.blue_green else (None, None)
        )
        self.service = self._create_service(role_policy)
        if args.autoscaling:
            self._create_autoscaling(args.autoscaling)
        self.register_outputs(
            {
                "serviceName": self.service.name,
                "taskDefinitionArn": self.task_definition.arn,
                "securityGroupIds": self.security_group_ids,
                "executionRoleArn": self.execution_role_arn,
                "taskRoleArn": self.task_role_arn,
                "logGroup": self.log_group.name,
            }
        )

    def _create_nfs_rules(self) -> None:
        """NFS into each given mount-target group, from this service's tasks only."""
        groups = sorted(
            {
                v.mount_target_security_group_id
                for v in self._args.container.efs_volumes
                if v.mount_target_security_group_id
            }
        )
        for group in groups:
            for index, source in enumerate(self.security_group_ids):
                suffix = "" if len(self.security_group_ids) == 1 else f"-{index}"
                aws.vpc.SecurityGroupIngressRule(
                    f"{self._name}-nfs-{group}{suffix}",
                    security_group_id=group,
                    referenced_security_group_id=source,
                    ip_protocol="tcp",
                    from_port=NFS_PORT,
                    to_port=NFS_PORT,
                    description=f"NFS from the tasks of {self._args.service_name}",
                    opts=self._child,
                )

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        args = self._args
        group = aws.ec2.SecurityGroup(
            f"{self._name}-tasks",
            vpc_id=args.vpc_id,
            description=f"Tasks of {args.service_name}: "
            + (
                "no inbound traffic (a worker)"
                if args.worker
                else "container port from the load balancer only"
            ),
            tags={**args.tags, "Name": f"{self._name}-tasks"},
            opts=self._child,
        )
        if args.worker:  # nothing reaches a worker: it only calls out
            create_task_egress(self._name, group, args.vpc_cidr, parent=self)
            return group
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-from-alb",
            security_group_id=group.id,
            referenced_security_group_id=args.load_balancer_security_group_id,
            ip_protocol="tcp",
            from_port=args.container.port,
            to_port=args.container.port,
            description="Container port from the load balancer",
            opts=self._child,
        )
        if sc := args.service_connect:
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-from-service-connect",
                security_group_id=group.id,
                referenced_security_group_id=sc.client_security_group_id,
                ip_protocol="tcp",
                from_port=args.container.port,
                to_port=args.container.port,
                description="Container port from the stack's Service Connect clients",
                opts=self._child,
            )
        create_task_egress(self._name, group, args.vpc_cidr, parent=self)
        return group

    @property
    def deployment_controller(self) -> str:
        return self._args.deployment_controller

    @property
    def args(self) -> FargateServiceArgs:
        """What the service was built from (what its deployment and rollout are derived from)."""
        return self._args

    def _create_blue_green_role(
        self, blue_green: EcsBlueGreen
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """What ECS does in this service's blue/green deployments, on exactly its resources:
        move its two listener rules between its two target groups, register tasks in them,
        and invoke the validation hook."""
        args = self._args
        statements = [
            # Elastic Load Balancing Describe* calls have no resource-level permissions in IAM.
            iam.allow("DescribeLoadBalancing", ELB_DESCRIBE_ACTIONS, "*"),
            iam.allow(
                "MoveRules",
                ["elasticloadbalancing:ModifyRule"],
                [blue_green.production_rule_arn, blue_green.test_rule_arn],
            ),
            iam.allow(
                "RegisterTasks",
                ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                [args.target_group_arn, blue_green.green_target_group_arn],
            ),
        ]
        if blue_green.hook_function_arn:
            statements.append(
                iam.allow("ValidationHook", ["lambda:InvokeFunction"], blue_green.hook_function_arn)
            )
        return iam.service_role(
            f"{self._name}-blue-green",
            service="ecs.amazonaws.com",
            description=f"ECS blue/green deployments of {args.service_name}",
            source_account=args.account_id,
            statements=statements,
            tags=args.tags,
            parent=self,
        )

    def _deployment_settings(self) -> dict:
        """The service's inputs that choose who deploys it and how (CodeDeploy or ECS)."""
        args = self._args
        if args.worker:
            return worker.deployment_settings(args.worker)
        blue_green = args.blue_green
        load_balancer = {
            "target_group_arn": args.target_group_arn,
            "container_name": args.container.name,
            "container_port": args.container.port,
        }
        if blue_green is None or self.blue_green_role is None:
            return {
                "deployment_controller": aws.ecs.ServiceDeploymentControllerArgs(
                    type="CODE_DEPLOY"
                ),
                "load_balancers": [aws.ecs.ServiceLoadBalancerArgs(**load_balancer)],
            }
        role_arn = self.blue_green_role.arn
        strategy = blue_green.strategy
        hooks = []
        if blue_green.hook_function_arn:
            hooks.append(
                aws.ecs.ServiceDeploymentConfigurationLifecycleHookArgs(
                    lifecycle_stages=[ECS_VALIDATION_STAGE],
                    target_type="AWS_LAMBDA",
                    hook_target_arn=blue_green.hook_function_arn,
                    role_arn=role_arn,
                    # The hook finds this service's probes by the key CodeDeploy's events give.
                    hook_details=json.dumps({"deploymentGroup": blue_green.hook_key}),
                )
            )
        if gate := blue_green.gate:
            hooks.append(
                aws.ecs.ServiceDeploymentConfigurationLifecycleHookArgs(
                    lifecycle_stages=[gate.stage],
                    target_type="PAUSE",
                    # A gate nobody answers never ships: ECS rolls back at the timeout.
                    timeout_configuration=aws.ecs.ServiceDeploymentConfigurationLifecycleHookTimeoutConfigurationArgs(
                        action="ROLLBACK", timeout_in_minutes=str(gate.timeout_minutes)
                    ),
                )
            )
        return {
            "deployment_controller": aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
            "deployment_configuration": aws.ecs.ServiceDeploymentConfigurationArgs(
                strategy=strategy.strategy,
                bake_time_in_minutes=str(blue_green.bake_minutes),
                canary_configuration=aws.ecs.ServiceDeploymentConfigurationCanaryConfigurationArgs(
                    canary_percent=float(strategy.percent or 0),
                    canary_bake_time_in_minutes=str(strategy.step_minutes),
                )
                if strategy.strategy == "CANARY"
                else None,
                linear_configuration=aws.ecs.ServiceDeploymentConfigurationLinearConfigurationArgs(
                    step_percent=float(strategy.percent or 0),
                    step_bake_time_in_minutes=str(strategy.step_minutes),
                )
                if strategy.strategy == "LINEAR"
                else None,
                lifecycle_hooks=hooks or None,
            ),
            "alarms": aws.ecs.ServiceAlarmsArgs(
                alarm_names=list(blue_green.alarm_names), enable=True, rollback=True
            )
            if blue_green.alarm_names
            else None,
            "load_balancers": [
                aws.ecs.ServiceLoadBalancerArgs(
                    **load_balancer,
                    advanced_configuration=aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                        alternate_target_group_arn=blue_green.green_target_group_arn,
                        production_listener_rule=blue_green.production_rule_arn,
                        test_listener_rule=blue_green.test_rule_arn,
                        role_arn=role_arn,
                    ),
                )
            ],
        }

    def _service_connect(self) -> aws.ecs.ServiceServiceConnectConfigurationArgs | None:
        """The service's place in the namespace; its proxy logs beside the container's."""
        args = self._args
        sc = args.service_connect
        if sc is None:
            return None
        return aws.ecs.ServiceServiceConnectConfigurationArgs(
            enabled=True,
            namespace=sc.namespace,
            services=[
                aws.ecs.ServiceServiceConnectConfigurationServiceArgs(
                    port_name=args.container.port_name,
                    discovery_name=sc.discovery_name,
                    client_alias=[
                        aws.ecs.ServiceServiceConnectConfigurationServiceClientAliasArgs(
                            dns_name=sc.dns_name, port=sc.port
                        )
                    ],
                )
            ],
            log_configuration=aws.ecs.ServiceServiceConnectConfigurationLogConfigurationArgs(
                log_driver="awslogs",
                options={
                    "awslogs-group": self.log_group.name,
                    "awslogs-region": args.region,
                    "awslogs-stream-prefix": f"{args.service_name}-service-connect",
                },
            ),
        )

    def _create_service(self, role_policy: aws.iam.RolePolicy | None) -> aws.ecs.Service:
        args = self._args
        ignore = [*CODEDEPLOY_OWNED, *CREATION_ONLY]
        if args.autoscaling:
            ignore.append("desiredCount")
        strategies = [
            aws.ecs.ServiceCapacityProviderStrategyArgs(
                capacity_provider=p.provider, weight=p.weight, base=p.base
            )
            for p in args.capacity_providers
        ]
        return aws.ecs.Service(
            self._name,
            name=args.service_name,
            cluster=args.cluster_arn,
            task_definition=self.task_definition.arn,
            desired_count=args.desired_count,
            launch_type=None if strategies else "FARGATE",
            capacity_provider_strategies=strategies or None,
            platform_version=PLATFORM_VERSION,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids,
                security_groups=self.security_group_ids,
                assign_public_ip=False,
            ),
            **self._deployment_settings(),
            service_connect_configuration=self._service_connect(),
            # ECS refuses a grace period on a service without a load balancer.
            health_check_grace_period_seconds=None
            if args.worker
            else args.health_check_grace_period_seconds,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            enable_execute_command=args.enable_execute_command,
            wait_for_steady_state=False,
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=ignore,
                # ECS checks that it may assume the role when the service is created.
                depends_on=[*args.depends_on, *([role_policy] if role_policy else [])],
            ),
        )

    def _create_autoscaling(self, scaling: Autoscaling) -> None:
        args = self._args
        target = aws.appautoscaling.Target(
            self._name,
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{args.cluster_name}/{args.service_name}",
            min_capacity=scaling.min_capacity,
            max_capacity=scaling.max_capacity,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service]),
        )
        predefined = {
            "cpu": (scaling.target_cpu_percent, "ECSServiceAverageCPUUtilization"),
            "memory": (scaling.target_memory_percent, "ECSServiceAverageMemoryUtilization"),
        }
        for metric, (value, metric_type) in predefined.items():
            if value is not None:
                self._tracking_policy(
                    target,
                    metric,
                    scaling,
                    value,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric_type
                    ),
                )
        if scaling.requests_per_target is not None:
            self._tracking_policy(
                target,
                "requests",
                scaling,
                scaling.requests_per_target,
                customized_metric_specification=self._requests_metric(),
            )
        if queue := scaling.queue:
            self._tracking_policy(
                target,
                "queue",
                scaling,
                queue.backlog_per_task,
                customized_metric_specification=worker.backlog_metric(
                    queue, args.cluster_name, args.service_name
                ),
            )
        for action in scaling.scheduled:
            aws.appautoscaling.ScheduledAction(
                f"{self._name}-{action.name}",
                name=f"{args.service_name}-{action.name}",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                schedule=action.schedule,
                timezone=action.timezone,
                scalable_target_action=aws.appautoscaling.ScheduledActionScalableTargetActionArgs(
                    min_capacity=action.min_capacity, max_capacity=action.max_capacity
                ),
                opts=self._child,
            )

    def _tracking_policy(
        self,
        target: aws.appautoscaling.Target,
        metric: str,
        scaling: Autoscaling,
        value: float,
        **spec,
    ) -> None:
        aws.appautoscaling.Policy(
            f"{self._name}-{metric}",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=value,
                scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                scale_out_cooldown=scaling.scale_out_cooldown_seconds,
                **spec,
            ),
            opts=self._child,
        )

    def _requests_metric(
        self,
    ) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs:
        """Requests per task over both target groups. The predefined ALBRequestCountPerTarget
        names one group, and CodeDeploy moves production to the other on every deployment
        (AWS does not support it for blue/green); the group without traffic reports nothing,
        hence FILL(..., 0). README: Service runtime."""
        args = self._args
        metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricArgs
        stat = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatArgs
        cw_metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs
        dimension = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs
        groups = [
            metric(
                id=f"m{index}",
                metric_stat=stat(
                    metric=cw_metric(
                        namespace="AWS/ApplicationELB",
                        metric_name="RequestCountPerTarget",
                        dimensions=[
                            dimension(name="LoadBalancer", value=args.load_balancer_arn_suffix),
                            dimension(name="TargetGroup", value=suffix),
                        ],
                    ),
                    stat="Sum",
                ),
                return_data=False,
            )
            for index, suffix in enumerate(args.target_group_arn_suffixes)
        ]
        total = metric(
            id="requests",
            expression="FILL(m0, 0) + FILL(m1, 0)",
            label=f"Requests per task of {args.service_name} (blue + green)",
            return_data=True,
        )
        return aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
            metrics=[*groups, total]
        )

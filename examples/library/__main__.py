"""A team's own Pulumi program on ecs-delivery's components, without its stack-config layer.

Two Fargate services (web, api) behind one load balancer, in a VPC that exists already, deployed
blue/green by CodeDeploy. The api runs with an application role the team manages itself.
"""

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import naming
from ecs_delivery.components.artifacts import (
    ArtifactBucket,
    ArtifactBucketArgs,
    artifact_bucket_name,
)
from ecs_delivery.components.codedeploy import (
    CODE_DEPLOY,
    AlarmSettings,
    CodeDeployment,
    CodeDeploymentArgs,
    DeploymentTarget,
    TargetGroupRef,
)
from ecs_delivery.components.fargate_service import (
    PLATFORM_VERSION,
    Container,
    EcsCluster,
    EcsClusterArgs,
    FargateService,
    FargateServiceArgs,
)
from ecs_delivery.components.load_balancer import (
    HealthCheck,
    LoadBalancer,
    LoadBalancerArgs,
    ServiceRoute,
)
from ecs_delivery.components.network import ExistingNetwork
from ecs_delivery.components.rollout import ServiceRollout, ServiceRolloutArgs

config = pulumi.Config()
project, stack = pulumi.get_project(), pulumi.get_stack()
region = aws.get_region().region
account_id = aws.get_caller_identity().account_id
prefix = f"{project}-{stack}"
tags = {"project": project, "stack": stack}

# The VPC is the network team's: nothing of it is created here (no VPC, subnets, NAT, endpoints).
network = ExistingNetwork(
    vpc_id=config.require("vpcId"),
    vpc_cidr=config.require("vpcCidr"),
    public_subnet_ids=config.require_object("publicSubnetIds"),
    private_subnet_ids=config.require_object("privateSubnetIds"),
)

# What each service is; every value is stated here (the components hold no defaults).
SERVICES = {
    "web": {"port": 8080, "paths": ["/*"], "health": "/health", "priority": 200},
    "api": {"port": 8000, "paths": ["/api/*"], "health": "/api/health", "priority": 100},
}
IMAGES = {
    "web": "public.ecr.aws/nginx/nginx:1.27-alpine",
    "api": "public.ecr.aws/docker/library/httpd:2.4-alpine",
}
# Only the api brings its own application role; the web's and both execution roles are created.
TASK_ROLES = {"api": config.require("apiTaskRoleArn")}

load_balancer = LoadBalancer(
    "alb",
    LoadBalancerArgs(
        vpc_id=network.vpc_id,
        vpc_cidr=network.vpc_cidr,
        public_subnet_ids=network.public_subnet_ids,
        services=[
            ServiceRoute(
                name=name,
                port=svc["port"],
                health_check=HealthCheck(
                    path=svc["health"],
                    matcher="200",
                    interval_seconds=10,
                    timeout_seconds=5,
                    healthy_threshold=2,
                    unhealthy_threshold=2,
                ),
                deregistration_delay_seconds=30,
                path_patterns=svc["paths"],
                host_headers=[],
                priority=svc["priority"],
            )
            for name, svc in SERVICES.items()
        ],
        ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        test_listener_port=8443,
        # The test listener admits no one: a validation hook (hook.py) would probe it from the
        # VPC's NAT addresses (ExistingNetwork.nat_public_ips, LoadBalancerArgs.test_listener_nat_ips).
        test_listener_cidrs=[],
        deletion_protection=False,
        idle_timeout_seconds=60,
        access_logs=None,
        internal=False,
        client_cidrs=[],
        tags=tags,
    ),
)

cluster_name = naming.cluster_name(project, stack)
cluster = EcsCluster(
    "cluster", EcsClusterArgs(cluster_name=cluster_name, container_insights=True, tags=tags)
)

services = {
    name: FargateService(
        name,
        FargateServiceArgs(
            cluster_arn=cluster.arn,
            cluster_name=cluster_name,
            service_name=naming.service_name(name),
            family=naming.task_family(project, stack, name),
            template_family=naming.template_family(project, stack, name),
            container=Container(
                name=name,
                image=IMAGES[name],
                port=svc["port"],
                readonly_root_filesystem=True,
                user="1000",
            ),
            cpu=256,
            memory=512,
            desired_count=2,
            subnet_ids=network.private_subnet_ids,
            vpc_id=network.vpc_id,
            vpc_cidr=network.vpc_cidr,
            load_balancer_security_group_id=load_balancer.security_group_id,
            target_group_arn=load_balancer.target_groups[name].blue.arn,
            task_role_arn=TASK_ROLES.get(name),
            region=region,
            account_id=account_id,
            log_retention_days=30,
            health_check_grace_period_seconds=30,
            cpu_architecture="X86_64",
            kms_key_arn=None,
            depends_on=[
                load_balancer.target_groups[name].production_rule,
                load_balancer.target_groups[name].test_rule,
            ],
            tags={**tags, "Service": name},
        ),
    )
    for name, svc in SERVICES.items()
}

# CodeDeploy shifts traffic between each service's blue and green target groups; it may pass
# exactly the roles the services run with (the api's own task role included).
artifacts = ArtifactBucket(
    "artifacts",
    ArtifactBucketArgs(
        bucket_name=artifact_bucket_name(project, stack, account_id, region),
        expiring_prefixes=["revisions/"],
        region=region,
        kms_key_arn=None,
        access_logs=None,
        force_destroy=False,
        tags=tags,
    ),
)
deployment = CodeDeployment(
    "codedeploy",
    CodeDeploymentArgs(
        application_name=naming.codedeploy_application(project, stack),
        name_prefix=prefix,
        targets=[
            DeploymentTarget(
                service=name,
                group_name=naming.deployment_group(name),
                cluster_name=cluster_name,
                service_name=naming.service_name(name),
                deployment_controller=CODE_DEPLOY,
                deployment_config="CodeDeployDefault.ECSAllAtOnce",
                blue=TargetGroupRef(name=pair.blue.name, arn_suffix=pair.blue.arn_suffix),
                green=TargetGroupRef(name=pair.green.name, arn_suffix=pair.green.arn_suffix),
                production_listener_arn=load_balancer.production_listener_arn,
                test_listener_arn=load_balancer.test_listener_arn,
                role_arns=[services[name].task_role_arn, services[name].execution_role_arn],
                depends_on=[services[name].service],
            )
            for name, pair in load_balancer.target_groups.items()
        ],
        load_balancer_arn_suffix=load_balancer.arn_suffix,
        region=region,
        account_id=account_id,
        artifact_bucket_arn=artifacts.arn,
        artifact_prefix="revisions/",
        alarms=AlarmSettings(
            target_5xx_count=5,
            unhealthy_hosts=1,
            latency_p99_seconds=None,
            evaluation_periods=1,
            period_seconds=60,
        ),
        termination_wait_minutes=5,
        kms_key_arn=None,
        tags=tags,
    ),
)

# A change Pulumi owns (cpu, memory, environment, roles...) reaches the running service through
# a CodeDeploy deployment, merged onto the image that runs then; equal content deploys nothing.
for name, fargate in services.items():
    ServiceRollout(
        f"{name}-rollout",
        ServiceRolloutArgs(
            cluster_name=cluster.cluster.name,
            service_name=fargate.service.name,
            template_arn=fargate.task_definition.arn,
            family=naming.task_family(project, stack, name),
            application_name=deployment.application.name,
            deployment_group_name=deployment.groups[name].deployment_group_name,
            container_name=name,
            container_port=SERVICES[name]["port"],
            subnets=network.private_subnet_ids,
            security_groups=fargate.security_group_ids,
            platform_version=PLATFORM_VERSION,
            region=region,
        ),
        opts=pulumi.ResourceOptions(
            parent=fargate, depends_on=[fargate.service, deployment.groups[name]]
        ),
    )

pulumi.export("url", load_balancer.url)
pulumi.export("testUrl", load_balancer.test_url)
pulumi.export("clusterName", cluster_name)
pulumi.export(
    "services",
    {
        name: {
            "serviceName": s.service.name,
            "taskRoleArn": s.task_role_arn,
            "deploymentGroup": deployment.groups[name].deployment_group_name,
        }
        for name, s in services.items()
    },
)

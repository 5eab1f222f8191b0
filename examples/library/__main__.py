"""A team's own program on ecs-delivery's components: two Fargate services behind one load
balancer in an existing VPC, blue/green by CodeDeploy. Only what the team decides is written;
the rest takes the stack config's defaults, names from `naming` and the AWS provider's region
and account (README, "Args reference")."""

import pulumi

from ecs_delivery.components import artifacts, codedeploy
from ecs_delivery.components import fargate_service as fargate
from ecs_delivery.components import load_balancer as lb
from ecs_delivery.components.network import ExistingNetwork
from ecs_delivery.components.rollout import ServiceRollout, ServiceRolloutArgs

config = pulumi.Config()
tags = {"project": pulumi.get_project(), "stack": pulumi.get_stack()}

# The VPC is the network team's: nothing of it is created here (no VPC, subnets, NAT, endpoints).
network = ExistingNetwork(
    vpc_id=config.require("vpcId"),
    vpc_cidr=config.require("vpcCidr"),
    public_subnet_ids=config.require_object("publicSubnetIds"),
    private_subnet_ids=config.require_object("privateSubnetIds"),
)

# What each service is: its route, its image and (the api only) its own application role.
api_health = lb.HealthCheck(path="/api/health")  # the web's is the default, /health
ROUTES = [
    lb.ServiceRoute(name="web", port=8080, path_patterns=["/*"], priority=200),
    lb.ServiceRoute(
        name="api", port=8000, path_patterns=["/api/*"], priority=100, health_check=api_health
    ),
]
IMAGES = {
    "web": "public.ecr.aws/nginx/nginx:1.27-alpine",
    "api": "public.ecr.aws/docker/library/httpd:2.4-alpine",
}
TASK_ROLES = {"api": config.require("apiTaskRoleArn")}

# The test listener admits no one: a validation hook (hook.py) would probe it from the VPC's
# NAT addresses (ExistingNetwork.nat_public_ips, LoadBalancerArgs.test_listener_nat_ips).
alb = lb.LoadBalancer(
    "alb",
    lb.LoadBalancerArgs(
        vpc_id=network.vpc_id,
        vpc_cidr=network.vpc_cidr,
        public_subnet_ids=network.public_subnet_ids,
        services=ROUTES,
        access_logs=None,  # or a log bucket: access_logs.LogBucket(...).target
        tags=tags,
    ),
)
cluster = fargate.EcsCluster("cluster", fargate.EcsClusterArgs(tags=tags))

services = {}
for route in ROUTES:
    name, pair = route.name, alb.target_groups[route.name]
    services[name] = fargate.FargateService(
        name,
        fargate.FargateServiceArgs(
            cluster_arn=cluster.arn,
            container=fargate.Container(name=name, image=IMAGES[name], port=route.port),
            subnet_ids=network.private_subnet_ids,
            vpc_id=network.vpc_id,
            vpc_cidr=network.vpc_cidr,
            load_balancer_security_group_id=alb.security_group_id,
            target_group_arn=pair.blue.arn,
            task_role_arn=TASK_ROLES.get(name),
            depends_on=[pair.production_rule, pair.test_rule],
            tags={**tags, "Service": name},
        ),
    )

# CodeDeploy shifts traffic between each service's blue and green target groups; it may pass
# exactly the roles the services run with (the api's own task role included).
bucket = artifacts.ArtifactBucket(
    "artifacts",
    artifacts.ArtifactBucketArgs(
        expiring_prefixes=["revisions/"],
        access_logs=None,
        tags=tags,
    ),
)
deployment = codedeploy.CodeDeployment(
    "codedeploy",
    codedeploy.CodeDeploymentArgs(
        targets=[codedeploy.DeploymentTarget.of(name, s, alb) for name, s in services.items()],
        load_balancer_arn_suffix=alb.arn_suffix,
        artifact_bucket_arn=bucket.arn,
        artifact_prefix="revisions/",
        tags=tags,
    ),
)

# A change Pulumi owns (cpu, memory, environment, roles...) reaches the running service through
# a CodeDeploy deployment, merged onto the image that runs then; equal content deploys nothing.
for name, service in services.items():
    group = deployment.groups[name]
    ServiceRollout(
        f"{name}-rollout",
        ServiceRolloutArgs.of(
            service,
            application_name=deployment.application.name,
            deployment_group_name=group.deployment_group_name,
            region=service.args.region,
        ),
        opts=pulumi.ResourceOptions(parent=service, depends_on=[service.service, group]),
    )

pulumi.export("url", alb.url)
pulumi.export("testUrl", alb.test_url)
pulumi.export("clusterName", cluster.name)
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

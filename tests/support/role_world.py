"""The dev stack as planned, seeded in moto, for the role proofs (tests/policy): the code
under test gets recorded clients (`DevWorld.client`), the test's own setup does not."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from ecs_delivery.offline.codedeploy_sim import CodeDeploySim
from ecs_delivery.offline.ecs_deployments import EcsDeployments
from ecs_delivery.offline.simcloud import plain
from tests.support.iam_calls import CallRecorder
from tests.support.pipeline_run import PipelineRun
from tests.support.plans import PIPELINE

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"
SCHEDULE = "aws:scheduler/schedule:Schedule"
REPOSITORY = "aws:ecr/repository:Repository"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"

# Grants whose callers are AWS services acting for the role, not code a test runs: the
# Lambda and CodeBuild runtimes write the role's logs.
RUNTIME_LOGS = "the Lambda/CodeBuild runtime writes the function's logs, not our code"


@dataclass
class DevWorld:
    """The dev stack as planned, seeded in moto; `clients` are the code's (recorded) ones."""

    plan: Any
    recorder: CallRecorder
    setup: dict[str, Any]
    # The CodeDeploy simulator of `client`; None: a runner attaches its own (PipelineRun).
    simulated: CodeDeploySim | None
    # (service, event, handler) registered first on each such client made from here on
    client_hooks: list[tuple[str, str, Any]] = field(default_factory=list)
    # deployment.engine ecs: ECS's service deployments, answering every ECS client made here.
    ecs_deployments: EcsDeployments | None = None

    @property
    def inventory(self) -> dict[str, Any]:
        return self.plan.outputs["releaseInventory"]

    @property
    def release_bucket(self) -> str:
        return str(self.plan.outputs["releaseBucket"])

    def client(self, service: str) -> Any:
        """A client for the code under test: recorded, CodeDeploy simulated."""
        made = self.recorder.attach(boto3.client(service, region_name=REGION))
        for hooked, event, hook in self.client_hooks:
            if hooked == service:
                made.meta.events.register_first(event, hook)
        if service == "ecs" and self.ecs_deployments is not None:
            self.ecs_deployments.attach(made)
        if self.simulated is None:
            return made
        if service == "ecs":
            self.simulated.observe(made)
        return self.simulated.attach(made) if service == "codedeploy" else made

    def task_definition(self, unit: str) -> dict[str, Any]:
        return plain(self.plan.named(TASK_DEFINITION, unit).inputs)

    def seed(self) -> None:
        ecs, codedeploy = self.setup["ecs"], self.setup["codedeploy"]
        s3, scheduler = self.setup["s3"], self.setup["scheduler"]
        services = self.inventory["services"]
        (cluster,) = {s["cluster"] for s in services.values()}
        ecs.create_cluster(clusterName=cluster)
        applications = {s.get("codedeployApplication") for s in services.values()} - {None}
        for application in applications:
            codedeploy.create_application(applicationName=application, computePlatform="ECS")
        for name, target in services.items():
            arn = self._register(target["taskFamily"], name, target["container"], "1.0.0")
            on_ecs = target["engine"] == "ecs"
            ecs.create_service(
                cluster=cluster,
                serviceName=target["service"],
                taskDefinition=arn,
                desiredCount=1,
                launchType="FARGATE",
                deploymentController={"type": "ECS" if on_ecs else "CODE_DEPLOY"},
            )
            if on_ecs:
                continue  # ECS deploys it: no group
            application = target["codedeployApplication"]
            group = plain(self.plan.named(GROUP, f"codedeploy-{name}").inputs)
            codedeploy.create_deployment_group(
                applicationName=application,
                deploymentGroupName=target["codedeployGroup"],
                deploymentConfigName=group["deploymentConfigName"],
                serviceRoleArn=f"arn:aws:iam::123456789012:role/{application}-codedeploy",
                deploymentStyle={
                    "deploymentType": "BLUE_GREEN",
                    "deploymentOption": "WITH_TRAFFIC_CONTROL",
                },
                ecsServices=[{"serviceName": target["service"], "clusterName": cluster}],
            )
        for name, task in self.inventory["scheduledTasks"].items():
            arn = self._register(task["taskFamily"], f"task-{name}", task["container"], "1.0.0")
            planned = plain(self.plan.named(SCHEDULE, f"task-{name}").inputs)
            parameters = planned["target"]["ecsParameters"]
            scheduler.create_schedule(
                Name=planned["name"],
                GroupName=planned["groupName"],
                ScheduleExpression=planned["scheduleExpression"],
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={
                    "Arn": planned["target"]["arn"],
                    "RoleArn": planned["target"]["roleArn"],
                    "EcsParameters": {
                        "TaskDefinitionArn": arn,
                        "TaskCount": 1,
                        "LaunchType": parameters["launchType"],
                        "EnableECSManagedTags": parameters["enableEcsManagedTags"],
                        "PropagateTags": parameters["propagateTags"],
                        "NetworkConfiguration": {
                            "awsvpcConfiguration": {
                                "Subnets": parameters["networkConfiguration"]["subnets"],
                                "SecurityGroups": parameters["networkConfiguration"][
                                    "securityGroups"
                                ],
                                "AssignPublicIp": "DISABLED",
                            }
                        },
                    },
                },
            )
        s3.create_bucket(
            Bucket=self.release_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3.put_object(
            Bucket=self.release_bucket, Key="inventory.json", Body=json.dumps(self.inventory)
        )

    def _register(self, family: str, unit: str, container: str, version: str) -> str:
        """A revision of `family` as Pulumi's template registers it (the plan's roles)."""
        planned = self.task_definition(unit)
        return str(
            self.setup["ecs"].register_task_definition(
                family=family,
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu=planned["cpu"],
                memory=planned["memory"],
                executionRoleArn=planned["executionRoleArn"],
                taskRoleArn=planned["taskRoleArn"],
                containerDefinitions=[
                    {
                        "name": container,
                        "image": f"{REGISTRY}/{container}:{version}",
                        "essential": True,
                        # moto's RunTask sums the containers' memory
                        "memory": int(planned["memory"]),
                        "portMappings": [
                            {"containerPort": port, "protocol": "tcp"}
                            for port in [self._port(container)]
                            if port is not None
                        ],
                    }
                ],
                tags=[{"key": k, "value": v} for k, v in sorted(planned["tags"].items())],
            )["taskDefinition"]["taskDefinitionArn"]
        )

    def _port(self, container: str) -> int | None:
        """The port the inventory routes to (the deployment core refuses any other); none for a
        worker, which has no load balancer."""
        for target in self.inventory["services"].values():
            if target["container"] == container:
                port = target.get("containerPort")
                return None if port is None else int(port)
        return 8080

    def manifest(self, release: str, version: str) -> str:
        """Every service and task of the inventory to `version`."""
        lines = [f"release: {release}", f"environment: {self.inventory['environment']}"]
        lines.append("services:")
        for target in self.inventory["services"].values():
            lines.append(f"  {target['container']}:")
            lines.append(f"    image: {REGISTRY}/{target['container']}:{version}")
        lines.append("scheduledTasks:")
        for name, task in self.inventory["scheduledTasks"].items():
            lines.append(f"  {name}:")
            lines.append(f"    image: {REGISTRY}/{task['container']}:{version}")
        return "\n".join(lines) + "\n"

    def push_images(self, tag: str) -> None:
        """The stack's ECR repositories, each holding an image tagged `tag` (what a Build
        pushed; the pipeline runner skips docker), and the pipeline's artifact bucket."""
        ecr = boto3.client("ecr", region_name=REGION)
        for repository in self.plan.of_type(REPOSITORY):
            name = repository.inputs["name"]
            ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
            layer = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 1,
                    "digest": layer,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": 1,
                        "digest": layer,
                    }
                ],
            }
            ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag=tag)
        (store,) = plain(self.plan.named(PIPELINE, "pipeline").inputs)["artifactStores"]
        self.setup["s3"].create_bucket(
            Bucket=store["location"], CreateBucketConfiguration={"LocationConstraint": REGION}
        )


def setup_clients() -> dict[str, Any]:
    """The test's own (unrecorded) clients of what a DevWorld seeds; call inside mock_aws."""
    return {
        name: boto3.client(name, region_name=REGION)
        for name in ("ecs", "codedeploy", "s3", "scheduler")
    }


def run_pipeline(world: DevWorld, workdir: Path, commit: str, **kwargs: Any) -> PipelineRun:
    """The planned pipeline run to its end on the world's recorded clients (CodeDeploy
    simulated by the run, on the setup's ECS client so only the code's calls are recorded)."""
    run = PipelineRun(
        plan=world.plan,
        workdir=workdir,
        ecs=world.client("ecs"),
        s3=world.client("s3"),
        codedeploy=world.client("codedeploy"),
        commit=commit,
        simulator_ecs=world.setup["ecs"],
        client=lambda service, region: world.client(service),
        **kwargs,
    )
    run.run()
    return run

"""The pipeline derives what it deploys from what runs right before its deploy action.

The planned pipeline runs against moto (`pipeline_run.PipelineRun`): a Pulumi change that
lands while the approval waits (or right after the build) must be what deploys, with only the
image replaced; a change only of the image must never revert it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from delivery.promotion import (
    latest_record_key,
    new_record,
    read_record,
    release_record_key,
    zipped,
)
from tests.delivery_program.helpers import stack_value
from tests.delivery_program.pipeline_run import PipelineRun
from tests.delivery_program.runner import delivery_plan

REGION = "eu-west-1"
ACCOUNT = "123456789012"
COMMIT = "3f9c2e1d0a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
PORTS = {"api": 8000, "web": 8080}
BOOTSTRAP = "public.ecr.aws/nginx/nginx:stable"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        yield {name: boto3.client(name, region_name=REGION) for name in ("ec2", "ecs", "ecr", "s3")}


def _family(stack: str, service: str) -> str:
    return f"ecs-delivery-{stack}-{service}"


def _register(ecs: Any, family: str, service: str, image: str, memory: str) -> str:
    return ecs.register_task_definition(
        family=family,
        cpu="256",
        memory=memory,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{service}-execution",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{service}-task",
        containerDefinitions=[
            {
                "name": service,
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": PORTS[service], "protocol": "tcp"}],
                "environment": [{"name": "LOG_LEVEL", "value": "info"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def _environment(aws: dict[str, Any], stack: str, *, family_suffix: str = "") -> dict[str, str]:
    """The stack's cluster and services as `pulumi up` leaves them; returns their subnet/sg."""
    ec2, ecs, s3 = aws["ec2"], aws["ecs"], aws["s3"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=stack, Description="tasks", VpcId=vpc)["GroupId"]
    cluster = f"ecs-delivery-{stack}"
    ecs.create_cluster(clusterName=cluster)
    for service in PORTS:
        arn = _register(ecs, _family(stack, service) + family_suffix, service, BOOTSTRAP, "512")
        ecs.create_service(
            cluster=cluster,
            serviceName=service,
            taskDefinition=arn,
            desiredCount=1,
            launchType="FARGATE",
            platformVersion="1.4.0",
            deploymentController={"type": "CODE_DEPLOY"},
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [subnet],
                    "securityGroups": [group],
                    "assignPublicIp": "DISABLED",
                }
            },
        )
    s3.create_bucket(
        Bucket=f"ecs-delivery-{stack}-{ACCOUNT}-{REGION}-artifacts",
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    return {"subnet": subnet, "securityGroup": group}


def _push_built_images(ecr: Any) -> dict[str, str]:
    """What the dev build pushed for COMMIT (tag = its first 12 characters): service -> URI."""
    built = {}
    for service in PORTS:
        repository = f"ecs-delivery-dev/{service}"
        ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
        layer = "sha256:" + hashlib.sha256(service.encode()).hexdigest()
        manifest = (
            '{"schemaVersion": 2, "mediaType": '
            '"application/vnd.docker.distribution.manifest.v2+json", "config": {"mediaType": '
            '"application/vnd.docker.container.image.v1+json", "size": 1, "digest": "'
            + layer
            + '"}, "layers": [{"mediaType": '
            '"application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": "'
            + layer
            + '"}]}'
        )
        image = ecr.put_image(
            repositoryName=repository, imageManifest=manifest, imageTag=COMMIT[:12]
        )
        digest = image["image"]["imageId"]["imageDigest"]
        built[service] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}@{digest}"
    return built


def _pulumi_raises_memory(ecs: Any, stack: str, memory: str = "1024") -> None:
    """A `pulumi up` rollout: a new revision with more memory (same image) now runs."""
    for service in PORTS:
        current = ecs.describe_services(cluster=f"ecs-delivery-{stack}", services=[service])
        running = current["services"][0]["taskDefinition"]
        described = ecs.describe_task_definition(taskDefinition=running)["taskDefinition"]
        image = described["containerDefinitions"][0]["image"]
        arn = _register(ecs, _family(stack, service), service, image, memory)
        ecs.update_service(cluster=f"ecs-delivery-{stack}", service=service, taskDefinition=arn)


def _dev_plan_with_approval():
    pipeline = stack_value("dev", "pipeline")
    pipeline["approval"] = True
    return delivery_plan("dev", overrides={"pipeline": pipeline})


def _upstream_record(built: dict[str, str]) -> bytes:
    from datetime import UTC, datetime

    record = new_record(
        source_stack="dev",
        commit=COMMIT,
        images={service: {service: uri} for service, uri in built.items()},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return zipped(record)


def _run(plan, aws, tmp_path: Path, stack: str, **kwargs: Any) -> PipelineRun:
    run = PipelineRun(
        plan=plan, workdir=tmp_path, ecs=aws["ecs"], s3=aws["s3"], commit=COMMIT, **kwargs
    )
    run.run()
    return run


def _deployed(run: PipelineRun) -> dict[str, dict[str, Any]]:
    return {d.service: d.task_definition for d in run.deployments}


def test_a_pulumi_change_made_while_the_dev_approval_waits_is_deployed_with_the_new_image(
    aws, tmp_path
):
    _environment(aws, "dev")
    built = _push_built_images(aws["ecr"])
    run = _run(
        _dev_plan_with_approval(),
        aws,
        tmp_path,
        "dev",
        on_approval=lambda: _pulumi_raises_memory(aws["ecs"], "dev"),
    )
    deployed = _deployed(run)
    assert sorted(deployed) == ["api", "web"]
    for service, task_definition in deployed.items():
        assert task_definition["memory"] == "1024", service  # the Pulumi change is kept
        assert task_definition["containerDefinitions"][0]["image"] == built[service]
        assert task_definition["family"] == _family("dev", service)


def test_a_pulumi_change_right_after_the_dev_build_is_deployed(aws, dev, tmp_path):
    _environment(aws, "dev")
    _push_built_images(aws["ecr"])

    def after(stage: str) -> None:
        if stage == "Build":
            _pulumi_raises_memory(aws["ecs"], "dev")

    deployed = _deployed(_run(dev, aws, tmp_path, "dev", after_stage=after))
    assert {s: td["memory"] for s, td in deployed.items()} == {"api": "1024", "web": "1024"}


def test_a_pulumi_change_made_while_the_prod_approval_waits_is_deployed_with_the_promoted_image(
    aws, prod, tmp_path
):
    _environment(aws, "prod")
    built = _push_built_images(aws["ecr"])
    run = _run(
        prod,
        aws,
        tmp_path,
        "prod",
        upstream_record=_upstream_record(built),
        on_approval=lambda: _pulumi_raises_memory(aws["ecs"], "prod", memory="2048"),
    )
    deployed = _deployed(run)
    for service, task_definition in deployed.items():
        assert task_definition["memory"] == "2048", service
        assert task_definition["containerDefinitions"][0]["image"] == built[service]
        assert task_definition["family"] == _family("prod", service)


def test_the_appspec_carries_the_running_network_and_platform_version(aws, dev, tmp_path):
    network = _environment(aws, "dev")
    _push_built_images(aws["ecr"])
    run = _run(dev, aws, tmp_path, "dev")
    for deployment in run.deployments:
        properties = deployment.appspec["Resources"][0]["TargetService"]["Properties"]
        assert properties["NetworkConfiguration"] == {
            "awsvpcConfiguration": {
                "subnets": [network["subnet"]],
                "securityGroups": [network["securityGroup"]],
                "assignPublicIp": "DISABLED",
            }
        }
        assert properties["PlatformVersion"] == "1.4.0"
        assert properties["TaskDefinition"] == deployment.task_definition["taskDefinitionArn"]
        assert properties["LoadBalancerInfo"] == {
            "ContainerName": deployment.service,
            "ContainerPort": PORTS[deployment.service],
        }


def test_a_new_service_running_its_template_revision_deploys_into_its_own_family(
    aws, dev, tmp_path
):
    _environment(aws, "dev", family_suffix="-template")
    _push_built_images(aws["ecr"])
    deployed = _deployed(_run(dev, aws, tmp_path, "dev"))
    assert {s: td["family"] for s, td in deployed.items()} == {
        "api": "ecs-delivery-dev-api",
        "web": "ecs-delivery-dev-web",
    }


def test_publish_writes_the_release_and_latest_json_and_the_zip_of_the_built_digests_only(
    aws, dev, tmp_path
):
    _environment(aws, "dev")  # every service runs the bootstrap image before the first ship
    built = _push_built_images(aws["ecr"])
    _run(dev, aws, tmp_path, "dev")
    bucket = f"ecs-delivery-dev-{ACCOUNT}-{REGION}-artifacts"
    s3 = aws["s3"]
    keys = [release_record_key("dev", COMMIT), latest_record_key("dev"), "promotion/dev.zip"]
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(keys)
    for key in keys:
        stored = s3.get_object(Bucket=bucket, Key=key)
        expected_type = "application/zip" if key.endswith(".zip") else "application/json"
        assert stored["ContentType"] == expected_type, key
        record = read_record(stored["Body"].read())
        assert record.commit == COMMIT
        assert record.images == {service: {service: uri} for service, uri in built.items()}
        assert BOOTSTRAP not in record.to_json()

"""The pipeline's Deploy ships only images, over what runs when it deploys (runtime.rollout).

The planned pipeline runs against moto (`pipeline_run.PipelineRun`, CodeDeploy's completion and
StopDeployment simulated where moto lacks them): a Pulumi change that lands while the approval
waits, right after the build, or even after the Deploy action read what runs and before it took
the deployment group's lock, must be what deploys, with only the image replaced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecs_delivery.offline.codedeploy_sim import create_group, lifecycle_of, switch_primary
from ecs_delivery.runtime import clock as runtime_clock
from ecs_delivery.runtime.live import running_task_definition
from ecs_delivery.runtime.promotion import (
    latest_record_key,
    new_record,
    read_record,
    release_record_key,
    zipped,
)
from ecs_delivery.runtime.taskdef import describe, effective_content
from tests.conftest import make_plan
from tests.support.pipeline_run import PipelineRun
from tests.support.plans import stack_config, stack_value, without_workers

REGION = "eu-west-1"
ACCOUNT = "123456789012"
COMMIT = "3f9c2e1d0a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
PORTS = {"api": 8000, "web": 8080}
BOOTSTRAP = "public.ecr.aws/nginx/nginx:stable"


@pytest.fixture(scope="module")
def dev_codedeploy():
    """dev's CodeDeploy services (the world below has them only); the worker's pipeline
    deploy is tested in tests/components/ecs_engine/test_ecs_deployers.py."""
    return make_plan("dev", overrides=without_workers("dev"))


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        yield {
            name: boto3.client(name, region_name=REGION)
            for name in ("ec2", "ecs", "ecr", "s3", "codedeploy")
        }


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
    codedeploy = aws["codedeploy"]
    codedeploy.create_application(applicationName=cluster, computePlatform="ECS")
    for service in PORTS:
        create_group(codedeploy, cluster, service, cluster, service)
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


def _running(ecs: Any, stack: str, service: str) -> dict[str, Any]:
    found = ecs.describe_services(cluster=f"ecs-delivery-{stack}", services=[service])
    return describe(ecs, running_task_definition(found["services"][0]))["taskDefinition"]


def _pulumi_raises_memory(
    ecs: Any, stack: str, memory: str = "1024", services: tuple[str, ...] = tuple(PORTS)
) -> None:
    """A completed `pulumi up` rollout: a revision with more memory (same image) is PRIMARY."""
    for service in services:
        image = _running(ecs, stack, service)["containerDefinitions"][0]["image"]
        arn = _register(ecs, _family(stack, service), service, image, memory)
        switch_primary(ecs, f"ecs-delivery-{stack}", service, arn)


def _dev_plan_with_approval():
    pipeline = stack_value("dev", "pipeline")
    pipeline["approval"] = True
    return make_plan("dev", overrides={"pipeline": pipeline, **without_workers("dev")})


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
        plan=plan,
        workdir=tmp_path,
        ecs=aws["ecs"],
        s3=aws["s3"],
        codedeploy=aws["codedeploy"],
        commit=COMMIT,
        **kwargs,
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


def test_a_pulumi_change_right_after_the_dev_build_is_deployed(aws, dev_codedeploy, tmp_path):
    _environment(aws, "dev")
    _push_built_images(aws["ecr"])

    def after(stage: str) -> None:
        if stage == "Build":
            _pulumi_raises_memory(aws["ecs"], "dev")

    deployed = _deployed(_run(dev_codedeploy, aws, tmp_path, "dev", after_stage=after))
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


def test_a_pulumi_change_landing_after_the_deploy_read_what_runs_is_not_reverted(
    aws, dev_codedeploy, tmp_path
):
    """The window Derive + CodeDeployToECS left open: a `pulumi up` rollout completes after
    the deploy read what runs and before its deployment holds the group's lock. The ship's
    re-check under the lock sees it, stops its stale deployment and merges again."""
    _environment(aws, "dev")
    built = _push_built_images(aws["ecr"])
    landed: list[str] = []

    def pulumi_up_completes(params: dict[str, Any]) -> None:
        service = params["deploymentGroupName"]
        if service not in landed:
            landed.append(service)
            _pulumi_raises_memory(aws["ecs"], "dev", services=(service,))

    run = _run(dev_codedeploy, aws, tmp_path, "dev", before_create=pulumi_up_completes)

    assert landed == ["api", "web"]
    assert run.simulated is not None and len(run.simulated.stopped) == 2  # one per service
    for service in PORTS:
        runs = _running(aws["ecs"], "dev", service)
        assert runs["memory"] == "1024", service  # the Pulumi change is kept
        assert runs["containerDefinitions"][0]["image"] == built[service]


def test_the_shipped_revision_is_what_ran_with_only_the_image_replaced(
    aws, dev_codedeploy, tmp_path
):
    _environment(aws, "dev")
    built = _push_built_images(aws["ecr"])
    before = {service: _running(aws["ecs"], "dev", service) for service in PORTS}

    run = _run(dev_codedeploy, aws, tmp_path, "dev")

    for deployment in run.deployments:
        old = effective_content(before[deployment.service])
        old["containerDefinitions"][0]["image"] = built[deployment.service]
        assert effective_content(deployment.task_definition) == old
        properties = deployment.appspec["Resources"][0]["TargetService"]["Properties"]
        assert properties["TaskDefinition"] == deployment.task_definition["taskDefinitionArn"]
        assert properties["LoadBalancerInfo"] == {
            "ContainerName": deployment.service,
            "ContainerPort": PORTS[deployment.service],
        }
        # The AppSpec is complete: any network and platform version come from what runs
        # (tests/runtime/test_rollout.py checks them against a PRIMARY task set).
        assert set(properties) <= {
            "TaskDefinition",
            "LoadBalancerInfo",
            "NetworkConfiguration",
            "PlatformVersion",
        }
        assert deployment.appspec["Hooks"] == [
            {"AfterAllowTestTraffic": "ecs-delivery-dev-validation-hook"}
        ]
    assert [d.service for d in run.deployments] == ["api", "web"]


def test_a_retried_deploy_of_images_that_already_run_starts_no_deployment(
    aws, dev_codedeploy, tmp_path
):
    _environment(aws, "dev")
    _push_built_images(aws["ecr"])
    first = _run(dev_codedeploy, aws, tmp_path / "first", "dev")
    assert first.simulated is not None
    started = len(first.simulated.deployments)

    again = _run(dev_codedeploy, aws, tmp_path / "again", "dev")

    assert again.deployments == []
    assert len(first.simulated.deployments) == started == 2


def test_a_new_service_running_its_template_revision_deploys_into_its_own_family(
    aws, dev_codedeploy, tmp_path
):
    _environment(aws, "dev", family_suffix="-template")
    _push_built_images(aws["ecr"])
    deployed = _deployed(_run(dev_codedeploy, aws, tmp_path, "dev"))
    assert {s: td["family"] for s, td in deployed.items()} == {
        "api": "ecs-delivery-dev-api",
        "web": "ecs-delivery-dev-web",
    }


def test_publish_writes_the_release_and_latest_json_and_the_zip_of_the_built_digests_only(
    aws, dev_codedeploy, tmp_path
):
    _environment(aws, "dev")  # every service runs the bootstrap image before the first ship
    built = _push_built_images(aws["ecr"])
    _run(dev_codedeploy, aws, tmp_path, "dev")
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


def test_with_prods_canary_and_termination_wait_the_prod_pipeline_ships_both_services(
    aws, prod, tmp_path
):
    """Issue 21, problem 8: prod's web shifts a 10 % canary for 5 minutes, api 10 % a minute,
    and both keep their original tasks 60 minutes. The Deploy step ships one service after the
    other and must return for each once its traffic has shifted, well inside its build timeout,
    not wait out (or time out on) the termination wait."""
    stack = stack_config("prod")
    _environment(aws, "prod")
    built = _push_built_images(aws["ecr"])
    started: list[float] = []
    run = _run(
        prod,
        aws,
        tmp_path,
        "prod",
        upstream_record=_upstream_record(built),
        lifecycles={name: lifecycle_of(stack, name) for name in PORTS},
        on_approval=lambda: started.append(runtime_clock.now()),
    )
    assert run.simulated is not None
    shipped = run.simulated.shipped()
    assert sorted(d.group.service for d in shipped) == ["api", "web"]
    assert all(d.status == "InProgress" and d.in_termination_wait for d in shipped)
    for service, task_definition in _deployed(run).items():
        assert task_definition["containerDefinitions"][0]["image"] == built[service]
    deploy_took = run.simulated.clock.time() - started[0]
    ships = sum(stack.ships_in_minutes(name) for name in PORTS) * 60
    assert ships - 120 <= deploy_took <= ships + 120  # each ship polled every 15 s
    assert deploy_took < stack.pipeline.build_timeout_minutes * 60

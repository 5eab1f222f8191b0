"""delivery.build: deployment artifacts derived from the running service, against moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from buildtest_support import (
    CLUSTER,
    EXECUTION_ROLE,
    LIVE_IMAGE,
    REGION,
    SECRET_ARN,
    SERVICE,
    SIDECAR_IMAGE,
    TASK_ROLE,
    Deployed,
    container_definitions,
    push_image,
    register,
    repository_url,
)

from delivery import build, taskdef
from delivery.build import (
    IMAGE_PLACEHOLDER,
    BuildError,
    appspec,
    current_task_definition,
    render_appspec,
    resolve_image_digest,
    taskdef_template,
    write_service_artifacts,
)

BUILT_IMAGE = repository_url("web") + "@sha256:" + "b" * 64


def _template(ecs: Any, deployed: Deployed) -> dict[str, Any]:
    described = current_task_definition(ecs, cluster=deployed.cluster, service=deployed.service)
    return taskdef_template(described, container_name="app", container_port=8080)


def _container(template: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in template["containerDefinitions"] if c["name"] == name)


def test_derived_taskdef_keeps_pulumi_owned_settings_of_the_current_revision(
    ecs: Any, deployed: Deployed
) -> None:
    template = _template(ecs, deployed)
    app = _container(template, "app")

    assert (template["family"], template["cpu"], template["memory"]) == ("dev-web", "256", "1024")
    assert template["executionRoleArn"] == EXECUTION_ROLE
    assert template["taskRoleArn"] == TASK_ROLE
    assert template["networkMode"] == "awsvpc"
    assert template["requiresCompatibilities"] == ["FARGATE"]
    assert app["memory"] == 512
    assert app["environment"] == [{"name": "LOG_LEVEL", "value": "info"}]
    assert app["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}]
    assert app["logConfiguration"]["options"]["awslogs-group"] == "/ecs/dev/web"
    assert (app["readonlyRootFilesystem"], app["user"]) == (True, "1000")


def test_derived_taskdef_puts_the_placeholder_only_on_the_built_container(
    ecs: Any, deployed: Deployed
) -> None:
    template = _template(ecs, deployed)

    assert _container(template, "app")["image"] == IMAGE_PLACEHOLDER == "<IMAGE1_NAME>"
    assert _container(template, "otel")["image"] == SIDECAR_IMAGE
    assert LIVE_IMAGE not in json.dumps(template)


def test_derived_taskdef_drops_fields_only_describe_returns(ecs: Any, deployed: Deployed) -> None:
    template = _template(ecs, deployed)

    for field in ("taskDefinitionArn", "revision", "status", "compatibilities", "tags"):
        assert field not in template
    assert not set(template) & set(taskdef.DESCRIBE_ONLY_FIELDS)


def test_derived_taskdef_with_an_image_is_a_valid_register_task_definition_request(
    ecs: Any, deployed: Deployed
) -> None:
    # What CodeDeployToECS does: swap the placeholder for imageDetail.json's URI, register.
    text = json.dumps(_template(ecs, deployed)).replace(IMAGE_PLACEHOLDER, BUILT_IMAGE)
    request = json.loads(text)
    model = ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape

    report = ParamValidator().validate(request, model)

    assert not report.has_errors(), report.generate_report()
    registered = ecs.register_task_definition(**request)["taskDefinition"]
    assert _container(registered, "app")["image"] == BUILT_IMAGE
    assert registered["memory"] == "1024"


def test_derived_taskdef_follows_the_primary_task_set_not_an_older_revision(
    ecs: Any,
) -> None:
    ecs.create_cluster(clusterName=CLUSTER)
    old = register(ecs, memory="1024")
    new = register(ecs, memory="2048")
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition=old,
        desiredCount=1,
        deploymentController={"type": "EXTERNAL"},
    )
    ecs.create_task_set(cluster=CLUSTER, service=SERVICE, taskDefinition=old)
    primary = ecs.create_task_set(cluster=CLUSTER, service=SERVICE, taskDefinition=new)
    ecs.update_service_primary_task_set(
        cluster=CLUSTER, service=SERVICE, primaryTaskSet=primary["taskSet"]["taskSetArn"]
    )
    # The deployment finished: the original task set is gone (while it is still there, the
    # derive refuses: see test_deriving_while_another_deployment_moves_traffic_is_refused).
    for task_set in ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0][
        "taskSets"
    ]:
        if task_set["status"] != "PRIMARY":
            ecs.delete_task_set(cluster=CLUSTER, service=SERVICE, taskSet=task_set["taskSetArn"])

    described = current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)

    assert described["taskDefinitionArn"] == new
    assert described["memory"] == "2048"


def test_primary_task_set_wins_over_the_service_task_definition_field() -> None:
    # moto always keeps service.taskDefinition equal to the primary set's revision, so the
    # case where they differ is served by a Stubber.
    ecs = boto3.client("ecs", region_name=REGION)
    primary = f"arn:aws:ecs:{REGION}:123456789012:task-definition/dev-web:7"
    stale = f"arn:aws:ecs:{REGION}:123456789012:task-definition/dev-web:6"
    with Stubber(ecs) as stub:
        stub.add_response(
            "describe_services",
            {
                "services": [
                    {
                        "status": "ACTIVE",
                        "taskDefinition": stale,
                        "taskSets": [
                            {"status": "DRAINING", "taskDefinition": stale},
                            {"status": "PRIMARY", "taskDefinition": primary},
                        ],
                    }
                ]
            },
            {"cluster": CLUSTER, "services": [SERVICE]},
        )
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": {"taskDefinitionArn": primary, "family": "dev-web"}},
            {"taskDefinition": primary},
        )
        described = current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)

    assert described["taskDefinitionArn"] == primary


def test_missing_service_fails_with_a_hint_to_run_pulumi_up_first(ecs: Any) -> None:
    ecs.create_cluster(clusterName=CLUSTER)

    with pytest.raises(BuildError, match=r"'dev-web' was not found in cluster 'dev'.*pulumi up"):
        current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)


def test_deleted_service_counts_as_missing(ecs: Any, deployed: Deployed) -> None:
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=0)
    ecs.delete_service(cluster=CLUSTER, service=SERVICE, force=True)

    with pytest.raises(BuildError, match="run `pulumi up`"):
        current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)


def test_unknown_container_is_refused_with_the_known_names(ecs: Any, deployed: Deployed) -> None:
    described = current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)

    with pytest.raises(BuildError, match=r"container 'web' is not in .*containers are: app, otel"):
        taskdef_template(described, container_name="web")


def test_container_port_that_is_not_mapped_is_refused(ecs: Any, deployed: Deployed) -> None:
    described = current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)

    with pytest.raises(BuildError, match=r"maps no port 9090 \(mapped: 8080\)"):
        taskdef_template(described, container_name="app", container_port=9090)


def test_appspec_names_container_port_placeholder_and_validation_hook() -> None:
    text = render_appspec(
        appspec(container_name="app", container_port=8080, validation_hook="dev-validate")
    )
    parsed = yaml.safe_load(text)

    assert parsed == {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": "<TASK_DEFINITION>",
                        "LoadBalancerInfo": {"ContainerName": "app", "ContainerPort": 8080},
                    },
                }
            }
        ],
        "Hooks": [{"AfterAllowTestTraffic": "dev-validate"}],
    }
    assert text.startswith("version: 0.0\n")


def test_appspec_without_validation_hook_has_no_hooks_section() -> None:
    assert "Hooks" not in appspec(container_name="app", container_port=8080)


def test_image_digest_is_resolved_from_ecr(ecr: Any) -> None:
    ecr.create_repository(repositoryName="shop/web", imageTagMutability="IMMUTABLE")
    digest = push_image(ecr, "shop/web", "0123456789ab")
    push_image(ecr, "shop/web", "ba9876543210", layer_seed="other")

    uri = resolve_image_digest(ecr, repository_url("shop/web"), "0123456789ab")

    assert uri == f"{repository_url('shop/web')}@{digest}"
    assert digest.startswith("sha256:") and len(digest) == 71


def test_unpushed_tag_fails_clearly(ecr: Any) -> None:
    ecr.create_repository(repositoryName="web")

    with pytest.raises(BuildError, match=r"web:0123456789ab is not in ECR"):
        resolve_image_digest(ecr, repository_url("web"), "0123456789ab")


def test_missing_repository_fails_with_a_hint_to_run_pulumi_up(ecr: Any) -> None:
    with pytest.raises(BuildError, match=r"repository 'web' does not exist.*pulumi up"):
        resolve_image_digest(ecr, repository_url("web"), "0123456789ab")


def test_repository_url_that_is_not_ecr_is_refused_before_any_call() -> None:
    with pytest.raises(BuildError, match="not an ECR repository URL"):
        build.parse_repository_url("docker.io/library/nginx")


def test_image_tag_is_the_short_commit() -> None:
    assert build.image_tag("0123456789abcdef0123456789abcdef01234567") == "0123456789ab"
    assert build.image_tag("0123456789abcdef", length=7) == "0123456"


@pytest.mark.parametrize(
    ("version", "message"),
    [("", "CODEBUILD_RESOLVED_SOURCE_VERSION is not set"), ("-rf/x", "valid image tag")],
)
def test_image_tag_refuses_versions_that_cannot_tag_an_image(version: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        build.image_tag(version)


def test_write_service_artifacts_writes_the_three_files(
    ecs: Any, deployed: Deployed, tmp_path: Path
) -> None:
    written = write_service_artifacts(
        ecs,
        name="web",
        cluster=CLUSTER,
        service=SERVICE,
        container_name="app",
        container_port=8080,
        image_uri=BUILT_IMAGE,
        out_dir=tmp_path / "web",
        validation_hook="dev-validate",
    )

    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == [
        "appspec-web.yaml",
        "imageDetail.json",
        "taskdef-web.json",
    ]
    assert json.loads(written.image_detail.read_text()) == {"ImageURI": BUILT_IMAGE}
    taskdef = json.loads(written.taskdef.read_text())
    assert _container(taskdef, "app")["image"] == "<IMAGE1_NAME>"
    hooks = yaml.safe_load(written.appspec.read_text())["Hooks"]
    assert hooks == [{"AfterAllowTestTraffic": "dev-validate"}]


def test_write_service_artifacts_refuses_a_tag_reference(
    ecs: Any, deployed: Deployed, tmp_path: Path
) -> None:
    with pytest.raises(BuildError, match="not a digest reference"):
        write_service_artifacts(
            ecs,
            name="web",
            cluster=CLUSTER,
            service=SERVICE,
            container_name="app",
            container_port=8080,
            image_uri=repository_url("web") + ":latest",
            out_dir=tmp_path,
        )
    assert not list(tmp_path.iterdir())


def test_memory_change_by_pulumi_reaches_the_next_pipeline_taskdef(
    ecs: Any, deployed: Deployed
) -> None:
    # Pulumi registers a new revision (more memory, same live image) and updates the service.
    bigger = register(ecs, memory="2048", containers=container_definitions(memory=1024))
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=bigger)

    template = _template(ecs, deployed)

    assert template["memory"] == "2048"
    assert _container(template, "app")["memory"] == 1024


def test_derived_taskdef_registers_into_the_given_family_not_the_running_ones(
    ecs: Any, deployed: Deployed
) -> None:
    # A new service runs Pulumi's template revision; what the pipeline deploys is the service's.
    described = current_task_definition(ecs, cluster=CLUSTER, service=SERVICE)
    template = taskdef_template(
        {**described, "family": "dev-web-template"}, container_name="app", family="dev-web"
    )

    assert template["family"] == "dev-web"


def test_appspec_carries_the_running_network_configuration_and_platform_version() -> None:
    from delivery.live import Running

    now = Running(
        task_definition_arn=f"arn:aws:ecs:{REGION}:123456789012:task-definition/dev-web:3",
        subnets=("subnet-a", "subnet-b"),
        security_groups=("sg-1",),
        platform_version="1.4.0",
    )
    properties = appspec(container_name="app", container_port=8080, network=now)["Resources"][0][
        "TargetService"
    ]["Properties"]

    assert properties["NetworkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"],
            "securityGroups": ["sg-1"],
            "assignPublicIp": "DISABLED",
        }
    }
    assert properties["PlatformVersion"] == "1.4.0"


def test_deriving_while_another_deployment_moves_traffic_is_refused() -> None:
    # moto creates no task sets for CODE_DEPLOY services; a Stubber returns what AWS shows
    # while a blue/green deployment runs (a PRIMARY and an ACTIVE task set).
    ecs = boto3.client("ecs", region_name=REGION)
    arn = f"arn:aws:ecs:{REGION}:123456789012:task-definition/dev-web:7"
    with Stubber(ecs) as stub:
        stub.add_response(
            "describe_services",
            {
                "services": [
                    {
                        "status": "ACTIVE",
                        "serviceName": SERVICE,
                        "taskSets": [
                            {"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": arn},
                            {"id": "ecs-svc/2", "status": "ACTIVE", "taskDefinition": arn + "8"},
                        ],
                    }
                ]
            },
            {"cluster": CLUSTER, "services": [SERVICE]},
        )
        with pytest.raises(BuildError, match=r"being deployed \(task sets ecs-svc/2 .*retry"):
            build.running_revision(ecs, cluster=CLUSTER, service=SERVICE)

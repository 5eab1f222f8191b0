"""CodePipeline and CodeBuild: stages, actions, artifact wiring, buildspecs, triggers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from ecs_delivery.components import buildspec as specs
from ecs_delivery.components import pipeline as pipeline_module
from ecs_delivery.components.codepipeline import (
    Action,
    PipelineWiringError,
    Stage,
    check_artifact_wiring,
)
from ecs_delivery.components.config import ConfigError
from ecs_delivery.runtime.build import FollowerTask
from ecs_delivery.runtime.promotion import new_record
from tests.conftest import make_plan
from tests.support.plans import (
    PIPELINE,
    PROJECT,
    ROLE_POLICY,
    as_list,
    buildspec,
    inputs,
    pipeline_stages,
    policy,
    stages_from_plan,
    statement,
)

DEV_BUCKET = "ecs-delivery-dev-123456789012-eu-west-1-artifacts"
PROD_BUCKET = "ecs-delivery-prod-123456789012-eu-west-1-artifacts"
CONNECTION = (
    "arn:aws:codeconnections:eu-west-1:111111111111:connection/8c2b6f0e-1f7a-4d0e-a3a1-6e4b2d9c7f11"
)


def _action(name, category, provider, configuration, inputs=(), outputs=(), namespace=None):
    action = {
        "name": name,
        "category": category,
        "owner": "AWS",
        "provider": provider,
        "version": "1",
        "configuration": configuration,
        "inputArtifacts": list(inputs),
        "outputArtifacts": list(outputs),
        "runOrder": 1,
    }
    if namespace:
        action["namespace"] = namespace
    return action


def _deploy(stack: str) -> dict:
    """One CodeBuild action ships every service from this execution's record."""
    return {
        "name": "Deploy",
        "actions": [
            _action(
                "Deploy",
                "Build",
                "CodeBuild",
                {"ProjectName": f"ecs-delivery-{stack}-deploy"},
                inputs=["promotion"],
            )
        ],
    }


def _publish(stack: str) -> dict:
    return {
        "name": "Publish",
        "actions": [
            _action(
                "PromotionRecord",
                "Build",
                "CodeBuild",
                {"ProjectName": f"ecs-delivery-{stack}-publish"},
                inputs=["promotion"],
            )
        ],
    }


def _project_buildspec(plan, project_name: str) -> dict:
    found = [p for p in plan.of_type(PROJECT) if p.inputs["name"] == project_name]
    assert len(found) == 1, project_name
    return yaml.safe_load(found[0].inputs["source"]["buildspec"])


def test_dev_pipeline_is_source_build_deploy_publish_with_exact_actions(dev):
    pipeline = inputs(dev, PIPELINE, "pipeline")
    assert pipeline["name"] == "ecs-delivery-dev"
    assert (pipeline["pipelineType"], pipeline["executionMode"]) == ("V2", "SUPERSEDED")
    assert pipeline["artifactStores"] == [{"location": DEV_BUCKET, "type": "S3"}]
    assert pipeline["stages"] == [
        {
            "name": "Source",
            "actions": [
                _action(
                    "Source",
                    "Source",
                    "CodeStarSourceConnection",
                    {
                        "ConnectionArn": CONNECTION,
                        "FullRepositoryId": "example-org/shop",
                        "BranchName": "main",
                        "OutputArtifactFormat": "CODE_ZIP",
                        "DetectChanges": "true",
                    },
                    outputs=["SourceCode"],
                    namespace="Source",
                )
            ],
        },
        {
            "name": "Build",
            "actions": [
                _action(
                    "Build",
                    "Build",
                    "CodeBuild",
                    {"ProjectName": "ecs-delivery-dev-build"},
                    inputs=["SourceCode"],
                    outputs=["promotion"],
                    namespace="Build",
                )
            ],
        },
        _deploy("dev"),
        _publish("dev"),
    ]


def test_prod_pipeline_takes_the_upstream_record_and_asks_approval_naming_commit_and_digests(prod):
    stages = pipeline_stages(prod)
    assert [s["name"] for s in stages] == [
        "Source", "Validate", "Approve", "Deploy", "Publish"
    ]  # fmt: skip
    assert stages[0]["actions"] == [
        _action(
            "UpstreamRecord",
            "Source",
            "S3",
            {
                "S3Bucket": DEV_BUCKET,
                "S3ObjectKey": "promotion/dev.zip",
                "PollForSourceChanges": "false",
            },
            outputs=["UpstreamRecord"],
            namespace="Source",
        )
    ]
    assert stages[1]["actions"] == [
        _action(
            "Validate",
            "Build",
            "CodeBuild",
            {"ProjectName": "ecs-delivery-prod-validate"},
            inputs=["UpstreamRecord"],
            outputs=["promotion"],
            namespace="Validate",
        )
    ]
    assert stages[2]["actions"] == [
        _action(
            "Approve",
            "Approval",
            "Manual",
            {"CustomData": "Promote to prod from dev: #{Validate.PROMOTED_SUMMARY}"},
        )
    ]
    # What runs is read after the approval, by the deploy itself.
    assert stages[3] == _deploy("prod")
    assert stages[4] == _publish("prod")


def test_the_approval_variable_is_exported_by_the_validate_build_and_names_commit_and_digests(
    prod,
):
    spec = buildspec(prod)
    assert spec["env"]["exported-variables"] == ["PROMOTED_COMMIT", "PROMOTED_SUMMARY"]
    assert any("record-field --record promotion.json --field summary" in c
               for c in spec["phases"]["pre_build"]["commands"])  # fmt: skip
    digest = "sha256:" + "ab" * 32
    record = new_record(
        source_stack="dev",
        commit="3f9c2e1",
        images={"web": {"web": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/r@{digest}"}},
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert record.summary() == f"commit 3f9c2e1 from dev: web/web={digest[:19]}"


def test_registered_stages_pass_the_wiring_check(dev, prod):
    assert check_artifact_wiring(stages_from_plan(dev)) == []
    assert check_artifact_wiring(stages_from_plan(prod)) == []


def test_a_dev_approval_stage_names_the_commit_when_configured():
    source = {
        "provider": "codecommit",
        "repository": "shop",
        "branch": "release",
    }
    plan = make_plan("dev", overrides={"pipeline": {"source": source, "approval": True}})
    stages = pipeline_stages(plan)
    assert [s["name"] for s in stages] == [
        "Source", "Build", "Approve", "Deploy", "Publish"
    ]  # fmt: skip
    assert stages[0]["actions"][0]["provider"] == "CodeCommit"
    assert stages[0]["actions"][0]["configuration"] == {
        "RepositoryName": "shop",
        "BranchName": "release",
        "OutputArtifactFormat": "CODE_ZIP",
        "PollForSourceChanges": "true",
    }
    assert stages[2]["actions"][0]["configuration"] == {
        "CustomData": "Deploy commit #{Source.CommitId} to dev?"
    }
    repository = statement(policy(plan, "pipeline-codepipeline"), "SourceRepository")
    assert repository["Resource"] == "arn:aws:codecommit:eu-west-1:123456789012:shop"


# --- the wiring check -----------------------------------------------------------------------


def _source() -> Action:
    return Action(
        name="Source", category="Source", provider="S3", configuration={},
        output_artifacts=("src",), namespace="Source",
    )  # fmt: skip


def _build(outputs: tuple[str, ...], run_order: int = 1, namespace: str | None = "Build") -> Action:
    return Action(
        name="Build", category="Build", provider="CodeBuild", configuration={},
        input_artifacts=("src",), output_artifacts=outputs, run_order=run_order,
        namespace=namespace,
    )  # fmt: skip


def _deploy_action(service: str, *, run_order: int = 1, **configuration: str) -> Action:
    return Action(
        name=service, category="Deploy", provider="CodeDeployToECS",
        configuration=configuration, input_artifacts=(service,), run_order=run_order,
    )  # fmt: skip


def test_an_input_artifact_no_earlier_action_produces_is_reported():
    stages = [
        Stage("Source", (_source(),)),
        Stage("Build", (_build(("api", "promotion")),)),
        Stage("Deploy", (_deploy_action("api"), _deploy_action("web"))),
    ]
    assert check_artifact_wiring(stages) == [
        "stages.Deploy.web: input artifact 'web' is not produced by an earlier action; add "
        "the action that outputs it before this one, or fix the name"
    ]


def test_an_artifact_from_a_parallel_action_is_not_available_but_from_a_lower_run_order_it_is():
    parallel = [
        Stage("Source", (_source(),)),
        Stage("Work", (_build(("web",)), _deploy_action("web"))),
    ]
    assert check_artifact_wiring(parallel) == [
        "stages.Work.web: input artifact 'web' is not produced by an earlier action; add the "
        "action that outputs it before this one, or fix the name"
    ]
    ordered = [
        Stage("Source", (_source(),)),
        Stage("Work", (_build(("web",)), _deploy_action("web", run_order=2))),
    ]
    assert check_artifact_wiring(ordered) == []


def test_configuration_artifacts_variables_duplicates_and_source_placement_are_checked():
    deploy = _deploy_action(
        "web", TaskDefinitionTemplateArtifact="api", AppSpecTemplatePath="#{Build.X} #{Nope.Y}"
    )
    stages = [
        Stage("Source", (_source(), _build(("web",), namespace=None))),
        Stage("Build", (_build(("web",)),)),
        Stage("Deploy", (deploy,)),
    ]
    assert check_artifact_wiring(stages) == [
        "stages.Source.Build: the first stage may hold only source actions",
        "stages.Source.Build: input artifact 'src' is not produced by an earlier action; add "
        "the action that outputs it before this one, or fix the name",
        "stages.Build.Build: output artifact 'web' is already produced by Source.Build; names "
        "must be unique",
        "stages.Deploy.web: configuration TaskDefinitionTemplateArtifact names 'api', which is "
        "not one of the action's input artifacts ['web']",
        "stages.Deploy.web: configuration AppSpecTemplatePath uses #{Nope.Y}, but no earlier "
        "action has namespace 'Nope'",
    ]


def test_broken_wiring_stops_the_plan_before_the_pipeline_is_registered(monkeypatch):
    def broken(**kwargs):
        # Drop the Build stage: Deploy and Publish lose the record they read.
        return [s for s in original(**kwargs) if s.name != "Build"]

    original = pipeline_module.first_environment_stages
    monkeypatch.setattr(pipeline_module, "first_environment_stages", broken)
    with pytest.raises(PipelineWiringError) as error:
        make_plan("dev", overrides={"tags": {"case": "broken-wiring"}})
    message = str(error.value)
    assert message.startswith(
        "pipeline wiring:\n  stages.Deploy.Deploy: input artifact 'promotion'"
    )
    assert "stages.Publish.PromotionRecord: input artifact 'promotion'" in message
    assert not [r for r in error.value.registrations if r.type == PIPELINE]


# --- CodeBuild --------------------------------------------------------------------------------


def test_dev_build_project_builds_images_with_the_generated_buildspec(dev):
    project = inputs(dev, PROJECT, "pipeline")
    assert project["name"] == "ecs-delivery-dev-build"
    assert project["source"]["type"] == "CODEPIPELINE"
    assert project["artifacts"] == {"type": "CODEPIPELINE"}
    assert project["environment"] == {
        "computeType": "BUILD_GENERAL1_SMALL",
        "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
        "type": "LINUX_CONTAINER",
        "imagePullCredentialsType": "CODEBUILD",
        "privilegedMode": True,
    }
    assert project["buildTimeout"] == 30
    assert project["logsConfig"] == {
        "cloudwatchLogs": {
            "groupName": "/aws/codebuild/ecs-delivery-dev-build",
            "status": "ENABLED",
        },
        "s3Logs": {"status": "DISABLED"},
    }
    spec = buildspec(dev)
    # Exactly what src/ecs_delivery/components/buildspec.py generates for these services and this tooling.
    expected = specs.buildspec(
        [
            specs.BuildService(
                name=name,
                container_name=name,
                container_port=port,
                cluster="ecs-delivery-dev",
                service=name,
                family=f"ecs-delivery-dev-{name}",
                engine=engine,
                repository_url=f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/{name}",
            )  # fmt: skip
            for name, port, engine in SERVICES["dev"]
        ],
        region="eu-west-1",
        stack="dev",
        tooling_s3_uri=_tooling(dev, DEV_BUCKET),
    )
    assert spec == expected
    # The build reads nothing about what runs and deploys nothing: it builds, records digests.
    assert " deploy --name " not in str(spec["phases"])
    assert spec["artifacts"] == {
        "base-directory": "ecs-delivery-artifacts/promotion",
        "files": ["promotion.json"],
    }


# Each stack's services in name order: (name, port, engine); dev's mailer is a worker, which
# has no port and is deployed by the ECS engine.
SERVICES = {
    "dev": (("api", 8000, "codedeploy"), ("mailer", None, "ecs"), ("web", 8080, "codedeploy")),
    "prod": (("api", 8000, "codedeploy"), ("web", 8080, "codedeploy")),
}


def _tooling(plan, bucket: str) -> str:
    key = inputs(plan, "aws:s3/bucketObjectv2:BucketObjectv2", "pipeline-tooling")["key"]
    return f"s3://{bucket}/{key}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deploy_project_ships_each_service_into_its_own_family_through_its_group(dev, prod, stack):
    plan = {"dev": dev, "prod": prod}[stack]
    project = inputs(plan, PROJECT, "pipeline-deploy")
    assert project["name"] == f"ecs-delivery-{stack}-deploy"
    assert project["environment"]["privilegedMode"] is False
    # The services in turn, each waiting for a running deployment of its group and its own.
    assert project["buildTimeout"] == len(SERVICES[stack]) * 30 * 2
    expected = specs.deploy_buildspec(
        [
            specs.DeployService(
                name=name,
                container_name=name,
                container_port=port,
                cluster=f"ecs-delivery-{stack}",
                service=name,
                family=f"ecs-delivery-{stack}-{name}",
                deployment_group=name,
                engine=engine,
                # nightly-report follows api: each ship of api moves it too.
                tasks=(FollowerTask(f"ecs-delivery-{stack}-nightly-report", "nightly-report"),)
                if name == "api"
                else (),
            )
            for name, port, engine in SERVICES[stack]
        ],
        region="eu-west-1",
        application=f"ecs-delivery-{stack}",
        validation_hook=f"ecs-delivery-{stack}-validation-hook",
        timeout_minutes=30,
        tooling_s3_uri=_tooling(plan, {"dev": DEV_BUCKET, "prod": PROD_BUCKET}[stack]),
    )
    assert _project_buildspec(plan, f"ecs-delivery-{stack}-deploy") == expected
    commands = expected["phases"]["build"]["commands"]
    assert [c.split(" deploy --name ")[1].split()[0] for c in commands] == [
        name for name, _, _ in SERVICES[stack]
    ]
    assert all("--record promotion.json" in c and "-template" not in c for c in commands)
    assert commands[0].endswith(f" --task ecs-delivery-{stack}-nightly-report=nightly-report")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_publish_project_publishes_the_record_artifact_to_this_stacks_keys(dev, prod, stack):
    plan = {"dev": dev, "prod": prod}[stack]
    bucket = {"dev": DEV_BUCKET, "prod": PROD_BUCKET}[stack]
    spec = _project_buildspec(plan, f"ecs-delivery-{stack}-publish")
    assert spec == specs.publish_buildspec(
        region="eu-west-1",
        stack=stack,
        bucket=bucket,
        zip_key=f"promotion/{stack}.zip",
        tooling_s3_uri=_tooling(plan, bucket),
    )


def test_prod_validate_project_runs_no_docker_and_uses_the_promotion_buildspec(prod):
    project = inputs(prod, PROJECT, "pipeline")
    assert project["name"] == "ecs-delivery-prod-validate"
    assert project["environment"]["privilegedMode"] is False
    assert "environmentVariables" not in project["environment"]
    spec = buildspec(prod)
    assert spec == specs.promotion_buildspec(
        region="eu-west-1",
        stack="prod",
        upstream_stack="dev",
        tooling_s3_uri=_tooling(prod, PROD_BUCKET),
    )
    assert "docker" not in str(spec["phases"])
    # A record another stack published (or one re-issued from it) fails Validate.
    assert (
        "record-field --record promotion.json --field commit --expect-source-stack dev"
        in (spec["phases"]["pre_build"]["commands"][0])
    )
    assert " deploy --name " not in str(spec["phases"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_publish_role_writes_promotion_records_and_only_this_stacks_keys(dev, prod, stack):
    plan = {"dev": dev, "prod": prod}[stack]
    bucket = {"dev": DEV_BUCKET, "prod": PROD_BUCKET}[stack]
    writers = {
        name: [
            r
            for stmt in policy(plan, name)["Statement"]
            if "s3:PutObject" in as_list(stmt["Action"])
            for r in as_list(stmt["Resource"])
            if "/promotion/" in str(r)
        ]
        for name in (
            "pipeline-codebuild",
            "pipeline-codebuild-deploy",
            "pipeline-codebuild-publish",
            "pipeline-codepipeline",
        )
    }
    assert writers == {
        "pipeline-codebuild": [],
        "pipeline-codebuild-deploy": [],
        "pipeline-codebuild-publish": [
            f"arn:aws:s3:::{bucket}/promotion/{stack}/releases/*.json",
            f"arn:aws:s3:::{bucket}/promotion/{stack}/latest.json",
            f"arn:aws:s3:::{bucket}/promotion/{stack}.zip",
        ],
        "pipeline-codepipeline": [],
    }
    publish = policy(plan, "pipeline-codebuild-publish")
    assert statement(publish, "PipelineArtifacts")["Action"] == [
        "s3:GetObject",
        "s3:GetObjectVersion",
    ]


# --- triggers ---------------------------------------------------------------------------------


def test_prod_starts_on_a_new_upstream_record_through_eventbridge(prod):
    rule = inputs(prod, "aws:cloudwatch/eventRule:EventRule", "pipeline-upstream-record")
    import json

    assert json.loads(rule["eventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [DEV_BUCKET]}, "object": {"key": ["promotion/dev.zip"]}},
    }
    target = inputs(prod, "aws:cloudwatch/eventTarget:EventTarget", "pipeline-upstream-record")
    assert target["arn"] == "arn:aws:codepipeline:eu-west-1:123456789012:ecs-delivery-prod"
    start = json.loads(prod.named(ROLE_POLICY, "pipeline-trigger").inputs["policy"])
    assert start["Statement"] == [
        {
            "Sid": "StartPipeline",
            "Effect": "Allow",
            "Action": "codepipeline:StartPipelineExecution",
            "Resource": "arn:aws:codepipeline:eu-west-1:123456789012:ecs-delivery-prod",
        }
    ]


def test_an_upstream_in_another_account_is_polled_instead(dev):
    upstream = {**dev.outputs, "accountId": "999999999999"}
    plan = make_plan("prod", environment={"stacks": {"dev": upstream}})
    source = pipeline_stages(plan)[0]["actions"][0]["configuration"]
    assert source["PollForSourceChanges"] == "true"
    assert plan.of_type("aws:cloudwatch/eventRule:EventRule") == []


def test_prod_without_the_upstream_outputs_stops_with_a_fix():
    with pytest.raises(ConfigError) as error:
        make_plan("prod", environment={"stacks": {"dev": {}}})
    assert error.value.problems == [
        "upstreamStack: stack 'dev' has no output(s) promotionBucket, promotionKey, "
        "ecrRepositoryArns; deploy the upstream first with this version of the program "
        "(`pulumi up -s dev`), then preview this stack again"
    ]


def test_a_downstream_service_the_upstream_builds_no_images_for_is_refused(dev):
    upstream = {
        **dev.outputs,
        "ecrRepositoryArns": {"web": dev.outputs["ecrRepositoryArns"]["web"]},
    }
    with pytest.raises(ConfigError) as error:
        make_plan("prod", environment={"stacks": {"dev": upstream}})
    assert error.value.problems == [
        "services.api: upstream stack 'dev' builds no images for it (its ecrRepositoryArns "
        "hold ['web']); add the service upstream first"
    ]


def test_the_build_tooling_ships_no_test_double():
    from ecs_delivery.components.codebuild import tooling_files

    files = tooling_files()
    assert "ecs_delivery/runtime/build.py" in files and "ecs_delivery/runtime/rollout.py" in files
    assert not [name for name in files if "simulator" in name or "/offline/" in name]

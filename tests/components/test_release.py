"""Release machinery in the plan: state machine, step Lambdas, release pipeline with one approval."""

from __future__ import annotations

import json

import botocore.session
import yaml
from botocore.validate import ParamValidator

from ecs_delivery.components.codepipeline import SourceSettings
from ecs_delivery.components.release import Release, ReleaseArgs
from ecs_delivery.components.state_machine import STEPS, check_definition
from ecs_delivery.runtime.release.inventory import parse_inventory
from tests.conftest import make_plan
from tests.support.plans import stack_value
from tests.support.registrations import inputs, policy, register

MACHINE = "aws:sfn/stateMachine:StateMachine"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
FUNCTION = "aws:lambda/function:Function"


def _definition(plan) -> dict:
    return json.loads(inputs(plan, MACHINE, "release")["definition"])


def test_dev_plan_holds_the_release_state_machine_with_a_rollback_behind_every_task(dev_plan):
    machine = inputs(dev_plan, MACHINE, "release")
    assert machine["name"] == "ecs-delivery-dev-release" and machine["type"] == "STANDARD"
    definition = _definition(dev_plan)
    assert check_definition(definition) == []
    assert definition["States"]["DeployServices"]["MaxConcurrency"] == 10
    assert machine["loggingConfiguration"]["level"] == "ERROR"


def test_each_engine_step_is_a_lambda_of_the_same_archive_with_the_state_bucket(dev_plan):
    functions = {
        r.name: r.inputs for r in dev_plan.of_type(FUNCTION) if r.name.startswith("release-")
    }
    assert sorted(functions) == sorted(f"release-{s.replace('_', '-')}" for s in STEPS)
    for step in STEPS:
        function = functions[f"release-{step.replace('_', '-')}"]
        assert function["handler"] == f"handler.{step}"
        assert function["runtime"] == "python3.11"
        assert function["environment"]["variables"] == {
            "STATE_BUCKET": "ecs-delivery-dev-123456789012-eu-west-1-releases",
            "INVENTORY_KEY": "inventory.json",
            "DEPLOYMENT_TIMEOUT_SECONDS": "3600",
            "END_TERMINATION_WAIT": "false",
            "START_GRACE_SECONDS": "300",
        }
    # Every Task of the machine invokes one of these functions.
    arns = {
        f"arn:aws:lambda:eu-west-1:123456789012:function/{f['name']}" for f in functions.values()
    }
    text = json.dumps(_definition(dev_plan))
    assert all(arn.rsplit("/", 1)[-1] in text for arn in arns)


def test_a_start_claimed_by_another_run_waits_out_the_longest_step_that_may_create_it(dev_plan):
    """A start or poll step claims a service's start, then creates its deployment; Lambda
    ends it at its timeout. Another run derives the start again only after the grace, so a
    live claimer never deploys the release a second time."""
    functions = {r.name: r.inputs for r in dev_plan.of_type(FUNCTION)}
    grace = int(
        functions["release-start-service"]["environment"]["variables"]["START_GRACE_SECONDS"]
    )
    claimers = [functions[f"release-{s}"]["timeout"] for s in ("start-service", "poll-service")]
    assert claimers == [300, 300] and grace >= max(claimers)


def test_release_pipeline_validates_then_asks_one_approval_then_runs_the_machine(dev_plan):
    pipeline = inputs(dev_plan, PIPELINE, "release")
    stages = [
        (s["name"], [(a["name"], a["category"], a["provider"]) for a in s["actions"]])
        for s in pipeline["stages"]
    ]
    assert stages == [
        ("Source", [("Source", "Source", "CodeStarSourceConnection")]),
        ("Validate", [("Validate", "Build", "CodeBuild")]),
        ("Approve", [("Approve", "Approval", "Manual")]),
        ("Release", [("Release", "Invoke", "StepFunctions")]),
    ]
    approval = pipeline["stages"][2]["actions"][0]["configuration"]["CustomData"]
    assert approval == "Release to dev (releases/dev.yaml): #{Validate.RELEASE_SUMMARY}"
    invoke = pipeline["stages"][3]["actions"][0]
    assert (
        invoke["configuration"]["StateMachineArn"]
        == "arn:aws:states:eu-west-1:123456789012:stateMachine:ecs-delivery-dev-release"
    )
    assert invoke["inputArtifacts"] == pipeline["stages"][1]["actions"][0]["outputArtifacts"]
    assert (
        pipeline["stages"][0]["actions"][0]["configuration"]["FullRepositoryId"]
        == "example-org/shop-releases"
    )


def test_validate_build_prints_the_plan_and_writes_the_execution_input(dev_plan):
    project = inputs(dev_plan, "aws:codebuild/project:Project", "release-validate")
    spec = yaml.safe_load(project["source"]["buildspec"])
    commands = " ".join(spec["phases"]["build"]["commands"])
    assert "python -m ecs_delivery.runtime.release plan --manifest releases/dev.yaml" in commands
    assert spec["artifacts"]["files"] == ["release-input.json"]
    assert spec["env"]["exported-variables"] == ["RELEASE_SUMMARY", "RELEASE_ID"]


def test_release_inventory_output_is_what_the_engine_reads(dev_plan, prod_plan):
    dev = parse_inventory(dev_plan.outputs["releaseInventory"])
    assert sorted(dev.services) == ["api", "mailer", "web"] and dev.production is False
    assert sorted(dev.scheduled_tasks) == ["nightly-report"]
    assert parse_inventory(prod_plan.outputs["releaseInventory"]).production is True
    stored = inputs(dev_plan, "aws:s3/bucketObjectv2:BucketObjectv2", "release-inventory")
    assert json.loads(stored["content"]) == dev_plan.outputs["releaseInventory"]


def test_release_inventory_lists_each_services_built_sidecars_and_only_those(dev_plan):
    """A manifest may set the image of a sidecar the stack builds (its image is the
    deployer's), never of one it pulls: the inventory names the built ones."""
    services = stack_value("dev", "services")
    services["web"]["sidecars"] = {
        "proxy": {"build": {"context": "proxy"}},
        "agent": {"image": "public.ecr.aws/datadog/agent:7.50.0"},
    }
    plan = make_plan("dev", overrides={"services": services})

    inventory = plan.outputs["releaseInventory"]
    assert inventory["services"]["web"]["sidecars"] == ["proxy"]
    assert parse_inventory(inventory).services["web"].sidecars == ["proxy"]
    # Services without built sidecars keep the entry they had (no empty key, no diff).
    assert "sidecars" not in inventory["services"]["api"]
    assert "sidecars" not in dev_plan.outputs["releaseInventory"]["services"]["web"]


def test_release_steps_pass_task_roles_only_to_ecs_and_scheduler_roles_only_to_the_scheduler(
    dev_plan,
):
    statements = {s["Sid"]: s for s in policy(dev_plan, "release-steps")["Statement"]}
    units = json.loads(inputs(dev_plan, "aws:iam/policy:Policy", "release-steps-units-1")["policy"])
    tasks = {s["Sid"]: s for s in units["Statement"]}["PassTaskRoles"]
    assert tasks["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    # execution + task role of web, api, mailer and nightly-report
    assert len(tasks["Resource"]) == 8
    schedulers = statements["PassSchedulerRoles"]
    assert schedulers["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert [
        r.split("/")[-1].startswith("task-nightly-report-scheduler") for r in schedulers["Resource"]
    ] == [True]
    # The groups of the stack's own application (every one of them is the stack's), polled
    # with BatchGetDeployments: one ARN whatever the number of services.
    deployments = statements["Deployments"]
    assert deployments["Resource"] == [
        "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:ecs-delivery-dev/*"
    ]
    assert "codedeploy:BatchGetDeployments" in deployments["Action"]
    assert "Deployments" not in {s["Sid"] for s in units["Statement"]}
    assert statements["Schedules"]["Resource"] == [
        "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/ecs-delivery-dev-nightly-report"
    ]


def test_state_machine_request_matches_the_step_functions_api_shape(dev_plan):
    machine = inputs(dev_plan, MACHINE, "release")
    request = {
        "name": machine["name"],
        "definition": machine["definition"],
        "roleArn": machine["roleArn"],
        "type": machine["type"],
        "loggingConfiguration": {
            "level": machine["loggingConfiguration"]["level"],
            "includeExecutionData": machine["loggingConfiguration"]["includeExecutionData"],
            "destinations": [
                {
                    "cloudWatchLogsLogGroup": {
                        "logGroupArn": machine["loggingConfiguration"]["logDestination"]
                    }
                }
            ],
        },
    }
    shape = (
        botocore.session.get_session()
        .get_service_model("stepfunctions")
        .operation_model("CreateStateMachine")
        .input_shape
    )
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def test_prod_runs_releases_five_at_a_time(prod_plan):
    assert _definition(prod_plan)["States"]["DeployServices"]["MaxConcurrency"] == 5


def test_release_steps_may_list_the_state_bucket_so_a_missing_record_reads_as_missing(dev_plan):
    """Without s3:ListBucket, S3 answers GetObject of a missing key with 403, not 404: the
    first release of a stack (no record yet) would fail as 'access denied'. Unconditioned:
    that check carries no s3:prefix (tests/policy/test_role_calls.py)."""
    statements = {s["Sid"]: s for s in policy(dev_plan, "release-steps")["Statement"]}
    bucket = "arn:aws:s3:::ecs-delivery-dev-123456789012-eu-west-1-releases"
    assert statements["ReleaseStateKeys"] == {
        "Sid": "ReleaseStateKeys",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket,
    }


def _many_services(count: int) -> dict:
    return {
        f"svc{i:03d}": {
            "containerPort": 8080,
            "cpu": 256,
            "memory": 512,
            "routing": {"pathPatterns": [f"/svc{i:03d}/*"]},
        }
        for i in range(count)
    }


def test_release_steps_policies_fit_iam_limits_at_sixty_services_and_pass_every_role():
    """IAM allows 10,240 characters of inline policy per role and 6,144 per managed policy;
    the per-service lists (families, roles) go to as many managed policies as they need."""
    from tests.conftest import make_plan

    plan = make_plan("dev", overrides={"services": _many_services(60), "scheduledTasks": {}})
    inline = inputs(plan, "aws:iam/rolePolicy:RolePolicy", "release-steps")["policy"]
    assert len(json.dumps(json.loads(inline), separators=(",", ":"))) <= 10_240
    managed = [
        r for r in plan.resources
        if r.type == "aws:iam/policy:Policy" and r.name.startswith("release-steps-units-")
    ]  # fmt: skip
    assert managed
    for registration in managed:
        assert (
            len(json.dumps(json.loads(registration.inputs["policy"]), separators=(",", ":")))
            <= 6_144
        )
    attached = {
        r.inputs["policyArn"]
        for r in plan.resources
        if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
        and r.name.startswith("release-steps-units-")
    }
    assert len(attached) == len(managed)
    documents = [json.loads(inline)] + [json.loads(r.inputs["policy"]) for r in managed]
    passed = [
        arn
        for d in documents
        for s in d["Statement"]
        if s["Sid"].startswith("PassTaskRoles")
        for arn in s["Resource"]
    ]
    tagged = [
        arn
        for d in documents
        for s in d["Statement"]
        if s["Sid"].startswith("TagNewRevisions")
        for arn in s["Resource"]
    ]
    assert len(passed) == len(set(passed)) == 120  # a task and an execution role per service
    assert sorted(tagged) == sorted(
        f"arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-delivery-dev-svc{i:03d}:*"
        for i in range(60)
    )


def test_the_release_pipeline_matches_the_delivery_pipeline_where_they_drifted(dev_plan):
    """Issue 17: the release pipeline granted only codestar-connections:UseConnection (a
    connection created as codeconnections is authorised under that prefix too), hard-coded
    the CodeBuild image and size, and queued executions where the delivery pipeline
    supersedes them."""
    (source,) = [
        s for s in policy(dev_plan, "release-pipeline")["Statement"] if s["Sid"] == "Source"
    ]
    assert sorted(source["Action"]) == [
        "codeconnections:UseConnection",
        "codestar-connections:UseConnection",
    ]
    release = inputs(dev_plan, PIPELINE, "release")
    delivery = inputs(dev_plan, PIPELINE, "pipeline")
    assert release["executionMode"] == delivery["executionMode"] == "SUPERSEDED"
    validate = inputs(dev_plan, "aws:codebuild/project:Project", "release-validate")["environment"]
    build = inputs(dev_plan, "aws:codebuild/project:Project", "pipeline")["environment"]
    assert (validate["image"], validate["computeType"]) == (build["image"], build["computeType"])


def test_the_release_validate_step_uses_the_configured_build_image():
    from tests.conftest import make_plan

    arm = "aws/codebuild/amazonlinux2-aarch64-standard:3.0"
    plan = make_plan(
        "prod",
        overrides={"pipeline": {"buildImage": arm, "buildComputeType": "BUILD_GENERAL1_MEDIUM"}},
    )
    validate = inputs(plan, "aws:codebuild/project:Project", "release-validate")["environment"]
    assert (validate["image"], validate["computeType"]) == (arm, "BUILD_GENERAL1_MEDIUM")


def test_the_release_validate_project_runs_an_arm_build_image_on_an_arm_container():
    """Issue 17: the release's project hard-coded LINUX_CONTAINER, so an aarch64 build image
    (pipeline.buildImage) could not start there; it now comes from the one CodeBuild builder."""
    from tests.conftest import make_plan

    arm = "aws/codebuild/amazonlinux2-aarch64-standard:3.0"
    plan = make_plan("prod", overrides={"pipeline": {"buildImage": arm}})
    validate = inputs(plan, "aws:codebuild/project:Project", "release-validate")["environment"]
    deploy = inputs(plan, "aws:codebuild/project:Project", "pipeline-deploy")["environment"]
    assert validate["type"] == deploy["type"] == "ARM_CONTAINER"


def test_every_codebuild_project_of_a_stack_has_one_environment_and_logs_setup(prod_plan):
    """Issue 17: the release's project dropped the pull credentials and the logs settings the
    delivery projects state; one builder gives every project the same shape."""
    projects = {
        r.name: inputs(prod_plan, r.type, r.name)
        for r in prod_plan.of_type("aws:codebuild/project:Project")
    }
    assert sorted(projects) == [
        "pipeline",
        "pipeline-deploy",
        "pipeline-publish",
        "release-validate",
    ]
    shapes = {
        name: (
            {k: v for k, v in p["environment"].items() if k != "privilegedMode"},
            {
                **p["logsConfig"],
                "cloudwatchLogs": {**p["logsConfig"]["cloudwatchLogs"], "groupName": None},
            },
            p["encryptionKey"],
        )
        for name, p in projects.items()
    }
    assert len({json.dumps(s, sort_keys=True) for s in shapes.values()}) == 1, shapes
    assert shapes["release-validate"][1] == {
        "cloudwatchLogs": {"groupName": None, "status": "ENABLED"},
        "s3Logs": {"status": "DISABLED"},
    }


def test_a_codecommit_release_source_gets_what_the_delivery_pipeline_grants_its_source():
    """Issue 17: the release pipeline wrote its own CodeCommit grant, without
    codecommit:GetRepository and CancelUploadArchive; both pipelines now share one."""
    from tests.conftest import make_plan

    release = {
        "source": {"provider": "codecommit", "repository": "shop-releases", "branch": "main"},
        "manifestPath": "releases/dev.yaml",
        "maxParallel": 10,
        "production": False,
    }
    plan = make_plan(
        "dev",
        overrides={
            "release": release,
            "pipeline": {"source": {**release["source"], "repository": "shop"}},
        },
    )
    (granted,) = [s for s in policy(plan, "release-pipeline")["Statement"] if s["Sid"] == "Source"]
    (delivery,) = [
        s
        for s in policy(plan, "pipeline-codepipeline")["Statement"]
        if s["Sid"] == "SourceRepository"
    ]
    assert granted["Action"] == delivery["Action"]
    assert "codecommit:GetRepository" in granted["Action"]
    assert granted["Resource"] == "arn:aws:codecommit:eu-west-1:123456789012:shop-releases"


def _release_alone(end_termination_wait: bool):
    """The Release component used directly with dev's inventory, as environment.py wires it."""
    from tests.conftest import make_plan

    inventory = make_plan("dev").outputs["releaseInventory"]
    args = ReleaseArgs(
        project="ecs-delivery",
        stack="dev",
        region="eu-west-1",
        account_id="123456789012",
        inventory=inventory,
        source=SourceSettings(provider="codecommit", repository="releases", branch="main"),
        manifest_path="releases/dev.yaml",
        max_parallel=10,
        poll_seconds=15,
        deployment_timeout_minutes=60,
        cluster_arn="arn:aws:ecs:eu-west-1:123456789012:cluster/ecs-delivery-dev",
        deployment_configs=["CodeDeployDefault.ECSAllAtOnce"],
        task_role_arns=["arn:aws:iam::123456789012:role/ecs-delivery-dev-web-task"],
        scheduler_role_arns=[],
        log_retention_days=14,
        kms_key_arn=None,
        access_logs=None,
        force_destroy=False,
        build_image="aws/codebuild/standard:7.0",
        build_compute_type="BUILD_GENERAL1_SMALL",
        end_termination_wait=end_termination_wait,
    )
    return register(lambda: Release("release", args))


def test_release_steps_may_end_a_termination_wait_only_when_the_stack_says_end():
    """deployment.onTerminationWait: `end` grants ContinueDeployment on the groups the steps
    deploy (as CreateDeployment) and tells them so; `wait` grants nothing more."""
    for end, flag in ((True, "true"), (False, "false")):
        plan = _release_alone(end)
        statements = {s["Sid"]: s for s in policy(plan, "release-steps")["Statement"]}
        actions = statements["Deployments"]["Action"]
        assert ("codedeploy:ContinueDeployment" in actions) is end
        granted = json.dumps(policy(plan, "release-steps"))
        assert granted.count("codedeploy:ContinueDeployment") == (1 if end else 0)
        assert statements["Deployments"]["Resource"] == [
            "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:ecs-delivery-dev/*"
        ]
        functions = [r.inputs for r in plan.of_type(FUNCTION) if r.name.startswith("release-")]
        assert functions and {
            f["environment"]["variables"]["END_TERMINATION_WAIT"] for f in functions
        } == {flag}


def test_release_steps_read_only_the_stacks_own_deployment_configs(dev_plan, prod_plan):
    """Least privilege: the steps read the configs the stack's groups use (CreateDeployment
    checks GetDeploymentConfig on the group's config), not every config of the account."""
    for plan in (dev_plan, prod_plan):
        statements = {s["Sid"]: s for s in policy(plan, "release-steps")["Statement"]}
        document = json.loads(inputs(plan, "aws:iam/policy:Policy", "deployer")["policy"])
        deployer = {s["Sid"]: s for s in document["Statement"]}
        resources = statements["DeploymentConfigs"]["Resource"]
        assert "*" not in json.dumps(resources)
        assert resources == deployer["DeploymentConfigs"]["Resource"]

"""The release pipeline: Source (manifest repository) ► Validate (CodeBuild: the manifest and
the release plan, printed; exports RELEASE_SUMMARY) ► Approve (one approval naming the release
and its changes) ► Release (Step Functions: run the release state machine with the manifest).

Built by `Release` (components/release.py) with the shared CodeBuild builder and pipeline shell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from ecs_delivery.components import codebuild, codepipeline, naming
from ecs_delivery.components.artifacts import pipeline_artifact_prefix
from ecs_delivery.components.buildspec import BUILD_REQUIREMENTS
from ecs_delivery.components.codepipeline import SOURCE_ARTIFACT, Action, SourceSettings, Stage

RELEASE_INPUT = "release_input"


def validate_buildspec(
    manifest_path: str, inventory_key: str, state_bucket: str, tooling_uri: str
) -> dict:
    """Validate the manifest, print the plan, export its summary, and write the execution input."""
    return {
        "version": 0.2,
        "env": {"exported-variables": ["RELEASE_SUMMARY", "RELEASE_ID"]},
        "phases": {
            "install": {
                "runtime-versions": {"python": "3.11"},
                "commands": [
                    f"pip install --quiet {' '.join(BUILD_REQUIREMENTS)}",
                    f"aws s3 cp {tooling_uri} /tmp/tooling.zip",
                    "unzip -q -o /tmp/tooling.zip -d /tmp/tooling",
                    f"aws s3 cp s3://{state_bucket}/{inventory_key} /tmp/inventory.json",
                ],
            },
            "build": {
                "commands": [
                    # Exit 2: manifest errors (printed, one per key); nothing is released.
                    # No pipe: CodeBuild's /bin/sh has no pipefail, and `| tee` would hide
                    # the plan's exit status; the `||` group fails the command in any shell.
                    f"PYTHONPATH=/tmp/tooling python -m ecs_delivery.runtime.release plan --manifest {manifest_path} "
                    f"--inventory /tmp/inventory.json --state-bucket {state_bucket} > /tmp/plan.txt 2>&1 "
                    "|| (cat /tmp/plan.txt; exit 1)",
                    "cat /tmp/plan.txt",
                    "export RELEASE_ID=$(python -c \"import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))['release'])\" "
                    f"{manifest_path})",
                    "export RELEASE_SUMMARY=\"release $RELEASE_ID: $(grep -c '' /tmp/plan.txt) plan lines; "
                    "see the Validate action's log\"",
                    "python -c \"import json,sys; json.dump({'manifest_yaml': open(sys.argv[1]).read()}, "
                    f"open('release-input.json','w'))\" {manifest_path}",
                ]
            },
        },
        "artifacts": {"files": ["release-input.json"]},
    }


@dataclass(frozen=True, kw_only=True)
class ReleasePipelineArgs:
    """The release pipeline: manifest source, Validate, one approval, the release state machine."""

    # The state machine's name, which the pipeline shares.
    name: str
    stack: str
    region: str
    account_id: str
    source: SourceSettings
    # `{stack}` is replaced by the stack's name.
    manifest_path: str
    # The release inventory's services and its tasks' schedules (ARNs): Validate reads what
    # they run.
    services: dict[str, dict[str, Any]]
    schedule_arns: list[str]
    # The release state bucket: artifacts, tooling, the inventory at `inventory_key`.
    bucket_name: str
    inventory_key: str
    machine_arn: str
    build: codebuild.BuildSettings
    # Use of the stack's key through S3 (none without a key).
    key_statements: list[dict[str, Any]]
    # The bucket: written to before anything else.
    bucket_resources: Sequence[pulumi.Resource]
    # The state machine: started by the pipeline's first run.
    depends_on: Sequence[pulumi.Resource]

    @property
    def bucket_arn(self) -> str:
        return naming.s3_arn(self.bucket_name, region=self.region)

    @property
    def validate_project(self) -> str:
        return f"{self.name}-validate"

    @property
    def artifacts_arn(self) -> str:
        return f"{self.bucket_arn}/{pipeline_artifact_prefix(self.name)}*"


def describe_stages(args: ReleasePipelineArgs) -> list[Stage]:
    manifest = args.manifest_path.format(stack=args.stack)
    release = Action(
        name="Release",
        category="Invoke",
        provider="StepFunctions",
        configuration={
            "StateMachineArn": args.machine_arn,
            "InputType": "FilePath",
            "Input": "release-input.json",
            "ExecutionNamePrefix": "release",
        },
        input_artifacts=(RELEASE_INPUT,),
    )
    validate = codepipeline.build_action(
        "Validate",
        args.validate_project,
        inputs=(SOURCE_ARTIFACT,),
        outputs=(RELEASE_INPUT,),
        namespace="Validate",
    )
    return [
        Stage("Source", (codepipeline.source_action(args.source),)),
        Stage("Validate", (validate,)),
        codepipeline.approval_stage(
            f"Release to {args.stack} ({manifest}): #{{Validate.RELEASE_SUMMARY}}"
        ),
        Stage("Release", (release,)),
    ]


def validate_statements(args: ReleasePipelineArgs, tooling_object: str) -> list[dict[str, Any]]:
    """Validate reads the manifest, the tooling, the inventory, the release states and what
    runs; it writes the execution input."""
    statements = codebuild.artifact_statements(
        bucket_arn=args.bucket_arn,
        artifact_prefix=pipeline_artifact_prefix(args.name),
        tooling_key=tooling_object,
        writes_artifacts=True,
    )
    statements += [
        {
            "Sid": "InventoryAndStates",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [
                f"{args.bucket_arn}/{args.inventory_key}",
                f"{args.bucket_arn}/releases/*",
            ],
        },
        # A new release has no state yet: without it S3 answers 403, not 404, and the plan
        # fails (as the steps' ReleaseStateKeys).
        {
            "Sid": "ReleaseStateKeys",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": args.bucket_arn,
        },
        {
            "Sid": "ReadWhatRuns",
            "Effect": "Allow",
            "Action": "ecs:DescribeServices",
            # Every service of the stack's cluster is the stack's own: one ARN per cluster,
            # not per service (IAM's 10,240 characters per role).
            "Resource": [
                naming.arn("ecs", f"service/{c}/*", region=args.region, account=args.account_id)
                for c in sorted({s["cluster"] for s in args.services.values()})
            ],
        },
        # DescribeTaskDefinition has no resource-level permissions in IAM.
        {
            "Sid": "ReadRevisions",
            "Effect": "Allow",
            "Action": "ecs:DescribeTaskDefinition",
            "Resource": "*",
        },
    ]
    if args.schedule_arns:
        statements.append(
            {
                "Sid": "ReadSchedules",
                "Effect": "Allow",
                "Action": "scheduler:GetSchedule",
                "Resource": list(args.schedule_arns),
            }
        )
    return statements + args.key_statements


def pipeline_statements(args: ReleasePipelineArgs) -> list[dict[str, Any]]:
    """The source, the artifacts, the Validate build and the state machine it starts."""
    return [
        codepipeline.source_statement(
            args.source, region=args.region, account_id=args.account_id, sid="Source"
        ),
        {
            "Sid": "Artifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:GetObjectVersion"],
            "Resource": [args.artifacts_arn],
        },
        {
            "Sid": "Build",
            "Effect": "Allow",
            "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
            "Resource": naming.arn(
                "codebuild",
                f"project/{args.validate_project}",
                region=args.region,
                account=args.account_id,
            ),
        },
        {
            "Sid": "StartRelease",
            "Effect": "Allow",
            "Action": "states:StartExecution",
            "Resource": args.machine_arn,
        },
        {
            "Sid": "WatchRelease",
            "Effect": "Allow",
            "Action": "states:DescribeExecution",
            "Resource": naming.arn(
                "states", f"execution:{args.name}:*", region=args.region, account=args.account_id
            ),
        },
        *args.key_statements,
    ]


def create_release_pipeline(
    name: str, args: ReleasePipelineArgs, *, parent: pulumi.Resource
) -> aws.codepipeline.Pipeline:
    """The tooling, the Validate project and the pipeline, children of `parent`."""
    stages = describe_stages(args)
    codepipeline.require_wiring(stages)
    tooling_object = codebuild.tooling_key()
    tooling = codebuild.create_tooling(
        f"{name}-tooling",
        bucket=args.bucket_name,
        key=tooling_object,
        parent=parent,
        tags=args.build.tags,
        depends_on=args.bucket_resources,
    )
    buildspec = validate_buildspec(
        args.manifest_path.format(stack=args.stack),
        args.inventory_key,
        args.bucket_name,
        f"s3://{args.bucket_name}/{tooling_object}",
    )
    codebuild.create_project(
        f"{name}-validate",
        settings=args.build,
        parent=parent,
        project_name=args.validate_project,
        description=f"Validate release manifests of {args.stack} and print the release plan",
        buildspec=yaml.safe_dump(buildspec, sort_keys=False),
        statements=validate_statements(args, tooling_object),
        timeout_minutes=15,
        role_description="Release pipeline: validate the manifest and print the release plan",
        depends_on=[tooling],
    )
    return codepipeline.create_pipeline(
        name,
        parent=parent,
        pipeline_name=args.name,
        stages=stages,
        role=f"{name}-pipeline",
        role_description="Release pipeline: source, validate, approve, run the state machine",
        role_statements=pipeline_statements(args),
        account_id=args.account_id,
        bucket_name=args.bucket_name,
        kms_key_arn=args.build.kms_key_arn,
        tags=args.build.tags,
        depends_on=[*args.bucket_resources, *args.depends_on],
    )

"""Whole-environment releases: the engine's Step Functions state machine and the release pipeline.

    release pipeline:  components/release_pipeline.py (Source ► Validate ► Approve ► Release)
    state machine:     src/ecs_delivery/components/state_machine.py; each Task is a Lambda step from
                       src/ecs_delivery/lambdas/release_steps calling runtime/release (the same engine as the
                       `release` command line)

Release state and the environment's `releaseInventory` live in a bucket of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, kms, lambda_package, naming
from ecs_delivery.components.access_logs import AccessLogs
from ecs_delivery.components.args import from_config
from ecs_delivery.components.artifacts import (
    ArtifactBucket,
    ArtifactBucketArgs,
    pipeline_artifact_prefix,
)
from ecs_delivery.components.codebuild import BuildSettings
from ecs_delivery.components.codepipeline import PipelineWiringError, SourceSettings
from ecs_delivery.components.config import (
    KmsConfig,
    PipelineConfig,
    ReleaseConfig,
    StackConfig,
    TeardownConfig,
)
from ecs_delivery.components.deployer import END_TERMINATION_WAIT_ACTION, revision_documents
from ecs_delivery.components.naming import TYPE_PREFIX
from ecs_delivery.components.release_pipeline import ReleasePipelineArgs, create_release_pipeline
from ecs_delivery.components.state_machine import STEPS, check_definition, definition
from ecs_delivery.runtime.release.inventory import parse_inventory

# The import root the engine ships from (src/): archive paths are import paths.
ROOT = Path(__file__).resolve().parents[2]
STEPS_SOURCE = ROOT / "ecs_delivery" / "lambdas" / "release_steps"
INVENTORY_KEY = "inventory.json"
RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"
# Lambda ends an invocation at its timeout: the plan and the rollback may wait on AWS longer.
STEP_TIMEOUT_SECONDS = {step: 900 if step in ("plan", "rollback") else 300 for step in STEPS}
# A service claimed for a start by another run is derived again only after this long: a run
# that claims starts (in its start or poll step) is alive until its step's timeout at most.
START_GRACE_SECONDS = max(
    STEP_TIMEOUT_SECONDS["start_service"], STEP_TIMEOUT_SECONDS["poll_service"]
)
# The engine modules handler.py imports, directly or through each other: exactly these ship
# (never a glob: nothing else is needed on Lambda). A test compares this list
# with the handler's real import closure.
STEP_MODULES = (
    "ecs_delivery/__init__.py",
    "ecs_delivery/inputs.py",
    "ecs_delivery/runtime/__init__.py",
    "ecs_delivery/runtime/aws.py",
    "ecs_delivery/runtime/clock.py",
    "ecs_delivery/runtime/codedeploy.py",
    "ecs_delivery/runtime/ecs_engine.py",
    "ecs_delivery/runtime/engines.py",
    "ecs_delivery/runtime/image_reference.py",
    "ecs_delivery/runtime/live.py",
    "ecs_delivery/runtime/rollout.py",
    "ecs_delivery/runtime/taskdef.py",
    "ecs_delivery/runtime/release/__init__.py",
    "ecs_delivery/runtime/release/core.py",
    "ecs_delivery/runtime/release/engine.py",
    "ecs_delivery/runtime/release/engine_types.py",
    "ecs_delivery/runtime/release/inventory.py",
    "ecs_delivery/runtime/release/lifecycle.py",
    "ecs_delivery/runtime/release/live.py",
    "ecs_delivery/runtime/release/manifest.py",
    "ecs_delivery/runtime/release/pacing.py",
    "ecs_delivery/runtime/release/plan.py",
    "ecs_delivery/runtime/release/rollback.py",
    "ecs_delivery/runtime/release/services.py",
    "ecs_delivery/runtime/release/state.py",
    "ecs_delivery/runtime/release/steps.py",
    "ecs_delivery/runtime/release/tasks.py",
    "ecs_delivery/runtime/task_rollout.py",
)


@dataclass(frozen=True, kw_only=True)
class ReleaseArgs:
    """Whole-release rollouts: the state bucket, the release steps, the state machine, its pipeline."""

    project: str
    stack: str
    region: str
    account_id: str
    inventory: dict[str, Any]
    source: SourceSettings
    manifest_path: str = from_config(ReleaseConfig, "manifest_path")
    max_parallel: int = from_config(ReleaseConfig, "max_parallel")
    poll_seconds: int = from_config(ReleaseConfig, "poll_seconds")
    deployment_timeout_minutes: int = from_config(ReleaseConfig, "deployment_timeout_minutes")
    cluster_arn: str
    # The groups' deployment configuration names (delivery.deployment_configs).
    deployment_configs: list[str]
    # Roles the engine passes when it registers revisions / updates schedule targets.
    task_role_arns: list[pulumi.Input[str]]
    scheduler_role_arns: list[pulumi.Input[str]]
    log_retention_days: int = from_config(StackConfig, "log_retention_days")
    # The stack's customer-managed key (kms config); None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    # Server access logs of the state bucket (accessLogs config); None: none.
    access_logs: AccessLogs | None
    # `pulumi destroy` deletes the release states too (teardown.forceDestroy).
    force_destroy: bool = from_config(TeardownConfig, "force_destroy")
    # The Validate step's CodeBuild environment (pipeline.buildImage, buildComputeType).
    build_image: str = from_config(PipelineConfig, "build_image")
    build_compute_type: str = from_config(PipelineConfig, "build_compute_type")
    tags: dict[str, str] = field(default_factory=dict)
    # deployment.onTerminationWait == "end": the steps end another deployment's termination
    # wait that holds a group (ContinueDeployment is granted only then).
    end_termination_wait: bool = False


def step_package() -> lambda_package.LambdaPackage:
    """handler.py at the root, the engine's modules, and its pinned dependencies for Lambda."""
    files = {"handler.py": STEPS_SOURCE / "handler.py"}
    files.update({module: ROOT / module for module in STEP_MODULES})
    return lambda_package.LambdaPackage(
        name="release-steps",
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        files=files,
        requirements=STEPS_SOURCE / "requirements.txt",
    )


def step_archive() -> pulumi.FileArchive:
    """The steps' zip (built once per distinct input, then taken from the cache)."""
    return pulumi.FileArchive(str(lambda_package.build(step_package())))


class Release(pulumi.ComponentResource):
    """Release state bucket, Lambda steps, state machine and the release pipeline."""

    state_machine: aws.sfn.StateMachine
    pipeline: aws.codepipeline.Pipeline

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}:release:Release", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        # The state machine and the pipeline share one name.
        self.pipeline_name = self.machine_name = naming.release_name(args.project, args.stack)
        self.machine_arn = naming.arn(
            "states",
            f"stateMachine:{self.machine_name}",
            region=args.region,
            account=args.account_id,
        )
        bucket_name = naming.release_bucket_name(
            args.project, args.stack, args.account_id, args.region
        )
        self.bucket = ArtifactBucket(
            f"{name}-state",
            ArtifactBucketArgs(
                bucket_name=bucket_name,
                expiring_prefixes=[pipeline_artifact_prefix(self.pipeline_name)],
                kms_key_arn=args.kms_key_arn,
                access_logs=args.access_logs,
                region=args.region,
                tags=args.tags,
                force_destroy=args.force_destroy,
            ),
            opts=self._child,
        )
        self.bucket_name = bucket_name
        self.bucket_arn = naming.s3_arn(bucket_name, region=args.region)
        self.inventory = aws.s3.BucketObjectv2(
            f"{name}-inventory",
            bucket=bucket_name,
            key=INVENTORY_KEY,
            content=json.dumps(args.inventory, indent=2, sort_keys=True),
            content_type="application/json",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket]),
        )
        functions = self._create_steps()
        self.state_machine = self._create_state_machine(functions)
        self.pipeline = create_release_pipeline(
            name,
            ReleasePipelineArgs(
                name=self.pipeline_name,
                stack=args.stack,
                region=args.region,
                account_id=args.account_id,
                source=args.source,
                manifest_path=args.manifest_path,
                services=args.inventory.get("services", {}),
                schedule_arns=self._schedule_arns(),
                bucket_name=bucket_name,
                inventory_key=INVENTORY_KEY,
                machine_arn=self.machine_arn,
                build=BuildSettings.of(args),
                key_statements=self._kms_through_s3(),
                bucket_resources=[self.bucket],
                depends_on=[self.state_machine],
            ),
            parent=self,
        )
        self.register_outputs(
            {
                "stateMachineArn": self.state_machine.arn,
                "pipelineName": self.pipeline.name,
                "bucket": bucket_name,
            }
        )

    # --- the stack's key ----------------------------------------------------------------

    def _kms_through_s3(self) -> list[dict[str, Any]]:
        """Read and write the state bucket's objects, encrypted with the stack's key."""
        a = self._args
        if a.kms_key_arn is None:
            return []
        return [kms.via_s3_statement(a.kms_key_arn, region=a.region, sid="StateBucketKey")]

    def _machine_kms_statements(self) -> list[dict[str, Any]]:
        """Step Functions encrypts executions (and their log delivery) with the caller's role."""
        a = self._args
        if a.kms_key_arn is None:
            return []
        return [
            kms.use_statement(
                a.kms_key_arn,
                sid="MachineKey",
                condition={
                    "StringEquals": {
                        "kms:EncryptionContext:aws:states:stateMachineArn": self.machine_arn
                    }
                },
            ),
            {
                "Sid": "MachineLogDeliveryKey",
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": a.kms_key_arn,
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:SourceArn": naming.arn(
                            "logs", "*", region=a.region, account=a.account_id
                        )
                    }
                },
            },
        ]

    def _schedule_arns(self) -> list[str]:
        """The schedules of the inventory's scheduled tasks."""
        a = self._args
        return [
            naming.arn(
                "scheduler",
                f"schedule/{t['schedule'].get('group', 'default')}/{t['schedule']['name']}",
                region=a.region,
                account=a.account_id,
            )
            for t in a.inventory.get("scheduledTasks", {}).values()
            if t.get("schedule")
        ]

    # --- Lambda steps --------------------------------------------------------------------

    def _step_policy(self) -> list[dict[str, Any]]:
        a = self._args
        inv = a.inventory
        region, account = a.region, a.account_id
        services = inv.get("services", {})
        tasks = inv.get("scheduledTasks", {})
        # The stack's own cluster(s) and CodeDeploy application(s) scope the services, groups
        # and revisions, so this part does not grow with the number of services (IAM's 10,240
        # characters); the families and roles, one by one, are in the units' policies.
        clusters = sorted({s["cluster"] for s in services.values()})
        applications = sorted(
            {s["codedeployApplication"] for s in services.values() if "codedeployApplication" in s}
        )
        on_ecs = sorted({s["cluster"] for s in services.values() if s.get("engine") == "ecs"})
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ReleaseState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{self.bucket_arn}/releases/*",
            },
            # Pulumi writes the inventory; the plan step only reads it.
            {
                "Sid": "ReleaseInventory",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{self.bucket_arn}/{INVENTORY_KEY}",
            },
            # Without it S3 answers a missing record (a stack's first release) with 403, not 404.
            # No s3:prefix condition: the check S3 makes for a GetObject of a missing key
            # carries no prefix, so a conditioned grant never applies (as the deployer's).
            {
                "Sid": "ReleaseStateKeys",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": self.bucket_arn,
            },
            {
                "Sid": "ReadServices",
                "Effect": "Allow",
                "Action": "ecs:DescribeServices",
                "Resource": [
                    naming.arn("ecs", f"service/{c}/*", region=region, account=account)
                    for c in clusters
                ]
                or [naming.arn("ecs", "service/none/none", region=region, account=account)],
            },
            iam.register_task_definitions_statement(),
            # The ECS engine's services: UpdateService, their service deployments and revisions.
            *iam.ecs_engine_statements(on_ecs, region=region, account_id=account),
        ]
        if applications:
            statements += [
                {
                    "Sid": "Deployments",
                    "Effect": "Allow",
                    # BatchGetDeployments polls; GetDeployment waits out a deployment the
                    # deployment core stopped after a race (or whose termination wait was
                    # ended: ContinueDeployment, only with `end`); each authorises on the group.
                    "Action": [
                        "codedeploy:BatchGetDeployments",
                        "codedeploy:CreateDeployment",
                        "codedeploy:GetDeployment",
                        "codedeploy:ListDeployments",
                        "codedeploy:StopDeployment",
                        *([END_TERMINATION_WAIT_ACTION] if a.end_termination_wait else []),
                    ],
                    # Every group of the stack's application is the stack's own.
                    "Resource": [
                        naming.arn(
                            "codedeploy",
                            f"deploymentgroup:{app}/*",
                            region=region,
                            account=account,
                        )
                        for app in applications
                    ],
                },
                {
                    "Sid": "Revisions",
                    "Effect": "Allow",
                    "Action": [
                        "codedeploy:RegisterApplicationRevision",
                        "codedeploy:GetApplicationRevision",
                    ],
                    "Resource": [
                        naming.arn(
                            "codedeploy", f"application:{app}", region=region, account=account
                        )
                        for app in applications
                    ],
                },
                iam.deployment_configs_statement(
                    self._args.deployment_configs, region=region, account_id=account
                ),
            ]
        if tasks:
            statements += [
                {
                    "Sid": "Schedules",
                    "Effect": "Allow",
                    "Action": ["scheduler:GetSchedule", "scheduler:UpdateSchedule"],
                    "Resource": self._schedule_arns(),
                },
                {
                    "Sid": "PassSchedulerRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": list(a.scheduler_role_arns),
                    "Condition": {
                        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
                    },
                },
            ]
        return statements

    def _unit_statements(self) -> list[list[dict[str, Any]]]:
        """Tag new revisions of, and pass the roles of, exactly the stack's services and
        tasks: as many managed policies as IAM's 6,144 characters each need."""
        a = self._args
        inv = a.inventory
        families = sorted({t["taskFamily"] for t in inv.get("scheduledTasks", {}).values()}) + [
            naming.task_family(a.project, a.stack, name) for name in inv.get("services", {})
        ]
        return revision_documents(
            [
                naming.arn("ecs", f"task-definition/{f}:*", region=a.region, account=a.account_id)
                for f in families
            ],
            list(a.task_role_arns),
            region=a.region,
        )

    def _create_steps(self) -> dict[str, aws.lambda_.Function]:
        a = self._args
        names = {step: f"{self.machine_name}-{step.replace('_', '-')}" for step in STEPS}
        log_groups = {
            step: aws.cloudwatch.LogGroup(
                f"{self._name}-{step.replace('_', '-')}",
                name=f"/aws/lambda/{function_name}",
                retention_in_days=a.log_retention_days,
                kms_key_id=a.kms_key_arn,
                tags=a.tags,
                opts=self._child,
            )
            for step, function_name in names.items()
        }
        role, policy = iam.service_role(
            f"{self._name}-steps",
            service="lambda.amazonaws.com",
            description="Release engine steps: deploy services and scheduled tasks of this stack",
            statements=[
                *self._step_policy(),
                {
                    "Sid": "Logs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [pulumi.Output.concat(g.arn, ":*") for g in log_groups.values()],
                },
                *self._kms_through_s3(),
            ],
            tags=a.tags,
            parent=self,
        )
        attachments = iam.attach_policies(
            f"{self._name}-steps",
            role,
            self._unit_statements(),
            description=f"Release steps of {a.project}-{a.stack}: units",
            parent=self,
            tags=a.tags,
            fix="split the stack's services and tasks across stacks, or raise the role's "
            "managed-policy quota (up to 20) and iam.MANAGED_POLICIES_PER_ROLE",
        )
        archive = step_archive()
        # Lambda's own trigger for new code; equal while the zip's inputs are equal.
        code_hash = lambda_package.code_sha256(Path(archive.path))
        return {
            step: aws.lambda_.Function(
                f"{self._name}-{step.replace('_', '-')}",
                name=function_name,
                runtime=RUNTIME,
                handler=f"handler.{step}",
                role=role.arn,
                code=archive,
                source_code_hash=code_hash,
                timeout=STEP_TIMEOUT_SECONDS[step],
                memory_size=512,
                architectures=[ARCHITECTURE],
                kms_key_arn=a.kms_key_arn,
                environment=aws.lambda_.FunctionEnvironmentArgs(
                    variables={
                        "STATE_BUCKET": self.bucket_name,
                        "INVENTORY_KEY": INVENTORY_KEY,
                        "DEPLOYMENT_TIMEOUT_SECONDS": str(a.deployment_timeout_minutes * 60),
                        "END_TERMINATION_WAIT": "true" if a.end_termination_wait else "false",
                        "START_GRACE_SECONDS": str(START_GRACE_SECONDS),
                    }
                ),
                tags=a.tags,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[log_groups[step], policy, *attachments]
                ),
            )
            for step, function_name in names.items()
        }

    # --- state machine -------------------------------------------------------------------

    def _create_state_machine(
        self, functions: dict[str, aws.lambda_.Function]
    ) -> aws.sfn.StateMachine:
        a = self._args
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-machine",
            name=f"/aws/vendedlogs/states/{self.machine_name}",
            retention_in_days=a.log_retention_days,
            kms_key_id=a.kms_key_arn,
            tags=a.tags,
            opts=self._child,
        )
        role, _ = iam.service_role(
            f"{self._name}-machine",
            service="states.amazonaws.com",
            description="Release state machine: invokes the release steps",
            source_account=a.account_id,
            statements=[
                {
                    "Sid": "InvokeSteps",
                    "Effect": "Allow",
                    "Action": "lambda:InvokeFunction",
                    "Resource": [f.arn for f in functions.values()],
                },
                # Log delivery actions have no resource-level permissions in IAM.
                {
                    "Sid": "LogDelivery",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogDelivery",
                        "logs:GetLogDelivery",
                        "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery",
                        "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies",
                        "logs:DescribeLogGroups",
                    ],
                    "Resource": "*",
                },
                *self._machine_kms_statements(),
            ],
            tags=a.tags,
            parent=self,
        )

        def render(arns: list[str]) -> str:
            spec = definition(dict(zip(STEPS, arns, strict=True)), a.max_parallel, a.poll_seconds)
            problems = check_definition(spec)
            if problems:
                raise PipelineWiringError([f"release state machine: {p}" for p in problems])
            return json.dumps(spec, sort_keys=True)

        return aws.sfn.StateMachine(
            self._name,
            name=self.machine_name,
            role_arn=role.arn,
            type="STANDARD",
            definition=pulumi.Output.all(*[functions[s].arn for s in STEPS]).apply(render),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ERROR",
                include_execution_data=False,
                log_destination=pulumi.Output.concat(log_group.arn, ":*"),
            ),
            encryption_configuration=aws.sfn.StateMachineEncryptionConfigurationArgs(
                type="CUSTOMER_MANAGED_KMS_KEY",
                kms_key_id=a.kms_key_arn,
                kms_data_key_reuse_period_seconds=300,
            )
            if a.kms_key_arn is not None
            else None,
            tags=a.tags,
            opts=self._child,
        )


def release_inventory(
    *,
    stack: str,
    production: bool,
    cluster_name: str,
    cluster_arn: str,
    application: str,
    services: dict[str, int | None],
    groups: dict[str, str],
    tasks: dict[str, str],
    service_families: dict[str, str] | None = None,
    validation_hook: str | None = None,
    engine: str = "codedeploy",
    engines: dict[str, str] | None = None,
    sidecars: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The `releaseInventory` JSON (src/ecs_delivery/runtime/release/inventory.py), checked by its own parser.

    `services` maps service -> container port, `groups` service -> deployment group, `tasks`
    scheduled task -> task family (also its schedule's name), `service_families` service ->
    its own family, where released revisions register (never the template's),
    `validation_hook` the Lambda every deployment of a service runs at AfterAllowTestTraffic,
    `engine` who deploys the services (deployment.engine; on ecs no group, and the hook is
    the service's own lifecycle hook), `engines` service -> its own where it differs (a
    worker: ecs, and its port None), `sidecars` service -> the sidecars the stack builds
    (`ServiceConfig.built_sidecars`), whose images a manifest may set.
    """
    data = {
        "environment": stack,
        "production": production,
        "services": {
            name: _service_entry(
                name,
                port,
                (engines or {}).get(name, engine),
                cluster_name=cluster_name,
                application=application,
                group=groups[name],
                family=(service_families or {}).get(name),
                validation_hook=validation_hook,
                sidecars=(sidecars or {}).get(name, []),
            )
            for name, port in sorted(services.items())
        },
        "scheduledTasks": {
            name: {
                "cluster": cluster_arn,
                "taskFamily": family,
                "container": name,
                "schedule": {"name": family, "group": "default"},
            }
            for name, family in sorted(tasks.items())
        },
    }
    parse_inventory(data, source="releaseInventory")
    return data


def _service_entry(
    name: str,
    port: int | None,
    engine: str,
    *,
    cluster_name: str,
    application: str,
    group: str,
    family: str | None,
    validation_hook: str | None,
    sidecars: list[str],
) -> dict[str, Any]:
    codedeploy = engine == "codedeploy"
    return {
        "cluster": cluster_name,
        "service": name,
        "engine": engine,
        **({"codedeployApplication": application, "codedeployGroup": group} if codedeploy else {}),
        "container": name,
        # Only when there are some: a stack without built sidecars keeps its output as it was.
        **({"sidecars": sorted(sidecars)} if sidecars else {}),
        **({"containerPort": port} if port is not None else {}),
        **({"taskFamily": family} if family else {}),
        **({"validationHook": validation_hook} if validation_hook and codedeploy else {}),
    }

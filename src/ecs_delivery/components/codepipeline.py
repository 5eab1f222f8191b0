"""The pipeline shell both pipelines use: stages as plain data, their wiring check, the
source action and its grant, and the CodePipeline (V2) with its role and artifact store.

The delivery pipeline (components/pipeline.py) and the release pipeline
(components/release.py) differ only in their stages and in what their roles may start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming

SOURCE_ARTIFACT = "SourceCode"
# Config keys (CodeDeployToECS's) that name one of an action's input artifacts: the wiring
# check holds any action that uses them to its inputs.
ARTIFACT_CONFIG_KEYS = (
    "TaskDefinitionTemplateArtifact",
    "AppSpecTemplateArtifact",
    *(f"Image{i}ArtifactName" for i in range(1, 5)),
)
VARIABLE = re.compile(r"#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_.]+)\}")
# Namespaces CodePipeline defines itself.
BUILTIN_NAMESPACES = {"codepipeline", "variables"}


# --- the pipeline as plain data --------------------------------------------------------


class PipelineWiringError(pulumi.RunError):
    """The stages consume an artifact or variable nothing produced before them.

    A RunError: the engine prints the problems without a traceback, before the pipeline
    (or anything after it) is registered.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("pipeline wiring:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, kw_only=True)
class Action:
    name: str
    category: Literal["Source", "Build", "Test", "Deploy", "Approval", "Invoke"]
    provider: str
    configuration: Mapping[str, str]
    owner: str = "AWS"
    version: str = "1"
    input_artifacts: tuple[str, ...] = ()
    output_artifacts: tuple[str, ...] = ()
    run_order: int = 1
    namespace: str | None = None

    def to_args(self) -> aws.codepipeline.PipelineStageActionArgs:
        return aws.codepipeline.PipelineStageActionArgs(
            name=self.name,
            category=self.category,
            owner=self.owner,
            provider=self.provider,
            version=self.version,
            configuration=dict(self.configuration),
            input_artifacts=list(self.input_artifacts),
            output_artifacts=list(self.output_artifacts),
            run_order=self.run_order,
            namespace=self.namespace,
        )


@dataclass(frozen=True)
class Stage:
    name: str
    actions: tuple[Action, ...]

    def to_args(self) -> aws.codepipeline.PipelineStageArgs:
        return aws.codepipeline.PipelineStageArgs(
            name=self.name, actions=[a.to_args() for a in self.actions]
        )


def check_artifact_wiring(stages: Sequence[Stage]) -> list[str]:
    """Every input artifact and variable comes from an earlier action; names are unique.

    "Earlier" means an earlier stage, or a lower run order in the same stage (actions with
    the same run order run in parallel and cannot see each other's outputs).
    """
    problems: list[str] = []
    if len(stages) < 2:
        problems.append("pipeline: CodePipeline needs at least two stages")
    seen_stages: set[str] = set()
    produced: dict[str, str] = {}
    namespaces: set[str] = set()
    for index, stage in enumerate(stages):
        where_stage = f"stages.{stage.name}"
        if stage.name in seen_stages:
            problems.append(f"{where_stage}: stage name used twice")
        seen_stages.add(stage.name)
        if not stage.actions:
            problems.append(f"{where_stage}: a stage needs at least one action")
        names = [a.name for a in stage.actions]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{where_stage}.{name}: action name used twice in the stage")
        for action in stage.actions:
            is_source = action.category == "Source"
            if index == 0 and not is_source:
                problems.append(
                    f"{where_stage}.{action.name}: the first stage may hold only source actions"
                )
            if index > 0 and is_source:
                problems.append(
                    f"{where_stage}.{action.name}: source actions belong in the first stage"
                )
        for run_order in sorted({a.run_order for a in stage.actions}):
            batch = [a for a in stage.actions if a.run_order == run_order]
            for action in batch:
                problems += _action_problems(f"{where_stage}.{action.name}", action, produced,
                                             namespaces)  # fmt: skip
            for action in batch:
                for artifact in action.output_artifacts:
                    if artifact in produced:
                        problems.append(
                            f"{where_stage}.{action.name}: output artifact {artifact!r} is "
                            f"already produced by {produced[artifact]}; names must be unique"
                        )
                    produced[artifact] = f"{stage.name}.{action.name}"
                if action.namespace:
                    if action.namespace in namespaces:
                        problems.append(
                            f"{where_stage}.{action.name}: namespace {action.namespace!r} "
                            "is used twice"
                        )
                    namespaces.add(action.namespace)
    return problems


def _action_problems(
    where: str, action: Action, produced: Mapping[str, str], namespaces: set[str]
) -> list[str]:
    problems = []
    if action.category == "Source" and action.input_artifacts:
        problems.append(f"{where}: a source action takes no input artifacts")
    for artifact in action.input_artifacts:
        if artifact not in produced:
            problems.append(
                f"{where}: input artifact {artifact!r} is not produced by an earlier action; "
                "add the action that outputs it before this one, or fix the name"
            )
    for key in ARTIFACT_CONFIG_KEYS:
        named = action.configuration.get(key)
        if named is not None and named not in action.input_artifacts:
            problems.append(
                f"{where}: configuration {key} names {named!r}, which is not one of the "
                f"action's input artifacts {list(action.input_artifacts)}"
            )
    for key, value in sorted(action.configuration.items()):
        for namespace, variable in VARIABLE.findall(str(value)):
            if namespace not in namespaces and namespace not in BUILTIN_NAMESPACES:
                problems.append(
                    f"{where}: configuration {key} uses #{{{namespace}.{variable}}}, but no "
                    f"earlier action has namespace {namespace!r}"
                )
    return problems


def require_wiring(stages: Sequence[Stage]) -> None:
    """Raise PipelineWiringError (before any resource is registered) on a miswired pipeline."""
    problems = check_artifact_wiring(stages)
    if problems:
        raise PipelineWiringError(problems)


# --- actions both pipelines use ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """An application or manifest repository (mirrors config `pipeline.source`)."""

    provider: Literal["codestar", "codecommit"]
    repository: str
    branch: str
    connection_arn: str | None = None


def source_action(source: SourceSettings) -> Action:
    if source.provider == "codestar":
        return Action(
            name="Source",
            category="Source",
            provider="CodeStarSourceConnection",
            configuration={
                "ConnectionArn": source.connection_arn or "",
                "FullRepositoryId": source.repository,
                "BranchName": source.branch,
                "OutputArtifactFormat": "CODE_ZIP",
                "DetectChanges": "true",
            },
            output_artifacts=(SOURCE_ARTIFACT,),
            namespace="Source",
        )
    return Action(
        name="Source",
        category="Source",
        provider="CodeCommit",
        configuration={
            "RepositoryName": source.repository,
            "BranchName": source.branch,
            "OutputArtifactFormat": "CODE_ZIP",
            # An EventBridge rule would be needed to start on push; polling keeps it self-contained.
            "PollForSourceChanges": "true",
        },
        output_artifacts=(SOURCE_ARTIFACT,),
        namespace="Source",
    )


def source_statement(
    source: SourceSettings, *, region: str, account_id: str, sid: str | None = None
) -> dict[str, Any]:
    """What the pipeline role needs for its source action: the connection (both prefixes)
    or the CodeCommit repository. `sid` defaults to one per provider."""
    if source.provider == "codestar":
        return iam.use_connection_statement(source.connection_arn, sid or "SourceConnection")
    return {
        "Sid": sid or "SourceRepository",
        "Effect": "Allow",
        "Action": [
            "codecommit:CancelUploadArchive",
            "codecommit:GetBranch",
            "codecommit:GetCommit",
            "codecommit:GetRepository",
            "codecommit:GetUploadArchiveStatus",
            "codecommit:UploadArchive",
        ],
        "Resource": naming.arn(
            "codecommit", region=region, account=account_id, resource=source.repository
        ),
    }


def build_action(
    name: str,
    project: str,
    *,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...] = (),
    namespace: str | None = None,
) -> Action:
    """A CodeBuild action running `project`."""
    return Action(
        name=name,
        category="Build",
        provider="CodeBuild",
        configuration={"ProjectName": project},
        input_artifacts=inputs,
        output_artifacts=outputs,
        namespace=namespace,
    )


def approval_stage(message: str) -> Stage:
    return Stage(
        "Approve",
        (
            Action(
                name="Approve",
                category="Approval",
                provider="Manual",
                configuration={"CustomData": message},
            ),
        ),
    )


# --- the shell -----------------------------------------------------------------------------


def create_pipeline(
    name: str,
    *,
    parent: pulumi.Resource,
    pipeline_name: str,
    stages: Sequence[Stage],
    role: str,
    role_description: str,
    role_statements: list[dict[str, Any]],
    account_id: str,
    bucket_name: str,
    kms_key_arn: pulumi.Input[str] | None,
    tags: dict[str, str],
    depends_on: Sequence[pulumi.Resource] = (),
    role_aliases: list[pulumi.Alias] | None = None,
) -> aws.codepipeline.Pipeline:
    """A CodePipeline V2 with its own role (`role`, granted `role_statements`) and its
    artifact store in `bucket_name`, encrypted with the stack's key when there is one."""
    pipeline_role, policy = iam.service_role(
        role,
        service="codepipeline.amazonaws.com",
        description=role_description,
        source_account=account_id,
        statements=role_statements,
        tags=tags,
        parent=parent,
        aliases=role_aliases,
    )
    store = aws.codepipeline.PipelineArtifactStoreArgs(
        location=bucket_name,
        type="S3",
        encryption_key=aws.codepipeline.PipelineArtifactStoreEncryptionKeyArgs(
            id=kms_key_arn, type="KMS"
        )
        if kms_key_arn is not None
        else None,
    )
    return aws.codepipeline.Pipeline(
        name,
        name=pipeline_name,
        pipeline_type="V2",
        # A newer commit (record, manifest) replaces one still waiting, e.g. at the approval;
        # an action already running finishes.
        execution_mode="SUPERSEDED",
        role_arn=pipeline_role.arn,
        artifact_stores=[store],
        stages=[stage.to_args() for stage in stages],
        tags=tags,
        # A new pipeline starts at once: its role's policy must be in place.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy, *depends_on]),
    )

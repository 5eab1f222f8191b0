"""Readers over a plan's registrations for the delivery tests (inputs made plain: `plain`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from ecs_delivery.components.codepipeline import Action, Stage
from ecs_delivery.offline.plan import Plan
from ecs_delivery.offline.simcloud import plain

ROOT = Path(__file__).resolve().parents[2]  # tests/support -> the repository

GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"
CONFIG = "aws:codedeploy/deploymentConfig:DeploymentConfig"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
PROJECT = "aws:codebuild/project:Project"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
REPOSITORY = "aws:ecr/repository:Repository"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"

# Every document type that can grant permissions, and the input holding the JSON.
POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
}


def inputs(plan: Plan, type_: str, name: str) -> dict[str, Any]:
    return plain(plan.named(type_, name).inputs)


def policy(plan: Plan, name: str) -> dict[str, Any]:
    return json.loads(plan.named(ROLE_POLICY, name).inputs["policy"])


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in document["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, f"{len(found)} statements with Sid {sid}"
    return found[0]


def documents(plan: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, document) of every policy document registered in the plan."""
    found = []
    for reg in plan.resources:
        key = POLICY_INPUTS.get(reg.type)
        if key and isinstance(reg.inputs.get(key), str):
            found.append((reg.type, reg.name, json.loads(reg.inputs[key])))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def pipeline_stages(plan: Plan) -> list[dict[str, Any]]:
    return inputs(plan, PIPELINE, "pipeline")["stages"]


def stages_from_plan(plan: Plan) -> list[Stage]:
    """The registered stages as the plain model `check_artifact_wiring` reads."""
    return [
        Stage(
            stage["name"],
            tuple(
                Action(
                    name=a["name"],
                    category=a["category"],
                    provider=a["provider"],
                    owner=a["owner"],
                    version=a["version"],
                    configuration=a.get("configuration") or {},
                    input_artifacts=tuple(a.get("inputArtifacts") or ()),
                    output_artifacts=tuple(a.get("outputArtifacts") or ()),
                    run_order=a.get("runOrder", 1),
                    namespace=a.get("namespace"),
                )
                for a in stage["actions"]
            ),
        )
        for stage in pipeline_stages(plan)
    ]


def buildspec(plan: Plan) -> dict[str, Any]:
    return yaml.safe_load(inputs(plan, PROJECT, "pipeline")["source"]["buildspec"])


def stack_value(stack: str, key: str) -> Any:
    """A deep copy of one `ecs-delivery:` value of a stack file, to build overrides from."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return copy.deepcopy(data["config"][f"ecs-delivery:{key}"])


def without_workers(stack: str) -> dict[str, Any]:
    """Overrides planning `stack` with its load-balanced services only (`kind: worker` left
    out): for tests of CodeDeploy ships whose simulated world has no ECS-engine deployments."""
    services = stack_value(stack, "services")
    return {"services": {n: s for n, s in services.items() if s.get("kind") != "worker"}}


def stack_config(stack: str) -> Any:
    """A stack file's `ecs-delivery:` values, parsed like the program does (a StackConfig)."""
    from ecs_delivery.components import config

    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = "ecs-delivery:"
    return config.parse(
        {k.removeprefix(prefix): v for k, v in data.items() if k.startswith(prefix)}
    )

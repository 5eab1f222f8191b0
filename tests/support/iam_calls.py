"""Record every AWS call a code path makes and check it against a role's planned policy.

`CallRecorder.attach(client)` hooks botocore's `after-call.*.*` event on that client (moto,
Stubber and the CodeDeploy simulation's answers all pass through it), so each call is
recorded with its parameters and answer. Each call maps to the IAM requests AWS authorises
for it: the action (`signingName:Operation`, with the few S3 exceptions), the resource ARN
derived from the parameters, the condition keys the request carries, and the actions AWS
checks beside it (PassRole of the roles a revision or schedule names, TagResource of a
tagged RegisterTaskDefinition or RunTask, CreateDeployment's revision and config reads).

`check(statements, requests)` then returns what no statement allows and what no request
used, at (statement, action, resource) granularity.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from ecs_delivery.components.artifacts import pipeline_artifact_prefix
from ecs_delivery.offline.plan import Plan
from ecs_delivery.runtime.build import parse_repository_url
from tests.support.plans import ROLE_POLICY, as_list

# Operations whose IAM action is not `<signing name>:<operation>`.
ACTION_OF = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}
# Calls IAM never authorises.
UNAUTHORISED = {"sts:GetCallerIdentity"}
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


@dataclass(frozen=True)
class Request:
    """One IAM authorisation a call needs: action, resource ("*": none derivable), context."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    call: str = ""  # the API call that needed it, for messages

    def __str__(self) -> str:
        extra = f" {dict(self.context)}" if self.context else ""
        via = f" (by {self.call})" if self.call != self.action else ""
        return f"{self.action} on {self.resource}{extra}{via}"


@dataclass
class CallRecorder:
    account: str = "123456789012"
    requests: list[Request] = field(default_factory=list)
    # deployment id -> (application, group), learnt from the answers
    _deployments: dict[str, tuple[str, str]] = field(default_factory=dict)
    _paused: bool = False

    def attach(self, client: Any) -> Any:
        region = client.meta.region_name
        service = client.meta.service_model.signing_name

        def after(http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
            if self._paused:
                return
            params = kwargs.get("context", {}).get("iam_params", {})
            self.requests += self._requests(service, model.name, params, parsed, region)

        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["iam_params"] = dict(params)

        # First in line: a simulator's or Stubber's before-call answer still reaches after-call.
        client.meta.events.register_first("provide-client-params.*.*", remember)
        client.meta.events.register_last("after-call.*.*", after)
        return client

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made here (a test's own setup or assertions) are not the code's."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def actions(self) -> set[str]:
        return {r.action for r in self.requests}

    # -- mapping calls to IAM requests

    def _arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{self.account}:{resource}"

    def _requests(
        self, service: str, operation: str, p: dict[str, Any], answer: dict[str, Any], region: str
    ) -> list[Request]:
        action = ACTION_OF.get((service, operation), f"{service}:{operation}")
        if action in UNAUTHORISED:
            return []
        arn = lambda resource, svc=service: self._arn(svc, region, resource)  # noqa: E731
        out: list[tuple[str, str, dict[str, str]]] = []
        if service == "ecs":
            out += self._ecs(operation, p, answer, arn, region)
        elif service == "codedeploy":
            out += self._codedeploy(operation, p, answer, arn, region)
        elif service == "s3":
            bucket, key = p.get("Bucket", ""), p.get("Key")
            if key is not None:
                out.append((action, f"arn:aws:s3:::{bucket}/{key}", {}))
                if answer.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    # A missing key answers 404 only to a caller who may list the bucket.
                    out.append(("s3:ListBucket", f"arn:aws:s3:::{bucket}", {}))
            else:
                prefix = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
                out.append((action, f"arn:aws:s3:::{bucket}", prefix))
        elif service == "scheduler" and "Name" in p:
            out.append((action, arn(f"schedule/{p.get('GroupName', 'default')}/{p['Name']}"), {}))
            role = (p.get("Target") or {}).get("RoleArn")
            if operation in ("UpdateSchedule", "CreateSchedule") and role:
                out.append(_pass(role, "scheduler.amazonaws.com"))
        elif service == "ecr" and "repositoryName" in p:
            out.append((action, arn(f"repository/{p['repositoryName']}"), {}))
        if not any(a == action for a, _, _ in out):
            out.insert(0, (action, "*", {}))
        return [Request(a, r, tuple(sorted(c.items())), action) for a, r, c in out]

    def _ecs(self, op: str, p: dict[str, Any], answer: dict[str, Any], arn: Any, region: str):
        def cluster_arn(cluster: str) -> str:
            return cluster if cluster.startswith("arn:") else arn(f"cluster/{cluster}")

        if op == "DescribeServices":
            cluster = p.get("cluster", "default").rsplit("/", 1)[-1]
            for service in p.get("services", []):
                name = service.rsplit("/", 1)[-1]
                yield (f"ecs:{op}", arn(f"service/{cluster}/{name}"), {})
        elif op in ("UpdateService", "ListServiceDeployments"):
            cluster = p.get("cluster", "default").rsplit("/", 1)[-1]
            yield (f"ecs:{op}", arn(f"service/{cluster}/{p['service'].rsplit('/', 1)[-1]}"), {})
        elif op in ("DescribeServiceDeployments", "DescribeServiceRevisions"):
            key = (
                "serviceDeploymentArns"
                if op == "DescribeServiceDeployments"
                else "serviceRevisionArns"
            )
            for resource in p.get(key, []):
                yield (f"ecs:{op}", resource, {})
        elif op == "StopServiceDeployment":
            yield (f"ecs:{op}", p["serviceDeploymentArn"], {})
        elif op == "RegisterTaskDefinition":
            yield (f"ecs:{op}", "*", {})
            for key in ("taskRoleArn", "executionRoleArn"):
                if p.get(key):
                    yield _pass(p[key], "ecs-tasks.amazonaws.com")
            registered = answer.get("taskDefinition", {}).get("taskDefinitionArn")
            if p.get("tags") and registered:
                yield ("ecs:TagResource", registered, {"ecs:CreateAction": op})
        elif op == "RunTask":
            cluster = cluster_arn(p.get("cluster", "default"))
            task_definition = p["taskDefinition"]
            if not task_definition.startswith("arn:"):
                task_definition = arn(f"task-definition/{task_definition}")
            yield (f"ecs:{op}", task_definition, {"ecs:cluster": cluster})
            for task in answer.get("tasks", []):
                if p.get("tags") or p.get("enableECSManagedTags") or p.get("propagateTags"):
                    yield ("ecs:TagResource", task["taskArn"], {"ecs:CreateAction": op})
            with self.paused():
                described = boto3.client("ecs", region_name=region).describe_task_definition(
                    taskDefinition=task_definition
                )["taskDefinition"]
            for key in ("taskRoleArn", "executionRoleArn"):
                if described.get(key):
                    yield _pass(described[key], "ecs-tasks.amazonaws.com")

    def _codedeploy(self, op: str, p: dict[str, Any], answer: dict[str, Any], arn: Any, region):
        def group(application: str, name: str) -> str:
            return arn(f"deploymentgroup:{application}/{name}")

        infos = answer.get("deploymentsInfo", []) + (
            [answer["deploymentInfo"]] if "deploymentInfo" in answer else []
        )
        for info in infos:
            self._deployments[info["deploymentId"]] = (
                info["applicationName"],
                info["deploymentGroupName"],
            )
        if op in ("CreateDeployment", "ListDeployments") and "deploymentGroupName" in p:
            application, name = p["applicationName"], p["deploymentGroupName"]
            for deployment_id in [answer.get("deploymentId"), *answer.get("deployments", [])]:
                if deployment_id:
                    self._deployments[deployment_id] = (application, name)
            yield (f"codedeploy:{op}", group(application, name), {})
            if op == "CreateDeployment":
                # AWS authorises these beside CreateDeployment: the revision it registers and
                # reads, and the deployment configuration it applies.
                for action in ("RegisterApplicationRevision", "GetApplicationRevision"):
                    yield (f"codedeploy:{action}", arn(f"application:{application}"), {})
                config = p.get("deploymentConfigName") or self._config(application, name, region)
                yield ("codedeploy:GetDeploymentConfig", arn(f"deploymentconfig:{config}"), {})
        for deployment_id in as_list(p.get("deploymentId") or p.get("deploymentIds") or []):
            application, name = self._deployments[deployment_id]
            yield (f"codedeploy:{op}", group(application, name), {})

    def _config(self, application: str, group: str, region: str) -> str:
        with self.paused():
            info = boto3.client("codedeploy", region_name=region).get_deployment_group(
                applicationName=application, deploymentGroupName=group
            )["deploymentGroupInfo"]
        return str(info["deploymentConfigName"])


def _pass(role: str, service: str) -> tuple[str, str, dict[str, str]]:
    return ("iam:PassRole", role, {"iam:PassedToService": service})


# -- what a buildspec's CLI lines and CodeBuild itself need (no boto3 call to record)

# `docker push`: the layer checks and uploads, the manifest, and the HEAD of an existing one.
DOCKER_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
_S3_COPY = re.compile(r"\baws s3 cp (?:--\S+ )*s3://(?P<bucket>[^/\s]+)/(?P<key>\S+)")
_DOCKER_PUSH = re.compile(r"\bdocker push (?P<url>[^\s:\"]+)")


def command_requests(command: str) -> list[Request]:
    """The IAM requests of a buildspec command's AWS CLI and docker calls: `aws s3 cp
    s3://<bucket>/<key>` (HeadObject and GetObject), `aws ecr get-login-password` and each
    `docker push <repository>:<tag>`."""
    found = [
        Request("s3:GetObject", f"arn:aws:s3:::{m['bucket']}/{m['key']}", call="aws s3 cp")
        for m in _S3_COPY.finditer(command)
    ]
    if "aws ecr get-login-password" in command:
        found.append(Request("ecr:GetAuthorizationToken", "*", call="docker login"))
    for pushed in _DOCKER_PUSH.finditer(command):
        repository = parse_repository_url(pushed["url"])
        arn = (
            f"arn:aws:ecr:{repository.region}:{repository.registry_id}:repository/{repository.name}"
        )
        found += [Request(action, arn, call="docker push") for action in DOCKER_PUSH_ACTIONS]
    return found


def buildspec_requests(buildspec: dict[str, Any]) -> list[Request]:
    """command_requests of every command of every phase."""
    return [
        request
        for phase in buildspec["phases"].values()
        for command in phase.get("commands", [])
        for request in command_requests(command)
    ]


def codebuild_requests(
    project: dict[str, Any], action: dict[str, Any], pipeline: dict[str, Any], *, region: str
) -> list[Request]:
    """What CodeBuild itself does with a project's role when a pipeline runs `action`, as AWS
    documents CodeBuild's service role: write the build's log stream, fetch each input
    artifact (GetObject, GetObjectVersion) and store each output one (PutObject) under the
    pipeline's artifact prefix, read the artifact bucket's ACL and location."""
    assert not project.get("encryptionKey"), "the checker knows no artifact key yet"
    (store,) = pipeline["artifactStores"]
    bucket = f"arn:aws:s3:::{store['location']}"
    prefix = pipeline_artifact_prefix(pipeline["name"])
    group = project["logsConfig"]["cloudwatchLogs"]["groupName"]
    stream = f"arn:aws:logs:{region}:{CallRecorder.account}:log-group:{group}:log-stream:build"
    found = [
        Request(a, stream, call="CodeBuild") for a in ("logs:CreateLogStream", "logs:PutLogEvents")
    ]
    found += [
        Request(a, bucket, call="CodeBuild") for a in ("s3:GetBucketAcl", "s3:GetBucketLocation")
    ]
    for name in action.get("inputArtifacts") or []:
        key = f"{bucket}/{prefix}{name[:20]}/artifact"
        found += [
            Request(a, key, call="CodeBuild") for a in ("s3:GetObject", "s3:GetObjectVersion")
        ]
    for name in action.get("outputArtifacts") or []:
        found.append(
            Request("s3:PutObject", f"{bucket}/{prefix}{name[:20]}/artifact", call="CodeBuild")
        )
    return found


# -- the policy as planned


def role_statements(plan: Plan, role: str) -> list[dict[str, Any]]:
    """Every statement of a planned role: its inline policy and the managed ones attached."""
    found = [plan.named(ROLE_POLICY, role)] if _has(plan, ROLE_POLICY, role) else []
    for attachment in plan.of_type(ATTACHMENT):
        if str(attachment.inputs["role"]).rsplit("-", 1)[0] == role:
            name = str(attachment.inputs["policyArn"]).split("/")[-1].rsplit("-", 1)[0]
            found.append(plan.named(POLICY, name))
    return [s for r in found for s in json.loads(r.inputs["policy"])["Statement"]]


def policy_statements(plan: Plan, names: Iterable[str]) -> list[dict[str, Any]]:
    """The statements of managed policies (the deployer's, attached to whoever deploys)."""
    return [
        s for n in names for s in json.loads(plan.named(POLICY, n).inputs["policy"])["Statement"]
    ]


def _has(plan: Plan, type_: str, name: str) -> bool:
    return any(r.name == name for r in plan.of_type(type_))


# -- evaluation


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            if key not in context:  # IAM: a key absent from the request fails the test
                return False
            value = context[key]
            if operator in ("StringEquals", "ArnEquals"):
                ok = value in as_list(wanted)
            elif operator in ("StringLike", "ArnLike"):
                ok = any(_like(w, value) for w in as_list(wanted))
            else:
                raise AssertionError(f"the checker does not know condition {operator}")
            if not ok:
                return False
    return True


def grants(statement: dict[str, Any], request: Request, resource: str | None = None) -> bool:
    """Does an Allow statement (or one of its resources) allow the request?"""
    if statement["Effect"] != "Allow":
        return False
    if not any(_like(a, request.action) for a in as_list(statement["Action"])):
        return False
    resources = [resource] if resource else as_list(statement["Resource"])
    # A request without a derivable ARN matches at the action level only.
    if request.resource != "*" and not any(_like(r, request.resource) for r in resources):
        return False
    return _condition_holds(statement.get("Condition", {}), dict(request.context))


def denied(statements: list[dict[str, Any]], requests: Iterable[Request]) -> list[str]:
    """Every request no statement allows."""
    return sorted({str(r) for r in requests if not any(grants(s, r) for s in statements)})


def unused(
    statements: list[dict[str, Any]],
    requests: Iterable[Request],
    allowed: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Every (Sid, action, resource) no request used, save the (Sid, action) pairs `allowed`."""
    requests = list(requests)
    left = []
    for statement in statements:
        for action in as_list(statement["Action"]):
            if (statement.get("Sid"), action) in (allowed or {}):
                continue
            for resource in as_list(statement["Resource"]):
                if not any(r.action == action and grants(statement, r, resource) for r in requests):
                    left.append(f"{statement.get('Sid')}: {action} on {resource}")
    return left


def assert_proven(
    statements: list[dict[str, Any]],
    requests: Iterable[Request],
    allowed: dict[tuple[str, str], str],
) -> None:
    """Every request is allowed, and every grant used save the `allowed` ones (with why)."""
    requests = list(requests)
    assert requests, "the code path made no AWS call"
    refused = denied(statements, requests)
    assert not refused, "denied:\n" + "\n".join(refused)
    left = unused(statements, requests, allowed)
    assert not left, "granted, unused:\n" + "\n".join(left)

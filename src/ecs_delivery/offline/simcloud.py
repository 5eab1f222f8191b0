"""The simulated cloud: the one place that answers the program's cloud look-ups offline.

Invokes (account, zones, live ECS services) and stack references are answered from a
`SimulatedEnvironment`, which `make plan LIVE=<file>` loads from YAML or JSON (see
README "Simulated environment"). Without a file it simulates a fresh account.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc as pulumi_rpc
from pydantic import AfterValidator, Field, Strict, ValidationError, field_validator

from ecs_delivery import inputs
from ecs_delivery.components import naming

DEFAULT_ACCOUNT = "123456789012"


class SimulationError(Exception):
    """The simulated-environment file is malformed; the message names the key."""


_TASK_DEFINITION_ARN = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}(:\d+)?$"
)


def _image(value: str) -> str:
    """What AWS reports a container runs: an image reference (the config's grammar)."""
    from ecs_delivery.components.config.values import check_image

    return check_image(value) or value


def _digest(value: str) -> str:
    from ecs_delivery.components.config.values import DIGEST

    if not DIGEST.match(value):
        raise ValueError(f"{value!r} is not sha256:<64 hex digits>")
    return value


def _digest_reference(value: str) -> str:
    from ecs_delivery.runtime.promotion import DIGEST_URI_PATTERN

    if not DIGEST_URI_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not an image digest reference; a pipeline publishes "
            "<registry>/<repository>@sha256:<64 hex digits>"
        )
    return value


Image = Annotated[str, AfterValidator(_image)]
DigestReference = Annotated[str, AfterValidator(_digest_reference)]


class LiveService(inputs.Model):
    """A service that exists in the simulated account, with the images it runs now."""

    containers: dict[str, Image] = Field(default_factory=dict)
    # Digests ECS reports for images given by tag (container -> sha256:...).
    digests: dict[str, Annotated[str, AfterValidator(_digest)]] = Field(default_factory=dict)
    task_definition_arn: str | None = None
    # The service exists, but its task definition cannot be read (e.g. deregistered, denied).
    unreadable: Annotated[bool, Strict()] = False
    # The service is tagged, but DescribeServices fails for it (e.g. denied).
    describe_fails: Annotated[bool, Strict()] = False

    @field_validator("task_definition_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not _TASK_DEFINITION_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a task definition ARN; expected "
                "arn:aws:ecs:<region>:<account-id>:task-definition/<family>[:<revision>] (a "
                "schedule that names the family runs its newest revision)"
            )
        return value


class SimulatedHostedZone(inputs.Model):
    """A Route 53 hosted zone of the simulated account."""

    id: str
    private: Annotated[bool, Strict()] = False


def _revision_arn(arn: str | None) -> str | None:
    """A schedule's target as a revision: one that names the family runs its newest (`:5`)."""
    if arn and ":" not in arn.rsplit("/", 1)[-1]:
        return f"{arn}:5"
    return arn


def simulated_zone_id(name: str) -> str:
    """The id a public zone not listed in `hostedZones` gets: every name looked up exists."""
    return "Z" + _digest(name.rstrip(".").lower())[:20].upper()


class SimulatedEnvironment(inputs.Model):
    account_id: str = DEFAULT_ACCOUNT
    availability_zones: list[str] | None = None
    services: dict[str, LiveService] = Field(default_factory=dict)
    # Scheduled tasks that exist, with the image their newest revision runs.
    scheduled_tasks: dict[str, LiveService] = Field(default_factory=dict)
    # Outputs of stacks, by the name the program passes to StackReference (this stack's own
    # name gives its last outputs).
    stacks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Releases stacks' pipelines published: stack -> commit -> service -> container -> digest.
    promotion_records: dict[str, dict[str, dict[str, dict[str, DigestReference]]]] = Field(
        default_factory=dict
    )
    # Route 53 zones by name; a public zone looked up by a name not listed here exists too.
    hosted_zones: dict[str, SimulatedHostedZone] = Field(default_factory=dict)

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_id_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # A number would drop an account id's leading zeros: the id must be quoted.
            example = value if len(str(value)) == 12 else "111111111111"
            raise ValueError(
                f"{value} is a YAML number; give the 12 digits quoted (accountId: '{example}')"
            )
        return value

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]{12}", value):
            raise ValueError(f"{value!r} is not an AWS account id; give its 12 digits, quoted")
        return value

    @classmethod
    def load(cls, path: str | Path) -> SimulatedEnvironment:
        """Read a LIVE file; problems are reported like stack-file ones (file:line: key: fix)."""
        try:
            document = inputs.load_yaml(path)
            raw = inputs.mapping(document, (), "a simulated environment")
        except inputs.ReadError as exc:
            raise SimulationError(str(exc)) from None
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = [f"  {p}" for p in inputs.located(inputs.problems(exc, cls), document)]
            raise SimulationError(
                f"invalid simulated environment ({len(problems)} problem(s)):\n"
                + "\n".join(problems)
            ) from None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Registration:
    """One RegisterResource request as the engine would receive it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Records every raw RegisterResource request: inputs and the resource options."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        # Same steps as MockMonitor.RegisterResource, deserializing the inputs only once.
        from pulumi.runtime import rpc
        from pulumi.runtime.proto import resource_pb2
        from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        resource_id, state = self.mocks.new_resource(
            pulumi_mocks.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
        )
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        self.registrations.append(
            Registration(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=inputs,
                options={
                    "ignoreChanges": list(request.ignoreChanges),
                    "dependsOn": sorted(request.dependencies),
                    "protect": bool(getattr(request, "protect", False)),
                    "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                    "replaceOnChanges": list(request.replaceOnChanges),
                    "retainOnDelete": bool(getattr(request, "retainOnDelete", False)),
                    "aliases": [str(a) for a in request.aliases] if request.aliases else [],
                    "additionalSecretOutputs": list(request.additionalSecretOutputs),
                    "provider": request.provider,
                },
            )
        )
        properties = _plain_struct(state)
        if properties is None:  # unknowns, secrets, assets: the SDK's own serialisation
            properties = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=properties)


def _is_plain(value: Any) -> bool:
    """JSON values only: no unknown, no secret or other special signature, no asset."""
    if isinstance(value, str):
        return value != pulumi_rpc.UNKNOWN
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, dict):
        return pulumi_rpc._special_sig_key not in value and all(
            isinstance(k, str) and _is_plain(v) for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return False


def _plain_struct(state: dict[str, Any]) -> Any:
    """A resource's state as the engine's wire Struct without a round trip through the SDK's
    serialiser and its event loop, when every value is plain (None when one is not): what
    serialize_properties makes of such a state, top-level Nones left out as it does."""
    from google.protobuf import struct_pb2

    if not all(isinstance(k, str) and _is_plain(v) for k, v in state.items()):
        return None
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in state.items() if v is not None})
    return struct


@dataclass
class SimulatedCloud(pulumi_mocks.Mocks):
    """Pulumi mocks that behave like a (simulated) AWS account in one region."""

    region: str
    environment: SimulatedEnvironment = field(default_factory=SimulatedEnvironment)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # A first `pulumi preview`: nothing exists yet, so every output the engine would compute
    # (ids, ARNs, names it generates) is unknown, as the engine reports it.
    preview: bool = False

    # --- resources ---------------------------------------------------------------

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name") or args.name
            return name, {"name": name, "outputs": self._stack_outputs(name)}
        inputs = dict(args.inputs)
        physical = inputs.get("name") or f"{args.name}-{_digest(args.name)[:7]}"
        rid = f"{args.name}-id"
        account, region = self.environment.account_id, self.region
        kind = args.typ.split(":")[1].split("/")[0] if ":" in args.typ else "mock"
        state = {
            **inputs,
            "arn": f"arn:{self.partition}:{kind}:{region}:{account}:{args.typ.rsplit(':', 1)[-1].lower()}/{physical}",
            "id": rid,
        }
        if args.typ in ("aws:ecs/taskDefinition:TaskDefinition",):
            state["arn"] = (
                f"arn:{self.partition}:ecs:{region}:{account}:task-definition/{inputs.get('family')}:1"
            )
            state["revision"] = 1
        elif args.typ == "aws:ecs/cluster:Cluster":
            state["arn"] = f"arn:{self.partition}:ecs:{region}:{account}:cluster/{physical}"
        elif args.typ == "aws:lb/loadBalancer:LoadBalancer":
            state["dnsName"] = f"{physical}-{_digest(physical)[:9]}.{region}.elb.amazonaws.com"
            state["arnSuffix"] = f"app/{physical}/{_digest(physical)[:16]}"
            state["zoneId"] = "Z32O12XQLNTSW2"  # the canonical zone of eu-west-1's ALBs
        elif args.typ == "aws:acm/certificate:Certificate":
            state["domainValidationOptions"] = _validation_options(inputs)
        elif args.typ == "aws:route53/record:Record":
            state["fqdn"] = str(inputs.get("name", "")).rstrip(".")
        elif args.typ == "aws:lb/targetGroup:TargetGroup":
            state["name"] = physical[:32]
            state["arnSuffix"] = f"targetgroup/{physical[:32]}/{_digest(physical)[:16]}"
        elif args.typ == "aws:ec2/eip:Eip":
            digest = _digest(args.name)
            state["publicIp"] = f"203.0.113.{int(digest[:2], 16) % 250 + 1}"  # TEST-NET-3
        elif args.typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}"
            state["registryId"] = account
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:{self.partition}:logs:{region}:{account}:log-group:{physical}"
        elif args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:{self.partition}:iam::{account}:role/{physical}"
        elif args.typ == "aws:s3/bucketV2:BucketV2" or args.typ == "aws:s3/bucket:Bucket":
            state["bucket"] = inputs.get("bucket") or physical
            state["arn"] = f"arn:{self.partition}:s3:::{state['bucket']}"
        state.setdefault("name", physical)
        if self.preview:
            from pulumi.runtime import rpc

            computed = {k: rpc.UNKNOWN for k, v in state.items() if inputs.get(k) != v}
            return "", {**state, **computed}
        return rid, state

    def _stack_outputs(self, name: str) -> dict[str, Any]:
        stacks = self.environment.stacks
        short = name.rsplit("/", 1)[-1]
        return stacks.get(name) or stacks.get(short) or {}

    # --- invokes -----------------------------------------------------------------

    @property
    def partition(self) -> str:
        """The ARN partition of the simulated region (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
        return naming.partition(self.region)

    def call(self, args: pulumi_mocks.MockCallArgs):
        self.invokes.append((args.token, dict(args.args)))
        handler = {
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller_identity,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:index/getRegion:getRegion": lambda a: {
                "name": self.region,
                "region": self.region,
                "id": self.region,
            },
            "aws:index/getPartition:getPartition": lambda a: {
                "partition": self.partition,
                "dnsSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
                "id": self.partition,
            },
            "aws:resourcegroupstaggingapi/getResources:getResources": self._tagged_resources,
            "aws:ecs/getService:getService": self._ecs_service,
            "aws:cloudcontrol/getResource:getResource": self._cloud_control,
            "aws:ecs/getContainerDefinition:getContainerDefinition": self._container_definition,
            "aws:ecs/getTaskDefinition:getTaskDefinition": self._task_definition,
            "aws:s3/getObject:getObject": self._s3_object,
            "aws:route53/getZone:getZone": self._hosted_zone,
        }.get(args.token)
        if handler is None:
            raise SimulationError(
                f"the simulated cloud does not answer invoke {args.token}; add it to tools/simcloud.py"
            )
        return handler(args.args)

    def _caller_identity(self, _args: dict[str, Any]) -> dict[str, Any]:
        account = self.environment.account_id
        return {
            "accountId": account,
            "arn": f"arn:{self.partition}:iam::{account}:role/simulated",
            "userId": "AROASIMULATED",
            "id": account,
        }

    def _hosted_zone(self, args: dict[str, Any]) -> dict[str, Any]:
        zones = self.environment.hosted_zones
        if args.get("zoneId"):
            found = [(n, z) for n, z in zones.items() if z.id == args["zoneId"]]
            if not found:
                raise SimulationError(
                    f"no hosted zone {args['zoneId']} in the simulated account; add it to hostedZones"
                )
            name, zone = found[0]
        else:
            name = str(args.get("name", "")).rstrip(".").lower()
            zone = zones.get(name) or SimulatedHostedZone(id=simulated_zone_id(name))
            if zone.private != bool(args.get("privateZone", False)):
                raise SimulationError(
                    f"no {'private' if args.get('privateZone') else 'public'} hosted zone {name}"
                )
        return {
            "id": zone.id,
            "zoneId": zone.id,
            "name": name,
            "privateZone": zone.private,
            "arn": f"arn:aws:route53:::hostedzone/{zone.id}",
            "nameServers": [f"ns-{i}.awsdns-simulated.net" for i in range(4)],
        }

    def _zones(self, _args: dict[str, Any]) -> dict[str, Any]:
        names = self.environment.availability_zones or [f"{self.region}{z}" for z in "abc"]
        return {"names": names, "zoneIds": [f"zone-{n}" for n in names], "id": self.region}

    def _tagged_resources(self, args: dict[str, Any]) -> dict[str, Any]:
        """The stack's live ECS services, as the Resource Groups Tagging API lists them."""
        tags = {f["key"]: (f.get("values") or [""])[0] for f in args.get("tagFilters", [])}
        cluster = f"{tags.get('ecs-delivery:project', 'project')}-{tags.get('ecs-delivery:stack', 'stack')}"
        if args.get("resourceTypeFilters") == ["ecs:task-definition"]:
            prefix = f"arn:{self.partition}:ecs:{self.region}:{self.environment.account_id}:task-definition/{cluster}"
            return {
                "resourceTagMappingLists": [
                    {
                        "resourceArn": _revision_arn(live.task_definition_arn)
                        or f"{prefix}-{name}:5",
                        "tags": {**tags, "ecs-delivery:task": name},
                        "complianceDetails": [],
                    }
                    for name, live in sorted(self.environment.scheduled_tasks.items())
                ],
                "id": self.region,
            }
        if args.get("resourceTypeFilters") != ["ecs:service"]:
            return {"resourceTagMappingLists": [], "id": self.region}
        prefix = f"arn:{self.partition}:ecs:{self.region}:{self.environment.account_id}:service/{cluster}"
        return {
            "resourceTagMappingLists": [
                {"resourceArn": f"{prefix}/{name}", "tags": tags, "complianceDetails": []}
                for name in sorted(self.environment.services)
            ],
            "id": self.region,
        }

    def _cloud_control(self, args: dict[str, Any]) -> dict[str, Any]:
        """Scheduler schedules of live scheduled tasks, as Cloud Control returns them."""
        name = args.get("identifier", "")
        if args.get("typeName") != "AWS::Scheduler::Schedule":
            raise SimulationError(
                f"the simulated cloud has no Cloud Control type {args.get('typeName')}"
            )
        for task, live in self.environment.scheduled_tasks.items():
            if name.endswith(f"-{task}"):
                arn = live.task_definition_arn or (
                    f"arn:{self.partition}:ecs:{self.region}:{self.environment.account_id}:task-definition/{name}:5"
                )
                properties = {
                    "Name": name,
                    "GroupName": "default",
                    "Target": {"EcsParameters": {"TaskDefinitionArn": arn}},
                }
                return {
                    "identifier": name,
                    "typeName": "AWS::Scheduler::Schedule",
                    "properties": json.dumps(properties),
                    "id": name,
                }
        raise Exception(f"ResourceNotFoundException: schedule {name} not found")

    def _ecs_service(self, args: dict[str, Any]) -> dict[str, Any]:
        cluster = args.get("clusterArn", "")
        name = args.get("serviceName", "")
        live = self.environment.services.get(name)
        if live is not None and live.describe_fails:
            raise Exception(f"AccessDeniedException: ecs:DescribeServices on {name} denied")
        if live is None:
            # Same wording as the provider's not-found error for this data source.
            raise Exception(
                f"reading ECS Service ({name}): couldn't find resource (cluster {cluster})"
            )
        family = f"{cluster.rsplit('/', 1)[-1]}-{name}"
        arn = (
            live.task_definition_arn
            or f"arn:{self.partition}:ecs:{self.region}:{self.environment.account_id}:task-definition/{family}:7"
        )
        return {
            "arn": f"arn:{self.partition}:ecs:{self.region}:{self.environment.account_id}:service/{cluster}/{name}",
            "clusterArn": cluster,
            "serviceName": name,
            "taskDefinition": arn,
            "desiredCount": 1,
            "launchType": "FARGATE",
            "schedulingStrategy": "REPLICA",
            "tags": {},
            "id": arn,
        }

    def _revisions(self, task_definition: str) -> list[Any]:
        """The readable live services and scheduled tasks whose revision `task_definition` is,
        by ARN (a service's default `:7`, a scheduled task's `:5`, the revision its schedule
        targets) or by family (its newest revision)."""
        revisions = [
            *((name, live, 7) for name, live in self.environment.services.items()),
            *((name, live, 5) for name, live in self.environment.scheduled_tasks.items()),
        ]
        asked = task_definition.rsplit("/", 1)[-1]
        found = []
        for name, live, default_revision in revisions:
            matches = (
                task_definition == live.task_definition_arn
                if live.task_definition_arn
                else task_definition.endswith(f"-{name}:{default_revision}")
            )
            if ":" not in asked:  # a family: its newest revision, the one a schedule runs
                family = (live.task_definition_arn or "").rsplit("/", 1)[-1].split(":")[0]
                matches = asked == family if family else asked.endswith(f"-{name}")
            if matches and not live.unreadable:
                found.append(live)
        return found

    def _task_definition(self, args: dict[str, Any]) -> dict[str, Any]:
        """The revision asked for, with its containers' names and images (what the provider's
        data source returns as `containerDefinitions`, JSON)."""
        task_definition = args.get("taskDefinition", "")
        live = next(iter(self._revisions(task_definition)), None)
        if live is None:
            raise Exception(
                f"reading ECS Task Definition ({task_definition}): AccessDeniedException or not found"
            )
        containers = [{"name": n, "image": image} for n, image in live.containers.items()]
        return {
            "taskDefinition": task_definition,
            "arn": task_definition,
            "family": task_definition.rsplit("/", 1)[-1].split(":")[0],
            "containerDefinitions": json.dumps(containers),
            "id": task_definition,
        }

    def _container_definition(self, args: dict[str, Any]) -> dict[str, Any]:
        """The container of the revision asked for (see _revisions)."""
        task_definition = args.get("taskDefinition", "")
        container = args.get("containerName", "")
        for live in self._revisions(task_definition):
            if container not in live.containers:
                continue
            image = live.containers[container]
            digest = image.split("@", 1)[1] if "@" in image else live.digests.get(container, "")
            return {
                "taskDefinition": task_definition,
                "containerName": container,
                "image": image,
                "imageDigest": digest,
                "cpu": 0,
                "memory": 0,
                "memoryReservation": 0,
                "disableNetworking": False,
                "dockerLabels": {},
                "environment": {},
                "id": f"{task_definition}/{container}",
            }
        raise Exception(
            f"reading ECS Container Definition ({task_definition}/{container}): AccessDeniedException or not found"
        )

    def _s3_object(self, args: dict[str, Any]) -> dict[str, Any]:
        """Promotion records a stack's pipeline published (`promotionRecords`), as S3 serves them."""
        bucket, key = args.get("bucket", ""), args.get("key", "")
        for stack, releases in self.environment.promotion_records.items():
            prefix = f"promotion/{stack}/releases/"
            if not key.startswith(prefix) or not key.endswith(".json"):
                continue
            commit = key[len(prefix) : -len(".json")]
            outputs = self._stack_outputs(stack)
            if commit in releases and outputs.get("promotionBucket", bucket) == bucket:
                record = {
                    "schema": 1,
                    "sourceStack": stack,
                    "commit": commit,
                    "images": releases[commit],
                    "createdAt": "2026-01-01T00:00:00+00:00",
                }
                return {
                    "bucket": bucket,
                    "key": key,
                    "body": json.dumps(record, sort_keys=True),
                    "contentType": "application/json",
                    "id": f"{bucket}/{key}",
                }
        raise Exception(f"NoSuchKey: s3://{bucket}/{key} does not exist")


def _validation_options(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """ACM's DNS validation records: one per name, `*.x` sharing the record of `x`."""
    names = [inputs.get("domainName"), *(inputs.get("subjectAlternativeNames") or [])]
    options = []
    for name in [n for n in names if n]:
        base = name[2:] if name.startswith("*.") else name
        token = _digest(base)[:32]
        options.append(
            {
                "domainName": name,
                "resourceRecordName": f"_{token}.{base}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{_digest(token)[:32]}.acm-validations.aws.",
            }
        )
    return options


def plain(value: Any) -> Any:
    """Turn registered inputs into JSON-safe values (unknowns, secrets, assets marked)."""
    from pulumi.runtime import rpc

    if (isinstance(value, str) and value == rpc.UNKNOWN) or isinstance(
        value, pulumi.output.Unknown
    ):
        return "<computed>"
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return "[secret]"
        return {str(k): plain(v) for k, v in value.items() if not str(k).startswith("__provider")}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        # The file name only: built archives are named by their content hash, and the
        # directory a plan runs in (a checkout, a temporary worktree) is not a change.
        path = getattr(value, "path", None)
        return {"asset": type(value).__name__, "path": Path(path).name if path else None}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))

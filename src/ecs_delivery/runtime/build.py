"""Build-time steps run inside CodeBuild: image tags, the promotion record, the deploy.

The generated buildspecs (src/ecs_delivery/components/buildspec.py) call `python -m ecs_delivery.runtime.build <step>`:

- the build (after `docker build`/`docker push`) and the downstream validation write only the
  promotion record: the image digests this execution deploys;
- `deploy`, the pipeline's Deploy action (after any approval): ships one service's image
  through `runtime.rollout.rollout`, the deploy-time mechanism `pulumi up` and the release
  engine use too: it reads what runs, changes only the image, and re-checks what runs once it
  holds the deployment group's lock (a `pulumi up` rollout that landed in between is merged,
  never reverted); then it puts the image on the scheduled tasks that follow the service
  (`runtime.task_rollout.deploy_task`, the tasks' one registration protocol);
- `publish-records`, after the deploy, publishes the record for the next environment.

Keep the imports light (boto3, botocore, pydantic): this module runs in the build image.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ecs_delivery import inputs
from ecs_delivery.runtime.codedeploy import (
    PIPELINE_NEXT_STEP,
    VALIDATION_HOOK_EVENT,
    DeploymentError,
    validation_hooks,
)
from ecs_delivery.runtime.live import NotRunningError
from ecs_delivery.runtime.promotion import (
    DIGEST_URI_PATTERN,
    PromotionRecord,
    PromotionRecordError,
    check_claims,
    latest_record_key,
    new_record,
    publish_record,
    read_record_file,
    release_record_key,
    write_record_file,
)
from ecs_delivery.runtime.rollout import (
    RolloutRaceError,
    RolloutRequest,
    RolloutResult,
    rollout,
)
from ecs_delivery.runtime.task_rollout import TaskChange, TaskResult, TaskStateError, deploy_task

DEFAULT_TAG_LENGTH = 12

ECR_URL_PATTERN = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<name>[a-z0-9][a-z0-9._/\-]{0,255})$"
)
DOCKER_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
# ECS's rule for task-definition family and container names.
TASK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# `image-exists` only: the tag is not in the repository (distinct from errors, 1 and 2).
EXIT_NOT_FOUND = 3

# IAM action behind each API call this module makes, to turn AccessDenied into a fix.
_IAM_ACTIONS = {
    "DescribeServices": "ecs:DescribeServices",
    "DescribeTaskDefinition": "ecs:DescribeTaskDefinition",
    "DescribeImages": "ecr:DescribeImages",
    "PutObject": "s3:PutObject",
    "RegisterTaskDefinition": "ecs:RegisterTaskDefinition (and ecs:TagResource)",
    "ListDeployments": "codedeploy:ListDeployments",
    "CreateDeployment": "codedeploy:CreateDeployment",
    "GetDeployment": "codedeploy:GetDeployment",
    "StopDeployment": "codedeploy:StopDeployment",
}


class BuildError(Exception):
    """A problem the build cannot get past; the message says what to fix."""


@dataclass(frozen=True)
class EcrRepository:
    """An ECR repository URL split into the parts the ECR API wants."""

    url: str
    registry_id: str
    region: str
    name: str

    @property
    def registry(self) -> str:
        """The registry host, for `docker login`."""
        return self.url.split("/", 1)[0]

    def digest_uri(self, digest: str) -> str:
        return f"{self.url}@{digest}"


def parse_repository_url(url: str) -> EcrRepository:
    """Split `<account>.dkr.ecr.<region>.amazonaws.com/<name>`; refuse anything else."""
    match = ECR_URL_PATTERN.match(url)
    if not match:
        raise BuildError(
            f"repository URL {url!r} is not an ECR repository URL; expected "
            "<account-id>.dkr.ecr.<region>.amazonaws.com/<repository-name> "
            "(the repositoryUrl output of the stack's ECR repository)"
        )
    return EcrRepository(
        url=url, registry_id=match["account"], region=match["region"], name=match["name"]
    )


def image_tag(source_version: str, length: int = DEFAULT_TAG_LENGTH) -> str:
    """The immutable image tag for a source revision: its first `length` characters.

    CodeBuild sets CODEBUILD_RESOLVED_SOURCE_VERSION to the commit id; a tag must be a
    valid Docker tag, so anything else is refused rather than mangled.
    """
    version = source_version.strip()
    if not version:
        raise BuildError(
            "source version is empty: CODEBUILD_RESOLVED_SOURCE_VERSION is not set; run the "
            "build from the pipeline (or pass the commit id explicitly)"
        )
    if length < 7:
        raise BuildError(f"tag length {length} is too short to identify a commit; use 7 or more")
    tag = version[:length]
    if not DOCKER_TAG_PATTERN.match(tag):
        raise BuildError(
            f"source version {version!r} does not make a valid image tag "
            "(letters, digits, '_', '.', '-'; not starting with '.' or '-')"
        )
    return tag


def find_image_digest(ecr: Any, repository_url: str, tag: str) -> str | None:
    """The digest (sha256:...) that `tag` points to, or None when the tag is not there."""
    repository = parse_repository_url(repository_url)
    try:
        response = ecr.describe_images(
            registryId=repository.registry_id,
            repositoryName=repository.name,
            imageIds=[{"imageTag": tag}],
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ImageNotFoundException":
            return None
        if error.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            raise BuildError(
                f"ECR repository {repository.name!r} does not exist in account "
                f"{repository.registry_id} ({repository.region}); run `pulumi up` first"
            ) from None
        raise
    details = response.get("imageDetails", [])
    return details[0]["imageDigest"] if details else None


def resolve_image_digest(ecr: Any, repository_url: str, tag: str) -> str:
    """`<repository>@sha256:...` for a pushed tag: the reference that is promoted and deployed."""
    digest = find_image_digest(ecr, repository_url, tag)
    if digest is None:
        raise BuildError(
            f"image {repository_url}:{tag} is not in ECR; the push must succeed before the "
            "deployment artifacts are written"
        )
    return parse_repository_url(repository_url).digest_uri(digest)


@dataclass(frozen=True, kw_only=True)
class ShipTarget:
    """Where one service's image ships: its cluster/service, family and deployment group."""

    cluster: str
    service: str
    family: str
    application: str
    deployment_group: str
    container_name: str
    container_port: int | None  # None: a worker, no load balancer (engine ecs)
    validation_hook: str | None = None
    # "ecs": ECS's own blue/green deploys it (UpdateService); the group is then unused.
    engine: Literal["codedeploy", "ecs"] = "codedeploy"


def ship(
    ecs: Any,
    codedeploy: Any,
    target: ShipTarget,
    image_uri: str,
    *,
    timeout_seconds: float,
    poll_seconds: float = 15,
    sleep: Callable[[float], Any] | None = None,
    end_termination_wait: bool = False,
    sidecar_images: Mapping[str, str] | None = None,
) -> RolloutResult:
    """Deploy `image_uri` on `target.container_name` over what runs now; change nothing else.

    `sidecar_images` (container -> digest URI) are the service's built sidecars' images of the
    same record: they ship in the same deployment, every other container keeps its image.

    `runtime.rollout.rollout` without a template: every Pulumi-owned field of the running
    revision is kept (also one a `pulumi up` rollout lands while this ship waits for the
    group's lock), the AppSpec names the network and platform version the PRIMARY task set
    runs on, and a deployment of the group still running is waited for.
    Retrying is safe: an image that already runs starts no deployment.
    """
    images = {**(sidecar_images or {}), target.container_name: image_uri}
    # The promotion record's definition: a short or upper-case digest names no image.
    for uri in images.values():
        if not DIGEST_URI_PATTERN.match(uri):
            raise BuildError(
                f"image {uri!r} is not a digest reference "
                "(<repository>@sha256:<64 lower-case hex digits>); "
                "deploy digests so what runs is exactly what was built"
            )
    try:
        request = RolloutRequest(
            cluster=target.cluster,
            service=target.service,
            template_arn=None,
            family=target.family,
            application=target.application,
            deployment_group=target.deployment_group,
            container_name=target.container_name,
            container_port=target.container_port,
            images=images,
            hooks=validation_hooks(target.validation_hook),
            wait=True,
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            end_termination_wait=end_termination_wait,
            engine=target.engine,
        )
        extra = {"sleep": sleep} if sleep is not None else {}
        return rollout(ecs, codedeploy, request, **extra)
    except DeploymentError as error:
        # The core's wording is for `pulumi up`; here the next step is the pipeline's.
        message = error.for_caller(PIPELINE_NEXT_STEP)
        raise BuildError(f"{target.cluster}/{target.service}: {message}") from None
    except (ValueError, NotRunningError) as error:
        # The rollout's messages name the service, the value and the fix already.
        raise BuildError(f"{target.cluster}/{target.service}: {error}") from None


@dataclass(frozen=True)
class FollowerTask:
    """A scheduled task that follows a shipped service (`followsService`): its family, and
    the container that runs the service's image."""

    family: str
    container: str


def parse_follower(text: str) -> FollowerTask:
    """Parse `--task FAMILY=CONTAINER`."""
    family, sep, container = text.partition("=")
    if not sep or not TASK_NAME_PATTERN.match(family) or not TASK_NAME_PATTERN.match(container):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FAMILY=CONTAINER (the task's family and container names: "
            "letters, digits, '-' and '_')"
        )
    return FollowerTask(family, container)


def move_followers(
    ecs: Any,
    tasks: Sequence[FollowerTask],
    image_uri: str,
    *,
    sleep: Callable[[float], Any] | None = None,
) -> list[tuple[FollowerTask, TaskResult | None]]:
    """Put a shipped image on each follower task's newest revision, keeping its other fields.

    A family-named schedule runs the newest revision, so this is the task's deployment. A task
    without a revision yet gets None: `pulumi up` registers its first one, on the service's
    image. Retrying is safe: a revision that runs the image already registers nothing.
    """
    extra = {"sleep": sleep} if sleep is not None else {}
    moved: list[tuple[FollowerTask, TaskResult | None]] = []
    for task in tasks:
        change = TaskChange(family=task.family, images={task.container: image_uri})
        try:
            moved.append((task, deploy_task(ecs, change, **extra)))
        except TaskStateError:
            moved.append((task, None))
        except (ValueError, RolloutRaceError) as error:
            raise BuildError(
                f"task {task.family}: {error} (its service shipped; run the Deploy action "
                "again to move the task: what shipped already is not deployed twice)"
            ) from None
    return moved


@dataclass(frozen=True)
class ImageRef:
    """One `--image SERVICE/CONTAINER=REFERENCE` of the promotion-record step."""

    service: str
    container: str
    reference: str


def parse_image_ref(text: str) -> ImageRef:
    """Parse `SERVICE/CONTAINER=<repository>:<tag>` or `...=<repository>@sha256:<digest>`."""
    target, sep, reference = text.partition("=")
    service, slash, container = target.partition("/")
    if not sep or not slash or not service or not container or not reference:
        raise BuildError(
            f"--image {text!r}: expected SERVICE/CONTAINER=<repository>:<tag> "
            "or SERVICE/CONTAINER=<repository>@sha256:<digest>"
        )
    return ImageRef(service=service, container=container, reference=reference)


def split_tagged(reference: str) -> tuple[str, str]:
    """`<repository>:<tag>` -> (repository, tag); refuse a reference without a tag."""
    repository, sep, tag = reference.rpartition(":")
    if not sep or not tag or "/" in tag:
        raise BuildError(
            f"image {reference!r} has neither a tag nor a digest; expected "
            "<repository>:<tag> or <repository>@sha256:<digest>"
        )
    return repository, tag


def record_images(
    ecr_for_region: Callable[[str], Any], refs: Sequence[ImageRef]
) -> dict[str, dict[str, str]]:
    """service -> container -> digest URI; tags resolved through the ECR of their region.

    `ecr_for_region(region)` returns an ECR client: a repository URL names its region,
    which need not be the build's.
    """
    images: dict[str, dict[str, str]] = {}
    for ref in refs:
        containers = images.setdefault(ref.service, {})
        if ref.container in containers:
            raise BuildError(f"--image: {ref.service}/{ref.container} is given twice")
        if "@" in ref.reference:
            containers[ref.container] = ref.reference
            continue
        repository, tag = split_tagged(ref.reference)
        ecr = ecr_for_region(parse_repository_url(repository).region)
        containers[ref.container] = resolve_image_digest(ecr, repository, tag)
    return images


# ---------------------------------------------------------------------------------------
# Command line. Clients are made here, from arguments; the functions above take them.


def _client(service: str, region: str | None) -> Any:
    from ecs_delivery.runtime.aws import client  # boto3 only; imported late to keep --help instant

    return client(service, region=region)


def _cmd_image_tag(args: argparse.Namespace) -> int:
    print(image_tag(args.source_version, args.length))
    return EXIT_OK


def _cmd_image_exists(args: argparse.Namespace) -> int:
    # The repository URL names the ECR region; it need not be the build's.
    repository = parse_repository_url(args.repository_url)
    ecr = _client("ecr", repository.region)
    digest = find_image_digest(ecr, args.repository_url, args.tag)
    if digest is None:
        print(f"{args.repository_url}:{args.tag} is not in ECR yet")
        return EXIT_NOT_FOUND
    print(f"{args.repository_url}:{args.tag} already pushed as {digest}; reusing it")
    return EXIT_OK


def _cmd_deploy(args: argparse.Namespace) -> int:
    # The record's images of the service ship together: its own and its built sidecars'
    # (`--sidecar`; `--image-uri` names the service's own only). A sidecar the record has no
    # image for (a release from before it was built) keeps what it runs.
    sidecar_images: dict[str, str] = {}
    if args.image_uri:
        image_uri = args.image_uri
    else:
        record = read_record_file(args.record)
        image_uri = record.image(args.name, args.container)
        recorded = record.images[args.name]
        sidecar_images = {c: recorded[c] for c in args.sidecar if c in recorded}
        for container in sorted(set(args.sidecar) - set(recorded)):
            print(f"{args.name}: the record has no image of sidecar {container}; it keeps its own")
    target = ShipTarget(
        cluster=args.cluster,
        service=args.service,
        family=args.family,
        application=args.application,
        deployment_group=args.group,
        container_name=args.container,
        container_port=args.container_port,
        validation_hook=args.validation_hook,
        engine=args.engine,
    )
    print(f"{args.name}: shipping {image_uri} to {args.cluster}/{args.service}")
    for container, uri in sorted(sidecar_images.items()):
        print(f"{args.name}: and {uri} to its sidecar {container}")
    result = ship(
        _client("ecs", args.region),
        _client("codedeploy", args.region),
        target,
        image_uri,
        timeout_seconds=args.timeout_minutes * 60,
        end_termination_wait=args.end_termination_wait,
        sidecar_images=sidecar_images,
    )
    if result.deployment_id is None:
        print(f"{args.name}: already runs {image_uri} ({result.running_task_definition_arn})")
    else:
        print(
            f"{args.name}: deployment {result.deployment_id} succeeded; runs "
            f"{result.running_task_definition_arn}"
        )
    for task, moved in move_followers(_client("ecs", args.region), args.task, image_uri):
        if moved is None:
            print(f"{task.family}: no revision yet; `pulumi up` registers it on {image_uri}")
        elif moved.action == "registered":
            print(
                f"{task.family}: follows {args.name}; its next run starts {moved.task_definition_arn}"
            )
        else:
            print(f"{task.family}: already runs {image_uri} ({moved.task_definition_arn})")
    return EXIT_OK


def _record_from_args(args: argparse.Namespace, now: datetime) -> PromotionRecord:
    if args.from_record:
        if args.image:
            raise BuildError("promotion-record: give --image or --from-record, not both")
        upstream = check_claims(
            read_record_file(args.from_record),
            stack=args.expect_source_stack,
            commit=args.commit,
            origin=str(args.from_record),
        )
        # Re-published by this stack: same commit and digests, new source and time.
        return new_record(
            source_stack=args.source_stack,
            commit=upstream.commit,
            images={service: dict(containers) for service, containers in upstream.images.items()},
            created_at=now,
        )
    if not args.image:
        raise BuildError("promotion-record: give at least one --image (or --from-record)")
    if not args.commit:
        raise BuildError("promotion-record: --commit is required with --image")
    refs = [parse_image_ref(text) for text in args.image]
    clients: dict[str, Any] = {}

    def ecr_for_region(region: str) -> Any:
        if region not in clients:
            clients[region] = _client("ecr", region)
        return clients[region]

    return new_record(
        source_stack=args.source_stack,
        commit=args.commit,
        images=record_images(ecr_for_region, refs),
        created_at=now,
    )


def _cmd_promotion_record(args: argparse.Namespace) -> int:
    if bool(args.bucket) != bool(args.key):
        raise BuildError("promotion-record: --bucket and --key go together")
    if not args.out and not args.bucket:
        raise BuildError("promotion-record: give --out and/or --bucket with --key")
    record = _record_from_args(args, datetime.now(UTC))
    if args.out:
        print(f"wrote {write_record_file(record, args.out)}")
    if args.bucket:
        version = publish_record(
            _client("s3", args.region), record, bucket=args.bucket, key=args.key
        )
        print(f"published s3://{args.bucket}/{args.key} (version {version or 'unversioned'})")
    print(record.summary())
    return EXIT_OK


def publish_records(
    s3: Any, record: PromotionRecord, *, bucket: str, stack: str, zip_key: str
) -> list[str]:
    """Publish what deployed: the release's JSON record, the newest one, then the zip.

    The zip (what a downstream S3 source reads, and what starts its pipeline) goes last, so
    a downstream execution always finds the plain-JSON record of the release it promotes.
    Returns the keys written, in order.
    """
    keys = [release_record_key(stack, record.commit), latest_record_key(stack), zip_key]
    for key in keys:
        publish_record(s3, record, bucket=bucket, key=key)
    return keys


def _cmd_publish_records(args: argparse.Namespace) -> int:
    if not args.zip_key.endswith(".zip"):
        raise BuildError(f"--zip-key: {args.zip_key!r} must end in .zip (an S3 source reads it)")
    record = read_record_file(args.record)
    s3 = _client("s3", args.region)
    for key in publish_records(
        s3, record, bucket=args.bucket, stack=args.stack, zip_key=args.zip_key
    ):
        print(f"published s3://{args.bucket}/{key}")
    print(record.summary())
    return EXIT_OK


def _cmd_record_field(args: argparse.Namespace) -> int:
    record = check_claims(
        read_record_file(args.record),
        stack=args.expect_source_stack,
        commit=None,
        origin=str(args.record),
    )
    values = {
        "commit": record.commit,
        "source-stack": record.source_stack,
        "summary": record.summary(),
    }
    print(values[args.field])
    return EXIT_OK


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ecs_delivery.runtime.build",
        description="Build-time steps of the ecs-delivery pipeline (run inside CodeBuild).",
    )
    parser.add_argument("--region", help="AWS region (default: the environment's)")
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    tag = steps.add_parser("image-tag", help="print the image tag for a source revision")
    tag.add_argument("--source-version", required=True, help="CODEBUILD_RESOLVED_SOURCE_VERSION")
    tag.add_argument("--length", type=int, default=DEFAULT_TAG_LENGTH)
    tag.set_defaults(run=_cmd_image_tag)

    exists = steps.add_parser(
        "image-exists",
        help=f"exit 0 if the tag is in ECR, {EXIT_NOT_FOUND} if not (1/2 on errors)",
    )
    exists.add_argument("--repository-url", required=True)
    exists.add_argument("--tag", required=True)
    exists.set_defaults(run=_cmd_image_exists)

    deploy = steps.add_parser(
        "deploy",
        help="ship one service's image over what it runs now (images only, blue/green)",
    )
    deploy.add_argument("--name", required=True, help="service name in the stack config")
    deploy.add_argument("--cluster", required=True, help="ECS cluster name or ARN")
    deploy.add_argument("--service", required=True, help="ECS service name")
    deploy.add_argument("--container", required=True, help="container whose image ships")
    deploy.add_argument(
        "--container-port",
        type=_port,
        help="the port the load balancer routes to; omitted: a worker (with --engine ecs)",
    )
    deploy.add_argument(
        "--family",
        required=True,
        help="task-definition family to register into (the service's own)",
    )
    deploy.add_argument("--application", required=True, help="CodeDeploy application")
    deploy.add_argument("--group", required=True, help="CodeDeploy deployment group")
    deploy.add_argument("--validation-hook", help=f"Lambda for {VALIDATION_HOOK_EVENT}")
    deploy.add_argument(
        "--timeout-minutes",
        # The stack's deployment timeouts are at most a day (pipeline and rollout config).
        type=inputs.option("--timeout-minutes", at_most=24 * 60, whole=True),
        default=60,
        help="how long to wait for a running deployment of the group and for this one",
    )
    deploy.add_argument(
        "--end-termination-wait",
        action="store_true",
        help="end a deployment of the group still in its termination wait instead of waiting "
        "for it (deployment.onTerminationWait: end)",
    )
    deploy.add_argument(
        "--engine",
        choices=["codedeploy", "ecs"],
        default="codedeploy",
        help="who deploys: the CodeDeploy group, or ECS's own blue/green (deployment.engine)",
    )
    deploy.add_argument(
        "--task",
        action="append",
        default=[],
        type=parse_follower,
        metavar="FAMILY=CONTAINER",
        help="a scheduled task that follows the service: its next runs start the shipped image "
        "(repeatable)",
    )
    deploy.add_argument(
        "--sidecar",
        action="append",
        default=[],
        metavar="CONTAINER",
        help="a sidecar the repository builds: its image in the --record ships in the same "
        "deployment (repeatable)",
    )
    image = deploy.add_mutually_exclusive_group(required=True)
    image.add_argument("--record", type=Path, help="promotion record to take the image from")
    image.add_argument("--image-uri", help="<repository>@sha256:<digest> to deploy")
    deploy.set_defaults(run=_cmd_deploy)

    record = steps.add_parser("promotion-record", help="write/publish the promotion record")
    record.add_argument("--source-stack", required=True, help="the stack that ran the images")
    record.add_argument(
        "--commit", help="source commit (with --from-record: the record must be of it)"
    )
    record.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="SERVICE/CONTAINER=REF",
        help="REF is <repository>:<tag> (resolved to a digest) or <repository>@sha256:...",
    )
    record.add_argument("--from-record", type=Path, help="re-publish an upstream record")
    record.add_argument(
        "--expect-source-stack", help="with --from-record: refuse a record of another stack"
    )
    record.add_argument("--out", type=Path, help="local file (.json, or .zip for S3 sources)")
    record.add_argument("--bucket", help="S3 bucket to publish to")
    record.add_argument("--key", help="S3 key (.zip for a CodePipeline S3 source)")
    record.set_defaults(run=_cmd_promotion_record)

    publish = steps.add_parser(
        "publish-records", help="publish a deployed record: release JSON, latest JSON, zip"
    )
    publish.add_argument("--record", required=True, type=Path, help="the record that deployed")
    publish.add_argument("--stack", required=True, help="this stack (names the record keys)")
    publish.add_argument("--bucket", required=True, help="this stack's artifact bucket")
    publish.add_argument("--zip-key", required=True, help="key the downstream S3 source reads")
    publish.set_defaults(run=_cmd_publish_records)

    field = steps.add_parser("record-field", help="print one field of a promotion record")
    field.add_argument("--record", required=True, type=Path)
    field.add_argument("--field", required=True, choices=["commit", "source-stack", "summary"])
    field.add_argument("--expect-source-stack", help="refuse a record of another stack")
    field.set_defaults(run=_cmd_record_field)
    return parser


def _aws_message(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "Error")
    message = error.response.get("Error", {}).get("Message", "")
    text = f"AWS {error.operation_name} failed: {code}: {message}"
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
        action = _IAM_ACTIONS.get(error.operation_name, error.operation_name)
        text += f" (the CodeBuild role needs {action} on this resource)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step; user and AWS errors become one line on stderr and a non-zero exit."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (BuildError, PromotionRecordError) as error:
        message = str(error)
    except ClientError as error:
        message = _aws_message(error)
    except BotoCoreError as error:
        message = f"AWS call failed: {error}"
    except OSError as error:
        message = f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

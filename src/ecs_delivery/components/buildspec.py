"""Generate the CodeBuild buildspecs: values baked in by Python, shell quoted, no envsubst.

Four buildspecs, one per CodeBuild action of the pipeline (src/ecs_delivery/components/pipeline.py):

- `buildspec()`, the first environment's Build: log in to ECR, build each service's image,
  push it under the commit tag (immutable; a retried build reuses the pushed image), write the
  promotion record (the digests just built). Nothing about what runs is read here.
- `promotion_buildspec()`, a downstream environment's Validate: nothing is built; the upstream
  record (the source) is validated, summarised for the approval and re-issued as this stack's.
- `deploy_buildspec()`, the Deploy action (after any approval): each service in turn, the
  record's image shipped over what runs at that moment (`ecs_delivery.runtime.build deploy`,
  through `runtime.rollout`: only the image changes, the group's lock is re-checked).
- `publish_buildspec()`, after the deploy: the record's JSON copies and zip (`publish-records`).

The one artifact (the output of Build or Validate, the input of Deploy and Publish):

    promotion/                the artifact named "promotion"
      promotion.json            the digests this execution deploys
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ecs_delivery.runtime.build import ECR_URL_PATTERN, EXIT_NOT_FOUND, FollowerTask
from ecs_delivery.runtime.promotion import RECORD_FILE

# Where the build writes artifacts, relative to CODEBUILD_SRC_DIR; unlikely to clash with
# an application's own build/ or dist/ directories.
ARTIFACT_ROOT = "ecs-delivery-artifacts"
PROMOTION_ARTIFACT = "promotion"
# CodePipeline artifact names: letters, digits, '_' and '-', at most 100 characters.
ARTIFACT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
CONTAINER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,254}$")
FAMILY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
# Where the tooling zip (the `ecs_delivery.runtime` package) is unpacked in the build.
TOOLING_DIR = "/opt/ecs-delivery-tooling"
# Runtime of `python -m ecs_delivery.runtime.build` in the build image; kept equal to requirements.txt
# by a test, so the build runs what the tests ran.
BUILD_REQUIREMENTS = (
    "boto3==1.44.5",
    "botocore==1.44.5",
    "pydantic==2.14.3",
    "PyYAML==6.0.3",
)
TAG_VAR = "IMAGE_TAG"
COMMIT_VAR = "CODEBUILD_RESOLVED_SOURCE_VERSION"
# Exported by the promotion buildspec, for a manual approval's message:
# "#{<namespace>.PROMOTED_SUMMARY}" names the commit and digests being approved.
PROMOTED_COMMIT_VAR = "PROMOTED_COMMIT"
PROMOTED_SUMMARY_VAR = "PROMOTED_SUMMARY"


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{field}: {message}")


@dataclass(frozen=True, kw_only=True)
class DeployService:
    """A service the pipeline deploys: where it runs and which container takes traffic.

    `name` is the service's key in the stack config; it names the CodePipeline artifact.
    `family` is the service's own task-definition family: every revision the pipeline
    deploys registers there, whatever family the running revision came from.
    `deployment_group` is the service's CodeDeploy group; the Deploy buildspec needs it.
    `validation_hook` (a Lambda name) overrides the buildspec-wide one for this service.
    `tasks` are the scheduled tasks that follow it: each ship moves them onto its image.
    """

    name: str
    container_name: str
    # None: a worker without a load balancer (engine ecs).
    container_port: int | None
    cluster: str
    service: str
    family: str
    deployment_group: str | None = None
    validation_hook: str | None = None
    # "ecs": the deploy step deploys through ECS's own blue/green (deployment.engine ecs).
    engine: str = "codedeploy"
    tasks: tuple[FollowerTask, ...] = ()
    # The sidecars whose images the pipeline ships with the service's (`sidecars.<n>.build`).
    sidecar_containers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        field = f"services.{self.name}"
        for sidecar in self.sidecar_containers:
            _require(
                bool(CONTAINER_NAME_PATTERN.match(sidecar)) and sidecar != self.container_name,
                f"{field}.sidecar_containers",
                f"{sidecar!r} is not an ECS container name beside {self.container_name!r}",
            )
        _require(
            bool(ARTIFACT_NAME_PATTERN.match(self.name)),
            f"{field}.name",
            f"{self.name!r} cannot name a CodePipeline artifact; use 1-100 letters, "
            "digits, '_' or '-'",
        )
        _require(
            self.name != PROMOTION_ARTIFACT,
            f"{field}.name",
            f"{self.name!r} is reserved for the promotion record artifact; rename the service",
        )
        _require(
            bool(CONTAINER_NAME_PATTERN.match(self.container_name)),
            f"{field}.container_name",
            f"{self.container_name!r} is not an ECS container name",
        )
        _require(
            (self.container_port is None and self.engine == "ecs")
            or (isinstance(self.container_port, int) and 1 <= self.container_port <= 65535),
            f"{field}.container_port",
            f"{self.container_port!r} is not a port (1-65535); only a worker (engine ecs) has none",
        )
        _require(bool(self.cluster), f"{field}.cluster", "is required")
        _require(bool(self.service), f"{field}.service", "is required")
        _require(
            bool(FAMILY_PATTERN.match(self.family)),
            f"{field}.family",
            f"{self.family!r} is not a task-definition family (1-255 letters, digits, '-', '_')",
        )
        for task in self.tasks:
            _require(
                bool(FAMILY_PATTERN.match(task.family))
                and bool(CONTAINER_NAME_PATTERN.match(task.container)),
                f"{field}.tasks",
                f"{task!r} names no task-definition family and container",
            )
        _require(
            self.validation_hook is None or bool(self.validation_hook.strip()),
            f"{field}.validation_hook",
            "must be a Lambda function name, or None",
        )


@dataclass(frozen=True, kw_only=True)
class BuiltImage:
    """One image the first environment builds: the container it runs in, its ECR repository
    and where its Dockerfile is (`dockerfile` relative to `context`, relative to the source
    root). `field` is the config key its problems are reported under."""

    container_name: str
    repository_url: str
    context: str = "."
    dockerfile: str = "Dockerfile"
    field: str = "services"

    def __post_init__(self) -> None:
        _require(
            bool(CONTAINER_NAME_PATTERN.match(self.container_name)),
            f"{self.field}.container_name",
            f"{self.container_name!r} is not an ECS container name",
        )
        _require(
            bool(ECR_URL_PATTERN.match(self.repository_url)),
            f"{self.field}.repository_url",
            f"{self.repository_url!r} is not an ECR repository URL "
            "(<account-id>.dkr.ecr.<region>.amazonaws.com/<name>, without a tag)",
        )
        for attribute in ("context", "dockerfile"):
            value = getattr(self, attribute)
            _require(
                bool(value) and not value.startswith("/") and ".." not in value.split("/"),
                f"{self.field}.{attribute}",
                f"{value!r} must be a relative path inside the source (no '..')",
            )

    @property
    def dockerfile_path(self) -> str:
        return posixpath.normpath(posixpath.join(self.context, self.dockerfile))

    @property
    def registry(self) -> str:
        return self.repository_url.split("/", 1)[0]

    @property
    def registry_region(self) -> str:
        match = ECR_URL_PATTERN.match(self.repository_url)
        assert match is not None  # checked in __post_init__
        return match["region"]


@dataclass(frozen=True, kw_only=True)
class BuildService(DeployService):
    """A service whose image the first environment builds from `context`/`dockerfile`, with
    the sidecars the repository builds too (`built_sidecars`, each its own image and
    repository).

    `dockerfile` is relative to `context`, which is relative to the source root.
    """

    repository_url: str
    context: str = "."
    dockerfile: str = "Dockerfile"
    built_sidecars: tuple[BuiltImage, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        built = [image.container_name for image in self.built_sidecars]
        _require(
            sorted(built) == sorted(self.sidecar_containers),
            f"services.{self.name}.built_sidecars",
            f"{sorted(built)}: build exactly the sidecars the deploy ships "
            f"({sorted(self.sidecar_containers)}), each once",
        )
        self.images()  # each image checks itself

    def images(self) -> list[BuiltImage]:
        """The service's own image first, then its built sidecars'."""
        own = BuiltImage(
            container_name=self.container_name,
            repository_url=self.repository_url,
            context=self.context,
            dockerfile=self.dockerfile,
            field=f"services.{self.name}",
        )
        return [own, *self.built_sidecars]


def _check_services(services: Sequence[DeployService], kind: type) -> None:
    _require(bool(services), "services", "at least one service is required")
    for service in services:
        _require(
            isinstance(service, kind),
            f"services.{getattr(service, 'name', '?')}",
            f"expected a {kind.__name__}, got {type(service).__name__}",
        )
    names = [service.name for service in services]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    _require(not duplicates, "services", f"names must be unique; repeated: {duplicates}")


def _q(value: str) -> str:
    return shlex.quote(value)


def _tool(region: str, *args: str) -> str:
    """A `python -m ecs_delivery.runtime.build` command with every baked argument quoted."""
    return " ".join(["python -m ecs_delivery.runtime.build --region", _q(region), *args])


def _tagged(repository_url: str) -> str:
    """`<repository>:$IMAGE_TAG`, the baked part quoted, the variable expanded by the shell."""
    return _q(f"{repository_url}:") + f'"${TAG_VAR}"'


def _unless_pushed(image: BuiltImage, region: str, command: str) -> str:
    """Run `command` only when the tag is not in ECR yet (exit 3); fail on other errors.

    Tags are immutable, so a retried build of the same commit reuses the pushed image
    instead of failing on the push.
    """
    check = _tool(
        region, "image-exists", "--repository-url", _q(image.repository_url), "--tag",
        f'"${TAG_VAR}"',
    )  # fmt: skip
    return f'if {check}; then :; else rc=$?; [ "$rc" -eq {EXIT_NOT_FOUND} ] && {command}; fi'


def _hook(service: DeployService, default: str | None) -> str | None:
    return service.validation_hook or default


def _install_phase(tooling_s3_uri: str | None, python_version: str | None) -> dict[str, Any]:
    phase: dict[str, Any] = {}
    if python_version:
        phase["runtime-versions"] = {"python": python_version}
    if tooling_s3_uri:
        _require(
            tooling_s3_uri.startswith("s3://") and tooling_s3_uri.endswith(".zip"),
            "tooling_s3_uri",
            f"{tooling_s3_uri!r} must be s3://<bucket>/<key>.zip",
        )
        archive = "/tmp/ecs-delivery-tooling.zip"
        phase["commands"] = [
            f"aws s3 cp --only-show-errors {_q(tooling_s3_uri)} {archive}",
            f"python -m zipfile -e {archive} {TOOLING_DIR}",
            "python -m pip install --quiet --disable-pip-version-check "
            + " ".join(_q(requirement) for requirement in BUILD_REQUIREMENTS),
        ]
    return phase


def _phases(install: dict[str, Any], **commands: list[str]) -> dict[str, Any]:
    """Phases in order; any failing command aborts the build (no push after a failure)."""
    phases: dict[str, Any] = {"install": install} if install else {}
    for name, phase_commands in commands.items():
        phases[name] = {"on-failure": "ABORT", "commands": phase_commands}
    return phases


def _env(tooling_s3_uri: str | None, exported: list[str] | None = None) -> dict[str, Any]:
    variables = {"DOCKER_BUILDKIT": "1"}
    if tooling_s3_uri:
        variables["PYTHONPATH"] = TOOLING_DIR
    env: dict[str, Any] = {"shell": "bash", "variables": variables}
    if exported:
        env["exported-variables"] = exported
    return env


def _promotion_artifact() -> dict[str, Any]:
    """The action's one output artifact is CodeBuild's primary one: the record at its root."""
    return {"base-directory": f"{ARTIFACT_ROOT}/{PROMOTION_ARTIFACT}", "files": [RECORD_FILE]}


def _record_out() -> str:
    return _q(f"{ARTIFACT_ROOT}/{PROMOTION_ARTIFACT}/{RECORD_FILE}")


def _check_record_file(record_file: str) -> None:
    _require(
        bool(record_file) and not record_file.startswith("/"),
        "record_file",
        f"{record_file!r} must be a path relative to the source artifact",
    )


def buildspec(
    services: Sequence[BuildService],
    *,
    region: str,
    stack: str,
    tooling_s3_uri: str | None = None,
    python_version: str | None = "3.11",
    tag_length: int = 12,
) -> dict[str, Any]:
    """The first environment's Build: images pushed, their digests in the record.

    `stack` is recorded as the promotion record's sourceStack. The record is published only
    by the Publish action, after the deploy, so it names only images that deployed.
    `tooling_s3_uri` (s3://.../x.zip) holds the `ecs_delivery.runtime` package; without
    it the build image must already provide `ecs_delivery` and BUILD_REQUIREMENTS.
    """
    _check_services(services, BuildService)
    _require(bool(region), "region", "is required")
    _require(bool(stack), "stack", "is required (the stack name recorded as sourceStack)")
    _require(7 <= tag_length <= 40, "tag_length", f"{tag_length} must be between 7 and 40")

    built = [(service, image) for service in services for image in service.images()]
    registries = sorted({(image.registry, image.registry_region) for _, image in built})
    pre_build = [
        f"aws ecr get-login-password --region {_q(registry_region)}"
        f" | docker login --username AWS --password-stdin {_q(registry)}"
        for registry, registry_region in registries
    ]
    pre_build += [
        f'{TAG_VAR}="$('
        + _tool(
            region, "image-tag", "--source-version", f'"${COMMIT_VAR}"', "--length", str(tag_length)
        )
        + ')"',
        f'echo "image tag: ${TAG_VAR}"',
    ]

    build = []
    for _, image in built:
        docker_build = " ".join(
            [
                "docker build",
                "--tag", _tagged(image.repository_url),
                "--file", _q(image.dockerfile_path),
                "--label", f'"org.opencontainers.image.revision=${COMMIT_VAR}"',
                _q(image.context),
            ]
        )  # fmt: skip
        build.append(_unless_pushed(image, region, docker_build))

    # post_build runs even after a failed build phase; stop before pushing anything then.
    post_build = ['[ "${CODEBUILD_BUILD_SUCCEEDING:-1}" = 1 ] || { echo "build failed"; false; }']
    for _, image in built:
        push = f"docker push {_tagged(image.repository_url)}"
        post_build.append(_unless_pushed(image, region, push))
    images = [
        "--image "
        + _q(f"{service.name}/{image.container_name}={image.repository_url}:")
        + f'"${TAG_VAR}"'
        for service, image in built
    ]
    post_build.append(
        _tool(
            region,
            "promotion-record",
            "--source-stack",
            _q(stack),
            "--commit",
            f'"${COMMIT_VAR}"',
            *images,
            "--out",
            _record_out(),
        )  # fmt: skip
    )

    return {
        "version": 0.2,
        "env": _env(tooling_s3_uri),
        "phases": _phases(
            _install_phase(tooling_s3_uri, python_version),
            pre_build=pre_build,
            build=build,
            post_build=post_build,
        ),
        "artifacts": _promotion_artifact(),
    }


def _deploy_command(
    service: DeployService,
    *,
    region: str,
    application: str,
    record_file: str,
    validation_hook: str | None,
    timeout_minutes: int,
    end_termination_wait: bool = False,
) -> str:
    args = [
        "deploy",
        "--name", _q(service.name),
        "--cluster", _q(service.cluster),
        "--service", _q(service.service),
        "--family", _q(service.family),
        "--container", _q(service.container_name),
        *(["--container-port", str(service.container_port)] if service.container_port else []),
        "--application", _q(application),
        "--group", _q(service.deployment_group or ""),
        "--timeout-minutes", str(timeout_minutes),
        "--record", _q(record_file),
    ]  # fmt: skip
    hook = _hook(service, validation_hook)
    if hook:
        args += ["--validation-hook", _q(hook)]
    if end_termination_wait:
        args.append("--end-termination-wait")
    if service.engine == "ecs":
        args += ["--engine", "ecs"]
    for task in service.tasks:
        args += ["--task", _q(f"{task.family}={task.container}")]
    for sidecar in service.sidecar_containers:
        args += ["--sidecar", _q(sidecar)]
    return _tool(region, *args)


def promotion_buildspec(
    *,
    region: str,
    stack: str,
    upstream_stack: str | None = None,
    record_file: str = RECORD_FILE,
    tooling_s3_uri: str | None = None,
    python_version: str | None = "3.11",
) -> dict[str, Any]:
    """A downstream environment's Validate: nothing is built, nothing about what runs is read.
    A record whose sourceStack is not `upstream_stack` (when given) fails the step.

    The primary source is the upstream record (`record_file` in it). The record is
    validated first, its commit and summary exported as PROMOTED_COMMIT/PROMOTED_SUMMARY
    (for the approval's message), and re-issued as this stack's record.
    """
    _require(bool(region), "region", "is required")
    _require(bool(stack), "stack", "is required (the stack name recorded as sourceStack)")
    _check_record_file(record_file)
    record = _q(record_file)
    expect = ("--expect-source-stack", _q(upstream_stack)) if upstream_stack else ()
    # `export X="$(...)"` would hide a failing command; assign first, then export.
    pre_build = [
        f'{variable}="$('
        + _tool(region, "record-field", "--record", record, "--field", field, *expect)
        + f')" && export {variable}'
        for variable, field in (
            (PROMOTED_COMMIT_VAR, "commit"),
            (PROMOTED_SUMMARY_VAR, "summary"),
        )
    ]
    pre_build.append(f'echo "promoting ${PROMOTED_SUMMARY_VAR}"')
    build = [
        _tool(
            region,
            "promotion-record",
            "--source-stack",
            _q(stack),
            "--from-record",
            record,
            *expect,
            "--out",
            _record_out(),
        )  # fmt: skip
    ]
    return {
        "version": 0.2,
        "env": _env(tooling_s3_uri, exported=[PROMOTED_COMMIT_VAR, PROMOTED_SUMMARY_VAR]),
        "phases": _phases(
            _install_phase(tooling_s3_uri, python_version), pre_build=pre_build, build=build
        ),
        "artifacts": _promotion_artifact(),
    }


def deploy_buildspec(
    services: Sequence[DeployService],
    *,
    region: str,
    application: str,
    record_file: str = RECORD_FILE,
    validation_hook: str | None = None,
    timeout_minutes: int = 60,
    tooling_s3_uri: str | None = None,
    python_version: str | None = "3.11",
    end_termination_wait: bool = False,
) -> dict[str, Any]:
    """The Deploy action: each service's record image shipped over what runs, in turn.

    The primary source is this execution's record (the "promotion" artifact). Each command
    is one `runtime.rollout` ship: it reads what runs when it starts, keeps every field but
    the image, and re-checks what runs once it holds the group's lock, so a Pulumi change
    that rolled out at any moment before the deployment took traffic is kept. A service's
    ship waits for a deployment of its group that is still running, then for its own, each
    at most `timeout_minutes`.
    """
    _check_services(services, DeployService)
    _require(bool(region), "region", "is required")
    _require(bool(application), "application", "is required (the CodeDeploy application)")
    for service in services:
        _require(
            bool(service.deployment_group),
            f"services.{service.name}.deployment_group",
            "is required to deploy (the service's CodeDeploy deployment group)",
        )
    _require(
        isinstance(timeout_minutes, int) and timeout_minutes >= 1,
        "timeout_minutes",
        f"{timeout_minutes!r} must be a whole number of minutes, at least 1",
    )
    _check_record_file(record_file)
    build = [
        _deploy_command(
            service,
            region=region,
            application=application,
            record_file=record_file,
            validation_hook=validation_hook,
            timeout_minutes=timeout_minutes,
            end_termination_wait=end_termination_wait,
        )
        for service in services
    ]
    return {
        "version": 0.2,
        "env": _env(tooling_s3_uri),
        "phases": _phases(_install_phase(tooling_s3_uri, python_version), build=build),
    }


def publish_buildspec(
    *,
    region: str,
    stack: str,
    bucket: str,
    zip_key: str,
    record_file: str = RECORD_FILE,
    tooling_s3_uri: str | None = None,
    python_version: str | None = "3.11",
) -> dict[str, Any]:
    """The Publish action, after the deploy: the record's release and latest JSON, then the zip."""
    _require(bool(region), "region", "is required")
    _require(bool(stack), "stack", "is required (names the record keys)")
    _require(bool(bucket) and "/" not in bucket, "bucket", f"{bucket!r} is not an S3 bucket name")
    _require(zip_key.endswith(".zip"), "zip_key", f"{zip_key!r} must end in .zip")
    _check_record_file(record_file)
    build = [
        _tool(
            region,
            "publish-records",
            "--record",
            _q(record_file),
            "--stack",
            _q(stack),
            "--bucket",
            _q(bucket),
            "--zip-key",
            _q(zip_key),
        )  # fmt: skip
    ]
    return {
        "version": 0.2,
        "env": _env(tooling_s3_uri),
        "phases": _phases(_install_phase(tooling_s3_uri, python_version), build=build),
    }


def render(spec: dict[str, Any]) -> str:
    """The buildspec as YAML text, for the CodeBuild project's `source.buildspec`."""
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, width=4096)

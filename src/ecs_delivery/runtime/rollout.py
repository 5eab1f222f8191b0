"""Roll Pulumi-owned fields out to an ECS service at deploy time, against what runs then.

The Pulumi program registers a *template* revision (every Pulumi-owned field). When a
rollout runs it reads the revision the service runs at that moment, overlays the template's
fields onto it (keeping each container's image, unless an image is pinned or newly
promoted), and deploys the result blue/green only when it differs from what runs. After
the engine accepted the deployment (one deployment per group, or per ECS service: the
rollout now holds the lock) it reads what runs again: if a pipeline ship landed in between,
it stops its own deployment before traffic moves and merges again onto the new revision.
The engine (runtime/engines.py: CodeDeploy, or ECS's own blue/green) only starts, watches
and stops deployments; the merge loop is this module's, for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from ecs_delivery.runtime import clock as runtime_clock
from ecs_delivery.runtime import codedeploy as cd
from ecs_delivery.runtime.aws import call_with_backoff
from ecs_delivery.runtime.ecs_engine import EcsEngine
from ecs_delivery.runtime.engines import CodeDeployEngine, Engine
from ecs_delivery.runtime.live import Running, running, strategy
from ecs_delivery.runtime.taskdef import describe, overlay_owned, same_content_in_any_family
from ecs_delivery.runtime.taskdef import register as register_revision

RolloutAction = Literal[
    "none-service-new", "none-same-content", "deployed", "started", "superseded"
]
# A ship that lands between the read and the lock is normal; three in a row is not.
DEFAULT_MERGE_ATTEMPTS = 3


class ServiceStateError(cd.DeploymentError):
    """The ECS service cannot take a rollout (missing, inactive, wrong controller)."""


class RolloutRaceError(cd.DeploymentError):
    """What runs kept changing under the rollout: it gave up rather than deploy stale content."""


@dataclass(frozen=True, kw_only=True)
class RolloutRequest:
    """Which template to roll out to which service, through which deployment group.

    `images` maps container -> image to deploy over what runs (pinned, or a newly promoted
    release); every other container keeps the image it runs. `own_deployment` is a deployment
    an earlier rollout of this service started without waiting: while it runs, a rollout
    with wait=False does not start another.
    """

    cluster: str
    service: str
    # None: deploy `images` onto what runs and change nothing else (the pipeline's ship).
    template_arn: str | None
    # Where the new revision registers; None: the family of the revision that runs.
    family: str | None
    # CodeDeploy's application and group (engine "codedeploy"); unused on engine "ecs".
    application: str = ""
    deployment_group: str = ""
    container_name: str
    # The port the load balancer routes to; None: a worker without one (engine "ecs" only:
    # ECS's rolling controller; every CodeDeploy AppSpec names a port).
    container_port: int | None
    network: cd.Network | None = None
    platform_version: str | None = None
    # The capacity provider strategy ((provider, weight, base)); None: keep what runs.
    capacity_providers: tuple[tuple[str, int, int], ...] | None = None
    images: Mapping[str, str] = field(default_factory=dict)
    # Lifecycle hooks of the AppSpec (event -> Lambda), e.g. the validation hook.
    hooks: Mapping[str, str] = field(default_factory=dict)
    own_deployment: str | None = None
    wait: bool = True
    timeout_seconds: float = 3600
    poll_seconds: float = 15
    merge_attempts: int = DEFAULT_MERGE_ATTEMPTS
    # The deployer's name for the deployment in CodeDeploy (a release finds its own by it);
    # the target revision's ARN follows it.
    description_prefix: str | None = None
    # Deploy only while what runs still carries these images (a rollback restores only
    # where the release's image still runs); otherwise deploy nothing: "superseded".
    expect_images: Mapping[str, str] = field(default_factory=dict)
    # A revision to deploy instead of registering a new one when it carries exactly the
    # merged content (a rollback over nothing newer returns to the revision that ran).
    reuse_revision: str | None = None
    # Take the template's fields only while exactly this revision runs, as read and checked
    # again under the group's lock; otherwise only `images` move. (A rollback puts the
    # revision the release replaced back whole only over the release's own revision: a
    # Pulumi change that landed since is kept.)
    template_while_running: str | None = None
    # A deployment of the group found in its termination wait: False waits for the wait to
    # end; True ends it at once (`deployment.onTerminationWait: end`), giving up its rollback.
    end_termination_wait: bool = False
    # Who deploys: "codedeploy" (the group; AppSpec hooks) or "ecs" (UpdateService on a
    # service with the ECS controller; its hooks are the service's own).
    engine: Literal["codedeploy", "ecs"] = "codedeploy"

    def __post_init__(self) -> None:
        if self.family is not None and not (isinstance(self.family, str) and self.family):
            raise ValueError("family: must be a non-empty string, or None for the running one")
        if self.engine not in ("codedeploy", "ecs"):
            raise ValueError(f"engine: {self.engine!r} is not an engine; use codedeploy or ecs")
        needed = ("application", "deployment_group") if self.engine == "codedeploy" else ()
        for name in ("cluster", "service", *needed, "container_name"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name}: must be a non-empty string")
        if self.template_arn is None and not self.images:
            raise ValueError("images: required when there is no template (nothing to deploy)")
        if self.container_port is None and self.engine != "ecs":
            raise ValueError(
                "container_port: None (a worker, no load balancer) deploys only with engine "
                "ecs; CodeDeploy's AppSpec routes to a port: give it"
            )
        # appspec() holds the ARN and port rules; building one here reports them early (a
        # worker's revision is checked as if routed: only the ARN and hook rules apply).
        cd.appspec(
            self.template_arn or "arn:aws:ecs:::task-definition/check:1",
            self.container_name,
            1 if self.container_port is None else self.container_port,
            hooks=self.hooks,
        )
        for container, image in self.images.items():
            if not isinstance(image, str) or not image.strip():
                raise ValueError(f"images.{container}: {image!r} is not an image reference")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds: {self.timeout_seconds} must be positive")
        if self.poll_seconds <= 0:
            raise ValueError(f"poll_seconds: {self.poll_seconds} must be positive")
        if self.merge_attempts < 1:
            raise ValueError(f"merge_attempts: {self.merge_attempts} must be at least 1")


@dataclass(frozen=True)
class RolloutResult:
    """What rollout() did.

    action: "none-service-new" (the service runs the template itself: it was just created
    from it), "none-same-content" (what runs already carries every Pulumi-owned field and
    image asked for), "deployed" (a deployment ran and succeeded), "started" (a deployment
    was started, or is still running from an earlier rollout, and not waited for) or
    "superseded" (what runs no longer carries `expect_images`: nothing was deployed).
    running_task_definition_arn is the revision serving traffic when rollout() returned;
    images what its containers run.
    """

    action: RolloutAction
    running_task_definition_arn: str
    deployment_id: str | None
    images: dict[str, str] = field(default_factory=dict)


def describe_service(
    ecs: Any,
    cluster: str,
    service: str,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    controller: str = "CODE_DEPLOY",
) -> dict[str, Any]:
    """DescribeServices for one ACTIVE service with `controller` (the engine's), or a
    ServiceStateError saying why not."""
    try:
        response = call_with_backoff(
            ecs.describe_services, cluster=cluster, services=[service], sleep=sleep
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
            raise ServiceStateError(
                f"ECS cluster {cluster!r} not found; check cluster_name and the AWS region/account"
            ) from error
        raise
    services = response.get("services", [])
    if not services:
        reason = next((f.get("reason") for f in response.get("failures", [])), "MISSING")
        raise ServiceStateError(
            f"ECS service {service!r} not found in cluster {cluster!r} ({reason}); the rollout "
            "runs after the service exists: check service_name, cluster_name and the region"
        )
    found = services[0]
    if found.get("status") != "ACTIVE":
        raise ServiceStateError(
            f"ECS service {service!r} in cluster {cluster!r} is {found.get('status')}, not "
            "ACTIVE; it cannot take a deployment (recreate it, then run `pulumi up` again)"
        )
    found_controller = (found.get("deploymentController") or {}).get("type", "ECS")
    if found_controller != controller:
        how = (
            "blue/green rollouts through CodeDeploy need deploymentController CODE_DEPLOY"
            if controller == "CODE_DEPLOY"
            else "deployment.engine ecs (and a worker: ECS's rolling update) deploys through "
            "ECS's own controller, which needs deploymentController ECS (README: ECS-native "
            "blue/green, Workers)"
        )
        raise ServiceStateError(
            f"ECS service {service!r} uses the {found_controller} deployment controller; {how}"
        )
    return found


def what_runs(
    ecs: Any,
    cluster: str,
    service: str,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    controller: str = "CODE_DEPLOY",
) -> Running:
    """The revision, network and platform serving the service's traffic right now."""
    return running(describe_service(ecs, cluster, service, sleep, controller))


def _check_target(task_definition: Mapping[str, Any], name: str, port: int | None) -> None:
    """Fail before CodeDeploy does when the AppSpec's container or port is not in the revision
    (port None: a worker, whose container needs none)."""
    containers = {c["name"]: c for c in task_definition.get("containerDefinitions", [])}
    if name not in containers:
        raise ValueError(
            f"container_name: {name!r} is not in {task_definition.get('taskDefinitionArn')}; "
            f"known containers: {', '.join(sorted(containers)) or '(none)'}"
        )
    if port is None:
        return
    ports = [m.get("containerPort") for m in containers[name].get("portMappings", [])]
    if port not in ports:
        raise ValueError(
            f"container_port: {port} is not a port mapping of container {name!r}; "
            f"its ports: {', '.join(str(p) for p in ports) or '(none)'}"
        )


def _network_differs(live: Running, wanted: cd.Network | None) -> bool:
    if wanted is None:
        return False
    return (
        tuple(sorted(wanted.subnets)) != live.subnets
        or tuple(sorted(wanted.security_groups)) != live.security_groups
        or wanted.assign_public_ip != live.assign_public_ip
    )


def _platform_differs(live: Running, wanted: str | None) -> bool:
    # "LATEST" is whatever Fargate resolves it to: only an explicit version can differ.
    return bool(wanted) and wanted != "LATEST" and wanted != live.platform_version


def _strategy_differs(live: Running, wanted: tuple[tuple[str, int, int], ...] | None) -> bool:
    return wanted is not None and strategy(wanted) != live.capacity_providers


def _images(task_definition: Mapping[str, Any]) -> dict[str, str]:
    return {c["name"]: c["image"] for c in task_definition.get("containerDefinitions", [])}


def _images_still(current: Mapping[str, Any], expected: Mapping[str, str]) -> bool:
    images = _images(current)
    return all(images.get(name) == image for name, image in expected.items())


def engine_for(request: RolloutRequest, ecs: Any, codedeploy: Any) -> Engine:
    """The engine `request.engine` names, on the caller's clients."""
    return engine_named(request.engine, ecs, codedeploy)


def engine_named(name: str, ecs: Any, codedeploy: Any) -> Engine:
    """The engine of `deployment.engine` `name` (codedeploy or ecs), on the caller's clients."""
    return EcsEngine(ecs) if name == "ecs" else CodeDeployEngine(codedeploy)


def rollout(
    ecs: Any,
    codedeploy: Any,
    request: RolloutRequest,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    clock: Callable[[], float] = runtime_clock.now,
    *,
    register: Callable[[Mapping[str, Any]], str] | None = None,
    before_deploy: Callable[[str, str], None] | None = None,
    engine: Engine | None = None,
) -> RolloutResult:
    """Deploy the template's fields (and any pinned/promoted image) onto what runs, if needed.

    The one deployment core: the `pulumi up` rollout, the pipeline's ship and the release
    engine (deploy and rollback) all deploy through it. Without a template it deploys only
    `request.images` onto what runs (a ship, a release, a rollback), so Pulumi's fields are
    never reverted by a deployer either. Never deploys an image older than the one running,
    except one named in request.images; never starts an empty blue/green cycle.

    `register` registers a revision (default: RegisterTaskDefinition with backoff; the
    release engine paces it). `before_deploy(base, target)` runs once the revision to
    deploy is known, before CreateDeployment, on every merge: a caller records there what
    it is about to deploy over what, and raises to deploy nothing. `engine` defaults to the
    one `request.engine` names (`engine_for`).
    """
    template: dict[str, Any] | None = None
    register = register or (lambda registration: register_revision(ecs, registration, sleep))
    engine = engine or engine_for(request, ecs, codedeploy)

    def read() -> Running:
        return what_runs(ecs, request.cluster, request.service, sleep, engine.controller)

    for _attempt in range(request.merge_attempts):
        live = read()
        if template is None and request.template_arn:  # after the service is known to exist
            template = describe(ecs, request.template_arn, include_tags=True, sleep=sleep)
        busy = engine.busy(request, sleep)
        if busy:
            if request.own_deployment in busy and not request.wait:
                return RolloutResult("started", live.task_definition_arn, request.own_deployment)
            engine.wait_for_others(request, busy, sleep, clock)
            continue  # what runs may have changed: read it again
        base = template
        if request.template_while_running not in (None, live.task_definition_arn):
            base = None
        described = describe(ecs, live.task_definition_arn, include_tags=base is None, sleep=sleep)
        current = described["taskDefinition"]
        if not _images_still(current, request.expect_images):
            return RolloutResult("superseded", live.task_definition_arn, None, _images(current))
        # Pulumi's fields from the template, else every field of what runs: only images move.
        owner = (base or described)["taskDefinition"]
        tags = (base or described).get("tags") or None
        family = request.family or str(current["family"])
        wanted = overlay_owned(owner, current, family=family, images=request.images)
        content_same = same_content_in_any_family(wanted, current)
        if (
            content_same
            and not _network_differs(live, request.network)
            and not _platform_differs(live, request.platform_version)
            and not _strategy_differs(live, request.capacity_providers)
        ):
            action: RolloutAction = (
                "none-service-new"
                if request.template_arn and live.task_definition_arn == request.template_arn
                else "none-same-content"
            )
            return RolloutResult(action, live.task_definition_arn, None, _images(current))

        _check_target(wanted, request.container_name, request.container_port)
        if content_same:  # only the network, platform or strategy: deploy what runs as it is
            target = live.task_definition_arn
        elif request.reuse_revision and same_content_in_any_family(
            wanted, describe(ecs, request.reuse_revision, sleep=sleep)["taskDefinition"]
        ):
            target = request.reuse_revision
        else:
            target = register({**wanted, **({"tags": tags} if tags else {})})
        if before_deploy is not None:
            before_deploy(live.task_definition_arn, target)
        description = (
            f"{request.description_prefix} {target}"
            if request.description_prefix
            else f"ecs-delivery: Pulumi-owned change to {request.cluster}/"
            f"{request.service}: {live.task_definition_arn} -> {target}"
        )
        try:
            deployment_id = engine.start(request, target, live, description, sleep, clock)
        except cd.DeploymentInProgressError:
            if not request.wait:
                raise
            continue  # another deployer took the lock first: wait for it, then merge again
        # We hold the lock now. A ship that finished before we took it changed what runs:
        # our merge is stale, so stop it before traffic moves and merge again. (What runs
        # may also be our own target already: a fast deployment, a slow read.)
        now = engine.running_under_lock(
            request, deployment_id, live.task_definition_arn, read, sleep
        )
        if now not in (live.task_definition_arn, target):
            try:
                engine.stop_and_wait(request, deployment_id, sleep, clock)
            except cd.StopTooLateError as error:
                error.deployment_id, error.replaced, error.deployed = deployment_id, now, target
                raise
            continue
        if not request.wait:
            return RolloutResult("started", live.task_definition_arn, deployment_id)
        engine.wait(request, deployment_id, sleep, clock)
        return RolloutResult("deployed", target, deployment_id, _images(wanted))
    raise RolloutRaceError(
        f"ECS service {request.cluster}/{request.service}: what it runs changed "
        f"{request.merge_attempts} times while the rollout merged Pulumi's fields onto it "
        "(other deployments kept landing). Nothing stale was deployed; run `pulumi up` again "
        "once the pipeline is quiet."
    )

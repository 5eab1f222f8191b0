"""What every release step shares: the runner's identity and events, paced registration,
one deployment through the deployment core, and finding the release's own deployments."""

from __future__ import annotations

import datetime
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from ecs_delivery.runtime import task_rollout
from ecs_delivery.runtime.aws import chunks, is_throttling
from ecs_delivery.runtime.codedeploy import IN_PROGRESS_STATUSES, validation_hooks
from ecs_delivery.runtime.release.engine_types import EngineConfig, Event, _Aborted
from ecs_delivery.runtime.release.inventory import ServiceTarget
from ecs_delivery.runtime.release.live import Aws, TaskDefinitions, running_task_definitions
from ecs_delivery.runtime.release.pacing import TokenBucket
from ecs_delivery.runtime.release.state import StateStore
from ecs_delivery.runtime.rollout import RolloutRequest, RolloutResult, rollout
from ecs_delivery.runtime.taskdef import register_request

BATCH_GET_DEPLOYMENTS = 25  # CodeDeploy BatchGetDeployments takes at most 25 ids
RELEASE_TAG = "ecs-delivery:release"
# Paced attempts per registration; the pacer halves its rate on each throttle, so these
# span minutes of waiting, not a burst of retries.
REGISTER_ATTEMPTS = 20
# Deployments of one service stopped because something else shipped first, before giving up.
MERGE_ATTEMPTS = 3


class EngineCore:
    """One runner of one release: its AWS access, its state store and its pacer."""

    def __init__(
        self,
        aws: Aws,
        store: StateStore,
        config: EngineConfig | None = None,
        on_event: Callable[[Event], None] | None = None,
        definitions: TaskDefinitions | None = None,
        owner: str | None = None,
    ) -> None:
        self.aws = aws
        # Who this runner is, for the release's lease (one runner deploys a release).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.store = store
        self.config = config or EngineConfig()
        self._on_event = on_event
        self.definitions = definitions or TaskDefinitions(aws)
        self.pacer = TokenBucket(self.config.register_rate, self.config.register_burst, aws.clock)
        self._abort = threading.Event()

    # ------------------------------------------------------------------ helpers

    @property
    def release_id(self) -> str:
        return self.store.release_id

    def _emit(self, kind: str, name: str, status: str, detail: str = "") -> None:
        if self._on_event is not None:
            self._on_event(Event(kind, name, status, detail))

    def _now(self) -> float:
        return self.aws.clock.time()

    def _marker(self, action: str, name: str) -> str:
        return f"ecs-delivery {action} {self.release_id}: {name} ->"

    def _register(
        self, previous_td: str, container: str, image: str, family: str | None = None
    ) -> str | None:
        """A new revision of `previous_td` with `image`; None if the run is being aborted.

        Every other field is kept. `family`, when given, is where it registers.
        """
        response = self.definitions.describe(previous_td)
        # Not the family protocol's read tag: this revision was built on `previous_td`, not
        # on what that registration read (runtime/task_rollout.py).
        tags = [t for t in response.get("tags") or [] if t.get("key") != task_rollout.READ_TAG]
        request = register_request(response["taskDefinition"], {container: image}, tags=tags)
        if family is not None:
            request["family"] = family
        return self._paced_register(request)

    def _paced_register(self, request: dict[str, Any]) -> str | None:
        """RegisterTaskDefinition at the API's rate, tagged with the release; None if the run
        is being aborted."""
        tags = [t for t in request.get("tags") or [] if t.get("key") != RELEASE_TAG]
        request = {**request, "tags": [*tags, {"key": RELEASE_TAG, "value": self.release_id}]}
        for _ in range(REGISTER_ATTEMPTS):
            if not self.pacer.acquire(cancelled=self._abort):
                return None
            try:
                created = self.aws.clients.ecs.register_task_definition(**request)
            except ClientError as error:
                if not is_throttling(error):
                    raise
                self.pacer.throttled()  # paced, yet throttled: slow the pacer down
                continue
            self.pacer.succeeded()
            return str(created["taskDefinition"]["taskDefinitionArn"])
        raise RuntimeError(
            f"RegisterTaskDefinition stayed throttled for {REGISTER_ATTEMPTS} paced attempts"
        )

    def _deploy(
        self,
        name: str,
        action: str,
        images: dict[str, str],
        before_deploy: Callable[[str, str], None] | None = None,
        expect_images: dict[str, str] | None = None,
        reuse_revision: str | None = None,
        template_arn: str | None = None,
        template_while_running: str | None = None,
    ) -> RolloutResult:
        """One deployment of the service through the deployment core (runtime/rollout.py):
        `images` overlaid onto what runs now, complete AppSpec, checked again under the
        group's lock. Raises _Aborted when the run is being aborted before it registered."""
        target = self.store.state.services[name].target

        def register(request: Any) -> str:
            arn = self._paced_register(dict(request))
            if arn is None:
                raise _Aborted()
            return arn

        request = RolloutRequest(
            cluster=target.cluster,
            service=target.service,
            template_arn=template_arn,
            family=target.task_family,
            application=target.codedeploy_application,
            deployment_group=target.codedeploy_group,
            container_name=target.container,
            container_port=target.container_port,
            images=images,
            hooks=validation_hooks(target.validation_hook),
            wait=False,
            timeout_seconds=self.config.deployment_timeout_seconds,
            poll_seconds=self.config.poll_seconds,
            merge_attempts=MERGE_ATTEMPTS,
            description_prefix=self._marker(action, name),
            expect_images=expect_images or {},
            reuse_revision=reuse_revision,
            template_while_running=template_while_running,
            # The same rule for the release's deploys and its rollback's redeploys: a
            # rollback is a deployment like any other, so with `end` it too ends a ship's
            # termination wait (that ship can then no longer be stopped back).
            end_termination_wait=self.config.end_termination_wait,
        )
        return rollout(
            self.aws.clients.ecs,
            self.aws.clients.codedeploy,
            request,
            sleep=self.aws.clock.sleep,
            clock=self.aws.clock.time,
            register=register,
            before_deploy=before_deploy,
        )

    def _get_deployments(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """deploymentId -> deploymentInfo, 25 per call."""
        infos: dict[str, dict[str, Any]] = {}
        for chunk in chunks(sorted(set(ids)), BATCH_GET_DEPLOYMENTS):
            response = self.aws.call(
                self.aws.clients.codedeploy.batch_get_deployments, deploymentIds=chunk
            )
            for info in response.get("deploymentsInfo", []):
                infos[info["deploymentId"]] = info
        return infos

    def _group_deployments(
        self, target: ServiceTarget, statuses: tuple[str, ...], since: float | None
    ) -> dict[str, dict[str, Any]]:
        """deploymentId -> deploymentInfo of the group's deployments in `statuses` (all when
        empty) created since `since` (minus 5 minutes of clock skew), every page."""
        kwargs: dict[str, Any] = {
            "applicationName": target.codedeploy_application,
            "deploymentGroupName": target.codedeploy_group,
        }
        if statuses:
            kwargs["includeOnlyStatuses"] = list(statuses)
        if since is not None:
            start = datetime.datetime.fromtimestamp(since - 300, tz=datetime.UTC)
            kwargs["createTimeRange"] = {"start": start}
        ids: list[str] = []
        while True:
            page = self.aws.call(self.aws.clients.codedeploy.list_deployments, **kwargs)
            ids.extend(page.get("deployments", []))
            if not page.get("nextToken"):
                return self._get_deployments(ids)
            kwargs["nextToken"] = page["nextToken"]

    def _find_deployment(
        self,
        target: ServiceTarget,
        marker: str,
        since: float | None,
        in_progress_only: bool,
        exclude: tuple[str, ...] = (),
    ) -> str | None:
        """The id of a deployment this release created in the group (found by description:
        `marker` itself, or `marker` followed by a space), ignoring `exclude` statuses."""
        statuses = IN_PROGRESS_STATUSES if in_progress_only else ()
        for info in self._group_deployments(target, statuses, since).values():
            description = str(info.get("description", ""))
            if info.get("status") in exclude:
                continue
            if description == marker or description.startswith(marker + " "):
                return str(info["deploymentId"])
        return None

    def _running(self, name: str) -> str:
        target = self.store.state.services[name].target
        return running_task_definitions(self.aws, {name: target})[name]

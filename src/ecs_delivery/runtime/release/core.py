"""What every release step shares: the runner's identity and events, paced registration,
one deployment through the deployment core, and watching and finding the release's own
deployments through the service's engine (runtime/engines.py: CodeDeploy or ECS)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from ecs_delivery.runtime import task_rollout
from ecs_delivery.runtime.aws import is_throttling
from ecs_delivery.runtime.codedeploy import validation_hooks
from ecs_delivery.runtime.engines import Engine, Listed, Seen
from ecs_delivery.runtime.release.engine_types import EngineConfig, Event, _Aborted
from ecs_delivery.runtime.release.live import Aws, TaskDefinitions, running_task_definitions
from ecs_delivery.runtime.release.pacing import TokenBucket
from ecs_delivery.runtime.release.state import StateStore
from ecs_delivery.runtime.rollout import RolloutRequest, RolloutResult, engine_named, rollout
from ecs_delivery.runtime.taskdef import register_request

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

    def _request(
        self, name: str, action: str, images: dict[str, str], **kwargs: Any
    ) -> RolloutRequest:
        """A deployment of the service by the deployment core (runtime/rollout.py), on the
        service's engine: `images` overlaid onto what runs when it deploys."""
        target = self.store.state.services[name].target
        return RolloutRequest(
            cluster=target.cluster,
            service=target.service,
            template_arn=kwargs.pop("template_arn", None),
            family=target.task_family,
            engine=target.engine,
            application=target.codedeploy_application or "",
            deployment_group=target.codedeploy_group or "",
            container_name=target.container,
            container_port=target.container_port,
            images=images,
            # On the ECS engine the validation hook is the service's own lifecycle hook.
            hooks=validation_hooks(target.validation_hook) if target.engine == "codedeploy" else {},
            wait=False,
            timeout_seconds=self.config.deployment_timeout_seconds,
            poll_seconds=self.config.poll_seconds,
            merge_attempts=MERGE_ATTEMPTS,
            description_prefix=self._marker(action, name),
            # The same rule for the release's deploys and its rollback's redeploys: a
            # rollback is a deployment like any other, so with `end` it too ends a ship's
            # termination wait (that ship can then no longer be stopped back).
            end_termination_wait=self.config.end_termination_wait,
            **kwargs,
        )

    def _engine(self, name: str) -> Engine:
        """The engine that deploys the service (its inventory's `engine`)."""
        target = self.store.state.services[name].target
        return engine_named(target.engine, self.aws.clients.ecs, self.aws.clients.codedeploy)

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
        """One deployment of the service through the deployment core: `images` overlaid onto
        what runs now, checked again under the engine's lock. Raises _Aborted when the run is
        being aborted before it registered."""

        def register(request: Any) -> str:
            arn = self._paced_register(dict(request))
            if arn is None:
                raise _Aborted()
            return arn

        request = self._request(
            name,
            action,
            images,
            template_arn=template_arn,
            expect_images=expect_images or {},
            reuse_revision=reuse_revision,
            template_while_running=template_while_running,
        )
        return rollout(
            self.aws.clients.ecs,
            self.aws.clients.codedeploy,
            request,
            sleep=self.aws.clock.sleep,
            clock=self.aws.clock.time,
            register=register,
            before_deploy=before_deploy,
            engine=self._engine(name),
        )

    def _seen(self, names_ids: Iterable[tuple[str, str]]) -> dict[str, Seen]:
        """deployment id -> how it stands, for (service, deployment id) pairs: one batch per
        engine (CodeDeploy BatchGetDeployments 25 ids a call, ECS 20)."""
        by_engine: dict[str, tuple[Engine, set[str]]] = {}
        for name, deployment_id in names_ids:
            kind = self.store.state.services[name].target.engine
            by_engine.setdefault(kind, (self._engine(name), set()))[1].add(deployment_id)
        seen: dict[str, Seen] = {}
        for engine, ids in by_engine.values():
            seen.update(engine.describe(ids, self.aws.clock.sleep))
        return seen

    def _history(self, name: str, listed: Listed, since: float | None) -> list[Seen]:
        """The service's deployments created since `since`, every page."""
        svc = self.store.state.services[name]
        request = self._request(name, "release", svc.images)
        return self._engine(name).history(request, since, listed, self.aws.clock.sleep)

    def _is_ours(self, name: str, seen: Seen, action: str, revision: str | None) -> bool:
        """A deployment this release made for `action` (release, rollback). CodeDeploy keeps
        the description the core gave it (the marker, then the revision); ECS keeps none, so
        it is ours when it deploys `revision`, the one this release recorded before starting
        it (a rollback: one deploying the image it restores, `_restores`)."""
        if seen.description:
            marker = self._marker(action, name)
            if revision is not None and action == "release":
                marker = f"{marker} {revision}"
            return seen.description == marker or seen.description.startswith(marker + " ")
        svc = self.store.state.services[name]
        if not seen.target:
            return False
        if action == "rollback":
            return self._restores(name, seen.target)
        return seen.target == (revision or svc.new_td)

    def _restores(self, name: str, revision: str) -> bool:
        """`revision` takes back the release: no container the release changed runs the
        release's image there, and one runs its image from before (a rollback that kept a
        sidecar someone shipped since restores the other containers only)."""
        svc = self.store.state.services[name]
        if revision == svc.previous_td:
            return True
        runs = self._images_of(revision, svc.changed)
        return all(runs[c] != new for c, (_, new) in svc.changed.items()) and any(
            runs[c] == before for c, (before, _) in svc.changed.items()
        )

    def _images_of(self, revision: str, containers: Iterable[str]) -> dict[str, str]:
        """container -> image `revision` runs, for `containers` (LiveStateError names one
        it lacks)."""
        return {c: self.definitions.image(revision, c) for c in containers}

    def _find_deployment(
        self,
        name: str,
        action: str,
        since: float | None,
        in_progress_only: bool,
        revision: str | None = None,
        exclude: tuple[str, ...] = (),
    ) -> str | None:
        """The id of a deployment this release created for the service (`_is_ours`),
        ignoring deployments in an `exclude` phase."""
        listed: Listed = "in_progress" if in_progress_only else "all"
        for seen in self._history(name, listed, since):
            if seen.phase not in exclude and self._is_ours(name, seen, action, revision):
                return seen.id
        return None

    def _running(self, name: str) -> str:
        target = self.store.state.services[name].target
        return running_task_definitions(self.aws, {name: target})[name]

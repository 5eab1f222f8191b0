"""The scheduled tasks' updates: a new revision per task, its trigger pointed at it."""

from __future__ import annotations

from ecs_delivery.runtime.release.core import EngineCore
from ecs_delivery.runtime.release.engine_types import ReleaseStopped, TaskUpdateFailed, _reason
from ecs_delivery.runtime.release.live import Trigger, read_trigger, write_trigger
from ecs_delivery.runtime.release.state import ReleaseState
from ecs_delivery.runtime.task_rollout import TaskChange, deploy_task


class TaskSteps(EngineCore):
    """Points each scheduled task of the release at the release's image."""

    def update_tasks(self) -> None:
        """Give every scheduled task of the release its image, schedule and command.

        Raises TaskUpdateFailed (after recording it) when one cannot be updated.
        """
        for name in sorted(self.store.state.tasks):
            state = self.store.state
            if state.status != "running":
                raise ReleaseStopped(f"release {self.release_id} is {state.status}")
            task = state.tasks[name]
            if task.status == "updated":
                continue
            try:
                base = read_trigger(self.aws, task.target)
                if base.family is not None:
                    new_td = self._register_onto_newest(name, base)
                    if (base.schedule, base.command) != (task.schedule, task.command):
                        wanted = Trigger(new_td, task.schedule, task.command, family=base.family)
                        write_trigger(self.aws, task.target, wanted)
                else:
                    new_td = self._point(name, base if task.new_td is None else None)
            except ReleaseStopped:
                raise
            except Exception as error:
                reason = _reason(error)

                def failed(st: ReleaseState, reason: str = reason, name: str = name) -> None:
                    st.tasks[name].status, st.tasks[name].error = "failed", reason

                self.store.update(failed)
                self._emit("task", name, "failed", reason)
                raise TaskUpdateFailed(name, reason) from error

            def done(st: ReleaseState, name: str = name) -> None:
                st.tasks[name].status = "updated"

            self.store.update(done)
            self._emit("task", name, "updated", new_td)

    def _point(self, name: str, base: Trigger | None) -> str:
        """A trigger that names a revision: register the release's image onto what it names
        now, record it, point the trigger at it."""
        task = self.store.state.tasks[name]
        new_td = task.new_td
        if new_td is None:
            # What the schedule targets now, not when the release was planned: a change
            # Pulumi registered in between is kept (only the image moves).
            base = base or read_trigger(self.aws, task.target)
            container = task.target.container
            if self.definitions.image(base.task_definition, container) == task.image:
                new_td = base.task_definition
            else:
                new_td = self._register(base.task_definition, container, task.image)
                if new_td is None:
                    raise ReleaseStopped("aborted")

        def claim(st: ReleaseState, new_td: str = new_td) -> None:
            t = st.tasks[name]
            if t.status in ("pending", "failed"):
                t.status, t.new_td = "updating", new_td
                if base is not None:  # what a rollback returns to
                    t.previous_td = base.task_definition
                    t.previous_image = self.definitions.image(
                        base.task_definition, t.target.container
                    )

        self.store.update(claim)
        write_trigger(
            self.aws,
            task.target,
            Trigger(task_definition=new_td, schedule=task.schedule, command=task.command),
        )
        return new_td

    def _register_onto_newest(self, name: str, base: Trigger) -> str:
        """A trigger that names its family runs the newest revision: claim the task, then
        register the release's image onto the newest revision (keeping what Pulumi or a ship
        registered there since the plan). The claim comes first because the registration
        itself is what runs next; a rollback finds the task claimed either way."""
        container = self.store.state.tasks[name].target.container

        def claim(st: ReleaseState) -> None:
            t = st.tasks[name]
            if t.status in ("pending", "failed"):
                t.status = "updating"
                t.previous_td = base.task_definition
                t.previous_image = self.definitions.image(base.task_definition, container)

        self.store.update(claim)
        task = self.store.state.tasks[name]
        result = deploy_task(
            self.aws.clients.ecs,
            TaskChange(family=str(base.family_name), images={container: task.image}),
            register=self._paced_register,
            sleep=self.aws.clock.sleep,
        )
        if result.action == "superseded":  # the pacer said stop: the run is being aborted
            raise ReleaseStopped("aborted")

        def record(st: ReleaseState) -> None:
            st.tasks[name].new_td = result.task_definition_arn

        self.store.update(record)
        return result.task_definition_arn

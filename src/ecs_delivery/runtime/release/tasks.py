"""The scheduled tasks' updates: a new revision per task, its trigger pointed at it."""

from __future__ import annotations

from ecs_delivery.runtime.release.core import EngineCore
from ecs_delivery.runtime.release.engine_types import ReleaseStopped, TaskUpdateFailed, _reason
from ecs_delivery.runtime.release.live import Trigger, read_trigger, write_trigger
from ecs_delivery.runtime.release.state import ReleaseState


class TaskSteps(EngineCore):
    """Points each scheduled task of the release at the release's image."""

    def update_tasks(self) -> None:
        """Point every scheduled task of the release at its new revision, schedule, command.

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
                new_td = task.new_td
                base: Trigger | None = None
                if new_td is None:
                    # What the schedule targets now, not when the release was planned: a
                    # change Pulumi registered in between is kept (only the image moves).
                    base = read_trigger(self.aws, task.target)
                    container = task.target.container
                    if self.definitions.image(base.task_definition, container) == task.image:
                        new_td = base.task_definition
                    else:
                        new_td = self._register(base.task_definition, container, task.image)
                        if new_td is None:
                            raise ReleaseStopped("aborted")

                def claim(
                    st: ReleaseState, new_td: str = new_td, name: str = name, base=base
                ) -> None:
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

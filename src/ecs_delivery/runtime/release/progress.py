"""Progress of a release on a terminal (one line per item, redrawn) or as log lines."""

from __future__ import annotations

import shutil
import threading
import time
from typing import TextIO

from ecs_delivery.runtime.release.engine import Event
from ecs_delivery.runtime.release.state import ReleaseState, ServiceState

_REDRAW_SECONDS = 0.2


class LogProgress:
    """One plain line per transition (CI logs, pipes)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def start(self, state: ReleaseState) -> None:
        with self._lock:
            self._out.write(
                f"release {state.release_id}: {len(state.services)} services, "
                f"{len(state.tasks)} scheduled tasks ({state.status})\n"
            )
            self._out.flush()

    def __call__(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S")
        detail = f" {event.detail}" if event.detail else ""
        with self._lock:
            self._out.write(f"{stamp} {event.kind} {event.name}: {event.status}{detail}\n")
            self._out.flush()

    def finish(self) -> None:
        pass


class TtyProgress:
    """One line per service and task, updated in place (at most 5 redraws a second)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._status: dict[str, str] = {}
        self._detail: dict[str, str] = {}
        self._headline = ""
        self._drawn = 0
        self._last = 0.0

    def start(self, state: ReleaseState) -> None:
        with self._lock:
            self._headline = f"release {state.release_id}: {state.status}"
            for name, svc in sorted(state.services.items()):
                self._status[f"service {name}"] = (
                    svc.rollback and f"rollback:{svc.rollback}" or svc.status
                )
            for name, task in sorted(state.tasks.items()):
                self._status[f"task {name}"] = task.rollback or task.status
            self._draw(force=True)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.kind == "release":
                self._headline = f"release {event.name}: {event.status}"
            else:
                key = f"{event.kind} {event.name}"
                self._status[key] = event.status
                self._detail[key] = event.detail[:60]
            self._draw()

    def finish(self) -> None:
        with self._lock:
            self._draw(force=True)

    def _lines(self) -> list[str]:
        rows = shutil.get_terminal_size((100, 40)).lines
        counts: dict[str, int] = {}
        for status in self._status.values():
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        lines = [f"{self._headline}  [{summary}]"]
        items = sorted(self._status.items())
        room = max(1, rows - 3)
        if len(items) > room:
            # Too many to show: active ones first, the rest counted.
            quiet = ("pending", "deployed", "rollback:rolled_back", "rollback:not_needed")
            items = [i for i in items if i[1] not in quiet] + [i for i in items if i[1] in quiet]
            hidden = len(items) - room + 1
            items = items[: room - 1]
            lines += [self._line(k, v) for k, v in items] + [f"  ... and {hidden} more"]
        else:
            lines += [self._line(k, v) for k, v in items]
        return lines

    def _line(self, key: str, status: str) -> str:
        detail = self._detail.get(key, "")
        return f"  {key:<32} {status:<24} {detail}".rstrip()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _REDRAW_SECONDS:
            return
        self._last = now
        lines = self._lines()
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self._out.write(up + "\x1b[J" + "\n".join(lines) + "\n")
        self._out.flush()
        self._drawn = len(lines)


def summary_table(state: ReleaseState) -> list[str]:
    """The final table: one row per service and task, with its outcome."""
    rows = [("KIND", "NAME", "STATUS", "ROLLBACK", "IMAGE BEFORE -> AFTER", "DEPLOYMENT")]
    for name, svc in sorted(state.services.items()):
        rows.append(
            (
                "service",
                name,
                service_outcome(svc),
                _words(svc.rollback),
                _service_images(svc),
                svc.deployment_id or "-",
            )
        )
    for name, task in sorted(state.tasks.items()):
        rows.append(
            (
                "task",
                name,
                "not started" if task.status == "pending" and task.rollback else task.status,
                _words(task.rollback),
                f"{_short(task.previous_image)} -> {_short(task.image)}",
                "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def service_outcome(svc: ServiceState) -> str:
    """What happened to a service's forward deployment, in words.

    The persisted status is the forward step the engine last recorded; once a rollback
    has begun, a "deploying" service is one whose deployment the rollback stopped.
    """
    if svc.rollback is None:
        return svc.status
    if svc.status in ("starting", "deploying"):
        return "stopping" if svc.rollback == "stopping" else "stopped"
    if svc.status == "pending":
        return "not started"
    return svc.status  # deployed (the rollback redeploys it) or failed


def _service_images(svc: ServiceState) -> str:
    """The main container's `before -> after`, then each moved sidecar's."""
    main = svc.target.container
    moved = [
        f"{_short(before)} -> {_short(after)}"
        for container, (before, after) in sorted(svc.changed.items())
        if container != main
    ]
    return "; ".join([f"{_short(svc.previous_image)} -> {_short(svc.image)}", *moved])


def _words(status: str | None) -> str:
    return status.replace("_", " ") if status else "-"


def _short(image: str) -> str:
    """The image without its registry host (the table is for humans)."""
    return image.split("/", 1)[1] if "/" in image and "." in image.split("/", 1)[0] else image

"""Progress output: in place on a terminal, plain lines otherwise, and the summary table."""

from __future__ import annotations

import io

from ecs_delivery.runtime.release.engine import Event
from ecs_delivery.runtime.release.progress import LogProgress, TtyProgress, summary_table
from ecs_delivery.runtime.release.state import ReleaseState, ServiceState

from .conftest import small_inventory


def state() -> ReleaseState:
    target = small_inventory().services["web"]
    return ReleaseState(
        release_id="prod-r1",
        environment="prod",
        manifest_digest="x",
        created_at=1.0,
        updated_at=1.0,
        services={
            name: ServiceState(
                target=target,
                previous_td=f"arn:aws:ecs:eu-west-1:1:task-definition/{name}:1",
                previous_image=f"1.dkr.ecr.eu-west-1.amazonaws.com/{name}:1.0.0",
                image=f"1.dkr.ecr.eu-west-1.amazonaws.com/{name}:2.0.0",
            )
            for name in ("api", "web")
        },
    )


def test_terminal_progress_redraws_one_line_per_service_in_place() -> None:
    out = io.StringIO()
    progress = TtyProgress(out)

    progress.start(state())
    progress(Event("service", "web", "deploying", "d-1"))
    progress.finish()

    # Two frames (the event came within the redraw interval, so finish drew it); the
    # second moves the cursor back over the 3 lines of the first and clears them.
    frames = out.getvalue().split("\x1b[J")
    assert len(frames) == 3 and frames[0] == ""
    assert frames[1].endswith("\x1b[3F")
    last = frames[-1].splitlines()
    assert last[0].startswith("release prod-r1: running")
    assert last[1].split() == ["service", "api", "pending"]
    assert last[2].split() == ["service", "web", "deploying", "d-1"]


def test_log_progress_writes_one_plain_line_per_transition() -> None:
    out = io.StringIO()
    progress = LogProgress(out)

    progress.start(state())
    progress(Event("service", "web", "deployed"))

    lines = out.getvalue().splitlines()
    assert lines[0] == "release prod-r1: 2 services, 0 scheduled tasks (running)"
    assert lines[1].endswith(" service web: deployed")
    assert "\x1b" not in out.getvalue()


def test_summary_table_has_a_row_per_service_with_images_without_registry() -> None:
    rows = summary_table(state())

    assert rows[0].split() == [
        "KIND",
        "NAME",
        "STATUS",
        "ROLLBACK",
        "IMAGE",
        "BEFORE",
        "->",
        "AFTER",
        "DEPLOYMENT",
    ]
    assert rows[1].split() == [
        "service",
        "api",
        "pending",
        "-",
        "api:1.0.0",
        "->",
        "api:2.0.0",
        "-",
    ]

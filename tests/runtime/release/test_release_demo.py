"""`make release-demo`: plan, apply with one failing service, and status, in one command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("engine", ["codedeploy", "ecs"])
def test_release_demo_rolls_back_naming_the_failed_service_and_prints_end_states(
    engine: str,
) -> None:
    # x100 instead of the demo's x20: the same simulated run in about 4 s (svc-003 fails 90
    # simulated s, 0.9 s real, before svc-004/005 would finish, so they are stopped), on
    # either engine (ecs: `make release-demo` with `--engine ecs`).
    result = subprocess.run(
        [sys.executable, "-m", "tools.release_demo", "--scale", "100", "--engine", engine],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    out = result.stdout
    commands = [
        line.split()[3] for line in out.splitlines() if line.startswith("$ ecs-delivery release ")
    ]
    assert commands == ["plan", "apply", "status"]
    assert re.findall(r"^\(exit (\d)\)$", out, re.MULTILINE) == ["0", "1", "0"]
    # Live progress lines, then the table (printed by apply and again by status).
    assert re.search(
        r"^\d\d:\d\d:\d\d service svc-003: failed (service )?deployment ", out, re.MULTILINE
    )
    rows = [re.split(r"\s{2,}", line.strip())[:4] for line in out.splitlines()]
    table = [row for row in rows if row[0] in ("service", "task") and len(row) == 4]
    assert table[:7] == [
        ["service", "svc-000", "deployed", "rolled back"],
        ["service", "svc-001", "deployed", "superseded"],  # the pipeline shipped 2.1.0
        ["service", "svc-002", "deployed", "rolled back"],
        ["service", "svc-003", "failed", "rolled back"],
        ["service", "svc-004", "stopped", "rolled back"],
        ["service", "svc-005", "stopped", "rolled back"],
        ["task", "job-00", "not started", "not needed"],
    ]
    assert table[7:] == table[:7]
    assert "release dev-demo-1 failed: svc-003: " in result.stderr
    # The rollback left the newer ship running, and says so.
    assert re.search(
        r"^kept newer: service svc-001: runs \S+/svc-001:2\.1\.0 ", result.stderr, re.M
    )
    assert "Traceback" not in out + result.stderr


def test_the_simulator_stays_out_of_what_ships_to_aws() -> None:
    package = ROOT / "src" / "ecs_delivery"
    shipped = [*package.glob("lambdas/**/*.py"), *package.glob("runtime/**/*.py")]
    shipped += [*package.glob("components/**/*.py")]
    assert shipped
    imports = re.compile(
        r"^\s*(from|import) \S*simulator|^\s*from \S+ import .*\bsimulator\b", re.M
    )
    assert [str(p) for p in shipped if imports.search(p.read_text())] == []

"""The plan's speed-ups stay inside the plan: no stack captured per resource, GC left alone."""

from __future__ import annotations

import contextlib
import gc
import traceback

from pulumi import _types as pulumi_types
from pulumi.runtime import resource as pulumi_resource

from ecs_delivery.offline import plan as plan_tool


def test_a_plan_captures_no_python_stack_per_resource(monkeypatch):
    calls = []
    real = traceback.extract_stack
    monkeypatch.setattr(
        traceback, "extract_stack", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    originals = (
        pulumi_resource._get_stack_trace,
        pulumi_types.unwrap_type,
        pulumi_types.resource_types,
    )
    plan = plan_tool.run("dev")
    assert len(plan.resources) > 100
    assert calls == []
    # Restored for whatever runs next in this process.
    assert (
        pulumi_resource._get_stack_trace,
        pulumi_types.unwrap_type,
        pulumi_types.resource_types,
    ) == originals


def test_the_shortcuts_change_nothing_in_the_plan(monkeypatch):
    fast = plan_tool.run("prod").to_json()
    monkeypatch.setattr(plan_tool, "_fast_sdk", contextlib.nullcontext)
    assert plan_tool.run("prod").to_json() == fast


def test_the_library_entry_point_leaves_the_garbage_collector_on(capsys):
    assert plan_tool.main(["--stack", "dev"]) == 0
    assert "outputs:" in capsys.readouterr().out
    assert gc.isenabled()


def test_the_benchmark_reports_start_up_and_per_resource_cost():
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-m", "tools.bench_plan", "--sizes", "1"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("start-up (import ecs_delivery.offline.plan, median of 3): ")
    assert lines[2].split() == [
        "services",
        "resources",
        "wall",
        "s",
        "peak",
        "MiB",
        "ms/res",
        "KiB/res",
    ]
    services, resources, *_ = lines[3].split()
    assert services == "1" and int(resources) > 100

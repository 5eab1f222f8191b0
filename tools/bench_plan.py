"""Plan benchmark: the offline plan CLI's wall time and peak memory for 1, 10, 50 and 200 services.

    make bench        (or: python -m tools.bench_plan [--sizes 1,10,50,200])

Each size is a synthetic dev-like stack planned by `python -m ecs_delivery.offline.plan` in a fresh process
(the command a reviewer runs, start-up included), so peak memory (max RSS) is its own. The
import-only start-up (`import ecs_delivery.offline.plan`) is timed the same way.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def synthetic_config(services: int) -> dict:
    """A dev-like stack config with `services` services, each on its own path."""
    from ecs_delivery.offline.plan import stack_config

    config = stack_config("dev")
    config["ecs-delivery:services"] = {
        f"svc{i:03d}": {
            "containerPort": 8080,
            "cpu": 256,
            "memory": 512,
            "desiredCount": 1,
            "routing": {"pathPatterns": [f"/svc{i:03d}/*"]},
            "environment": {"LOG_LEVEL": "info"},
        }
        for i in range(services)
    }
    config["ecs-delivery:scheduledTasks"] = {}
    return config


def _measure(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (KiB) and the first output line of one process."""
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=output)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(command)}")
        output.seek(0)
        return wall, usage.ru_maxrss, output.readline()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50,200")
    args = parser.parse_args(argv)
    print(
        f"offline plan benchmark on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, python {platform.python_version()}"
    )
    startup = statistics.median(
        _measure([sys.executable, "-c", "import ecs_delivery.offline.plan"])[0] for _ in range(3)
    )
    print(f"start-up (import ecs_delivery.offline.plan, median of 3): {startup:.2f} s")
    print(
        f"{'services':>8} {'resources':>9} {'wall s':>8} {'peak MiB':>9} {'ms/res':>7} {'KiB/res':>8}"
    )
    last = None
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy(ROOT / name, project / name)
        for size in (int(s) for s in args.sizes.split(",")):
            (project / "Pulumi.bench.yaml").write_text(
                yaml.safe_dump({"config": synthetic_config(size)})
            )
            wall, peak_kib, first = _measure(
                [
                    sys.executable,
                    "-m",
                    "ecs_delivery.offline.plan",
                    "--stack",
                    "bench",
                    "--root",
                    tmp,
                ]
            )
            resources = int(first.split(": ")[1].split()[0])  # "stack <name>: N resources"
            per_ms, per_kib = 1000 * wall / resources, peak_kib / resources
            print(
                f"{size:>8} {resources:>9} {wall:>8.2f} {peak_kib / 1024:>9.1f} "
                f"{per_ms:>7.2f} {per_kib:>8.1f}"
            )
            last = (size, per_ms)
    if last:
        print(f"plan {last[0]} services: {last[1]:.2f} ms per registered resource (target <= 3 ms)")
    print("reproduce: make bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())

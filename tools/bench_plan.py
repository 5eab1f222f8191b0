"""Plan benchmark: offline plan wall time and peak memory for 1, 10, 50 and 200 services.

    make bench        (or: python -m tools.bench_plan [--sizes 1,10,50,200])

Each size runs in a fresh interpreter so peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def synthetic_config(services: int) -> dict:
    """A dev-like stack config with `services` services, each on its own path."""
    from tools.plan import stack_config

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


def _child(services: int) -> None:
    from tools import plan as plan_tool

    config = synthetic_config(services)
    started = time.perf_counter()
    plan = plan_tool.run("dev", config=config)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "services": services,
                "wall": wall,
                "resources": len(plan.resources),
                "peak_kib": peak_kib,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50,200")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    print(
        f"offline plan benchmark on {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"{'services':>8} {'resources':>9} {'wall s':>8} {'peak MiB':>9} {'ms/res':>7} {'KiB/res':>8}"
    )
    last = None
    for size in (int(s) for s in args.sizes.split(",")):
        out = (
            subprocess.run(
                [sys.executable, "-m", "tools.bench_plan", "--child", str(size)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        row = json.loads(out)
        per_ms = 1000 * row["wall"] / row["resources"]
        per_kib = row["peak_kib"] / row["resources"]
        print(
            f"{size:>8} {row['resources']:>9} {row['wall']:>8.2f} {row['peak_kib'] / 1024:>9.1f} {per_ms:>7.2f} {per_kib:>8.1f}"
        )
        last = (size, per_ms)
    if last:
        print(f"plan {last[0]} services: {last[1]:.2f} ms per registered resource (target <= 3 ms)")
    print("reproduce: make bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side plan benchmark of two commits: `python -m tools.bench_compare BASE [NEW]`.

Checks both commits out into temporary git worktrees (removed afterwards), writes the same
synthetic N-service stack file into each, then alternates `python -m ecs_delivery.offline.plan` runs
(A, B, A, B, ...) and prints every run's wall time and peak RSS, and the median ratio B/A.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
STACK = "bench"


def _worktree(commit: str, parent: Path) -> Path:
    path = parent / commit.replace("/", "-")
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(path), commit], cwd=ROOT, check=True
    )
    return path


def _timed(python: str, cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one plan process, run
    with the tree's own code (either layout), not the package installed in .venv."""
    from ecs_delivery.offline.diff import _plan_command

    command, env = _plan_command(cwd)
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, *command[1:], "--stack", STACK],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"plan failed in {cwd}: {process.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="commit A (e.g. the commit work started from)")
    parser.add_argument("new", nargs="?", default="HEAD", help="commit B (default HEAD)")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from tools.bench_plan import synthetic_config

    text = yaml.safe_dump({"config": synthetic_config(args.services)}, sort_keys=True)
    python = str(ROOT / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"A": _worktree(args.base, Path(tmp)), "B": _worktree(args.new, Path(tmp))}
        try:
            for tree in trees.values():
                (tree / f"Pulumi.{STACK}.yaml").write_text(text)
            runs: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
            for round_ in range(args.rounds):
                for label, tree in trees.items():
                    wall, cpu, peak = _timed(python, tree)
                    runs[label].append((wall, cpu, peak))
                    print(
                        f"round {round_ + 1} {label}: wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                        f"peak {peak:6.1f} MiB",
                        flush=True,
                    )
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
    peak = {k: max(r[2] for r in v) for k, v in runs.items()}
    for label, commit in (("A", args.base), ("B", args.new)):
        print(
            f"{label} {commit}: median wall {wall[label]:.2f} s, cpu {cpu[label]:.2f} s, "
            f"peak {peak[label]:.1f} MiB"
        )
    print(
        f"median ratio B/A ({args.services} services): wall {wall['B'] / wall['A']:.2f}, "
        f"cpu {cpu['B'] / cpu['A']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

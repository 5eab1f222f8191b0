"""Side-by-side plan benchmark of two commits: `python -m tools.bench_compare BASE [NEW]`.

    make bench        (BENCH_BASE=HEAD~1, sizes 200, 500 and 1000, one round)
    python -m tools.bench_compare HEAD~1 --stack dev --rounds 5   (each tree's own dev stack)

Checks both commits out into temporary git worktrees (removed afterwards), writes the same
synthetic N-service stack file into each, then alternates plan runs (A, B, A, B, ...) per size
and prints every run, then a table per size: resources, CPU ms and peak KiB per resource of
each commit, and the median ratio B/A. CPU (user + system of the plan process), not wall time:
the machine is shared. `bench/plan_unquota.py` runs each plan with IAM's per-role quota check
lifted, so sizes a deploy role could not hold at IAM's default quota still measure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
STACK = "bench"
PLAN = ROOT / "bench" / "plan_unquota.py"


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # seconds, user + system
    peak_kib: int  # max RSS
    resources: int


def _worktree(commit: str, parent: Path) -> Path:
    path = parent / commit.replace("/", "-").replace("~", "-")
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(path), commit], cwd=ROOT, check=True
    )
    return path


def _timed(python: str, cwd: Path, stack: str = STACK) -> Run:
    """One plan process of `cwd`, with the tree's own code (either layout), not the package
    installed in .venv."""
    from ecs_delivery.offline.diff import _plan_command

    command, env = _plan_command(cwd)
    # Trees with src/ecs_delivery run through the quota-lifting wrapper; older ones as before.
    plan = [str(PLAN)] if "ecs_delivery.offline.plan" in command else command[1:]
    if stack != STACK and (cwd / "src" / "ecs_delivery" / "cli.py").is_file():
        plan = ["-m", "ecs_delivery", "plan"]  # a real stack: what `make plan` runs
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            [python, *plan, "--stack", stack],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"plan failed in {cwd}: {process.stderr.read().decode()}")
        output.seek(0)
        first = output.readline()  # "stack <name>: N resources ..."
    resources = int(first.split(": ")[1].split()[0])
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, resources)


def table(sizes: list[int], runs: dict[tuple[int, str], list[Run]]) -> list[str]:
    """Per size: resources, CPU ms and peak KiB per resource of A and B (medians), ratio B/A."""
    lines = [
        f"{'services':>8} {'resources':>9} {'A ms/res':>9} {'B ms/res':>9} {'B/A cpu':>8} "
        f"{'A KiB/res':>10} {'B KiB/res':>10} {'B/A mem':>8}"
    ]
    for size in sizes:
        a, b = runs[(size, "A")], runs[(size, "B")]
        cpu = {
            k: statistics.median(1000 * r.cpu / r.resources for r in v)
            for k, v in (("A", a), ("B", b))
        }
        mem = {
            k: statistics.median(r.peak_kib / r.resources for r in v)
            for k, v in (("A", a), ("B", b))
        }
        ratio = statistics.median(rb.cpu / ra.cpu for ra, rb in zip(a, b, strict=True))
        mem_ratio = statistics.median(
            rb.peak_kib / ra.peak_kib for ra, rb in zip(a, b, strict=True)
        )
        lines.append(
            f"{size or 'stack':>8} {b[0].resources:>9} {cpu['A']:>9.2f} {cpu['B']:>9.2f} {ratio:>8.2f} "
            f"{mem['A']:>10.1f} {mem['B']:>10.1f} {mem_ratio:>8.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="commit A (e.g. the commit work started from)")
    parser.add_argument("new", nargs="?", default="HEAD", help="commit B (default HEAD)")
    parser.add_argument("--sizes", default="200", help="services per stack, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--stack", help="plan this stack file of each tree (e.g. dev) instead of synthetic sizes"
    )
    args = parser.parse_args(argv)
    from tools.bench_plan import synthetic_config

    # Size 0 stands for the trees' own stack file.
    sizes = [0] if args.stack else [int(s) for s in args.sizes.split(",")]
    python = str(ROOT / ".venv" / "bin" / "python")
    runs: dict[tuple[int, str], list[Run]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"A": _worktree(args.base, Path(tmp)), "B": _worktree(args.new, Path(tmp))}
        try:
            for size in sizes:
                if not args.stack:
                    text = yaml.safe_dump({"config": synthetic_config(size)}, sort_keys=True)
                    for tree in trees.values():
                        (tree / f"Pulumi.{STACK}.yaml").write_text(text)
                for round_ in range(args.rounds):
                    for label, tree in trees.items():
                        run = _timed(python, tree, args.stack or STACK)
                        runs.setdefault((size, label), []).append(run)
                        print(
                            f"{args.stack or f'{size} services'}, round {round_ + 1} {label}: {run.resources} "
                            f"resources, cpu {run.cpu:7.2f} s (wall {run.wall:7.2f} s), "
                            f"peak {run.peak_kib / 1024:7.1f} MiB",
                            flush=True,
                        )
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    print(f"A {args.base}, B {args.new}; medians of {args.rounds} alternating round(s)")
    print("\n".join(table(sizes, runs)))
    if len(sizes) > 1:
        per = {
            s: statistics.median(1000 * r.cpu / r.resources for r in runs[(s, "B")]) for s in sizes
        }
        print(
            f"B: CPU per resource at {sizes[-1]} services is {per[sizes[-1]] / per[sizes[0]]:.2f}x "
            f"that at {sizes[0]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

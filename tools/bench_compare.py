"""Side-by-side plan benchmark of two commits: `python -m tools.bench_compare BASE [NEW]`.

Checks both commits out into temporary git worktrees (removed afterwards), writes the same
synthetic N-service stack file into each, then alternates `python -m tools.plan` runs
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


def _timed(python: str, cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one plan process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, "-m", "tools.plan", "--stack", STACK],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"plan failed in {cwd}: {process.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


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
            runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
            for round_ in range(args.rounds):
                for label, tree in trees.items():
                    wall, peak = _timed(python, tree)
                    runs[label].append((wall, peak))
                    print(f"round {round_ + 1} {label}: {wall:6.2f} s  {peak:6.1f} MiB", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    median = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    peak = {k: max(p for _, p in v) for k, v in runs.items()}
    print(f"A {args.base}: median {median['A']:.2f} s, peak {peak['A']:.1f} MiB")
    print(f"B {args.new}: median {median['B']:.2f} s, peak {peak['B']:.1f} MiB")
    print(f"median wall ratio B/A: {median['B'] / median['A']:.2f} ({args.services} services)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

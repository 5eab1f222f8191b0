"""Benchmark: what one order of the rollout exploration costs, and where it goes.

Run: `python bench/bench_exploration.py [--orders 60] [--profile]`.

Runs the first ORDERS orders of the two-ship scenario of the CodeDeploy rollout exploration
(tests/runtime/test_interleavings.py, the same runs `make test` makes) after a few warm-up
runs, and prints the CPU per order, the boto3 calls per order and the CPU per call. With
`--profile`, the share of that CPU by package (moto, botocore, werkzeug, the standard library,
this repository's runtime and its tests, C builtins), from cProfile's own time per function.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import botocore.client  # noqa: E402

from tests.runtime.test_interleavings import CODEDEPLOY  # noqa: E402
from tests.support.rollout_interleavings import (  # noqa: E402
    TWO_SHIPS,
    many_runs,
    problems,
    schedules,
)

PACKAGES = ("moto", "botocore", "werkzeug", "ecs_delivery", "tests", "greenlet")
WARM_UP = 5


def share_by_package(profile: cProfile.Profile) -> list[tuple[str, float]]:
    """Each package's share of the profiled CPU (own time of its functions), largest first."""
    own: collections.Counter[str] = collections.Counter()
    for (path, _line, _name), (_cc, _nc, tottime, _ct, _callers) in pstats.Stats(
        profile
    ).stats.items():
        parts = Path(path).parts
        found = next((p for p in PACKAGES if p in parts), None)
        if found is None:
            found = "builtins" if path == "~" else "python" if "python3" in path else "other"
        own[found] += tottime
    total = sum(own.values()) or 1.0
    return [(name, seconds / total) for name, seconds in own.most_common()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    orders = list(schedules(*TWO_SHIPS.steps))[: WARM_UP + args.orders]
    calls = [0]
    original = botocore.client.BaseClient._make_api_call

    def counted(self, operation, params):
        calls[0] += 1
        return original(self, operation, params)

    profile = cProfile.Profile() if args.profile else None
    botocore.client.BaseClient._make_api_call = counted
    try:
        with many_runs():
            for order in orders[:WARM_UP]:
                CODEDEPLOY.run(order, TWO_SHIPS)
            calls[0] = 0
            started = time.process_time()
            if profile:
                profile.enable()
            for order in orders[WARM_UP:]:
                assert problems(CODEDEPLOY.run(order, TWO_SHIPS), TWO_SHIPS) == [], order
            if profile:
                profile.disable()
            cpu = time.process_time() - started
    finally:
        botocore.client.BaseClient._make_api_call = original
    measured = len(orders) - WARM_UP
    print(
        f"{measured} orders: {cpu / measured * 1000:.0f} ms CPU per order, "
        f"{calls[0] / measured:.1f} boto3 calls per order, "
        f"{cpu / max(calls[0], 1) * 1000:.2f} ms CPU per call"
        + (" (under cProfile)" if profile else "")
    )
    if profile:
        for name, share in share_by_package(profile):
            print(f"  {name:12s} {share:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: release 10, 50 and 200 services against the simulated AWS.

Run: `python bench/bench_release.py` (`make bench-release`).

Scaling. Simulated AWS seconds pass SCALE times faster than real ones (a ScaledClock shared
by the engine and the simulator): a deployment that takes 300 simulated seconds lasts
300/SCALE real seconds, and RegisterTaskDefinition allows a burst of 20 then 1 call per
simulated second. Wall time is measured with the real monotonic clock and multiplied by
SCALE, so every millisecond the engine (and moto) spends counts, magnified by SCALE; the
lines print both the real and the simulated figures.

Lower bound. With a burst of B registrations then R per second, the i-th registration
(0-based) cannot happen before max(0, i - B + 1) / R seconds, and a service cannot finish
before its registration plus its deployment time. Giving the earliest slots to the
longest deployments minimises the latest finish, so the bound is
max_i(slot_i + d_i) with d sorted longest first. Nothing else (polling, state writes,
the plan) is in the bound.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecs_delivery.offline.release_simulator import DEFAULT_LIMITS, simulated_aws  # noqa: E402
from ecs_delivery.runtime.release.engine import EngineConfig, apply  # noqa: E402
from ecs_delivery.runtime.release.live import Aws  # noqa: E402
from ecs_delivery.runtime.release.manifest import load_manifest  # noqa: E402
from ecs_delivery.runtime.release.pacing import ScaledClock  # noqa: E402
from ecs_delivery.runtime.release.state import StateStore  # noqa: E402

SCALE = 20.0  # simulated seconds per real second
SIZES = (10, 50, 200)
BASE_DURATION = 300.0  # a blue/green ECS deployment: minutes, not seconds
POLL_SECONDS = 15.0
REGISTER_RATE, REGISTER_BURST = DEFAULT_LIMITS["register_task_definition"]


def duration(service: str) -> float:
    """300 s +- 5 %, fixed per service name (deterministic across runs)."""
    spread = int(hashlib.sha256(service.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return BASE_DURATION * (0.95 + 0.10 * spread)


def lower_bound(durations: list[float], burst: int, rate: float) -> float:
    """The earliest the last service can finish under the registration rate limit."""
    longest_first = sorted(durations, reverse=True)
    return max(max(0.0, i - burst + 1) / rate + d for i, d in enumerate(longest_first))


def run(size: int) -> tuple[float, float, float]:
    """(real wall seconds, simulated wall seconds, simulated bound seconds) for one size."""
    clock = ScaledClock(SCALE)
    with simulated_aws(
        clock, services=size, rule_tasks=0, schedule_tasks=0, duration=duration
    ) as sim:
        manifest = load_manifest(sim.manifest_yaml(f"bench-{size}", "2.0.0"), sim.inventory)
        store = StateStore(sim.clients.s3, sim.bucket, manifest.release_id, clock)
        # Enough parallelism that the rate limit, not the cap, decides: every service that
        # can be registered may be in flight.
        config = EngineConfig(
            max_parallel=size,
            poll_seconds=POLL_SECONDS,
            register_rate=REGISTER_RATE,
            register_burst=int(REGISTER_BURST),
        )
        started = time.monotonic()
        outcome = apply(Aws(sim.clients, clock), store, manifest, sim.inventory, config)
        real = time.monotonic() - started
        if outcome.status != "succeeded":
            raise SystemExit(
                f"release of {size} services ended {outcome.status}: {outcome.failure}"
            )
        wrong = [n for n in sim.inventory.services if not sim.live_image(n).endswith(":2.0.0")]
        if wrong:
            raise SystemExit(f"services not on the new image: {wrong[:5]}")
        created = sim.codedeploy.created_per_service()
        if set(created.values()) != {1} or len(created) != size:
            raise SystemExit(f"expected one deployment per service, got {dict(created)}")
        bound = lower_bound(
            [duration(n) for n in sim.inventory.services], int(REGISTER_BURST), REGISTER_RATE
        )
        throttled = sim.ecs.throttled + sim.clients.codedeploy.throttled
        throttled_text = ", ".join(f"{op} {n}" for op, n in sorted(throttled.items())) or "none"
        print(
            f"  {size} services: real {real:.2f} s x{SCALE:g} = {real * SCALE:.1f} simulated s; "
            f"bound {bound:.1f} s; ratio {real * SCALE / bound:.3f}; state writes "
            f"{store.writes}; throttled calls: {throttled_text}",
            flush=True,
        )
        return real, real * SCALE, bound


def main() -> None:
    print(
        f"simulated AWS at x{SCALE:g} (1 simulated s = {1000 / SCALE:g} ms real); deployments "
        f"{BASE_DURATION * 0.95:.0f}-{BASE_DURATION * 1.05:.0f} s; RegisterTaskDefinition "
        f"burst {REGISTER_BURST} then {REGISTER_RATE:g}/s; poll every {POLL_SECONDS:g} s",
        flush=True,
    )
    results = {size: run(size) for size in SIZES}
    print("wall and bound below are simulated AWS seconds (real wall x SCALE)")
    for size in SIZES:
        _, wall, bound = results[size]
        print(
            f"release {size} services: {wall:.1f} s, bound {bound:.1f} s, ratio {wall / bound:.3f}"
        )


if __name__ == "__main__":
    main()

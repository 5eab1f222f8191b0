"""A release you can watch without AWS: `plan`, `apply` (one service fails, the whole release
rolls back, keeping an image the pipeline shipped meanwhile) and `status`, run by the real
CLI against the simulated AWS.

Run: `make release-demo` (`python -m tools.release_demo`). Exit code is apply's: 1, the
release failed and was rolled back. The simulator (src/ecs_delivery/runtime/release/simulator.py: moto for
ECS, S3, EventBridge and Scheduler, a simulated CodeDeploy whose deployments finish) runs
at SCALE simulated seconds per real second, so the ~6 simulated minutes take ~20 s.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
from pathlib import Path

from ecs_delivery.offline.release_simulator import SimulatedAws, simulated_aws
from ecs_delivery.runtime.release.cli import main as release
from ecs_delivery.runtime.release.pacing import ScaledClock
from ecs_delivery.runtime.taskdef import register_request

SCALE = 20.0
SERVICES = 6
FAILING = "svc-003"
# Three deploy at once: svc-000..002 finish (120 s), then svc-003..005 start; svc-003 fails
# half-way through its 180 s, so svc-004/005 are stopped and svc-000..002 redeployed.
DURATIONS = {f"svc-{i:03d}": 120.0 if i < 3 else 180.0 for i in range(SERVICES)}
MAX_PARALLEL = 3


def _run(sim: SimulatedAws, argv: list[str]) -> int:
    print(f"\n$ ecs-delivery release {shlex.join(argv)}", flush=True)
    code = release(argv, clients=sim.clients, clock=sim.clock, stop=threading.Event())
    sys.stderr.flush()
    print(f"(exit {code})", flush=True)
    return code


SHIPPED = "svc-001"  # the pipeline ships it a newer image while the release still runs


def _pipeline_ships_during(sim: SimulatedAws, trigger: str) -> None:
    """When `trigger`'s deployment starts, the pipeline ships SHIPPED's 2.1.0 (a revision of
    what it runs with only the image changed): the rollback must leave it running."""

    def ship(info: dict) -> None:
        if info["service"] != trigger:
            return
        sim.codedeploy.on_create = None
        _ship(sim)

    if sim.ecs_deployments is None:
        sim.codedeploy.on_create = ship
        return
    deployments, service = sim.ecs_deployments, sim.inventory.services[trigger].service

    def ship_before_update(params: dict) -> None:  # ECS: as the trigger's UpdateService comes
        if params["service"] != service:
            deployments.before_update.append(ship_before_update)  # one-shot hooks: stay
            return
        _ship(sim)

    deployments.before_update.append(ship_before_update)


def _ship(sim: SimulatedAws) -> None:
    """The pipeline's ship of SHIPPED's 2.1.0 lands."""
    target = sim.inventory.services[SHIPPED]
    running = sim.raw_ecs.describe_task_definition(
        taskDefinition=sim.live_task_definition(SHIPPED)
    )["taskDefinition"]
    image = sim.image(SHIPPED, "2.1.0")
    request = register_request(running, {target.container: image})
    arn = sim.raw_ecs.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
    sim.land(target, arn)
    print(f"(meanwhile the pipeline ships {SHIPPED}: {image})", flush=True)


def demo(workdir: Path, scale: float = SCALE, engine: str = "codedeploy") -> int:
    """Seed a simulated environment, write the release's files to `workdir`, run the CLI."""
    with simulated_aws(
        ScaledClock(scale), services=SERVICES, duration=DURATIONS.__getitem__, engine=engine
    ) as sim:
        if sim.ecs_deployments is None:
            sim.codedeploy.fail(FAILING)
        else:
            sim.ecs_deployments.failing.add(sim.inventory.services[FAILING].service)
        _pipeline_ships_during(sim, FAILING)
        inventory = workdir / "inventory.json"
        manifest = workdir / "release.yaml"
        inventory.write_text(sim.inventory.model_dump_json(by_alias=True, indent=2))
        manifest.write_text(
            sim.manifest_yaml("demo-1", "2.0.0", tasks={"job-00": {"followsService": "svc-000"}})
        )
        print(
            f"simulated AWS at x{scale:g}: {SERVICES} services (each deployment takes 120-180 "
            f"simulated s) and job-00, a scheduled task following svc-000; {FAILING}'s deployment will fail,\n"
            f"and the pipeline ships {SHIPPED} a newer image meanwhile (the rollback keeps it).\n"
            f"inventory: {inventory}\nmanifest:  {manifest}",
            flush=True,
        )
        files = ["--manifest", str(manifest), "--inventory", str(inventory)]
        bucket = ["--state-bucket", sim.bucket]
        _run(sim, ["plan", *files])
        code = _run(sim, ["apply", *files, *bucket, "--max-parallel", str(MAX_PARALLEL)])
        _run(sim, ["status", "--release", "dev-demo-1", *bucket])
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="release-demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=SCALE, help=f"simulated seconds per real second ({SCALE:g})"
    )
    parser.add_argument(
        "--engine",
        choices=("codedeploy", "ecs"),
        default="codedeploy",
        help="who deploys the services: CodeDeploy's groups, or ECS's own blue/green",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="release-demo-") as workdir:
        return demo(Path(workdir), args.scale, args.engine)


if __name__ == "__main__":
    raise SystemExit(main())

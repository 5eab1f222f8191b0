"""A release's deployments run the service's validation hook, as a ship's and an `up`'s do
(issue 21, problem 5): the inventory names it (`validationHook`), the AppSpec runs it after
test traffic is allowed. Against the simulated AWS (moto's ECS + the simulated CodeDeploy)."""

from __future__ import annotations

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.engine import ReleaseEngine, prepare
from ecs_delivery.runtime.release.manifest import load_manifest
from ecs_delivery.runtime.release.state import StateStore

from .conftest import aws_of, config

HOOK = "dev-validation-hook"


def test_each_deployment_of_a_release_and_of_its_rollback_runs_the_services_hook(sim: SimulatedAws):
    services = {**sim.inventory.services}
    services["svc-000"] = services["svc-000"].model_copy(update={"validation_hook": HOOK})
    inventory = sim.inventory.model_copy(update={"services": services})
    manifest = load_manifest(
        sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]), inventory
    )
    store = StateStore(sim.clients.s3, sim.bucket, manifest.release_id, sim.clock)
    engine = ReleaseEngine(aws_of(sim), store, config())
    _, plan = prepare(aws_of(sim), store, manifest, inventory)
    assert plan is not None
    engine.begin(plan)
    assert engine.run().status == "succeeded"
    assert engine.rollback("checking the rollback's hooks").status == "rolled_back"

    hooks = {
        (d.service, d.description.split(" ")[1]): d.appspec.get("Hooks")
        for d in sim.codedeploy.deployments
    }
    assert hooks[("svc-000", "release")] == [{"AfterAllowTestTraffic": HOOK}]
    assert hooks[("svc-000", "rollback")] == [{"AfterAllowTestTraffic": HOOK}]
    # A service whose inventory names no hook runs none.
    assert not hooks[("svc-001", "release")]

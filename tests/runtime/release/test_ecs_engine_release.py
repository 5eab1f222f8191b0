"""Issue 19: `release apply` on the ECS engine, against the simulated AWS (moto, with ECS's
service deployments from the one double, offline/ecs_deployments.py: moto 5.2 has none).

The release reaches ECS only through the deployment core and the engine interface: the
services use the ECS controller, CodeDeploy has no group at all, so any CodeDeploy call
would fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.inventory import InventoryError, parse_inventory
from ecs_delivery.runtime.release.steps import (
    StepContext,
    plan_step,
    poll_service_step,
    rollback_poll_step,
    rollback_step,
    start_service_step,
)

from .conftest import DEPLOY_SECONDS, aws_of, config
from .test_engine import live, originals, release, sim_services, store_of


@pytest.fixture
def ecs_sim(make_sim: Any):
    """12 services on the ECS controller; a failing service's deployment lasts longer."""
    with make_sim(services=12, rule_tasks=0, schedule_tasks=0, engine="ecs") as environment:
        yield environment


def service_of(sim: SimulatedAws, name: str) -> str:
    return sim.inventory.services[name].service


def per_service(sim: SimulatedAws) -> Counter[str]:
    assert sim.ecs_deployments is not None
    names = {t.service: n for n, t in sim.inventory.services.items()}
    return Counter({names[s]: c for s, c in sim.ecs_deployments.created_per_service().items()})


def test_release_apply_on_the_ecs_engine_deploys_every_service_with_the_configured_concurrency(
    ecs_sim: SimulatedAws,
) -> None:
    # The first four deployments run until all four exist, so the peak does not depend on
    # how fast the start threads were scheduled on a busy machine.
    deployments = ecs_sim.ecs_deployments
    first = {service_of(ecs_sim, f"svc-{i:03d}") for i in range(4)}
    deployments.held |= first

    def end_held_once_four_run(_deployment: dict[str, Any]) -> None:
        if {str(d["_service"]).split("/")[-1] for d in deployments.deployments.values()} >= first:
            deployments.held -= first

    deployments.on_create = end_held_once_four_run
    outcome, store = release(ecs_sim, ecs_sim.manifest_yaml("r1", "2.0.0"), max_parallel=4)

    assert outcome.status == "succeeded", outcome.failure
    assert {n: ecs_sim.live_image(n) for n in ecs_sim.inventory.services} == {
        n: ecs_sim.image(n, "2.0.0") for n in ecs_sim.inventory.services
    }
    assert per_service(ecs_sim) == {n: 1 for n in ecs_sim.inventory.services}
    # Four at a time, never more: the release's max_parallel on ECS's own deployments.
    assert ecs_sim.ecs_deployments.max_in_flight() == 4
    assert ecs_sim.codedeploy.deployments == []
    state = store.load()
    assert {s.deployment_id.split("/")[-2] for s in state.services.values()} == {
        service_of(ecs_sim, n) for n in ecs_sim.inventory.services
    }


def test_one_failure_on_the_ecs_engine_rolls_every_service_back(make_sim: Any) -> None:
    failing, held = "svc-000", sim_services(6, first=3)
    # The failure comes long after the others have finished (on the scaled clock a loaded
    # machine can stretch a deployment to several times its length).
    durations = {n: DEPLOY_SECONDS for n in sim_services(6)} | {failing: 15 * DEPLOY_SECONDS}
    with make_sim(
        services=6, rule_tasks=0, schedule_tasks=0, engine="ecs", duration=durations
    ) as sim:
        double = sim.ecs_deployments
        double.failing.add(service_of(sim, failing))
        double.held.update(service_of(sim, n) for n in held)

        outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0"), max_parallel=6)

        assert outcome.status == "rolled_back" and outcome.exit_code == 1
        assert outcome.failed_item == failing
        assert "simulated failure" in outcome.failure
        # Every service runs the revision it ran before the release.
        assert live(sim) == originals(sim)
        state = store.load()
        assert {n: s.rollback for n, s in state.services.items()} == {
            n: "rolled_back" for n in sim_services(6)
        }
        # The deployed ones were deployed back once; the in-flight ones were stopped with
        # ECS's rollback; the failed one ECS rolled back itself.
        assert per_service(sim) == {n: 2 for n in ("svc-001", "svc-002")} | {
            n: 1 for n in (failing, *held)
        }
        stopped = {s["serviceDeploymentArn"] for s in double.stops}
        assert stopped == {state.services[n].deployment_id for n in held}
        assert {s["stopType"] for s in double.stops} == {"ROLLBACK"}
        assert sim.codedeploy.deployments == []


def test_an_ecs_service_needs_no_deployment_group_in_the_inventory() -> None:
    target = {"cluster": "c", "service": "s", "container": "web", "containerPort": 8080}
    inventory = parse_inventory(
        {"environment": "dev", "services": {"web": {**target, "engine": "ecs"}}}
    )
    assert inventory.services["web"].engine == "ecs"

    with pytest.raises(InventoryError) as refused:
        parse_inventory({"environment": "dev", "services": {"web": target}})
    assert str(refused.value) == (
        "inventory: services.web: codedeployApplication and codedeployGroup: required with "
        "engine codedeploy (the group that deploys the service); or set engine: ecs"
    )


def test_on_the_ecs_engine_a_baking_deployment_counts_as_deployed_and_a_rollback_stops_it(
    make_sim: Any,
) -> None:
    """Bake time is ECS's termination wait: production runs the release's revision, so the
    release counts the service deployed (its next wave may start) while the deployment still
    holds the service; a rollback then stops it with ROLLBACK, putting the original revision,
    still there, back, as a stop during CodeDeploy's termination wait does."""
    with make_sim(services=2, rule_tasks=0, schedule_tasks=0, engine="ecs") as sim:
        double = sim.ecs_deployments
        double.held.update(service_of(sim, n) for n in sim_services(2))  # never end alone
        ctx = StepContext(aws_of(sim), sim.bucket, config())
        plan = plan_step(ctx, sim.manifest_yaml("r1", "2.0.0"), sim.inventory)
        rid = plan["release_id"]
        for name in plan["services"]:
            start_service_step(ctx, rid, name)
        store = store_of(sim, rid)
        baking = store.load().services["svc-000"].deployment_id
        assert poll_service_step(ctx, rid, "svc-000")["status"] == "deploying"

        double.bake(baking)

        assert poll_service_step(ctx, rid, "svc-000")["status"] == "deployed"
        assert double.deployments[baking]["status"] == "IN_PROGRESS"  # still baking
        assert sim.live_image("svc-000") == sim.image("svc-000", "2.0.0")
        assert poll_service_step(ctx, rid, "svc-001")["status"] == "deploying"

        status = rollback_step(ctx, {"plan": plan, "error": {"Error": "E", "Cause": "c"}})
        for _ in range(20):
            if status["status"] != "rolling_back":
                break
            status = rollback_poll_step(ctx, rid)

        assert status["status"] == "rolled_back"
        stopped = {s["serviceDeploymentArn"]: s["stopType"] for s in double.stops}
        assert stopped[baking] == "ROLLBACK"
        assert live(sim) == originals(sim)
        assert per_service(sim) == {n: 1 for n in sim_services(2)}  # stopped, not redeployed

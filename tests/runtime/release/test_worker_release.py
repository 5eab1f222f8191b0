"""Issue 18, item 2: the release engine deploys workers (no load balancer, no port) through the
one deployment core on its ECS engine, against the simulated AWS (moto, with ECS's service
deployments from the one double, offline/ecs_deployments.py: moto 5.2 has none)."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_delivery.runtime.release.inventory import InventoryError, parse_inventory

from .test_engine import release


def as_workers(sim: Any) -> None:
    """Every service of the simulated stack as the inventory gives a worker: no containerPort."""
    services = {
        name: target.model_copy(update={"container_port": None})
        for name, target in sim.inventory.services.items()
    }
    sim.inventory = sim.inventory.model_copy(update={"services": services})


def test_release_apply_deploys_workers_on_the_ecs_engine_keeping_pulumis_fields(make_sim):
    with make_sim(services=3, rule_tasks=0, schedule_tasks=0, engine="ecs") as sim:
        as_workers(sim)
        before = {n: sim.live_task_definition(n) for n in sim.inventory.services}

        outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0"), max_parallel=3)

        assert outcome.status == "succeeded", outcome.failure
        assert {n: sim.live_image(n) for n in sim.inventory.services} == {
            n: sim.image(n, "2.0.0") for n in sim.inventory.services
        }
        # One service deployment each, through UpdateService; CodeDeploy is never called.
        assert sorted(sim.ecs_deployments.created_per_service().values()) == [1, 1, 1]
        assert sim.codedeploy.deployments == []
        for name, arn in before.items():
            old = sim.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            new = sim.clients.ecs.describe_task_definition(
                taskDefinition=sim.live_task_definition(name)
            )["taskDefinition"]
            assert (new["cpu"], new["memory"]) == (old["cpu"], old["memory"])
        state = store.load()
        assert all(s.status == "deployed" for s in state.services.values())


def worker_entry(**fields: Any) -> dict[str, Any]:
    return {
        "environment": "dev",
        "services": {
            "mailer": {"cluster": "c", "service": "mailer", "container": "mailer", **fields}
        },
    }


def test_an_inventory_worker_needs_the_ecs_engine_naming_the_missing_port():
    assert parse_inventory(worker_entry(engine="ecs")).services["mailer"].container_port is None

    with pytest.raises(InventoryError) as error:
        parse_inventory(
            worker_entry(engine="codedeploy", codedeployApplication="a", codedeployGroup="g")
        )

    assert "containerPort: required with engine codedeploy" in str(error.value)

"""Issue 19, item 3: the `pulumi up` rollout record (ServiceRolloutProvider) deploys a service
on the ECS engine through the one core, and `pulumi refresh` reads how its deployment ended.

The provider makes its own clients (it is pickled into the state): the ECS client it makes is
replaced by the moto client with ECS's service deployments (tests/support/ecs_deployments.py,
since moto 5.2 has none); no logic of ours is replaced.
"""

from __future__ import annotations

import pytest

from ecs_delivery.components import rollout as rollout_component
from ecs_delivery.components.rollout import ServiceRolloutProvider
from tests.support.ecs_deployments import image_running, memory_running, running, ship, template
from tests.support.moto_world import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    PIPELINE_IMAGE,
    PORT,
    REGION,
    SERVICE,
)


@pytest.fixture
def clients(ecs, monkeypatch):
    real = rollout_component.client

    def made(service, session=None, region=None):
        return ecs if service == "ecs" else real(service, session, region)

    monkeypatch.setattr(rollout_component, "client", made)
    return ecs


def props(template_arn: str, **overrides) -> dict:
    return {
        "cluster_name": CLUSTER,
        "service_name": SERVICE,
        "template_arn": template_arn,
        "family": FAMILY,
        "application_name": "unused-on-ecs",
        "deployment_group_name": SERVICE,
        "container_name": CONTAINER,
        "container_port": float(PORT),
        "region": REGION,
        "wait": False,
        "timeout_minutes": 60.0,
        "engine": "ecs",
        **overrides,
    }


def test_an_up_on_the_ecs_engine_starts_one_service_deployment_keeping_the_shipped_image(clients):
    ship(clients, PIPELINE_IMAGE)
    shipped = running(clients)
    arn = template(clients)

    result = ServiceRolloutProvider().update(
        "id", props(arn, action="none-same-content"), props(arn)
    )

    assert result.outs["action"] == "started"
    (started,) = clients.in_progress()
    assert result.outs["last_deployment_id"] == started
    assert result.outs["running_task_definition_arn"] == shipped
    assert (image_running(clients), memory_running(clients)) == (PIPELINE_IMAGE, "1024")


def test_refresh_reads_how_the_started_ecs_deployment_ended(clients):
    arn = template(clients)
    started = ServiceRolloutProvider().update("id", props(arn), props(arn)).outs
    assert started["action"] == "started"
    merged = running(clients)  # ECS points the service at the new revision at once

    clients.finish()
    deployed = ServiceRolloutProvider().read("id", started).outs
    clients.roll_back(started["last_deployment_id"])
    failed = ServiceRolloutProvider().read("id", started).outs

    assert (deployed["action"], failed["action"]) == ("deployed", "failed")
    assert deployed["running_task_definition_arn"] == merged
    assert failed["running_task_definition_arn"] == started["running_task_definition_arn"]


def test_a_second_up_while_its_deployment_runs_starts_no_other(clients):
    arn = template(clients)
    first = ServiceRolloutProvider().update("id", props(arn), props(arn)).outs
    updates = len(clients.updates)

    again = ServiceRolloutProvider().update("id", first, props(arn)).outs

    assert again["action"] == "started"
    assert again["last_deployment_id"] == first["last_deployment_id"]
    assert len(clients.updates) == updates

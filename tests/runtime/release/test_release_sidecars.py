"""A release sets the images of the sidecars a service builds too (issue 18: "the release
manifest ... handle several containers"): one deployment per service with every moved
container, and a whole-release rollback that restores each of them while it still runs the
release's image. Against the simulated AWS (moto's ECS + the simulated CodeDeploy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.engine import ReleaseEngine, apply, prepare
from ecs_delivery.runtime.release.manifest import load_manifest
from ecs_delivery.runtime.release.progress import summary_table
from ecs_delivery.runtime.release.state import StateStore

from .conftest import aws_of, config
from .test_cli import files, run
from .test_rollback_ownership import lands, live_definition, register_over

SERVICE = "svc-000"
SIDECAR = "log-router"


@pytest.fixture
def small_sim(make_sim) -> SimulatedAws:  # type: ignore[no-untyped-def]
    """Two services; svc-000 runs a built sidecar, log-router 1.0.0, and its inventory
    entry lists it (as `release_inventory` does for `sidecars.<name>.build`)."""
    with make_sim(services=2, rule_tasks=0, schedule_tasks=0) as environment:
        yield with_sidecar(environment)


@pytest.fixture
def ecs_sim(make_sim) -> SimulatedAws:  # type: ignore[no-untyped-def]
    """The same on the ECS engine (ECS's own blue/green, no CodeDeploy group)."""
    with make_sim(services=2, rule_tasks=0, schedule_tasks=0, engine="ecs") as environment:
        yield with_sidecar(environment)


def with_sidecar(environment: SimulatedAws) -> SimulatedAws:
    described = live_definition(environment, SERVICE)
    router = {"name": SIDECAR, "image": sidecar_image(environment, "1.0.0"), "essential": False}
    lands(environment, SERVICE, register_over(environment, described, extra=[router]))
    services = dict(environment.inventory.services)
    services[SERVICE] = services[SERVICE].model_copy(update={"sidecars": [SIDECAR]})
    environment.inventory = environment.inventory.model_copy(update={"services": services})
    return environment


def sidecar_image(sim: SimulatedAws, version: str) -> str:
    return sim.image(f"{SERVICE}-{SIDECAR}", version)


def live_images(sim: SimulatedAws, service: str = SERVICE) -> dict[str, str]:
    return {c["name"]: c["image"] for c in live_definition(sim, service)["containerDefinitions"]}


def manifest_text(sim: SimulatedAws, version: str, sidecar: str | None, name: str = "r1") -> str:
    lines = [
        f"release: {name}",
        "environment: dev",
        "services:",
        f"  {SERVICE}:",
        f"    image: {sim.image(SERVICE, version)}",
    ]
    if sidecar is not None:
        lines += ["    sidecars:", f"      {SIDECAR}: {sidecar}"]
    return "\n".join(lines) + "\n"


def store_of(sim: SimulatedAws, release_id: str) -> StateStore:
    return StateStore(sim.clients.s3, sim.bucket, release_id, sim.clock)


def release(sim: SimulatedAws, text: str) -> tuple[Any, StateStore]:
    manifest = load_manifest(text, sim.inventory)
    store = store_of(sim, manifest.release_id)
    return apply(aws_of(sim), store, manifest, sim.inventory, config()), store


def deployments_of(sim: SimulatedAws, action: str) -> list[Any]:
    return [
        d for d in sim.codedeploy.deployments if d.description.startswith(f"ecs-delivery {action}")
    ]


def rollback(sim: SimulatedAws, release_id: str) -> Any:
    engine = ReleaseEngine(aws_of(sim), store_of(sim, release_id), config())
    return engine.rollback("the release was bad")


ORIGINAL = {"app": "svc-000:1.0.0", SIDECAR: f"{SERVICE}-{SIDECAR}:1.0.0"}


def short(images: dict[str, str]) -> dict[str, str]:
    return {c: image.rsplit("/", 1)[1] for c, image in images.items()}


def test_a_release_moves_a_services_image_and_its_built_sidecar_in_one_deployment(
    small_sim: SimulatedAws,
) -> None:
    memory = live_definition(small_sim, SERVICE)["memory"]
    text = manifest_text(small_sim, "2.0.0", sidecar_image(small_sim, "2.0.0"))
    manifest = load_manifest(text, small_sim.inventory)
    _, plan = prepare(
        aws_of(small_sim), store_of(small_sim, "dev-r1"), manifest, small_sim.inventory
    )
    assert plan is not None

    # The plan shows each container's move, in its text and its JSON.
    assert (
        f"  service {SERVICE}: {small_sim.image(SERVICE, '1.0.0')} -> "
        f"{small_sim.image(SERVICE, '2.0.0')}; {SIDECAR}: {sidecar_image(small_sim, '1.0.0')} "
        f"-> {sidecar_image(small_sim, '2.0.0')}"
    ) in plan.describe()
    (planned,) = plan.to_dict()["services"]
    assert planned["containers"] == {
        "app": {"from": small_sim.image(SERVICE, "1.0.0"), "to": small_sim.image(SERVICE, "2.0.0")},
        SIDECAR: {
            "from": sidecar_image(small_sim, "1.0.0"),
            "to": sidecar_image(small_sim, "2.0.0"),
        },
    }

    outcome, store = release(small_sim, text)

    assert outcome.status == "succeeded"
    assert short(live_images(small_sim)) == {
        "app": "svc-000:2.0.0",
        SIDECAR: "svc-000-log-router:2.0.0",
    }
    assert [d.service for d in deployments_of(small_sim, "release")] == [SERVICE]
    # Nothing else changed: the rest of the revision is what ran (Pulumi's).
    assert live_definition(small_sim, SERVICE)["memory"] == memory
    state = store.load().services[SERVICE]
    assert state.previous_sidecar_images == {SIDECAR: sidecar_image(small_sim, "1.0.0")}
    assert state.sidecar_images == {SIDECAR: sidecar_image(small_sim, "2.0.0")}
    # An engine that deploys only each service's own container must not run this state.
    assert store.load().schema_version == 2
    # The final table names the sidecar's move after the service's own.
    (row,) = [line for line in summary_table(store.load()) if line.startswith("service  svc-000")]
    assert (
        f"svc-000:1.0.0 -> svc-000:2.0.0; {SERVICE}-{SIDECAR}:1.0.0 -> {SERVICE}-{SIDECAR}:2.0.0"
    ) in row


def test_a_release_that_moves_only_a_sidecar_deploys_the_service(small_sim: SimulatedAws) -> None:
    outcome, _ = release(
        small_sim, manifest_text(small_sim, "1.0.0", sidecar_image(small_sim, "2.0.0"))
    )

    assert outcome.status == "succeeded"
    assert short(live_images(small_sim)) == {
        "app": "svc-000:1.0.0",
        SIDECAR: "svc-000-log-router:2.0.0",
    }
    assert [d.service for d in deployments_of(small_sim, "release")] == [SERVICE]


def test_rollback_restores_the_image_and_the_sidecar_in_one_deployment(
    small_sim: SimulatedAws,
) -> None:
    outcome, _ = release(
        small_sim, manifest_text(small_sim, "2.0.0", sidecar_image(small_sim, "2.0.0"))
    )
    assert outcome.status == "succeeded"

    rolled = rollback(small_sim, "dev-r1")

    assert rolled.status == "rolled_back"
    assert rolled.state.services[SERVICE].rollback == "rolled_back"
    assert short(live_images(small_sim)) == ORIGINAL
    assert [d.service for d in deployments_of(small_sim, "rollback")] == [SERVICE]


def test_rollback_of_only_a_sidecar_restores_it(small_sim: SimulatedAws) -> None:
    """The main container's image did not move: the rollback still takes the sidecar back
    (what it checks is the container the release changed)."""
    release(small_sim, manifest_text(small_sim, "1.0.0", sidecar_image(small_sim, "2.0.0")))

    rolled = rollback(small_sim, "dev-r1")

    assert rolled.state.services[SERVICE].rollback == "rolled_back"
    assert short(live_images(small_sim)) == ORIGINAL


def test_rollback_keeps_a_sidecar_shipped_since_and_restores_the_main_container(
    small_sim: SimulatedAws,
) -> None:
    release(small_sim, manifest_text(small_sim, "2.0.0", sidecar_image(small_sim, "2.0.0")))
    # Later, the pipeline ships a new log-router (the main container keeps the release's).
    shipped = sidecar_image(small_sim, "3.0.0")
    described = live_definition(small_sim, SERVICE)
    lands(small_sim, SERVICE, register_over(small_sim, described, images={SIDECAR: shipped}))

    rolled = rollback(small_sim, "dev-r1")

    assert short(live_images(small_sim)) == {
        "app": "svc-000:1.0.0",
        SIDECAR: "svc-000-log-router:3.0.0",
    }
    svc = rolled.state.services[SERVICE]
    assert svc.rollback == "superseded"
    assert f"{SIDECAR} {shipped}" in (svc.rollback_note or "")
    assert [d.service for d in deployments_of(small_sim, "rollback")] == [SERVICE]


def test_rollback_leaves_a_service_whose_every_moved_container_was_shipped_since(
    small_sim: SimulatedAws,
) -> None:
    release(small_sim, manifest_text(small_sim, "2.0.0", sidecar_image(small_sim, "2.0.0")))
    images = {"app": small_sim.image(SERVICE, "3.0.0"), SIDECAR: sidecar_image(small_sim, "3.0.0")}
    lands(
        small_sim,
        SERVICE,
        register_over(small_sim, live_definition(small_sim, SERVICE), images=images),
    )

    rolled = rollback(small_sim, "dev-r1")

    assert rolled.state.services[SERVICE].rollback == "superseded"
    assert live_images(small_sim) == images
    assert deployments_of(small_sim, "rollback") == []


def test_a_manifest_naming_a_sidecar_the_stack_does_not_build_is_refused_before_any_aws_call(
    small_sim: SimulatedAws, tmp_path: Path
) -> None:
    text = manifest_text(small_sim, "2.0.0", sidecar_image(small_sim, "2.0.0"))
    text += f"  svc-001:\n    image: {small_sim.image('svc-001', '2.0.0')}\n"
    text += f"    sidecars:\n      envoy: {small_sim.image('envoy', '1.0.0')}\n"
    text = text.replace(f"      {SIDECAR}:", "      log-routr:")
    before = sum(small_sim.ecs.calls.values()) + sum(small_sim.clients.codedeploy.calls.values())

    code, _, err = run(small_sim, ["apply", *files(small_sim, tmp_path, text)])

    assert code == 2
    assert (
        f"release.yaml:7: services.{SERVICE}.sidecars.log-routr: not a sidecar the stack "
        f"builds for {SERVICE}; it builds {SIDECAR}. "
    ) in err
    assert (
        "release.yaml:11: services.svc-001.sidecars.envoy: not a sidecar the stack builds "
        "for svc-001; it builds (none). "
    ) in err
    assert "Traceback" not in err
    after = sum(small_sim.ecs.calls.values()) + sum(small_sim.clients.codedeploy.calls.values())
    assert after == before


def test_a_state_written_before_releases_set_sidecars_loads_and_rolls_back(
    small_sim: SimulatedAws,
) -> None:
    """An older engine's state has no sidecar fields (and its inventory entry none): it
    still loads, and its rollback restores the main container as before."""
    outcome, store = release(small_sim, manifest_text(small_sim, "2.0.0", None))
    assert outcome.status == "succeeded"
    assert store.load().schema_version == 1  # no sidecars: what every engine runs
    key = store.key
    written = json.loads(
        small_sim.clients.s3.get_object(Bucket=small_sim.bucket, Key=key)["Body"].read()
    )
    for svc in written["services"].values():
        del svc["sidecar_images"], svc["previous_sidecar_images"], svc["target"]["sidecars"]
    small_sim.clients.s3.put_object(
        Bucket=small_sim.bucket, Key=key, Body=json.dumps(written).encode()
    )

    loaded = store_of(small_sim, "dev-r1").load()
    assert loaded is not None and loaded.services[SERVICE].sidecar_images == {}
    rolled = rollback(small_sim, "dev-r1")

    assert rolled.status == "rolled_back"
    assert short(live_images(small_sim)) == {
        "app": "svc-000:1.0.0",
        SIDECAR: "svc-000-log-router:1.0.0",
    }


def test_a_sidecar_the_service_does_not_run_yet_is_refused_at_plan_naming_pulumi_up(
    small_sim: SimulatedAws, tmp_path: Path
) -> None:
    """The stack builds envoy for svc-001 now, but `pulumi up` has not deployed it: a
    release cannot add a container (that is Pulumi's), so the plan stops, deploying nothing."""
    services = dict(small_sim.inventory.services)
    services["svc-001"] = services["svc-001"].model_copy(update={"sidecars": ["envoy"]})
    small_sim.inventory = small_sim.inventory.model_copy(update={"services": services})
    text = "release: r1\nenvironment: dev\nservices:\n  svc-001:\n"
    text += f"    image: {small_sim.image('svc-001', '2.0.0')}\n"
    text += f"    sidecars:\n      envoy: {small_sim.image('envoy', '1.0.0')}\n"

    code, _, err = run(small_sim, ["apply", *files(small_sim, tmp_path, text)])

    assert code == 2
    assert "services.svc-001.sidecars.envoy: service svc-001 runs arn:aws:ecs:" in err
    assert "which has no container 'envoy' (it has: app); run `pulumi up` so it runs" in err
    assert "Traceback" not in err
    assert small_sim.codedeploy.deployments == []
    assert small_sim.ecs.calls["register_task_definition"] == 0


def test_on_the_ecs_engine_a_release_and_its_rollback_move_the_sidecar_with_the_service(
    ecs_sim: SimulatedAws,
) -> None:
    outcome, _ = release(ecs_sim, manifest_text(ecs_sim, "2.0.0", sidecar_image(ecs_sim, "2.0.0")))
    assert outcome.status == "succeeded"
    assert short(live_images(ecs_sim)) == {
        "app": "svc-000:2.0.0",
        SIDECAR: "svc-000-log-router:2.0.0",
    }

    rolled = rollback(ecs_sim, "dev-r1")

    assert rolled.status == "rolled_back"
    assert short(live_images(ecs_sim)) == ORIGINAL


def test_rollback_restores_the_main_container_when_pulumi_removed_the_sidecar_since(
    small_sim: SimulatedAws,
) -> None:
    release(small_sim, manifest_text(small_sim, "2.0.0", sidecar_image(small_sim, "2.0.0")))
    described = live_definition(small_sim, SERVICE)
    without = {
        **described,
        "containerDefinitions": [
            c for c in described["containerDefinitions"] if c["name"] != SIDECAR
        ],
    }
    lands(small_sim, SERVICE, register_over(small_sim, without))

    rolled = rollback(small_sim, "dev-r1")

    assert short(live_images(small_sim)) == {"app": "svc-000:1.0.0"}
    svc = rolled.state.services[SERVICE]
    assert svc.rollback == "superseded"
    assert f"{SIDECAR} (removed)" in (svc.rollback_note or "")

"""A release that finds its group held by another deployment's termination wait (issue 21,
item 4): with `deployment.onTerminationWait: end` (EngineConfig.end_termination_wait) it ends
that wait with one ContinueDeployment(TERMINATION_WAIT), its deploys and its rollback's
redeploys alike; without it, it leaves the wait alone. Against moto's ECS and the one
CodeDeploy simulator (its lifecycle model: traffic shifts 60 s after creation, then the
original task set waits 1800 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from ecs_delivery.offline.codedeploy_sim import Deployment, Lifecycle
from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.codedeploy import appspec, appspec_content
from ecs_delivery.runtime.release.cli import build_parser
from ecs_delivery.runtime.release.engine import ReleaseEngine, apply
from ecs_delivery.runtime.release.manifest import load_manifest

from .conftest import aws_of, config
from .test_cli import files, run
from .test_engine import store_of
from .test_rollback_ownership import live_definition, register_over_live

# A termination wait long enough (1.8 s of the test's time) not to end on its own first.
INSTALL_SECONDS, TERMINATION_WAIT_SECONDS = 60.0, 1800.0
SERVICE = "svc-000"


@pytest.fixture
def world(
    make_sim: Callable[..., AbstractContextManager[SimulatedAws]],
) -> Iterator[tuple[SimulatedAws, list[dict[str, Any]]]]:
    """One service whose deployments keep their original tasks 1800 s after the shift, and
    the ContinueDeployment requests the engine's CodeDeploy client sends."""
    life = Lifecycle(
        install_seconds=INSTALL_SECONDS, termination_wait_seconds=TERMINATION_WAIT_SECONDS
    )
    with make_sim(services=1, rule_tasks=0, schedule_tasks=0, duration=life) as sim:
        continued: list[dict[str, Any]] = []
        sim.clients.codedeploy.meta.events.register(
            "before-parameter-build.codedeploy.ContinueDeployment",
            lambda params, **_: continued.append(dict(params)),
        )
        yield sim, continued


def ship_in_its_termination_wait(sim: SimulatedAws, **changes: Any) -> Deployment:
    """Another deployer's deployment (a ship: `image=`, or a `pulumi up`: `memory=`) whose
    traffic has shifted: it holds the group for its termination wait."""
    target = sim.inventory.services[SERVICE]
    revision = register_over_live(sim, SERVICE, **changes)
    deployment_id = sim.codedeploy.create_deployment(
        applicationName=target.codedeploy_application,
        deploymentGroupName=target.codedeploy_group,
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": appspec_content(appspec(revision, "app", 8080)),
        },
        description="another deployer",
    )["deploymentId"]
    sim.clock.sleep(INSTALL_SECONDS + 1)
    ship = sim.codedeploy.deployment(deployment_id)
    assert ship.in_termination_wait and sim.live_task_definition(SERVICE) == revision
    return ship


def release_of(sim: SimulatedAws, version: str, **overrides: Any):
    manifest = load_manifest(sim.manifest_yaml(f"r{version}", version), sim.inventory)
    store = store_of(sim, manifest.release_id)
    return apply(aws_of(sim), store, manifest, sim.inventory, config(**overrides)), store


def test_with_end_a_release_ends_a_ships_termination_wait_with_one_continue_deployment(
    world: tuple[SimulatedAws, list[dict[str, Any]]],
) -> None:
    sim, continued = world
    ship = ship_in_its_termination_wait(sim, image=sim.image(SERVICE, "1.5.0"))

    outcome, _ = release_of(sim, "2.0.0", end_termination_wait=True)

    assert outcome.status == "succeeded", outcome.failure
    assert continued == [
        {"deploymentId": ship.deployment_id, "deploymentWaitType": "TERMINATION_WAIT"}
    ]
    assert ship.status == "Succeeded" and ship.continued_at is not None
    assert sim.live_image(SERVICE) == sim.image(SERVICE, "2.0.0")


def test_without_end_a_release_leaves_a_ships_termination_wait_alone(
    world: tuple[SimulatedAws, list[dict[str, Any]]],
) -> None:
    """The default (`wait`): the group is busy with someone else's deployment, so the
    service fails as for any busy group (README, "A service whose group is busy ...") and
    the ship keeps its termination wait, and with it CodeDeploy's rollback."""
    sim, continued = world
    shipped = sim.image(SERVICE, "1.5.0")
    ship = ship_in_its_termination_wait(sim, image=shipped)

    outcome, _ = release_of(sim, "2.0.0")

    assert outcome.status == "rolled_back" and outcome.failed_item == SERVICE
    assert f"already runs another deployment ({ship.deployment_id})" in (outcome.failure or "")
    assert continued == []
    assert ship.continued_at is None and ship.in_termination_wait
    assert sim.live_image(SERVICE) == shipped


@pytest.mark.parametrize("end", [True, False], ids=["end", "wait"])
def test_a_rollback_redeploy_follows_the_same_rule_during_another_termination_wait(
    world: tuple[SimulatedAws, list[dict[str, Any]]], end: bool
) -> None:
    """After the release finished, a `pulumi up` gives the service more memory (the
    release's image stays) and is still in its termination wait when the release is rolled
    back: the redeploy ends that wait at once with `end`, and waits it out without."""
    sim, continued = world
    outcome, store = release_of(sim, "2.0.0", end_termination_wait=end)
    assert outcome.status == "succeeded", outcome.failure
    sim.clock.sleep(TERMINATION_WAIT_SECONDS)  # the release's own deployment ends
    up = ship_in_its_termination_wait(sim, memory="2048")
    continued.clear()
    asked = sim.clock.time()

    rolled = ReleaseEngine(aws_of(sim), store, config(end_termination_wait=end)).rollback("bad")

    assert rolled.status == "rolled_back"
    assert sim.live_image(SERVICE) == sim.image(SERVICE, "1.0.0")
    assert live_definition(sim, SERVICE)["memory"] == "2048"  # the up's change is kept
    redeploy = next(
        d for d in sim.codedeploy.deployments if d.description.startswith("ecs-delivery rollback")
    )
    if end:
        assert continued == [
            {"deploymentId": up.deployment_id, "deploymentWaitType": "TERMINATION_WAIT"}
        ]
        assert up.continued_at is not None and up.ended is not None
        assert up.ended <= redeploy.created < asked + TERMINATION_WAIT_SECONDS / 2
    else:
        assert continued == [] and up.continued_at is None
        assert up.ended is not None and up.ended <= redeploy.created
        assert up.ended >= up.created + INSTALL_SECONDS + TERMINATION_WAIT_SECONDS


@pytest.mark.parametrize(("flag", "exit_code"), [(["--end-termination-wait"], 0), ([], 1)])
def test_release_apply_ends_a_ships_termination_wait_only_with_end_termination_wait(
    world: tuple[SimulatedAws, list[dict[str, Any]]],
    tmp_path: Path,
    flag: list[str],
    exit_code: int,
) -> None:
    sim, continued = world
    ship = ship_in_its_termination_wait(sim, image=sim.image(SERVICE, "1.5.0"))
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0"))

    code, _, err = run(sim, ["apply", *args, *flag])

    assert code == exit_code, err
    assert len(continued) == (1 if flag else 0)
    assert (ship.continued_at is not None) is bool(flag)


def test_the_cli_help_documents_end_termination_wait(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("apply", "rollback"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        assert "--end-termination-wait" in help_text
        assert "deployment.onTerminationWait: end" in help_text

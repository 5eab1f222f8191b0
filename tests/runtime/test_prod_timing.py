"""Prod's deployment settings on the CodeDeploy simulator's clock (issue 21, problem 8).

Prod shifts web's traffic with a 10 % canary for 5 minutes and api's linearly, 10 % a minute,
then keeps the original tasks for a 60-minute termination wait, during which CodeDeploy keeps
the deployment `InProgress` and the group locked. Every deployer must read "traffic shifted,
termination wait started" as shipped and have a timeout that covers the shift: here a release
of three services and a `pulumi up` rollout run on prod's numbers and succeed. (The pipeline's
two services: tests/components/test_deploy_time_derive.py.)
"""

from __future__ import annotations

import json

import pytest

from ecs_delivery.components import config
from ecs_delivery.offline.codedeploy_sim import CodeDeploySim, lifecycle_of
from ecs_delivery.offline.release_simulator import simulated_aws
from ecs_delivery.offline.simcloud import plain
from ecs_delivery.runtime.clock import ScaledClock
from ecs_delivery.runtime.release.engine import EngineConfig, apply
from ecs_delivery.runtime.release.manifest import load_manifest
from tests.conftest import make_plan
from tests.runtime.release.conftest import aws_of
from tests.runtime.release.test_engine import store_of
from tests.runtime.test_rollout import run
from tests.support.plans import documents, stack_config, stack_value


def prod() -> config.StackConfig:
    return stack_config("prod")


def test_prods_numbers_are_what_the_simulator_runs():
    stack = prod()
    web, api = lifecycle_of(stack, "web"), lifecycle_of(stack, "api")
    assert (web.shift, web.termination_wait_seconds) == (((0.0, 10), (300.0, 100)), 3600.0)
    assert api.shift[-1] == (600.0, 100) and len(api.shift) == 10
    # The plan's expected time until production runs the new revision is the simulator's.
    for name, life in (("web", web), ("api", api)):
        assert life.install_seconds + life.hook_seconds + life.shift_seconds == (
            stack.ships_in_minutes(name) * 60
        )


# The deployment timeout is measured on the scaled clock, so every real second the engine
# spends is SCALE simulated ones. At 2000x prod's 60 minutes were 1.8 s of a loaded CI machine
# and api's 15-minute deployment did not always fit (CI, 2026-12-07); at 250x api's deployment
# lasts 3.6 s and the engine has 10 s of real time to spare.
SCALE = 250.0


def test_a_release_of_three_services_with_prods_settings_succeeds():
    stack = prod()
    lifecycles = {"svc-000": "web", "svc-001": "api", "svc-002": "web"}
    timeout = stack.release.deployment_timeout_minutes * 60
    with simulated_aws(
        ScaledClock(SCALE),
        services=3,
        rule_tasks=0,
        schedule_tasks=0,
        duration=lambda name: lifecycle_of(stack, lifecycles[name]),
        production=True,
        environment="prod",
    ) as sim:
        manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0"), sim.inventory)
        store = store_of(sim, manifest.release_id)
        outcome = apply(
            aws_of(sim),
            store,
            manifest,
            sim.inventory,
            EngineConfig(max_parallel=5, poll_seconds=15.0, deployment_timeout_seconds=timeout),
        )
        assert outcome.status == "succeeded", outcome.failure
        # Each one shipped and is still in its termination wait: the group stays locked.
        deployments = sim.codedeploy.deployments
        assert [d.status for d in deployments] == ["InProgress"] * 3
        assert all(d.in_termination_wait for d in deployments)
        assert {sim.live_image(name) for name in lifecycles} == {
            sim.image(name, "2.0.0") for name in lifecycles
        }


@pytest.fixture
def prod_codedeploy(world, clock) -> CodeDeploySim:
    """The world's group deploys like prod's web, on the test's clock."""
    sim = CodeDeploySim(world.ecs, clock, lifecycle_of(prod(), "web"))
    sim.attach(world.codedeploy)
    sim.observe(world.ecs)
    return sim


def test_a_pulumi_up_rollout_with_prods_settings_succeeds_once_traffic_shifted(
    world, clock, prod_codedeploy: CodeDeploySim
):
    stack = prod()
    template = world.pulumi_registers(memory="1024")
    started = clock.now

    result = run(world, clock, template, timeout_seconds=stack.deployment.timeout_minutes * 60)

    assert result.action == "deployed"
    (deployment,) = prod_codedeploy.deployments
    assert deployment.in_termination_wait  # `up` returns once production runs it
    waited = clock.now - started
    life = lifecycle_of(stack, "web")  # this rollout's AppSpec names no validation hook
    assert life.install_seconds + life.shift_seconds <= waited
    assert waited < stack.ships_in_minutes("web") * 60 < stack.deployment.timeout_minutes * 60


def test_a_second_rollout_during_the_termination_wait_waits_for_it_within_its_timeout(
    world, clock, prod_codedeploy: CodeDeploySim
):
    """The documented choice: a deployment that arrives during another's termination wait
    waits for it; prod's timeout (90 min) covers a shift plus the whole wait."""
    stack = prod()
    run(world, clock, world.pulumi_registers(memory="1024"), timeout_seconds=5400)
    after_first = clock.now

    result = run(world, clock, world.pulumi_registers(memory="2048"), timeout_seconds=5400)

    assert result.action == "deployed"
    first, second = prod_codedeploy.deployments
    assert first.status == "Succeeded" and first.ended <= second.created
    assert clock.now - after_first >= stack.deployment.termination_wait_minutes * 60


def test_a_custom_linear_config_takes_as_long_as_the_predefined_one_of_the_same_steps():
    """The plan counted a custom linear config one interval shorter than the predefined one
    with the same steps (9 minutes for 10 % a minute, against 10)."""
    deployment = config.DeploymentConfig(
        custom_configs={"ten": {"type": "linear", "percent": 10, "interval_minutes": 1}}
    )
    assert deployment.shift_minutes("ten") == deployment.shift_minutes(
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"
    )


def test_with_end_chosen_a_rollout_ends_the_previous_termination_wait_and_ships_at_once(
    world, clock, prod_codedeploy: CodeDeploySim
):
    """`deployment.onTerminationWait: end`: the second rollout ends the first deployment's
    60-minute termination wait with ContinueDeployment instead of waiting it out."""
    stack = prod()
    run(world, clock, world.pulumi_registers(memory="1024"), timeout_seconds=5400)
    after_first = clock.now

    result = run(
        world,
        clock,
        world.pulumi_registers(memory="2048"),
        timeout_seconds=5400,
        end_termination_wait=True,
    )

    assert result.action == "deployed"
    first, second = prod_codedeploy.deployments
    assert first.status == "Succeeded" and first.continued_at == after_first
    assert clock.now - after_first < stack.deployment.termination_wait_minutes * 60
    assert second.in_termination_wait


def test_the_choice_reaches_every_deployer_and_only_then_grants_continue_deployment():
    def granted(plan) -> set[str]:
        return {
            name
            for _, name, document in documents(plan)
            if "codedeploy:ContinueDeployment" in json.dumps(document)
        }

    deployment = stack_value("dev", "deployment")
    waits = make_plan("dev")
    ends = make_plan("dev", overrides={"deployment": {**deployment, "onTerminationWait": "end"}})

    assert granted(waits) == set()
    assert granted(ends) >= {"pipeline-codebuild-deploy", "deployer", "release-steps"}
    steps = [f for f in ends.of_type("aws:lambda/function:Function") if "release" in f.name]
    assert steps and all(
        plain(f.inputs)["environment"]["variables"]["END_TERMINATION_WAIT"] == "true" for f in steps
    )
    rollouts = ends.of_type("pulumi-python:dynamic/rollout:ServiceRollout")
    assert rollouts and all(plain(r.inputs)["end_termination_wait"] is True for r in rollouts)
    deploy_spec = json.dumps(
        [plain(p.inputs) for p in ends.resources if p.name == "pipeline-deploy"]
    )
    assert "--end-termination-wait" in deploy_spec

"""The simulated AWS itself, the client-side pacer, and the benchmark's lower bound."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from ecs_delivery.offline.release_simulator import SimulatedAws, simulated_aws
from ecs_delivery.runtime.codedeploy import appspec, appspec_content
from ecs_delivery.runtime.release.pacing import TokenBucket

REPO = Path(__file__).resolve().parents[3]


class FakeClock:
    """A clock that moves only when told (sleep advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def real_seconds(self, seconds: float) -> float:
        return 0.0


def one_service_sim(clock: FakeClock, **kwargs):  # type: ignore[no-untyped-def]
    """One service, no tasks, on a clock that moves only when the test says so (what the
    test asserts must not depend on how much real time its moto calls took)."""
    return simulated_aws(clock, services=1, rule_tasks=0, schedule_tasks=0, **kwargs)


def test_token_bucket_allows_the_burst_then_one_call_per_interval() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=20, clock=clock)

    assert [bucket.try_acquire() for _ in range(21)] == [True] * 20 + [False]
    clock.now += 1.0
    assert bucket.try_acquire() is True
    assert bucket.try_acquire() is False


def test_token_bucket_acquire_waits_for_the_next_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock)

    bucket.acquire()
    bucket.acquire()

    assert clock.now == pytest.approx(1002.0)


def test_throttled_pacer_halves_its_rate_and_recovers_on_success() -> None:
    bucket = TokenBucket(rate=8.0, burst=2, clock=FakeClock())

    bucket.throttled()
    bucket.throttled()
    assert bucket.rate == 2.0
    for _ in range(20):
        bucket.succeeded()
    assert bucket.rate == 8.0


def _deploy_args(sim: SimulatedAws, service: str, td: str) -> dict:
    target = sim.inventory.services[service]
    return {
        "applicationName": target.codedeploy_application,
        "deploymentGroupName": target.codedeploy_group,
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": appspec_content(appspec(td, "app", 8080)),
        },
        "description": "test",
    }


def test_simulated_deployment_succeeds_after_its_duration_and_switches_the_service() -> None:
    with one_service_sim(FakeClock(), duration=50.0) as sim:
        new_td = sim.raw_ecs.register_task_definition(
            family="dev-svc-000",
            containerDefinitions=[{"name": "app", "image": "x:2", "memory": 128}],
        )["taskDefinition"]["taskDefinitionArn"]
        deployment = sim.clients.codedeploy.create_deployment(
            **_deploy_args(sim, "svc-000", new_td)
        )
        deployment_id = deployment["deploymentId"]

        first = sim.clients.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        assert first["status"] in ("Created", "InProgress")
        assert sim.live_task_definition("svc-000") == sim.task_definitions["svc-000"]
        with pytest.raises(ClientError, match="DeploymentLimitExceeded"):
            sim.clients.codedeploy.create_deployment(**_deploy_args(sim, "svc-000", new_td))

        sim.clock.sleep(60.0)
        done = sim.clients.codedeploy.batch_get_deployments(deploymentIds=[deployment_id])
        assert done["deploymentsInfo"][0]["status"] == "Succeeded"
        assert sim.live_task_definition("svc-000") == new_td


def test_simulated_stop_with_rollback_keeps_the_previous_revision() -> None:
    with one_service_sim(FakeClock(), duration=50.0, stop_seconds=5.0) as sim:
        new_td = sim.raw_ecs.register_task_definition(
            family="dev-svc-000",
            containerDefinitions=[{"name": "app", "image": "x:2", "memory": 128}],
        )["taskDefinition"]["taskDefinitionArn"]
        deployment_id = sim.clients.codedeploy.create_deployment(
            **_deploy_args(sim, "svc-000", new_td)
        )["deploymentId"]

        sim.clients.codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
        sim.clock.sleep(60.0)

        info = sim.clients.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        assert info["status"] == "Stopped" and "rollbackInfo" in info
        assert sim.live_task_definition("svc-000") == sim.task_definitions["svc-000"]
        with pytest.raises(ClientError, match="DeploymentAlreadyCompleted"):
            sim.clients.codedeploy.stop_deployment(deploymentId=deployment_id)


def test_held_deployment_runs_until_released_then_ends_at_its_duration_or_at_once() -> None:
    clock = FakeClock()
    with one_service_sim(clock, duration=50.0) as sim:
        new_td = sim.raw_ecs.register_task_definition(
            family="dev-svc-000",
            containerDefinitions=[{"name": "app", "image": "x:2", "memory": 128}],
        )["taskDefinition"]["taskDefinitionArn"]
        sim.codedeploy.hold("svc-000")
        deployment_id = sim.clients.codedeploy.create_deployment(
            **_deploy_args(sim, "svc-000", new_td)
        )["deploymentId"]

        def status() -> str:
            info = sim.clients.codedeploy.get_deployment(deploymentId=deployment_id)
            return str(info["deploymentInfo"]["status"])

        clock.sleep(500.0)
        assert status() == "InProgress"
        assert sim.live_task_definition("svc-000") == sim.task_definitions["svc-000"]
        released = clock.now
        sim.codedeploy.release("svc-000")
        assert status() == "Succeeded"  # its 50 s had passed: it ends when released
        assert sim.codedeploy.deployments[0].ended == released
        assert sim.live_task_definition("svc-000") == new_td


def test_simulated_codedeploy_refuses_requests_the_real_api_would_refuse(make_sim) -> None:  # type: ignore[no-untyped-def]
    with (
        make_sim(services=1, rule_tasks=0, schedule_tasks=0) as sim,
        pytest.raises(ParamValidationError, match="deploymentIds"),
    ):
        sim.codedeploy.batch_get_deployments(deploymentIds="d-1")  # type: ignore[arg-type]


def test_rate_limited_client_raises_throttling_exception_over_the_rate() -> None:
    with one_service_sim(FakeClock(), limits={"list_clusters": (0.001, 2)}) as sim:
        sim.ecs.list_clusters()
        sim.ecs.list_clusters()
        with pytest.raises(ClientError) as caught:
            sim.ecs.list_clusters()

        assert caught.value.response["Error"]["Code"] == "ThrottlingException"
        assert caught.value.operation_name == "ListClusters"
        assert sim.ecs.throttled["list_clusters"] == 1


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "bench_release", REPO / "bench" / "bench_release.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_lower_bound_is_longest_deployment_plus_what_the_rate_forces() -> None:
    bench = _bench()

    # 25 equal deployments, burst 20 then 1/s: the 25th registration waits 5 s.
    assert bench.lower_bound([300.0] * 25, burst=20, rate=1.0) == 305.0
    # Within the burst only the longest deployment counts.
    assert bench.lower_bound([100.0, 300.0, 200.0], burst=20, rate=1.0) == 300.0
    # Longest first: a long deployment is never placed in a late registration slot.
    assert bench.lower_bound([10.0, 10.0, 50.0], burst=1, rate=1.0) == 50.0

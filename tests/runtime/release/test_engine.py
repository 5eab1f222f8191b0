"""The release engine against the simulated AWS (moto + simulated CodeDeploy)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from typing import Any

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws, SimulatedCrash, client_error
from ecs_delivery.runtime.release.engine import (
    Event,
    ReleaseEngine,
    ReleaseInputError,
    ReleaseStopped,
    apply,
)
from ecs_delivery.runtime.release.live import Aws
from ecs_delivery.runtime.release.manifest import load_manifest
from ecs_delivery.runtime.release.state import StateStore

from .conftest import aws_of, config


def store_of(sim: SimulatedAws, release_id: str) -> StateStore:
    return StateStore(sim.clients.s3, sim.bucket, release_id, sim.clock)


def release(sim: SimulatedAws, text: str, **overrides: Any):
    manifest = load_manifest(text, sim.inventory)
    store = store_of(sim, manifest.release_id)
    outcome = apply(aws_of(sim), store, manifest, sim.inventory, config(**overrides))
    return outcome, store


def originals(sim: SimulatedAws) -> dict[str, str]:
    return {name: sim.task_definitions[name] for name in sim.inventory.services}


def live(sim: SimulatedAws) -> dict[str, str]:
    return {name: sim.live_task_definition(name) for name in sim.inventory.services}


def sim_services(count: int, first: int = 0) -> list[str]:
    return [f"svc-{i:03d}" for i in range(first, count)]


def forward_deployments(sim: SimulatedAws) -> list[Any]:
    return [d for d in sim.codedeploy.deployments if d.task_definition != originals(sim)[d.service]]


def test_release_of_all_services_deploys_each_once_and_keeps_pulumi_owned_fields(
    sim: SimulatedAws,
) -> None:
    outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0"))

    assert outcome.status == "succeeded" and outcome.exit_code == 0
    assert {n: sim.live_image(n) for n in sim.inventory.services} == {
        n: sim.image(n, "2.0.0") for n in sim.inventory.services
    }
    assert set(sim.codedeploy.created_per_service().values()) == {1}
    assert len(sim.codedeploy.created_per_service()) == 20
    before = sim.raw_ecs.describe_task_definition(taskDefinition=sim.task_definitions["svc-003"])
    after = sim.raw_ecs.describe_task_definition(
        taskDefinition=sim.live_task_definition("svc-003"), include=["TAGS"]
    )
    old, new = before["taskDefinition"], after["taskDefinition"]
    for field in ("cpu", "memory", "executionRoleArn", "networkMode"):
        assert new[field] == old[field]
    old_container, new_container = old["containerDefinitions"][0], new["containerDefinitions"][0]
    assert {k: v for k, v in new_container.items() if k != "image"} == {
        k: v for k, v in old_container.items() if k != "image"
    }
    assert {"key": "ecs-delivery:release", "value": "dev-r1"} in after["tags"]
    assert store.load().status == "succeeded"


def test_unchanged_services_are_skipped_and_a_no_op_release_deploys_nothing(
    sim: SimulatedAws,
) -> None:
    release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]))
    outcome, store = release(sim, sim.manifest_yaml("r2", "2.0.0", services=["svc-000", "svc-001"]))

    assert outcome.status == "no_changes" and outcome.exit_code == 0
    assert store.load() is None
    assert sum(sim.codedeploy.created_per_service().values()) == 2


def test_one_failing_service_rolls_every_service_and_task_back_to_its_previous_revision(
    sim: SimulatedAws,
) -> None:
    sim.codedeploy.fail("svc-007")
    # svc-007 and every service after it run until released or stopped. With 8 in flight,
    # svc-008..014 can start only once svc-000..006 are deployed, and then every slot is
    # taken: svc-007 fails at that point, whatever the start threads' timing.
    sim.codedeploy.hold("svc-007", *sim_services(20, first=8))
    second_wave = set(sim_services(15))

    def fail_svc_007_once_the_second_wave_runs(info: dict[str, Any]) -> None:
        if {d.service for d in sim.codedeploy.deployments} == second_wave:
            sim.codedeploy.release("svc-007")

    sim.codedeploy.on_create = fail_svc_007_once_the_second_wave_runs
    tasks = {
        "job-00": {"followsService": "svc-001", "command": ["run", "--fast"]},
        "job-01": {"image": sim.image("job-01", "2.0.0"), "schedule": "rate(2 hours)"},
    }
    before_rule = sim.task_trigger("job-00")
    before_schedule = sim.clients.scheduler.get_schedule(Name="dev-job-01")

    outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0", tasks=tasks), max_parallel=8)

    assert outcome.status == "rolled_back" and outcome.exit_code == 1
    assert outcome.failed_item == "svc-007"
    assert "svc-007" in outcome.failure or "HEALTH_CONSTRAINTS" in outcome.failure
    assert live(sim) == originals(sim)
    assert sim.task_trigger("job-00") == before_rule
    after_schedule = sim.clients.scheduler.get_schedule(Name="dev-job-01")
    assert after_schedule["Target"] == before_schedule["Target"]
    assert after_schedule["ScheduleExpression"] == "rate(1 hour)"
    state = store.load()
    assert state.status == "rolled_back"
    rollbacks = {n: s.rollback for n, s in state.services.items()}
    assert rollbacks == {n: "rolled_back" for n in second_wave} | {
        n: "not_needed" for n in sim_services(20, first=15)
    }
    # Every forward deployment that succeeded was redeployed to its previous revision, once;
    # in-flight ones were stopped; the failed one was rolled back by CodeDeploy; the rest
    # never started.
    forward = forward_deployments(sim)
    assert {d.service for d in forward} == second_wave
    assert {d.service for d in forward if d.status == "Succeeded"} == set(sim_services(7))
    assert sim.codedeploy.created_per_service(rollbacks=True) == {n: 1 for n in sim_services(7)}
    assert {d.service for d in forward if d.status == "Stopped" and d.auto_rollback} == set(
        sim_services(15, first=8)
    )
    assert state.tasks["job-00"].rollback == "not_needed"


def test_task_update_failure_rolls_back_services_and_restores_updated_tasks(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # job-01's schedule names its family: its update is the registration of its new revision.
    real_register = sim.clients.ecs.register_task_definition
    calls: list[dict[str, Any]] = []

    def fail_first_job_01_registration(**kwargs: Any) -> Any:
        if kwargs["family"] == "dev-job-01":
            calls.append(kwargs)
            if len(calls) == 1:
                raise RuntimeError("simulated ECS outage")
        return real_register(**kwargs)

    monkeypatch.setattr(sim.clients.ecs, "register_task_definition", fail_first_job_01_registration)
    before_rule = sim.task_trigger("job-00")
    before_image = sim.raw_ecs.describe_task_definition(taskDefinition="dev-job-01")[
        "taskDefinition"
    ]["containerDefinitions"][0]["image"]
    before_schedule = sim.task_trigger("job-01")
    tasks = {"job-00": {"followsService": "svc-000"}, "job-01": {"followsService": "svc-001"}}

    outcome, store = release(
        sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(3), tasks=tasks)
    )

    assert outcome.status == "rolled_back" and outcome.failed_item == "job-01"
    assert "simulated ECS outage" in outcome.failure
    state = store.load()
    assert (
        state.tasks["job-00"].status == "updated"
        and state.tasks["job-00"].rollback == "rolled_back"
    )
    assert sim.task_trigger("job-00") == before_rule
    assert sim.task_trigger("job-01") == before_schedule
    newest = sim.raw_ecs.describe_task_definition(taskDefinition="dev-job-01")["taskDefinition"]
    assert newest["containerDefinitions"][0]["image"] == before_image
    assert live(sim) == originals(sim)


def test_in_flight_deployments_are_stopped_with_rollback(sim: SimulatedAws) -> None:
    sim.codedeploy.fail("svc-000")  # fails at half its duration
    sim.codedeploy.hold(*sim_services(5, first=1))  # the others run until stopped
    outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(5)))

    assert outcome.status == "rolled_back"
    stopped = [d for d in sim.codedeploy.deployments if d.status == "Stopped"]
    assert {d.service for d in stopped} == set(sim_services(5, first=1))
    assert all(d.auto_rollback for d in stopped)
    state = store.load()
    assert {d.service for d in stopped} == {
        n
        for n, s in state.services.items()
        if s.rollback == "rolled_back" and s.status == "deploying"
    }
    assert live(sim) == originals(sim)


def test_failed_rollback_ends_rollback_failed_with_exit_code_3(sim: SimulatedAws) -> None:
    sim.codedeploy.fail("svc-004")
    sim.codedeploy.failing_rollbacks.add("svc-001")
    # One at a time: svc-000..003 are deployed before svc-004 starts and fails; svc-001's
    # redeploy then fails.
    outcome, store = release(
        sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(5)), max_parallel=1
    )

    assert outcome.status == "rollback_failed" and outcome.exit_code == 3
    state = store.load()
    assert state.services["svc-001"].rollback == "failed"
    assert "simulated failure of svc-001" in state.services["svc-001"].rollback_error
    others = {n: s.rollback for n, s in state.services.items() if n != "svc-001"}
    assert set(others.values()) == {"rolled_back"}
    assert {n: sim.live_task_definition(n) for n in others} == {
        n: sim.task_definitions[n] for n in others
    }


def test_scheduled_task_following_a_service_gets_the_services_new_image(
    sim: SimulatedAws,
) -> None:
    tasks = {"job-00": {"followsService": "svc-003"}, "job-01": {"followsService": "svc-004"}}
    outcome, _ = release(sim, sim.manifest_yaml("r1", "3.1.4", tasks=tasks))

    assert outcome.status == "succeeded"
    assert sim.task_image("job-00") == sim.image("svc-003", "3.1.4") == sim.live_image("svc-003")
    assert sim.task_image("job-01") == sim.image("svc-004", "3.1.4")
    # The rest of the trigger (network, role, overrides) is kept.
    target = sim.task_trigger("job-00")
    assert (
        target["EcsParameters"]["NetworkConfiguration"]["awsvpcConfiguration"]["AssignPublicIp"]
        == "DISABLED"
    )
    assert json.loads(target["Input"]) == {
        "containerOverrides": [{"name": "job", "command": ["run"]}]
    }


def test_task_following_a_service_outside_the_release_takes_its_live_image(
    sim: SimulatedAws,
) -> None:
    outcome, _ = release(
        sim,
        sim.manifest_yaml(
            "r1", "2.0.0", services=["svc-000"], tasks={"job-00": {"followsService": "svc-009"}}
        ),
    )
    assert outcome.status == "succeeded"
    assert sim.task_image("job-00") == sim.image("svc-009", "1.0.0")


def test_killed_run_repeated_deploys_nothing_twice(sim: SimulatedAws) -> None:
    created: list[str] = []
    lock = threading.Lock()  # hooks run on the start threads, several at once

    def crash_after_six(info: dict[str, Any]) -> None:
        with lock:
            created.append(info["service"])
            sixth = len(created) == 6
        if sixth:
            # Dies after CodeDeploy accepted the deployment, before the id was recorded.
            raise SimulatedCrash()

    sim.codedeploy.on_create = crash_after_six
    text = sim.manifest_yaml("r1", "2.0.0")
    with pytest.raises(SimulatedCrash):
        release(sim, text, max_parallel=8)
    sim.codedeploy.on_create = None
    state = store_of(sim, "dev-r1").load()
    assert state.status == "running"
    assert "starting" in {s.status for s in state.services.values()}

    outcome, _ = release(sim, text, max_parallel=8)

    assert outcome.status == "succeeded"
    assert sim.codedeploy.created_per_service() == {n: 1 for n in sim.inventory.services}
    assert {n: sim.live_image(n) for n in sim.inventory.services} == {
        n: sim.image(n, "2.0.0") for n in sim.inventory.services
    }


def test_a_crashed_release_resumes_after_an_edit_that_changes_nothing_deployable(
    sim: SimulatedAws,
) -> None:
    """Issue 21, problem 7: a crashed release could not be resumed once someone added a
    comment to its manifest ("already exists with a different manifest")."""

    def crash_on_the_first(info: dict[str, Any]) -> None:
        sim.codedeploy.on_create = None
        raise SimulatedCrash()

    sim.codedeploy.on_create = crash_on_the_first
    text = sim.manifest_yaml("r1", "2.0.0", services=sim_services(2))
    with pytest.raises(SimulatedCrash):
        release(sim, text, max_parallel=1)

    edited = "# approved by the release manager\n" + text.replace("services:", "services:  \n", 1)
    outcome, _ = release(sim, edited, max_parallel=1)

    assert outcome.status == "succeeded"
    assert sim.codedeploy.created_per_service() == {"svc-000": 1, "svc-001": 1}


def test_stop_request_rolls_back_and_a_repeated_run_does_not_deploy_again(
    sim: SimulatedAws,
) -> None:
    import threading

    stop = threading.Event()
    sim.codedeploy.on_create = lambda info: (
        stop.set() if len(sim.codedeploy.deployments) >= 5 else None
    )
    manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0"), sim.inventory)
    store = store_of(sim, manifest.release_id)
    outcome = apply(aws_of(sim), store, manifest, sim.inventory, config(max_parallel=5), stop=stop)

    assert outcome.status == "rolled_back"
    assert outcome.failure == "stopped by request"
    assert live(sim) == originals(sim)
    deployed_once = sim.codedeploy.created_per_service()
    with pytest.raises(ReleaseInputError, match="was rolled back"):
        apply(aws_of(sim), store_of(sim, "dev-r1"), manifest, sim.inventory, config())
    assert sim.codedeploy.created_per_service() == deployed_once


def test_rollback_interrupted_by_a_crash_resumes_without_redeploying_twice(
    sim: SimulatedAws,
) -> None:
    # Five at a time: svc-005 starts only once one of svc-000..004 is deployed, so the
    # rollback has at least one redeploy to crash in.
    sim.codedeploy.fail("svc-005")

    def crash_on_first_rollback(info: dict[str, Any]) -> None:
        if info["taskDefinition"] == sim.task_definitions[info["service"]]:
            sim.codedeploy.on_create = None
            raise SimulatedCrash()

    sim.codedeploy.on_create = crash_on_first_rollback
    text = sim.manifest_yaml("r1", "2.0.0", services=sim_services(6))
    with pytest.raises(SimulatedCrash):
        release(sim, text, max_parallel=5)
    assert store_of(sim, "dev-r1").load().status == "rolling_back"

    outcome = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config()).run()

    assert outcome.status == "rolled_back"
    assert live(sim) == originals(sim)
    redeployed = sim.codedeploy.created_per_service(rollbacks=True)
    assert redeployed and set(redeployed.values()) == {1}


class FirstAttemptsThrottled:
    """Answers every odd call of chosen operations with ThrottlingException.

    Counted, not timed: a rate limit in simulated time stops throttling on a loaded machine,
    where every call takes longer (20 simulated seconds are 20 ms of real time).
    """

    def __init__(self, client: Any, operations: set[str]) -> None:
        self._client = client
        self._operations = operations
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._operations:
            return attribute

        def throttled(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                refused = self.calls[name] % 2 == 1
                self.throttled[name] += refused
            if refused:
                operation = "".join(part.capitalize() for part in name.split("_"))
                raise client_error("ThrottlingException", "Rate exceeded", operation)
            return attribute(*args, **kwargs)

        return throttled


def test_throttling_is_survived_with_backoff(make_sim: Any) -> None:
    with make_sim(services=10) as sim:
        throttled_release(sim)


def throttled_release(sim: SimulatedAws) -> None:
    ecs = FirstAttemptsThrottled(
        sim.clients.ecs,
        {"register_task_definition", "describe_task_definition", "describe_services"},
    )
    codedeploy = FirstAttemptsThrottled(
        sim.clients.codedeploy, {"create_deployment", "batch_get_deployments"}
    )
    aws = Aws(dataclasses.replace(sim.clients, ecs=ecs, codedeploy=codedeploy), sim.clock)
    manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0"), sim.inventory)

    # Every refused registration halves the engine's pace; start fast so the test stays short.
    fast = config(register_rate=1000.0, register_burst=20)

    outcome = apply(aws, store_of(sim, manifest.release_id), manifest, sim.inventory, fast)

    assert outcome.status == "succeeded", outcome.failure
    for client in (ecs, codedeploy):
        assert set(client.throttled) == client._operations
        assert all(client.throttled[op] > 0 for op in client._operations)
    assert sim.codedeploy.created_per_service() == {n: 1 for n in sim.inventory.services}
    assert {n: sim.live_image(n) for n in sim.inventory.services} == {
        n: sim.image(n, "2.0.0") for n in sim.inventory.services
    }


def test_registrations_are_paced_to_the_rate_instead_of_throttled(make_sim: Any) -> None:
    with make_sim(services=12, limits={"register_task_definition": (20.0, 4)}) as sim:
        outcome, _ = release(
            sim, sim.manifest_yaml("r1", "2.0.0"), register_rate=20.0, register_burst=4
        )

        assert outcome.status == "succeeded"
        assert sim.ecs.calls["register_task_definition"] == 12
        assert sim.ecs.throttled["register_task_definition"] == 0


def test_same_release_name_with_a_different_manifest_is_refused(sim: SimulatedAws) -> None:
    release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    with pytest.raises(ReleaseInputError, match="already exists .* with a different manifest"):
        release(sim, sim.manifest_yaml("r1", "2.0.1", services=["svc-000"]))


def test_state_records_previous_and_new_revisions_and_deployment_ids(sim: SimulatedAws) -> None:
    release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-002"]))
    raw = sim.clients.s3.get_object(Bucket=sim.bucket, Key="releases/dev-r1/state.json")
    state = json.loads(raw["Body"].read())

    service = state["services"]["svc-002"]
    assert service["previous_td"] == sim.task_definitions["svc-002"]
    assert service["new_td"] == sim.live_task_definition("svc-002")
    assert service["deployment_id"].startswith("d-SIM")
    assert service["status"] == "deployed"
    assert state["status"] == "succeeded"


def test_rollback_requested_by_a_person_mid_release_is_noticed_by_the_runner(
    sim: SimulatedAws,
) -> None:
    # svc-000 finishes; every later deployment runs until stopped. Three at a time, svc-003
    # starts only once svc-000 is deployed, and once svc-001..003 are recorded deploying
    # every slot stays taken and the runner has nothing left to write. The person asks
    # then: what follows depends on the engine alone, not on how fast the start threads ran
    # (counting deployments from inside CreateDeployment raced with them), and only the
    # runner's own re-read of the state can reveal the request.
    sim.codedeploy.hold(*sim_services(20, first=1))
    first_four = set(sim_services(4))
    deploying: set[str] = set()
    asked: list[str] = []
    lock = threading.Lock()

    def person_asks_for_rollback(event: Event) -> None:
        if event.kind != "service" or event.status != "deploying":
            return
        with lock:
            deploying.add(event.name)
            if asked or deploying != first_four:
                return
            asked.append(event.name)
        person = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config())
        person.start_rollback("rollback requested by a person")

    manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0"), sim.inventory)
    store = store_of(sim, manifest.release_id)
    outcome = apply(
        aws_of(sim),
        store,
        manifest,
        sim.inventory,
        config(max_parallel=3),
        on_event=person_asks_for_rollback,
    )

    assert asked
    assert outcome.status == "rolled_back"
    assert outcome.failure == "rollback requested by a person"
    # Nothing started after the request.
    assert sim.codedeploy.created_per_service() == {n: 1 for n in first_four}
    # The runner acted on the request itself (no deployment of its failed or timed out): it
    # stopped the three in flight and redeployed the one that had finished.
    state = store.load()
    assert {n: state.services[n].status for n in first_four} == {
        "svc-000": "deployed",
        "svc-001": "deploying",
        "svc-002": "deploying",
        "svc-003": "deploying",
    }
    assert {
        d.service for d in forward_deployments(sim) if d.status == "Stopped" and d.auto_rollback
    } == set(sim_services(4, first=1))
    assert sim.codedeploy.created_per_service(rollbacks=True) == {"svc-000": 1}
    assert live(sim) == originals(sim)


def test_rollback_waits_for_a_busy_deployment_group_then_redeploys_once(sim: SimulatedAws) -> None:
    from ecs_delivery.runtime.codedeploy import appspec, appspec_content

    release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    target = sim.inventory.services["svc-000"]
    # Someone else's deployment holds the group when the rollback starts.
    sim.codedeploy.create_deployment(
        applicationName=target.codedeploy_application,
        deploymentGroupName=target.codedeploy_group,
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": appspec_content(
                appspec(sim.live_task_definition("svc-000"), "app", 8080)
            ),
        },
        description="someone else",
    )

    outcome = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config()).rollback()

    assert outcome.status == "rolled_back"
    assert sim.live_task_definition("svc-000") == sim.task_definitions["svc-000"]
    assert sim.codedeploy.created_per_service(rollbacks=True) == {"svc-000": 1}
    ours = [
        d for d in sim.codedeploy.deployments if d.description.startswith("ecs-delivery rollback")
    ]
    other = [d for d in sim.codedeploy.deployments if d.description == "someone else"]
    assert ours[0].created >= other[0].ended


def test_a_transient_error_during_rollback_is_retried(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    sim.codedeploy.fail("svc-001")
    sim.codedeploy.hold("svc-000", "svc-002")  # in flight when svc-001 fails: stopped
    real_stop = sim.codedeploy.stop_deployment
    failures: list[str] = []

    def flaky_stop(**kwargs: Any) -> Any:
        if not failures:
            failures.append(kwargs["deploymentId"])
            raise ClientError(
                {"Error": {"Code": "InternalFailure", "Message": "x"}}, "StopDeployment"
            )
        return real_stop(**kwargs)

    monkeypatch.setattr(sim.codedeploy, "stop_deployment", flaky_stop)
    outcome, _ = release(sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(3)))

    assert failures and outcome.status == "rolled_back"
    assert {n: sim.live_task_definition(n) for n in sim_services(3)} == {
        n: sim.task_definitions[n] for n in sim_services(3)
    }


def test_deployment_past_its_timeout_is_stopped_and_the_service_keeps_its_previous_revision(
    sim: SimulatedAws,
) -> None:
    sim.codedeploy.hold("svc-000")  # CodeDeploy would finish it later, on its own
    outcome, _ = release(
        sim,
        sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]),
        deployment_timeout_seconds=30.0,
    )

    assert outcome.status == "rolled_back" and outcome.failed_item == "svc-000"
    assert "did not finish within 30 s" in outcome.failure
    [late] = forward_deployments(sim)
    assert late.status == "Stopped" and late.auto_rollback
    # A stopped deployment can no longer switch the service to the new revision.
    sim.codedeploy.release("svc-000")
    assert live(sim) == originals(sim)
    assert sim.codedeploy.created_per_service(rollbacks=True) == {}


def test_start_that_failed_after_codedeploy_accepted_it_is_stopped_by_the_rollback(
    sim: SimulatedAws,
) -> None:
    sim.codedeploy.hold("svc-001")

    def response_lost(info: dict[str, Any]) -> None:
        if info["service"] == "svc-001" and info["taskDefinition"] != originals(sim)["svc-001"]:
            # CodeDeploy created the deployment; its answer never reached the engine.
            raise ConnectionResetError("connection reset after CreateDeployment was accepted")

    sim.codedeploy.on_create = response_lost
    outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(3)))

    assert outcome.status == "rolled_back" and outcome.failed_item == "svc-001"
    assert "connection reset" in outcome.failure
    [unrecorded] = [d for d in forward_deployments(sim) if d.service == "svc-001"]
    assert unrecorded.status == "Stopped" and unrecorded.auto_rollback
    assert store.load().services["svc-001"].rollback == "rolled_back"
    sim.codedeploy.release("svc-001")
    assert live(sim) == originals(sim)


def test_resumed_start_that_was_never_deployed_is_not_deployed_after_a_rollback_request(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = sim.codedeploy.create_deployment

    def crash_before_creating(**kwargs: Any) -> Any:
        raise SimulatedCrash()  # the run dies after claiming svc-000, before deploying it

    monkeypatch.setattr(sim.codedeploy, "create_deployment", crash_before_creating)
    with pytest.raises(SimulatedCrash):
        release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    monkeypatch.setattr(sim.codedeploy, "create_deployment", real_create)
    runner = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config())
    assert runner.store.state.services["svc-000"].status == "starting"
    # A person asks for the rollback after the resumed runner read the state.
    person = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config())
    person.start_rollback("rollback requested by a person")

    with pytest.raises(ReleaseStopped):
        runner.start_service("svc-000")

    assert sim.codedeploy.deployments == []
    assert runner.drive_rollback().status == "rolled_back"
    assert live(sim) == originals(sim)


def test_start_whose_revision_was_registered_before_a_rollback_request_is_not_deployed(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_register = sim.raw_ecs.register_task_definition

    def person_asks_while_svc_001_registers(**kwargs: Any) -> Any:
        if kwargs["family"] == "dev-svc-001":
            person = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config())
            person.start_rollback("rollback requested by a person")
        return real_register(**kwargs)

    monkeypatch.setattr(
        sim.raw_ecs, "register_task_definition", person_asks_while_svc_001_registers
    )
    # One at a time: svc-001 registers after svc-000 is deployed, and its claim comes after
    # the request, whether or not the runner's loop has seen the request yet.
    outcome, store = release(
        sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(3)), max_parallel=1
    )

    assert outcome.status == "rolled_back"
    assert outcome.failure == "rollback requested by a person"
    assert sim.codedeploy.created_per_service() == {"svc-000": 1}
    assert sim.codedeploy.created_per_service(rollbacks=True) == {"svc-000": 1}
    assert store.load().services["svc-001"].rollback == "not_needed"
    assert live(sim) == originals(sim)


# --- field ownership at deploy time: what runs is read right before each registration ------


def pulumi_ships(sim: SimulatedAws, service: str, memory: str, register: Any = None) -> str:
    """A `pulumi up` rollout of `service` finishes: a revision with more memory now runs."""
    target = sim.inventory.services[service]
    described = sim.raw_ecs.describe_task_definition(
        taskDefinition=sim.live_task_definition(service)
    )["taskDefinition"]
    container = described["containerDefinitions"][0]
    arn = (register or sim.raw_ecs.register_task_definition)(
        family=described["family"],
        requiresCompatibilities=described["requiresCompatibilities"],
        networkMode=described["networkMode"],
        cpu=described["cpu"],
        memory=memory,
        executionRoleArn=described["executionRoleArn"],
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    sim.land(target, arn)
    return str(arn)


def pulumi_ships_after_the_first_registration(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Right after the engine registers svc-000's revision, Pulumi's rollout of svc-000
    (2048 MiB) finishes; returns the list that receives Pulumi's revision."""
    real_register = sim.raw_ecs.register_task_definition
    shipped: list[str] = []

    def register_then_pulumi_ships(**kwargs: Any) -> Any:
        response = real_register(**kwargs)
        if kwargs["family"] == "dev-svc-000" and not shipped:
            shipped.append(pulumi_ships(sim, "svc-000", memory="2048", register=real_register))
        return response

    monkeypatch.setattr(sim.raw_ecs, "register_task_definition", register_then_pulumi_ships)
    return shipped


def live_memory(sim: SimulatedAws, service: str) -> str:
    td = sim.raw_ecs.describe_task_definition(taskDefinition=sim.live_task_definition(service))
    return str(td["taskDefinition"]["memory"])


def test_a_pulumi_change_shipped_after_the_plan_is_kept_by_the_release(sim: SimulatedAws) -> None:
    shipped: list[str] = []

    def pulumi_ships_svc_001_while_svc_000_deploys(info: dict[str, Any]) -> None:
        if info["service"] == "svc-000" and not shipped:
            shipped.append(pulumi_ships(sim, "svc-001", memory="1024"))

    sim.codedeploy.on_create = pulumi_ships_svc_001_while_svc_000_deploys
    # One at a time: svc-001 registers after the change, long after the release was planned.
    outcome, store = release(
        sim, sim.manifest_yaml("r1", "2.0.0", services=sim_services(2)), max_parallel=1
    )

    assert outcome.status == "succeeded"
    assert (live_memory(sim, "svc-001"), sim.live_image("svc-001")) == (
        "1024",
        sim.image("svc-001", "2.0.0"),
    )
    # A rollback of this release would go back to what ran right before it: Pulumi's revision.
    assert store.load().services["svc-001"].previous_td == shipped[0]
    assert sim.codedeploy.created_per_service() == {"svc-000": 1, "svc-001": 1}


def test_a_change_shipped_between_registration_and_the_deployment_lock_is_merged_again(
    racing_sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = racing_sim
    shipped = pulumi_ships_after_the_first_registration(sim, monkeypatch)
    outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))

    assert outcome.status == "succeeded"
    # The first deployment would have undone Pulumi's change: it was stopped before traffic
    # moved, and the merge was made again on the revision that ran then.
    first, second = [d for d in sim.codedeploy.deployments if d.service == "svc-000"]
    assert first.status == "Stopped" and first.auto_rollback
    assert second.status == "Succeeded"
    assert (live_memory(sim, "svc-000"), sim.live_image("svc-000")) == (
        "2048",
        sim.image("svc-000", "2.0.0"),
    )
    state = store.load().services["svc-000"]
    assert state.previous_td == shipped[0]
    assert (state.new_td, state.deployment_id) == (second.task_definition, second.deployment_id)


def test_a_service_whose_revision_keeps_changing_fails_clearly_and_nothing_of_ours_runs(
    racing_sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = racing_sim
    real_register = sim.raw_ecs.register_task_definition
    shipped: list[str] = []

    def pulumi_ships_after_every_registration(**kwargs: Any) -> Any:
        response = real_register(**kwargs)
        if kwargs["family"] == "dev-svc-000":
            memory = str(1024 * (len(shipped) + 1))
            shipped.append(pulumi_ships(sim, "svc-000", memory=memory, register=real_register))
        return response

    monkeypatch.setattr(
        sim.raw_ecs, "register_task_definition", pulumi_ships_after_every_registration
    )
    outcome, store = release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))

    assert outcome.status == "rolled_back" and outcome.failed_item == "svc-000"
    assert "changed while this release deployed it" in outcome.failure
    deployments = [d for d in sim.codedeploy.deployments if d.service == "svc-000"]
    assert len(deployments) == 3 and all(
        d.status == "Stopped" and d.auto_rollback for d in deployments
    )
    # The rollback redeploys nothing: Pulumi's last revision keeps running.
    assert sim.live_task_definition("svc-000") == shipped[-1]
    assert store.load().services["svc-000"].rollback == "not_needed"


def test_a_resumed_release_whose_crashed_deployment_already_succeeded_deploys_nothing_twice(
    sim: SimulatedAws,
) -> None:
    def crash_after_codedeploy_accepted(info: dict[str, Any]) -> None:
        sim.codedeploy.on_create = None
        raise SimulatedCrash()  # the id never reaches the state

    sim.codedeploy.on_create = crash_after_codedeploy_accepted
    text = sim.manifest_yaml("r1", "2.0.0", services=["svc-000"])
    with pytest.raises(SimulatedCrash):
        release(sim, text)
    [crashed] = sim.codedeploy.deployments
    sim.clock.sleep(crashed.duration + 1.0)  # it finishes while nobody watches
    assert sim.codedeploy.deployments[0].status == "Succeeded"
    assert store_of(sim, "dev-r1").load().services["svc-000"].status == "starting"

    outcome, store = release(sim, text)

    assert outcome.status == "succeeded"
    assert sim.codedeploy.created_per_service() == {"svc-000": 1}
    assert store.load().services["svc-000"].deployment_id == crashed.deployment_id
    assert sim.live_image("svc-000") == sim.image("svc-000", "2.0.0")


def test_the_rollback_deploys_nothing_while_codedeploys_automatic_rollback_holds_the_group(
    sim: SimulatedAws,
) -> None:
    release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    # An alarm fired after the release finished: CodeDeploy rolls the service back itself,
    # and that automatic rollback deployment still holds the group.
    sim.codedeploy.hold("svc-000")
    automatic = sim.codedeploy.automatic_rollback("svc-000", sim.task_definitions["svc-000"])
    engine = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config())
    engine.start_rollback("rollback requested by a person")
    for _ in range(3):  # the group stays held: every step waits and deploys nothing
        assert engine.rollback_step() == "rolling_back"
        sim.clock.sleep(5.0)
    sim.codedeploy.release("svc-000")
    outcome = engine.drive_rollback()

    assert outcome.status == "rolled_back"
    assert sim.codedeploy.get_deployment(deploymentId=automatic)["deploymentInfo"]["creator"] == (
        "codeDeployRollback"
    )
    ours = [
        d for d in sim.codedeploy.deployments if d.description.startswith("ecs-delivery rollback")
    ]
    assert ours == []
    assert sim.live_task_definition("svc-000") == sim.task_definitions["svc-000"]


def test_a_service_running_its_template_revision_is_released_into_its_own_family(
    sim: SimulatedAws,
) -> None:
    # A brand-new service runs the revision Pulumi registered in its template family.
    described = sim.raw_ecs.describe_task_definition(taskDefinition=sim.task_definitions["svc-000"])
    original = described["taskDefinition"]
    template = sim.raw_ecs.register_task_definition(
        family="dev-svc-000-template",
        requiresCompatibilities=original["requiresCompatibilities"],
        networkMode=original["networkMode"],
        cpu=original["cpu"],
        memory=original["memory"],
        containerDefinitions=original["containerDefinitions"],
    )["taskDefinition"]["taskDefinitionArn"]
    target = sim.inventory.services["svc-000"]
    sim.land(target, template)
    inventory = sim.inventory.model_copy(
        update={"services": {"svc-000": target.model_copy(update={"task_family": "dev-svc-000"})}}
    )
    manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]), inventory)

    outcome = apply(aws_of(sim), store_of(sim, "dev-r1"), manifest, inventory, config())

    assert outcome.status == "succeeded"
    live_td = sim.raw_ecs.describe_task_definition(
        taskDefinition=sim.live_task_definition("svc-000")
    )
    assert live_td["taskDefinition"]["family"] == "dev-svc-000"
    assert live_td["taskDefinition"]["memory"] == original["memory"]


def test_a_run_that_dies_while_stopping_its_conflicting_deployment_rolls_back_to_pulumis_revision(
    sim: SimulatedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = pulumi_ships_after_the_first_registration(sim, monkeypatch)
    real_stop = sim.codedeploy.stop_deployment

    def stop_then_die(**kwargs: Any) -> Any:
        real_stop(**kwargs)
        raise SimulatedCrash()

    monkeypatch.setattr(sim.codedeploy, "stop_deployment", stop_then_die)
    with pytest.raises(SimulatedCrash):
        release(sim, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    monkeypatch.setattr(sim.codedeploy, "stop_deployment", real_stop)

    outcome = ReleaseEngine(aws_of(sim), store_of(sim, "dev-r1"), config()).rollback()

    assert outcome.status == "rolled_back"
    assert sim.live_task_definition("svc-000") == shipped[0]
    assert live_memory(sim, "svc-000") == "2048"
    assert sim.codedeploy.created_per_service(rollbacks=True) == {}


def test_a_second_runner_of_one_release_is_refused_naming_the_first_and_changes_nothing(
    sim: SimulatedAws,
) -> None:
    """Issue 21, problem 6: an operator's `release apply` and the release pipeline running
    the same release both created deployments; the loser failed on the busy group and rolled
    the good release back. The first runner now holds a lease in the state."""
    from ecs_delivery.runtime.release.engine import LEASE_SECONDS, ReleaseBusyError, prepare

    manifest = load_manifest(sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]), sim.inventory)
    first = ReleaseEngine(aws_of(sim), store_of(sim, manifest.release_id), config(), owner="ci")
    _, plan = prepare(aws_of(sim), first.store, manifest, sim.inventory)
    first.begin(plan)
    # The pipeline's run is under way. Its lease is ten times the usual length: at this test's
    # 1000x clock the usual 300 s last 0.3 real seconds, which a loaded machine can outlive
    # before the second runner looks.
    held = 10 * LEASE_SECONDS
    first.take_lease(seconds=held)

    second = ReleaseEngine(aws_of(sim), store_of(sim, manifest.release_id), config(), owner="op")
    with pytest.raises(ReleaseBusyError, match="is being run by ci .*--take-over"):
        second.run()
    assert sim.codedeploy.deployments == []
    assert store_of(sim, manifest.release_id).load().status == "running"

    # A dead runner's lease ends; then (or with take_over) another runner finishes it.
    sim.clock.sleep(held + 1)
    assert second.run().status == "succeeded"
    assert store_of(sim, manifest.release_id).load().lease is None
    assert sim.codedeploy.created_per_service() == {"svc-000": 1}

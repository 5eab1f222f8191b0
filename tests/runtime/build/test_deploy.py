"""`python -m ecs_delivery.runtime.build deploy`: the pipeline's ship, through runtime.rollout, on moto.

moto keeps deployments `Created` and has no StopDeployment: the one CodeDeploy simulator
(ecs_delivery.offline.codedeploy_sim, answering the real boto3 client) runs each deployment's
lifecycle on a virtual clock the deploy step waits on too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from buildtest_support import ACCOUNT, CLUSTER, FAMILY, LIVE_IMAGE, REGION, SERVICE, Deployed

from ecs_delivery.offline.codedeploy_sim import (
    CodeDeploySim,
    create_group,
    on_virtual_time,
    switch_primary,
)
from ecs_delivery.runtime import build
from ecs_delivery.runtime.build import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ecs_delivery.runtime.live import running_task_definition
from ecs_delivery.runtime.promotion import new_record, write_record_file
from ecs_delivery.runtime.taskdef import describe, images_of, register_fields

APPLICATION, GROUP, HOOK = "dev", "web", "dev-validation-hook"
SHIPPED = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@sha256:" + "2" * 64


@pytest.fixture
def codedeploy(deployed: Deployed) -> Any:
    client = boto3.client("codedeploy", region_name=REGION)
    client.create_application(applicationName=APPLICATION, computePlatform="ECS")
    create_group(client, APPLICATION, GROUP, CLUSTER, SERVICE)
    return client


@pytest.fixture
def simulated(
    ecs: Any, codedeploy: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CodeDeploySim]:
    """The CLI's clients are these moto clients, CodeDeploy answered by the simulator."""
    clients = {"ecs": ecs, "codedeploy": codedeploy}
    monkeypatch.setattr(build, "_client", lambda service, region: clients[service])
    with on_virtual_time(ecs, codedeploy) as sim:
        yield sim


def _args(*image: str) -> list[str]:
    return [
        "deploy",
        "--name", "web",
        "--cluster", CLUSTER,
        "--service", SERVICE,
        "--container", "app",
        "--container-port", "8080",
        "--family", FAMILY,
        "--application", APPLICATION,
        "--group", GROUP,
        "--validation-hook", HOOK,
        "--timeout-minutes", "5",
        *(image or ("--image-uri", SHIPPED)),
    ]  # fmt: skip


def _record_file(tmp_path: Path, images: dict[str, dict[str, str]]) -> Path:
    """The promotion record the Build wrote: `images` service -> container -> digest URI."""
    from datetime import UTC, datetime

    record = new_record(
        source_stack="dev",
        commit="0123456789abcdef",
        images=images,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return write_record_file(record, tmp_path / "promotion.json")


def _running(ecs: Any) -> dict[str, Any]:
    service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    return describe(ecs, running_task_definition(service))["taskDefinition"]


def _task_fields(task_definition: dict[str, Any]) -> dict[str, Any]:
    """What a revision says outside its containers (cpu, memory, roles, family...)."""
    identity = {"taskDefinitionArn", "revision", "registeredAt", "registeredBy"}
    return {
        k: v
        for k, v in task_definition.items()
        if k not in identity and k != "containerDefinitions"
    }


def test_deploy_ships_only_the_image_and_keeps_every_other_field_of_what_runs(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, capsys
) -> None:
    before = describe(ecs, deployed.task_definition_arn)["taskDefinition"]

    assert main(_args()) == EXIT_OK

    after = _running(ecs)
    assert images_of(after) == {**images_of(before), "app": SHIPPED}  # the sidecar keeps its own
    assert _task_fields(after) == _task_fields(before)
    for old, new in zip(before["containerDefinitions"], after["containerDefinitions"], strict=True):
        assert {**old, "image": None} == {**new, "image": None}
    (deployment,) = simulated.completed
    spec = simulated.deployment(deployment).appspec
    assert spec["Hooks"] == [{"AfterAllowTestTraffic": HOOK}]
    properties = spec["Resources"][0]["TargetService"]["Properties"]
    assert properties == {
        "TaskDefinition": after["taskDefinitionArn"],
        "LoadBalancerInfo": {"ContainerName": "app", "ContainerPort": 8080},
    }  # what runs reports no network or platform here: the AppSpec names none
    assert f"deployment {deployment} succeeded" in capsys.readouterr().out


def test_deploy_takes_the_image_from_the_promotion_record(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, tmp_path: Path
) -> None:
    path = _record_file(tmp_path, {"web": {"app": SHIPPED}})

    assert main(_args("--record", str(path))) == EXIT_OK

    assert images_of(_running(ecs))["app"] == SHIPPED


def test_deploy_ships_every_image_the_record_names_for_the_service_in_one_deployment(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, tmp_path: Path, capsys
) -> None:
    """A sidecar the repository builds (`sidecars.otel.build`, `--sidecar otel`) is in the
    record beside the service's image: both ship in the same deployment, every other field
    is kept."""
    built = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web/otel@sha256:" + "7" * 64
    before = describe(ecs, deployed.task_definition_arn)["taskDefinition"]
    path = _record_file(tmp_path, {"web": {"app": SHIPPED, "otel": built}})

    assert main(_args("--record", str(path), "--sidecar", "otel")) == EXIT_OK

    after = _running(ecs)
    assert images_of(after) == {"app": SHIPPED, "otel": built}
    assert _task_fields(after) == _task_fields(before)
    assert len(simulated.completed) == 1
    assert f"and {built} to its sidecar otel" in capsys.readouterr().out


def test_a_sidecar_the_record_has_no_image_of_keeps_what_it_runs(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, tmp_path: Path, capsys
) -> None:
    before = images_of(describe(ecs, deployed.task_definition_arn)["taskDefinition"])
    path = _record_file(tmp_path, {"web": {"app": SHIPPED}})

    assert main(_args("--record", str(path), "--sidecar", "otel")) == EXIT_OK

    assert images_of(_running(ecs)) == {**before, "app": SHIPPED}
    assert "no image of sidecar otel; it keeps its own" in capsys.readouterr().out


def test_a_pulumi_rollout_landing_just_before_the_ship_takes_the_lock_is_not_reverted(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim
) -> None:
    """The old Derive + CodeDeployToECS window: what runs changes after it was read."""
    landed: list[str] = []

    def pulumi_up_lands(_params: dict[str, Any]) -> None:
        if landed:
            return
        now = describe(ecs, deployed.task_definition_arn)["taskDefinition"]
        request = {k: now[k] for k in register_fields() & set(now)}
        request["memory"] = "2048"
        arn = ecs.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
        switch_primary(ecs, CLUSTER, SERVICE, arn)
        landed.append(arn)

    simulated.before_create = pulumi_up_lands

    assert main(_args()) == EXIT_OK

    after = _running(ecs)
    assert (after["memory"], images_of(after)["app"]) == ("2048", SHIPPED)
    assert len(simulated.stopped) == 1  # the stale merge was stopped before traffic moved


def test_an_image_that_already_runs_starts_no_deployment(
    deployed: Deployed, simulated: CodeDeploySim, capsys
) -> None:
    assert main(_args("--image-uri", LIVE_IMAGE)) == EXIT_OK

    assert simulated.deployments == []
    assert "already runs" in capsys.readouterr().out


def test_a_tag_reference_is_refused_before_any_call(simulated, capsys) -> None:
    assert main(_args("--image-uri", "123.dkr.ecr.eu-west-1.amazonaws.com/web:abc")) == EXIT_FAILED

    assert "is not a digest reference" in capsys.readouterr().err
    assert simulated.deployments == []


def test_a_missing_service_exits_1_with_one_line_naming_it(
    ecs: Any, codedeploy: Any, simulated, capsys
) -> None:
    ecs.delete_service(cluster=CLUSTER, service=SERVICE, force=True)

    assert main(_args()) == EXIT_FAILED

    err = capsys.readouterr().err
    assert err.startswith(f"error: {CLUSTER}/{SERVICE}: ECS service ")
    assert len(err.strip().splitlines()) == 1


def test_a_container_not_in_the_revision_is_refused_naming_the_known_ones(simulated, capsys):
    args = _args()
    args[args.index("--container") + 1] = "nope"

    assert main(args) == EXIT_FAILED

    assert "known: app, otel" in capsys.readouterr().err


def test_a_deployment_codedeploy_fails_exits_1_naming_it_and_nothing_moved(
    deployed: Deployed, ecs: Any, codedeploy: Any, simulated: CodeDeploySim, capsys
) -> None:
    simulated.fail(SERVICE)

    assert main(_args()) == EXIT_FAILED

    (deployment_id,) = [d.deployment_id for d in simulated.deployments]
    err = capsys.readouterr().err
    assert f"CodeDeploy deployment {deployment_id} (group dev/web) ended Failed" in err
    assert _running(ecs)["taskDefinitionArn"] == deployed.task_definition_arn


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--timeout-minutes", "0"), "--timeout-minutes: 0 must be at least 1"),
        (("--container-port", "70000"), "70000 is not a port number"),
    ],
)
def test_bad_arguments_are_usage_errors(change, message, capsys) -> None:
    args = _args()
    args[args.index(change[0]) + 1] = change[1]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_deploy_needs_an_image_source(capsys) -> None:
    args = _args()[:-2]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == EXIT_USAGE
    assert "one of the arguments --record --image-uri is required" in capsys.readouterr().err


def test_json_of_a_failed_record_lookup_names_the_service(tmp_path: Path, simulated, capsys):
    (tmp_path / "promotion.json").write_text(json.dumps({"not": "a record"}))

    assert main(_args("--record", str(tmp_path / "promotion.json"))) == EXIT_FAILED

    assert capsys.readouterr().err.startswith("error: ")


def test_a_ship_that_outlives_its_timeout_says_to_rerun_the_pipeline_stage_not_pulumi_up(
    deployed: Deployed, ecs: Any, codedeploy: Any
) -> None:
    # moto (without the simulation) keeps deployments `Created`: one that never finishes.
    target = build.ShipTarget(
        cluster=CLUSTER,
        service=SERVICE,
        family=FAMILY,
        application=APPLICATION,
        deployment_group=GROUP,
        container_name="app",
        container_port=8080,
    )

    with pytest.raises(build.BuildError) as raised:
        build.ship(ecs, codedeploy, target, SHIPPED, timeout_seconds=0.2, poll_seconds=0.05)

    message = str(raised.value)
    assert "did not finish within" in message
    assert "pulumi up" not in message
    assert "re-run this pipeline's deploy stage (Retry in the CodePipeline console)" in message
    assert "aws deploy get-deployment --deployment-id " in message


TASK_FAMILY = "dev-report"


def _register_task(ecs: Any, image: str, **overrides: Any) -> str:
    """A follower task's revision as Pulumi registers it: its own container and command."""
    return ecs.register_task_definition(
        family=TASK_FAMILY,
        cpu="256",
        memory="512",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        containerDefinitions=[
            {"name": "report", "image": image, "essential": True, "command": ["report"]}
        ],
        **overrides,
    )["taskDefinition"]["taskDefinitionArn"]


def test_a_ship_moves_its_follower_tasks_onto_the_image_keeping_their_own_fields(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, capsys
) -> None:
    _register_task(ecs, LIVE_IMAGE)

    assert main([*_args(), "--task", f"{TASK_FAMILY}=report"]) == EXIT_OK

    newest = describe(ecs, TASK_FAMILY)["taskDefinition"]
    assert newest["revision"] == 2
    assert images_of(newest) == {"report": SHIPPED}
    assert newest["containerDefinitions"][0]["command"] == ["report"]
    assert newest["memory"] == "512"
    assert f"{TASK_FAMILY}: follows web; its next run starts" in capsys.readouterr().out
    # Run again (the pipeline's retry): nothing new is deployed or registered.
    assert main([*_args(), "--task", f"{TASK_FAMILY}=report"]) == EXIT_OK
    assert describe(ecs, TASK_FAMILY)["taskDefinition"]["revision"] == 2
    assert f"{TASK_FAMILY}: already runs {SHIPPED}" in capsys.readouterr().out


def test_a_follower_without_a_revision_yet_is_left_to_pulumi_up(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, capsys
) -> None:
    assert main([*_args(), "--task", f"{TASK_FAMILY}=report"]) == EXIT_OK
    assert f"{TASK_FAMILY}: no revision yet; `pulumi up` registers it" in capsys.readouterr().out


def test_a_follower_without_the_named_container_fails_after_the_ship_naming_it(
    deployed: Deployed, ecs: Any, simulated: CodeDeploySim, capsys
) -> None:
    _register_task(ecs, LIVE_IMAGE)

    assert main([*_args(), "--task", f"{TASK_FAMILY}=reporter"]) == EXIT_FAILED

    err = capsys.readouterr().err
    assert f"task {TASK_FAMILY}: images: container 'reporter' is not in" in err
    assert "run the Deploy action again" in err
    assert _running(ecs)["containerDefinitions"][0]["image"] == SHIPPED  # the ship stands
    assert describe(ecs, TASK_FAMILY)["taskDefinition"]["revision"] == 1


@pytest.mark.parametrize("task", ["report", "dev-report=", "=report", "dev report=report"])
def test_a_malformed_task_argument_is_a_usage_error_before_any_call(task, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*_args(), "--task", task])
    assert exited.value.code == EXIT_USAGE
    assert "expected FAMILY=CONTAINER" in capsys.readouterr().err

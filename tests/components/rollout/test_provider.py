"""ecs_delivery.components.rollout: the dynamic provider as plain Python against moto, and its resource."""

from __future__ import annotations

import base64
import json
import pickle

import dill
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from ecs_delivery.components.rollout import (
    ServiceRollout,
    ServiceRolloutArgs,
    ServiceRolloutProvider,
)
from ecs_delivery.runtime.rollout import ServiceStateError
from ecs_delivery.runtime.taskdef import describe


def props_for(world, task_definition_arn: str, **overrides) -> dict:
    """Provider properties as the engine hands them over (numbers arrive as floats)."""
    props = {
        "__provider": "serialized-provider",
        "cluster_name": world.cluster,
        "service_name": world.service,
        "template_arn": task_definition_arn,
        "family": world.family,
        "application_name": world.application,
        "deployment_group_name": world.group,
        "container_name": world.container,
        "container_port": float(world.port),
        "subnets": None,
        "security_groups": None,
        "assign_public_ip": False,
        "platform_version": None,
        "pinned_images": {},
        "promotion": None,
        "region": world.region,
        "profile": None,
        "role_arn": None,
        "wait": False,
        "timeout_minutes": 60.0,
        "running_task_definition_arn": None,
        "running_images": None,
        "last_deployment_id": None,
        "action": None,
    }
    props.update(overrides)
    return props


def stored(props: dict, **outputs) -> dict:
    """Old outputs as the state holds them after a create/update."""
    return {**props, **outputs}


BASE = {
    "cluster_name": "dev-cluster",
    "service_name": "dev-web",
    "template_arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/dev-web-template:3",
    "family": "dev-web",
    "application_name": "dev-web",
    "deployment_group_name": "dev-web",
    "container_name": "app",
    "container_port": 8080.0,
    "region": "eu-west-1",
    "profile": None,
    "role_arn": None,
    "wait": True,
    "timeout_minutes": 60.0,
}


@pytest.mark.parametrize(
    "change",
    [
        {"region": "eu-central-1"},
        {"profile": "other"},
        {"role_arn": "arn:aws:iam::123456789012:role/other"},
        {"wait": False, "timeout_minutes": 5.0},
        {"container_port": 8080},
        # A record from before `engine` existed was a CodeDeploy rollout (issue 19).
        {"engine": "codedeploy"},
    ],
)
def test_diff_reports_no_change_for_settings_only(change):
    diff = ServiceRolloutProvider().diff("id", dict(BASE), {**BASE, **change})

    assert diff.changes is False
    assert diff.replaces == []


@pytest.mark.parametrize(
    "change",
    [
        {"template_arn": BASE["template_arn"].replace(":3", ":4")},
        {"template_arn": rpc.UNKNOWN},
        {"subnets": ["subnet-a", "subnet-b", "subnet-c"]},
        {"pinned_images": {"app": "registry/app@sha256:" + "1" * 64}},
        {"promotion": {"release": "3f9c2a1", "images": {"app": "registry/app@sha256:" + "2" * 64}}},
        {"container_name": "proxy"},
        {"container_port": 9090.0},
        {"deployment_group_name": "dev-web-2"},
        {"engine": "ecs"},
    ],
)
def test_diff_reports_an_update_without_replacement_for_rollout_inputs(change):
    diff = ServiceRolloutProvider().diff("id", dict(BASE), {**BASE, **change})

    assert diff.changes is True
    assert diff.replaces == []


def _provider_pickled_from(module: str) -> str:
    """A provider serialized while its class lived in `module` (which then disappears)."""
    import sys
    import types

    moved = type("ServiceRolloutProvider", (ServiceRolloutProvider,), {"__module__": module})
    names = [module.rsplit(".", i)[0] for i in range(module.count(".") + 1)]
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    sys.modules[module].ServiceRolloutProvider = moved
    try:
        return base64.b64encode(pickle.dumps(moved())).decode()
    finally:
        for name in names:
            del sys.modules[name]


def test_diff_updates_a_stored_provider_whose_module_is_gone_so_destroy_can_load_it():
    """Stacks made before the ecs_delivery package stored `components.rollout`'s provider."""
    current = serialize_provider(ServiceRolloutProvider())
    olds = {**BASE, "__provider": _provider_pickled_from("components.rollout")}

    moved = ServiceRolloutProvider().diff("id", olds, {**BASE, "__provider": current})
    same = ServiceRolloutProvider().diff(
        "id", {**BASE, "__provider": current}, {**BASE, "__provider": current}
    )

    assert (moved.changes, moved.replaces) == (True, [])
    assert (same.changes, same.replaces) == (False, [])


def test_diff_replaces_the_record_when_the_service_changes():
    diff = ServiceRolloutProvider().diff("id", dict(BASE), {**BASE, "service_name": "dev-api"})

    assert diff.changes is True
    assert diff.replaces == ["service_name"]


def test_create_for_a_new_service_starts_no_deployment(world):
    result = ServiceRolloutProvider().create(props_for(world, world.first_revision))

    assert result.id == f"{world.cluster}/{world.service}"
    assert result.outs["action"] == "none-service-new"
    assert result.outs["running_task_definition_arn"] == world.first_revision
    assert result.outs["last_deployment_id"] is None
    assert "__provider" not in result.outs
    assert world.deployments() == []


def test_update_rolls_out_a_memory_change_against_moto(world):
    shipped = world.pipeline_ships(world.pipeline_image)
    olds = stored(props_for(world, shipped), action="none-same-content")
    template = world.pulumi_registers(memory="1024")

    result = ServiceRolloutProvider().update("id", olds, props_for(world, template))

    (deployment_id,) = world.deployments()
    assert result.outs["action"] == "started"
    assert result.outs["last_deployment_id"] == deployment_id
    assert result.outs["running_task_definition_arn"] == shipped
    (merged,) = [arn for arn in world.revisions() if arn != shipped]
    assert merged in world.appspec_of(deployment_id)


def test_update_with_content_equal_to_what_runs_keeps_the_last_deployment_id(world):
    world.pipeline_ships(world.pipeline_image)
    same = world.pulumi_registers()
    olds = stored(props_for(world, world.first_revision), last_deployment_id="d-EARLIER1")

    result = ServiceRolloutProvider().update("id", olds, props_for(world, same))

    assert result.outs["action"] == "none-same-content"
    assert result.outs["last_deployment_id"] == "d-EARLIER1"
    assert world.deployments() == []


def test_update_acts_in_the_region_from_its_inputs_not_the_shell(world, monkeypatch):
    # The shell points at eu-west-1, where the service exists; the stack says us-east-1.
    monkeypatch.setenv("AWS_DEFAULT_REGION", world.region)
    props = props_for(world, world.first_revision, region="us-east-1")

    with pytest.raises(ServiceStateError, match="not found"):
        ServiceRolloutProvider().update("id", props, props)


def test_update_assumes_the_role_from_its_inputs(world):
    role = "arn:aws:iam::123456789012:role/dev-deployer"
    props = props_for(world, world.first_revision, role_arn=role)

    result = ServiceRolloutProvider().update("id", props, props)

    assert result.outs["action"] == "none-service-new"


def test_delete_leaves_the_service_and_deployments_alone(world):
    ServiceRolloutProvider().delete(
        f"{world.cluster}/{world.service}", props_for(world, world.first_revision)
    )

    service = world.ecs.describe_services(cluster=world.cluster, services=[world.service])
    assert service["services"][0]["status"] == "ACTIVE"
    assert world.deployments() == []


def test_check_reports_a_bad_port_as_a_failure_on_that_property():
    result = ServiceRolloutProvider().check({}, {**BASE, "container_port": 70000.0})

    assert [(f.property, f.reason) for f in result.failures] == [
        ("container_port", "70000.0 must be an integer 1-65535")
    ]


def test_provider_pickles_with_pickle_and_with_pulumis_serializer():
    provider = ServiceRolloutProvider()

    assert isinstance(pickle.loads(pickle.dumps(provider)), ServiceRolloutProvider)
    restored = dill.loads(base64.b64decode(serialize_provider(provider)))
    assert isinstance(restored, ServiceRolloutProvider)
    assert vars(provider) == {}  # no clients, sessions or credentials ride along


def test_args_reject_a_bad_timeout_naming_the_field():
    with pytest.raises(ValueError, match="timeout_minutes: 0 must be a whole number >= 1"):
        ServiceRolloutArgs(
            cluster_name="c",
            service_name="s",
            template_arn="arn:aws:ecs:eu-west-1:1:task-definition/s-template:1",
            family="s",
            application_name="a",
            deployment_group_name="g",
            container_name="app",
            container_port=8080,
            region="eu-west-1",
            timeout_minutes=0,
        )


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def mocks():
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, preview=False)
    return recording


def test_service_rollout_registers_a_dynamic_resource_with_its_inputs(mocks):
    rollout = ServiceRollout(
        "web-rollout",
        ServiceRolloutArgs(
            cluster_name="dev-cluster",
            service_name="dev-web",
            template_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/dev-web-template:3",
            family="dev-web",
            application_name="dev-web",
            deployment_group_name="dev-web",
            container_name="app",
            container_port=8080,
            region="eu-west-1",
            role_arn="arn:aws:iam::123456789012:role/dev-deployer",
        ),
    )

    @pulumi.runtime.test
    def check():
        def verify(_):
            (registered,) = mocks.resources
            assert registered.typ == "pulumi-python:dynamic/rollout:ServiceRollout"
            inputs = registered.inputs
            assert inputs["template_arn"].endswith("dev-web-template:3")
            assert inputs["family"] == "dev-web"
            assert inputs["container_port"] == 8080
            assert inputs["region"] == "eu-west-1"
            assert inputs["role_arn"] == "arn:aws:iam::123456789012:role/dev-deployer"
            assert inputs["wait"] is True
            assert inputs["timeout_minutes"] == 60
            assert "__provider" in inputs

        return rollout.urn.apply(verify)

    check()


@pytest.mark.parametrize(
    ("action", "changes"),
    [("started", True), ("failed", True), ("deployed", False), ("none-same-content", False)],
)
def test_diff_reports_a_change_while_the_last_started_deployment_is_unconfirmed(action, changes):
    diff = ServiceRolloutProvider().diff("id", {**BASE, "action": action}, dict(BASE))

    assert diff.changes is changes
    assert diff.replaces == []


def test_a_committed_promotion_is_applied_once_and_then_leaves_newer_ships_alone(world):
    promoted = f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web@sha256:{'f' * 64}"
    promotion = {"release": "3f9c2a1", "images": {world.container: promoted}}
    news = props_for(world, world.first_revision, promotion=promotion)

    first = ServiceRolloutProvider().update("id", props_for(world, world.first_revision), news)

    assert first.outs["action"] == "started"  # the new release goes out
    (deployment_id,) = world.deployments()
    assert promoted in json.dumps(
        [describe(world.ecs, a)["taskDefinition"] for a in world.revisions()]
    )

    # CodeDeploy finishes it (moto never does), then prod's pipeline ships something newer;
    # the promotion stays committed in the stack file.
    from moto.backends import get_backend

    get_backend("codedeploy")[world.account][world.region].deployments[
        deployment_id
    ].status = "Succeeded"
    newer = world.pipeline_ships(world.pipeline_image)
    olds = stored(news, action="deployed", last_deployment_id=first.outs["last_deployment_id"])
    again = ServiceRolloutProvider().update("id", olds, news)

    assert again.outs["action"] == "none-same-content"
    assert world.running() == newer
    assert world.deployments() == [deployment_id]


def test_update_after_an_unconfirmed_start_does_not_start_a_second_deployment(world):
    template = world.pulumi_registers(memory="1024")
    first = ServiceRolloutProvider().update(
        "id", props_for(world, world.first_revision), props_for(world, template)
    )
    olds = stored(
        props_for(world, template),
        action=first.outs["action"],
        last_deployment_id=first.outs["last_deployment_id"],
    )

    # moto keeps the first deployment in progress: the next `up` sees it still running.
    again = ServiceRolloutProvider().update("id", olds, props_for(world, template))

    assert again.outs["action"] == "started"
    assert again.outs["last_deployment_id"] == first.outs["last_deployment_id"]
    assert len(world.deployments()) == 1


def test_read_reports_what_runs_and_how_the_started_deployment_ended(world):
    shipped = world.pipeline_ships(world.pipeline_image)
    props = stored(
        props_for(world, world.first_revision), action="started", last_deployment_id="d-FAILED001"
    )
    # Stubber for CodeDeploy: moto cannot make a deployment fail.
    from botocore.stub import Stubber

    import ecs_delivery.components.rollout as rollout_component

    real_client = rollout_component.client
    codedeploy = real_client("codedeploy", None)
    stubber = Stubber(codedeploy)
    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": "d-FAILED001", "status": "Failed"}},
        {"deploymentId": "d-FAILED001"},
    )

    def client(service, session=None, region=None):
        return codedeploy if service == "codedeploy" else real_client(service, session, region)

    rollout_component.client = client
    try:
        with stubber:
            result = ServiceRolloutProvider().read("id", props)
    finally:
        rollout_component.client = real_client

    assert result.outs["running_task_definition_arn"] == shipped
    assert result.outs["running_images"] == {world.container: world.pipeline_image}
    assert result.outs["action"] == "failed"
    assert (
        ServiceRolloutProvider()
        .diff("id", result.outs, props_for(world, world.first_revision))
        .changes
    )


def test_the_provider_assumes_the_role_it_is_given(world):
    from moto.backends import get_backend

    role = f"arn:aws:iam::{world.account}:role/dev-deployer"
    props = props_for(world, world.first_revision, role_arn=role)

    ServiceRolloutProvider().update("id", props, props)

    assumed = get_backend("sts")[world.account]["aws"].assumed_roles
    assert [r.role_arn for r in assumed] == [role]
    assert assumed[0].session_name == "ecs-delivery"


def test_the_serialized_provider_loads_and_diffs_in_a_fresh_process_like_the_engines_host():
    """The engine's provider host is a separate Python started in the project directory, with
    no test sys.path tweaks: the pickled provider must import from there."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    serialized = serialize_provider(ServiceRolloutProvider())
    script = (
        "import base64, json, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.readline()))\n"
        "olds = json.loads(sys.stdin.readline())\n"
        "diff = provider.diff('id', olds, {**olds, 'template_arn': olds['template_arn'] + '0'})\n"
        "print(type(provider).__module__, diff.changes, diff.replaces)\n"
    )
    result = subprocess.run(
        # -I: no PYTHONPATH or user site; the host runs `python -m ...`, which puts its working
        # directory (the project root) first on sys.path, as the inserted '' does here.
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, ''); exec({script!r})"],
        input=f"{serialized}\n{json.dumps(BASE)}\n",
        capture_output=True,
        text=True,
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ecs_delivery.components.rollout", "True", "[]"]


def test_a_recreated_rollout_record_does_not_apply_a_committed_promotion_over_a_newer_ship(world):
    """Issue 21, problem 4: a `ServiceRollout` created anew (state rebuilt, `pulumi state
    delete`, a rename without alias) counted the committed `promoteRelease` as new and
    deployed its digests over newer ships, while the preview said the running image stays."""
    promoted = f"{world.account}.dkr.ecr.{world.region}.amazonaws.com/web@sha256:{'f' * 64}"
    promotion = {"release": "3f9c2a1", "images": {world.container: promoted}}
    newer = world.pipeline_ships(world.pipeline_image)

    created = ServiceRolloutProvider().create(
        props_for(world, world.first_revision, promotion=promotion)
    )

    assert created.outs["action"] == "none-same-content"
    assert world.running() == newer
    assert world.deployments() == []

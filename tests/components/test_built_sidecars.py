"""Sidecars the repository builds (issue 18, item 1: "one image per container the repository
builds"), planned under the mock runtime: each gets its own ECR repository, the pipeline builds
and records it with the service's image, and its image is the deployer's, as the service's own
is: Pulumi declares it only when pinned or promoted, so a ship changes no resource input."""

from __future__ import annotations

import json

import pytest
import yaml

from ecs_delivery.components.config import ConfigError
from ecs_delivery.runtime.taskdef import BOOTSTRAP_LABEL
from tests.conftest import make_plan, upstream_outputs
from tests.support.plans import buildspec, stack_value
from tests.support.registrations import containers, policy

ROLLOUT = "pulumi-python:dynamic/rollout:ServiceRollout"
REPOSITORY = "aws:ecr/repository:Repository"
ACCOUNT = "123456789012"
OWN = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"
BOOTSTRAP = "public.ecr.aws/docker/library/busybox:1.36"
READY = ["CMD-SHELL", "wget -q -O /dev/null http://localhost:9901/ready || exit 1"]
WEB = f"{OWN}/web@sha256:{'1' * 64}"
API = f"{OWN}/api@sha256:{'2' * 64}"
PROXY_V1 = f"{OWN}/web/proxy@sha256:{'5' * 64}"
PROXY_V2 = f"{OWN}/web/proxy@sha256:{'6' * 64}"


def _services(**proxy) -> dict:
    """dev's services, web with a `proxy` sidecar built from `proxy/` that web waits for."""
    services = stack_value("dev", "services")
    web = services["web"]
    web["sidecars"] = {
        "proxy": {
            "build": {"context": "proxy"},
            "essential": True,
            "portMappings": [9901],
            "containerHealthCheck": {"command": READY},
            **proxy,
        }
    }
    web["dependsOn"] = {"proxy": "HEALTHY"}
    return {"services": services}


def _running(proxy: str) -> dict:
    """What runs: web with its built proxy, and this stack's last outputs naming the proxy."""
    workers = {"mailer": {"containers": {"mailer": f"{OWN}/mailer@sha256:{'3' * 64}"}}}
    last = {"liveImages": {"web": {"web": {"image": WEB}, "proxy": {"image": proxy}}}}
    return {
        "services": {
            "web": {"containers": {"web": WEB, "proxy": proxy}},
            "api": {"containers": {"api": API}},
            **workers,
        },
        "stacks": {"dev": last},
    }


def _container(plan, service: str, name: str) -> dict:
    (found,) = [c for c in containers(plan, service) if c["name"] == name]
    return found


def _resources(plan) -> list[tuple]:
    from ecs_delivery.offline.simcloud import plain

    return sorted(
        (r.urn, json.dumps(plain(r.inputs), sort_keys=True), json.dumps(r.options, sort_keys=True))
        for r in plan.resources
    )


@pytest.fixture(scope="module")
def fresh():
    return make_plan("dev", overrides=_services())


def test_a_built_sidecar_gets_its_own_repository_beside_the_services(fresh):
    names = sorted(r.inputs["name"] for r in fresh.of_type(REPOSITORY))
    assert names == [
        "ecs-delivery-dev/api",
        "ecs-delivery-dev/mailer",
        "ecs-delivery-dev/web",
        "ecs-delivery-dev/web/proxy",
    ]
    assert sorted(fresh.outputs["ecrRepositoryArns"]) == ["api", "mailer", "web", "web/proxy"]


def test_the_build_builds_pushes_and_records_the_sidecar_with_the_service(fresh):
    phases = buildspec(fresh)["phases"]
    build = "\n".join(phases["build"]["commands"])
    post = "\n".join(phases["post_build"]["commands"])
    proxy = f"{OWN}/web/proxy:"
    assert f'docker build --tag {proxy}"$IMAGE_TAG" --file proxy/Dockerfile' in build
    assert f'docker push {proxy}"$IMAGE_TAG"' in post
    record = [c for c in phases["post_build"]["commands"] if "promotion-record" in c]
    assert len(record) == 1
    assert f'--image web/proxy={proxy}"$IMAGE_TAG"' in record[0]
    assert f'--image web/web={OWN}/web:"$IMAGE_TAG"' in record[0]


def test_the_deploy_ships_the_sidecar_from_the_record_with_the_service(fresh):
    deploy = yaml.safe_load(
        [
            p
            for p in fresh.of_type("aws:codebuild/project:Project")
            if p.inputs["name"] == "ecs-delivery-dev-deploy"
        ][0].inputs["source"]["buildspec"]
    )
    commands = "\n".join(deploy["phases"]["build"]["commands"])
    web = [c for c in commands.splitlines() if "--name web " in c]
    assert len(web) == 1 and web[0].endswith("--sidecar proxy")
    assert "--sidecar" not in "".join(c for c in commands.splitlines() if "--name api " in c)


def test_until_its_first_ship_a_built_sidecar_sleeps_on_the_bootstrap_image(fresh):
    proxy = _container(fresh, "web", "proxy")
    assert proxy["image"] == BOOTSTRAP
    assert proxy["entryPoint"] == ["sleep", "2147483647"]
    assert proxy["dockerLabels"] == {BOOTSTRAP_LABEL: "sidecar"}
    # Asleep, it has no health check: web waits for its START instead of its HEALTHY.
    assert "healthCheck" not in proxy
    assert {"containerName": "proxy", "condition": "START"} in _container(fresh, "web", "web")[
        "dependsOn"
    ]
    assert fresh.outputs["liveImages"]["web"]["proxy"] == {
        "image": BOOTSTRAP,
        "source": "bootstrap",
    }
    # The deployer's: no rollout pins it, so each rollout keeps what runs.
    assert "proxy" not in fresh.named(ROLLOUT, "web-rollout").inputs["pinned_images"]


def test_a_running_built_sidecar_keeps_its_health_check_and_what_it_runs_is_exported():
    plan = make_plan("dev", environment=_running(PROXY_V1), overrides=_services())
    proxy = _container(plan, "web", "proxy")
    assert proxy["healthCheck"]["command"] == READY
    assert "entryPoint" not in proxy
    assert {"containerName": "proxy", "condition": "HEALTHY"} in _container(plan, "web", "web")[
        "dependsOn"
    ]
    assert plan.outputs["liveImages"]["web"]["proxy"] == {"image": PROXY_V1, "source": "live"}
    assert plan.outputs["imageResolution"]["web"]["proxy"]["now"] == PROXY_V1


def test_a_pipeline_ship_of_a_built_sidecar_changes_no_resource_input_only_outputs():
    before = make_plan("dev", environment=_running(PROXY_V1), overrides=_services())
    after = make_plan("dev", environment=_running(PROXY_V2), overrides=_services())

    assert _resources(before) == _resources(after)
    assert after.outputs["liveImages"]["web"]["proxy"]["image"] == PROXY_V2


def test_a_pinned_built_sidecar_goes_to_every_rollout_as_a_pin():
    plan = make_plan("dev", environment=_running(PROXY_V1), overrides=_services(image=PROXY_V2))
    assert plan.named(ROLLOUT, "web-rollout").inputs["pinned_images"]["proxy"] == PROXY_V2
    assert _container(plan, "web", "proxy")["image"] == PROXY_V2
    assert plan.outputs["liveImages"]["web"]["proxy"] == {"image": PROXY_V2, "source": "pinned"}


def test_the_execution_role_may_pull_the_sidecar_from_its_own_repository(fresh):
    pull = {s["Sid"]: s for s in policy(fresh, "web-execution")["Statement"]}["EcrPull"]
    assert (
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/ecs-delivery-dev/web/proxy"
        in (pull["Resource"])
    )


def test_a_sidecar_with_neither_image_nor_build_is_refused_naming_the_key():
    services = _services()
    del services["services"]["web"]["sidecars"]["proxy"]["build"]
    with pytest.raises(ConfigError) as caught:
        make_plan("dev", overrides=services)
    assert "services.web.sidecars.proxy.image" in str(caught.value)
    assert "give `build`" in str(caught.value)


# --- promotion downstream ------------------------------------------------------------------

UPSTREAM = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"
RELEASE = "3f9c2a1"
PROMOTED_PROXY = f"{UPSTREAM}/web/proxy@sha256:{'f' * 64}"
PROMOTED_WEB = f"{UPSTREAM}/web@sha256:{'e' * 64}"


def _prod_services() -> dict:
    services = stack_value("prod", "services")
    services["web"]["sidecars"] = {"proxy": {"build": {"context": "proxy"}}}
    return {"services": services}


def _upstream(with_proxy: bool = True) -> dict:
    names = {name: {name: f"{UPSTREAM}/{name}@sha256:{'a' * 64}"} for name in ("web", "api")}
    outputs = upstream_outputs(names)
    if with_proxy:
        outputs["ecrRepositoryArns"]["web/proxy"] = (
            "arn:aws:ecr:eu-west-1:111111111111:repository/ecs-delivery-dev/web/proxy"
        )
    return outputs


def test_a_promoted_release_moves_the_built_sidecar_with_the_service():
    environment = {
        "stacks": {"dev": _upstream()},
        "promotionRecords": {
            "dev": {RELEASE: {"web": {"web": PROMOTED_WEB, "proxy": PROMOTED_PROXY}}}
        },
    }
    plan = make_plan(
        "prod", environment=environment, overrides={**_prod_services(), "promoteRelease": RELEASE}
    )
    assert plan.named(ROLLOUT, "web-rollout").inputs["promotion"] == {
        "release": RELEASE,
        "images": {"web": PROMOTED_WEB, "proxy": PROMOTED_PROXY},
    }
    assert _container(plan, "web", "proxy")["image"] == PROMOTED_PROXY
    pull = {s["Sid"]: s for s in policy(plan, "web-execution")["Statement"]}["EcrPull"]
    assert (
        "arn:aws:ecr:eu-west-1:111111111111:repository/ecs-delivery-dev/web/proxy"
        in (pull["Resource"])
    )


def test_a_downstream_built_sidecar_the_upstream_does_not_build_is_refused():
    environment = {"stacks": {"dev": _upstream(with_proxy=False)}}
    with pytest.raises(ConfigError) as caught:
        make_plan("prod", environment=environment, overrides=_prod_services())
    message = str(caught.value)
    assert "services.web.sidecars.proxy.build: upstream stack 'dev' builds no images" in message


@pytest.mark.parametrize("running", [False, True], ids=["asleep", "running"])
def test_the_task_definition_with_a_built_sidecar_fits_register_task_definition(running, fresh):
    from tests.support import shapes

    plan = (
        make_plan("dev", environment=_running(PROXY_V1), overrides=_services())
        if running
        else fresh
    )
    task = plan.named("aws:ecs/taskDefinition:TaskDefinition", "web")
    request = shapes.register_task_definition(task.inputs)
    assert shapes.validation_errors("ecs", "RegisterTaskDefinition", request) == ""


def test_a_built_sidecar_the_running_revision_lacks_yet_sleeps_instead_of_failing_the_program():
    """The last update added proxy (its `liveImages` names it) but what runs is still the
    revision before it: with `deployment.wait: false` the next `up` can come before that
    rollout finished, and CodeDeploy may have rolled it back. The next `up` declares proxy as
    it would for a new sidecar (asleep) instead of failing on a container the revision lacks."""
    environment = _running(PROXY_V1)
    environment["services"]["web"]["containers"] = {"web": WEB}  # not yet (or no longer) proxy
    plan = make_plan("dev", environment=environment, overrides=_services())

    proxy = _container(plan, "web", "proxy")
    assert (proxy["image"], proxy["entryPoint"]) == (BOOTSTRAP, ["sleep", "2147483647"])
    assert plan.outputs["liveImages"]["web"] == {
        "web": {"image": WEB, "source": "live"},
        "proxy": {"image": BOOTSTRAP, "source": "bootstrap"},
    }


def test_a_built_sidecar_of_an_unreadable_revision_still_fails_naming_the_pin_key():
    environment = _running(PROXY_V1)
    environment["services"]["web"]["unreadable"] = True
    with pytest.raises(Exception) as caught:
        make_plan("dev", environment=environment, overrides=_services())
    assert "services.web" in str(caught.value) and "cannot be read" in str(caught.value)

"""Field ownership in the program: images come from pin > promotion > live > bootstrap, never reverted."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from components.images import digest_reference
from tests.conftest import make_plan, upstream_outputs
from tests.program.helpers import containers, policy
from tools.plan import ProgramFailed

REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"
SERVICES = ["alpha", "beta", "gamma", "delta"]


def _many_services() -> dict:
    """Four services on their own paths, so the program runs with several at once."""
    return {
        "services": {
            name: {"containerPort": 8080, "routing": {"pathPatterns": [f"/{name}/*"]}}
            for name in SERVICES
        },
        "scheduledTasks": {},
    }


def _live(images: dict[str, str]) -> dict:
    return {"services": {name: {"containers": {name: image}} for name, image in images.items()}}


LIVE = {name: f"{REPO}/{name}@sha256:{str(i) * 64}" for i, name in enumerate(SERVICES, start=1)}
UPSTREAM = {name: f"{REPO}/{name}@sha256:{'f' * 63}{i}" for i, name in enumerate(SERVICES, start=1)}


def _task_images(plan) -> dict[str, str]:
    return {name: containers(plan, name)[0]["image"] for name in SERVICES}


def test_fresh_account_starts_every_service_on_its_bootstrap_image():
    plan = make_plan("dev", overrides=_many_services())
    assert set(_task_images(plan).values()) == {"public.ecr.aws/nginx/nginx:1.27-alpine"}
    assert {r["source"] for s in plan.outputs["imageResolution"].values() for r in s.values()} == {
        "bootstrap"
    }


def test_with_live_images_no_task_definition_carries_another_image():
    plan = make_plan("dev", environment=_live(LIVE), overrides=_many_services())
    assert _task_images(plan) == LIVE
    assert plan.outputs["liveImages"] == {name: {name: image} for name, image in LIVE.items()}
    assert plan.outputs["imageResolution"]["beta"]["beta"] == {
        "now": LIVE["beta"],
        "after": LIVE["beta"],
        "source": "live",
    }


def test_promotion_gives_every_service_the_upstream_image():
    environment = {
        **_live(LIVE),
        "stacks": {"dev": upstream_outputs({n: {n: i} for n, i in UPSTREAM.items()})},
    }
    overrides = {**_many_services(), "upstreamStack": "dev", "promote": True, "pipeline": {}}
    plan = make_plan("prod", environment=environment, overrides=overrides)
    assert _task_images(plan) == UPSTREAM
    gamma = plan.outputs["imageResolution"]["gamma"]["gamma"]
    assert gamma == {"now": LIVE["gamma"], "after": UPSTREAM["gamma"], "source": "promoted"}


def test_without_promotion_a_downstream_stack_keeps_its_live_images():
    environment = {
        **_live(LIVE),
        "stacks": {"dev": upstream_outputs({n: {n: i} for n, i in UPSTREAM.items()})},
    }
    plan = make_plan(
        "prod",
        environment=environment,
        overrides={**_many_services(), "promote": False, "pipeline": {}},
    )
    assert _task_images(plan) == LIVE


def test_a_pinned_image_wins_over_promotion_and_live():
    pinned = f"{REPO}/alpha:hotfix-1"
    services = _many_services()
    services["services"]["alpha"]["image"] = pinned
    environment = {
        **_live(LIVE),
        "stacks": {"dev": upstream_outputs({n: {n: i} for n, i in UPSTREAM.items()})},
    }
    plan = make_plan(
        "prod", environment=environment, overrides={**services, "promote": True, "pipeline": {}}
    )
    images = _task_images(plan)
    assert images["alpha"] == pinned
    assert images["beta"] == UPSTREAM["beta"]
    assert plan.outputs["imageResolution"]["alpha"]["alpha"]["source"] == "pinned"


def test_an_existing_service_whose_image_cannot_be_read_fails_the_plan_instead_of_reverting():
    environment = {"services": {"web": {"unreadable": True}}}
    with pytest.raises(ProgramFailed) as caught:
        make_plan("dev", environment=environment)
    message = str(caught.value)
    assert "services.web: the service exists but the image of container 'web'" in message
    assert "Refusing to fall back to the bootstrap image" in message


def test_promotion_from_a_stack_without_live_images_is_a_clear_error():
    without = {k: v for k, v in make_plan("dev").outputs.items() if k != "liveImages"}
    with pytest.raises(ConfigError) as caught:
        make_plan("prod", environment={"stacks": {"dev": without}}, overrides={"promote": True})
    assert "upstreamStack: stack dev exports no liveImages; run `pulumi up` on it first" in str(
        caught.value
    )


def test_execution_role_may_pull_from_the_promoted_images_repository():
    environment = {
        "stacks": {
            "dev": upstream_outputs(
                {
                    "web": {"web": f"{REPO}/web@sha256:{'a' * 64}"},
                    "api": {"api": f"{REPO}/api@sha256:{'b' * 64}"},
                }
            )
        }
    }
    plan = make_plan("prod", environment=environment, overrides={"promote": True})
    pull = {s["Sid"]: s for s in policy(plan, "web-execution")["Statement"]}["EcrPull"]
    assert pull["Resource"] == [
        "arn:aws:ecr:eu-west-1:111111111111:repository/ecs-delivery-dev/web",
        "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-prod/web",
    ]


def test_live_image_lookup_uses_deterministic_names_and_the_stack_tags(dev_plan):
    (lookup,) = [
        args
        for token, args in dev_plan.invokes
        if token.endswith("getResources") and args["resourceTypeFilters"] == ["ecs:service"]
    ]
    assert lookup["resourceTypeFilters"] == ["ecs:service"]
    assert {f["key"]: f["values"] for f in lookup["tagFilters"]} == {
        "ecs-delivery:stack": ["dev"],
        "ecs-delivery:project": ["ecs-delivery"],
    }
    service = json.dumps(dev_plan.named("aws:ecs/service:Service", "web").inputs["tags"])
    assert '"ecs-delivery:stack": "dev"' in service


def test_digest_reference_prefers_the_digest_for_downstream_promotion():
    digest = "sha256:" + "c" * 64
    assert digest_reference(f"{REPO}/web:v1", digest) == f"{REPO}/web@{digest}"
    assert digest_reference("localhost:5000/web:v1", digest) == f"localhost:5000/web@{digest}"
    assert digest_reference(f"{REPO}/web@{digest}", None) == f"{REPO}/web@{digest}"
    assert digest_reference(f"{REPO}/web:v1", None) == f"{REPO}/web:v1"

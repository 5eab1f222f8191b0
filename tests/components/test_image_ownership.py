"""Field ownership in the program: Pulumi declares an image only when pinned or promoted.

The template task definition carries pinned > promoted > bootstrap, never what runs, so a
pipeline ship changes no resource input; the outputs still show what runs and why.
"""

from __future__ import annotations

import json

import pytest

from ecs_delivery.components.config import ConfigError
from ecs_delivery.components.images import LiveImageError, digest_reference
from ecs_delivery.offline.plan import ProgramFailed
from ecs_delivery.offline.simcloud import plain
from tests.conftest import make_plan, upstream_outputs
from tests.support.registrations import containers, policy

REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev"
SERVICES = ["alpha", "beta", "gamma", "delta"]
BOOTSTRAP = "public.ecr.aws/docker/library/busybox:1.36"
ROLLOUT = "pulumi-python:dynamic/rollout:ServiceRollout"
RELEASE = "3f9c2a1"


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
SHIPPED = {name: f"{REPO}/{name}@sha256:{'9' * 63}{i}" for i, name in enumerate(SERVICES, start=1)}
UPSTREAM = {name: f"{REPO}/{name}@sha256:{'f' * 63}{i}" for i, name in enumerate(SERVICES, start=1)}


def _template_images(plan) -> dict[str, str]:
    return {name: containers(plan, name)[0]["image"] for name in SERVICES}


def _promoting(live: dict[str, str], released: dict[str, str], **extra) -> dict:
    """prod's simulated account: `live` running, dev's release RELEASE with `released`."""
    return {
        **_live(live),
        "stacks": {"dev": upstream_outputs({n: {n: i} for n, i in UPSTREAM.items()}), **extra},
        "promotionRecords": {"dev": {RELEASE: {n: {n: i} for n, i in released.items()}}},
    }


def _prod(environment: dict, **overrides):
    return make_plan(
        "prod",
        environment=environment,
        overrides={**_many_services(), "pipeline": {}, **overrides},
    )


def _resources(plan) -> list[tuple]:
    return sorted(
        (r.urn, json.dumps(plain(r.inputs), sort_keys=True), json.dumps(r.options, sort_keys=True))
        for r in plan.resources
    )


def test_fresh_account_starts_every_service_on_its_bootstrap_image():
    plan = make_plan("dev", overrides=_many_services())
    assert set(_template_images(plan).values()) == {BOOTSTRAP}
    assert {r["source"] for s in plan.outputs["imageResolution"].values() for r in s.values()} == {
        "bootstrap"
    }
    assert plan.outputs["liveImages"]["beta"]["beta"] == {"image": BOOTSTRAP, "source": "bootstrap"}


def test_live_images_reach_the_outputs_but_no_resource_input():
    plan = make_plan("dev", environment=_live(LIVE), overrides=_many_services())
    assert set(_template_images(plan).values()) == {BOOTSTRAP}
    assert plan.outputs["liveImages"]["beta"] == {"beta": {"image": LIVE["beta"], "source": "live"}}
    assert plan.outputs["imageResolution"]["beta"]["beta"] == {
        "now": LIVE["beta"],
        "after": LIVE["beta"],
        "source": "live",
    }
    assert plan.named(ROLLOUT, "beta-rollout").inputs["pinned_images"] == {}


def test_a_pipeline_ship_changes_no_resource_input_only_outputs():
    """Done-when of issue 8: LIVE=A and LIVE=B differ only in the images services run."""
    before = make_plan("dev", environment=_live(LIVE), overrides=_many_services())
    after = make_plan("dev", environment=_live(SHIPPED), overrides=_many_services())

    assert _resources(before) == _resources(after)
    assert before.outputs["liveImages"] != after.outputs["liveImages"]


def test_a_ship_of_a_service_a_task_follows_changes_nothing_in_the_next_preview():
    """Issue 21, problem 10: the task that follows `api` used to declare api's live image, so
    each ship of api showed as a task change in the next preview. Now the task's template
    declares none; its rollout keeps what the newest revision runs (whether or not the ship
    has reached the task yet)."""
    a = {"web": f"{REPO}/web@sha256:{'1' * 64}", "api": f"{REPO}/api@sha256:{'2' * 64}"}
    shipped = {**a, "api": f"{REPO}/api@sha256:{'4' * 64}"}

    def world(services: dict, task_image: str) -> dict:
        task = {"nightly-report": {"containers": {"nightly-report": task_image}}}
        return {**_live(services), "scheduledTasks": task}

    base = _resources(make_plan("dev", environment=world(a, a["api"])))
    assert _resources(make_plan("dev", environment=world(shipped, a["api"]))) == base
    assert _resources(make_plan("dev", environment=world(shipped, shipped["api"]))) == base


def test_promotion_of_a_named_release_declares_its_digests_and_hands_them_to_the_rollout():
    plan = _prod(_promoting(LIVE, UPSTREAM), promoteRelease=RELEASE)

    assert _template_images(plan) == UPSTREAM
    gamma = plan.outputs["imageResolution"]["gamma"]["gamma"]
    assert gamma == {
        "now": LIVE["gamma"],
        "after": UPSTREAM["gamma"],
        "source": f"promoted from dev@{RELEASE}",
    }
    assert plan.named(ROLLOUT, "gamma-rollout").inputs["promotion"] == {
        "release": RELEASE,
        "images": {"gamma": UPSTREAM["gamma"]},
    }
    assert plan.outputs["appliedPromotion"] == RELEASE


def test_a_service_the_release_did_not_ship_is_skipped_and_named():
    shipped_only = {name: UPSTREAM[name] for name in ("alpha", "beta")}
    plan = _prod(_promoting(LIVE, shipped_only), promoteRelease=RELEASE)

    assert _template_images(plan)["gamma"] == BOOTSTRAP  # nothing declared for it
    assert plan.outputs["imageResolution"]["gamma"]["gamma"]["source"] == "live"
    assert "promotion" not in plan.named(ROLLOUT, "gamma-rollout").inputs
    assert any(
        f"promoteRelease {RELEASE}: dev did not ship delta, gamma" in w for w in plan.warnings
    )


def test_promoting_a_release_the_upstream_never_published_is_refused_naming_it():
    # The failed S3 read also fails the program (a failed invoke always does), after the
    # program logged its own message: that is what `pulumi up` shows.
    with pytest.raises((ConfigError, ProgramFailed)) as caught:
        _prod(_promoting(LIVE, UPSTREAM), promoteRelease="0000000")
    message = str(caught.value)
    assert "promoteRelease: '0000000' is not a release dev has run" in message
    assert "promotion/dev/releases/0000000.json" in message
    assert "promotion/dev/latest.json" in message


def test_a_promotion_already_applied_keeps_what_runs_and_changes_no_input():
    """Left committed in Pulumi.prod.yaml after prod's pipeline shipped newer digests."""
    first = _prod(_promoting(LIVE, UPSTREAM), promoteRelease=RELEASE)
    own_last = {"appliedPromotion": RELEASE}
    again = _prod(_promoting(SHIPPED, UPSTREAM, prod=own_last), promoteRelease=RELEASE)

    assert _resources(again) == _resources(first)
    beta = again.outputs["imageResolution"]["beta"]["beta"]
    assert (beta["after"], beta["source"]) == (SHIPPED["beta"], "live")


def test_a_pinned_image_wins_over_promotion_and_goes_to_the_rollout():
    pinned = f"{REPO}/alpha:hotfix-1"
    services = _many_services()
    services["services"]["alpha"]["image"] = pinned
    plan = make_plan(
        "prod",
        environment=_promoting(LIVE, UPSTREAM),
        overrides={**services, "pipeline": {}, "promoteRelease": RELEASE},
    )
    images = _template_images(plan)
    assert images["alpha"] == pinned
    assert images["beta"] == UPSTREAM["beta"]
    assert plan.outputs["imageResolution"]["alpha"]["alpha"]["source"] == "pinned"
    assert plan.named(ROLLOUT, "alpha-rollout").inputs["pinned_images"] == {"alpha": pinned}


def test_an_existing_service_whose_image_cannot_be_read_fails_the_plan():
    with pytest.raises(ProgramFailed) as caught:
        make_plan("dev", environment={"services": {"web": {"unreadable": True}}})
    message = str(caught.value)
    assert "services.web: the service exists but the image of container 'web'" in message
    assert "Refusing to guess what it runs" in message


def test_a_tagged_service_that_cannot_be_described_fails_the_plan():
    environment = {
        "services": {"web": {"containers": {"web": LIVE["alpha"]}, "describeFails": True}}
    }
    with pytest.raises(ProgramFailed) as caught:
        make_plan("dev", environment=environment)
    assert (
        "services.web: the service exists (it is tagged for this stack) but could not be read"
        in (str(caught.value))
    )


def test_a_live_revision_without_the_container_fails_the_plan():
    environment = {"services": {"web": {"containers": {"sidecar": LIVE["alpha"]}}}}
    with pytest.raises(ProgramFailed) as caught:
        make_plan("dev", environment=environment)
    assert "services.web: the service exists but the image of container 'web'" in str(caught.value)


def test_a_live_image_given_by_tag_with_a_known_digest_is_exported_by_digest():
    digest = "sha256:" + "7" * 64
    environment = {
        "services": {"web": {"containers": {"web": f"{REPO}/web:v7"}, "digests": {"web": digest}}}
    }
    plan = make_plan("dev", environment=environment)
    assert plan.outputs["liveImages"]["web"]["web"]["image"] == f"{REPO}/web@{digest}"
    assert plan.outputs["imageResolution"]["web"]["web"]["now"] == f"{REPO}/web:v7"


def test_an_unreadable_scheduled_task_revision_fails_instead_of_falling_back():
    environment = {"scheduledTasks": {"nightly-report": {"unreadable": True}}}
    with pytest.raises(ProgramFailed) as caught:
        make_plan("dev", overrides={"scheduledTasks": _unfollowing_task()}, environment=environment)
    assert "scheduledTasks.nightly-report: the task exists but the image in" in str(caught.value)


def _unfollowing_task() -> dict:
    return {"nightly-report": {"schedule": "rate(1 day)", "command": ["report"]}}


def test_a_service_this_stack_created_but_the_tags_do_not_list_fails_instead_of_being_new():
    own_last = {"services": {"web": {"serviceName": "web"}, "api": {"serviceName": "api"}}}
    environment = {
        "services": {"api": {"containers": {"api": LIVE["alpha"]}}},
        "stacks": {"dev": own_last},
    }
    with pytest.raises(LiveImageError) as caught:
        make_plan("dev", environment=environment)
    message = str(caught.value)
    assert "services: web: this stack's last update created them" in message
    assert "Refusing to treat them as new" in message


def test_execution_role_may_pull_from_the_upstream_repository_whatever_runs():
    plan = _prod(_promoting(LIVE, UPSTREAM), promoteRelease=RELEASE)
    pull = {s["Sid"]: s for s in policy(plan, "alpha-execution")["Statement"]}["EcrPull"]
    assert pull["Resource"] == [
        "arn:aws:ecr:eu-west-1:111111111111:repository/ecs-delivery-dev/alpha",
        "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-prod/alpha",
    ]


def test_live_image_lookup_uses_deterministic_names_and_the_stack_tags(dev_plan):
    (lookup,) = [
        args
        for token, args in dev_plan.invokes
        if token.endswith("getResources") and args["resourceTypeFilters"] == ["ecs:service"]
    ]
    assert {f["key"]: f["values"] for f in lookup["tagFilters"]} == {
        "ecs-delivery:stack": ["dev"],
        "ecs-delivery:project": ["ecs-delivery"],
    }
    service = json.dumps(dev_plan.named("aws:ecs/service:Service", "web").inputs["tags"])
    assert '"ecs-delivery:stack": "dev"' in service


def test_digest_reference_prefers_the_digest():
    digest = "sha256:" + "c" * 64
    assert digest_reference(f"{REPO}/web:v1", digest) == f"{REPO}/web@{digest}"
    assert digest_reference("localhost:5000/web:v1", digest) == f"localhost:5000/web@{digest}"
    assert digest_reference(f"{REPO}/web@{digest}", None) == f"{REPO}/web@{digest}"
    assert digest_reference(f"{REPO}/web:v1", None) == f"{REPO}/web:v1"

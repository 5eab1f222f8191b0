"""Two instances of every component in one program: no URN (or alias) is claimed twice.

The program is planned with every component class built twice: each component the
DeliveryEnvironment builds directly (or one built at the top level) gets a twin with the same
args under another name (`twin-<name>`); the environment itself is one per stack.
Pulumi's mock monitor accepts a duplicate URN silently (the engine refuses it), so the
URNs and the aliases' URNs are collected here and checked for uniqueness.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import Counter

import pulumi
import pytest

import ecs_delivery.components
from ecs_delivery.components.environment import DeliveryEnvironment
from ecs_delivery.offline import diff
from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.plan import Plan
from ecs_delivery.offline.simcloud import Registration

TWIN = "twin-"


def component_classes() -> list[type[pulumi.ComponentResource]]:
    """Every ComponentResource the library defines (discovered, so a new one is included)."""
    found = []
    for info in pkgutil.iter_modules(ecs_delivery.components.__path__):
        module = importlib.import_module(f"ecs_delivery.components.{info.name}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__
        ]
    return sorted(found, key=lambda c: c.__qualname__)


def twinned_classes() -> list[type[pulumi.ComponentResource]]:
    # One DeliveryEnvironment per stack (its resources' names come from project and stack):
    # what it builds is twinned instead.
    return [c for c in component_classes() if c is not DeliveryEnvironment]


def _top_level(opts: pulumi.ResourceOptions | None) -> bool:
    parent = opts.parent if opts else None
    return parent is None or isinstance(parent, DeliveryEnvironment)


def twin_every_component(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patch each component so a top-level instance (or a child of the environment) builds a
    twin; returns the twinned types."""
    twinned: list[str] = []
    for cls in twinned_classes():
        original = cls.__init__

        def __init__(self, name, args, opts=None, *, _cls=cls, _original=original):  # noqa: N807
            _original(self, name, args, opts)
            if not name.startswith(TWIN) and _top_level(opts):
                twinned.append(_cls.__qualname__)
                _cls(f"{TWIN}{name}", args, opts)

        monkeypatch.setattr(cls, "__init__", __init__)
    return twinned


_CLAIMS: dict[int, tuple[Plan, dict[str, set[str]]]] = {}


def alias_urns(plan: Plan, registration: Registration) -> list[str]:
    """The URNs a registration's aliases claim, its ancestors' inherited (as `make diff` reads
    them: diff.claimed_urns)."""
    cached = _CLAIMS.get(id(plan))
    if cached is None or cached[0] is not plan:  # the plan is kept, so its id is not reused
        cached = _CLAIMS[id(plan)] = (plan, diff.claimed_urns(plan.to_json()))
    return sorted(cached[1][registration.urn] - {registration.urn})


def claimed_twice(plan: Plan) -> list[str]:
    """URNs claimed by more than one registration, as its URN or through an alias."""
    claims = Counter()
    for r in plan.resources:
        claims.update({r.urn, *alias_urns(plan, r)})
    return sorted(urn for urn, count in claims.items() if count > 1)


@pytest.fixture(scope="module")
def twinned_plans() -> dict[str, tuple[Plan, list[str]]]:
    plans = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        twinned = twin_every_component(monkeypatch)
        for stack in ("dev", "prod"):
            twinned.clear()
            # The twins are built bare (no CodeDeployment or ServiceRollout of their own).
            plans[stack] = (plan_tool.run(stack, require_rollouts=False), list(twinned))
    return plans


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_two_instances_of_every_component_claim_no_urn_twice(twinned_plans, stack):
    plan, _ = twinned_plans[stack]
    assert claimed_twice(plan) == []


def test_the_twinned_program_builds_every_component_class_twice(twinned_plans):
    built = {name for _, twinned in twinned_plans.values() for name in twinned}
    assert built == {c.__qualname__ for c in twinned_classes()}
    dev, _ = twinned_plans["dev"]
    types = Counter(r.type for r in dev.resources if not r.custom)
    assert types["ecs-delivery:service:FargateService"] == 6  # api, mailer, web and their twins


def test_the_program_claims_no_urn_twice(dev_plan, prod_plan):
    assert claimed_twice(dev_plan) == []
    assert claimed_twice(prod_plan) == []


# Children that had fixed names before they derived from the component's name.
FORMER_NAMES = {
    ("aws:codedeploy/deploymentGroup:DeploymentGroup", "codedeploy-api"): "api",
    ("aws:codedeploy/deploymentGroup:DeploymentGroup", "codedeploy-web"): "web",
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "codedeploy-api-blue-target-5xx"): (
        "api-blue-target-5xx"
    ),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "codedeploy-web-green-unhealthy-hosts"): (
        "web-green-unhealthy-hosts"
    ),
    ("aws:iam/role:Role", "pipeline-codebuild"): "codebuild",
    ("aws:iam/rolePolicy:RolePolicy", "pipeline-codebuild"): "codebuild",
    ("aws:iam/role:Role", "pipeline-codebuild-deploy"): "codebuild-deploy",
    ("aws:iam/rolePolicy:RolePolicy", "pipeline-codebuild-publish"): "codebuild-publish",
    ("aws:iam/role:Role", "pipeline-codepipeline"): "codepipeline",
    ("aws:iam/rolePolicy:RolePolicy", "pipeline-codepipeline"): "codepipeline",
}


def _former_urn(plan: Plan, registration: Registration, old: str) -> str:
    where = {"stack": plan.stack, "project": plan.project}
    return diff.plan_urn(where, registration.parent, registration.type, old)


def test_the_programs_instances_keep_the_urns_of_their_formerly_fixed_child_names(dev_plan):
    for (type_, name), old in FORMER_NAMES.items():
        child = dev_plan.named(type_, name)
        assert alias_urns(dev_plan, child) == [_former_urn(dev_plan, child, old)], name


def test_custom_deployment_configs_keep_their_former_urns():
    plan = plan_tool.run(
        "dev",
        overrides={
            "deployment": {
                "config": "canary5",
                "customConfigs": {
                    "canary5": {"type": "canary", "percent": 5, "intervalMinutes": 3}
                },
            }
        },
    )
    config = plan.named(
        "aws:codedeploy/deploymentConfig:DeploymentConfig", "codedeploy-config-canary5"
    )
    assert alias_urns(plan, config) == [_former_urn(plan, config, "config-canary5")]


def test_prod_pipeline_trigger_role_keeps_its_name_and_needs_no_alias(prod_plan):
    role = prod_plan.named("aws:iam/role:Role", "pipeline-trigger")
    assert role.options["aliases"] == []


def test_a_second_instance_claims_no_former_name(twinned_plans):
    plan, _ = twinned_plans["prod"]
    for (type_, name), _old in FORMER_NAMES.items():
        twin_name = "twin-" + name
        assert plan.named(type_, twin_name).options["aliases"] == [], twin_name
    twinned = [r for r in plan.resources if r.name.startswith(TWIN)]
    assert len(twinned) > 100
    # A twin's aliases (e.g. a former type) only ever name the twin itself.
    claims = [urn for r in twinned for urn in alias_urns(plan, r)]
    assert claims
    assert [urn for urn in claims if not urn.rsplit("::", 1)[1].startswith(TWIN)] == []

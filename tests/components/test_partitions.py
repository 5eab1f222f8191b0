"""ARNs in the region's partition: the program planned in China and GovCloud names no `arn:aws:`."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

import ecs_delivery.components
from ecs_delivery.components import naming
from ecs_delivery.components.args import derivation
from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.plan import Plan, plain
from ecs_delivery.offline.simcloud import SimulatedEnvironment

ROOT = Path(__file__).resolve().parents[2]
REGIONS = {"cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"}


def stack_config(stack: str, region: str) -> dict:
    """The stack file's config moved to `region`: its own ARNs and zones in that partition."""
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    text = text.replace("arn:aws:", f"arn:{naming.partition(region)}:").replace("eu-west-1", region)
    return yaml.safe_load(text)["config"]


def plan_in(region: str, stack: str) -> Plan:
    environment = SimulatedEnvironment()
    if stack == "prod":  # its upstream, dev, deployed in the same region
        upstream = plan_tool.run("dev", config=stack_config("dev", region))
        environment = SimulatedEnvironment(stacks={"dev": upstream.outputs})
    return plan_tool.run(stack, config=stack_config(stack, region), environment=environment)


def arns_in(plan: Plan) -> list[str]:
    text = json.dumps([plain(r.inputs) for r in plan.resources])
    return re.findall(r"arn:[a-z-]+:[a-z0-9-]*:[^\"\\\s]*", text)


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_registered_arn_is_in_the_regions_partition(region, stack):
    arns = arns_in(plan_in(region, stack))
    assert len(arns) > 50  # roles, policies, listeners, ...: the search does find ARNs
    assert [a for a in arns if not a.startswith(f"arn:{REGIONS[region]}:")] == []


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("eu-west-1", "arn:aws:ecs:eu-west-1:123456789012:cluster/c"),
        ("cn-northwest-1", "arn:aws-cn:ecs:cn-northwest-1:123456789012:cluster/c"),
        ("us-gov-east-1", "arn:aws-us-gov:ecs:us-gov-east-1:123456789012:cluster/c"),
    ],
)
def test_naming_builds_arns_in_the_regions_partition(region, expected):
    assert naming.cluster_arn(region, "123456789012", "c") == expected
    assert naming.arn("ecs", "cluster/c", region=region, account="123456789012") == expected


def test_unscoped_arns_leave_the_region_out():
    assert naming.arn("s3", "bucket", region="cn-north-1", scoped=False) == "arn:aws-cn:s3:::bucket"
    assert naming.iam_arn("role/r", region="us-gov-west-1", account="123456789012") == (
        "arn:aws-us-gov:iam::123456789012:role/r"
    )


def _args_classes() -> list[type]:
    found = []
    for info in pkgutil.iter_modules(ecs_delivery.components.__path__):
        module = importlib.import_module(f"ecs_delivery.components.{info.name}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
        ]
    return found


def test_no_component_args_default_a_region():
    # A region is given, or (a derived field left None) its AWS provider's: never a literal.
    region_fields = {
        f"{cls.__name__}.{f.name}": (f.default, f.default_factory)
        for cls in _args_classes()
        for f in dataclasses.fields(cls)
        if "region" in f.name
        and not (f.default is None and "`aws.get_region`" in (derivation(f) or ""))
    }
    assert "NetworkArgs.region" in region_fields
    missing = (dataclasses.MISSING, dataclasses.MISSING)
    assert {k: v for k, v in region_fields.items() if v != missing} == {}


def test_the_plan_tool_picks_no_region_for_a_stack_without_one(tmp_path):
    # A program that does not check aws:region itself used to be planned in us-east-1.
    (tmp_path / "Pulumi.yaml").write_text("name: no-region\nruntime: python\n")
    (tmp_path / "__main__.py").write_text('import pulumi_aws as aws\naws.s3.Bucket("b")\n')
    with pytest.raises(Exception, match="a region is required to know the ARN partition"):
        plan_tool.run("t", config={}, root=tmp_path)


def test_the_program_refuses_a_stack_without_a_region():
    config = {k: v for k, v in stack_config("dev", "eu-west-1").items() if k != "aws:region"}
    with pytest.raises(Exception, match="aws:region: required"):
        plan_tool.run("dev", config=config)

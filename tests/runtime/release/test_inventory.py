"""`--inventory` takes what the stack gives: the output, all outputs, or a plan JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecs_delivery.runtime.release.inventory import InventoryError, load_inventory, parse_inventory

from .conftest import small_inventory

INVENTORY = small_inventory().model_dump(by_alias=True, exclude_none=True)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(INVENTORY, id="pulumi stack output releaseInventory --json"),
        pytest.param(
            {"releaseBucket": "dev-release", "releaseInventory": INVENTORY},
            id="pulumi stack output --json",
        ),
        pytest.param(
            {
                "stack": "dev",
                "resources": [],
                "outputs": {"releaseBucket": "dev-release", "releaseInventory": INVENTORY},
                "warnings": [],
            },
            id="make plan PLAN_JSON=plan.json",
        ),
    ],
)
def test_inventory_loads_from_each_file_the_stack_gives(
    document: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(document))

    assert load_inventory(path) == small_inventory()


def test_a_file_without_an_inventory_is_refused_naming_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"releaseBucket": "dev-release", "clusterName": "dev"}))

    with pytest.raises(InventoryError) as error:
        load_inventory(path)

    assert str(error.value) == (
        f"--inventory: {path} holds no release inventory (found an object with keys "
        "clusterName, releaseBucket); expected the inventory (`pulumi stack output "
        "releaseInventory --json`), all stack outputs with a releaseInventory key (`pulumi "
        "stack output --json`), or a plan with outputs.releaseInventory (`make plan "
        "PLAN_JSON=plan.json`)"
    )


def test_an_invalid_inventory_inside_a_plan_names_the_bad_field(tmp_path: Path) -> None:
    broken = {**INVENTORY, "services": {"web": {"cluster": "c"}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"outputs": {"releaseInventory": broken}}))

    with pytest.raises(InventoryError) as error:
        load_inventory(path)

    assert f"{path}: services.web.service: required" in str(error.value).splitlines()


def test_an_inventory_written_before_built_sidecars_has_none() -> None:
    """Older stacks export no `sidecars`: they load, and a manifest may set no sidecar."""
    older = json.loads(json.dumps(INVENTORY))
    for entry in older["services"].values():
        del entry["sidecars"]
    assert parse_inventory(older).services["web"].sidecars == []

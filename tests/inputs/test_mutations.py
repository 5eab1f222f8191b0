"""Seeded mutations of real files through each reader: whatever the bytes, a reader answers
with its own error (one message, no traceback) or a value, never another exception. The
mutations that found control characters crashing every YAML reader are kept in the mix."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecs_delivery import inputs
from ecs_delivery.offline import diff, plan
from ecs_delivery.offline.simcloud import SimulatedEnvironment, SimulationError
from ecs_delivery.runtime.promotion import PromotionRecordError, read_record_file
from ecs_delivery.runtime.release.inventory import Inventory, InventoryError, load_inventory
from ecs_delivery.runtime.release.manifest import ManifestError, load_manifest

REPO = Path(__file__).resolve().parents[2]
DIGEST = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/web@sha256:" + "1" * 64
WEB = {"cluster": "c", "service": "dev-web", "codedeployApplication": "app"}
WEB |= {"codedeployGroup": "web", "container": "web", "containerPort": 8080}
INVENTORY = {"environment": "dev", "services": {"web": WEB}}
RECORD = {
    "schema": 1,
    "sourceStack": "dev",
    "commit": "3f9c2a1",
    "images": {"web": {"web": DIGEST}},
}
RECORD["createdAt"] = "2026-01-01T00:00:00+00:00"
TOKENS = [b"{", b"}", b"[", b"]", b":", b",", b"\n", b" ", b"\t", b"&a", b"*a", b"!x", b"'"]
TOKENS += [b'"', b"-", b"0", b"1e999", b"null", b"true", b"~", b".nan", b"? ", b"|", b"---\n"]
TOKENS += [b"\xff", b"\x00", b"\x02", b"<<: *a", b"!!binary", b"%YAML 1.1\n", b"2026-13-45"]
ERRORS = (inputs.ReadError, ManifestError, InventoryError, SimulationError)
ERRORS += (PromotionRecordError, diff.DiffError, plan.PlanError)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(out))
        roll = rng.random()
        if roll < 0.4:
            out[at:at] = rng.choice(TOKENS)
        elif roll < 0.7 and len(out) > 1:
            del out[at : at + rng.randint(1, 8)]
        else:
            out[at:at] = bytes([rng.randint(0, 255)])
    return bytes(out)


def _readers(tmp: Path) -> dict[str, tuple[bytes, Path, Callable[[Path], Any]]]:
    inventory = Inventory.model_validate(INVENTORY)
    manifest = b"release: r1\nenvironment: dev\nservices:\n  web: {image: 'repo/web:1.0.0'}\n"
    return {
        "manifest": (
            manifest,
            tmp / "m.yaml",
            lambda p: load_manifest(inputs.read_text(p), inventory, str(p)),
        ),
        "inventory": (json.dumps(INVENTORY).encode(), tmp / "i.json", load_inventory),
        "live": (
            (REPO / "examples/live-prod.yaml").read_bytes(),
            tmp / "l.yaml",
            SimulatedEnvironment.load,
        ),
        "stack": (
            (REPO / "Pulumi.prod.yaml").read_bytes(),
            tmp / "Pulumi.dev.yaml",
            lambda p: plan.stack_file("dev", p.parent),
        ),
        "record": (json.dumps(RECORD).encode(), tmp / "r.json", read_record_file),
        "plan": (
            json.dumps(
                {"stack": "dev", "resources": [{"urn": "u", "type": "t", "name": "n"}]}
            ).encode(),
            tmp / "p.json",
            lambda p: diff.read_plan_file(p, str(p), "dev"),
        ),
    }


@pytest.mark.parametrize("kind", ["manifest", "inventory", "live", "stack", "record", "plan"])
def test_every_mutation_of_a_file_gets_the_readers_own_answer(tmp_path: Path, kind: str) -> None:
    seed, path, read = _readers(tmp_path)[kind]
    rng = random.Random(kind)
    for _ in range(150):
        data = _mutate(seed, rng)
        path.write_bytes(data)
        try:
            read(path)
        except ERRORS as error:
            assert str(error) and "Traceback" not in str(error), data
        except Exception as error:  # noqa: BLE001 - the defect this test looks for
            pytest.fail(f"{kind}: {type(error).__name__}: {error} for {data!r}")

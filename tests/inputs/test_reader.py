"""The one reader of user files (ecs_delivery.inputs) and the readers that go through it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ecs_delivery.inputs import ReadError, decode, load_yaml, parse_json, parse_yaml
from ecs_delivery.offline.simcloud import SimulatedEnvironment, SimulationError
from ecs_delivery.runtime.promotion import PromotionRecordError, read_record_file
from ecs_delivery.runtime.release.inventory import Inventory, InventoryError, load_inventory
from ecs_delivery.runtime.release.manifest import ManifestError, load_manifest


def small_inventory() -> Inventory:
    web = {"cluster": "c", "service": "prod-web", "codedeployApplication": "app"}
    web |= {"codedeployGroup": "web", "container": "web", "containerPort": 8080}
    return Inventory.model_validate(
        {"environment": "prod", "production": True, "services": {"web": web}}
    )


# "a" holds 2 lists of "b" (...), nine levels deep: 2**9 = 512 leaves per "i", 10**9 when
# each level repeats ten times. PyYAML shares the nodes; whoever walks the data expands them.
ALIAS_BOMB = "\n".join(
    ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    + [
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)
MANIFEST = "release: r1\nenvironment: prod\nservices:\n  web:\n    image: repo/web:1.0.0\n"


def test_utf16_files_are_refused_naming_the_file_and_the_encoding() -> None:
    for encoding, name in (("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE")):
        data = "\ufeff{}".encode(encoding)
        with pytest.raises(ReadError, match=f"inventory.json: the file is {name}"):
            decode(data, "inventory.json")


def test_utf16_without_a_byte_order_mark_and_latin1_are_refused_naming_the_file() -> None:
    with pytest.raises(ReadError, match=r"x.yaml: the file is not UTF-8 \(it looks like UTF-16"):
        decode("a: b\n".encode("utf-16-le"), "x.yaml")
    with pytest.raises(ReadError, match=r"x.yaml:2: the file is not UTF-8 \(byte 0xe9"):
        decode("a: b\nc: caf\u00e9\n".encode("latin-1"), "x.yaml")


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert decode(b"\xef\xbb\xbfa: b", "x.yaml") == "a: b"


def test_an_inventory_written_by_powershell_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_bytes('\ufeff{"environment": "prod"}'.encode("utf-16-le"))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value).startswith(f"{path}: the file is UTF-16 LE")
    assert "Out-File -Encoding utf8" in str(caught.value)


def test_a_promotion_record_and_a_live_file_in_utf16_are_refused(tmp_path: Path) -> None:
    record, live = tmp_path / "record.json", tmp_path / "live.yaml"
    record.write_bytes("{}".encode("utf-16"))
    live.write_bytes("accountId: '1'".encode("utf-16"))
    with pytest.raises(PromotionRecordError, match="record.json: the file is UTF-16 LE"):
        read_record_file(record)
    with pytest.raises(SimulationError, match="live.yaml: the file is UTF-16 LE"):
        SimulatedEnvironment.load(live)


def test_a_tiny_file_of_nested_aliases_is_refused_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(ReadError, match="bomb.yaml: the YAML expands to more than"):
        parse_yaml(ALIAS_BOMB, "bomb.yaml")
    with pytest.raises(ManifestError, match="expands to more than"):
        load_manifest(ALIAS_BOMB, small_inventory())
    assert time.perf_counter() - started < 1.0


def test_an_alias_that_contains_itself_is_refused() -> None:
    with pytest.raises(ReadError, match="loop.yaml:1: an alias refers to itself"):
        parse_yaml("a: &a [1, *a]\n", "loop.yaml")


def test_a_yaml_tag_is_refused_with_file_line_and_key() -> None:
    with pytest.raises(ReadError) as caught:
        parse_yaml("services:\n  web:\n    image: !env WEB_IMAGE\n", "release.yaml")
    assert str(caught.value) == (
        "release.yaml:3: services.web.image: the YAML tag !env is not supported here; "
        "write the value itself (quote it if it starts with !)"
    )


def test_a_manifest_with_a_tag_is_a_manifest_error_not_a_traceback() -> None:
    text = MANIFEST.replace("image: repo/web:1.0.0", "image: !env WEB_IMAGE")
    with pytest.raises(ManifestError) as caught:
        load_manifest(text, small_inventory(), name="release.yaml")
    assert caught.value.errors == [
        "release.yaml:5: services.web.image: the YAML tag !env is not supported here; "
        "write the value itself (quote it if it starts with !)"
    ]


def test_a_python_tag_and_an_unhashable_key_are_refused_with_the_line() -> None:
    with pytest.raises(ReadError, match=r"x.yaml:2: a: the YAML tag !!python/object"):
        parse_yaml("b: 1\na: !!python/object:os.system {}\n", "x.yaml")
    with pytest.raises(ReadError, match=r"x.yaml:1:.*not valid YAML"):
        parse_yaml("? [a, b]\n: c\n", "x.yaml")


def test_duplicate_keys_and_syntax_errors_name_the_file_and_line() -> None:
    with pytest.raises(ReadError, match=r"x.yaml:3: duplicate key 'a' \(first at line 1\)"):
        parse_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")
    with pytest.raises(ReadError, match=r"x.yaml:2:\d+: not valid YAML"):
        parse_yaml("a: [1,\nb: }\n", "x.yaml")


def test_json_duplicates_nan_and_syntax_errors_name_the_file_and_line() -> None:
    with pytest.raises(ReadError, match=r"p.json:1: duplicate key 'a'"):
        parse_json('{"a": 1, "a": 2}', "p.json")
    with pytest.raises(ReadError, match=r"p.json: NaN is not a JSON number"):
        parse_json('{"a": NaN}', "p.json")
    with pytest.raises(ReadError, match=r"p.json:2:\d+: not valid JSON"):
        parse_json('{"a": 1,\n}', "p.json")
    assert parse_json(json.dumps({"a": [1]}), "p.json") == {"a": [1]}


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * (2 << 20))
    with pytest.raises(ReadError, match=r"big.yaml: \d+ bytes is over the limit of 1048576"):
        load_yaml(path)


def test_a_live_file_with_a_non_numeric_account_id_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.yaml"
    path.write_text("accountId: prod-account\n")
    with pytest.raises(SimulationError, match=r"live.yaml:1: accountId: .*12 digits"):
        SimulatedEnvironment.load(path)

"""ecs_delivery.runtime.promotion: the record format, its validation errors and the S3 round trip."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from buildtest_support import repository_url

from ecs_delivery.runtime.promotion import (
    PromotionRecordError,
    load_record,
    new_record,
    parse_record,
    publish_record,
    read_record,
    read_record_file,
    write_record_file,
)

WEB = repository_url("shop/web") + "@sha256:" + "a" * 64
API = repository_url("shop/api") + "@sha256:" + "b" * 64
CREATED = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _record() -> Any:
    return new_record(
        source_stack="dev",
        commit=COMMIT,
        images={"web": {"app": WEB}, "api": {"api": API}},
        created_at=CREATED,
    )


def _valid_data() -> dict[str, Any]:
    return json.loads(_record().to_json())


def test_record_serialises_to_the_documented_camel_case_shape() -> None:
    assert json.loads(_record().to_json()) == {
        "schema": 1,
        "sourceStack": "dev",
        "commit": COMMIT,
        "images": {"api": {"api": API}, "web": {"app": WEB}},
        "createdAt": "2024-05-01T12:30:00Z",
    }


@pytest.mark.parametrize("key", ["dev/promotion.zip", "dev/promotion.json"])
def test_record_round_trips_through_s3(s3: Any, key: str) -> None:
    s3.create_bucket(
        Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_bucket_versioning(Bucket="artifacts", VersioningConfiguration={"Status": "Enabled"})

    version = publish_record(s3, _record(), bucket="artifacts", key=key)
    loaded = load_record(s3, bucket="artifacts", key=key, version_id=version)

    assert version
    assert loaded == _record()
    assert loaded.image("web", "app") == WEB


def test_zip_key_gets_a_zip_holding_promotion_json_for_the_s3_source(s3: Any) -> None:
    s3.create_bucket(
        Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )

    publish_record(s3, _record(), bucket="artifacts", key="dev/promotion.zip")
    body = s3.get_object(Bucket="artifacts", Key="dev/promotion.zip")["Body"].read()

    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.namelist() == ["promotion.json"]
        assert json.loads(archive.read("promotion.json"))["commit"] == COMMIT


def test_record_round_trips_through_local_json_and_zip_files(tmp_path: Path) -> None:
    for name in ("promotion.json", "promotion.zip"):
        written = write_record_file(_record(), tmp_path / "out" / name)
        assert read_record_file(written) == _record()


def test_tag_instead_of_digest_is_refused_naming_the_field() -> None:
    data = _valid_data()
    data["images"]["web"]["app"] = repository_url("shop/web") + ":latest"

    with pytest.raises(PromotionRecordError) as caught:
        parse_record(data)

    assert "images.web.app: " in str(caught.value)
    assert "promote digests, not tags" in str(caught.value)


def test_every_problem_is_reported_one_line_per_field() -> None:
    data = _valid_data()
    del data["sourceStack"]
    data["schema"] = 2
    data["createdAt"] = "2024-05-01T12:30:00"
    data["extra"] = True

    with pytest.raises(PromotionRecordError) as caught:
        parse_record(data, origin="s3://b/k")

    lines = str(caught.value).splitlines()
    assert lines[0] == "s3://b/k is not valid:"
    assert "  sourceStack: is required" in lines
    assert any(line.startswith("  schema: ") for line in lines)
    assert any(line.startswith("  createdAt: ") and "time zone" in line for line in lines)
    assert any(line.startswith("  extra: unknown key; valid keys: ['schema'") for line in lines)


def test_empty_images_are_refused() -> None:
    data = _valid_data()
    data["images"] = {}

    with pytest.raises(PromotionRecordError, match="images: "):
        parse_record(data)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"PK\x03\x04broken", "not a readable zip"),
    ],
)
def test_unreadable_content_is_refused_clearly(content: bytes, message: str) -> None:
    with pytest.raises(PromotionRecordError, match=message):
        read_record(content)


def test_missing_service_or_container_names_what_the_record_holds() -> None:
    record = _record()

    with pytest.raises(PromotionRecordError, match=r"no service 'cart'; it holds: api, web"):
        record.image("cart", "app")
    with pytest.raises(
        PromotionRecordError, match=r"'web' has no container 'nginx'; it holds: app"
    ):
        record.image("web", "nginx")


def test_summary_names_commit_and_each_digest_for_the_approver() -> None:
    assert _record().summary() == (
        f"commit {COMMIT} from dev: api/api=sha256:bbbbbbbbbbbb, web/app=sha256:aaaaaaaaaaaa"
    )


def test_bad_s3_location_is_refused_before_any_call() -> None:
    with pytest.raises(PromotionRecordError, match="key: '' must be a non-empty key"):
        publish_record(object(), _record(), bucket="artifacts", key="")


def test_a_record_of_another_stack_or_commit_is_refused_naming_both() -> None:
    from ecs_delivery.runtime.promotion import check_claims

    record = _record()
    assert check_claims(record, stack="dev", commit=COMMIT[:7], origin="o") is record
    with pytest.raises(PromotionRecordError) as caught:
        check_claims(record, stack="staging", commit="fedcba9", origin="s3://b/k")
    assert str(caught.value).splitlines() == [
        "s3://b/k does not hold what was asked:",
        "  sourceStack: the record is of stack 'dev', not 'staging'",
        f"  commit: the record is of commit {COMMIT!r}, not 'fedcba9'",
    ]


def test_the_validate_step_refuses_a_record_of_another_stack_or_commit(
    tmp_path: Path, capsys
) -> None:
    from ecs_delivery.runtime.build import EXIT_FAILED, main

    path = write_record_file(_record(), tmp_path / "promotion.json")
    field = ["record-field", "--record", str(path), "--field", "commit"]

    assert main([*field, "--expect-source-stack", "staging"]) == EXIT_FAILED
    assert "sourceStack: the record is of stack 'dev', not 'staging'" in capsys.readouterr().err
    out = tmp_path / "out.json"
    reissue = ["promotion-record", "--source-stack", "prod", "--from-record", str(path)]
    assert main([*reissue, "--commit", "fedcba9", "--out", str(out)]) == EXIT_FAILED
    assert f"commit: the record is of commit {COMMIT!r}, not 'fedcba9'" in capsys.readouterr().err
    assert not out.exists()
    assert main([*field, "--expect-source-stack", "dev"]) == 0
    assert capsys.readouterr().out.strip() == COMMIT

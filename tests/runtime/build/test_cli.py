"""`python -m ecs_delivery.runtime.build`: the steps the buildspec runs, their output and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from buildtest_support import CLUSTER, REGION, SERVICE, push_image, repository_url

from ecs_delivery.runtime import build
from ecs_delivery.runtime.build import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, main
from ecs_delivery.runtime.promotion import (
    new_record,
    read_record,
    read_record_file,
    write_record_file,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TAG = COMMIT[:12]


@pytest.fixture
def pushed(ecr: Any) -> str:
    """The web image pushed under TAG; returns its digest URI."""
    ecr.create_repository(repositoryName="web", imageTagMutability="IMMUTABLE")
    return repository_url("web") + "@" + push_image(ecr, "web", TAG)


def test_image_exists_exits_0_when_pushed_and_3_when_not(
    pushed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = repository_url("web")

    assert main(["image-exists", "--repository-url", url, "--tag", TAG]) == EXIT_OK
    assert (
        main(["image-exists", "--repository-url", url, "--tag", "fedcba987654"]) == EXIT_NOT_FOUND
    )
    assert "already pushed as sha256:" in capsys.readouterr().out


def test_image_exists_on_a_missing_repository_is_an_error_not_a_miss(aws: None) -> None:
    # Exit 3 would make the buildspec run `docker build`; a missing repository must stop it.
    assert main(["image-exists", "--repository-url", repository_url("web"), "--tag", TAG]) == 1


def test_image_tag_step_prints_the_short_commit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image-tag", "--source-version", COMMIT]) == EXIT_OK
    assert capsys.readouterr().out == f"{TAG}\n"


def test_promotion_record_step_resolves_tags_writes_and_publishes(
    s3: Any, pushed: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    out = tmp_path / "promotion" / "promotion.json"

    code = main(
        [
            "promotion-record",
            "--source-stack", "dev",
            "--commit", COMMIT,
            "--image", f"web/app={repository_url('web')}:{TAG}",
            "--out", str(out),
            "--bucket", "artifacts",
            "--key", "dev/promotion.zip",
        ]
    )  # fmt: skip

    assert code == EXIT_OK
    written = read_record_file(out)
    assert written.images == {"web": {"app": pushed}}
    assert (written.source_stack, written.commit) == ("dev", COMMIT)
    body = s3.get_object(Bucket="artifacts", Key="dev/promotion.zip")["Body"].read()
    assert body.startswith(b"PK")


def test_promotion_record_step_refuses_an_unpushed_tag(
    pushed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "promotion-record", "--source-stack", "dev", "--commit", COMMIT,
            "--image", f"web/app={repository_url('web')}:000000000000",
            "--out", str(tmp_path / "p.json"),
        ]
    )  # fmt: skip

    assert code == EXIT_FAILED
    assert "web:000000000000 is not in ECR" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_promotion_record_step_republishes_an_upstream_record_as_this_stack(
    tmp_path: Path,
) -> None:
    digest = repository_url("web") + "@sha256:" + "d" * 64
    upstream = new_record(
        source_stack="dev",
        commit=COMMIT,
        images={"web": {"app": digest}},
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    source = write_record_file(upstream, tmp_path / "in.json")
    out = tmp_path / "out.json"

    args = ["promotion-record", "--source-stack", "staging", "--from-record", str(source)]
    assert main([*args, "--out", str(out)]) == EXIT_OK

    republished = read_record_file(out)
    assert (republished.source_stack, republished.commit) == ("staging", COMMIT)
    assert republished.images == upstream.images
    assert republished.created_at > upstream.created_at


def test_record_field_step_prints_the_summary_for_the_approval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = repository_url("web") + "@sha256:" + "e" * 64
    record = new_record(
        source_stack="dev",
        commit=COMMIT,
        images={"web": {"app": digest}},
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    path = write_record_file(record, tmp_path / "promotion.json")

    assert main(["record-field", "--record", str(path), "--field", "summary"]) == EXIT_OK
    assert capsys.readouterr().out == f"commit {COMMIT} from dev: web/app=sha256:eeeeeeeeeeee\n"


def test_record_field_on_an_invalid_record_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "promotion.json"
    path.write_text(json.dumps({"schema": 1, "sourceStack": "dev"}))

    assert main(["record-field", "--record", str(path), "--field", "commit"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "commit: is required" in err and "images: is required" in err


def test_access_denied_names_the_iam_action_the_codebuild_role_lacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # moto does not enforce IAM; a Stubber returns the AccessDenied AWS would.
    ecs = boto3.client("ecs", region_name=REGION)
    monkeypatch.setattr(build, "_client", lambda service, region: ecs)
    image = repository_url("web") + "@sha256:" + "f" * 64
    with Stubber(ecs) as stub:
        stub.add_client_error("describe_services", "AccessDeniedException", "not authorized", 400)
        code = main(
            [
                "deploy",
                "--name",
                "web",
                "--cluster",
                CLUSTER,
                "--service",
                SERVICE,
                "--container",
                "app",
                "--container-port",
                "8080",
                "--family",
                "dev-web",
                "--application",
                "dev",
                "--group",
                "web",
                "--image-uri",
                image,
            ]  # fmt: skip
        )

    assert code == EXIT_FAILED
    assert "the CodeBuild role needs ecs:DescribeServices" in capsys.readouterr().err


def test_tags_resolve_through_the_ecr_of_the_repository_region(aws: None) -> None:
    # The build runs in one region; a repository URL may name another.
    east = boto3.client("ecr", region_name="us-east-1")
    east.create_repository(repositoryName="web")
    digest = push_image(east, "web", TAG)
    url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web"
    asked: list[str] = []

    def ecr_for_region(region: str) -> Any:
        asked.append(region)
        return boto3.client("ecr", region_name=region)

    refs = [build.parse_image_ref(f"web/app={url}:{TAG}")]

    assert build.record_images(ecr_for_region, refs) == {"web": {"app": f"{url}@{digest}"}}
    assert asked == ["us-east-1"]


def test_publish_records_step_writes_release_and_latest_json_then_the_zip(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    digest = repository_url("web") + "@sha256:" + "a" * 64
    record = new_record(
        source_stack="dev",
        commit=COMMIT,
        images={"web": {"app": digest}},
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    path = write_record_file(record, tmp_path / "promotion.json")

    code = main(
        [
            "publish-records", "--record", str(path), "--stack", "dev",
            "--bucket", "artifacts", "--zip-key", "promotion/dev.zip",
        ]
    )  # fmt: skip

    assert code == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        f"published s3://artifacts/promotion/dev/releases/{COMMIT}.json",
        "published s3://artifacts/promotion/dev/latest.json",
        "published s3://artifacts/promotion/dev.zip",
    ]
    for key, content_type in (
        (f"promotion/dev/releases/{COMMIT}.json", "application/json"),
        ("promotion/dev/latest.json", "application/json"),
        ("promotion/dev.zip", "application/zip"),
    ):
        stored = s3.get_object(Bucket="artifacts", Key=key)
        assert stored["ContentType"] == content_type
        body = stored["Body"].read()
        assert read_record(body) == record
        if content_type == "application/json":
            assert json.loads(body)["images"] == {"web": {"app": digest}}


def test_publish_records_step_refuses_a_zip_key_that_is_not_a_zip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "publish-records", "--record", str(tmp_path / "p.json"), "--stack", "dev",
            "--bucket", "artifacts", "--zip-key", "promotion/dev.json",
        ]
    )  # fmt: skip

    assert code == EXIT_FAILED
    assert "--zip-key: 'promotion/dev.json' must end in .zip" in capsys.readouterr().err

"""promoteRelease takes a record only for what it claims: the record at the upstream's key for
a commit must be of that stack and that commit. Under Pulumi's mock runtime, whose S3 (the
test double of AWS) serves a record another stack or commit wrote at that key."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from ecs_delivery.components import images
from ecs_delivery.components.config import ConfigError

COMMIT = "3f9c2a1"
DIGEST = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ecs-delivery-dev/web@sha256:" + "1" * 64


class _S3Serving(pulumi.runtime.Mocks):
    """S3 answers GetObject with one record, whatever key is asked."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list] | dict:
        assert args.token == "aws:s3/getObject:getObject"
        body = json.dumps(self.record)
        return {"bucket": args.args["bucket"], "key": args.args["key"], "body": body}, []


@pytest.mark.parametrize(
    ("stack", "commit", "expected"),
    [
        ("staging", COMMIT, "sourceStack: the record is of stack 'staging', not 'dev'"),
        ("dev", "0123456789", "commit: the record is of commit '0123456789', not '3f9c2a1'"),
    ],
)
def test_promote_release_refuses_a_record_of_another_stack_or_commit_naming_both(
    stack: str, commit: str, expected: str
) -> None:
    record = {"schema": 1, "sourceStack": stack, "commit": commit}
    record |= {"images": {"web": {"web": DIGEST}}, "createdAt": "2026-01-01T00:00:00+00:00"}
    pulumi.runtime.set_mocks(_S3Serving(record), preview=False)

    with pytest.raises(ConfigError) as caught:
        images.read_release(upstream="dev", commit=COMMIT, bucket="b", applied_before=None)

    message = str(caught.value)
    assert f"promoteRelease: s3://b/promotion/dev/releases/{COMMIT}.json does not hold" in message
    assert expected in message

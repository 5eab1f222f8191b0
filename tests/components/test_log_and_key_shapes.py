"""The log bucket's, the key's and the encrypted state machine's inputs fit the AWS API requests.

Each mapper consumes the provider inputs it knows and fails on any other, so a new input
cannot slip past botocore's ParamValidator unmapped (as tests/support/shapes.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_plan
from tests.support.shapes import _Inputs, _tags, validation_errors

SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    r = _Inputs(rule, "lifecycle rule")
    request: dict[str, Any] = {"ID": r.take("id"), "Status": r.take("status")}
    request["Filter"] = {"Prefix": r.take("filter")["prefix"]}
    expiration = r.take("expiration") or {}
    if "days" in expiration:
        request["Expiration"] = {"Days": int(expiration["days"])}
    if "expiredObjectDeleteMarker" in expiration:
        request["Expiration"] = {
            "ExpiredObjectDeleteMarker": expiration["expiredObjectDeleteMarker"]
        }
    if noncurrent := r.take("noncurrentVersionExpiration"):
        request["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(noncurrent["noncurrentDays"])
        }
    if abort := r.take("abortIncompleteMultipartUpload"):
        request["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(abort["daysAfterInitiation"])
        }
    r.done()
    return request


def put_bucket_lifecycle(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "BucketLifecycleConfiguration")
    request = {
        "Bucket": i.take("bucket"),
        "LifecycleConfiguration": {"Rules": [_rule(r) for r in i.take("rules")]},
    }
    i.done()
    return request


def put_bucket_encryption(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "BucketServerSideEncryptionConfiguration")
    rules = []
    for rule in i.take("rules"):
        default = rule["applyServerSideEncryptionByDefault"]
        mapped: dict[str, Any] = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": default["sseAlgorithm"],
                **(
                    {"KMSMasterKeyID": default["kmsMasterKeyId"]}
                    if "kmsMasterKeyId" in default
                    else {}
                ),
            }
        }
        if "bucketKeyEnabled" in rule:
            mapped["BucketKeyEnabled"] = rule["bucketKeyEnabled"]
        rules.append(mapped)
    request = {"Bucket": i.take("bucket"), "ServerSideEncryptionConfiguration": {"Rules": rules}}
    i.done()
    return request


def put_bucket_logging(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "BucketLogging")
    request = {
        "Bucket": i.take("bucket"),
        "BucketLoggingStatus": {
            "LoggingEnabled": {
                "TargetBucket": i.take("targetBucket"),
                "TargetPrefix": i.take("targetPrefix"),
            }
        },
    }
    i.done()
    return request


def create_key(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "Key")
    request = {
        "Policy": i.take("policy"),
        "Description": i.take("description"),
        "KeyUsage": i.take("keyUsage"),
        "KeySpec": i.take("customerMasterKeySpec"),
        "Tags": _tags(i.take("tags"), "TagKey", "TagValue"),
    }
    # Set by separate calls after CreateKey (EnableKeyRotation, ScheduleKeyDeletion).
    assert i.take("enableKeyRotation") is True
    assert 7 <= i.take("deletionWindowInDays") <= 30
    i.done()
    return request


def encryption_configuration(inputs: dict[str, Any]) -> dict[str, Any]:
    """CreateStateMachine's encryptionConfiguration member (the rest is checked elsewhere)."""
    c = _Inputs(inputs["encryptionConfiguration"], "StateMachine encryptionConfiguration")
    request = {
        "type": c.take("type"),
        "kmsKeyId": c.take("kmsKeyId"),
        "kmsDataKeyReusePeriodSeconds": int(c.take("kmsDataKeyReusePeriodSeconds")),
    }
    c.done()
    return request


@pytest.fixture(scope="module")
def keyed_dev():
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    return make_plan("dev", overrides={"kms": {"keyArn": key}})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_lifecycle_encryption_and_logging_of_every_bucket_fit_the_s3_requests(
    stack, dev_plan, prod_plan
):
    plan = {"dev": dev_plan, "prod": prod_plan}[stack]
    checked = 0
    for type_, operation, mapper in [
        (LIFECYCLE, "PutBucketLifecycleConfiguration", put_bucket_lifecycle),
        (SSE, "PutBucketEncryption", put_bucket_encryption),
        ("aws:s3/bucketLogging:BucketLogging", "PutBucketLogging", put_bucket_logging),
    ]:
        for r in plan.of_type(type_):
            assert validation_errors("s3", operation, mapper(r.inputs)) == "", (type_, r.name)
            checked += 1
    assert checked == 3 * 3 - 1  # artifacts, release state, logs; the log bucket logs nowhere


def test_the_stack_key_fits_the_create_key_request(prod_plan):
    key = prod_plan.named("aws:kms/key:Key", "kms")
    assert validation_errors("kms", "CreateKey", create_key(key.inputs)) == ""


def test_the_encrypted_state_machine_fits_the_create_state_machine_request(keyed_dev):
    machine = keyed_dev.named("aws:sfn/stateMachine:StateMachine", "release")
    request = {
        "name": machine.inputs["name"],
        "definition": machine.inputs["definition"],
        "roleArn": machine.inputs["roleArn"],
        "encryptionConfiguration": encryption_configuration(machine.inputs),
    }
    assert validation_errors("stepfunctions", "CreateStateMachine", request) == ""


def test_the_shape_check_catches_a_malformed_logging_request(dev_plan):
    logging = dev_plan.named("aws:s3/bucketLogging:BucketLogging", "artifacts")
    request = put_bucket_logging(logging.inputs)
    request["BucketLoggingStatus"]["LoggingEnabled"]["TargetPrefix"] = 7
    assert "TargetPrefix" in validation_errors("s3", "PutBucketLogging", request)

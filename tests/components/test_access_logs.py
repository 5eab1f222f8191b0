"""Access logs: the log bucket, its policy for ELB and S3 log delivery, and who logs into it."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.components.access_logs import elb_log_principal, log_bucket_statements
from tests.conftest import make_plan
from tests.support.registrations import inputs

ACCOUNT = "123456789012"
DEV_LOGS = f"ecs-delivery-dev-{ACCOUNT}-eu-west-1-logs"
PROD_LOGS = f"ecs-delivery-prod-{ACCOUNT}-eu-west-1-logs"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
ALB = "aws:lb/loadBalancer:LoadBalancer"


def _tls_only(bucket: str) -> dict:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _s3_grant(bucket: str, sid: str, source: str) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/s3/{source}/*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
        },
    }


def test_the_log_bucket_policy_names_the_regions_elb_account_and_exact_log_prefixes(dev_plan):
    policy = json.loads(inputs(dev_plan, "aws:s3/bucketPolicy:BucketPolicy", "logs")["policy"])
    artifacts = f"ecs-delivery-dev-{ACCOUNT}-eu-west-1-artifacts"
    releases = f"ecs-delivery-dev-{ACCOUNT}-eu-west-1-releases"
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            _tls_only(DEV_LOGS),
            {
                "Sid": "ElbLogDelivery",
                "Effect": "Allow",
                # eu-west-1 is older than August 2022: its Elastic Load Balancing account.
                "Principal": {"AWS": "arn:aws:iam::156460612806:root"},
                "Action": "s3:PutObject",
                "Resource": [
                    f"arn:aws:s3:::{DEV_LOGS}/alb/access/AWSLogs/{ACCOUNT}/*",
                    f"arn:aws:s3:::{DEV_LOGS}/alb/connection/AWSLogs/{ACCOUNT}/*",
                ],
            },
            _s3_grant(
                DEV_LOGS,
                "S3ServerAccessLogsEcsDelivery" + f"Dev{ACCOUNT}EuWest1Artifacts",
                artifacts,
            ),
            _s3_grant(
                DEV_LOGS, "S3ServerAccessLogsEcsDelivery" + f"Dev{ACCOUNT}EuWest1Releases", releases
            ),
        ],
    }


@pytest.mark.parametrize(
    ("region", "principal"),
    [
        ("us-east-1", {"AWS": "arn:aws:iam::127311923021:root"}),
        ("us-west-2", {"AWS": "arn:aws:iam::797873946194:root"}),
        ("us-gov-west-1", {"AWS": "arn:aws-us-gov:iam::048591011584:root"}),
        ("cn-north-1", {"AWS": "arn:aws-cn:iam::638102146993:root"}),
        # Opened after August 2022: the log-delivery service principal.
        ("ap-south-2", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
        ("eu-central-2", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
    ],
)
def test_elb_log_delivery_principal_follows_the_region(region, principal):
    assert elb_log_principal(region) == principal
    elb = log_bucket_statements(
        bucket="logs-bucket", region=region, account_id=ACCOUNT, source_buckets=[]
    )[1]
    assert elb["Principal"] == principal
    assert all(f"/AWSLogs/{ACCOUNT}/*" in r for r in elb["Resource"])


def test_the_log_bucket_is_sse_s3_versioned_private_and_expires_logs_even_with_a_stack_key(
    dev_plan, prod_plan
):
    for plan, bucket, days in ((dev_plan, DEV_LOGS, 90), (prod_plan, PROD_LOGS, 365)):
        stack = bucket.split("-")[2]
        assert inputs(plan, "aws:s3/bucket:Bucket", "logs") == {
            "bucket": bucket,
            "forceDestroy": False,
            "tags": {
                **inputs(plan, "aws:s3/bucket:Bucket", "artifacts")["tags"],
                "ecs-delivery:stack": stack,
            },
        }
        assert inputs(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "logs")[
            "rule"
        ] == {"objectOwnership": "BucketOwnerEnforced"}
        assert inputs(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "logs") == {
            "bucket": "logs-id",
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }
        assert inputs(plan, "aws:s3/bucketVersioning:BucketVersioning", "logs") == {
            "bucket": "logs-id",
            "versioningConfiguration": {"status": "Enabled"},
        }
        # ELB and S3 log delivery write only to SSE-S3 buckets: never the stack's key here.
        assert inputs(
            plan,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "logs",
        ) == {
            "bucket": "logs-id",
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        }
        assert inputs(
            plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "logs"
        ) == {
            "bucket": "logs-id",
            "rules": [
                {
                    "id": "expire-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": float(days)},
                    "noncurrentVersionExpiration": {"noncurrentDays": float(days)},
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0},
                },
                {
                    "id": "remove-expired-delete-markers",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"expiredObjectDeleteMarker": True},
                },
            ],
        }


def test_the_load_balancer_writes_access_and_connection_logs_once_the_policy_exists(
    dev_plan, prod_plan
):
    for plan, bucket in ((dev_plan, DEV_LOGS), (prod_plan, PROD_LOGS)):
        alb = plan.named(ALB, "alb")
        assert alb.inputs["accessLogs"] == {
            "bucket": bucket,
            "prefix": "alb/access",
            "enabled": True,
        }
        assert alb.inputs["connectionLogs"] == {
            "bucket": bucket,
            "prefix": "alb/connection",
            "enabled": True,
        }
        policy = plan.named("aws:s3/bucketPolicy:BucketPolicy", "logs")
        assert policy.urn in alb.options["dependsOn"]


def test_the_artifact_promotion_and_release_state_buckets_log_into_the_log_bucket(prod_plan):
    artifacts = f"ecs-delivery-prod-{ACCOUNT}-eu-west-1-artifacts"
    releases = f"ecs-delivery-prod-{ACCOUNT}-eu-west-1-releases"
    policy = prod_plan.named("aws:s3/bucketPolicy:BucketPolicy", "logs")
    logged = {r.name: r for r in prod_plan.of_type(BUCKET_LOGGING)}
    assert {name: r.inputs for name, r in logged.items()} == {
        "artifacts": {
            "bucket": "artifacts-id",
            "targetBucket": PROD_LOGS,
            "targetPrefix": f"s3/{artifacts}/",
        },
        "release-state": {
            "bucket": "release-state-id",
            "targetBucket": PROD_LOGS,
            "targetPrefix": f"s3/{releases}/",
        },
    }
    assert all(policy.urn in r.options["dependsOn"] for r in logged.values())
    # Every bucket but the log bucket itself logs (a bucket logging into itself loops).
    buckets = {r.name for r in prod_plan.of_type("aws:s3/bucket:Bucket")}
    assert buckets - set(logged) == {"logs"}


def test_a_given_log_bucket_receives_the_logs_and_no_bucket_is_created():
    plan = make_plan("dev", overrides={"accessLogs": {"bucketName": "corp-central-logs"}})
    assert [r for r in plan.resources if r.name == "logs"] == []
    assert plan.named(ALB, "alb").inputs["accessLogs"]["bucket"] == "corp-central-logs"
    assert plan.named(ALB, "alb").inputs["connectionLogs"]["bucket"] == "corp-central-logs"
    assert {r.inputs["targetBucket"] for r in plan.of_type(BUCKET_LOGGING)} == {"corp-central-logs"}
    assert plan.outputs["accessLogBucket"] == "corp-central-logs"


def test_with_access_logs_disabled_nothing_logs_and_no_log_bucket_exists():
    plan = make_plan("dev", overrides={"accessLogs": {"enabled": False}})
    assert [r for r in plan.resources if r.name == "logs"] == []
    assert plan.of_type(BUCKET_LOGGING) == []
    alb = plan.named(ALB, "alb").inputs
    assert "accessLogs" not in alb and "connectionLogs" not in alb
    assert "accessLogBucket" not in plan.outputs

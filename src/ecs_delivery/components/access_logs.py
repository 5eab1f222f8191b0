"""The stack's log bucket: ALB access and connection logs, S3 server access logs of its buckets.

Layout (prefixes):

    alb/access/AWSLogs/<account>/...      ALB access logs (ELB adds `AWSLogs/<account>/`)
    alb/connection/AWSLogs/<account>/...  ALB connection logs
    s3/<source bucket>/...                server access logs of each of the stack's buckets

Encrypted with SSE-S3 even when the stack has a customer-managed key: ELB log delivery and
S3 server access logging write only to SSE-S3 buckets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.args import from_config
from ecs_delivery.components.buckets import harden, tls_only_statement
from ecs_delivery.components.config import AccessLogsConfig, TeardownConfig
from ecs_delivery.components.naming import TYPE_PREFIX

ALB_ACCESS_PREFIX = "alb/access"
ALB_CONNECTION_PREFIX = "alb/connection"
S3_PREFIX = "s3/"
S3_LOGGING_SERVICE = "logging.s3.amazonaws.com"
# Regions opened in August 2022 or later: ELB delivers logs as this service principal.
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
# Regions available before August 2022: ELB delivers logs from a per-region AWS account
# (Elastic Load Balancing User Guide, "Enable access logs for your Application Load Balancer").
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
}


def elb_log_principal(region: str) -> dict[str, str]:
    """Who writes a region's load balancer logs: its ELB account, or the log-delivery service."""
    account = ELB_LOG_ACCOUNTS.get(region)
    if account:
        return {"AWS": f"arn:{naming.partition(region)}:iam::{account}:root"}
    return {"Service": ELB_LOG_DELIVERY_SERVICE}


def server_access_log_prefix(bucket: str) -> str:
    """Where a source bucket's server access logs go in the log bucket."""
    return f"{S3_PREFIX}{bucket}/"


@dataclass(frozen=True, kw_only=True)
class AccessLogs:
    """Where a resource writes its access logs: the created log bucket, or one given."""

    bucket: str
    # The created bucket's policy: log delivery checks its permission when logging is set up.
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def s3_prefix(self, source_bucket: str) -> str:
        return server_access_log_prefix(source_bucket)


def log_bucket_statements(
    *, bucket: str, region: str, account_id: str, source_buckets: list[str]
) -> list[dict[str, Any]]:
    """The log bucket's policy: TLS only; ELB writes under the ALB prefixes of this account;
    S3 writes each source bucket's logs under its own prefix, for that bucket only."""
    bucket_arn = naming.s3_bucket_arn(bucket, region)
    statements: list[dict[str, Any]] = [
        tls_only_statement(bucket_arn),
        {
            "Sid": "ElbLogDelivery",
            "Effect": "Allow",
            "Principal": elb_log_principal(region),
            "Action": "s3:PutObject",
            "Resource": [
                f"{bucket_arn}/{prefix}/AWSLogs/{account_id}/*"
                for prefix in (ALB_ACCESS_PREFIX, ALB_CONNECTION_PREFIX)
            ],
        },
    ]
    for source in sorted(source_buckets):
        statements.append(
            {
                "Sid": "S3ServerAccessLogs" + re.sub(r"[^A-Za-z0-9]", "", source.title())[:80],
                "Effect": "Allow",
                "Principal": {"Service": S3_LOGGING_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{server_access_log_prefix(source)}*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": naming.s3_bucket_arn(source, region)},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            }
        )
    return statements


@dataclass(frozen=True, kw_only=True)
class LogBucketArgs:
    """The stack's SSE-S3 log bucket: the buckets whose access logs it receives, and for how long."""

    bucket_name: str
    region: str
    account_id: str
    # The stack's buckets whose server access logs this bucket receives (names are known).
    source_buckets: list[str]
    expiration_days: int = from_config(AccessLogsConfig, "expiration_days")
    tags: dict[str, str] = field(default_factory=dict)
    # `pulumi destroy` deletes the logs too (teardown.forceDestroy; non-production only).
    force_destroy: bool = from_config(TeardownConfig, "force_destroy")


class LogBucket(pulumi.ComponentResource):
    """SSE-S3, versioned, private, TLS-only bucket receiving the stack's access logs; logs expire."""

    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy
    target: AccessLogs

    def __init__(self, name: str, args: LogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}:access-logs:LogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            tags=args.tags,
            opts=child,
        )
        # BucketOwnerEnforced: no ACLs; log delivery is granted by the bucket policy alone.
        ownership, public_access, versioning = harden(name, self.bucket, child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.expiration_days
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                ),
                # S3 refuses ExpiredObjectDeleteMarker beside Days in one rule.
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="remove-expired-delete-markers",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True
                    ),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        self.policy = aws.s3.BucketPolicy(
            name,
            bucket=self.bucket.id,
            policy=iam.output_document(
                log_bucket_statements(
                    bucket=args.bucket_name,
                    region=args.region,
                    account_id=args.account_id,
                    source_buckets=args.source_buckets,
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )
        self.target = AccessLogs(bucket=args.bucket_name, depends_on=[self.policy])
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})

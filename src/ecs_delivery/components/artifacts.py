"""The environment's artifact bucket: pipeline artifacts, build tooling and promotion records.

Layout (prefixes):

    <pipeline name, first 20 chars>/   CodePipeline's artifact store (it truncates the folder
                                        name to 20 characters); expires after N days
    tooling/                            the `ecs_delivery.runtime` package, read by CodeBuild
    promotion/<stack>.zip               the promotion record a downstream pipeline reads

Only pipeline artifacts expire by age: tooling and promotion records must outlive quiet
periods. Every prefix loses its noncurrent versions after N days (the bucket is versioned,
as an S3 source action requires).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.args import (
    derived,
    from_config,
    provider_account,
    provider_region,
    with_defaults,
)
from ecs_delivery.components.buckets import harden, tls_only_statement
from ecs_delivery.components.config import KmsConfig, PipelineConfig, TeardownConfig
from ecs_delivery.components.naming import TYPE_PREFIX

if TYPE_CHECKING:
    from ecs_delivery.components.access_logs import AccessLogs

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
TOOLING_PREFIX = "tooling/"
PROMOTION_PREFIX = "promotion/"
# CodePipeline names its artifact folder after the pipeline, cut to 20 characters.
PIPELINE_FOLDER_LENGTH = 20


def artifact_bucket_name(project: str, stack: str, account_id: str, region: str) -> str:
    """Deterministic, globally unique bucket name (the account id keeps it ours).

    Known at plan time, so the generated buildspec and the policies are plain text.
    """
    name = f"{project}-{stack}-{account_id}-{region}-artifacts".lower().replace("_", "-")
    name = re.sub(r"[^a-z0-9-]", "-", name)
    if not BUCKET_NAME.match(name):
        raise ValueError(
            f"artifact bucket name {name!r} is not a valid S3 bucket name (3-63 chars of "
            "a-z, 0-9, '-'); shorten the project or stack name"
        )
    return name


def pipeline_artifact_prefix(pipeline_name: str) -> str:
    """Where CodePipeline stores the pipeline's artifacts inside the artifact store."""
    return pipeline_name[:PIPELINE_FOLDER_LENGTH] + "/"


def promotion_key(stack: str) -> str:
    """The object a downstream pipeline's S3 source action reads (a zip with promotion.json)."""
    return f"{PROMOTION_PREFIX}{stack}.zip"


def reader_statements(
    bucket_arn: pulumi.Input[str], account_ids: list[str], *, region: str
) -> list[dict[str, Any]]:
    """Downstream accounts may read the promotion records (and the bucket's versioning)."""
    if not account_ids:
        return []
    principals = {
        "AWS": [naming.iam_arn("root", region=region, account=a) for a in sorted(account_ids)]
    }
    return [
        {
            "Sid": "DownstreamReadPromotionRecords",
            "Effect": "Allow",
            "Principal": principals,
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": pulumi.Output.concat(bucket_arn, "/", PROMOTION_PREFIX, "*"),
        },
        {
            "Sid": "DownstreamSourceAction",
            "Effect": "Allow",
            "Principal": principals,
            "Action": ["s3:GetBucketVersioning", "s3:GetBucketLocation"],
            "Resource": bucket_arn,
        },
    ]


@dataclass(frozen=True, kw_only=True)
class ArtifactBucketArgs:
    """The pipeline's artifact and promotion bucket: encrypted, versioned, TLS-only, expiring."""

    bucket_name: str | None = derived(
        "`artifacts.artifact_bucket_name(project, stack, account, region)`, the provider's account"
    )
    # The ARN partition of the reading accounts' principals (naming.partition).
    region: str | None = derived("the AWS provider's (`aws.get_region`)")
    # Prefixes whose objects expire `expiry_days` after creation (the pipeline's artifacts).
    expiring_prefixes: list[str]
    expiry_days: int = from_config(PipelineConfig, "artifact_expiry_days")
    noncurrent_expiry_days: int = from_config(PipelineConfig, "artifact_expiry_days")
    # None: SSE-S3 (AES256); an ARN: SSE-KMS with that key and S3 bucket keys.
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    # Server access logs of this bucket (accessLogs config); None: none.
    access_logs: AccessLogs | None
    # Accounts of downstream environments that read the promotion records.
    reader_account_ids: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    # `pulumi destroy` deletes the objects too (teardown.forceDestroy; non-production only).
    force_destroy: bool = from_config(TeardownConfig, "force_destroy")

    def __post_init__(self) -> None:
        if self.bucket_name is not None and not BUCKET_NAME.match(self.bucket_name):
            raise ValueError(f"bucket_name: {self.bucket_name!r} is not a valid bucket name")
        if not self.expiring_prefixes or any(
            not p or not p.endswith("/") for p in self.expiring_prefixes
        ):
            raise ValueError(
                "expiring_prefixes: give non-empty prefixes ending in '/' (an empty prefix "
                "would expire the tooling and promotion records too)"
            )
        bad = [a for a in self.reader_account_ids if not ACCOUNT_ID.match(a)]
        if bad:
            raise ValueError(f"reader_account_ids: {bad} are not 12-digit AWS account ids")


class ArtifactBucket(pulumi.ComponentResource):
    """Versioned, encrypted, private, TLS-only bucket with lifecycle expiry."""

    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    policy: aws.s3.BucketPolicy
    name: str
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactBucketArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:artifacts:ArtifactBucket", name, None, opts)
        region = functools.cache(lambda: args.region or provider_region(self))
        args = with_defaults(
            args,
            region=region,
            bucket_name=lambda: artifact_bucket_name(
                pulumi.get_project(), pulumi.get_stack(), provider_account(self), region()
            ),
        )
        child = pulumi.ResourceOptions(parent=self)
        self.name = args.bucket_name
        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            # Promotion records are the upstream half of a release: dropped only on request.
            force_destroy=args.force_destroy,
            tags=args.tags,
            opts=child,
        )
        self.arn = self.bucket.arn
        ownership, public_access, self.versioning = harden(name, self.bucket, child)
        by_default = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
            )
            if args.kms_key_arn is not None
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=by_default,
                    bucket_key_enabled=args.kms_key_arn is not None,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=self.bucket.id,
            rules=self._lifecycle_rules(args),
            # Lifecycle rules on a bucket whose versioning is still being enabled are rejected.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        self.policy = aws.s3.BucketPolicy(
            name,
            bucket=self.bucket.id,
            policy=iam.output_document(
                [tls_only_statement(self.bucket.arn)]
                + reader_statements(self.bucket.arn, args.reader_account_ids, region=args.region)
            ),
            # The public access block must exist first: a policy is judged "public" against it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )
        # Object events go to EventBridge: a downstream pipeline starts on a new promotion record.
        aws.s3.BucketNotification(name, bucket=self.bucket.id, eventbridge=True, opts=child)
        if args.access_logs is not None:
            aws.s3.BucketLogging(
                name,
                bucket=self.bucket.id,
                target_bucket=args.access_logs.bucket,
                target_prefix=args.access_logs.s3_prefix(args.bucket_name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.access_logs.depends_on),
            )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})

    @staticmethod
    def _lifecycle_rules(
        args: ArtifactBucketArgs,
    ) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"expire-{prefix.rstrip('/')}",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=args.expiry_days
                ),
            )
            for prefix in args.expiring_prefixes
        ]
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_expiry_days
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    expired_object_delete_marker=True
                ),
            )
        )
        return rules

"""Hardening every bucket of the platform shares (artifacts, release state, logs), in one home."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws


def tls_only_statement(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def harden(
    name: str, bucket: aws.s3.Bucket, child: pulumi.ResourceOptions
) -> tuple[aws.s3.BucketOwnershipControls, aws.s3.BucketPublicAccessBlock, aws.s3.BucketVersioning]:
    """What every bucket of the platform has: no ACLs (BucketOwnerEnforced), every kind of
    public access blocked, versioning on. Children are named `name`, as the bucket is."""
    ownership = aws.s3.BucketOwnershipControls(
        name,
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    versioning = aws.s3.BucketVersioning(
        name,
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled"
        ),
        opts=child,
    )
    return ownership, public_access, versioning

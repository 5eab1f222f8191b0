"""The stack's customer-managed KMS key (`kms.create`) and the IAM statements that use a key.

The key policy keeps the account root as administrator (without it the key becomes
unmanageable), lets this account's principals use the key only through the services that
encrypt the stack's data (and only where their IAM policies allow it, on the exact key ARN),
and lets CloudWatch Logs encrypt this account's log groups in the region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.naming import TYPE_PREFIX

# Services that call KMS on behalf of the stack's principals.
VIA_SERVICES = ("s3", "ecr", "codebuild", "lambda", "states")
ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
]
USE_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]


def key_policy_statements(*, region: str, account_id: str) -> list[dict[str, Any]]:
    partition = naming.partition(region)
    root = {"AWS": f"arn:{partition}:iam::{account_id}:root"}
    via = [f"{service}.{region}.amazonaws.com" for service in VIA_SERVICES]
    return [
        {
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": root,
            "Action": ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "AccountUsesTheKeyThroughServices",
            "Effect": "Allow",
            "Principal": root,
            "Action": [*USE_ACTIONS, "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": via}},
        },
        # ECR and Lambda hold grants for the resources they encrypt.
        {
            "Sid": "ServicesHoldGrantsForResources",
            "Effect": "Allow",
            "Principal": root,
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": via},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
        {
            "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [*USE_ACTIONS, "kms:Describe*"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                }
            },
        },
    ]


def use_statement(
    key_arn: pulumi.Input[str], *, sid: str = "UseStackKey", condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a role needs to read and write data encrypted with the key: on that key only."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": key_arn,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def via_s3_statement(key_arn: pulumi.Input[str], *, region: str, sid: str) -> dict[str, Any]:
    """Use of the key only for S3 objects in `region` (reading and writing encrypted objects)."""
    return use_statement(
        key_arn,
        sid=sid,
        condition={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
    )


@dataclass(frozen=True, kw_only=True)
class StackKeyArgs:
    """The stack's customer-managed KMS key (kms.create): its alias and where it lives."""

    alias: str
    region: str
    account_id: str
    tags: dict[str, str] = field(default_factory=dict)


class StackKey(pulumi.ComponentResource):
    """A symmetric key with yearly rotation, its alias, and a least-privilege key policy."""

    key: aws.kms.Key
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}:kms:StackKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(
            name,
            description=f"Data of {args.alias.removeprefix('alias/')}: buckets, images, logs, builds, functions, state machine",
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=iam.document(
                key_policy_statements(region=args.region, account_id=args.account_id)
            ),
            tags=args.tags,
            opts=child,
        )
        self.alias = aws.kms.Alias(name, name=args.alias, target_key_id=self.key.arn, opts=child)
        self.arn = self.key.arn
        self.register_outputs({"arn": self.key.arn, "alias": self.alias.name})

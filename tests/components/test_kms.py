"""Customer-managed key (`kms`): the created key and its policy, and every place the key reaches."""

from __future__ import annotations

import json

from tests.conftest import make_plan
from tests.support.registrations import inputs, policy

ACCOUNT = "123456789012"
GIVEN_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VIA = [f"{s}.eu-west-1.amazonaws.com" for s in ("s3", "ecr", "codebuild", "lambda", "states")]
S3_ONLY = {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
KEYED = [
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:ecr/repository:Repository",
    "aws:codebuild/project:Project",
    "aws:codepipeline/pipeline:Pipeline",
    "aws:lambda/function:Function",
    "aws:sfn/stateMachine:StateMachine",
]


def _given_key_plan():
    return make_plan("dev", overrides={"kms": {"keyArn": GIVEN_KEY}})


def _key_of(resource) -> object:
    """Where each resource type names its key (None: AWS-managed encryption)."""
    i = resource.inputs
    return {
        "aws:cloudwatch/logGroup:LogGroup": lambda: i.get("kmsKeyId"),
        "aws:ecr/repository:Repository": lambda: i["encryptionConfigurations"][0].get("kmsKey"),
        "aws:codebuild/project:Project": lambda: i.get("encryptionKey"),
        "aws:codepipeline/pipeline:Pipeline": lambda: (
            i["artifactStores"][0].get("encryptionKey") or {}
        ).get("id"),
        "aws:lambda/function:Function": lambda: i.get("kmsKeyArn"),
        "aws:sfn/stateMachine:StateMachine": lambda: (i.get("encryptionConfiguration") or {}).get(
            "kmsKeyId"
        ),
    }[resource.type]()


def test_prod_creates_a_rotating_key_with_an_alias_and_the_root_as_administrator(prod_plan):
    key = prod_plan.named("aws:kms/key:Key", "kms")
    body = {k: v for k, v in key.inputs.items() if k != "policy"}
    assert body == {
        "description": "Data of ecs-delivery-prod: buckets, images, logs, builds, functions, state machine",
        "keyUsage": "ENCRYPT_DECRYPT",
        "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "enableKeyRotation": True,
        "deletionWindowInDays": 30.0,
        "tags": inputs(prod_plan, "aws:s3/bucket:Bucket", "artifacts")["tags"],
    }
    assert inputs(prod_plan, "aws:kms/alias:Alias", "kms") == {
        "name": "alias/ecs-delivery-prod",
        "targetKeyId": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/kms-9561ec7",
    }
    root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert json.loads(key.inputs["policy"])["Statement"] == [
        {
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": root,
            "Action": [
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
            ],
            "Resource": "*",
        },
        {
            "Sid": "AccountUsesTheKeyThroughServices",
            "Effect": "Allow",
            "Principal": root,
            "Action": [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
                "kms:DescribeKey",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": VIA}},
        },
        {
            "Sid": "ServicesHoldGrantsForResources",
            "Effect": "Allow",
            "Principal": root,
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": VIA},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
        {
            "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
            "Action": [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
                "kms:Describe*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:*"
                }
            },
        },
    ]
    assert prod_plan.outputs["kmsKeyArn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/kms-9561ec7"


def test_dev_stays_on_aws_managed_encryption_and_creates_no_key(dev_plan):
    assert dev_plan.of_type("aws:kms/key:Key") == []
    assert "kmsKeyArn" not in dev_plan.outputs
    for type_ in KEYED:
        assert [r.name for r in dev_plan.of_type(type_) if _key_of(r)] == [], type_
    rules = [
        r.inputs["rules"][0]
        for r in dev_plan.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
    ]
    assert {r["applyServerSideEncryptionByDefault"]["sseAlgorithm"] for r in rules} == {"AES256"}


def test_a_given_key_reaches_buckets_ecr_logs_builds_pipelines_lambdas_and_the_state_machine():
    plan = _given_key_plan()
    assert plan.of_type("aws:kms/key:Key") == []
    for type_ in KEYED:
        resources = plan.of_type(type_)
        assert resources, type_
        assert {r.name: _key_of(r) for r in resources} == {r.name: GIVEN_KEY for r in resources}
    sse = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    for bucket in ("artifacts", "release-state"):
        assert inputs(plan, sse, bucket)["rules"] == [
            {
                "applyServerSideEncryptionByDefault": {
                    "sseAlgorithm": "aws:kms",
                    "kmsMasterKeyId": GIVEN_KEY,
                },
                "bucketKeyEnabled": True,
            }
        ]
    assert inputs(plan, "aws:sfn/stateMachine:StateMachine", "release")[
        "encryptionConfiguration"
    ] == {
        "type": "CUSTOMER_MANAGED_KMS_KEY",
        "kmsKeyId": GIVEN_KEY,
        "kmsDataKeyReusePeriodSeconds": 300.0,
    }
    assert inputs(plan, "aws:codepipeline/pipeline:Pipeline", "release")["artifactStores"] == [
        {
            "location": f"ecs-delivery-dev-{ACCOUNT}-eu-west-1-releases",
            "type": "S3",
            "encryptionKey": {"id": GIVEN_KEY, "type": "KMS"},
        }
    ]


def _statement(plan, role_policy: str, sid: str) -> dict:
    return next(s for s in policy(plan, role_policy)["Statement"] if s["Sid"] == sid)


def test_roles_that_read_or_write_encrypted_data_may_use_exactly_the_key():
    plan = _given_key_plan()
    use = {
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": GIVEN_KEY,
    }
    for role_policy, sid in [
        ("release-steps", "StateBucketKey"),
        ("release-validate", "StateBucketKey"),
        ("release-pipeline", "StateBucketKey"),
        ("codedeploy-api", "ReadRevisionsKey"),
        ("codedeploy-web", "ReadRevisionsKey"),
    ]:
        assert _statement(plan, role_policy, sid) == {**use, "Sid": sid, "Condition": S3_ONLY}
    machine = f"arn:aws:states:eu-west-1:{ACCOUNT}:stateMachine:ecs-delivery-dev-release"
    assert _statement(plan, "release-machine", "MachineKey") == {
        **use,
        "Sid": "MachineKey",
        "Condition": {
            "StringEquals": {"kms:EncryptionContext:aws:states:stateMachineArn": machine}
        },
    }
    assert _statement(plan, "release-machine", "MachineLogDeliveryKey") == {
        "Sid": "MachineLogDeliveryKey",
        "Effect": "Allow",
        "Action": "kms:GenerateDataKey",
        "Resource": GIVEN_KEY,
        "Condition": {
            "StringLike": {"kms:EncryptionContext:SourceArn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:*"}
        },
    }
    # Every KMS statement in every role names the key itself, never "*".
    kms_resources = {
        json.dumps(s["Resource"])
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        for s in json.loads(r.inputs["policy"])["Statement"]
        if any(
            str(a).startswith("kms:")
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        )
    }
    assert kms_resources == {json.dumps(GIVEN_KEY)}


def test_the_deployer_policy_reads_the_encrypted_release_state_through_s3_only():
    plan = _given_key_plan()
    statements = [
        s
        for r in plan.of_type("aws:iam/policy:Policy")
        for s in json.loads(r.inputs["policy"])["Statement"]
        if s["Sid"] == "ReleaseStateKey"
    ]
    assert statements == [
        {
            "Sid": "ReleaseStateKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": GIVEN_KEY,
            "Condition": S3_ONLY,
        }
    ]

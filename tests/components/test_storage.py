"""ECR repositories and the artifact bucket: immutable, scanned, encrypted, private, expiring."""

from __future__ import annotations

import json

from ecs_delivery.components import codebuild
from tests.support.plans import REPOSITORY, buildspec, inputs

BUCKET = "ecs-delivery-dev-123456789012-eu-west-1-artifacts"


def test_each_service_has_an_immutable_scanned_encrypted_repository(dev):
    for service in ("api", "web"):
        repository = inputs(dev, REPOSITORY, f"ecr-{service}")
        assert repository == {
            "name": f"ecs-delivery-dev/{service}",
            "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
            "encryptionConfigurations": [{"encryptionType": "AES256"}],
            "forceDelete": False,
            "tags": {**repository["tags"], "Service": service},
        }


def test_repository_lifecycle_expires_untagged_images_and_keeps_the_last_tagged(dev):
    policy = json.loads(inputs(dev, "aws:ecr/lifecyclePolicy:LifecyclePolicy", "ecr-web")["policy"])
    assert policy == {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire untagged images 7 days after push",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "Keep the last 50 tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 50,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def test_prod_builds_nothing_and_passes_on_the_upstream_repositories(dev, prod):
    assert prod.of_type(REPOSITORY) == []
    assert (
        prod.outputs["ecrRepositoryArns"]
        == dev.outputs["ecrRepositoryArns"]
        == {
            "api": "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-dev/api",
            # dev's worker: prod runs no mailer, and passes dev's repositories on as they are.
            "mailer": "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-dev/mailer",
            "web": "arn:aws:ecr:eu-west-1:123456789012:repository/ecs-delivery-dev/web",
        }
    )
    assert prod.outputs["ecrRepositories"] == dev.outputs["ecrRepositories"]


def test_artifact_bucket_is_versioned_encrypted_private_and_owner_enforced(dev):
    assert inputs(dev, "aws:s3/bucket:Bucket", "artifacts")["bucket"] == BUCKET
    versioning = inputs(dev, "aws:s3/bucketVersioning:BucketVersioning", "artifacts")
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    encryption = inputs(
        dev,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "artifacts",
    )
    assert encryption["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
            "bucketKeyEnabled": False,
        }
    ]
    block = inputs(dev, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "artifacts")
    assert {k: v for k, v in block.items() if k != "bucket"} == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    ownership = inputs(dev, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "artifacts")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_artifact_bucket_policy_denies_every_request_without_tls(dev):
    policy = json.loads(inputs(dev, "aws:s3/bucketPolicy:BucketPolicy", "artifacts")["policy"])
    assert policy["Statement"] == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


def test_only_pipeline_artifacts_expire_and_old_versions_everywhere(dev):
    rules = inputs(
        dev, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "artifacts"
    )["rules"]
    assert rules == [
        {
            "id": "expire-ecs-delivery-dev",
            "status": "Enabled",
            # CodePipeline's folder: the pipeline name cut to 20 characters.
            "filter": {"prefix": "ecs-delivery-dev/"},
            "expiration": {"days": 30},
        },
        {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrentVersionExpiration": {"noncurrentDays": 30},
            "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
            "expiration": {"expiredObjectDeleteMarker": True},
        },
    ]


def test_bucket_sends_object_events_to_eventbridge_for_downstream_pipelines(dev):
    notification = inputs(dev, "aws:s3/bucketNotification:BucketNotification", "artifacts")
    assert notification["eventbridge"] is True


def test_build_tooling_is_the_delivery_package_without_bytecode_at_the_buildspec_location(dev):
    registration = dev.named("aws:s3/bucketObjectv2:BucketObjectv2", "pipeline-tooling")
    archive = registration.inputs["source"]
    names = sorted(archive.assets)
    runtime = "ecs_delivery/runtime"
    assert {f"{runtime}/__init__.py", f"{runtime}/build.py", f"{runtime}/promotion.py"} <= set(
        names
    )
    assert "ecs_delivery/__init__.py" in names
    # The runtime, and the one reader of user files (ecs_delivery/inputs.py) it reads with.
    top = {"ecs_delivery/__init__.py", "ecs_delivery/inputs.py"}
    assert all((n.startswith(f"{runtime}/") or n in top) and n.endswith(".py") for n in names)
    assert not any("__pycache__" in n for n in names)
    key = registration.inputs["key"]
    assert key == codebuild.tooling_key()
    install = buildspec(dev)["phases"]["install"]["commands"]
    assert (
        install[0]
        == f"aws s3 cp --only-show-errors s3://{BUCKET}/{key} /tmp/ecs-delivery-tooling.zip"
    )

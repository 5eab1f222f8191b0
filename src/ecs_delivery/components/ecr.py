"""ECR repository of one service's images: immutable tags, scan on push, encryption, lifecycle."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.args import from_config
from ecs_delivery.components.config import KmsConfig, PipelineConfig, TeardownConfig
from ecs_delivery.components.naming import TYPE_PREFIX

ACCOUNT_ID = re.compile(r"^\d{12}$")

# What another account needs to pull an image by digest (downstream execution roles).
PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]


def lifecycle_policy(*, keep_tagged: int, untagged_expiry_days: int) -> dict[str, Any]:
    """Expire untagged images after N days; keep the newest `keep_tagged` tagged images.

    Rule 1 only sees untagged images (layers of failed or superseded pushes); rule 2 sees
    every tagged image (`tagPatternList: ["*"]`), so tagged images are never expired by age.
    """
    if keep_tagged < 1 or untagged_expiry_days < 1:
        raise ValueError("keep_tagged and untagged_expiry_days must be at least 1")
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images {untagged_expiry_days} days after push",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_expiry_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the last {keep_tagged} tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_tagged,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def pull_policy(account_ids: list[str], *, region: str) -> str:
    """Repository policy letting other accounts (downstream environments) pull images."""
    return iam.document(
        [
            {
                "Sid": "DownstreamPull",
                "Effect": "Allow",
                "Principal": {
                    "AWS": [
                        naming.iam_arn("root", region=region, account=a)
                        for a in sorted(account_ids)
                    ]
                },
                "Action": PULL_ACTIONS,
            }
        ]
    )


@dataclass(frozen=True, kw_only=True)
class ImageRepositoryArgs:
    """A service's repository; `repository_name` comes from `naming.ecr_repository`."""

    repository_name: str
    # The ARN partition of the pulling accounts' principals (naming.partition).
    region: str
    keep_tagged_images: int = from_config(PipelineConfig, "ecr_keep_tagged_images")
    untagged_expiry_days: int = from_config(PipelineConfig, "ecr_untagged_expiry_days")
    # None: AES256 (ECR-managed keys); an ARN: that KMS key (cannot change after creation).
    kms_key_arn: pulumi.Input[str] | None = from_config(KmsConfig, "key_arn")
    # Other accounts whose roles may pull (cross-account promotion); same account needs none.
    pull_account_ids: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    # `pulumi destroy` deletes the images too (teardown.forceDestroy; non-production only).
    force_delete: bool = from_config(TeardownConfig, "force_destroy")

    def __post_init__(self) -> None:
        bad = [a for a in self.pull_account_ids if not ACCOUNT_ID.match(a)]
        if bad:
            raise ValueError(f"pull_account_ids: {bad} are not 12-digit AWS account ids")


class ImageRepository(pulumi.ComponentResource):
    """One service's images; tags are commits and immutable, so a tag names one image for ever."""

    repository: aws.ecr.Repository
    url: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ImageRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:ecr:ImageRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        encryption = (
            aws.ecr.RepositoryEncryptionConfigurationArgs(
                encryption_type="KMS", kms_key=args.kms_key_arn
            )
            if args.kms_key_arn is not None
            else aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
        )
        self.repository = aws.ecr.Repository(
            name,
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[encryption],
            # Images may run in this or a downstream environment: deleted only on request.
            force_delete=args.force_delete,
            tags=args.tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name,
            repository=self.repository.name,
            policy=json.dumps(
                lifecycle_policy(
                    keep_tagged=args.keep_tagged_images,
                    untagged_expiry_days=args.untagged_expiry_days,
                ),
                sort_keys=True,
            ),
            opts=child,
        )
        if args.pull_account_ids:
            aws.ecr.RepositoryPolicy(
                name,
                repository=self.repository.name,
                policy=pull_policy(args.pull_account_ids, region=args.region),
                opts=child,
            )
        self.url = self.repository.repository_url
        self.arn = self.repository.arn
        self.register_outputs({"url": self.url, "arn": self.arn})

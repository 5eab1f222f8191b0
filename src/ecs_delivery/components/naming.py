"""Deterministic physical names: the live-image look-ups and the deployer find resources by them."""

from __future__ import annotations

import pulumi

TYPE_PREFIX = "ecs-delivery"


def former_name(new: str, old: str, *, owner: bool) -> list[pulumi.Alias]:
    """The alias that keeps a child's URN from when its name was fixed, not the component's.

    With fixed names only one instance of a component could exist; `owner` is that instance
    (the one the program has always built under its historic name). Only it claims the old
    name: two resources claiming one alias fail the engine ("Duplicate resource alias").
    """
    return [pulumi.Alias(name=old)] if owner and old != new else []


def cluster_name(project: str, stack: str) -> str:
    """One ECS cluster per stack."""
    return f"{project}-{stack}"


def service_name(service: str) -> str:
    """ECS service names are unique per cluster, so the config key is enough."""
    return service


def task_family(project: str, stack: str, service: str) -> str:
    """Task-definition family per stack and service (families are account-wide)."""
    return f"{project}-{stack}-{service}"


def template_family(project: str, stack: str, service: str) -> str:
    """Family of the Pulumi-registered template revision, outside the service's own family.

    Deployers register into `task_family` only, so nothing that deploys "the latest revision
    of the family" can pick up the template's placeholder image.
    """
    return f"{task_family(project, stack, service)}-template"


def codedeploy_application(project: str, stack: str) -> str:
    """One CodeDeploy application per stack; one deployment group per service inside it."""
    return f"{project}-{stack}"


def deployment_group(service: str) -> str:
    return service


def name_prefix(project: str, stack: str) -> str:
    """Prefix of the stack's account-wide names (alarms, custom deployment configs, the hook)."""
    return f"{project}-{stack}"


def validation_hook(project: str, stack: str) -> str:
    """The validation hook Lambda: CodeDeploy's AppSpecs and ECS's lifecycle hooks name it."""
    return f"{name_prefix(project, stack)}-validation-hook"


def ecr_namespace(project: str, stack: str) -> str:
    """The namespace of this stack's ECR repositories (every name in it is the stack's own)."""
    return f"{project}-{stack}"


def ecr_repository(project: str, stack: str, service: str) -> str:
    """ECR repository of a service's images (or a built sidecar's, `built_image`), built by
    this stack's pipeline."""
    return f"{ecr_namespace(project, stack)}/{service}"


def built_image(service: str, container: str) -> str:
    """What names an image the pipeline builds: the service's own container is the service,
    a built sidecar `service/sidecar` (its ECR repository, its key in `ecrRepositoryArns`; a
    service name holds no '/', so the two never meet)."""
    return service if container == service else f"{service}/{container}"


def ecr_repository_arn(region: str, account: str, repository: str) -> str:
    return arn("ecr", f"repository/{repository}", region=region, account=account)


def cluster_arn(region: str, account: str, cluster: str) -> str:
    return arn("ecs", f"cluster/{cluster}", region=region, account=account)


# Region prefixes of the AWS partitions other than "aws" (longest first: us-isob- before us-iso-).
PARTITIONS = (
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)


def partition(region: str) -> str:
    """The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
    if not region:
        raise ValueError("a region is required to know the ARN partition")
    return next((p for prefix, p in PARTITIONS if region.startswith(prefix)), "aws")


def arn(service: str, resource: str, *, region: str, account: str = "", scoped: bool = True) -> str:
    """An ARN in the region's partition; `scoped=False` leaves region out (IAM, S3)."""
    return f"arn:{partition(region)}:{service}:{region if scoped else ''}:{account}:{resource}"


def log_bucket_name(project: str, stack: str, account: str, region: str) -> str:
    """The stack's log bucket (access logs of the load balancer and of the other buckets)."""
    return f"{project}-{stack}-{account}-{region}-logs".lower().replace("_", "-")


def release_name(project: str, stack: str) -> str:
    """The release's state machine and pipeline; its steps' functions start with it."""
    return f"{project}-{stack}-release"


def release_bucket_name(project: str, stack: str, account: str, region: str) -> str:
    """Release state and the release pipeline's artifacts."""
    return f"{project}-{stack}-{account}-{region}-releases"


def s3_bucket_arn(bucket: str, region: str) -> str:
    return arn("s3", bucket, region=region, scoped=False)


def kms_alias(project: str, stack: str) -> str:
    """The alias of the key a stack creates (`kms.create`)."""
    return f"alias/{project}-{stack}"


def web_acl_name(project: str, stack: str) -> str:
    """The WAF web ACL the platform creates for the stack's load balancer (regional)."""
    return f"{project}-{stack}"


def iam_arn(resource: str, *, region: str, account: str) -> str:
    """An IAM ARN (`role/<name>`, `root`): global within the region's partition."""
    return arn("iam", resource, region=region, account=account, scoped=False)


def s3_arn(resource: str, *, region: str) -> str:
    """An S3 bucket or object ARN (`<bucket>`, `<bucket>/<key>`) in the region's partition."""
    return arn("s3", resource, region=region, scoped=False)


def listener_rules_arn(listener_arn: str) -> str:
    """Every rule of exactly this listener: rule ARNs hold a random id, their prefix does not.

    `...:listener/app/<lb>/<lb-id>/<listener-id>` has the rules
    `...:listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id>`.
    """
    head, sep, path = listener_arn.partition(":listener/")
    if not sep:
        raise ValueError(f"{listener_arn!r} is not a load balancer listener ARN")
    return f"{head}:listener-rule/{path}/*"

"""Value rules the config models share: Fargate sizes, names, ARNs, image references."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Strict

from ecs_delivery.runtime import image_reference

# Valid Fargate task sizes (cpu units -> memory MiB), from the AWS ECS task-size table.
FARGATE_MEMORY: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:(secret:|parameter/).+"
)
ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
WEB_ACL_ARN = re.compile(
    r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$"
)
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")
KMS_KEY_ARN = re.compile(
    r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/mrk-[0-9a-f]{32}$"
)
CLOUD_MAP_NAMESPACE_ARN = re.compile(
    r"^arn:aws[a-z-]*:servicediscovery:[a-z0-9-]+:\d{12}:namespace/ns-[a-z0-9]{16,64}$"
)
S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Plain variable names that usually hold a secret; they belong in `secrets` (by ARN).
SECRET_LIKE = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL",
    re.IGNORECASE,
)

# The registry's image reference grammar lives with the runtime, which checks manifests with it.
DIGEST = image_reference.DIGEST
IMAGE_GRAMMAR = image_reference.GRAMMAR
image_reference_problems = image_reference.problems


def check_image(value: str | None) -> str | None:
    """A field validator: an image reference, or None."""
    if value is None:
        return value
    problems = (
        image_reference_problems(value) if value.strip() == value and value else ["empty or padded"]
    )
    if problems:
        raise ValueError(
            f"{value!r} is not an image reference: {'; '.join(problems)}; use {IMAGE_GRAMMAR}"
        )
    return value


# A boolean: only true or false (YAML booleans), never "yes", 1 or "true".
Flag = Annotated[bool, Strict()]

"""Entry point the Pulumi CLI runs: serves the pack's policies to the engine."""

import pack
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=pack.NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=pack.policies(),
    description="ecs-delivery security rules: network, IAM, containers, logs, ECR, S3, TLS, CodeDeploy",
)

"""ecs-delivery: secure continuous delivery for ECS Fargate, as Pulumi components and tools.

Subpackages: `components` (the Pulumi components), `runtime` (what deploys: rollouts, the
pipeline's steps, the release engine; it ships to CodeBuild and Lambda, so this file imports
nothing), `lambdas` (the functions' handlers) and `offline` (the plan, the diff and the
simulated AWS they run against; never shipped to AWS).
"""

__version__ = "0.2.0"

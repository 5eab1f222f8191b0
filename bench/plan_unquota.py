"""Run the offline plan with IAM's per-role managed-policy quota check lifted (benchmark only).

    python bench/plan_unquota.py --stack bench [plan args]

A stack of 500 or 1,000 services needs more managed policies on its deploy roles than IAM
attaches by default (the plan refuses it, as `pulumi up` would fail); lifting the check here
measures how the program scales, not a deployable stack. Every other check stays.
"""

import runpy
import sys

try:  # before iam imports pulumi_aws, as the plan itself does (older trees have no lazy_aws)
    from ecs_delivery.offline import lazy_aws
except ImportError:
    pass
else:
    lazy_aws.install()

from ecs_delivery.components import iam  # noqa: E402

iam.MANAGED_POLICIES_PER_ROLE = sys.maxsize
sys.argv[0] = "ecs_delivery.offline.plan"
runpy.run_module("ecs_delivery.offline.plan", run_name="__main__", alter_sys=True)

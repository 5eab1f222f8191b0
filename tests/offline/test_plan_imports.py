"""The plan command imports only what it uses: pulumi_aws modules of the resources it plans,
no AWS client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Modules of service packages the program touches (`aws.ec2`, `aws.s3`, `aws.cloudwatch`) for
# resources it never creates: each generated package's `__init__` would import them all.
UNUSED = {
    "pulumi_aws.ec2.instance",
    "pulumi_aws.ec2.spot_instance_request",
    "pulumi_aws.ec2.launch_template",
    "pulumi_aws.ec2.vpn_connection",
    "pulumi_aws.s3.access_point",
    "pulumi_aws.cloudwatch.alarm_mute_rule",
    "pulumi_aws.lambda_.alias",
    "pulumi_aws.ecs.capacity_provider",
}
# What the plan does not run at all: AWS clients (the runtime's modules it imports for their
# constants load boto3 and botocore's sessions on first use), the simulated AWS of releases.
NOT_ON_THE_PATH = {
    "boto3",
    "botocore.session",
    "botocore.client",
    "botocore.config",
    "botocore.credentials",
    "botocore.loaders",
    "urllib3",
    "moto",
    "ecs_delivery.offline.release_simulator",
    "ecs_delivery.offline.codedeploy_sim",
}


def _imported(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output (`import time: self | cumulative | name`)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=True
    )


def test_plan_command_imports_only_the_pulumi_aws_modules_of_planned_resources(tmp_path, dev_plan):
    out = tmp_path / "plan.json"
    run = _subprocess(
        "-X", "importtime", "-m", "ecs_delivery", "plan", "--stack", "dev", "--json", str(out)
    )
    imported = _imported(run.stderr)
    assert "pulumi_aws.ec2.vpc" in imported  # the measurement sees leaf modules
    assert imported & (UNUSED | NOT_ON_THE_PATH) == set()
    ec2 = {m for m in imported if m.startswith("pulumi_aws.ec2.")}
    assert len(ec2) < 30, sorted(ec2)  # of 186 in the package
    # The same plan as the test process's, whose pulumi_aws packages loaded in full.
    assert json.loads(out.read_text()) == json.loads(json.dumps(dev_plan.to_json()))


def test_a_lazy_service_package_answers_every_name_with_the_generated_object():
    check = """
import importlib, json, sys
lazy = sys.argv[1] == "lazy"
if lazy:
    from ecs_delivery.offline import lazy_aws
    lazy_aws.install()
import pulumi_aws as aws
from ecs_delivery.offline import lazy_aws
from pathlib import Path
names = {}
for package in ("ecs", "lb", "codedeploy"):
    module = getattr(aws, package)
    for name in lazy_aws.index(Path(aws.__file__).parent / package):
        value = getattr(module, name)
        names[f"{package}.{name}"] = f"{value.__module__}.{value.__qualname__}"
names["config.region"] = repr(aws.config.region)  # a package whose __init__ is not generated
loaded = sorted(m for m in sys.modules if m.startswith("pulumi_aws.ecs."))
print(json.dumps({"names": names, "ecs_modules": len(loaded)}))
"""
    lazy = json.loads(_subprocess("-c", check, "lazy").stdout)
    eager = json.loads(_subprocess("-c", check, "eager").stdout)
    assert lazy["names"] == eager["names"]
    assert len(lazy["names"]) > 300
    # Every name has a module of its own in the index, so both end up loading all of ecs.
    assert lazy["ecs_modules"] == eager["ecs_modules"]


def test_a_lazy_package_imports_one_module_for_one_name():
    check = """
import sys
from ecs_delivery.offline import lazy_aws
lazy_aws.install()
import pulumi_aws as aws
aws.ecs.Cluster
print(sorted(m for m in sys.modules if m.startswith("pulumi_aws.ecs")))
"""
    loaded = _subprocess("-c", check).stdout.strip()
    # The package, the class's module and the two type modules it imports itself (of 19).
    assert eval(loaded) == [  # noqa: S307
        "pulumi_aws.ecs",
        "pulumi_aws.ecs._inputs",
        "pulumi_aws.ecs.cluster",
        "pulumi_aws.ecs.outputs",
    ]

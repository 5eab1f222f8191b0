"""Issue 16, problem 5: a wrong argument type is named, not a raw TypeError traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pulumi
import pytest

from ecs_delivery.components.load_balancer import HealthCheck
from ecs_delivery.components.network import NetworkArgs
from ecs_delivery.components.task_definition import Container
from ecs_delivery.offline import plan as plan_tool

NETWORK = {
    "cidr": "10.0.0.0/16",
    "nat_gateways": "single",
    "flow_log_retention_days": 30,
    "region": "eu-west-1",
    "kms_key_arn": None,
}


def test_a_zone_count_where_zone_names_belong_is_named():
    with pytest.raises(TypeError) as error:
        NetworkArgs(availability_zones=2, **NETWORK)
    assert str(error.value) == ("NetworkArgs.availability_zones: expected list[str], got int 2")
    assert isinstance(error.value, pulumi.RunError)  # the engine prints it without a traceback


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: NetworkArgs(availability_zones=["a"], **{**NETWORK, "nat_gateways": "one"}),
            "NetworkArgs.nat_gateways: expected Literal['none', 'single', 'perAz'], got str 'one'",
        ),
        (
            lambda: Container(
                name="web", image="busybox", port="8080", readonly_root_filesystem=True, user=None
            ),
            "Container.port: expected int, got str '8080'",
        ),
        (
            lambda: HealthCheck(
                path="/",
                matcher="200",
                interval_seconds=10,
                timeout_seconds=5,
                healthy_threshold=True,
                unhealthy_threshold=2,
            ),  # fmt: skip
            "HealthCheck.healthy_threshold: expected int, got bool True",
        ),
    ],
)
def test_each_wrong_plain_value_is_named(build, message):
    with pytest.raises(TypeError, match=r"^" + message.replace("[", r"\[").replace("]", r"\]")):
        build()


def test_inputs_from_other_resources_are_left_to_the_engine():
    output = pulumi.Output.from_input("arn:aws:kms:eu-west-1:123456789012:key/x")
    args = NetworkArgs(availability_zones=["eu-west-1a"], **{**NETWORK, "kms_key_arn": output})
    assert args.kms_key_arn is output


def test_the_plan_of_a_program_with_a_wrong_type_prints_one_line(tmp_path):
    project = tmp_path / "library"
    shutil.copytree(plan_tool.ROOT / "examples" / "library", project)
    program = (project / "__main__.py").read_text()
    (project / "__main__.py").write_text(
        program.replace("EcsClusterArgs(", 'EcsClusterArgs(container_insights="yes", ', 1)
    )
    done = subprocess.run(
        [sys.executable, "-m", "ecs_delivery.offline.plan", "--stack", "dev"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: EcsClusterArgs.container_insights: expected bool, got str 'yes'"
    )


def test_the_args_reference_says_how_each_omitted_name_region_and_account_is_derived():
    readme = (plan_tool.ROOT / "README.md").read_text()
    reference = readme[readme.index("<!-- BEGIN_ARGS_REFERENCE -->") :]
    provider_region = "derived: the AWS provider's (`aws.get_region`)"
    provider_account = "derived: the AWS provider's (`aws.get_caller_identity`)"
    tables = {
        "fargate_service.FargateServiceArgs": [
            ("cluster_name", "derived: `naming.cluster_name(project, stack)`, as EcsClusterArgs'"),
            ("service_name", "derived: `naming.service_name(name)`"),
            ("family", "derived: `naming.task_family(project, stack, name)`"),
            ("template_family", "derived: `naming.template_family(project, stack, name)`"),
            ("region", provider_region),
            ("account_id", provider_account),
        ],
        "cluster.EcsClusterArgs": [
            ("cluster_name", "derived: `naming.cluster_name(project, stack)`"),
        ],
        "artifacts.ArtifactBucketArgs": [
            (
                "bucket_name",
                "derived: `artifacts.artifact_bucket_name(project, stack, account, region)`, "
                "the provider's account",
            ),
            ("region", provider_region),
        ],
        "codedeploy.CodeDeploymentArgs": [
            ("application_name", "derived: `naming.codedeploy_application(project, stack)`"),
            ("name_prefix", "derived: `naming.name_prefix(project, stack)`"),
            ("region", provider_region),
            ("account_id", provider_account),
        ],
    }
    for cls, rows in tables.items():
        start = reference.index(f"**`{cls}`**")
        table = reference[start : reference.index("\n\n**`", start + 1)]
        for field, default in rows:
            assert f"| `{field}` | `str \\| None` | {default} |  |" in table, (cls, field)


def test_a_derived_field_takes_its_type_and_only_documented_fields_are_derived():
    from ecs_delivery.components.args import with_defaults
    from ecs_delivery.components.cluster import EcsClusterArgs

    with pytest.raises(TypeError) as error:
        EcsClusterArgs(cluster_name=5)
    assert str(error.value) == "EcsClusterArgs.cluster_name: expected str | None, got int 5"
    args = EcsClusterArgs()
    assert with_defaults(args, cluster_name=lambda: "shop-dev").cluster_name == "shop-dev"
    assert with_defaults(EcsClusterArgs(cluster_name="mine"), cluster_name=lambda: "x") == (
        EcsClusterArgs(cluster_name="mine")
    )
    with pytest.raises(TypeError, match=r"\['tags'\] are not derived fields"):
        with_defaults(args, tags=dict)

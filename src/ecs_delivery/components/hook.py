"""The AfterAllowTestTraffic validation hook: one Lambda per environment, in the VPC.

The function (src/ecs_delivery/lambdas/validation_hook) probes the green tasks through the test listener
and reports the verdict to CodeDeploy. Its settings are one JSON document keyed by
deployment group name (VALIDATION_CONFIG), validated here at plan time with the very parser
the function uses, so a bad setting fails `pulumi preview`, not a deployment.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.naming import TYPE_PREFIX

SOURCE_DIR = Path(__file__).resolve().parent.parent / "lambdas" / "validation_hook"
HANDLER = "handler.handler"
RUNTIME = "python3.12"
# Seconds the handler keeps back to report its verdict (handler.REPORT_RESERVE_SECONDS),
# plus start-up and the CodeDeploy calls.
REPORT_RESERVE_SECONDS = 5
OVERHEAD_SECONDS = 15
MIN_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 900  # Lambda's limit
# The longest a deployment group's probes may take in one invocation.
MAX_PROBE_SECONDS = MAX_TIMEOUT_SECONDS - REPORT_RESERVE_SECONDS - OVERHEAD_SECONDS
# Only for checking VALIDATION_CONFIG at plan time: the real TEST_URL is an Output.
PLACEHOLDER_TEST_URL = "http://test-listener.invalid:8443"


@dataclass(frozen=True, kw_only=True)
class ServiceProbe:
    """How the hook validates one deployment group through the test listener."""

    service: str  # the service's key in the stack config, for error messages
    group_name: str
    path: str
    expected_status: int
    probes: int
    interval_seconds: float
    latency_budget_ms: int
    host_header: str | None = None

    @property
    def timeout_seconds(self) -> float:
        """Per-probe timeout: a little above the budget, so a slow answer is seen as slow."""
        return round(min(60.0, self.latency_budget_ms / 1000 + 2), 3)

    @property
    def worst_case_seconds(self) -> float:
        return self.probes * self.timeout_seconds + (self.probes - 1) * self.interval_seconds

    def settings(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "path": self.path,
            "expected_status": self.expected_status,
            "probes": self.probes,
            "interval_seconds": self.interval_seconds,
            "latency_budget_ms": self.latency_budget_ms,
            "timeout_seconds": self.timeout_seconds,
        }
        if self.host_header:
            values["host_header"] = self.host_header
        return values


def validation_config(probes: Sequence[ServiceProbe]) -> str:
    """VALIDATION_CONFIG: deployment group -> settings; the URL defaults to TEST_URL."""
    return json.dumps({p.group_name: p.settings() for p in probes}, sort_keys=True)


def function_timeout_seconds(probes: Sequence[ServiceProbe]) -> int:
    """Long enough for the slowest group's probes, the report reserve and start-up."""
    worst = max((p.worst_case_seconds for p in probes), default=0.0)
    return max(MIN_TIMEOUT_SECONDS, math.ceil(worst) + REPORT_RESERVE_SECONDS + OVERHEAD_SECONDS)


def check_probes(probes: Sequence[ServiceProbe]) -> list[str]:
    """VALIDATION_CONFIG as the function will parse it, and whether it fits in one invocation."""
    from ecs_delivery.lambdas.validation_hook import logic

    problems = []
    by_group = {p.group_name: p.service for p in probes}
    try:
        logic.parse_validation_config(validation_config(probes), default_url=PLACEHOLDER_TEST_URL)
    except logic.ValidationConfigError as exc:
        for line in exc.problems:
            # "VALIDATION_CONFIG.<group>.<key>: ..." -> "services.<service>.validation.<key>: ..."
            _, group, rest = (line.split(".", 2) + ["", ""])[:3]
            service = by_group.get(group)
            problems.append(f"services.{service}.validation.{rest}" if service else line)
    for probe in probes:
        if probe.worst_case_seconds > MAX_PROBE_SECONDS:
            problems.append(
                f"services.{probe.service}.validation: {probe.probes} probes may take "
                f"{probe.worst_case_seconds:g} s, more than one Lambda invocation allows "
                f"({MAX_PROBE_SECONDS} s); "
                "lower probes, intervalSeconds or latencyBudgetMs"
            )
    return problems


def source_files(directory: Path = SOURCE_DIR) -> dict[str, Path]:
    """The function's files, archive-relative: exactly the folder's *.py (no __pycache__)."""
    files = {p.name: p for p in sorted(directory.glob("*.py"))}
    if "handler.py" not in files:
        raise ValueError(f"{directory}: no handler.py; the hook's source is missing")
    return files


def source_archive(directory: Path = SOURCE_DIR) -> pulumi.AssetArchive:
    return pulumi.AssetArchive(
        {name: pulumi.FileAsset(str(path)) for name, path in source_files(directory).items()}
    )


def source_hash(directory: Path = SOURCE_DIR) -> str:
    digest = hashlib.sha256()
    for name, path in source_files(directory).items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def function_arn(region: str, account_id: str, function_name: str) -> str:
    return naming.arn("lambda", f"function:{function_name}", region=region, account=account_id)


@dataclass(frozen=True, kw_only=True)
class ValidationHookArgs:
    """The AfterAllowTestTraffic Lambda: what it probes through the test listener, from where."""

    function_name: str
    probes: list[ServiceProbe]
    test_url: pulumi.Input[str]
    test_listener_port: int
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    load_balancer_security_group_id: pulumi.Input[str]
    # The deployment groups whose lifecycle hooks the function may report on (ARNs or the
    # pattern of one application's groups).
    deployment_group_arns: list[str]
    region: str
    account_id: str
    log_retention_days: int
    # The stack's customer-managed key (kms config); None: AWS-managed encryption.
    kms_key_arn: pulumi.Input[str] | None
    # Internal load balancer: the probes stay in the VPC, admitted by security group.
    internal_load_balancer: bool
    # Where the CodeDeploy API is: the world through NAT, or the VPC CIDR (interface endpoint).
    codedeploy_api_cidr: str
    source_dir: Path = SOURCE_DIR
    tags: dict[str, str] = field(default_factory=dict)


class ValidationHook(pulumi.ComponentResource):
    """Lambda that validates green tasks through the (closed) test listener."""

    function: aws.lambda_.Function
    arn: str
    name: str
    security_group: aws.ec2.SecurityGroup

    def __init__(
        self, name: str, args: ValidationHookArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:hook:ValidationHook", name, None, opts)
        problems = check_probes(args.probes)
        if problems:
            raise ValueError("; ".join(problems))
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.name = args.function_name
        self.arn = function_arn(args.region, args.account_id, args.function_name)

        self.log_group = aws.cloudwatch.LogGroup(
            name,
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=self._child,
        )
        self.role, role_policy = self._create_role()
        self.security_group = self._create_security_group()
        self.function = aws.lambda_.Function(
            name,
            name=args.function_name,
            description="CodeDeploy AfterAllowTestTraffic: probes green through the test listener",
            runtime=RUNTIME,
            handler=HANDLER,
            role=self.role.arn,
            code=source_archive(args.source_dir),
            # Redeploy exactly when a source file changes (the archive hash ignores __pycache__).
            source_code_hash=source_hash(args.source_dir),
            timeout=function_timeout_seconds(args.probes),
            memory_size=128,
            # None: Lambda's AWS-managed key encrypts the environment.
            kms_key_arn=args.kms_key_arn,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "TEST_URL": args.test_url,
                    "VALIDATION_CONFIG": validation_config(args.probes),
                }
            ),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids,
                security_group_ids=[self.security_group.id],
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=self.log_group.name
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                # Lambda checks the ENI permissions at creation; logs go to our group from the start.
                depends_on=[role_policy, self.log_group],
            ),
        )
        self.register_outputs(
            {
                "functionName": self.function.name,
                "securityGroupId": self.security_group.id,
                "logGroup": self.log_group.name,
            }
        )

    def _create_role(self) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        args = self._args
        statements = [
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [pulumi.Output.concat(self.log_group.arn, ":*")],
            },
            {
                "Sid": "ReportVerdict",
                "Effect": "Allow",
                "Action": [
                    "codedeploy:GetDeployment",
                    "codedeploy:PutLifecycleEventHookExecutionStatus",
                ],
                "Resource": sorted(args.deployment_group_arns),
            },
            # The network-interface actions a VPC Lambda needs: IAM offers no resource-level
            # permissions for the Describe calls, and Lambda manages the interfaces itself.
            {
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": [
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                "Resource": "*",
            },
        ]
        return iam.service_role(
            self._name,
            service="lambda.amazonaws.com",
            description=f"Validation hook {args.function_name}: report verdicts, write its logs",
            source_account=args.account_id,
            statements=statements,
            tags=args.tags,
            parent=self,
            size_fix="name the deployment groups by the pattern of their application",
        )

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        args = self._args
        group = aws.ec2.SecurityGroup(
            self._name,
            vpc_id=args.vpc_id,
            description="Validation hook: test listener and the CodeDeploy API, nothing inbound",
            tags={**args.tags, "Name": self._name},
            opts=self._child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-https-out",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=args.codedeploy_api_cidr,
            description=(
                "CodeDeploy API (through NAT)"
                if args.codedeploy_api_cidr == "0.0.0.0/0"
                else "CodeDeploy API (VPC interface endpoint)"
            ),
            opts=self._child,
        )
        if args.internal_load_balancer:
            self._reach_internal_test_listener(group)
        elif args.test_listener_port != 443:
            # The internet-facing ALB's DNS name resolves to public addresses, so the probes
            # leave through NAT; an egress rule naming the ALB's group would never match.
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-test-listener-out",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=args.test_listener_port,
                to_port=args.test_listener_port,
                cidr_ipv4="0.0.0.0/0",
                description="Probes to the load balancer's test listener",
                opts=self._child,
            )
        # The load balancer admits these probes by the NAT gateways' public addresses
        # (LoadBalancerArgs.test_listener_nat_ips): that is the source address it sees.
        return group

    def _reach_internal_test_listener(self, group: aws.ec2.SecurityGroup) -> None:
        """An internal load balancer resolves to addresses in the VPC: both sides of the probe
        name the other's security group, so nothing else gets to the test listener this way."""
        args = self._args
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-test-listener-out",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=args.test_listener_port,
            to_port=args.test_listener_port,
            referenced_security_group_id=args.load_balancer_security_group_id,
            description="Probes to the internal load balancer's test listener",
            opts=self._child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-test-listener-in",
            security_group_id=args.load_balancer_security_group_id,
            ip_protocol="tcp",
            from_port=args.test_listener_port,
            to_port=args.test_listener_port,
            referenced_security_group_id=group.id,
            description="Test listener from the validation hook",
            opts=self._child,
        )

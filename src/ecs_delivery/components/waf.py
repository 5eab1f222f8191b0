"""WAF for the load balancer: an existing web ACL, or a managed baseline created here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ecs_delivery.components.args import from_config
from ecs_delivery.components.config import WafConfig
from ecs_delivery.components.naming import TYPE_PREFIX

# AWS managed rule groups of the baseline, by priority (about 925 of a web ACL's 1500 WCUs).
# IP reputation first: the cheapest check drops known-bad sources before the others run.
MANAGED_RULE_GROUPS = (
    (10, "AWSManagedRulesAmazonIpReputationList"),
    (30, "AWSManagedRulesCommonRuleSet"),
    (40, "AWSManagedRulesKnownBadInputsRuleSet"),
)
RATE_LIMIT_PRIORITY = 20


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The web ACL to create: its physical name and the per-IP limit per 5 minutes."""

    name: str
    rate_limit: int = from_config(WafConfig, "rate_limit")


@dataclass(frozen=True, kw_only=True)
class WebFirewallArgs:
    """The load balancer's web ACL: an existing one associated, or a baseline created."""

    load_balancer_arn: pulumi.Input[str]
    # Exactly one: an existing regional web ACL, or a baseline to create.
    web_acl_arn: str | None = None
    baseline: Baseline | None = None
    tags: dict[str, str] = field(default_factory=dict)


def metric_name(name: str) -> str:
    """CloudWatch metric names of WAF: letters, digits, `-` and `_` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:128]


def _visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
    return aws.wafv2.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def baseline_rules(baseline: Baseline) -> list[aws.wafv2.WebAclRuleArgs]:
    rules = [
        aws.wafv2.WebAclRuleArgs(
            name=group,
            priority=priority,
            # "none": the group's own actions (block) apply; count would only watch.
            override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()
            ),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                    vendor_name="AWS", name=group
                )
            ),
            visibility_config=_visibility(metric_name(f"{baseline.name}-{group}")),
        )
        for priority, group in MANAGED_RULE_GROUPS
    ]
    rules.append(
        aws.wafv2.WebAclRuleArgs(
            name="rate-limit-per-ip",
            priority=RATE_LIMIT_PRIORITY,
            action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                    aggregate_key_type="IP",
                    limit=baseline.rate_limit,
                    evaluation_window_sec=300,
                )
            ),
            visibility_config=_visibility(metric_name(f"{baseline.name}-rate-limit")),
        )
    )
    return sorted(rules, key=lambda r: r.priority)


class WebFirewall(pulumi.ComponentResource):
    """Associates a WAFv2 web ACL with the load balancer, creating the baseline one if asked."""

    web_acl_arn: pulumi.Output[str]
    web_acl: aws.wafv2.WebAcl | None

    def __init__(
        self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:waf:WebFirewall", name, None, opts)
        if (args.web_acl_arn is None) == (args.baseline is None):
            raise ValueError("give exactly one of web_acl_arn and baseline")
        child = pulumi.ResourceOptions(parent=self)
        self.web_acl = None
        if args.baseline is not None:
            self.web_acl = aws.wafv2.WebAcl(
                name,
                name=args.baseline.name,
                description="Load balancer baseline: AWS managed rules and a per-IP rate limit",
                scope="REGIONAL",
                default_action=aws.wafv2.WebAclDefaultActionArgs(
                    allow=aws.wafv2.WebAclDefaultActionAllowArgs()
                ),
                rules=baseline_rules(args.baseline),
                visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                    cloudwatch_metrics_enabled=True,
                    metric_name=metric_name(args.baseline.name),
                    sampled_requests_enabled=True,
                ),
                tags=args.tags,
                opts=child,
            )
            self.web_acl_arn = self.web_acl.arn
        else:
            self.web_acl_arn = pulumi.Output.from_input(args.web_acl_arn)
        self.association = aws.wafv2.WebAclAssociation(
            name,
            resource_arn=args.load_balancer_arn,
            web_acl_arn=self.web_acl_arn,
            opts=child,
        )
        self.register_outputs({"webAclArn": self.web_acl_arn, "created": self.web_acl is not None})

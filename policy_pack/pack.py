"""The pack's policies: thin adapters from pulumi-policy's arguments to the rules in rules.py."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

if __package__:  # imported as policy_pack.pack (tests)
    from . import rules
else:  # run by the Pulumi CLI from the pack's directory
    import rules

NAME = "ecs-delivery-security"


def _resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        ignore_changes = list(getattr(args.opts, "ignore_changes", None) or [])
        for message in rule.check(args.resource_type, args.props, ignore_changes):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [
        rules.StackResource(
            type=r.resource_type,
            urn=r.urn,
            props=r.props,
            dependencies=[d.urn for d in r.dependencies]
            + [d.urn for deps in r.property_dependencies.values() for d in deps],
        )
        for r in args.resources
    ]
    for urn, message in rules.s3_buckets_secured(resources):
        report_violation(message, urn)


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [
        *(_resource_policy(rule) for rule in rules.RESOURCE_RULES),
        StackValidationPolicy(
            name=rules.STACK_RULE_NAME,
            description=rules.STACK_RULE_DESCRIPTION,
            validate=_validate_stack,
            enforcement_level=EnforcementLevel.MANDATORY,
        ),
    ]

"""The readable plan shows every fact a reviewer must see, one per line, at terminal width."""

from __future__ import annotations

import json

import pytest

from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.plan_tree import WIDTH, fit, fold
from tests.conftest import make_plan


@pytest.fixture(scope="module")
def dev_text(dev_plan) -> list[str]:
    return plan_tool.render_tree(dev_plan).splitlines()


def _stripped(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines]


def test_task_fields_owned_by_pulumi_are_shown_with_values(dev_text):
    facts = _stripped(dev_text)
    assert "· container api: env LOG_LEVEL=debug" in facts
    assert "· container api: ports 8000/tcp, user 1000, read-only root true" in facts
    assert "· family ecs-delivery-dev-api-template: cpu 512, memory 1024" in facts
    assert "· a change here registers a new revision and rolls out blue/green" in facts
    at = facts.index("· container api: secret DATABASE_URL from")
    assert facts[at + 1].startswith("↳ arn:aws:secretsmanager:")  # wrapped, never split


def test_deployment_strategy_alarms_rules_iam_and_schedules_are_shown(dev_text):
    facts = _stripped(dev_text)
    assert "· deployment config CodeDeployDefault.ECSAllAtOnce" in facts
    assert "· alarm ecs-delivery-dev-api-blue-target-5xx" in facts
    assert "· ingress tcp 8000-8000 from referencedSecurityGroupId alb-alb-id" in facts
    assert "· egress tcp 443-443 to cidrIpv4 0.0.0.0/0" in facts
    assert "· Allow [Secrets] secretsmanager:GetSecretValue" in facts
    assert "· schedule cron(0 3 * * ? *) (UTC), ENABLED" in facts


def test_a_changed_environment_value_shows_in_the_text():
    config = plan_tool.stack_config("dev")
    config["ecs-delivery:services"]["web"]["environment"] = {"LOG_LEVEL": "info"}
    plan = plan_tool.run("dev", config=config)
    facts = _stripped(plan_tool.render_tree(plan).splitlines())
    assert "· container web: env LOG_LEVEL=info" in facts


@pytest.mark.parametrize(
    ("stack", "live"),
    [("dev", None), ("prod", None), ("dev", "live-dev"), ("prod", "live-prod")],
)
def test_no_line_is_wider_than_the_terminal(stack, live):
    from ecs_delivery.offline.simcloud import SimulatedEnvironment

    environment = (
        SimulatedEnvironment.load(f"examples/{live}.yaml").model_dump(by_alias=True)
        if live
        else None
    )
    text = plan_tool.render_tree(make_plan(stack, environment=environment))
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_long_values_are_cut_with_a_count_or_wrapped():
    line = "x" * 300
    assert fit(line) == "x" * (WIDTH - 14) + f"…(+{300 - WIDTH + 14} chars)"
    assert len(fit(line)) <= WIDTH
    folded = fold(line, 100, "  ")
    assert "".join(part.removeprefix("  ↳ ") for part in folded) == line
    assert all(len(part) <= 100 for part in folded)


def test_the_json_keeps_what_the_text_cuts(dev_plan):
    document = json.dumps(dev_plan.to_json())
    assert "HTTPCode_Target_5XX_Count" in document and "LOG_LEVEL" in document


def test_a_long_fact_wraps_between_tokens_and_never_splits_an_arn(dev_text):
    """Issue 16, problem 6: the secret's ARN was split across two lines."""
    secret = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:dev/api/database-url-AbCdEf"
    assert any(secret in line for line in dev_text)


def test_a_first_preview_shows_each_policys_statements_with_the_values_not_known_yet_computed():
    """Issue 16, problem 6: PREVIEW=1 dropped every IAM policy with an unknown value, then
    showed it as one `policy <computed>`; the statements' known parts are what to review."""
    text = plan_tool.render_tree(plan_tool.run("dev", preview=True))
    lines = text.splitlines()
    assert not any("policy <computed>" in line for line in lines)
    at = lines.index("      - aws:iam/policy:Policy deployer")
    policy = lines[at + 1 : lines.index("", at) if "" in lines[at:] else None]
    policy = policy[: next(i for i, line in enumerate(policy) if not line.startswith("        "))]
    assert "        · Allow [ReadServices] ecs:DescribeServices" in policy
    # What names a resource being created is computed; what the program names is shown.
    assert "        ·   on <computed>" in policy
    assert any(
        "arn:aws:ecs:eu-west-1:123456789012:service/ecs-delivery-dev/" in line for line in policy
    )


def test_a_policy_that_names_only_known_values_is_shown_whole_in_a_preview():
    text = plan_tool.render_tree(plan_tool.run("dev", preview=True)).splitlines()
    at = text.index("      - aws:iam/rolePolicy:RolePolicy codedeploy-api")
    assert text[at + 1].startswith("        · Allow [")


def test_the_plan_says_that_its_ids_and_addresses_are_simulated(dev_text):
    first = dev_text[0]
    assert first.startswith("stack ecs-delivery-dev: ") and "simulated" in first

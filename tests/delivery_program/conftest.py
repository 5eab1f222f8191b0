"""Plans of dev and prod with the delivery side; prod's upstream outputs are dev's real ones."""

from __future__ import annotations

import pytest

from ecs_delivery.offline.plan import Plan
from tests.delivery_program.runner import delivery_plan


@pytest.fixture(scope="session")
def dev() -> Plan:
    return delivery_plan("dev")


@pytest.fixture(scope="session")
def prod(dev: Plan) -> Plan:
    # The simulated cloud answers the StackReference to "dev" with dev's planned outputs.
    return delivery_plan("prod", environment={"stacks": {"dev": dev.outputs}})


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here calls AWS; fake credentials make sure none could reach a real account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)

"""Plans of dev and prod with the delivery side; prod's upstream outputs are dev's real ones."""

from __future__ import annotations

import pytest

from ecs_delivery.offline.plan import Plan
from tests.conftest import make_plan


@pytest.fixture(scope="session")
def dev() -> Plan:
    return make_plan("dev")


@pytest.fixture(scope="session")
def prod(dev: Plan) -> Plan:
    # The simulated cloud answers the StackReference to "dev" with dev's planned outputs.
    return make_plan("prod", environment={"stacks": {"dev": dev.outputs}})

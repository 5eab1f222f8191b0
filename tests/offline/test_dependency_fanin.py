"""The dependency graph stays linear in the number of services (issue 20, item 1).

The SDK's cycle check walks the whole dependency closure of every resource a new resource
depends on, so a closure that grows with the services, reached from every service, makes a
plan (and `pulumi up`) quadratic. Closures are read from the plan's recorded `dependsOn`.
"""

from __future__ import annotations

from tests.components.test_release import _many_services
from tests.conftest import make_plan

# PassRole names each service's task and execution roles exactly; they are auto-named, so
# their ARNs are Outputs. Roles depend on nothing of the services: the walk stays shallow.
ROLE = "aws:iam/role:Role"


def _closures(count: int) -> dict[str, set[str]]:
    plan = make_plan("dev", overrides={"services": _many_services(count), "scheduledTasks": {}})
    direct = {r.urn: r.options["dependsOn"] for r in plan.resources}
    memo: dict[str, set[str]] = {}

    def closure(urn: str) -> set[str]:
        if urn not in memo:
            memo[urn] = set()
            found: set[str] = set()
            for dep in direct.get(urn, []):
                found |= {dep, *closure(dep)}
            memo[urn] = found
        return memo[urn]

    return {urn: {u for u in closure(urn) if f"${ROLE}::" not in u} for urn in direct}


def test_no_resource_of_a_service_has_a_dependency_closure_that_grows_with_the_services():
    """Each of svc003's resources (group, alarms, rollout, ...) at 10 and at 40 services."""
    small, large = _closures(10), _closures(40)
    service = [u for u in small if "svc003" in u.rsplit("::", 1)[1]]
    assert service
    grown = sorted(
        u.rsplit("::", 1)[1] for u in service if u in large and len(large[u]) > len(small[u])
    )
    assert grown == []

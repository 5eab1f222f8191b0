"""One schedule rule: a scheduled task's `schedule` in the stack file is checked as a release
manifest's is (issue 17: two validators that disagreed; the stack file's admitted expressions
EventBridge Scheduler refuses, such as a cron with neither day field `?`)."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError, parse
from ecs_delivery.runtime.release.manifest import schedule_problem

from .test_config_errors import with_

REFUSED_BY_EVENTBRIDGE = [
    "cron(0 3 * * * *)",  # neither day-of-month nor day-of-week is '?'
    "cron(0 3 ? * ? *)",  # both are
    "cron(0 25 * * ? *)",  # hour 25
    "rate(1 minutes)",  # plural for 1
    "rate(0 minutes)",
    "at(2026-13-01T00:00:00)",  # month 13
    "cron(0 3 * * ?)",  # five fields
]
ACCEPTED = ["cron(0 3 * * ? *)", "rate(1 hour)", "rate(5 minutes)", "at(2026-01-01T00:00:00)"]


def _task(schedule: str) -> dict:
    return with_("scheduledTasks.nightly", {"schedule": schedule, "command": ["x"]})


@pytest.mark.parametrize("schedule", REFUSED_BY_EVENTBRIDGE)
def test_a_schedule_the_release_manifest_refuses_is_refused_in_the_stack_file(schedule):
    with pytest.raises(ConfigError) as err:
        parse(_task(schedule))
    assert err.value.problems == [f"scheduledTasks.nightly.schedule: {schedule_problem(schedule)}"]


@pytest.mark.parametrize("schedule", ACCEPTED)
def test_a_schedule_both_accept(schedule):
    assert schedule_problem(schedule) is None
    assert parse(_task(schedule)).scheduled_tasks["nightly"].schedule == schedule

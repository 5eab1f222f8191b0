"""Services and scheduled tasks run containers: what they both say is declared once."""

from __future__ import annotations

from pydantic import ValidationError

from ecs_delivery.components.config import ContainerConfig, ScheduledTaskConfig, ServiceConfig

# Same name, different meaning: a service's bootstrap serves its health check, a task's exits;
# a task's command is required, a service's is optional.
DIFFERENT_ON_PURPOSE = {"bootstrap_image", "command"}


def test_every_field_services_and_tasks_share_comes_from_the_container_base():
    shared = set(ServiceConfig.model_fields) & set(ScheduledTaskConfig.model_fields)
    assert shared - DIFFERENT_ON_PURPOSE == set(ContainerConfig.model_fields)
    assert issubclass(ServiceConfig, ContainerConfig)
    assert issubclass(ScheduledTaskConfig, ContainerConfig)


def _errors(model, data) -> dict[str, str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return {".".join(map(str, e["loc"])): e["msg"] for e in exc.errors()}
    raise AssertionError(f"{model.__name__} accepted {data}")


def test_a_task_gets_the_container_checks_of_a_service():
    bad = {"cpu": 256, "memory": 4096, "environment": {"A": "1"}, "secrets": {"A": "x"}}
    service = _errors(ServiceConfig, {"containerPort": 80, **bad})
    task = _errors(ScheduledTaskConfig, {"schedule": "rate(1 day)", "command": ["x"], **bad})
    assert service == task
    assert set(task) == {"memory", "secrets"}

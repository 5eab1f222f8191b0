"""The README's Args reference is generated from the components' Args classes (issue 17, item 2):
every class documented, every field with its type, default and the config key it mirrors."""

from __future__ import annotations

from ecs_delivery.components.fargate_service import FargateServiceArgs
from ecs_delivery.components.load_balancer import ServiceRoute
from ecs_delivery.components.task_definition import Container
from tools import config_docs


def _row(cls: type, field: str) -> tuple[str, str, str, str]:
    return next(r for r in config_docs.args_rows(cls) if r[0] == field)


def test_the_committed_args_reference_is_the_generated_one():
    text = config_docs.README.read_text()
    start = text.index(config_docs.ARGS_BEGIN)
    end = text.index(config_docs.ARGS_END) + len(config_docs.ARGS_END)
    assert text[start:end] == config_docs.args_reference(), "README is stale; run `make docs`"


def test_a_hand_edited_args_row_is_reported_stale(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    text = config_docs.README.read_text()
    row = "| `memory` | `int` | `512` | `services.<name>.memory` |"
    assert row in text
    readme.write_text(text.replace(row, "| `memory` | `int` | `1024` | `services.<name>.memory` |"))
    monkeypatch.setattr(config_docs, "README", readme)
    assert config_docs.stale() == [readme]


def test_every_args_class_has_a_docstring_of_its_own():
    classes = config_docs.args_classes()
    assert {FargateServiceArgs, Container, ServiceRoute} <= set(classes)
    assert [c.__name__ for c in classes if not config_docs.own_doc(c)] == []


def test_a_mirrored_field_names_its_config_key_and_the_models_default():
    assert _row(FargateServiceArgs, "memory") == (
        "memory", "`int`", "`512`", "`services.<name>.memory`"
    )  # fmt: skip
    assert _row(FargateServiceArgs, "log_retention_days")[2:] == ("`30`", "`logRetentionDays`")
    assert _row(FargateServiceArgs, "subnet_ids")[2:] == ("required", "")


def test_a_field_of_the_shared_container_base_names_both_places():
    assert _row(Container, "user")[2:] == (
        "`1000`", "`services.<name>.user`, `scheduledTasks.<name>.user`"
    )  # fmt: skip

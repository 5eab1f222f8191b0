"""The config reference, the stack-file JSON Schema and Pulumi.yaml's config block are generated
from the models and committed up to date."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml

from ecs_delivery.components.config import StackConfig
from tools import config_docs

ROOT = config_docs.ROOT


def test_committed_docs_schema_and_project_config_are_generated_from_the_models():
    stale = [str(p.relative_to(ROOT)) for p in config_docs.stale()]
    assert stale == [], f"{stale} differ from the models; run `make docs`"


def test_a_hand_edited_reference_row_is_reported_stale(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    text = config_docs.README.read_text()
    edited = text.replace("| `pipeline.approval` | none |", "| `pipeline.approval` | `false` |")
    assert edited != text
    readme.write_text(edited)
    monkeypatch.setattr(config_docs, "README", readme)
    assert config_docs.stale() == [readme]


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_the_reference_has_one_three_cell_row_per_key_path():
    table = [line for line in config_docs.reference().splitlines() if line.startswith("| `")]
    keys = [_cells(line)[0].strip().strip("`") for line in table]
    assert all(len(_cells(line)) == 3 for line in table)
    assert len(keys) == len(set(keys))
    assert {"services.<name>.cpu", "scheduledTasks.<name>.schedule",
            "deployment.customConfigs.<name>.percent", "pipeline.buildImage",
            "release.source.provider"} <= set(keys)  # fmt: skip
    assert (
        '| `services.<name>.routing` | `{"pathPatterns": ["/*"]}` |'
        in table[keys.index("services.<name>.routing")]
    )


def test_a_pipe_in_a_description_is_escaped():
    assert config_docs._cell("type: canary|linear") == "type: canary\\|linear"


def _stack(name: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())


def _errors(document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(config_docs.stack_schema())
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_files_are_valid_against_the_generated_schema(stack):
    assert _errors(_stack(stack)) == []


def test_the_schema_refuses_a_bad_period_and_a_missing_region():
    document = _stack("prod")
    config = document["config"]
    config["ecs-delivery:deployment"]["alarms"]["periodSeconds"] = 30
    del config["aws:region"]
    assert _errors(document) == [
        "config/ecs-delivery:deployment/alarms/periodSeconds: 30 is not one of [60, 300]",
        "config: 'aws:region' is a required property",
    ]


def test_the_schema_refuses_an_unknown_key_of_the_namespace():
    document = _stack("dev")
    document["config"]["ecs-delivery:servcies"] = {}
    assert _errors(document) == ["config: False schema does not allow {}"]


def test_the_schema_allows_other_namespaces():
    document = _stack("dev")
    document["config"]["aws:profile"] = "dev"
    assert _errors(document) == []


def test_pulumi_yaml_declares_every_top_level_key_with_the_model_default():
    declared = yaml.safe_load(config_docs.PROJECT.read_text())["config"]
    ours = {k: v for k, v in declared.items() if k.startswith("ecs-delivery:")}
    aliases = [info.alias for info in StackConfig.model_fields.values()]
    assert list(ours) == [f"ecs-delivery:{a}" for a in aliases]
    assert ours["ecs-delivery:logRetentionDays"] == {
        "type": "integer",
        "description": StackConfig.model_fields["log_retention_days"].description,
        "default": 30,
    }
    assert ours["ecs-delivery:services"]["type"] == "object"
    assert "default" not in ours["ecs-delivery:network"]
    assert {v["type"] for v in ours.values()} <= {"object", "string", "integer", "boolean", "array"}
    # Pulumi requires the item type of an array key.
    assert ours["ecs-delivery:allowedRegions"]["items"] == {"type": "string"}
    assert declared["pulumi:tags"] == {"value": {"pulumi:template": "ecs-delivery"}}

"""The plan command builds the plan's JSON form once for the tree and the file (issue 20 item 2)."""

from __future__ import annotations

import json

from ecs_delivery.offline import plan as plan_tool


def test_the_plan_command_serialises_the_plan_once_for_tree_and_json(tmp_path, monkeypatch, capsys):
    calls = []
    original = plan_tool.Plan.to_json

    def counted(self):
        calls.append(self.stack)
        return original(self)

    monkeypatch.setattr(plan_tool.Plan, "to_json", counted)
    target = tmp_path / "plan.json"
    assert plan_tool.main(["--stack", "dev", "--json", str(target)]) == 0
    assert calls == ["dev"]
    tree = capsys.readouterr().out
    written = json.loads(target.read_text())
    assert plan_tool.plan_tree.render(written) in tree

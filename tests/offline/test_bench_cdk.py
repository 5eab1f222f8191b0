"""`python -m tools.bench_cdk`: the plan against the AWS CDK anchor's synth (issue 20). The
real anchor needs `npm ci` (README, Plan benchmark); here a stand-in app of the anchor's shape
(`node dist/app.js` writing `cdk.out/BlueGreenAnchor.template.json`) checks the harness."""

from __future__ import annotations

import shutil

import pytest

from tools import bench_cdk

APP = """
const fs = require("fs");
const n = Number(process.env.N);
const resources = {};
for (let i = 0; i < 26 + 18 * n; i++) resources["R" + i] = {Type: "AWS::SNS::Topic"};
fs.mkdirSync("cdk.out", {recursive: true});
fs.writeFileSync("cdk.out/BlueGreenAnchor.template.json", JSON.stringify({Resources: resources}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_a_synth_is_measured_with_its_resource_count(tmp_path):
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.js").write_text(APP)

    run = bench_cdk._synth(tmp_path, 3)

    assert run.resources == 26 + 18 * 3  # the anchor's base plus 18 per service
    assert run.cpu > 0 and run.peak_kib > 0


def test_an_anchor_not_installed_is_refused_with_the_command_to_run(tmp_path):
    with pytest.raises(SystemExit, match=r"run `npm ci && npx tsc -p \.` there first"):
        bench_cdk.main([str(tmp_path)])

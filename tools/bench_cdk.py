"""The plan against the AWS CDK anchor, side by side: `python -m tools.bench_cdk ANCHOR_DIR`.

    cp -r ../shared/anchors/cdk /tmp/cdk && (cd /tmp/cdk && npm ci && npx tsc -p .)
    python -m tools.bench_cdk /tmp/cdk --services 200 --rounds 5

The anchor (`../shared/anchors/cdk`, its README) is a CDK app of the same topology: one VPC,
cluster and ALB with a production and a test listener, and per service a Fargate service on
CODE_DEPLOY, a blue and a green target group, a rule on each listener, a deployment group and
two alarms. Each round runs the anchor's default synth (`node dist/app.js`, CDK's built-in
validation on, as `cdk synth` runs it) and then this tree's offline plan of the same number of
services (the synthetic stack of `tools.bench_plan`, in a temporary worktree of HEAD), and
prints every run, then the medians and the median ratio plan/CDK of CPU (user + system of each
process tree), not wall time: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tools.bench_compare import ROOT, STACK, Run, _timed, _worktree


def _synth(anchor: Path, services: int) -> Run:
    """One `node dist/app.js` of the anchor: CPU of the process (children included)."""
    env = {
        **os.environ,
        "N": str(services),
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        ["node", "dist/app.js"],
        cwd=anchor,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # its validation report: warnings only
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the anchor's synth failed in {anchor}")
    template = anchor / "cdk.out" / "BlueGreenAnchor.template.json"
    resources = len(yaml.safe_load(template.read_text())["Resources"])
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, resources)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("anchor", type=Path, help="the anchor's folder, installed and compiled")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.anchor / "dist" / "app.js").is_file():
        raise SystemExit(
            f"{args.anchor}/dist/app.js not found: run `npm ci && npx tsc -p .` there first"
        )
    from tools.bench_plan import synthetic_config

    python = str(ROOT / ".venv" / "bin" / "python")
    runs: dict[str, list[Run]] = {"cdk": [], "plan": []}
    with tempfile.TemporaryDirectory() as tmp:
        tree = _worktree("HEAD", Path(tmp))
        try:
            text = yaml.safe_dump({"config": synthetic_config(args.services)}, sort_keys=True)
            (tree / f"Pulumi.{STACK}.yaml").write_text(text)
            for round_ in range(args.rounds):
                for label in ("cdk", "plan"):
                    if label == "cdk":
                        run = _synth(args.anchor, args.services)
                    else:
                        run = _timed(python, tree)
                    runs[label].append(run)
                    print(
                        f"round {round_ + 1} {label}: {run.resources} resources, cpu "
                        f"{run.cpu:7.2f} s (wall {run.wall:7.2f} s), peak "
                        f"{run.peak_kib / 1024:7.1f} MiB",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    cdk, plan = runs["cdk"], runs["plan"]
    ratio = statistics.median(p.cpu / c.cpu for c, p in zip(cdk, plan, strict=True))
    print(f"{args.services} services, medians of {args.rounds} alternating rounds:")
    for label, measured in runs.items():
        cpu = statistics.median(r.cpu for r in measured)
        print(
            f"  {label:>4}: {measured[0].resources} resources, cpu {cpu:.2f} s, "
            f"{1000 * cpu / measured[0].resources:.2f} ms/resource"
        )
    print(f"plan/CDK cpu: {ratio:.2f}x (median of the rounds' ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The offline plan is byte-identical across runs: same inputs, same text and JSON."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "dev": ["--stack", "dev"],
    "prod": ["--stack", "prod"],
    "dev-live": ["--stack", "dev", "--live", "examples/live-dev.yaml"],
    "prod-live": ["--stack", "prod", "--live", "examples/live-prod.yaml"],
}


def _start(args: list[str], json_path: Path, seed: str) -> subprocess.Popen:
    # Separate processes with different hash seeds: in-process ordering could hide
    # nondeterminism (set iteration, asyncio scheduling).
    return subprocess.Popen(
        [sys.executable, "-m", "ecs_delivery.offline.plan", *args, "--json", str(json_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_runs_give_byte_identical_text_and_json(case, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    runs = [_start(CASES[case], first, "1"), _start(CASES[case], second, "2")]
    (out_a, err_a), (out_b, err_b) = (p.communicate(timeout=180) for p in runs)
    assert runs[0].returncode == 0 and runs[1].returncode == 0, err_a + err_b
    text_a = out_a.replace(str(first).encode(), b"<json>")
    text_b = out_b.replace(str(second).encode(), b"<json>")
    assert text_a == text_b
    assert first.read_bytes() == second.read_bytes()

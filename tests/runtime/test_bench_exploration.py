"""bench/bench_exploration.py: the cost of one order of the rollout exploration, measured."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_exploration.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_exploration", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_prints_cpu_per_order_and_per_call_and_the_split_by_package(capsys):
    assert _bench().main(["--orders", "2", "--profile"]) == 0
    first, *split = capsys.readouterr().out.splitlines()
    found = re.fullmatch(
        r"2 orders: (\d+) ms CPU per order, ([\d.]+) boto3 calls per order, "
        r"([\d.]+) ms CPU per call \(under cProfile\)",
        first,
    )
    assert found and float(found[2]) > 10  # each order reads, deploys and re-checks via boto3
    shares = {line.split()[0]: float(line.split()[1].rstrip("%")) for line in split}
    assert {"moto", "botocore", "ecs_delivery"} <= set(shares)
    assert abs(sum(shares.values()) - 100) < 1


def test_the_benchmark_leaves_botocore_as_it_found_it():
    import botocore.client

    before = botocore.client.BaseClient._make_api_call
    _bench().main(["--orders", "1"])
    assert botocore.client.BaseClient._make_api_call is before

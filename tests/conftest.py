"""Shared fixtures: offline plans of the real program under Pulumi's mock runtime."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import botocore.session
import pytest

from ecs_delivery.components import lambda_package, release
from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.simcloud import SimulatedEnvironment

# Where the pytest-xdist workers of one run share their plans (set by shared_plans below): a
# plan another worker already made is read, not planned again (a plan costs about a second).
PLAN_CACHE: list[Path] = []


@cache
def _release_zip() -> None:
    """Every plan needs the release steps' zip: in a fresh checkout one worker builds it (pip,
    a quarter of a minute) while the others wait for it instead of building it too."""
    with open(PLAN_CACHE[0] / "lambda.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lambda_package.build(release.step_package())


def _plan(stack: str, environment_json: str, overrides_json: str) -> plan_tool.Plan:
    if PLAN_CACHE:
        _release_zip()
    environment = SimulatedEnvironment.model_validate(json.loads(environment_json))
    return plan_tool.run(stack, environment=environment, overrides=json.loads(overrides_json))


@cache
def _cached_plan(stack: str, environment_json: str, overrides_json: str) -> plan_tool.Plan:
    if not PLAN_CACHE:
        return _plan(stack, environment_json, overrides_json)
    key = hashlib.sha256(f"{stack}\0{environment_json}\0{overrides_json}".encode()).hexdigest()
    path = PLAN_CACHE[0] / f"{key[:32]}.pickle"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second worker waits for the first one's plan
        if path.exists():
            return pickle.loads(path.read_bytes())
        made = _plan(stack, environment_json, overrides_json)
        staging = path.with_suffix(".partial")
        staging.write_bytes(pickle.dumps(made))
        staging.rename(path)
        return made


def make_plan(
    stack: str, environment: dict | None = None, overrides: dict | None = None
) -> plan_tool.Plan:
    """Plan a stack (cached per arguments: plans are deterministic and read-only)."""
    return _cached_plan(
        stack,
        json.dumps(environment or {}, sort_keys=True),
        json.dumps(overrides or {}, sort_keys=True),
    )


def upstream_outputs(live_images: dict[str, dict[str, str]]) -> dict:
    """dev's planned outputs, with `liveImages` (and repositories) for the given services."""
    outputs = dict(make_plan("dev").outputs)
    outputs["liveImages"] = live_images
    outputs["ecrRepositoryArns"] = {
        name: f"arn:aws:ecr:eu-west-1:111111111111:repository/ecs-delivery-dev/{name}"
        for name in live_images
    }
    return outputs


# Files whose tests share one slow module fixture (a virtual environment, twinned plans): each
# runs whole in one pytest-xdist worker, so that no second worker builds the fixture again.
ONE_WORKER_FILES = frozenset(
    {
        "tests/packaging/test_install.py",
        "tests/components/test_two_instances.py",
        "tests/components/test_library_example.py",
        "tests/offline/test_first_preview.py",
    }
)


# The files whose tests take longest (the interleaving explorations: seconds each, against
# milliseconds elsewhere), slowest first: their tests run first, so that the short ones fill
# the tail and both workers stay busy to the end, never one long test alone.
SLOW_FIRST = (
    "tests/runtime/test_interleavings_tasks.py",
    "tests/runtime/test_interleavings_release.py",
    "tests/runtime/test_interleavings_runners.py",
    "tests/runtime/test_interleavings.py",
    "tests/runtime/test_interleavings_ecs.py",
    "tests/runtime/test_interleavings_release_ecs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every worker orders the same collection the same way (xdist requires it): a stable
    sort, SLOW_FIRST's files first, each other test where it was."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadgroup` (make test), grouping ONE_WORKER_FILES by file: xdist 3.8 groups by
    renaming items, which pytest 9 ignores, so its own xdist_group marks have no effect."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FilesInOneWorker(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in ONE_WORKER_FILES else super()._split_scope(nodeid)

    return FilesInOneWorker(config, log)


@pytest.fixture(autouse=True)
def no_real_aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region for every test: none can reach a real account (the
    real-engine tests, marked pulumi_cli, are the exception)."""
    if request.node.get_closest_marker("pulumi_cli"):
        return
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class _EachPathOnce(list):
    """A loader's search paths: boto3 appends its own data path for every Session it makes."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_create_loader = botocore.session.create_loader


@cache
def _one_loader(search_path_string: str | None = None):
    loader = _create_loader(search_path_string)
    loader._search_paths = _EachPathOnce(loader._search_paths)
    return loader


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader() -> Iterator[None]:
    """One botocore data loader per worker: moto gives each `mock_aws` a new default boto3
    Session, whose new loader parsed the service models again (about 40 ms a client, most of
    a moto world's set-up). The models are read-only data: a Session is otherwise as new as
    before (credentials, config, region, its event handlers), as every client of one Session
    already shares one loader."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", _one_loader)
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_plans(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One plan cache per run, beside every worker's temporary directory."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # each worker's is popen-gwN inside the run's
    PLAN_CACHE[:] = [root / "plans"]
    PLAN_CACHE[0].mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def dev_plan() -> plan_tool.Plan:
    return make_plan("dev")


@pytest.fixture(scope="session")
def prod_plan() -> plan_tool.Plan:
    return make_plan("prod")


# A plan that fails inside an apply (e.g. promotion from a stack without liveImages) leaves
# futures whose exception was already reported; asyncio would log each again at exit.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)

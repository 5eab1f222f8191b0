"""The package as a user gets it: a wheel built from the git URL, installed into a fresh
virtual environment with its pinned dependencies (from the package registry), then imported
and run. Slow (a full install, over a minute), so one environment serves every test, and the
file runs in one pytest-xdist worker (tests/conftest.py, ONE_WORKER_FILES)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a Pulumi project that uses the library holds: its program and its stack files.
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py")


def _run(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from the committed tree through a git URL (`pip install git+...` builds the same)."""
    out = tmp_path_factory.mktemp("dist")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
        "--no-deps", "-w", str(out), f"git+file://{ROOT}",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("ecs_delivery-*.whl")
    return found


@pytest.fixture(scope="module")
def environment(tmp_path_factory, wheel) -> Path:
    """A fresh virtual environment (no system site-packages) with the wheel installed."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True, clear=True)
    installed = _run(
        str(home / "bin" / "python"), "-m", "pip", "install", "--quiet",
        # No .pyc for the thousands of files never imported here (pulumi_aws): most of the
        # install's time; what the tests import compiles on import, as without pip.
        "--disable-pip-version-check", "--no-compile", str(wheel),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return home


def test_the_wheel_holds_the_package_and_nothing_of_the_repository(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {
        "ecs_delivery",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    for subpackage in ("components", "runtime", "lambdas", "offline"):
        assert f"ecs_delivery/{subpackage}/__init__.py" in names
    # The release steps' pinned requirements are data the Lambda build reads.
    assert "ecs_delivery/lambdas/release_steps/requirements.txt" in names
    assert not [n for n in names if n.endswith(".pyc") or "/tests/" in n]


def test_a_fresh_environment_imports_the_package_from_its_site_packages(environment):
    python = str(environment / "bin" / "python")
    probe = (
        "import ecs_delivery, ecs_delivery.components.platform, ecs_delivery.runtime.release.engine;"
        "print(ecs_delivery.__file__)"
    )
    result = _run(python, "-I", "-c", probe, cwd=environment)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(environment)


def test_the_console_command_plans_a_project_that_holds_only_its_program(environment, tmp_path):
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    # The release steps' zip, already built by this checkout, is the same content-addressed file.
    env = {"PATH": "/usr/bin:/bin", "ECS_DELIVERY_LAMBDA_CACHE": str(ROOT / "build" / "lambda")}
    result = _run(
        str(environment / "bin" / "ecs-delivery"), "plan", "--stack", "dev", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stack ecs-delivery-dev: ")
    assert 'validationHook: "ecs-delivery-dev-validation-hook"' in result.stdout


def test_the_console_command_lists_its_commands_and_refuses_an_unknown_one(environment):
    command = str(environment / "bin" / "ecs-delivery")
    listed = _run(command, "--help")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines() if line.startswith("  ")] == [
        "plan", "diff", "release",
    ]  # fmt: skip
    unknown = _run(command, "deploy")
    assert unknown.returncode == 2
    assert "ecs-delivery: unknown command 'deploy'" in unknown.stderr


def test_the_packages_pins_are_the_programs_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert project["dependencies"] == requirements
    assert all("==" in pin for pin in project["dependencies"])


def test_the_readmes_install_commands_name_the_version_and_only_the_clone_url_is_yours():
    """Issue 16, problem 5: the install line held `<org>/<tag>` placeholders to fill in."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```sh\n", text.index("one installable package")) + len("```sh\n")
    block = text[start : text.index("```", start)]
    version = (ROOT / "src/ecs_delivery/__init__.py").read_text().split('__version__ = "')[1]
    assert f"ecs_delivery-{version.split(chr(34))[0]}-py3-none-any.whl" in block
    placeholders = {part.split(">")[0] for part in block.split("<")[1:]}
    assert placeholders == {"this repository's URL"}

"""The release steps' Lambda zip: built for the runtime, reproducible, and only what the handler imports.

The first build downloads the pinned wheels from PyPI (about 20 MB); later builds and plans take
the zip from the cache (build/lambda, keyed by the inputs' hash).
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ecs_delivery.components import lambda_package, release
from ecs_delivery.components.lambda_package import LambdaPackage, PackagingError
from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.simcloud import plain

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def step_zip() -> Path:
    return lambda_package.build(release.step_package())


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _imported_engine_modules(handler: Path) -> set[str]:
    """The `delivery` files the handler imports, followed through every module (lazy imports too)."""
    seen: set[Path] = set()
    todo = [handler]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] != "ecs_delivery":
                    continue
                for i in range(1, len(parts) + 1):
                    for candidate in (
                        SRC.joinpath(*parts[:i]).with_suffix(".py"),
                        SRC.joinpath(*parts[:i], "__init__.py"),
                    ):
                        if candidate.is_file() and candidate not in seen:
                            seen.add(candidate)
                            todo.append(candidate)
    return {p.relative_to(SRC).as_posix() for p in seen}


def test_the_listed_engine_modules_are_exactly_what_the_handler_imports():
    assert set(release.STEP_MODULES) == _imported_engine_modules(
        release.STEPS_SOURCE / "handler.py"
    )


def test_step_zip_holds_no_test_double_no_bytecode_and_no_host_site_packages(step_zip):
    names = _names(step_zip)
    assert "handler.py" in names and "ecs_delivery/runtime/release/steps.py" in names
    assert not [n for n in names if "simulator" in n or n.startswith("ecs_delivery/offline/")]
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert not [n for n in names if "site-packages" in n or n.startswith("bin/")]
    # Binaries are the Linux x86_64 builds for the runtime's Python, whatever this machine is.
    binaries = [n for n in names if n.endswith(".so")]
    assert binaries and all("cpython-311-x86_64-linux-gnu" in n for n in binaries), binaries
    assert "pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so" in names
    metadata = {n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA")}
    assert "boto3-1.44.5.dist-info" in metadata and "pydantic-2.14.3.dist-info" in metadata


def test_step_zip_entries_are_sorted_with_fixed_dates_and_modes(step_zip):
    with zipfile.ZipFile(step_zip) as archive:
        infos = archive.infolist()
    # Lambda's limits: 50 MB zipped for a direct upload, 250 MB unzipped.
    assert step_zip.stat().st_size < 50 * 2**20
    assert sum(i.file_size for i in infos) < 250 * 2**20
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_two_builds_of_the_same_inputs_give_the_same_bytes(step_zip, tmp_path):
    # A fresh cache directory: the second build runs pip again and writes a new zip.
    rebuilt = lambda_package.build(release.step_package(), root=tmp_path)
    assert rebuilt != step_zip
    assert (
        hashlib.sha256(rebuilt.read_bytes()).hexdigest()
        == hashlib.sha256(step_zip.read_bytes()).hexdigest()
    )


@pytest.mark.skipif(
    sys.platform != "linux" or sys.version_info[:2] != (3, 11) or not sys.maxsize > 2**32,
    reason="importing the zip's Linux x86_64 CPython 3.11 binaries needs such an interpreter",
)
def test_a_clean_interpreter_imports_every_handler_from_the_zip_alone(step_zip, tmp_path):
    with zipfile.ZipFile(step_zip) as archive:
        archive.extractall(tmp_path / "task")
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1]]; import handler, boto3, pydantic_core, yaml; "
        "assert all(m.__file__.startswith(sys.argv[1]) for m in (handler, boto3, pydantic_core, yaml)); "
        "[getattr(handler, s) for s in sys.argv[2:]]; "
        "assert 'ecs_delivery.offline.release_simulator' not in sys.modules; print(boto3.__version__)"
    )
    from ecs_delivery.components.state_machine import STEPS

    # -I: no user site, no PYTHON* variables, no script directory; -S: not even site-packages.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(tmp_path / "task"), *STEPS],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.44.5"


def test_lambda_pins_agree_with_the_programs_pins():
    def pins(path: Path) -> dict[str, str]:
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                found[name.lower().replace("_", "-")] = version
        return found

    lambda_pins = pins(release.STEPS_SOURCE / "requirements.txt")
    program_pins = pins(ROOT / "requirements.txt")
    shared = set(lambda_pins) & set(program_pins)
    assert {"boto3", "botocore", "pydantic", "pyyaml"} <= shared
    assert {n: lambda_pins[n] for n in shared} == {n: program_pins[n] for n in shared}


def test_zip_name_follows_the_inputs_so_a_changed_source_is_a_new_zip(tmp_path):
    source = tmp_path / "handler.py"
    source.write_text("def handler(event, context):\n    return 1\n")
    package = LambdaPackage(name="probe", runtime="python3.12", files={"handler.py": source})
    first = lambda_package.build(package, root=tmp_path / "cache")
    assert lambda_package.build(package, root=tmp_path / "cache") == first
    source.write_text("def handler(event, context):\n    return 2\n")
    second = lambda_package.build(package, root=tmp_path / "cache")
    assert second != first and _names(second) == ["handler.py"]


def test_unknown_architecture_and_missing_sources_are_refused_with_the_fix():
    with pytest.raises(
        PackagingError, match=r"architecture 'amd64'; use one of \['arm64', 'x86_64'\]"
    ):
        LambdaPackage(name="x", runtime="python3.11", architecture="amd64")
    missing = LambdaPackage(
        name="x", runtime="python3.11", files={"handler.py": Path("/nonexistent/handler.py")}
    )
    with pytest.raises(PackagingError, match="handler.py -> /nonexistent/handler.py: no such file"):
        lambda_package.inputs_hash(missing)


def test_release_code_asset_is_the_same_across_two_plans(dev_plan):
    # A second plan in the same process (uncached): same archive path and same code hash,
    # so `pulumi preview` shows no change to the functions.
    again = plan_tool.run("dev")

    def codes(plan):
        return {
            r.name: (plain(r.inputs["code"]), r.inputs["sourceCodeHash"])
            for r in plan.of_type(FUNCTION)
            if r.name.startswith("release-")
        }

    first, second = codes(dev_plan), codes(again)
    assert first == second and len(first) == 6
    (code, code_hash), *_ = first.values()
    assert code["asset"] == "FileArchive"
    (archive,) = {
        r.inputs["code"].path for r in dev_plan.of_type(FUNCTION) if r.name == "release-plan"
    }
    assert Path(archive).name == code["path"]  # the plan shows the content-named file
    assert code_hash == lambda_package.code_sha256(Path(archive))
    assert {str(c) for c, _ in first.values()} == {str(code)}  # one zip for every step

"""Reproducible Lambda zips: dependencies built for the function's runtime, sources listed by name.

Dependencies come from a pinned requirements file, installed by pip for the function's Python
version and architecture (never copied from the packages installed on this machine), so a plan made on
macOS or another Python ships the same, importable zip. The zip is byte-for-byte reproducible
(sorted entries, fixed timestamps and permissions) and cached by the hash of its inputs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the way a zip is made changes, so cached zips of the old recipe are not reused.
RECIPE = "1"
# Relative to the working directory: the Pulumi project, whose build/ holds the zips.
DEFAULT_CACHE_DIR = Path("build") / "lambda"
CACHE_DIR_VARIABLE = "ECS_DELIVERY_LAMBDA_CACHE"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# The oldest date a zip entry can carry; any fixed value makes the bytes reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--: Lambda needs world-readable, nothing executes
# What pip writes beside a package that differs between machines or is never imported:
# RECORD holds hashes of console scripts whose shebang names this machine's interpreter.
SKIPPED_PARTS = frozenset({"__pycache__", "bin"})
SKIPPED_NAMES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


class PackagingError(RuntimeError):
    """A Lambda zip could not be built (pip failed, or a listed source is missing)."""


@dataclass(frozen=True, kw_only=True)
class LambdaPackage:
    """What goes into one function's zip."""

    name: str  # names the cached zip, e.g. "release-steps"
    runtime: str  # the function's runtime, e.g. "python3.11"
    architecture: str = "x86_64"  # the function's architecture: x86_64 or arm64
    files: Mapping[str, Path] = field(default_factory=dict)  # archive path -> source file
    requirements: Path | None = None  # pinned, complete dependency closure (installed --no-deps)

    def __post_init__(self) -> None:
        if self.architecture not in PLATFORMS:
            raise PackagingError(
                f"{self.name}: architecture {self.architecture!r}; use one of {sorted(PLATFORMS)}"
            )
        if not self.runtime.startswith("python3."):
            raise PackagingError(f"{self.name}: runtime {self.runtime!r} is not a Python runtime")

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def platform(self) -> str:
        return PLATFORMS[self.architecture]


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def dependencies_hash(package: LambdaPackage) -> str:
    """What the installed dependencies depend on: the pins, the runtime and the architecture."""
    pins = package.requirements.read_bytes() if package.requirements else b""
    return _digest(
        [RECIPE.encode(), package.python_version.encode(), package.platform.encode(), pins]
    )


def inputs_hash(package: LambdaPackage) -> str:
    """Everything the zip's bytes depend on; equal hashes mean an identical zip."""
    parts = [dependencies_hash(package).encode()]
    for name in sorted(package.files):
        path = package.files[name]
        if not path.is_file():
            raise PackagingError(f"{package.name}: {name} -> {path}: no such file")
        parts += [name.encode(), path.read_bytes()]
    return _digest(parts)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or DEFAULT_CACHE_DIR).resolve()


def install_dependencies(package: LambdaPackage, target: Path) -> None:
    """pip install the pinned requirements for the Lambda platform into `target`."""
    assert package.requirements is not None
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",  # .pyc files embed timestamps; Lambda compiles on import
        "--no-deps",  # the file is the complete closure: nothing resolves behind our back
        "--only-binary=:all:",
        "--implementation=cp",
        f"--python-version={package.python_version}",
        f"--platform={package.platform}",
        f"--target={target}",
        "-r",
        str(package.requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(
            f"{package.name}: installing {package.requirements} for {package.runtime} "
            f"{package.architecture} failed:\n{result.stderr.strip()}"
        )


def _dependencies(package: LambdaPackage, root: Path) -> Path | None:
    """The installed dependencies, cached by their own hash (sources change far more often)."""
    if package.requirements is None:
        return None
    directory = (
        root
        / f"deps-{package.python_version}-{package.architecture}-{dependencies_hash(package)[:16]}"
    )
    if not directory.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".deps-", dir=root))
        try:
            install_dependencies(package, staging)
            # Another build may have finished first; both installed the same pins.
            try:
                staging.rename(directory)
            except OSError:
                if not directory.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def dependency_files(directory: Path) -> dict[str, Path]:
    """Archive path -> file for an installed dependency tree, without machine-specific files."""
    files = {}
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if (
            path.is_dir()
            or SKIPPED_PARTS.intersection(relative.parts)
            or path.name in SKIPPED_NAMES
            or path.suffix == ".pyc"
        ):
            continue
        files[relative.as_posix()] = path
    return files


def write_zip(files: Mapping[str, Path], destination: Path) -> None:
    """A zip whose bytes depend only on the entries' names and contents."""
    with zipfile.ZipFile(destination, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode above is read on every platform
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name].read_bytes(), compresslevel=9)


def build(package: LambdaPackage, root: Path | None = None) -> Path:
    """The package's zip, built once per distinct input (path ends in the inputs' hash)."""
    root = root or cache_dir()
    destination = root / f"{package.name}-{inputs_hash(package)[:16]}.zip"
    if destination.is_file():
        return destination
    root.mkdir(parents=True, exist_ok=True)
    dependencies = _dependencies(package, root)
    files = dependency_files(dependencies) if dependencies else {}
    clashes = sorted(set(files) & set(package.files))
    if clashes:
        raise PackagingError(f"{package.name}: sources shadow dependency files: {clashes}")
    files.update(package.files)
    handle, staging = tempfile.mkstemp(prefix=f".{package.name}-", suffix=".zip", dir=root)
    os.close(handle)
    try:
        write_zip(files, Path(staging))
        os.chmod(staging, 0o644)
        os.replace(staging, destination)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return destination


def code_sha256(path: Path) -> str:
    """Base64 SHA-256 of a zip: Lambda's CodeSha256 and the provider's `source_code_hash`."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()

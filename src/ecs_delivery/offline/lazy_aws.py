"""pulumi_aws service packages (`pulumi_aws.ec2`, ...) that load only the modules a program uses.

A generated service package imports every one of its modules (`aws.ec2` is 183 of them); here
the package answers `aws.ec2.Vpc` by importing `pulumi_aws.ec2.vpc` alone, found from the names
each module lists in `__all__`. The values are the same objects, so a program cannot tell (only
`dir()` of a package is shorter). For the one-shot plan command: installed before pulumi_aws is
imported, and never in what ships to AWS.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGE = "pulumi_aws"
_STAR = re.compile(r"^from \.(\w+) import \*$", re.M)
_NAME = re.compile(r"'(\w+)'")


def _exported(path: Path) -> list[str]:
    """The names in a generated module's `__all__`, read without running the module."""
    lines: list[str] = []
    with path.open(encoding="utf-8") as source:
        for line in source:  # `__all__` is the first statement after the imports
            if lines or line.startswith("__all__ = ["):
                lines.append(line)
                if line.rstrip().endswith("]"):
                    break
    return _NAME.findall("".join(lines))


def index(package_dir: Path) -> dict[str, str]:
    """Exported name -> module of a generated service package, in its `__init__`'s order (a
    later star import wins, as it does when the `__init__` runs)."""
    init = (package_dir / "__init__.py").read_text(encoding="utf-8")
    names: dict[str, str] = {}
    for module in _STAR.findall(init):
        for name in _exported(package_dir / f"{module}.py"):
            names[name] = module
    return names


def _import(fullname: str) -> types.ModuleType:
    """The import statement's way (`importlib.import_module` bypasses `-X importtime`)."""
    __import__(fullname)
    return sys.modules[fullname]


def _resolver(package: str, package_dir: Path) -> Callable[[str], object]:
    """The package's module `__getattr__` (PEP 562): a name from its own module, a submodule
    (`outputs`, `vpc`) by its name. The index is built on the first look-up."""
    names: dict[str, str] = {}
    exports: dict[str, list[str]] = {}

    def resolve(name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        if not names:
            names.update(index(package_dir))
            for exported, module in names.items():
                exports.setdefault(module, []).append(exported)
        this = sys.modules[package]
        try:
            if name not in names:
                value = _import(f"{package}.{name}")
                setattr(this, name, value)
                return value
            module = _import(f"{package}.{names[name]}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        # All of the module's names, as its star import would: importing `get_cluster` made
        # the submodule an attribute that would otherwise hide the function of that name.
        for exported in exports[names[name]]:
            setattr(this, exported, getattr(module, exported))
        return getattr(this, name)

    return resolve


# What a generated service package's `__init__` holds; any other line (`pulumi_aws.config`
# swaps its module class) and the package's `__init__` runs as usual.
_GENERATED = re.compile(
    r"(#.*|from \.\w+ import \*|from \. import outputs|from \.\. import _utilities"
    r"|import typing|import builtins as _builtins|\s*)"
)


class _Loader(importlib.abc.Loader):
    """Runs none of a generated `__init__`: its star imports are what this defers."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        init = Path(module.__file__ or "")
        source = init.read_text(encoding="utf-8")
        if all(_GENERATED.fullmatch(line) for line in source.splitlines()):
            module.__getattr__ = _resolver(module.__name__, init.parent)  # type: ignore[method-assign]
        else:
            exec(compile(source, str(init), "exec"), module.__dict__)  # noqa: S102


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.rpartition(".")[0] != PACKAGE or not path:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.submodule_search_locations:
            return None  # a module (`pulumi_aws.provider`), not a service package
        spec.loader = _Loader()
        return spec


_FINDER = _Finder()


def install() -> None:
    """Service packages of pulumi_aws imported from now on are lazy; those already imported
    stay as they are."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)

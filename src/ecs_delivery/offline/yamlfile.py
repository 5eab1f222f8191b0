"""Read a YAML (or JSON) file for the offline plan, keeping the line of every key.

Strict where a stack file is read by people: a syntax error or a duplicate key is a
`FileProblem` naming file and line; booleans are YAML 1.2 ones (`true`/`false`, as the
Pulumi CLI reads them), so `yes` stays the string "yes" and strict checks can refuse it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class FileProblem(Exception):
    """A file cannot be read as YAML; the message is one line per problem, with file and line."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: PyYAML's 1.1 resolver reads yes/no/on/off as booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Document:
    """A parsed file: its data and the 1-based line of every mapping key and list item."""

    path: str
    data: Any
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that the file has."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def where(self, path: Path_) -> str:
        line = self.line_of(path)
        return f"{self.path}:{line}" if line else self.path


def _walk(node: yaml.Node, at: Path_, lines: dict[Path_, int], problems: list[str], name: str):
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first:
                problems.append(
                    f"{name}:{line}: duplicate key {key!r} (first at line {first[key]}); "
                    "YAML keeps only the last one: remove one of them"
                )
            else:
                first[key] = line
                lines[(*at, key)] = line
            _walk(value_node, (*at, key), lines, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            _walk(item, (*at, index), lines, problems, name)


def parse(text: str, name: str) -> Document:
    """Parse `text` (named `name` in messages); raise FileProblem on syntax errors or duplicates."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        problems: list[str] = []
        if node is not None:
            _walk(node, (), lines, problems, name)
        if problems:
            raise FileProblem("\n".join(problems))
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if exc.context_mark and exc.problem_mark and exc.context_mark.line != mark.line:
            what += f" (the construct opened at line {exc.context_mark.line + 1})"
        raise FileProblem(f"{where}: not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise FileProblem(f"{name}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Document(path=name, data=data, lines=lines)


def load(path: str | Path) -> Document:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read: {exc.strerror}") from None
    return parse(text, str(path))


def mapping(document: Document, at: Path_ = (), what: str = "the file") -> dict[str, Any]:
    """The mapping at `at` (missing or empty: {}); anything else is a FileProblem."""
    value: Any = document.data
    for key in at:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string"}.get(type(value), type(value).__name__)
        raise FileProblem(
            f"{document.where(at)}: {what} must be a mapping of key: value (got {kind})"
        )
    return value

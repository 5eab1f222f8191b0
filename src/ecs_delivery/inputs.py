"""The one reader of every file a user (or AWS) hands us: bytes -> UTF-8 text -> YAML/JSON -> model.

Stack files, `LIVE=` files, release manifests, inventories, promotion records and base plans
all come through here, so each gets the same answers: a file that is not UTF-8 is named with
the encoding found; YAML is loaded safely within a size and an alias-expansion budget, with
tags, duplicate keys and syntax errors reported by file and line (YAML 1.2 booleans, as the
Pulumi CLI reads them); and `problems` is the one formatter of pydantic errors
(`key.path: problem; fix`). No Pulumi import: the release Lambdas ship this module.
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

Path_ = tuple[str | int, ...]

MAX_BYTES = 1 << 20  # a stack file, manifest or inventory is a few KiB
# Values a YAML document may expand to, an alias counted at every use: a stack file has a
# few hundred; ten nested aliases of ten make 10**10 and would take hours to walk.
MAX_NODES = 100_000
_CORE_TAGS = re.compile(r"^tag:yaml\.org,2002:(str|int|float|bool|null|map|seq|timestamp)$")
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)
_SAVE_AS_UTF8 = (
    "save it as UTF-8 (PowerShell 5.1's `>` writes UTF-16: use "
    "`... | Out-File -Encoding utf8 <file>` instead)"
)


class ReadError(ValueError):
    """A file cannot be read; `problems` holds one line per problem, with file and line."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class Model(BaseModel):
    """The base of every model a file is read into (stack config, manifest, inventory, live
    state): camelCase keys (snake_case names accepted), unknown keys refused, frozen."""

    # defer_build: a model's validator is built on its first use, so a process pays only for
    # the models it reads (the plan imports the release manifest's for one function).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        defer_build=True,
    )


class Problems(ValueError):
    """Cross-field problems found by a model validator: (field alias, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


# --- bytes -> text ------------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """`data` as UTF-8 text (a UTF-8 byte-order mark is dropped); anything else is a ReadError."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise ReadError(f"{name}: the file is {encoding} (byte-order mark); {_SAVE_AS_UTF8}")
    if b"\x00" in data[:4096]:  # no text holds NUL bytes: ASCII in UTF-16 without a mark
        raise ReadError(
            f"{name}: the file is not UTF-8 (it looks like UTF-16 without a byte-order "
            f"mark); {_SAVE_AS_UTF8}"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReadError(
            f"{name}:{line}: the file is not UTF-8 (byte 0x{data[exc.start]:02x}; Latin-1 or "
            "Windows-1252?); save it as UTF-8"
        ) from None


def read_bytes(path: str | Path, name: str | None = None, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a local file, refused when over `max_bytes` (before they are read)."""
    name = name or str(path)
    try:
        file = Path(path)
        if file.is_dir():
            raise ReadError(f"{name}: is a folder; give the file")
        size = file.stat().st_size
        if size > max_bytes:
            raise ReadError(f"{name}: {size} bytes is over the limit of {max_bytes} for this file")
        return file.read_bytes()
    except OSError as exc:
        raise ReadError(f"{name}: cannot read: {exc.strerror}") from None


def read_text(path: str | Path, name: str | None = None, max_bytes: int = MAX_BYTES) -> str:
    return decode(read_bytes(path, name, max_bytes), name or str(path))


# --- YAML ---------------------------------------------------------------------------


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


def _expanded_size(root: yaml.Node, name: str, budget: int) -> None:
    """Refuse a document whose values, aliases expanded, exceed `budget` (linear time)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            line = node.start_mark.line + 1
            raise ReadError(f"{name}:{line}: an alias refers to itself (an endless value)")
        open_nodes.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1 + sum(size(child) for child in children)
        open_nodes.discard(key)
        if total > budget:
            raise ReadError(
                f"{name}: the YAML expands to more than {budget} values (each *alias repeats "
                "what its &anchor names); write the values out or use fewer nested aliases"
            )
        sizes[key] = total
        return total

    size(root)


def _dotted(at: Path_) -> str:
    return ".".join(str(p) for p in at) or "(top)"


def _walk(node: yaml.Node, at: Path_, lines: dict[Path_, int], problems: list[str], name: str):
    if not _CORE_TAGS.match(node.tag or ""):
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        problems.append(
            f"{name}:{node.start_mark.line + 1}: {_dotted(at)}: the YAML tag {tag} is not "
            "supported here; write the value itself (quote it if it starts with !)"
        )
        return
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


def _yaml_problem(exc: yaml.YAMLError, name: str) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"{name}: not valid YAML: {exc}"
    mark = exc.problem_mark or exc.context_mark
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
    what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    if exc.context_mark and exc.problem_mark and exc.context_mark.line != mark.line:
        what += f" (the construct opened at line {exc.context_mark.line + 1})"
    return f"{where}: not valid YAML: {what}"


def parse_yaml(text: str, name: str, max_nodes: int = MAX_NODES) -> Document:
    """Parse `text` (named `name` in messages); every problem is a ReadError with file and line."""
    if len(text) > MAX_BYTES:
        raise ReadError(f"{name}: {len(text)} characters is over the limit of {MAX_BYTES}")
    try:
        loader = _Loader(text)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ReadError(
            f"{name}:{line}: the file holds the control character U+{exc.character:04X}, which "
            "YAML does not allow; remove it (or write it as an escape in a double-quoted string)"
        ) from None
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        problems: list[str] = []
        if node is not None:
            _expanded_size(node, name, max_nodes)
            _walk(node, (), lines, problems, name)
        if problems:
            raise ReadError(problems)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ReadError(_yaml_problem(exc, name)) from None
    except RecursionError:
        raise ReadError(f"{name}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()
    return Document(path=name, data=data, lines=lines)


def load_yaml(path: str | Path, name: str | None = None) -> Document:
    name = name or str(path)
    return parse_yaml(read_text(path, name), name)


def mapping(document: Document, at: Path_ = (), what: str = "the file") -> dict[str, Any]:
    """The mapping at `at` (missing or empty: {}); anything else is a ReadError."""
    value: Any = document.data
    for key in at:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string"}.get(type(value), type(value).__name__)
        raise ReadError(
            f"{document.where(at)}: {what} must be a mapping of key: value (got {kind})"
        )
    return value


# --- JSON ---------------------------------------------------------------------------


def parse_json(text: str, name: str) -> Any:
    """Decode JSON; duplicate keys, NaN/Infinity and syntax errors are ReadErrors with the line."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise _Duplicate(key)
            result[key] = value
        return result

    def constant(value: str) -> Any:
        raise ReadError(f"{name}: {value} is not a JSON number; write a finite number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except _Duplicate as exc:
        line = _line_of_key(text, exc.key)
        raise ReadError(
            f"{name}:{line}: duplicate key {exc.key!r}; JSON readers keep only one: remove one"
        ) from None
    except json.JSONDecodeError as exc:
        raise ReadError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ReadError(f"{name}: the JSON is nested too deeply") from None


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _line_of_key(text: str, key: str) -> int:
    """The line of the second occurrence of `"key":` (where the duplicate is)."""
    found = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
    at = found[1] if len(found) > 1 else (found[0] if found else 0)
    return text.count("\n", 0, at) + 1


def load_json(path: str | Path, name: str | None = None, max_bytes: int = MAX_BYTES) -> Any:
    name = name or str(path)
    return parse_json(read_text(path, name, max_bytes), name)


# --- pydantic errors: the one formatter -----------------------------------------------


def _field_type(model: type[BaseModel] | None, key: str) -> Any:
    if model is None:
        return None
    for field_name, info in model.model_fields.items():
        if key in (field_name, info.alias):
            return info.annotation
    return None


def _unwrap(annotation: Any) -> Any:
    """Return the model class reached through Optional/dict/list annotations, or None."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _unwrap(arg)
            if found is not None:
                return found
        return None
    if origin in (dict, list):
        return ("container", _unwrap(typing.get_args(annotation)[-1]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """Walk `root` along an error location to the model that holds its last key."""
    current: Any = root
    for part in loc:
        if current is None:
            return None
        if isinstance(current, tuple):  # inside dict/list: this part is a key or index
            current = current[1]
            continue
        current = _unwrap(_field_type(current, str(part)))
    return current if isinstance(current, type) else None


def known_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items() if not info.exclude]


def elide(names: typing.Iterable[Any], limit: int = 5) -> str:
    """A list for a message: the first `limit` items, then how many more."""
    items = [str(n) for n in names]
    if len(items) <= limit:
        return repr(items)
    shown = ", ".join(repr(n) for n in items[:limit])
    return f"[{shown}, … {len(items) - limit} more]"


def _format(
    error: dict[str, Any], root: type[BaseModel], retired: dict[Path_, str], missing: str
) -> list[str]:
    loc = tuple(p for p in error["loc"] if p != "[key]")
    path = ".".join(str(p) for p in loc) or "(top)"
    kind = error["type"]
    exc = (error.get("ctx") or {}).get("error")
    if isinstance(exc, Problems):
        return [f"{path + '.' if loc else ''}{field}: {msg}" for field, msg in exc.problems]
    if kind == "extra_forbidden" and loc in retired:
        return [f"{path}: {retired[loc]}"]
    if kind == "extra_forbidden":
        parent = model_at(loc[:-1], root)
        known = known_keys(parent) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {elide(known, 12)}"
        return [f"{path}: unknown key; {hint}"]
    if kind == "missing":
        return [f"{path}: {missing}"]
    if kind == "bool_type":
        value = error.get("input")
        return [f"{path}: use true or false (an unquoted YAML boolean), got {value!r}"]
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or kind == "value_error" else f" (got {value!r})"
    return [f"{path}: {message}{shown}"]


def problems(
    exc: ValidationError,
    root: type[BaseModel],
    *,
    retired: dict[Path_, str] | None = None,
    missing: str = "required",
) -> list[str]:
    """One line per problem of a pydantic error of `root`, naming the key path and the fix."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        lines.extend(_format(error, root, retired or {}, missing))
    return list(dict.fromkeys(lines))


def located(lines: list[str], document: Document) -> list[str]:
    """Each `key.path: problem` line prefixed with the file and line of its key."""
    result = []
    for line in lines:
        key_path = line.split(": ", 1)[0]
        at = tuple(int(p) if p.isdigit() else p for p in key_path.split("."))
        result.append(f"{document.where(at)}: {line}")
    return result


M = typing.TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, document: Document | None = None, name: str = "") -> M:
    """`data` validated by `model`; problems are a ReadError, each line with file and line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = problems(exc, model)
        if document is not None:
            raise ReadError(located(lines, document)) from None
        raise ReadError([f"{name}: {line}" if name else line for line in lines]) from None


# --- numbers ------------------------------------------------------------------------


def number(
    value: Any,
    name: str,
    *,
    above: float = 0,
    at_least: float | None = None,
    at_most: float,
    whole: bool = False,
    zero: bool = False,
) -> float:
    """`value` (text or number) as a finite number in (above, at_most] (with `zero`, 0 too);
    else a ReadError naming `name` (NaN passes every `<=` check, so comparisons alone let it
    through)."""
    shown = value if isinstance(value, str) else repr(value)
    try:
        result = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise ReadError(f"{name}: {shown} is not a number") from None
    if not math.isfinite(result):
        raise ReadError(f"{name}: {shown} is not a finite number; give a number, e.g. 15")
    if whole and result != int(result):
        raise ReadError(f"{name}: {shown} is not a whole number")
    if whole and result < above + 1:
        raise ReadError(f"{name}: {shown} must be at least {int(above) + 1}")
    if zero and result == 0:
        return result
    if result <= above:
        raise ReadError(f"{name}: {shown} must be more than {above:g}")
    if at_least is not None and result < at_least:
        raise ReadError(f"{name}: {shown} must be at least {at_least:g}")
    if result > at_most:
        raise ReadError(f"{name}: {shown} must be at most {at_most:g}")
    return result


def option(
    name: str, *, at_most: float, whole: bool = False, at_least: float | None = None
) -> typing.Callable[[str], float]:
    """An argparse `type=` for `number`: argparse prefixes the option's name to the message."""

    def parse(text: str) -> float:
        try:
            value = number(text, name, at_least=at_least, at_most=at_most, whole=whole)
        except ReadError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{name}: ")) from None
        return int(value) if whole else value

    parse.__name__ = name  # argparse names the type in its messages
    return parse

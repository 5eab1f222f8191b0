"""Args dataclasses: type checks (a wrong type is named, not a later TypeError), defaults
read from the config models (`from_config`) and names the component derives when omitted
(`derived`: from `naming`, the stack and the resource name), so a library user writes only
what differs.

Only plain values are checked (the ones a component branches on); a field that admits a
`pulumi.Input` or `pulumi.Output` takes whatever the engine will resolve.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

# dataclasses.Field.metadata key of a field defaulted by `from_config`: (model, field name).
MIRRORS = "ecs_delivery.config"
# dataclasses.Field.metadata key of a field the component derives when it is None: how, in words.
DERIVES = "ecs_delivery.derived"
A = typing.TypeVar("A")


class ArgsError(pulumi.RunError, TypeError):
    """A component was given a value of the wrong type; the message names the argument."""


def _unchecked(annotation: Any) -> bool:
    """True where the engine resolves the value (Input, Output, awaitables, Any)."""
    if annotation is Any or annotation is pulumi.Output:
        return True
    origin = typing.get_origin(annotation)
    if origin is pulumi.Output:
        return True
    if origin is not None and isinstance(origin, type) and origin.__module__ == "collections.abc":
        return origin.__name__ == "Awaitable"
    if origin in (Union, types.UnionType):
        return any(_unchecked(a) for a in typing.get_args(annotation))
    return False


def _fits(value: Any, annotation: Any) -> bool:
    if _unchecked(annotation):
        return True
    origin, params = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return value is None
    if origin is Literal:
        return value in params and type(value) in {type(p) for p in params}
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in params)
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, list | tuple | set | frozenset):
            return False
        inner = params[0] if params else Any
        return all(_fits(item, inner) for item in value)
    if origin is dict:
        key, inner = params or (Any, Any)
        return isinstance(value, dict) and all(
            _fits(k, key) and _fits(v, inner) for k, v in value.items()
        )
    if isinstance(annotation, type):
        if annotation is float:
            return isinstance(value, int | float) and not isinstance(value, bool)
        if annotation is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, annotation)
    return True  # an annotation this check does not understand: leave it to the component


def _shown(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # pulumi.Input names Output by a forward reference, resolved here.
    return typing.get_type_hints(cls, localns={"Output": pulumi.Output, "T": typing.TypeVar("T")})


def check_types(args: Any) -> None:
    """Raise ArgsError naming every field of the dataclass `args` whose value has the wrong type."""
    hints = _hints(type(args))
    problems = [
        f"{type(args).__name__}.{f.name}: expected {_shown(hints[f.name])}, got "
        f"{type(getattr(args, f.name)).__name__} {getattr(args, f.name)!r}"
        for f in dataclasses.fields(args)
        if not _fits(getattr(args, f.name), hints[f.name])
    ]
    if problems:
        raise ArgsError("; ".join(problems))


def checked(cls: type) -> type:
    """Class decorator (above `@dataclass`): construction checks the field types."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        init(self, *args, **kwargs)
        check_types(self)

    cls.__init__ = __init__
    return cls


def from_config(model: type[BaseModel], name: str, factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field whose default is the config model's (`model.model_fields[name]`).

    The model is the one home of the default; the field records which setting it mirrors (the
    Args reference names it). A nested model's default is built by `factory`, the Args class
    whose own fields mirror that model's.
    """
    info = model.model_fields[name]
    meta = {MIRRORS: (model, name)}
    default = info.get_default(call_default_factory=True)
    if default is PydanticUndefined:
        raise TypeError(f"{model.__name__}.{name} has no default to mirror")
    if isinstance(default, BaseModel):
        if factory is None:
            raise TypeError(f"{model.__name__}.{name} is a model: give the Args class as factory")
        return dataclasses.field(default_factory=factory, metadata=meta)
    if default.__hash__ is None:  # list, dict: a fresh copy for every instance
        return dataclasses.field(
            default_factory=lambda: info.get_default(call_default_factory=True), metadata=meta
        )
    return dataclasses.field(default=default, metadata=meta)


def mirrored(field: dataclasses.Field) -> tuple[type[BaseModel], str] | None:
    """The (config model, field name) whose default `field` takes, None for a field of its own."""
    return field.metadata.get(MIRRORS)


def derived(how: str) -> Any:
    """A field the component fills in when it is omitted (None), as `how` says (the Args
    reference shows it): a physical name from `naming`, or the AWS provider's region or account.

    The component derives it, not the Args class: the resource name and the provider are the
    component's (`with_defaults`). The stack program passes every such value itself.
    """
    return dataclasses.field(default=None, metadata={DERIVES: how})


def derivation(field: dataclasses.Field) -> str | None:
    """How the component derives `field` when it is omitted, None for a field it does not."""
    return field.metadata.get(DERIVES)


def with_defaults(args: A, **defaults: Callable[[], Any]) -> A:
    """`args` with each derived field left None set to its default, computed only then."""
    fields = {f.name for f in dataclasses.fields(args) if derivation(f)}
    if undocumented := set(defaults) - fields:  # the Args reference must show every default
        raise TypeError(f"{type(args).__name__}: {sorted(undocumented)} are not derived fields")
    missing = {key: make() for key, make in defaults.items() if getattr(args, key) is None}
    return dataclasses.replace(args, **missing) if missing else args


def provider_region(parent: pulumi.Resource) -> str:
    """The region of `parent`'s AWS provider (the stack's `aws:region`, or an explicit one's)."""
    return aws.get_region(opts=pulumi.InvokeOptions(parent=parent)).region


def provider_account(parent: pulumi.Resource) -> str:
    """The account of the credentials `parent`'s AWS provider runs with."""
    return aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=parent)).account_id

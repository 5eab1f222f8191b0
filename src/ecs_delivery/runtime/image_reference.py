"""The registry's image reference grammar (distribution/reference), the one home for it: the
stack config's images and the release manifest's are checked here, each part on its own."""

from __future__ import annotations

import re
from typing import NamedTuple

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
GRAMMAR = "[registry/]repository[:tag][@sha256:<64 hex digits>]"


class Reference(NamedTuple):
    """An image reference split as Docker splits it."""

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None


def split(value: str) -> Reference:
    """`value` in its parts (not checked: see problems())."""
    name, at, digest = value.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, _, tag = name.rpartition(":")
    parts = name.split("/")
    # As Docker splits it: a first part with '.', ':' or capitals, or localhost, is a registry.
    first = parts[0]
    registry = None
    if len(parts) > 1 and (
        any(c in first for c in ".:") or first == "localhost" or first != first.lower()
    ):
        registry, parts = first, parts[1:]
    return Reference(registry, "/".join(parts), tag, digest if at else None)


def problems(value: str) -> list[str]:
    """Why `value` is not an image reference (empty: it is one)."""
    reference = split(value)
    found = []
    if reference.digest is not None and not DIGEST.match(reference.digest):
        found.append(f"digest {reference.digest!r} is not sha256:<64 hex digits>")
    if reference.tag is not None and not _TAG.match(reference.tag):
        found.append(
            f"tag {reference.tag!r} is not 1-128 letters, digits, '_', '.' or '-' (not first)"
        )
    if reference.registry is not None and not _DOMAIN.match(reference.registry):
        found.append(f"registry {reference.registry!r} is not a host name with an optional :port")
    for part in reference.repository.split("/"):
        if not _PATH_COMPONENT.match(part):
            found.append(
                f"repository {part!r} is not lowercase letters and digits joined by '.', '_', '__' or '-'"
            )
    return found

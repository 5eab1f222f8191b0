"""Which DNS names get alias records and certificate names: plain functions, no resources.

The schema (components/config) and the edge components share them, so a name the
schema admits is never refused later. A host header gets a record and a certificate name
when it is exact (`api.example.com`) or a whole leading-label wildcard (`*.example.com`)
inside the hosted zone; other ALB patterns (`api-*.example.com`, `?`) can be neither, and
are skipped with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# ACM's default quota: names per certificate (the domain name and its alternative names).
MAX_CERTIFICATE_NAMES = 10
ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")


def is_zone_id(value: str) -> bool:
    """A Route 53 hosted zone id (`Z0123456789ABCDEFGHIJ`), as opposed to a zone name."""
    return bool(ZONE_ID.match(value))


def _exact(name: str) -> bool:
    return "*" not in name and "?" not in name


def nameable(name: str) -> bool:
    """A name Route 53 and ACM both take: exact, or `*.` followed by an exact name."""
    return _exact(name) or (name.startswith("*.") and _exact(name[2:]))


def in_zone(name: str, zone: str) -> bool:
    zone = zone.rstrip(".").lower()
    name = name.lower()
    return name == zone or name.endswith(f".{zone}")


def validation_base(name: str) -> str:
    """`*.x` and `x` share one ACM validation record (the one of `x`)."""
    return name[2:] if name.startswith("*.") else name


@dataclass(frozen=True)
class EdgeNames:
    """The names of one stack's edge, split by what can be done with them."""

    # In the zone and nameable: alias records (and certificate names when one is created).
    in_zone: list[str] = field(default_factory=list)
    # (name, why): names that get no record (and are not on a created certificate).
    skipped: list[tuple[str, str]] = field(default_factory=list)


def edge_names(domain_name: str | None, host_headers: list[str], zone: str | None) -> EdgeNames:
    """`domainName` first, then the services' host headers (sorted, deduplicated, lower case).

    `zone` None (a zone given by id, its name not known yet) puts every nameable name in.
    """
    ordered: list[str] = []
    for name in ([domain_name] if domain_name else []) + sorted(h.lower() for h in host_headers):
        if name.lower() not in ordered:
            ordered.append(name.lower())
    kept, skipped = [], []
    for name in ordered:
        if not nameable(name):
            skipped.append((name, "a pattern neither Route 53 nor ACM can name"))
        elif zone is not None and not in_zone(name, zone):
            skipped.append((name, f"outside the hosted zone {zone.rstrip('.')}"))
        else:
            kept.append(name)
    return EdgeNames(in_zone=kept, skipped=skipped)


def certificate_names(domain_name: str, names: EdgeNames) -> list[str]:
    """The created certificate's names: `domainName` first, then its alternative names."""
    return [domain_name.lower(), *(n for n in names.in_zone if n != domain_name.lower())]


def validation_bases(certificate: list[str]) -> list[str]:
    """One DNS validation record per distinct base name, in certificate order."""
    bases: list[str] = []
    for name in certificate:
        if validation_base(name) not in bases:
            bases.append(validation_base(name))
    return bases


def resource_suffix(name: str) -> str:
    """A child-name suffix for a DNS name (`*` is not welcome in resource names)."""
    return name.replace("*", "wildcard")

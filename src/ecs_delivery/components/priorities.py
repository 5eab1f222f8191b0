"""Listener-rule priorities: unique on the listener for any number of services, stable per name.

A service's priority is `routing.priority` when set, 50000 for the catch-all (`/*`, no host),
else derived from its name alone (CRC32 into 1000-49999). Two names can hash to the same
number (svc207 and svc438 do): in name order, a later one takes the next free number after
it, so a service whose number nobody else has never moves, whatever is added or removed.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

CATCH_ALL_PRIORITY = 50000
FIRST_DERIVED, DERIVED_SLOTS = 1000, 49000  # 1-999 are left for explicit ones


def derived_priority(name: str) -> int:
    """The number a service's name hashes to (its priority unless another name has it)."""
    return FIRST_DERIVED + zlib.crc32(name.encode()) % DERIVED_SLOTS


def is_catch_all(routing: Mapping[str, Any]) -> bool:
    return routing.get("pathPatterns", ["/*"]) == ["/*"] and not routing.get("hostHeaders")


def listener_priorities(routings: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Each service's priority from its raw routing values (camelCase keys), all different
    except where the config itself repeats an explicit one or has two catch-alls (the config
    check refuses those)."""
    result: dict[str, int] = {}
    for name, routing in routings.items():
        if routing.get("priority") is not None:
            result[name] = routing["priority"]
        elif is_catch_all(routing):
            result[name] = CATCH_ALL_PRIORITY
    taken = set(result.values())
    for name in sorted(n for n in routings if n not in result):
        start = derived_priority(name) - FIRST_DERIVED
        for step in range(DERIVED_SLOTS):
            candidate = FIRST_DERIVED + (start + step) % DERIVED_SLOTS
            if candidate not in taken:
                break
        else:
            raise ValueError(
                f"services: more than {DERIVED_SLOTS} services without routing.priority on "
                "one listener; set routing.priority on some of them"
            )
        taken.add(candidate)
        result[name] = candidate
    return {name: result[name] for name in routings}

"""Pure upcasters: old payloads become current ones before validation.

Each entry maps (type, from_version) to a function returning the payload at
from_version + 1. Fields are only ever added, so an upcaster fills defaults.
Version 1 is current for every event today; the chain exists so a v2 lands as
one function and one stored-payload test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

CURRENT_VERSIONS: dict[str, int] = {}
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class FutureSchemaVersion(ValueError):
    """A payload newer than this build understands."""


def upcast(payload: Payload) -> Payload:
    """Bring ``payload`` to its type's current schema_version, one step at a time."""
    event_type = payload.get("type")
    if not isinstance(event_type, str):
        return payload
    version = payload.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return payload  # not a version: validation refuses it, naming the field
    current = CURRENT_VERSIONS.get(event_type, 1)
    if version > current:
        raise FutureSchemaVersion(f"{event_type} schema_version {version} > {current}")
    while version < current:
        payload = UPCASTERS[(event_type, version)](payload)
        version += 1
        payload = {**payload, "schema_version": version}
    return payload

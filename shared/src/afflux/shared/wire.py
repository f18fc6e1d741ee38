"""Encoding and decoding records, including packed records.

A record value is either one event (a JSON object) or a packed record: a JSON
array of events that all belong to the record's partition. Producers pack to
cut the per-record cost on the consumers (see docs/events/README.md); consumers
must accept both shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from afflux.shared.core.upcasters import FutureSchemaVersion, upcast
from afflux.shared.events import AnyEvent, Envelope

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


class UndecodableRecord(ValueError):
    """A record value that is not valid JSON, not an event, or fails validation."""


def encode(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


def encode_packed(events: Sequence[Envelope]) -> bytes:
    """One record value holding several events (same partition), as a JSON array."""
    return b"[" + b",".join(e.model_dump_json().encode() for e in events) + b"]"


def event_from_dict(payload: dict[str, Any]) -> AnyEvent:
    try:
        return _ADAPTER.validate_python(upcast(payload))
    except (ValidationError, FutureSchemaVersion) as exc:
        raise UndecodableRecord(_describe(exc)) from exc


def decode_record(value: bytes | None) -> list[AnyEvent]:
    """All events in one record value, or UndecodableRecord naming the reason."""
    if value is None:
        raise UndecodableRecord("empty record value (tombstone)")
    try:
        parsed = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableRecord(f"not JSON: {exc}") from exc
    items: Iterable[Any] = parsed if isinstance(parsed, list) else [parsed]
    events = []
    for item in items:
        if not isinstance(item, dict):
            raise UndecodableRecord("record must be a JSON object or an array of objects")
        events.append(event_from_dict(item))
    return events


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(root)"
            parts.append(f"{where}: {err['msg']}")
        return "invalid event: " + "; ".join(parts)
    return str(exc)

"""Encoding and decoding records, including packed records.

A record value is either one event (a JSON object) or a packed record: a JSON
array of events that all belong to the record's partition. Producers pack to
cut the per-record cost on the consumers (see docs/events/README.md); consumers
must accept both shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from afflux.shared.core.upcasters import FutureSchemaVersion, upcast
from afflux.shared.events import AnyEvent, Envelope

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
# json.dumps with separators builds a new encoder on every call; state and ledger
# encoding is on the hot path.
compact_json = json.JSONEncoder(separators=(",", ":")).encode
# A packed record stays far below the broker's request limit and a consumer's fetch size.
MAX_PACKED_EVENTS = 200
MAX_PACKED_BYTES = 512 * 1024


class UndecodableRecord(ValueError):
    """A record value that is not valid JSON, not an event, or fails validation."""


def encode(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


def encode_packed(events: Sequence[Envelope]) -> bytes:
    """One record value holding several events (same partition), as a JSON array."""
    return pack_values([e.model_dump_json().encode() for e in events])


def pack_values(values: Sequence[bytes]) -> bytes:
    """One encoded event as is; several as a packed record (a JSON array)."""
    return values[0] if len(values) == 1 else b"[" + b",".join(values) + b"]"


def pack_by_partition(
    items: Iterable[tuple[bytes, bytes]], partition_of: Callable[[bytes], int]
) -> list[tuple[int, bytes, bytes]]:
    """``(key, encoded event)`` items as ``(partition, key, value)`` records.

    Events are packed per partition in their given order, at most
    ``MAX_PACKED_EVENTS`` events or ``MAX_PACKED_BYTES`` per record; a record's key
    is its first event's key (all of them map to the record's partition).
    """
    chunks: dict[int, list[tuple[bytes, list[bytes], int]]] = {}
    for key, value in items:
        partition = partition_of(key)
        slots = chunks.setdefault(partition, [])
        if (
            not slots
            or len(slots[-1][1]) >= MAX_PACKED_EVENTS
            or slots[-1][2] + len(value) > MAX_PACKED_BYTES
        ):
            slots.append((key, [], 0))
        first, values, size = slots[-1]
        values.append(value)
        slots[-1] = (first, values, size + len(value) + 1)
    return [
        (partition, first, pack_values(values))
        for partition, slots in chunks.items()
        for first, values, _ in slots
    ]


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

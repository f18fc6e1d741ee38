"""Encoding and decoding records, including packed records.

A record value is either one event (a JSON object) or a packed record: a JSON
array of events that all belong to the record's partition. Producers pack to
cut the per-record cost on the consumers (see docs/events/README.md); consumers
must accept both shapes.

Decoding is bounded before the parser sees a byte (``check_bounds``): a record
value is at most ``MAX_RECORD_BYTES``, nests at most ``MAX_DEPTH`` brackets
deep and holds no number of more than ``MAX_DIGIT_RUN`` digits (Python refuses to
parse integers past 4,300 digits, and parsing them costs quadratic time below
that). ``NaN`` and ``Infinity`` are not JSON and refused by the parser; an
integer beyond 64 bits is read exactly (by Python's parser) and refused by
validation. Any failure at all while decoding one record becomes
``UndecodableRecord`` naming the reason and the exception's class, so a consumer
dead-letters the record and goes on.

One record value may be compressed: a campaigns record holds its campaign's whole
version history, which outgrows ``MAX_RECORD_BYTES`` after a few versions of a large
coupon map, though the versions repeat one another almost entirely. A value that
starts with the xz magic (``XZ_MAGIC``) is an xz stream of the JSON; it expands to at
most ``MAX_EXPANDED_BYTES`` (the expanded JSON held to the same depth and digit
bounds), and must hold exactly one ``CampaignTermsPublished``: no other event needs
it, and a packed record of thousands of events compressed into one would pass every
per-record bound a consumer counts on.
"""

from __future__ import annotations

import json
import lzma
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from afflux.shared.core.upcasters import FutureSchemaVersion, upcast
from afflux.shared.events import AnyEvent, Envelope

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
# json.dumps with separators builds a new encoder on every call; state and ledger
# encoding is on the hot path.
compact_json = json.JSONEncoder(separators=(",", ":")).encode
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


def compact_json_bytes(doc: Any) -> bytes:
    """``compact_json(doc).encode()`` several times faster (orjson), for plain data: the
    same JSON, except that characters beyond ASCII are written as UTF-8 rather than
    escaped. What orjson refuses (an integer beyond 64 bits) takes ``compact_json``."""
    try:
        return orjson.dumps(doc, option=_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return compact_json(doc).encode()


# A packed record stays far below the broker's request limit and a consumer's fetch size.
MAX_PACKED_EVENTS = 200
MAX_PACKED_BYTES = 512 * 1024
M = TypeVar("M")


# Bounds checked before parsing (docs/reliability.md, "Poison records").
MAX_RECORD_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_DIGIT_RUN = 256
_DIGIT_RUN = re.compile(rb"[0-9]{%d}" % (MAX_DIGIT_RUN + 1))
_LONG_INTEGER = b"0" * 20  # 2**64 has 20 digits; searched in the digit mask below
# Every 32nd byte: a run of more than MAX_DIGIT_RUN digits covers 8 of them in a row.
_STRIDE = 32
_SAMPLED_RUN = b"0" * (MAX_DIGIT_RUN // _STRIDE)
_DIGIT_MASK = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")  # for depth, an object nests like an array


# Compressed campaigns records (see the module docstring): what a reader expands at
# most, and the decoder memory it grants an xz header (the encoder's preset needs 9 MiB).
XZ_MAGIC = b"\xfd7zXZ\x00"
MAX_EXPANDED_BYTES = 16 * 1024 * 1024
_XZ_MEMORY_LIMIT = 32 * 1024 * 1024
COMPRESSED_TYPES = frozenset({"CampaignTermsPublished"})


class UndecodableRecord(ValueError):
    """A record value that is not valid JSON, not an event, or fails validation."""

    def __init__(self, reason: str, error_class: str = "UndecodableRecord") -> None:
        super().__init__(reason)
        self.error_class = error_class


def check_size(value: bytes, max_bytes: int) -> None:
    if len(value) > max_bytes:
        raise UndecodableRecord(
            f"record of {len(value)} bytes exceeds {max_bytes}", "RecordTooLarge"
        )


def check_bounds(value: bytes, max_bytes: int = MAX_RECORD_BYTES) -> None:
    """Raise UndecodableRecord when ``value`` is too large, too deep or holds too long a
    number, without parsing it: the limits no valid event comes near."""
    check_size(value, max_bytes)
    # The common case costs two C passes: the digit sample and the brackets.
    if _SAMPLED_RUN in value[::_STRIDE].translate(_DIGIT_MASK) and _long_digit_run(value):
        raise UndecodableRecord(f"a number longer than {MAX_DIGIT_RUN} digits", "NumberTooLong")
    # Brackets inside strings count too here, which can only overstate the depth (or
    # leave brackets unmatched); then measure again with the strings taken out.
    brackets = value.translate(None, _NOT_BRACKETS)
    if (
        len(brackets) > MAX_DEPTH
        and _too_deep(brackets)
        and _too_deep(_outside_strings(value).translate(None, _NOT_BRACKETS))
    ):
        raise UndecodableRecord(f"nested deeper than {MAX_DEPTH} levels", "NestedTooDeep")


def _long_digit_run(value: bytes) -> bool:
    """Whether ``value`` holds a number (digits outside strings) of more than
    ``MAX_DIGIT_RUN`` digits. Asked only where the sample of every ``_STRIDE``-th byte
    has 8 digits in a row, which such a number always gives (a long number, or a long
    digit run inside a string, which this exact search leaves out)."""
    return _DIGIT_RUN.search(_outside_strings(value)) is not None


def _outside_strings(value: bytes) -> bytes:
    """``value`` without its JSON strings' contents, in linear time: escapes dropped,
    every other quote-delimited stretch left out."""
    return b"".join(_ESCAPE.sub(b"", value).split(b'"')[::2])


def _too_deep(brackets: bytes) -> bool:
    """Whether a string of brackets only nests deeper than ``MAX_DEPTH``.

    Each round removes the innermost pairs, one level of nesting. What cannot be
    reduced further is unbalanced, which the parser reports unless its unclosed
    openers alone are too deep.
    """
    for _ in range(MAX_DEPTH + 1):
        inner = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(inner) == len(brackets):
            return b"[" * (MAX_DEPTH + 1) in brackets.translate(_AS_SQUARE)
        brackets = inner
    return True


def parse_value(value: bytes | None) -> Any:
    """The parsed JSON of a record value within the bounds above, or UndecodableRecord."""
    if value is None:
        raise UndecodableRecord("empty record value (tombstone)")
    compressed = value.startswith(XZ_MAGIC)
    if compressed:
        # Its bytes are no JSON: their size is bounded before expanding, the shape of
        # the JSON inside after.
        check_size(value, MAX_RECORD_BYTES)
        value = expand(value)
        check_bounds(value, MAX_EXPANDED_BYTES)
    else:
        check_bounds(value)
    try:
        # orjson is several times faster, but reads an integer beyond 64 bits as a
        # float: a value with such a digit run (rare: no field needs one) takes the
        # exact parser.
        if _LONG_INTEGER not in value.translate(_DIGIT_MASK):
            parsed = orjson.loads(value)
        else:
            parsed = json.loads(value)
    except UndecodableRecord:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableRecord(f"not JSON: {exc}", type(exc).__name__) from exc
    except Exception as exc:  # whatever the parser raises, the record is bad
        raise UndecodableRecord(f"not JSON: {exc!r}"[:500], type(exc).__name__) from exc
    if parsed == []:
        # No producer packs nothing (``pack_values`` needs one value): read as "no
        # events", it would be dropped by every consumer without a trace.
        raise UndecodableRecord("an empty array: a packed record holds at least one event")
    if isinstance(parsed, list) and len(parsed) > MAX_PACKED_EVENTS:
        # No afflux producer ever packed more. Read item by item, a record of 250,000
        # empty objects (750 KB) made a million dead letters, one send each, and held every
        # consumer of its topic behind them for hours.
        raise UndecodableRecord(
            f"a packed record holds at most {MAX_PACKED_EVENTS} events; this one holds"
            f" {len(parsed)}: pack fewer per record"
        )
    if compressed and not (isinstance(parsed, dict) and parsed.get("type") in COMPRESSED_TYPES):
        raise UndecodableRecord(
            "a compressed record must hold one event of type "
            + " or ".join(sorted(COMPRESSED_TYPES))
        )
    return parsed


def compress(value: bytes) -> bytes:
    """``value`` as an xz stream that ``parse_value`` reads back. The preset's 8 MiB
    window reaches across versions, so a version repeating the one before costs little."""
    return lzma.compress(value, format=lzma.FORMAT_XZ, preset=6)


def expand(value: bytes) -> bytes:
    """The JSON inside a compressed value, or UndecodableRecord: more than
    ``MAX_EXPANDED_BYTES``, a header asking for more decoder memory than it is granted, a
    damaged or truncated stream, or bytes after its end."""
    decoder = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=_XZ_MEMORY_LIMIT)
    try:
        out = decoder.decompress(value, max_length=MAX_EXPANDED_BYTES + 1)
    except lzma.LZMAError as exc:
        raise UndecodableRecord(f"not a readable xz stream: {exc}", "LZMAError") from exc
    if len(out) > MAX_EXPANDED_BYTES:
        raise UndecodableRecord(
            f"compressed record expands beyond {MAX_EXPANDED_BYTES} bytes", "RecordTooLarge"
        )
    if not decoder.eof:
        raise UndecodableRecord("compressed record is truncated", "LZMAError")
    if decoder.unused_data:
        raise UndecodableRecord("bytes after the end of a compressed record", "LZMAError")
    return out


def encode(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


def encode_packed(events: Sequence[Envelope]) -> bytes:
    """One record value holding several events (same partition), as a JSON array."""
    return pack_values([e.model_dump_json().encode() for e in events])


def pack_values(values: Sequence[bytes]) -> bytes:
    """One encoded event as is; several as a packed record (a JSON array)."""
    return values[0] if len(values) == 1 else b"[" + b",".join(values) + b"]"


@dataclass(slots=True)
class Chunk(Generic[M]):
    """Encoded events bound for one record: at most ``MAX_PACKED_EVENTS`` events and
    ``MAX_PACKED_BYTES``, all of one partition (None: the producer's partitioner
    chooses). The record's key is its first event's key; ``members`` holds what
    the caller needs back per event (an index, a waiter, a log item)."""

    partition: int | None
    key: bytes
    values: list[bytes] = field(default_factory=list)
    members: list[M] = field(default_factory=list)
    size: int = 0  # the values' bytes plus a separator each

    def fits(self, value: bytes) -> bool:
        """Whether ``value`` may join; the first event always may, however large."""
        return not self.values or (
            len(self.values) < MAX_PACKED_EVENTS and self.size + len(value) <= MAX_PACKED_BYTES
        )

    def add(self, value: bytes, member: M) -> None:
        self.values.append(value)
        self.members.append(member)
        self.size += len(value) + 1

    def record_value(self) -> bytes:
        return pack_values(self.values)


def chunk_by_partition(items: Iterable[tuple[int, bytes, bytes, M]]) -> list[Chunk[M]]:
    """``(partition, key, encoded event, member)`` items as chunks, one record each.

    Events are packed per partition in their given order, a new chunk starting
    where the next event does not fit; partitions come in the order they first
    appear.
    """
    chunks: dict[int, list[Chunk[M]]] = {}
    for partition, key, value, member in items:
        slots = chunks.setdefault(partition, [])
        if not slots or not slots[-1].fits(value):
            slots.append(Chunk(partition, key))
        slots[-1].add(value, member)
    return [chunk for slots in chunks.values() for chunk in slots]


def pack_by_partition(
    items: Iterable[tuple[bytes, bytes]], partition_of: Callable[[bytes], int]
) -> list[tuple[int, bytes, bytes]]:
    """``(key, encoded event)`` items as ``(partition, key, value)`` records, packed as
    ``chunk_by_partition`` packs them."""
    chunks = chunk_by_partition((partition_of(key), key, value, None) for key, value in items)
    return [(_partition(chunk), chunk.key, chunk.record_value()) for chunk in chunks]


def _partition(chunk: Chunk[M]) -> int:
    assert chunk.partition is not None  # chunk_by_partition sets every chunk's partition
    return chunk.partition


def event_from_dict(payload: dict[str, Any]) -> AnyEvent:
    try:
        return _ADAPTER.validate_python(upcast(payload))
    except (ValidationError, FutureSchemaVersion) as exc:
        raise UndecodableRecord(describe_refusal(exc), type(exc).__name__) from exc
    except Exception as exc:  # an upcaster or validator failing on odd input
        raise UndecodableRecord(f"invalid event: {exc!r}"[:500], type(exc).__name__) from exc


def decode_record(value: bytes | None) -> list[AnyEvent]:
    """All events in one record value, or UndecodableRecord naming the reason."""
    parsed = parse_value(value)
    items: Iterable[Any] = parsed if isinstance(parsed, list) else [parsed]
    events = []
    for item in items:
        if not isinstance(item, dict):
            raise UndecodableRecord("record must be a JSON object or an array of objects")
        events.append(event_from_dict(item))
    return events


def describe_refusal(exc: Exception, model: str = "") -> str:
    """One line for a dead letter: each of the first five validation errors as
    ``<model>.<field>: <why>`` (``model``: the event type, when the validator's own
    locations leave it out)."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = (
                ".".join(
                    [model, *(str(p) for p in err["loc"])]
                    if model
                    else [str(p) for p in err["loc"]]
                )
                or "(root)"
            )
            parts.append(f"{where}: {err['msg']}")
        return "invalid event: " + "; ".join(parts)
    return str(exc)

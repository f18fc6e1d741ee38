"""Event time as integer UTC milliseconds, and the type of an injectable clock.

Nothing here reads the time: the wall clock is ``afflux.shared.io.clock_source``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], int]
"""A function returning the current time in UTC milliseconds (``clock_source.system_clock``
in production)."""

MS_PER_SECOND = 1_000
MS_PER_DAY = 86_400_000


def to_ms(moment: datetime) -> int:
    """UTC milliseconds of an aware datetime; naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a time zone (for example 2026-11-01T10:00:00Z)")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_event_time(value: object) -> int:
    """Accept integer milliseconds or an RFC 3339 string with a zone; return milliseconds."""
    if isinstance(value, bool):
        raise ValueError("event time must be integer milliseconds or RFC 3339 with a zone")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("event time must not be negative")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an RFC 3339 time: {value!r}") from exc
        return to_ms(parsed)
    raise ValueError("event time must be integer milliseconds or RFC 3339 with a zone")

"""Event time as integer UTC milliseconds, and the type of an injectable clock.

Nothing here reads the time: the wall clock is ``afflux.shared.io.clock_source``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], int]
"""A function returning the current time in UTC milliseconds (``clock_source.system_clock``
in production)."""

MS_PER_SECOND = 1_000
MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """UTC milliseconds of an aware datetime, rounded down to the millisecond; naive
    datetimes are refused.

    Integer arithmetic on purpose: ``int(moment.timestamp() * 1000)`` goes through a
    float of seconds and gave one millisecond less for about one time in a hundred
    (``2038-02-06T11:51:48.482Z`` came out as ``…481``), moving an order across its
    cookie window's edge."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a time zone (for example 2026-11-01T10:00:00Z)")
    return (moment - _EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of ``ms``, exact (no float of seconds on the way);
    ValueError when it falls outside the years 1 to 9999 a datetime holds."""
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError(f"{ms} ms is outside the years a datetime holds") from None


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

"""Event time as integer UTC milliseconds, and the type of an injectable clock.

Nothing here reads the time: the wall clock is ``afflux.shared.io.clock_source``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], int]
"""A function returning the current time in UTC milliseconds (``clock_source.system_clock``
in production)."""

MS_PER_SECOND = 1_000
MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
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


class BeforeEpoch(ValueError):
    """An RFC 3339 time before 1970: no event time is."""


# The last millisecond of year 9999: a later time has no date in a datetime, and a
# record dated past it written straight to a topic stopped the webhook sender (and with
# it the payouts process) on every restart, building its body's timestamp.
MAX_EVENT_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _no_such_time(text: str) -> str:
    """Why a time in RFC 3339's form names no instant (its form lets these through)."""
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if not 1 <= month <= 12:
        return f"there is no month {month:02d}"
    if year >= 1 and not 1 <= day <= calendar.monthrange(year, month)[1]:
        return f"{year:04d}-{month:02d} has no day {day:02d}"
    if second == 60:
        return "a leap second: times here have none, give 23:59:59.999 or the next second"
    if hour > 23 or minute > 59 or second > 59:
        return "hours run to 23, minutes and seconds to 59"
    return "outside the years 1 to 9999 or the offsets -23:59 to +23:59"


def parse_event_time(value: object) -> int:
    """Accept integer milliseconds or an RFC 3339 string with a zone; return milliseconds."""
    if isinstance(value, bool):
        raise ValueError("event time must be integer milliseconds or RFC 3339 with a zone")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("event time must not be negative")
        if value > MAX_EVENT_TIME_MS:
            raise ValueError(
                f"event time must be at most {MAX_EVENT_TIME_MS} (9999-12-31T23:59:59.999Z)"
            )
        return value
    if isinstance(value, str):
        text = value.strip()
        # fromisoformat takes far more than RFC 3339 (20261204T230000Z, week dates):
        # a time other systems would read differently, or not at all, is refused.
        if _RFC3339.fullmatch(text) is None:
            raise ValueError(
                f"not an RFC 3339 time with a zone: {value!r} (e.g. 2026-11-01T10:00:00Z)"
            )
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            # The form is RFC 3339's: what is left is a second 60 or a day the month lacks.
            raise ValueError(f"no such time: {value!r} ({_no_such_time(text)})") from exc
        ms = to_ms(parsed)
        if ms < 0:
            raise BeforeEpoch(f"{value!r} is before 1970-01-01T00:00:00Z, where event times start")
        return ms
    raise ValueError("event time must be integer milliseconds or RFC 3339 with a zone")

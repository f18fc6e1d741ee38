"""The query and body values the payouts API reads: ``as_of`` times and periods.

Each answers the value, or raises a 422 ``Problem`` naming the field and why.
"""

from __future__ import annotations

from afflux.shared.core.clock import BeforeEpoch, parse_event_time
from afflux.shared.core.periods import BadPeriod, period_bounds
from afflux.shared.io.http.problems import Problem

# 9998-12-31T23:59:59.999Z: the period of any earlier time still ends within what a
# datetime holds (year 9999); later cut-offs mean nothing.
LATEST_MS = 253_370_764_799_999
# 1970-01-01T00:00:00Z: periods start in 1970 (``period_bounds``), so an earlier cut-off
# was answered under a period name (0001-01) that ``period`` refuses.
EARLIEST_MS = 0
_BEFORE_1970 = "before 1970-01-01T00:00:00Z: periods start in 1970"
# The longest time worth reading: RFC 3339 with nanoseconds and an offset is 35 characters.
MAX_TIME_CHARS = 64


def as_of(value: str | None, now: int) -> int:
    """``value`` (epoch ms or an ISO time with a zone) as epoch ms; ``now`` when absent.
    From 1970-01-01T00:00:00Z to 9998-12-31T23:59:59.999Z: the period of any such time
    is one ``period`` takes."""
    if value is None or value == "":
        return now
    if len(value) > MAX_TIME_CHARS:  # 4,300 digits made int() answer with Python's own limit
        raise Problem(422, "as_of", f"not a time: longer than {MAX_TIME_CHARS} characters")
    digits = value[1:] if value.startswith("-") else value
    if digits.isascii() and digits.isdigit() and int(value) < EARLIEST_MS:
        raise Problem(422, "as_of", _BEFORE_1970)  # epoch ms before 1970, not a bad time
    try:
        at = parse_event_time(int(value) if digits.isascii() and digits.isdigit() else value)
    except BeforeEpoch:
        raise Problem(422, "as_of", _BEFORE_1970) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise Problem(422, "as_of", f"not a time: {exc}") from None
    if at < EARLIEST_MS:
        raise Problem(422, "as_of", _BEFORE_1970)
    if at > LATEST_MS:
        raise Problem(422, "as_of", "after 9998-12-31T23:59:59.999Z")
    return at


def period(value: str | None) -> str | None:
    """``value`` when it names a period (``YYYY-MM`` or ``YYYY-Www``); None when absent."""
    if value is None or value == "":
        return None
    try:
        period_bounds(value)
    except BadPeriod as exc:
        raise Problem(422, "period", str(exc)) from None
    return value

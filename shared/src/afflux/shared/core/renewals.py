"""Recurring commissions: whether a subscription's renewal earns its first order's creator.

A renewal pays the creator who won the subscription's first order, at the plan's
``recurring.rate``, for the first ``max_renewals`` renewals or for renewals before
``max_months`` calendar months (UTC) after the first order. The terms are those in force
at the renewal's time.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import MAXYEAR, UTC, datetime, timedelta

from afflux.shared.core.terms import RecurringCommission

NO_RECURRING_TERMS = "no_recurring_terms"
BEYOND_LIMIT = "renewal_beyond_limit"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Past every time a datetime holds (year 9999): a limit that far on is never reached.
NEVER_MS = 2**63


def add_months(at_ms: int, months: int) -> int:
    """``at_ms`` moved ``months`` calendar months on (UTC), the day clamped to the month's
    last: 31 January + 1 month is 28 (or 29) February. ``NEVER_MS`` when the result (or
    ``at_ms`` itself, an event time no schema bounds) is past year 9999, so a record
    dated there is judged, never raised on."""
    try:
        start = datetime.fromtimestamp(at_ms // 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return NEVER_MS
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    if year > MAXYEAR:
        return NEVER_MS
    day = min(start.day, monthrange(year, month)[1])
    moved = start.replace(year=year, month=month, day=day)
    return (moved - _EPOCH) // timedelta(milliseconds=1) + at_ms % 1000


def renewal_refusal(
    recurring: RecurringCommission | None, first_order_at: int, number: int, renewed_at: int
) -> str:
    """Why the renewal earns nothing, or '' when it earns the recurring rate."""
    if recurring is None:
        return NO_RECURRING_TERMS
    if recurring.max_renewals is not None and number > recurring.max_renewals:
        return BEYOND_LIMIT
    if recurring.max_months is not None and renewed_at >= add_months(
        first_order_at, recurring.max_months
    ):
        return BEYOND_LIMIT
    return ""

"""Recurring commissions: whether a subscription's renewal earns its first order's creator.

A renewal pays the creator who won the subscription's first order, at the plan's
``recurring.rate``, for the first ``max_renewals`` renewals or for renewals before
``max_months`` calendar months (UTC) after the first order. The terms are those in force
at the renewal's time.

A renewal written straight to the topic meets none of ``POST /v1/renewals``'s claims, so
the refund stage and the oracle apply the same rules to it (``renewal_claim``,
``first_order_refusal``, ``renewal_order_refusal``): each number of a first order is taken
once, by the first renewal order id its topic key delivers with it; a renewal order is
never renewed; a renewal never reuses its first order's id.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Container, Iterable, Mapping
from datetime import MAXYEAR, UTC, datetime, timedelta

from afflux.shared.core.terms import RecurringCommission

NO_RECURRING_TERMS = "no_recurring_terms"
BEYOND_LIMIT = "renewal_beyond_limit"
BEFORE_FIRST_ORDER = "renewal_before_first_order"
NUMBER_TAKEN = "renewal_number_taken"
FIRST_ORDER_IS_RENEWAL = "first_order_is_renewal"
RENEWAL_ORDER_IS_FIRST_ORDER = "renewal_order_id_is_first_order"
# The renewal numbers kept per first order and campaign: ``max_renewals`` is at most 1,200,
# and a monthly subscription renews 1,200 times in a ``max_months`` limit's 100 years. A
# further number is refused as past the limit, so a stream of fresh numbers cannot grow the
# first order's state without end.
MAX_RENEWAL_NUMBERS = 1_200
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


def renewal_claim(taken: Mapping[int, str], number: int, renewal_order_id: str) -> str:
    """Why the renewal may not have its number of the first order, given the numbers
    ``taken`` so far (number -> the renewal order id that took it), or '' when it may (a
    copy of the renewal that took it included).

    The first renewal of a number its first order's key delivers keeps it: every renewal
    of one first order travels under that order's key, so on one partition, in one order
    on every delivery and replay, and the oracle reads them in that order. Ordering by
    event time instead would take a paid renewal back when an earlier-dated one arrives
    later, and no event moves a conversion to nobody."""
    holder = taken.get(number)
    if holder is not None:
        return "" if holder == renewal_order_id else NUMBER_TAKEN
    return BEYOND_LIMIT if len(taken) >= MAX_RENEWAL_NUMBERS else ""


def first_order_refusal(first_is_renewal: bool) -> str:
    """Why the renewal earns nothing for what its first order is: a renewal order renewed
    would start the limit again."""
    return FIRST_ORDER_IS_RENEWAL if first_is_renewal else ""


def claim_refusals(
    renewals: Iterable[tuple[str, str, int]], orders: Container[str] = frozenset()
) -> dict[str, str]:
    """One campaign's renewals as (first order id, renewal order id, number), each renewal
    order once (its first copy), in topic order: renewal order id -> why its claim refuses
    it (``renewal_claim``, then ``first_order_refusal``; a renewal whose first order is
    any of them is refused, whichever comes first, as the stage refuses it once the
    renewal order's outcome is read back). Absent: the claim stands. ``orders``: the
    campaign's order ids; a renewal naming one as its renewal order is void (an order id
    is its order's), so that order is no renewal order and its own renewals stand."""
    renewals = list(renewals)
    renewal_orders = {rid for _, rid, _ in renewals if rid not in orders}
    numbers: dict[str, dict[int, str]] = {}  # first order -> number -> renewal order
    refused: dict[str, str] = {}
    for order_id, renewal_order_id, number in renewals:
        taken = numbers.setdefault(order_id, {})
        why = renewal_claim(taken, number, renewal_order_id)
        if not why:
            taken[number] = renewal_order_id
            why = first_order_refusal(order_id in renewal_orders)
        if why:
            refused[renewal_order_id] = why
    return refused


def renewal_order_refusal(order_id: str, renewal_order_id: str) -> str:
    """Why the renewal is refused whole (dead-lettered): its renewal order id is its first
    order's, a sale already decided, whose outcome an answer under it would overwrite."""
    if renewal_order_id == order_id:
        return (
            f"{RENEWAL_ORDER_IS_FIRST_ORDER}: renewal_order_id {renewal_order_id!r}"
            " is the first order's id"
        )
    return ""


def renewal_refusal(
    recurring: RecurringCommission | None, first_order_at: int, number: int, renewed_at: int
) -> str:
    """Why the renewal earns nothing, or '' when it earns the recurring rate."""
    if recurring is None:
        return NO_RECURRING_TERMS
    if renewed_at < first_order_at:
        # Nothing renews before it was bought: a renewal dated so is a mistake or a way to
        # pay a creator for an order that never recurred.
        return BEFORE_FIRST_ORDER
    if recurring.max_renewals is not None and number > recurring.max_renewals:
        return BEYOND_LIMIT
    if recurring.max_months is not None and renewed_at >= add_months(
        first_order_at, recurring.max_months
    ):
        return BEYOND_LIMIT
    return ""

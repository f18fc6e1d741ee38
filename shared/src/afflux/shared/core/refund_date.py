"""A refund is never dated before the order it takes back.

The orders service refuses such a refund at its door (a 422 naming ``occurred_at``).
One produced straight to the ``refunds`` topic meets the rule where it meets its
order's outcome: the attribution worker dead-letters it (``REFUND_BEFORE_ORDER``), and
the batch oracle and the what-if decoder leave out the same refunds, so all three ask
this module. Event times alone are compared (the order's outcome carries the order's
event time, a renewal's the renewal's); a refund at its order's very time is taken.
"""

from __future__ import annotations

from afflux.shared.core.clock import from_ms

# The dead letter's reason (and its metric label): the text after it gives both times.
REFUND_BEFORE_ORDER = "refund_before_order"


def refund_before_order(refund_at: int, order_at: int | None) -> bool:
    """Whether a refund at ``refund_at`` precedes its order at ``order_at`` (None: the
    order's outcome is not known yet, so nothing is refused)."""
    return order_at is not None and refund_at < order_at


def refund_date_refusal(refund_at: int, order_at: int | None) -> str:
    """Why a refund at ``refund_at`` is refused against its order at ``order_at`` (''
    when it is not)."""
    if order_at is None or not refund_before_order(refund_at, order_at):
        return ""
    return (
        f"{REFUND_BEFORE_ORDER}: the refund is dated {_iso(refund_at)},"
        f" before its order ({_iso(order_at)})"
    )


def _iso(ms: int) -> str:
    try:
        return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except ValueError:  # outside the years a datetime holds: the number as it came
        return f"{ms} ms"

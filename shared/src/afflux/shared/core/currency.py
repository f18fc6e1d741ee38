"""Money is in one currency: an order's or a renewal's is its campaign's (the terms in
force at its time), a refund's is its order's.

The orders service takes only the campaign's currency at its door. Money written
straight to a topic meets this rule where it is used: the attribution worker
dead-letters it (``CURRENCY_MISMATCH``), and the batch oracle and the what-if decoder
leave out the same events, so all three ask this module rather than each its own
comparison.
"""

from __future__ import annotations

# The dead letter's reason (and its metric label): the text after it says which money.
CURRENCY_MISMATCH = "currency_mismatch"


def other_currency(currency: str, expected: str | None) -> bool:
    """Whether money in ``currency`` is refused where it must be in ``expected``. Not when
    either is unknown: ``expected`` None (no outcome of the refund's order held yet),
    ``currency`` '' (a refund kept from before refunds' currencies were, or a what-if log
    built by hand), which is taken whatever the currency."""
    return bool(currency) and expected is not None and currency != expected


def campaign_currency_refusal(what: str, currency: str, campaign_currency: str | None) -> str:
    """Why an order or a renewal (``what``) in ``currency`` is refused by a campaign whose
    terms in force pay in ``campaign_currency`` ('' when it is not)."""
    if not other_currency(currency, campaign_currency):
        return ""
    return f"{CURRENCY_MISMATCH}: {what} in {currency}, campaign pays in {campaign_currency}"


def refund_currency_refusal(currency: str, order_currency: str | None) -> str:
    """Why a refund in ``currency`` is refused against its order's outcome in
    ``order_currency`` ('' when it is not, or when that outcome is not known yet)."""
    if not other_currency(currency, order_currency):
        return ""
    return f"{CURRENCY_MISMATCH}: refund in {currency}, order in {order_currency}"

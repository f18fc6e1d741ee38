"""An order is its campaign's merchant's: the orders service takes an order only when the
signing merchant runs the campaign. An order written straight to the topic naming another
merchant meets this rule where it is used: the attribution worker dead-letters it
(``MERCHANT_MISMATCH``), and the batch oracle and the what-if decoder leave it out, so
all three ask this module."""

from __future__ import annotations

# The dead letter's reason (and its metric label).
MERCHANT_MISMATCH = "merchant_mismatch"


def merchant_refusal(merchant_id: str, campaign_merchant_id: str | None) -> str:
    """Why an order of ``merchant_id`` is refused by a campaign whose terms in force name
    ``campaign_merchant_id`` ('' when it is not, or when the campaign is unknown)."""
    if campaign_merchant_id is None or merchant_id == campaign_merchant_id:
        return ""
    return (
        f"{MERCHANT_MISMATCH}: order of merchant {merchant_id!r} for a campaign of merchant"
        f" {campaign_merchant_id!r}"
    )

"""A held sale refunded in part while held, then approved or declined in review: its
explanation reads approved (or declined) on the decision's day and in money. It read
"pending until a review decision" after the decision (the held accrual taken back,
"moved", is dated as held) and "refunded 3000 of 8000" in minor units."""

from __future__ import annotations

import pytest

from afflux.shared.core.journal.explain import explain_line
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.review import HELD_UNTIL

pytestmark = pytest.mark.unit

DEC4, DEC7 = 1_796_342_400_000, 1_796_601_600_000
NOW = DEC7 + 3_600_000
HELD = "; held for review (self_referral): pending until approved"
APPROVED = "; approved in review by merchant:m (self_referral)"
NOTE = "; refunded 3000 of 8000 before approval"


def posting(
    seq: int, kind: str, component: str, amount: int, approve_at: int, rule: str, at: int = DEC4
) -> Posting:
    return Posting(
        posting_id=f"l.{seq}", seq=seq, line_id="l", affiliate_id="ana", campaign_id="c",
        period="2026-12", currency="EUR", kind=kind, line_kind="sale", component=component,
        amount_minor=amount, approve_at=approve_at, occurred_at=at, rule=rule,
        terms_version=1, order_id="m4", source_event_ids=("e",),
    )  # fmt: skip


HELD_AND_REDUCED = [
    posting(1, "accrual", "accrual", 800, HELD_UNTIL, "sale: 10% of 8000 (base rate)" + HELD),
    posting(
        2, "refund_reduction", "refund", -300, HELD_UNTIL,
        "reduced before approval: sale: 10% of 8000 (base rate)" + HELD + NOTE,
    ),
]  # fmt: skip


def test_a_held_sale_approved_in_review_reads_approved_in_money() -> None:
    tiered = "sale: 20% of 8000 (tier from net sale 3)" + APPROVED + NOTE
    reduced = "reduced before approval: " + tiered
    postings = [
        *HELD_AND_REDUCED,
        posting(3, "accrual", "accrual", 1600, DEC7, tiered),
        posting(4, "moved", "accrual", -800, HELD_UNTIL, "moved: " + tiered),
        posting(5, "refund_reduction", "refund", -600, DEC7, reduced),
        posting(6, "refund_reduction", "refund", 300, HELD_UNTIL, reduced),
    ]  # fmt: skip

    text = explain_line(postings, NOW)

    assert text.startswith("20 % of 80.00 EUR (tier from net sale 3); approved in review")
    assert "refunded 30.00 EUR of 80.00 EUR before approval" in text
    assert text.endswith("pays 10.00 EUR, approved on 2026-12-07")


def test_a_held_sale_declined_in_review_reads_declined() -> None:
    postings = [
        *HELD_AND_REDUCED,
        posting(
            3, "review_decline", "accrual", -500, HELD_UNTIL,
            "declined in review by merchant:m: fraud", at=DEC7,
        ),
    ]  # fmt: skip

    text = explain_line(postings, NOW)

    assert text.startswith("10 % of 80.00 EUR (base rate); declined in review by merchant:m")
    assert text.endswith("pays 0.00 EUR, declined in review on 2026-12-07")
    assert "pending until" not in text

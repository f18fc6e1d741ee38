"""A line's date in the ledger and statement is its standing accrual's: a milestone bonus
moved to a later sale (an earlier one refunded) was listed at its first sale's date while
its words said it was approved on the later one."""

from __future__ import annotations

import pytest

from afflux.payouts.views import line_views
from afflux.shared.core.journal.records import Posting

pytestmark = pytest.mark.unit

DEC3, DEC6 = 1_796_256_000_000, 1_796_515_200_000


def posting(seq: int, kind: str, amount: int, at: int) -> Posting:
    return Posting(
        posting_id=f"b.{seq}", seq=seq, line_id="b", affiliate_id="ana", campaign_id="c",
        period="2026-12", currency="EUR", kind=kind, line_kind="bonus", component="accrual",
        amount_minor=amount, approve_at=at, occurred_at=at,
        rule="milestone bonus at 3 net sales", terms_version=1, order_id=None,
        source_event_ids=("e",),
    )  # fmt: skip


def test_a_moved_bonus_is_dated_at_the_sale_that_reaches_it_now() -> None:
    postings = [
        posting(1, "bonus", 1500, DEC3),
        posting(2, "moved", -1500, DEC3),  # its first dating, reversed
        posting(3, "bonus", 1500, DEC6),
    ]

    [line] = line_views(postings, DEC6 + 1)

    assert line["occurred_at"] == DEC6
    assert line["amount_minor"] == 1500

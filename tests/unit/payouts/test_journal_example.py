"""The worked example of docs/payouts.md, posting by posting: a late refund that drops
a net sale re-ranks the next sale's tier and reverses a milestone, each as a posting of
its own that names what it corrects; after approval and the period's end, a refund is
a clawback dated at the refund and leaves ranks alone."""

from __future__ import annotations

import pytest

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shoes",
        "merchant_id": "m",
        "currency": "EUR",
        "lock_days": 30,
        "plan": {
            "sale": {"rate": {"percent": "5"}},
            "tiers": [{"from_sales": 3, "rate": {"percent": "10"}}],
            "milestones": [{"at_sales": 3, "bonus_minor": 700}],
        },
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def day(n: int) -> int:
    return NOV_1 + (n - 1) * MS_PER_DAY  # n-th of November (30 days on: December)


def sale(n: int, on: int, amount: int) -> ConversionFact:
    return ConversionFact(
        f"conv-{n}", f"ev-{n}", f"order-{n}", "ana", "sale", None, amount, "EUR", False, day(on), 1
    )


def refund_of_order_1(on: int) -> RefundFact:
    return RefundFact("rev-1", "ev-rev-1", "order-1", 10_000, day(on), "conv-1", "refund")


def three_sales() -> tuple[PeriodState, list[Posting]]:
    state = PeriodState("shoes", "2026-11", "EUR", VERSIONS)
    postings: list[Posting] = []
    for n, on, amount in ((1, 2, 10_000), (2, 3, 20_000), (3, 4, 30_000)):
        postings += state.step(StepInput(conversions=(sale(n, on, amount),))).postings
    return state, postings


def row(p: Posting) -> tuple[str, str | None, int, int, str]:
    return (p.kind, p.order_id, p.amount_minor, p.approve_at, p.rule)


def test_three_sales_accrue_the_third_at_the_tier_and_reach_the_milestone() -> None:
    _, postings = three_sales()
    assert [row(p) for p in postings] == [
        ("accrual", "order-1", 500, day(32), "sale: 5% of 10000 (base rate)"),
        ("accrual", "order-2", 1000, day(33), "sale: 5% of 20000 (base rate)"),
        (
            "accrual",
            "order-3",
            3000,
            day(34),
            "sale: 10% of 30000 (tier from net sale 3)",
        ),
        ("bonus", None, 700, day(34), "milestone bonus at 3 net sales"),
    ]


def test_a_late_refund_before_approval_re_ranks_and_reverses_as_new_postings() -> None:
    state, before = three_sales()
    after = state.step(StepInput(refunds=(refund_of_order_1(6),))).postings
    assert [row(p) for p in after] == [
        (
            "tier_adjustment",
            "order-3",
            -1500,
            day(34),
            "sale: 5% of 30000 (base rate), re-ranked (was 3000)",
        ),
        (
            "bonus_reversal",
            None,
            -700,
            day(34),
            "milestone bonus at 3 net sales (net sales fell below it before the period ended)",
        ),
        (
            "refund_reduction",
            "order-1",
            -500,
            day(32),
            "reduced before approval: sale: 5% of 10000 (base rate); "
            "refunded 10000 of 10000 before approval",
        ),
    ]
    assert after[0].corrects == before[2].posting_id
    assert after[1].corrects == before[3].posting_id
    assert after[2].corrects is None  # a new component of order-1's line
    assert sum(p.amount_minor for p in [*before, *after]) == 2500


def test_a_refund_after_approval_and_the_periods_end_is_a_clawback_that_keeps_ranks() -> None:
    state, _ = three_sales()
    after = state.step(StepInput(refunds=(refund_of_order_1(40),))).postings
    assert [row(p) for p in after] == [
        ("clawback", "order-1", -500, day(40), "clawback: refund of 10000 after approval")
    ]


def test_a_tiered_sales_words_stay_true_when_an_earlier_refund_moves_its_rank() -> None:
    """A fourth sale at the tier becomes the third once the first is refunded: the pay is
    the same, so no posting is written, and the words of the one that paid it (what the
    creator reads) must not name the rank it had: "(this is net sale 4)" went stale."""
    state, _ = three_sales()
    fourth = state.step(StepInput(conversions=(sale(4, 5, 10_000),))).postings
    assert [row(p) for p in fourth] == [
        ("accrual", "order-4", 1000, day(35), "sale: 10% of 10000 (tier from net sale 3)")
    ]

    after = state.step(StepInput(refunds=(refund_of_order_1(6),))).postings

    assert [p for p in after if p.order_id == "order-4"] == []  # its pay did not change
    assert state.lines[fourth[0].line_id].rule == fourth[0].rule

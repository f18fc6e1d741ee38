"""The KPI counters a step keeps, against what its postings and facts say, in any
arrival order: engagement pay is what the engagement lines posted (a cap's re-fill
moved the postings but not the counter: 800 or 500 by arrival order), and refunds count
against revenue only where revenue counted them (a refunded renewal or lead took a
creator's net revenue below zero)."""

from __future__ import annotations

from collections import Counter

import pytest

from afflux.payouts import views
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.engagement import Publication, Snapshot
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOV_1 = 1_793_491_200_000
CONTENT = "instagram:C1"


def versions(cap: str) -> tuple[TermsVersion, ...]:
    plan = {
        "sale": {"rate": {"percent": "10"}},
        "engagement": {"values": {"like_minor": "1"}, "minimum_interactions": 100},
        cap: 1000,
    }
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "shoes",
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 30,
            "plan": plan,
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale(conversion: str, seller: str, at: int, kind: str = "sale") -> ConversionFact:
    return ConversionFact(
        conversion, f"e-{conversion}", f"o-{conversion}", seller, kind, None, 5_000, "EUR",
        False, at, 1,
    )  # fmt: skip


def steps(seller: str) -> list[StepInput]:
    post = StepInput(
        content=(
            Publication(CONTENT, "ana", "shoes", "post", NOV_1 + 9 * MS_PER_DAY, "pub"),
            Snapshot(
                CONTENT, NOV_1 + 9 * MS_PER_DAY + 3_600_000, 1000, 2000, 800, 0, 0, 0, 10_000,
                "s1",
            ),
        )
    )  # fmt: skip
    earlier_sale = StepInput(conversions=(sale("c1", seller, NOV_1 + MS_PER_DAY),))
    return [post, earlier_sale]


@pytest.mark.parametrize(
    ("cap", "seller"),
    [
        ("creator_cap_minor", "ana"),  # her own earlier sale takes her cap first
        ("campaign_budget_minor", "ana"),
        ("campaign_budget_minor", "bob"),  # another creator's sale takes the budget first
    ],
)
@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_engagement_pay_is_what_the_engagement_lines_posted_in_any_arrival_order(
    cap: str, seller: str, order: tuple[int, int]
) -> None:
    state = PeriodState("shoes", "2026-11", "EUR", versions(cap))
    counters: Counter[str] = Counter()
    postings: list[Posting] = []
    for n in order:
        result = state.step(steps(seller)[n])
        counters.update(result.kpis)
        postings += result.postings

    posted = sum(p.amount_minor for p in postings if p.line_kind == "engagement")
    assert posted == 500  # the cap or budget's 1000 less the earlier sale's 500
    assert counters["engagement_pay|ana"] == posted


def test_a_refunded_renewal_or_lead_takes_nothing_from_revenue() -> None:
    state = PeriodState("shoes", "2026-11", "EUR", versions("creator_cap_minor"))
    counters: Counter[str] = Counter()
    batch = StepInput(
        conversions=(
            sale("c1", "ana", NOV_1 + MS_PER_DAY),
            sale("c2", "ana", NOV_1 + 2 * MS_PER_DAY, kind="lead"),
        ),
        refunds=(RefundFact("r2", "e-r2", "o-c2", 1_999, NOV_1 + 3 * MS_PER_DAY, "c2"),),
    )
    counters.update(state.step(batch).kpis)

    assert counters["revenue|ana"] == 5_000
    assert counters["refunds|ana"] == 0


@pytest.mark.parametrize(
    ("figures", "field", "expected"),
    [
        ({"conversions": 1, "unique_clicks": 128, "clicks": 128}, "conversion_rate", 0.007813),
        ({"conversions": 128, "new_customers": 1}, "new_customer_share", 0.007813),
        ({"revenue": 129, "commission": 128}, "roi", 0.007813),
    ],
)
def test_ratios_are_rounded_half_up_as_documented(
    figures: dict[str, int], field: str, expected: float
) -> None:
    """1 in 128 (0.0078125) read 0.007812: rounded to the nearest even."""
    assert views.kpi_row(views.Counts(currency="EUR", **figures))[field] == expected

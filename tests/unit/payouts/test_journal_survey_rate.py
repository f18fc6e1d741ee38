"""Survey-attributed sales under terms with ``survey.mode: reduced_rate`` are paid that
percent of what they would earn otherwise; the journal nets to the batch reference in any
arrival order, and other rules (and ``attribute`` mode) are paid in full."""

from __future__ import annotations

import random

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, Facts, arrival
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit
SEEDS = range(20)


def versions(mode: str = "reduced_rate") -> tuple[TermsVersion, ...]:
    survey: dict[str, object] = {"mode": mode}
    if mode == "reduced_rate":
        survey["reduced_rate_percent"] = "40"
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "survey": survey,
            "plan": {
                "sale": {"rate": {"percent": "10"}},
                "tiers": [{"from_sales": 3, "rate": {"percent": "12"}}],
                "creator_cap_minor": 9000,
            },
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale(i: int, amount: int, rule: str, creator: str = "creator-1") -> ConversionFact:
    at = START + i * MS_PER_DAY // 2
    return ConversionFact(
        f"conv-{i}",
        f"ev-{i}",
        f"order-{i}",
        creator,
        "sale",
        None,
        amount,
        "EUR",
        False,
        at,
        1,
        attributed_by=rule,
    )


def journal(facts: Facts, rng: random.Random, mode: str = "reduced_rate") -> list[Posting]:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(mode))
    postings: list[Posting] = []
    for batch in arrival(facts, rng):
        postings += state.step(batch).postings
    return postings


def test_a_survey_sale_is_paid_the_reduced_share_of_its_gross() -> None:
    facts = Facts(conversions=[sale(0, 10_000, "survey"), sale(1, 10_000, "cookie")])
    postings = journal(facts, random.Random(0))
    by_line = {p.line_id: p for p in postings if p.kind == "accrual"}
    amounts = sorted(p.amount_minor for p in by_line.values())
    assert amounts == [400, 1_000]  # 40 % of 10 % of 10,000, and the cookie sale in full
    [survey] = [p for p in by_line.values() if p.amount_minor == 400]
    assert "survey-attributed: 40% of 1000" in survey.rule


def test_attribute_mode_pays_a_survey_sale_in_full() -> None:
    facts = Facts(conversions=[sale(0, 10_000, "survey")])
    [accrual] = [p for p in journal(facts, random.Random(0), "attribute") if p.kind == "accrual"]
    assert accrual.amount_minor == 1_000


@pytest.mark.parametrize("seed", SEEDS)
def test_survey_rates_net_to_the_reference_in_any_order(seed: int) -> None:
    rng = random.Random(seed)
    facts = Facts()
    for i in range(rng.randint(5, 20)):
        rule = rng.choice(["survey", "survey", "cookie", "livestream", "coupon"])
        amount = rng.randint(1, 20_000)
        facts.conversions.append(sale(i, amount, rule, f"creator-{rng.randint(1, 2)}"))
        if rng.random() < 0.4:
            part = rng.randint(1, amount)
            at = START + i * MS_PER_DAY // 2 + rng.randint(0, 10 * MS_PER_DAY)
            facts.refunds.append(
                RefundFact(f"rev-{i}", f"ev-rev-{i}", f"order-{i}", part, at, f"conv-{i}")
            )
    lines = reference_lines(CAMPAIGN, PERIOD, facts.conversions, facts.refunds, {}, [], versions())
    want = target_amounts(lines)
    for order in range(2):
        got = posted_amounts(journal(facts, random.Random(seed * 1000 + order)))
        assert got == want, f"arrival {order}"

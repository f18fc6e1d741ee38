"""Agency overrides in the journal: each override line mirrors its creator line (accruals,
re-ranks, reductions, clawbacks, cap cuts) so it nets to the agency's share of what the
line pays, is capped per agency and period, and, fed in random orders and batch sizes
with reloads, nets to the batch reference (afflux.oracle.commission) line by line and
per approval date."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import (
    CAMPAIGN,
    PERIOD,
    START,
    Facts,
    journal_of,
    plan_versions,
    random_facts,
)
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit
SEEDS = range(30)


def with_overrides(
    versions: tuple[TermsVersion, ...], levels: int, cap: int | None
) -> tuple[TermsVersion, ...]:
    settings = {
        "levels": levels,
        "cap_minor": cap,
        "agencies": {
            "creator-1": {"agency_id": "north", "share_percent": "10"},
            "creator-2": {"agency_id": "north", "share_percent": "12.5"},
            "north": {"agency_id": "group", "share_percent": "3.3333"},
            "group": {"agency_id": "holding", "share_percent": "1"},
        },
    }
    out = []
    for v in versions:
        terms = v.terms.model_validate({**v.terms.model_dump(), "overrides": settings})
        out.append(v.model_copy(update={"terms": terms}))
    return tuple(out)


def reference(facts: Facts, versions: tuple[TermsVersion, ...]) -> dict[tuple[str, int], int]:
    lines = reference_lines(
        CAMPAIGN,
        PERIOD,
        facts.conversions,
        facts.refunds,
        dict(facts.confirmations),
        facts.tallies(),
        versions,
    )
    return target_amounts(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_overrides_net_to_the_reference_whatever_the_arrival_order(seed: int) -> None:
    versions = with_overrides(plan_versions(), levels=1 + seed % 3, cap=[None, 300, 2000][seed % 3])
    facts = random_facts(random.Random(seed))
    want = reference(facts, versions)
    for order in range(2):
        rng = random.Random(seed * 1000 + order)
        assert posted_amounts(journal_of(facts, versions, rng, 0.25)) == want, f"arrival {order}"


def test_the_workload_reaches_every_override_posting() -> None:
    """The seeds above would prove little if overrides were never corrected or cut."""
    kinds: set[str] = set()
    for seed in SEEDS:
        versions = with_overrides(plan_versions(), levels=3, cap=300)
        facts = random_facts(random.Random(seed))
        kinds |= {
            p.kind
            for p in journal_of(facts, versions, random.Random(seed), 0.0)
            if p.line_kind == "override"
        }
    assert {
        "override",
        "override_correction",
        "override_reduction",
        "override_clawback",
        "cap_cut",
    } <= kinds


def sale(conversion: str, creator: str, amount: int, at: int) -> ConversionFact:
    return ConversionFact(
        conversion, f"ev-{conversion}", f"o-{conversion}", creator, "sale", None, amount, "EUR",
        False, at, 1,
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    levels: int
    cap: int | None
    refund: int  # refunded before approval, of 10000
    paid: dict[str, int]  # affiliate -> what their postings sum to


CASES = [
    # 8 % of 10000 = 800 to the creator; the agency 10 % of it on top.
    Case("one level", 1, None, 0, {"creator-1": 800, "north": 80}),
    # Two levels: the agency's agency earns its own share of the creator's 800 (3.3333 %
    # of it is 26.66664, rounded down: never more than the share).
    Case("two levels", 2, None, 0, {"creator-1": 800, "north": 80, "group": 26}),
    # Three levels: 1 % of 800.
    Case("three levels", 3, None, 0, {"creator-1": 800, "north": 80, "group": 26, "holding": 8}),
    # A refund of a quarter before approval: every override follows the creator line (600;
    # 3.3333 % of it is 19.9998, so 19).
    Case("refund mirrored", 2, None, 2500, {"creator-1": 600, "north": 60, "group": 19}),
    # The override cap cuts the agency, never the creator.
    Case("override cap", 1, 50, 0, {"creator-1": 800, "north": 50}),
]


def simple_versions(levels: int, cap: int | None) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "plan": {"sale": {"rate": {"percent": "8"}}},
        }
    )
    return with_overrides(
        (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),), levels, cap
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_override_is_the_agency_share_of_what_the_creator_line_pays(case: Case) -> None:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions(case.levels, case.cap))
    postings = list(
        state.step(StepInput(conversions=(sale("c1", "creator-1", 10000, START),))).postings
    )
    if case.refund:
        refund = RefundFact("r1", "ev-r1", "o-c1", case.refund, START + MS_PER_DAY, "c1")
        postings += state.step(StepInput(refunds=(refund,))).postings
    paid: dict[str, int] = {}
    for p in postings:
        paid[p.affiliate_id] = paid.get(p.affiliate_id, 0) + p.amount_minor
    assert paid == case.paid


def test_override_postings_say_whose_line_they_follow() -> None:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions(1, None))
    result = state.step(StepInput(conversions=(sale("c1", "creator-1", 10000, START),)))
    override = next(p for p in result.postings if p.affiliate_id == "north")
    assert override.kind == "override"
    assert override.rule.startswith("override: 10% of creator-1's sale line (agency level 1)")
    assert result.kpis["override_on|creator-1|north"] == 80

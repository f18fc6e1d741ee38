"""An agency is never paid more than its share of its creators' pay, to the minor unit:
over any number of lines of a few minor units, each agency's overrides on a creator sum
to at most its percent of what the creator's lines net, the levels together to at most
the sum of their percents, refunds and clawbacks of the override lines take back at
least their share (never leaving an override above its share, nor below zero), in any
arrival order, and the journal and the batch reference (afflux.oracle.commission)
agree line by line."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, Facts, arrival
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

LOCK_DAYS = 5


@dataclass(frozen=True)
class Chain:
    name: str
    levels: int
    agencies: dict[str, tuple[str, str]]  # member -> (agency, share percent)


CHAINS = [
    # A 1-unit line at 50 % is half a unit: half up paid each level a whole one.
    Chain("two levels of 50 %", 2, {"ana": ("north", "50"), "north": ("group", "50")}),
    Chain(
        "three levels 50/30/20",
        3,
        {"ana": ("north", "50"), "north": ("group", "30"), "group": ("holding", "20")},
    ),
    Chain(
        "three levels, fractional",
        3,
        {"ana": ("north", "33.3333"), "north": ("group", "12.5"), "group": ("holding", "0.5")},
    ),
    Chain("one level of 15 %", 1, {"ana": ("north", "15")}),
]


def versions(chain: Chain) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": LOCK_DAYS,
            "plan": {"sale": {"rate": {"percent": "8"}}},
            "overrides": {
                "levels": chain.levels,
                "agencies": {
                    m: {"agency_id": a, "share_percent": s} for m, (a, s) in chain.agencies.items()
                },
            },
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale(i: int, amount: int, at: int) -> ConversionFact:
    return ConversionFact(
        f"c{i}", f"ev-c{i}", f"o{i}", "ana", "sale", None, amount, "EUR", False, at, 1
    )  # fmt: skip


def tiny_facts(rng: random.Random, refunds: bool) -> Facts:
    """Many sales of a few minor units of commission (8 % of 13 to 99: 1 to 8), some
    refunded in part before approval, some after (a clawback)."""
    facts = Facts()
    for i in range(60):
        at = START + rng.randint(0, 20 * MS_PER_DAY)
        amount = rng.randint(13, 99)
        facts.conversions.append(sale(i, amount, at))
        if refunds and rng.random() < 0.4:
            later = rng.choice([MS_PER_DAY, (LOCK_DAYS + 1) * MS_PER_DAY])
            part = rng.randint(1, amount)
            facts.refunds.append(
                RefundFact(f"r{i}", f"ev-r{i}", f"o{i}", part, at + later, f"c{i}")
            )
    return facts


def shares(chain: Chain) -> dict[str, Fraction]:
    """Agency -> its share of ana's pay, for the levels that earn."""
    out: dict[str, Fraction] = {}
    member = "ana"
    for _ in range(chain.levels):
        agency, percent = chain.agencies[member]
        out[agency] = Fraction(percent) / 100
        member = agency
    return out


def check_bounded(postings: list[Posting], chain: Chain) -> None:
    by_line: dict[str, int] = defaultdict(int)
    for p in postings:
        by_line[p.line_id] += p.amount_minor
    lines = {p.line_id: p for p in postings}
    creator = sum(n for i, n in by_line.items() if lines[i].line_kind != "override")
    per_agency: dict[str, int] = defaultdict(int)
    for i, n in by_line.items():
        if lines[i].line_kind == "override":
            assert n >= 0, f"override line {i} nets {n}: more taken back than it paid"
            per_agency[lines[i].affiliate_id] += n
    share = shares(chain)
    for agency, total in per_agency.items():
        assert total <= share[agency] * creator, (agency, total, share[agency] * creator)
    assert sum(per_agency.values()) <= sum(share.values()) * creator


def journal(facts: Facts, chain: Chain, rng: random.Random, check: bool) -> list[Posting]:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(chain))
    postings: list[Posting] = []
    for batch in arrival(facts, rng):
        postings += state.step(batch).postings
        if check:  # after every step, not only at the end
            check_bounded(postings, chain)
    return postings


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.name)
def test_one_unit_lines_pay_the_agencies_no_more_than_their_share(chain: Chain) -> None:
    # 8 % of 13 = 1.04: twenty sales paying the creator 1 each.
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(chain))
    result = state.step(StepInput(conversions=tuple(sale(i, 13, START) for i in range(20))))
    paid: dict[str, int] = defaultdict(int)
    for p in result.postings:
        paid[p.affiliate_id] += p.amount_minor
    assert paid["ana"] == 20
    for agency, share in shares(chain).items():
        assert paid[agency] <= share * 20, (agency, paid[agency])
    assert sum(paid[a] for a in shares(chain)) <= sum(shares(chain).values()) * 20


@pytest.mark.parametrize("refunds", [False, True], ids=["sales", "refunds and clawbacks"])
@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.name)
@pytest.mark.parametrize("seed", range(4))
def test_tiny_lines_stay_within_the_shares_in_any_arrival_order(
    seed: int, chain: Chain, refunds: bool
) -> None:
    facts = tiny_facts(random.Random(seed), refunds)
    want = target_amounts(
        reference_lines(CAMPAIGN, PERIOD, facts.conversions, facts.refunds, {}, [], versions(chain))
    )
    for order in range(2):
        postings = journal(facts, chain, random.Random(seed * 100 + order), check=True)
        assert posted_amounts(postings) == want, f"arrival {order}"


@dataclass(frozen=True)
class LineCase:
    name: str
    amount: int  # the order; the creator earns 8 % of it
    refund: int  # refunded after approval (a clawback), 0 for none
    north: int  # what north's override line nets, at 50 %
    group: int  # and group's, at 30 %


LINE_CASES = [
    # 8 % of 13 = 1: 0.5 and 0.3 of a unit, neither paid.
    LineCase("one unit", 13, 0, 0, 0),
    # 8 % of 38 = 3: 1.5 -> 1, 0.9 -> 0.
    LineCase("three units", 38, 0, 1, 0),
    # 8 % of 88 = 7: 3.5 -> 3, 2.1 -> 2.
    LineCase("seven units", 88, 0, 3, 2),
    # 7, then 44 of 88 clawed back (3.5 -> 4 taken back, 3 kept): 1.5 and 0.9 -> 1 and 0,
    # so north gives back 2 of its 3 and group both of its 2.
    LineCase("seven, half clawed back", 88, 44, 1, 0),
    # 7, then 11 of 88 clawed back (0.875 -> 1, 6 kept): 3 and 1.8 -> 3 and 1.
    LineCase("seven, an eighth clawed back", 88, 11, 3, 1),
    # 7, then all of it clawed back: nothing kept, never less than nothing.
    LineCase("seven, all clawed back", 88, 88, 0, 0),
]


@pytest.mark.parametrize("case", LINE_CASES, ids=lambda c: c.name)
def test_each_override_line_is_its_share_rounded_down(case: LineCase) -> None:
    chain = Chain("50/30", 2, {"ana": ("north", "50"), "north": ("group", "30")})
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(chain))
    postings = list(state.step(StepInput(conversions=(sale(1, case.amount, START),))).postings)
    if case.refund:
        at = START + (LOCK_DAYS + 1) * MS_PER_DAY
        refund = RefundFact("r1", "ev-r1", "o1", case.refund, at, "c1")
        postings += state.step(StepInput(refunds=(refund,))).postings
    paid: dict[str, int] = defaultdict(int)
    for p in postings:
        paid[p.affiliate_id] += p.amount_minor
    assert (paid["north"], paid["group"]) == (case.north, case.group)
    check_bounded(postings, chain)

"""A conversion held for review counts for its creator's tiers, milestones and base fee
only once approved: while it waits, the bonus, the tier uplift and the base fee it would
bring are not posted at all (so nothing of them is approved or paid before a decision);
an approval brings them in (a ``tier_adjustment`` on the sales after it, a ``bonus``
dated when the milestone's n-th net sale counted, the base fee from the approval), a
decline never does. The agency's override follows each creator line. In every arrival
order, with reloads, the journal nets to the batch reference line by line and per
approval date."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from journal_arrivals import every_arrival, run

from afflux.oracle.commission import posted_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.review import HELD_UNTIL
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

HOUR = 3_600_000
CREATOR, AGENCY = "cr", "ag"
BONUS = derived_id("line", "bonus", CAMPAIGN, PERIOD, CREATOR, "3")
BASE_FEE = derived_id("line", "base_fee", CAMPAIGN, PERIOD, CREATOR)


def versions(lock_days: int) -> tuple[TermsVersion, ...]:
    """1 % per sale, 50 % from net sale 3, a 50000 bonus at 3 net sales, a 7000 base fee;
    the creator's agency earns 20 % on top; self-referrals are held."""
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "plan": {
                "sale": {"rate": {"percent": "1"}},
                "tiers": [{"from_sales": 3, "rate": {"percent": "50"}}],
                "milestones": [{"at_sales": 3, "bonus_minor": 50_000}],
                "base_fee_minor": 7_000,
            },
            "overrides": {"agencies": {CREATOR: {"agency_id": AGENCY, "share_percent": "20"}}},
            "review": {"hold_on": ["self_referral"]},
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale(name: str, hour: int, amount: int = 100, held: bool = False) -> ConversionFact:
    return ConversionFact(
        name, f"ev-{name}", f"o-{name}", CREATOR, "sale", None, amount, "EUR", False,
        START + hour * HOUR, 1, risk_signals=("self_referral",) if held else (),
    )  # fmt: skip


def decide(name: str, decision: str, hour: int) -> ReviewFact:
    return ReviewFact(name, f"d-{name}", decision, "own order", "merchant:m", START + hour * HOUR)


def line(name: str) -> str:
    return derived_id("line", name)


def share(amount: int) -> int:
    """The agency's 20 %, rounded down."""
    return (2 * amount) // 10


def override(line_id: str) -> str:
    return derived_id("line", "override", line_id, "1")


def approved(postings: list[Posting], affiliate: str, as_of: int) -> int:
    return sum(
        p.amount_minor for p in postings if p.affiliate_id == affiliate and p.approve_at <= as_of
    )


def of_line(amounts: dict[tuple[str, int], int], line_id: str) -> dict[int, int]:
    return {at: v for (lid, at), v in amounts.items() if lid == line_id}


@dataclass(frozen=True)
class MilestoneCase:
    name: str
    sales: list[ConversionFact]
    decisions: list[ReviewFact]
    bonus: dict[int, int]  # approve_at -> amount of the bonus line in the end
    base_fee: dict[int, int]


H, D = 10, 30  # the held sales' hour; the decisions' hour (after every sale)
THREE_HELD = [sale("s1", 1, held=True), sale("s2", 2, held=True), sale("s3", 3, held=True)]
BEFORE = [sale("s1", 1, held=True), sale("s2", 2), sale("s3", 3)]  # held before the threshold
AT = [sale("s1", 1), sale("s2", 2), sale("s3", 3, held=True)]  # the held sale is the 3rd
MILESTONE_CASES = [
    # The finding: three self-referrals reach the milestone. Approved: bonus and base fee
    # from the approval on. Declined: neither, ever.
    MilestoneCase(
        "three held, approved",
        THREE_HELD,
        [decide(f"s{n}", "approve", D) for n in (1, 2, 3)],
        {START + D * HOUR: 50_000},
        {START + D * HOUR: 7_000},
    ),
    MilestoneCase(
        "three held, declined",
        THREE_HELD,
        [decide(f"s{n}", "decline", D) for n in (1, 2, 3)],
        {},
        {},
    ),
    MilestoneCase(
        "held before the threshold, approved",
        BEFORE,
        [decide("s1", "approve", D)],
        {START + D * HOUR: 50_000},
        {START + 2 * HOUR: 7_000},  # the clean sale's activity came first
    ),
    MilestoneCase(
        "held before the threshold, declined",
        BEFORE,
        [decide("s1", "decline", D)],
        {},
        {START + 2 * HOUR: 7_000},
    ),
    MilestoneCase(
        "held at the threshold, approved",
        AT,
        [decide("s3", "approve", D)],
        {START + D * HOUR: 50_000},
        {START + 1 * HOUR: 7_000},
    ),
    MilestoneCase(
        "held at the threshold, declined",
        AT,
        [decide("s3", "decline", D)],
        {},
        {START + HOUR: 7_000},
    ),
    # Approved before the 3rd sale: the milestone is reached by that sale, as usual.
    MilestoneCase(
        "approved before the threshold sale",
        BEFORE,
        [decide("s1", "approve", 2)],
        {START + 3 * HOUR: 50_000},
        {START + 2 * HOUR: 7_000},
    ),
    # Three clean sales reached it first: approving an earlier held sale never dates the
    # bonus later (nothing approved is taken back).
    MilestoneCase(
        "reached by clean sales first",
        [*BEFORE, sale("s4", 4)],
        [decide("s1", "approve", D)],
        {START + 4 * HOUR: 50_000},
        {START + 2 * HOUR: 7_000},
    ),
]


@pytest.mark.parametrize("case", MILESTONE_CASES, ids=lambda c: c.name)
def test_a_milestone_reached_through_held_sales_waits_for_their_approval(
    case: MilestoneCase,
) -> None:
    vs = versions(lock_days=0)
    # Before any decision: no bonus unless clean sales reach it, and the base fee only
    # from clean activity.
    waiting = run(list(case.sales), vs, [False] * len(case.sales))
    clean = [s.occurred_at for s in case.sales if not s.risk_signals]
    bonus = posted_amounts(p for p in waiting if p.line_id == BONUS)
    assert bonus == ({(BONUS, clean[2]): 50_000} if len(clean) >= 3 else {})
    fee = posted_amounts(p for p in waiting if p.line_id == BASE_FEE)
    assert fee == ({(BASE_FEE, min(clean)): 7_000} if clean else {})
    # All that is approved before the decision: the clean sales, the base fee they bring
    # and a bonus only they reach (the held lines wait); the agency 20 % of each line.
    by_line: dict[tuple[str, str], int] = {}
    for p in waiting:
        if p.approve_at != HELD_UNTIL:
            key = (p.affiliate_id, p.line_id)
            by_line[key] = by_line.get(key, 0) + p.amount_minor
    creator = {lid: v for (a, lid), v in by_line.items() if a == CREATOR and v}
    clean_lines = {line(s.conversion_id) for s in case.sales if not s.risk_signals}
    assert set(creator) == clean_lines | {lid for lid, _ in [*bonus, *fee]}
    agency = {lid: v for (a, lid), v in by_line.items() if a == AGENCY and v}
    assert agency == {override(lid): share(v) for lid, v in creator.items() if share(v)}
    # Decided, in every arrival order, as the reference says.
    got = every_arrival([*case.sales, *case.decisions], vs)
    assert of_line(got, BONUS) == case.bonus
    assert of_line(got, BASE_FEE) == case.base_fee
    # The agency's override follows the bonus: 20 % of it, dated with it.
    assert of_line(got, override(BONUS)) == {at: share(v) for at, v in case.bonus.items()}


@dataclass(frozen=True)
class TierCase:
    name: str
    sales: list[ConversionFact]
    decisions: list[ReviewFact]
    pays: dict[str, int]  # sale -> what its line nets to in the end
    waiting: dict[str, int]  # sale -> what its line nets to before any decision


UPLIFTED = [sale("s1", 1, held=True), sale("s2", 2, held=True), sale("big", 3, 100_000)]
HELD_BIG = [sale("s1", 1), sale("s2", 2), sale("big", 3, 100_000, held=True)]
TIER_CASES = [
    # The finding: two held self-referrals make a clean sale "net sale 3" (50 %).
    TierCase(
        "held before, both approved",
        UPLIFTED,
        [decide("s1", "approve", D), decide("s2", "approve", D)],
        {"s1": 1, "s2": 1, "big": 50_000},
        {"s1": 1, "s2": 1, "big": 1_000},
    ),
    TierCase(
        "held before, both declined",
        UPLIFTED,
        [decide("s1", "decline", D), decide("s2", "decline", D)],
        {"big": 1_000},
        {"s1": 1, "s2": 1, "big": 1_000},
    ),
    TierCase(
        "held before, one approved and one declined",
        UPLIFTED,
        [decide("s1", "approve", D), decide("s2", "decline", D)],
        {"s1": 1, "big": 1_000},
        {"s1": 1, "s2": 1, "big": 1_000},
    ),
    # The held sale is the 3rd itself: its own rate waits for the approval too.
    TierCase(
        "held at the threshold, approved",
        HELD_BIG,
        [decide("big", "approve", D)],
        {"s1": 1, "s2": 1, "big": 50_000},
        {"s1": 1, "s2": 1, "big": 1_000},
    ),
    TierCase(
        "held at the threshold, declined",
        HELD_BIG,
        [decide("big", "decline", D)],
        {"s1": 1, "s2": 1},
        {"s1": 1, "s2": 1, "big": 1_000},
    ),
]


@pytest.mark.parametrize("case", TIER_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("lock_days", [0, 5])
def test_a_tier_reached_through_held_sales_waits_for_their_approval(
    case: TierCase, lock_days: int
) -> None:
    vs = versions(lock_days)
    waiting = run(list(case.sales), vs, [False] * len(case.sales))
    nets = posted_amounts(waiting)
    assert {
        s.conversion_id: sum(of_line(nets, line(s.conversion_id)).values()) for s in case.sales
    } == (case.waiting)
    # Nothing is paid at the tier rate before the decision.
    assert all(p.kind != "tier_adjustment" for p in waiting)
    got = every_arrival([*case.sales, *case.decisions], vs)
    pays = {s.conversion_id: sum(of_line(got, line(s.conversion_id)).values()) for s in case.sales}
    assert {k: v for k, v in pays.items() if v} == case.pays
    overrides = {
        s.conversion_id: sum(of_line(got, override(line(s.conversion_id))).values())
        for s in case.sales
    }
    # 20 % of each line, rounded down (0.2 of 1 is 0).
    assert {k: v for k, v in overrides.items() if v} == {
        k: share(v) for k, v in case.pays.items() if share(v)
    }


def test_an_approval_uplifts_the_sale_after_it_with_a_tier_adjustment() -> None:
    vs = versions(lock_days=0)
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", vs)
    state.step(StepInput(conversions=tuple(UPLIFTED)))
    result = state.step(StepInput(reviews=(decide("s1", "approve", D), decide("s2", "approve", D))))
    [uplift] = [p for p in result.postings if p.kind == "tier_adjustment"]
    assert (uplift.line_id, uplift.amount_minor) == (line("big"), 49_000)
    assert "net sale 3" in uplift.rule
    [follows] = [p for p in result.postings if p.line_id == override(line("big"))]
    assert (follows.kind, follows.amount_minor) == ("override_correction", 9_800)

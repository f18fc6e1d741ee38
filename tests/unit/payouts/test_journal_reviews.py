"""Conversions held for review in the journal: a held conversion stays pending and is no
net sale, an approval dates it at the later of its lock's end and the decision and makes
it one (re-ranking the sales after it), a decline reverses it with the reason; fed in
random orders and batch sizes with reloads (random signals, bursts, decisions), the
journal nets to the batch reference (afflux.oracle.commission) line by line and per
approval date."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace

import pytest

from afflux.oracle.commission import (
    posted_amounts,
    reference_from_events,
    reference_lines,
    target_amounts,
)
from afflux.oracle.ledger_scenarios import (
    CAMPAIGN,
    PERIOD,
    START,
    Facts,
    arrival,
    plan_versions,
    postings_of,
    random_facts,
)
from afflux.payouts.views import line_views
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.journal.review_lines import ReviewFact, review_contribution
from afflux.shared.core.review import HELD_UNTIL
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ConversionAttributed, ConversionReviewed

pytestmark = pytest.mark.unit
SEEDS = range(30)
REVIEW = {
    "hold_on": ["self_referral", "burst"],
    "thresholds": {"burst_per_hour": 2},
}


def with_review(versions: tuple[TermsVersion, ...]) -> tuple[TermsVersion, ...]:
    return tuple(
        v.model_copy(
            update={"terms": v.terms.model_validate({**v.terms.model_dump(), "review": REVIEW})}
        )
        for v in versions
    )


def reviewed_facts(rng: random.Random) -> tuple[Facts, list[ReviewFact]]:
    """Random facts whose conversions carry signals (some holding), some close enough in
    time for bursts, and decisions on some of them (a few twice: the first stands)."""
    facts = random_facts(rng)
    for i, c in enumerate(facts.conversions):
        signals = rng.choice([(), (), ("fast_conversion",), ("self_referral",)])
        at = c.occurred_at
        if rng.random() < 0.3 and i:  # close to another conversion: bursts
            at = facts.conversions[rng.randrange(i)].occurred_at + rng.randint(0, 1_800_000)
        facts.conversions[i] = replace(c, risk_signals=signals, occurred_at=at)
    decisions = []
    for c in facts.conversions:
        for n in range(rng.choice([0, 1, 1, 2])):
            decisions.append(
                ReviewFact(
                    c.conversion_id,
                    f"rev-{c.conversion_id}-{n}",
                    rng.choice(["approve", "decline"]),
                    "looked at it",
                    "admin",
                    c.occurred_at + rng.randint(0, 40 * MS_PER_DAY),
                )
            )
    return facts, decisions


def journal(
    facts: Facts,
    decisions: list[ReviewFact],
    versions: tuple[TermsVersion, ...],
    rng: random.Random,
) -> list[Posting]:
    batches = arrival(facts, rng)
    # Decisions of one conversion keep their order (one partition of the reviews topic).
    for d in decisions:
        at = rng.randrange(len(batches) + 1)
        later = [
            i
            for i, b in enumerate(batches)
            for r in b.reviews
            if r.conversion_id == d.conversion_id
        ]
        at = max([at, *(i + 1 for i in later)])
        if at == len(batches):
            batches.append(StepInput(reviews=(d,)))
        else:
            batches[at] = replace(batches[at], reviews=(*batches[at].reviews, d))
    return postings_of(batches, versions, rng, 0.25)


def reference(
    facts: Facts, decisions: list[ReviewFact], versions: tuple[TermsVersion, ...]
) -> dict[tuple[str, int], int]:
    first: dict[str, tuple[str, int]] = {}
    for d in decisions:
        first.setdefault(d.conversion_id, (d.decision, d.occurred_at))
    lines = reference_lines(
        CAMPAIGN,
        PERIOD,
        facts.conversions,
        facts.refunds,
        dict(facts.confirmations),
        facts.tallies(),
        versions,
        reviews=first,
    )
    return target_amounts(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_holds_and_decisions_net_to_the_reference_whatever_the_arrival_order(seed: int) -> None:
    versions = with_review(plan_versions())
    facts, decisions = reviewed_facts(random.Random(seed))
    want = reference(facts, decisions, versions)
    for order in range(2):
        rng = random.Random(seed * 1000 + order)
        assert posted_amounts(journal(facts, decisions, versions, rng)) == want, f"arrival {order}"


def test_the_workload_holds_approves_and_declines() -> None:
    kinds: set[str] = set()
    held = False
    for seed in SEEDS:
        facts, decisions = reviewed_facts(random.Random(seed))
        for p in journal(facts, decisions, with_review(plan_versions()), random.Random(seed)):
            kinds.add(p.kind)
            held |= p.approve_at == HELD_UNTIL
    assert held
    assert {"moved", "review_decline"} <= kinds


def simple_versions() -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "plan": {
                "sale": {"rate": {"percent": "5"}},
                "tiers": [{"from_sales": 2, "rate": {"percent": "10"}}],
            },
            "review": REVIEW,
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale(conversion: str, at: int, signals: tuple[str, ...] = ()) -> ConversionFact:
    return ConversionFact(
        conversion, f"ev-{conversion}", f"o-{conversion}", "ana", "sale", None, 10_000, "EUR",
        False, at, 1, risk_signals=signals,
    )  # fmt: skip


LOCK_END = START + 5 * MS_PER_DAY


@dataclass(frozen=True)
class Case:
    name: str
    decision: str | None
    decided_at: int
    approve_at: int  # where the held sale's pay ends up dated
    kinds: list[str]


CASES = [
    # No decision: pending for good (never approved at its lock).
    Case("pending", None, 0, HELD_UNTIL, ["accrual"]),
    # Approved before its lock ends: approved at the lock's end, as usual.
    Case(
        "approved early", "approve", START + MS_PER_DAY, LOCK_END, ["accrual", "accrual", "moved"]
    ),
    # Approved after: approved from the decision on.
    Case(
        "approved late",
        "approve",
        LOCK_END + 7,
        LOCK_END + 7,
        ["accrual", "accrual", "moved"],
    ),
    # Declined: the accrual reversed, nothing left to approve.
    Case("declined", "decline", START + MS_PER_DAY, 0, ["accrual", "review_decline"]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_held_sale_waits_for_its_decision(case: Case) -> None:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
    result = state.step(StepInput(conversions=(sale("c1", START, ("self_referral",)),)))
    postings = list(result.postings)
    assert [(p.amount_minor, p.approve_at) for p in postings] == [(500, HELD_UNTIL)]
    assert "held for review (self_referral)" in postings[0].rule
    if case.decision is not None:
        fact = ReviewFact("c1", "d1", case.decision, "own order", "merchant:m", case.decided_at)
        postings += state.step(StepInput(reviews=(fact,))).postings
    assert [p.kind for p in postings] == case.kinds
    dated: dict[int, int] = {}
    for p in postings:
        dated[p.approve_at] = dated.get(p.approve_at, 0) + p.amount_minor
    assert {at: v for at, v in dated.items() if v} == (
        {case.approve_at: 500} if case.approve_at else {}
    )
    if case.decision == "approve":
        # The line reads as approved at its new date, not by the move of its held accrual
        # (dated as held), which showed "pending until a review decision" after one.
        [line] = line_views(postings, case.approve_at)
        assert (line["approve_at"], line["status"], line["approved_minor"]) == (
            case.approve_at,
            "approved",
            500,
        )
        assert "approved in review by merchant:m (self_referral)" in line["rule"]


def test_a_decline_says_why_and_leaves_the_ranks_as_they_were() -> None:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
    first = state.step(
        StepInput(conversions=(sale("c1", START, ("self_referral",)), sale("c2", START + 10)))
    )
    # c1 waits for its decision: it is no net sale yet, so c2 is net sale 1 (5 %).
    assert [p.amount_minor for p in first.postings if p.line_id == derived_id("line", "c2")] == [
        500
    ]
    fact = ReviewFact("c1", "d1", "decline", "the creator's own order", "merchant:m", START + 99)
    result = state.step(StepInput(reviews=(fact,)))
    by_kind = {p.kind: p for p in result.postings}
    assert set(by_kind) == {"review_decline"}
    assert by_kind["review_decline"].amount_minor == -500
    assert by_kind["review_decline"].rule == (
        "declined in review by merchant:m (self_referral): the creator's own order"
    )
    assert result.kpis["review_declined|ana"] == 1
    assert result.kpis["review_held|ana"] == -1
    # No longer a conversion with revenue: it raised the conversion rate, AOV and ROI by
    # an order the brand refused.
    counted = ("conversions|ana", "sales|ana")
    assert {k: first.kpis[k] for k in counted} == {"conversions|ana": 2, "sales|ana": 2}
    assert {k: result.kpis[k] for k in counted} == {"conversions|ana": -1, "sales|ana": -1}
    assert result.kpis["revenue|ana"] == -sale("c1", START).amount_minor


def test_an_approval_re_ranks_the_sales_after_it() -> None:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
    state.step(
        StepInput(conversions=(sale("c1", START, ("self_referral",)), sale("c2", START + 10)))
    )
    fact = ReviewFact("c1", "d1", "approve", "", "merchant:m", START + 99)
    result = state.step(StepInput(reviews=(fact,)))
    by_kind = {p.kind: p for p in result.postings}
    # c1 counts from its approval: c2 becomes net sale 2 (10 %).
    assert by_kind["tier_adjustment"].line_id == derived_id("line", "c2")
    assert by_kind["tier_adjustment"].amount_minor == 500
    assert by_kind["tier_adjustment"].approve_at == START + 10 + 5 * MS_PER_DAY


def test_a_decision_on_a_conversion_whose_terms_hold_nothing_changes_nothing() -> None:
    versions = tuple(
        v.model_copy(update={"terms": v.terms.model_copy(update={"review": None})})
        for v in simple_versions()
    )
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions)
    state.step(StepInput(conversions=(sale("c1", START),)))
    fact = ReviewFact("c1", "d1", "decline", "", "admin", START + 1)
    assert state.step(StepInput(reviews=(fact,))).postings == ()


def net_of(postings: list[Posting], conversion: str) -> dict[int, int]:
    """The line's net per approval date (zeros left out)."""
    line = derived_id("line", conversion)
    out: dict[int, int] = {}
    for p in postings:
        if p.line_id == line:
            out[p.approve_at] = out.get(p.approve_at, 0) + p.amount_minor
    return {at: amount for at, amount in out.items() if amount}


def reattributed(conversion: str, at: int) -> RefundFact:
    return RefundFact(
        f"rev-{conversion}", f"ev-rev-{conversion}", f"o-{conversion}", 10_000, at, conversion,
        "reattributed",
    )  # fmt: skip


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_declined_burst_stays_declined_when_another_sale_of_its_hour_is_reattributed(
    order: tuple[int, ...],
) -> None:
    """The third sale in two minutes is held (burst), the merchant declines it, then the
    first is reattributed to another creator's click: the burst falls under the
    threshold. The decline stood only while the burst did: the line was paid in full, at
    the tier rate, at its lock, and the decision could not be taken again (409 not held)."""
    sales = tuple(sale(f"c{n}", START + n * 60_000) for n in range(3))
    decline = ReviewFact("c2", "d1", "decline", "self-purchase", "merchant:m", START + 600_000)
    taken = reattributed("c0", START + 1_200_000)
    steps = [
        StepInput(conversions=sales),
        StepInput(reviews=(decline,)),
        StepInput(refunds=(taken,)),
    ]
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
    postings: list[Posting] = []
    for n in order:
        postings += state.step(steps[n]).postings

    assert net_of(postings, "c2") == {}
    assert state.lines[derived_id("line", "c2")].rule.startswith(
        "declined in review by merchant:m ("
    )
    lines = reference_lines(
        CAMPAIGN, PERIOD, sales, (taken,), {}, (), simple_versions(),
        reviews={"c2": ("decline", decline.occurred_at)},
    )  # fmt: skip
    assert posted_amounts(postings) == target_amounts(lines)


def test_an_approved_burst_stays_dated_by_its_approval_when_the_burst_goes() -> None:
    sales = tuple(sale(f"c{n}", START + n * 60_000) for n in range(3))
    approve = ReviewFact("c2", "d1", "approve", "", "merchant:m", LOCK_END + MS_PER_DAY)
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
    postings = list(state.step(StepInput(conversions=sales, reviews=(approve,))).postings)
    postings += state.step(StepInput(refunds=(reattributed("c0", START + 1_200_000),))).postings

    assert net_of(postings, "c2") == {LOCK_END + MS_PER_DAY: 1_000}  # rank 2 of 2: 10 %


@pytest.mark.parametrize("order", list(itertools.permutations(range(2))))
def test_a_burst_held_sale_taken_back_as_reattributed_stays_held(order: tuple[int, ...]) -> None:
    """Its own taking back took it out of its own burst count and released the hold: its
    accrual read as approved at the lock until the reversal, though nobody approved it."""
    sales = tuple(sale(f"c{n}", START + n * 60_000) for n in range(3))
    steps = [StepInput(conversions=sales), StepInput(refunds=(reattributed("c2", START + 1),))]
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
    postings: list[Posting] = []
    for n in order:
        postings += state.step(steps[n]).postings

    assert "burst" in state.lines[derived_id("line", "c2")].held
    assert all(
        p.approve_at == HELD_UNTIL for p in postings if p.line_id == derived_id("line", "c2")
    )
    lines = reference_lines(CAMPAIGN, PERIOD, sales, steps[1].refunds, {}, (), simple_versions())
    assert posted_amounts(postings) == target_amounts(lines)


def test_a_third_sale_within_the_hour_is_held_as_a_burst_in_any_arrival_order() -> None:
    for order in ([0, 1, 2], [2, 1, 0]):
        state = PeriodState(CAMPAIGN, PERIOD, "EUR", simple_versions())
        sales = [sale(f"c{n}", START + n * 60_000) for n in range(3)]
        postings: list[Posting] = []
        for n in order:
            postings += state.step(StepInput(conversions=(sales[n],))).postings
        held = {p.line_id for p in postings if p.approve_at == HELD_UNTIL and p.amount_minor > 0}
        net = {}
        for p in postings:
            net[(p.line_id, p.approve_at)] = net.get((p.line_id, p.approve_at), 0) + p.amount_minor
        assert [k for k, v in net.items() if v and k[1] == HELD_UNTIL] == [
            (state.lines[next(iter(held))].line_id, HELD_UNTIL)
        ]
        assert "burst" in state.lines[next(iter(held))].held


def test_the_reference_places_decisions_from_the_reviews_topic() -> None:
    versions = simple_versions()
    held = ConversionAttributed(
        event_id="c1", occurred_at=START, conversion_id="c1", order_id="o-c1",
        campaign_id=CAMPAIGN, affiliate_id="ana", reason="coupon", model="last_click",
        window_ms=0, terms_version=1, amount_minor=10_000, currency="EUR",
        order_event_id="ev-o-c1", risk_signals=("self_referral",),
    )  # fmt: skip
    decision = ConversionReviewed(
        event_id="d1", occurred_at=START + 5, conversion_id="c1", order_id="o-c1",
        campaign_id=CAMPAIGN, affiliate_id="ana", order_occurred_at=START,
        decision="decline", reason="own order", decided_by="admin",
    )  # fmt: skip
    later = decision.model_copy(update={"event_id": "d2", "decision": "approve"})
    lines = reference_from_events([held], {CAMPAIGN: versions})[(CAMPAIGN, PERIOD)]
    assert target_amounts(lines) == {(derived_id("line", "c1"), HELD_UNTIL): 500}
    decided = reference_from_events([held, decision, later], {CAMPAIGN: versions})
    assert target_amounts(decided[(CAMPAIGN, PERIOD)]) == {}  # the first decision stands


@pytest.mark.parametrize("seed", range(10))
def test_the_review_counters_follow_the_holds_in_any_arrival_order(seed: int) -> None:
    """Bursts hold and release conversions that were not in the batch: the counters still
    move by the difference, so their sums are the final holds and decisions."""
    versions = with_review(plan_versions())
    facts, decisions = reviewed_facts(random.Random(seed))
    rng = random.Random(seed)
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions)
    counted: dict[str, int] = {}
    batches = [*arrival(facts, rng), StepInput(reviews=tuple(decisions))]
    for batch in batches:
        for name, value in state.step(batch).kpis.items():
            if name.startswith("review_"):
                counted[name] = counted.get(name, 0) + value
    final: dict[str, int] = {}
    for record in state.lines.values():
        for name, value in review_contribution(record):
            final[name] = final.get(name, 0) + value
    assert {k: v for k, v in counted.items() if v} == final
    assert final

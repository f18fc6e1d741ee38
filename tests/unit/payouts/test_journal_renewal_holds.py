"""A renewal follows the review of its subscription's first order, in the first order's
campaign-period or a later one: while the first order is held, its renewals are held with
it (pending, never approved); an approval releases them (at the later of their own lock's
end and the decision); a decline reverses every renewal line with a ``review_decline``
posting carrying the decline's reason, and a renewal arriving after it earns nothing. In
every arrival order, with reloads, the journal nets to the batch reference line by line
and per approval date."""

from __future__ import annotations

import journal_arrivals
import pytest
from journal_arrivals import Amounts, Item, Versions, first_decisions

from afflux.oracle.commission import (
    first_order_standings,
    reference_lines,
    target_amounts,
)
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting, record_from_json, record_to_json
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.review import HELD_UNTIL
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

HOUR = 3_600_000
CREATOR = "cr"
D = 10  # the decision's hour: after the first renewal, before the second


def versions(lock_days: int) -> tuple[TermsVersion, ...]:
    """10 % per sale, 20 % per renewal, a 7000 base fee; self-referrals are held."""
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "plan": {
                "sale": {"rate": {"percent": "10"}},
                "recurring": {"rate": {"percent": "20"}, "max_renewals": 12},
                "base_fee_minor": 7_000,
            },
            "review": {"hold_on": ["self_referral"]},
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def first_order(held: bool = True) -> ConversionFact:
    return ConversionFact(
        "first", "ev-first", "o-sub", CREATOR, "sale", None, 100_000, "EUR", False,
        START + HOUR, 1, risk_signals=("self_referral",) if held else (),
    )  # fmt: skip


def renewal(n: int, hour: int) -> ConversionFact:
    return ConversionFact(
        f"r{n}", f"ev-r{n}", f"o-sub:renewal-{n}", CREATOR, "renewal", None, 100_000, "EUR",
        False, START + hour * HOUR, 1, renewal_number=n, first_order_id="o-sub",
    )  # fmt: skip


def decide(name: str, decision: str, hour: int = D) -> ReviewFact:
    return ReviewFact(
        name, f"d-{name}-{decision}", decision, "self purchase", "merchant:m", START + hour * HOUR
    )


def line(name: str) -> str:
    return derived_id("line", name)


def every_arrival(items: list[Item], vs: Versions) -> Amounts:
    """The journal fed in every arrival order (a decision after the other decisions it
    follows in ``items``, as the first decision stands) nets to the reference each time;
    what it nets to."""
    return journal_arrivals.every_arrival(items, vs, keep_decision_order=True)


def of_line(amounts: dict[tuple[str, int], int], name: str) -> dict[int, int]:
    return {at: v for (lid, at), v in amounts.items() if lid == line(name) and v}


FACTS = [first_order(), renewal(1, 2), renewal(2, 20)]


def reattributed(conversion: ConversionFact, hour: int) -> RefundFact:
    """Its order given to another creator's click: the conversion taken back in full."""
    name = conversion.conversion_id
    return RefundFact(
        f"x-{name}", f"ev-x-{name}", conversion.order_id, conversion.amount_minor,
        START + hour * HOUR, name, "reattributed",
    )  # fmt: skip


@pytest.mark.parametrize("lock_days", [0, 5])
def test_a_held_sale_reattributed_before_a_decision_nets_zero_at_every_date(
    lock_days: int,
) -> None:
    # Released from its hold by the reattribution, its accrual was dated at its usual
    # lock (approved from then) and taken back only at the reattribution's time: read
    # between the two, an approved 10,000 nobody approved.
    got = every_arrival([first_order(), reattributed(first_order(), 240)], versions(lock_days))
    assert of_line(got, "first") == {}


@pytest.mark.parametrize("lock_days", [0, 5])
def test_a_reattributed_renewal_of_a_held_first_order_stays_held_with_it(
    lock_days: int,
) -> None:
    # The journal kept it held; the reference released it (dated at its lock, then taken
    # back): the two differed per date.
    items = [first_order(), renewal(1, 2), reattributed(renewal(1, 2), 240)]
    got = every_arrival(items, versions(lock_days))
    assert of_line(got, "r1") == {}
    assert of_line(got, "first") == {HELD_UNTIL: 10_000}


@pytest.mark.parametrize("lock_days", [0, 5])
def test_renewals_of_a_held_first_order_wait_with_it_in_every_arrival_order(
    lock_days: int,
) -> None:
    got = every_arrival(FACTS, versions(lock_days))
    assert of_line(got, "r1") == {HELD_UNTIL: 20_000}
    assert of_line(got, "r2") == {HELD_UNTIL: 20_000}
    assert of_line(got, "first") == {HELD_UNTIL: 10_000}


@pytest.mark.parametrize("lock_days", [0, 5])
def test_an_approval_of_the_first_order_releases_its_renewals_in_every_arrival_order(
    lock_days: int,
) -> None:
    got = every_arrival([*FACTS, decide("first", "approve")], versions(lock_days))
    lock = lock_days * MS_PER_DAY
    # At the later of each renewal's own lock's end and the decision.
    assert of_line(got, "r1") == {max(START + 2 * HOUR + lock, START + D * HOUR): 20_000}
    assert of_line(got, "r2") == {START + 20 * HOUR + lock: 20_000}


@pytest.mark.parametrize("lock_days", [0, 5])
def test_a_decline_of_the_first_order_takes_every_renewal_with_it_in_every_arrival_order(
    lock_days: int,
) -> None:
    # An approval after the decline changes nothing: the first decision stands.
    items = [*FACTS, decide("first", "decline"), decide("first", "approve", D + 1)]
    got = every_arrival(items, versions(lock_days))
    assert of_line(got, "r1") == {}
    assert of_line(got, "r2") == {}
    assert of_line(got, "first") == {}


def test_a_decline_reverses_a_pending_renewal_with_the_reason_and_a_later_one_earns_nothing() -> (
    None
):
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(lock_days=0))
    state.step(StepInput(conversions=(first_order(), renewal(1, 2))))
    declined = state.step(StepInput(reviews=(decide("first", "decline"),))).postings
    [reversal] = [p for p in declined if p.line_id == line("r1")]
    assert (reversal.kind, reversal.amount_minor) == ("review_decline", -20_000)
    assert "first order o-sub" in reversal.rule
    assert "self purchase" in reversal.rule
    later = state.step(StepInput(conversions=(renewal(2, 20),))).postings
    assert sum(p.amount_minor for p in later if p.line_id == line("r2")) == 0


def test_a_renewal_waiting_on_its_first_order_says_so_and_is_never_approved() -> None:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(lock_days=0))
    postings = state.step(StepInput(conversions=(first_order(), renewal(1, 2)))).postings
    [accrual] = [p for p in postings if p.line_id == line("r1")]
    assert accrual.approve_at == HELD_UNTIL
    assert "held for review with its first order o-sub (self_referral)" in accrual.rule


def test_a_decision_on_the_renewal_itself_changes_nothing_while_its_first_order_is_held() -> None:
    items: list[Item] = [*FACTS, decide("r1", "approve", 3)]
    got = every_arrival(items, versions(lock_days=0))
    assert of_line(got, "r1") == {HELD_UNTIL: 20_000}


@pytest.mark.parametrize("lock_days", [0, 5])
def test_renewals_of_a_first_order_not_held_are_approved_at_their_lock(lock_days: int) -> None:
    got = every_arrival([first_order(held=False), renewal(1, 2)], versions(lock_days))
    assert of_line(got, "r1") == {START + 2 * HOUR + lock_days * MS_PER_DAY: 20_000}


# -- a renewal in a later period than its first order ----------------------------------

APRIL = "2026-04"
APRIL_START = 1_775_001_600_000  # 2026-04-01T00:00:00Z


def april_renewal(n: int, day: int) -> ConversionFact:
    """A renewal in April of the March first order (days after April 1)."""
    r = renewal(n, 0)
    return ConversionFact(
        r.conversion_id, r.event_id, r.order_id, CREATOR, "renewal", None, 100_000, "EUR",
        False, APRIL_START + day * 24 * HOUR, 1, renewal_number=n, first_order_id="o-sub",
    )  # fmt: skip


def run_periods(
    items: list[Item], vs: tuple[TermsVersion, ...], reload: list[bool]
) -> list[Posting]:
    """The two periods fed as the store feeds them: a renewal gets its first order's
    standing as last written; a change of it goes to the later period."""
    states = {p: PeriodState(CAMPAIGN, p, "EUR", vs) for p in (PERIOD, APRIL)}
    written: dict[str, object] = {}
    postings: list[Posting] = []
    for item, again in zip(items, reload, strict=True):
        if isinstance(item, ConversionFact):
            period = APRIL if item.occurred_at >= APRIL_START else PERIOD
            given = tuple(
                (o, written[o]) for o in (item.first_order_id,) if o is not None and o in written
            )
            batch = StepInput(conversions=(item,), first_orders=given)  # type: ignore[arg-type]
        else:
            period, batch = PERIOD, StepInput(reviews=(item,))
        result = states[period].step(batch)
        postings += result.postings
        written.update(result.first_orders)
        if result.first_orders and period == PERIOD:
            postings += states[APRIL].step(StepInput(first_orders=result.first_orders)).postings
        if again:
            states = {
                p: PeriodState.load(
                    CAMPAIGN,
                    p,
                    "EUR",
                    vs,
                    [record_from_json(record_to_json(r)) for r in s.lines.values()],
                    [],
                    s.confirmations,
                    s.seq,
                )
                for p, s in states.items()
            }
    return postings


def reference_periods(
    items: list[Item], vs: tuple[TermsVersion, ...]
) -> dict[tuple[str, int], int]:
    first = first_decisions(items)
    conversions = [i for i in items if isinstance(i, ConversionFact)]
    march = [c for c in conversions if c.occurred_at < APRIL_START]
    april = [c for c in conversions if c.occurred_at >= APRIL_START]
    standings = first_order_standings(march, [], vs, first)
    lines = reference_lines(CAMPAIGN, PERIOD, march, [], {}, (), vs, reviews=first)
    lines += reference_lines(
        CAMPAIGN, APRIL, april, [], {}, (), vs, reviews=first, first_orders=standings
    )
    return target_amounts(lines)


def every_arrival_periods(items: list[Item], vs: Versions) -> Amounts:
    return journal_arrivals.every_arrival(
        items, vs, keep_decision_order=True, feed=run_periods, expected=reference_periods
    )


LATER = [first_order(), april_renewal(1, 1), april_renewal(2, 20)]


@pytest.mark.parametrize("lock_days", [0, 5])
def test_renewals_in_a_later_period_wait_with_their_held_first_order(lock_days: int) -> None:
    got = every_arrival_periods(LATER, versions(lock_days))
    assert of_line(got, "r1") == {HELD_UNTIL: 20_000}
    assert of_line(got, "r2") == {HELD_UNTIL: 20_000}


@pytest.mark.parametrize("decided_hour", [D, 34 * 24])  # March 1, 10:00; April 4
@pytest.mark.parametrize("lock_days", [0, 5])
def test_an_approval_releases_renewals_in_a_later_period(lock_days: int, decided_hour: int) -> None:
    approval = decide("first", "approve", decided_hour)
    got = every_arrival_periods([*LATER, approval], versions(lock_days))
    lock = lock_days * MS_PER_DAY
    # Each at the later of its own lock's end and the decision.
    decided = approval.occurred_at
    assert of_line(got, "r1") == {max(APRIL_START + 24 * HOUR + lock, decided): 20_000}
    assert of_line(got, "r2") == {max(APRIL_START + 20 * 24 * HOUR + lock, decided): 20_000}


@pytest.mark.parametrize("lock_days", [0, 5])
def test_a_decline_takes_renewals_in_a_later_period_with_it(lock_days: int) -> None:
    items = [*LATER, decide("first", "decline"), decide("first", "approve", D + 1)]
    got = every_arrival_periods(items, versions(lock_days))
    assert of_line(got, "r1") == {}
    assert of_line(got, "r2") == {}


def burst_versions() -> tuple[TermsVersion, ...]:
    """10 % per sale; more than one of a creator's sales within an hour is held."""
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "plan": {"sale": {"rate": {"percent": "10"}}},
            "review": {"hold_on": ["burst"], "thresholds": {"burst_per_hour": 1}},
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale_at(name: str, minute: int) -> ConversionFact:
    return ConversionFact(
        name, f"ev-{name}", f"o-{name}", CREATOR, "sale", None, 100_000, "EUR", False,
        START + HOUR + minute * 60_000, 1,
    )  # fmt: skip


def test_a_reattributed_line_held_by_burst_is_judged_again_by_a_late_sale_before_it() -> None:
    # Sale b, arriving last, makes l a burst again (b's 10:10 is in the hour before l's
    # 10:30). The journal counts only current sales, so it never asked l again once l was
    # taken back; the reference did, and l read as approved between its lock and the
    # reattribution in the journal alone.
    a, b, late = sale_at("a", 0), sale_at("b", 10), sale_at("l", 30)
    got = every_arrival([a, late, reattributed(late, 240), b], burst_versions())
    assert of_line(got, "l") == {}

"""The commission engine (DESIGN §4) at its boundaries: one case per rule and what it proves.

Every test builds the facts of one campaign-period and reads the lines that
``ledger_lines`` gives for them. Money is in minor units; the period is
November 2026, whose end (1 December) is also the boundary for net sales.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import pytest

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import (
    CapCut,
    ClickTally,
    ConversionFact,
    Line,
    PeriodFacts,
    RefundFact,
    ledger_lines,
)
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

DAY = MS_PER_DAY
PERIOD = "2026-11"
START, END = period_bounds(PERIOD)
LOCK_DAYS = 30

Plan = Mapping[str, object]
PERCENT_10: Plan = {"sale": {"rate": {"percent": "10"}}}


def versions(
    plan: Plan, lock_days: int = LOCK_DAYS, confirm: bool = False
) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "lead_confirmation_required": confirm,
            "plan": dict(plan),
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def conv(
    n: int | str,
    at: int,
    amount: int = 10_000,
    who: str = "anna",
    new: bool = False,
    kind: str = "sale",
    action: str | None = None,
    version: int = 1,
) -> ConversionFact:
    """Conversion ``n`` of order ``o-n``, attributed to ``who`` at event time ``at``."""
    return ConversionFact(
        conversion_id=f"conv-{n}",
        event_id=f"ev-{n}",
        order_id=f"o-{n}",
        affiliate_id=who,
        kind=kind,
        action=action,
        amount_minor=amount,
        currency="EUR",
        new_customer=new,
        occurred_at=at,
        terms_version=version,
    )


def refund(n: int | str, amount: int, at: int, seq: int = 1) -> RefundFact:
    """Refund number ``seq`` of order ``o-n``."""
    return RefundFact(
        reversal_id=f"rev-{n}-{seq}",
        event_id=f"ev-refund-{n}-{seq}",
        order_id=f"o-{n}",
        amount_minor=amount,
        occurred_at=at,
    )


def run(
    plan: Plan,
    conversions: Iterable[ConversionFact] = (),
    refunds: Iterable[RefundFact] = (),
    clicks: Iterable[ClickTally] = (),
    confirmed: Mapping[str, str] | None = None,
    lock_days: int = LOCK_DAYS,
    confirm: bool = False,
) -> tuple[Line, ...]:
    confirmations = dict(confirmed or {})
    facts = PeriodFacts(
        campaign_id="camp",
        period=PERIOD,
        conversions=tuple(conversions),
        confirmed_orders=frozenset(confirmations),
        confirmation_ids=confirmations,
        refunds=tuple(refunds),
        clicks=tuple(clicks),
    )
    return ledger_lines(facts, versions(plan, lock_days, confirm), "EUR")


def of_kind(lines: Iterable[Line], kind: str) -> list[Line]:
    return [line for line in lines if line.kind == kind]


def day(n: int) -> int:
    """Event time ``n`` days into the period (day 0 is 1 November 00:00 UTC)."""
    return START + n * DAY


# --- per sale: percent, fixed, new-customer rate -----------------------------------------


@pytest.mark.parametrize(
    ("percent", "amount", "expect"),
    [
        ("10", 12_345, 1_235),  # 1234.5 rounds half up, not to even
        ("10", 12_344, 1_234),  # 1234.4 rounds down
        ("10", 12_346, 1_235),  # 1234.6 rounds up
        ("10", 5, 1),  # 0.5 is paid as a whole cent
        ("10", 4, 0),  # 0.4 pays nothing
        ("2.5", 100, 3),  # 2.5 → 3 (banker's rounding would give 2)
        ("12.5", 12, 2),  # 1.5 → 2
        ("33.3333", 3, 1),  # 0.999999: rounded once, from the exact Decimal product
        ("0", 12_345, 0),  # a zero rate pays nothing
        ("100", 12_345, 12_345),  # the whole amount
    ],
)
def test_percent_of_sale_is_rounded_half_up_once(percent: str, amount: int, expect: int) -> None:
    (line,) = run({"sale": {"rate": {"percent": percent}}}, [conv(1, day(1), amount)])
    assert (line.kind, line.amount_minor, line.gross_minor) == ("sale", expect, expect)
    assert f"{percent}% of {amount}" in line.rule


@pytest.mark.parametrize("amount", [0, 1, 12_345])
def test_fixed_sale_pays_the_same_whatever_the_amount(amount: int) -> None:
    (line,) = run({"sale": {"rate": {"fixed_minor": 500}}}, [conv(1, day(1), amount)])
    assert line.amount_minor == 500


@dataclass(frozen=True)
class RateCase:
    name: str
    plan: Plan
    new_customer: bool
    expect: int
    why: str


NEW_RATE: Plan = {"sale": {"rate": {"percent": "10"}, "new_customer": {"percent": "20"}}}
RATE_CASES = [
    # a first-time customer is paid at the new-customer rate
    RateCase("new customer", NEW_RATE, True, 2_469, "new-customer rate"),
    # a returning customer at the base rate
    RateCase("returning customer", NEW_RATE, False, 1_235, "base rate"),
    # without a new-customer rate, a new customer is paid at the base rate
    RateCase("no new-customer rate", PERCENT_10, True, 1_235, "base rate"),
    # the new-customer rate may be fixed while the base rate is a percentage
    RateCase(
        "fixed new-customer rate",
        {"sale": {"rate": {"percent": "10"}, "new_customer": {"fixed_minor": 700}}},
        True,
        700,
        "new-customer rate",
    ),
    # the new-customer rate replaces a volume tier (first sale is already in the tier)
    RateCase(
        "new customer beats tier",
        {**NEW_RATE, "tiers": [{"from_sales": 1, "rate": {"percent": "50"}}]},
        True,
        2_469,
        "new-customer rate",
    ),
]


@pytest.mark.parametrize("case", RATE_CASES, ids=lambda c: c.name)
def test_new_customer_rate(case: RateCase) -> None:
    (line,) = run(case.plan, [conv(1, day(1), 12_345, new=case.new_customer)])
    assert line.amount_minor == case.expect
    assert case.why in line.rule


def test_a_plan_without_sale_pay_gives_sales_no_line() -> None:
    assert run({"lead_minor": 300}, [conv(1, day(1))]) == ()


# --- per lead, per action ----------------------------------------------------------------


@dataclass(frozen=True)
class LeadCase:
    name: str
    confirm: bool
    confirmed: Mapping[str, str]
    expect: int | None  # None: no line
    sources: tuple[str, ...] = ()


LEAD_CASES = [
    # confirmation not required: paid on the conversion alone
    LeadCase("no confirmation needed", False, {}, 300, ("ev-1",)),
    # required and missing: not paid (yet)
    LeadCase("unconfirmed", True, {}, None),
    # required, but only another order is confirmed
    LeadCase("other order confirmed", True, {"o-2": "ev-conf-2"}, None),
    # required and confirmed: paid, and the confirmation is a source of the line
    LeadCase("confirmed", True, {"o-1": "ev-conf-1"}, 300, ("ev-1", "ev-conf-1")),
]


@pytest.mark.parametrize("case", LEAD_CASES, ids=lambda c: c.name)
def test_lead_is_paid_only_once_confirmed_when_required(case: LeadCase) -> None:
    lines = run(
        {"lead_minor": 300},
        [conv(1, day(1), 0, kind="lead")],
        confirmed=case.confirmed,
        confirm=case.confirm,
    )
    if case.expect is None:
        assert lines == ()
        return
    (line,) = lines
    assert (line.kind, line.amount_minor, line.source_event_ids) == (
        "lead",
        case.expect,
        case.sources,
    )
    assert ("(confirmed)" in line.rule) is case.confirm


def test_a_plan_without_lead_pay_gives_leads_no_line() -> None:
    lines = run(PERCENT_10, [conv(1, day(1), 0, kind="lead")], confirmed={"o-1": "c"})
    assert lines == ()


@pytest.mark.parametrize(
    ("kind", "action", "expect"),
    [
        ("install", None, 150),  # the install kind is its own action
        ("action", "signup", 80),  # a named action is paid at its own fixed amount
        ("action", "newsletter", None),  # an action the plan does not pay gives no line
        ("action", None, None),  # an action without a name matches no action kind
    ],
)
def test_action_kinds_are_paid_their_fixed_amount(
    kind: str, action: str | None, expect: int | None
) -> None:
    plan: Plan = {"actions_minor": {"install": 150, "signup": 80}}
    lines = run(plan, [conv(1, day(1), 999, kind=kind, action=action)])
    if expect is None:
        assert lines == ()
        return
    (line,) = lines
    assert (line.kind, line.amount_minor, line.order_id) == ("action", expect, "o-1")
    assert f"action {action or kind}: fixed {expect}" == line.rule


# --- per click with a paid-click cap -----------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "unique_clicks", "expect"),
    [
        (100, 99, 495),  # under the cap: every click is paid
        (100, 100, 500),  # at the cap: every click is paid
        (100, 101, 500),  # one over: the extra click is not paid
        (None, 101, 505),  # no cap: every click is paid
        (100, 0, None),  # no valid click: no line
        (0, 10, None),  # a zero cap pays no click
    ],
)
def test_clicks_are_paid_up_to_the_paid_click_cap(
    cap: int | None, unique_clicks: int, expect: int | None
) -> None:
    click: dict[str, object] = {"per_click_minor": 5}
    if cap is not None:
        click["paid_click_cap"] = cap
    lines = run({"click": click}, clicks=[ClickTally("anna", unique_clicks, day(2))])
    if expect is None:
        assert lines == ()
        return
    (line,) = lines
    assert (line.kind, line.amount_minor, line.occurred_at) == ("click", expect, day(2))
    assert line.approve_at == day(2) + LOCK_DAYS * DAY


def test_each_creator_has_their_own_paid_click_cap() -> None:
    plan: Plan = {"click": {"per_click_minor": 5, "paid_click_cap": 10}}
    tallies = [ClickTally("bob", 20, day(3)), ClickTally("anna", 7, day(2))]
    lines = run(plan, clicks=tallies)
    assert {(line.affiliate_id, line.amount_minor) for line in lines} == {
        ("anna", 35),
        ("bob", 50),
    }


# --- base fee ----------------------------------------------------------------------------


def test_base_fee_is_paid_once_per_creator_with_activity_from_their_first_activity() -> None:
    plan: Plan = {**PERCENT_10, "base_fee_minor": 1_000}
    conversions = [conv(1, day(5)), conv(2, day(3)), conv(3, day(9), who="bob")]
    tallies = [
        ClickTally("anna", 4, day(4)),  # later than anna's first sale
        ClickTally("carl", 2, day(7)),  # clicks alone are activity
        ClickTally("dora", 0, day(1)),  # no valid click: no activity, no fee
        ClickTally("bob", 3, day(8)),  # earlier than bob's sale
    ]
    fees = of_kind(run(plan, conversions, clicks=tallies), "base_fee")
    assert [(f.affiliate_id, f.amount_minor, f.occurred_at) for f in fees] == [
        ("anna", 1_000, day(3)),
        ("carl", 1_000, day(7)),
        ("bob", 1_000, day(8)),
    ]
    assert len({f.line_id for f in fees}) == 3


def test_no_activity_means_no_base_fee() -> None:
    assert run({"base_fee_minor": 1_000}) == ()


# --- marginal volume tiers ---------------------------------------------------------------

TIERED: Plan = {
    "sale": {"rate": {"percent": "5"}},
    "tiers": [
        {"from_sales": 3, "rate": {"percent": "10"}},
        {"from_sales": 5, "rate": {"fixed_minor": 200}},
    ],
}


@pytest.mark.parametrize(
    ("nth", "expect"),
    [
        (1, 50),  # base
        (2, 50),  # N-1 of the first tier: still base
        (3, 100),  # N = from_sales: the tier rate
        (4, 100),  # inside the first tier
        (5, 200),  # N of the second tier
        (6, 200),  # inside the second tier
    ],
)
def test_volume_tiers_are_marginal(nth: int, expect: int) -> None:
    lines = run(TIERED, [conv(i, day(i), 1_000) for i in range(1, 7)])
    line = next(line for line in lines if line.order_id == f"o-{nth}")
    assert line.amount_minor == expect
    if nth >= 3:
        assert f"this is net sale {nth}" in line.rule


def test_tier_rank_counts_only_the_creators_own_sales() -> None:
    conversions = [conv(1, day(1), 1_000), conv(2, day(2), 1_000, who="bob")]
    conversions += [conv(3, day(3), 1_000), conv(4, day(4), 1_000)]
    amounts = {line.order_id: line.amount_minor for line in run(TIERED, conversions)}
    assert amounts == {"o-1": 50, "o-2": 50, "o-3": 50, "o-4": 100}


def test_sales_at_the_same_millisecond_rank_by_conversion_id() -> None:
    plan: Plan = {**PERCENT_10, "tiers": [{"from_sales": 2, "rate": {"percent": "20"}}]}
    for order in ([conv("b", day(1)), conv("a", day(1))], [conv("a", day(1)), conv("b", day(1))]):
        amounts = {line.order_id: line.amount_minor for line in run(plan, order)}
        assert amounts == {"o-a": 1_000, "o-b": 2_000}


@pytest.mark.parametrize(
    ("refunded", "at", "third_sale"),
    [
        (1_000, END - 1, 50),  # sale 1 refunded in full before the end: sale 3 is net sale 2
        (999, END - 1, 100),  # a partial refund still leaves a net sale
        (1_000, END, 100),  # a refund once the period has closed changes no rank
    ],
)
def test_a_full_refund_before_the_period_end_moves_later_sales_down(
    refunded: int, at: int, third_sale: int
) -> None:
    lines = run(TIERED, [conv(i, day(i), 1_000) for i in range(1, 4)], [refund(1, refunded, at)])
    amounts = {line.order_id: line.amount_minor for line in lines}
    assert amounts["o-3"] == third_sale


# --- milestone bonuses -------------------------------------------------------------------

MILESTONES: Plan = {
    **PERCENT_10,
    "milestones": [{"at_sales": 3, "bonus_minor": 100}, {"at_sales": 5, "bonus_minor": 300}],
}


@dataclass(frozen=True)
class MilestoneCase:
    name: str
    sales: int
    refunds: tuple[RefundFact, ...]
    expect: tuple[tuple[int, int, str], ...]  # (bonus, reached at, source event)


MILESTONE_CASES = [
    # one short of the threshold: no bonus
    MilestoneCase("at_sales - 1", 2, (), ()),
    # exactly at the threshold: the bonus, at the time of the sale that reached it
    MilestoneCase("at_sales", 3, (), ((100, day(3), "ev-3"),)),
    # past it: still paid once
    MilestoneCase("at_sales + 1", 4, (), ((100, day(3), "ev-3"),)),
    # both thresholds reached: both bonuses
    MilestoneCase("second milestone", 5, (), ((100, day(3), "ev-3"), (300, day(5), "ev-5"))),
    # a full refund before the period end drops net sales to 2: the bonus is reversed
    MilestoneCase("full refund before end", 3, (refund(1, 10_000, END - 1),), ()),
    # a full refund once the period has closed leaves the bonus
    MilestoneCase("full refund at end", 3, (refund(1, 10_000, END),), ((100, day(3), "ev-3"),)),
    # a partial refund leaves a net sale
    MilestoneCase("partial refund", 3, (refund(1, 9_999, END - 1),), ((100, day(3), "ev-3"),)),
    # two partial refunds that add up to the whole order drop the sale
    MilestoneCase(
        "two refunds add up to full",
        3,
        (refund(2, 4_000, day(10), 1), refund(2, 6_000, day(11), 2)),
        (),
    ),
    # four sales, one refunded: still three net sales, reached by the fourth
    MilestoneCase(
        "refund above threshold", 4, (refund(1, 10_000, day(6)),), ((100, day(4), "ev-4"),)
    ),
]


@pytest.mark.parametrize("case", MILESTONE_CASES, ids=lambda c: c.name)
def test_milestone_bonuses(case: MilestoneCase) -> None:
    lines = run(MILESTONES, [conv(i, day(i)) for i in range(1, case.sales + 1)], case.refunds)
    bonuses = of_kind(lines, "bonus")
    assert tuple((b.amount_minor, b.occurred_at, *b.source_event_ids) for b in bonuses) == (
        case.expect
    )
    assert len({b.line_id for b in bonuses}) == len(bonuses)


def test_milestones_count_each_creator_separately() -> None:
    conversions = [conv(i, day(i), who="anna" if i % 2 else "bob") for i in range(1, 6)]
    bonuses = of_kind(run(MILESTONES, conversions), "bonus")
    assert [(b.affiliate_id, b.amount_minor) for b in bonuses] == [("anna", 100)]


# --- creator cap and campaign budget -----------------------------------------------------

FIXED_600: Plan = {"sale": {"rate": {"fixed_minor": 600}}}


@dataclass(frozen=True)
class CapCase:
    name: str
    plan: Plan
    sales: tuple[str, ...]  # creator of each sale, one a day
    expect: tuple[tuple[int, tuple[CapCut, ...]], ...]
    refunds: tuple[RefundFact, ...] = ()
    clicks: tuple[ClickTally, ...] = field(default=())


def creator(n: int) -> CapCut:
    return CapCut("creator", n)


def budget(n: int) -> CapCut:
    return CapCut("campaign", n)


CAP_CASES = [
    # under, across and beyond the creator cap: cut to what is left, then to nothing
    CapCase(
        "creator cap",
        {**FIXED_600, "creator_cap_minor": 1_000},
        ("anna", "anna", "anna"),
        ((600, ()), (400, (creator(200),)), (0, (creator(600),))),
    ),
    # reaching the cap exactly cuts nothing; the next accrual is cut whole
    CapCase(
        "creator cap reached exactly",
        {**FIXED_600, "creator_cap_minor": 1_200},
        ("anna", "anna", "anna"),
        ((600, ()), (600, ()), (0, (creator(600),))),
    ),
    # one cent of room is paid
    CapCase(
        "creator cap one cent left",
        {**FIXED_600, "creator_cap_minor": 1_201},
        ("anna", "anna", "anna"),
        ((600, ()), (600, ()), (1, (creator(599),))),
    ),
    # the cap is per creator
    CapCase(
        "creator cap per creator",
        {**FIXED_600, "creator_cap_minor": 1_000},
        ("anna", "bob", "anna"),
        ((600, ()), (600, ()), (400, (creator(200),))),
    ),
    # a zero cap cuts everything
    CapCase(
        "zero creator cap",
        {**FIXED_600, "creator_cap_minor": 0},
        ("anna",),
        ((0, (creator(600),)),),
    ),
    # the campaign budget is shared by every creator
    CapCase(
        "campaign budget",
        {**FIXED_600, "campaign_budget_minor": 1_000},
        ("anna", "bob", "anna"),
        ((600, ()), (400, (budget(200),)), (0, (budget(600),))),
    ),
    # budget reached exactly
    CapCase(
        "campaign budget reached exactly",
        {**FIXED_600, "campaign_budget_minor": 1_200},
        ("anna", "bob", "carl"),
        ((600, ()), (600, ()), (0, (budget(600),))),
    ),
    # both: the creator cap cuts first, then the budget cuts another creator
    CapCase(
        "creator cap then budget",
        {**FIXED_600, "creator_cap_minor": 700, "campaign_budget_minor": 1_000},
        ("anna", "anna", "bob"),
        ((600, ()), (100, (creator(500),)), (300, (budget(300),))),
    ),
    # both cut the same accrual, each recording its own part
    CapCase(
        "both cut one accrual",
        {**FIXED_600, "creator_cap_minor": 500, "campaign_budget_minor": 300},
        ("anna",),
        ((300, (creator(100), budget(200))),),
    ),
    # a refund before approval frees room for later accruals
    CapCase(
        "refund frees room",
        {**FIXED_600, "creator_cap_minor": 1_000},
        ("anna", "anna"),
        ((300, ()), (600, ())),
        refunds=(refund(1, 5_000, day(2)),),
    ),
    # period accruals (clicks) use up the cap in event-time order like sales
    CapCase(
        "clicks use the cap",
        {**FIXED_600, "click": {"per_click_minor": 1}, "creator_cap_minor": 800},
        ("anna",),
        ((400, ()), (400, (creator(200),))),
        clicks=(ClickTally("anna", 400, day(0)),),
    ),
]


@pytest.mark.parametrize("case", CAP_CASES, ids=lambda c: c.name)
def test_caps_cut_an_accrual_to_what_is_left_and_record_the_cut(case: CapCase) -> None:
    conversions = [conv(i, day(i), who=who) for i, who in enumerate(case.sales, start=1)]
    lines = run(case.plan, conversions, case.refunds, case.clicks)
    assert tuple((line.amount_minor, line.cap_cuts) for line in lines) == case.expect
    plan = case.plan
    for line in lines:
        cut = sum(c.cut_minor for c in line.cap_cuts)
        assert line.amount_minor + cut == line.gross_minor - line.refunded_minor
        assert line.amount_minor >= 0
        assert all(c.cut_minor > 0 for c in line.cap_cuts)
    cap = plan.get("creator_cap_minor")
    if isinstance(cap, int):
        for who in set(case.sales):
            assert sum(line.amount_minor for line in lines if line.affiliate_id == who) <= cap
    total_budget = plan.get("campaign_budget_minor")
    if isinstance(total_budget, int):
        assert sum(line.amount_minor for line in lines) <= total_budget


def test_caps_cut_bonuses_and_base_fees_too() -> None:
    plan: Plan = {
        **FIXED_600,
        "base_fee_minor": 250,
        "milestones": [{"at_sales": 2, "bonus_minor": 500}],
        "campaign_budget_minor": 1_500,
    }
    lines = run(plan, [conv(1, day(1)), conv(2, day(2))], clicks=[ClickTally("anna", 1, day(0))])
    assert sum(line.amount_minor for line in lines) == 1_500
    assert (
        sum(c.cut_minor for line in lines for c in line.cap_cuts) == 250 + 600 + 600 + 500 - 1_500
    )
    assert of_kind(lines, "base_fee")[0].amount_minor == 250  # first activity, before the sales


# --- refunds: before approval pro rata, on/after approval a clawback ---------------------

SALE_AT = day(1)
APPROVE = SALE_AT + LOCK_DAYS * DAY


@dataclass(frozen=True)
class RefundCase:
    name: str
    refunds: tuple[tuple[int, int], ...]  # (amount, event time relative to approval)
    line: int  # what the sale line pays
    refunded: int  # its reduction before approval
    clawbacks: tuple[int, ...]  # the negative lines that follow it


REFUND_CASES = [
    # no refund: the line pays the gross
    RefundCase("none", (), 1_000, 0, ()),
    # partial refund the millisecond before approval: reduced pro rata, no clawback
    RefundCase("partial before approval", ((2_500, -1),), 750, 250, ()),
    # full refund before approval: the line pays nothing
    RefundCase("full before approval", ((10_000, -1),), 0, 1_000, ()),
    # the pro rata reduction is rounded half up: 333.5 → 334
    RefundCase("pro rata rounds half up", ((3_335, -1),), 666, 334, ()),
    # several refunds before approval are added, then rounded once: 667, not 334 + 334
    RefundCase("two before approval", ((3_335, -2), (3_335, -1)), 333, 667, ()),
    # a refund at the approval time is already a clawback
    RefundCase("at approval", ((2_500, 0),), 1_000, 0, (-250,)),
    # a full refund after approval claws back the whole line
    RefundCase("full after approval", ((10_000, DAY),), 1_000, 0, (-1_000,)),
    # before and after: the clawback is pro rata of what the line still pays
    RefundCase("before and after", ((2_500, -1), (2_500, 1)), 750, 250, (-250,)),
    # three refunds after approval adding up to the order claw back exactly the line
    RefundCase(
        "thirds after approval", ((3_333, 1), (3_333, 2), (3_334, 3)), 1_000, 0, (-333, -334, -333)
    ),
]


@pytest.mark.parametrize("case", REFUND_CASES, ids=lambda c: c.name)
def test_refunds_reduce_before_approval_and_claw_back_after(case: RefundCase) -> None:
    refunds = [
        refund(1, amount, APPROVE + offset, i) for i, (amount, offset) in enumerate(case.refunds)
    ]
    lines = run(PERCENT_10, [conv(1, SALE_AT)], refunds)
    sale, *clawbacks = lines
    assert (sale.kind, sale.gross_minor, sale.refunded_minor, sale.amount_minor) == (
        "sale",
        1_000,
        case.refunded,
        case.line,
    )
    assert sale.approve_at == APPROVE
    assert tuple(c.amount_minor for c in clawbacks) == case.clawbacks
    for c in clawbacks:
        (source,) = c.source_event_ids
        r = next(r for r in refunds if r.event_id == source)
        assert (c.kind, c.order_id, c.affiliate_id, c.gross_minor) == (
            "clawback",
            "o-1",
            "anna",
            c.amount_minor,
        )
        assert c.occurred_at == c.approve_at == r.occurred_at >= APPROVE  # approved at once
    before = [r.event_id for r in refunds if r.occurred_at < APPROVE]
    assert sale.source_event_ids == ("ev-1", *before)


def test_clawbacks_never_take_back_more_than_the_line_paid() -> None:
    # 101 for an order of 2, refunded 1 + 1: 50.5 rounds up twice, but only 101 was paid
    refunds = [refund(1, 1, APPROVE, 1), refund(1, 1, APPROVE + 1, 2)]
    lines = run({"sale": {"rate": {"fixed_minor": 101}}}, [conv(1, SALE_AT, 2)], refunds)
    assert sum(line.amount_minor for line in lines) == 0
    assert [line.amount_minor for line in of_kind(lines, "clawback")] == [-51, -50]


def test_a_clawback_takes_back_only_what_a_capped_line_paid() -> None:
    plan: Plan = {**PERCENT_10, "creator_cap_minor": 400}
    lines = run(plan, [conv(1, SALE_AT)], [refund(1, 10_000, APPROVE + DAY)])
    assert [(line.kind, line.amount_minor) for line in lines] == [
        ("sale", 400),
        ("clawback", -400),
    ]


def test_a_line_cut_to_nothing_has_nothing_to_claw_back() -> None:
    plan: Plan = {**PERCENT_10, "creator_cap_minor": 0}
    lines = run(plan, [conv(1, SALE_AT)], [refund(1, 10_000, APPROVE)])
    assert [(line.kind, line.amount_minor) for line in lines] == [("sale", 0)]


# --- explain and determinism -------------------------------------------------------------


def test_a_sale_is_paid_by_the_terms_version_it_was_attributed_under() -> None:
    (v1,) = versions(PERCENT_10)
    plan = v1.terms.plan.model_copy(update={"sale": None, "lead_minor": 1})
    v2 = v1.model_copy(
        update={
            "version": 2,
            "effective_from": day(10),
            "terms": v1.terms.model_copy(update={"plan": plan}),
        }
    )
    facts = PeriodFacts("camp", PERIOD, conversions=(conv(1, day(1)), conv(2, day(11), version=2)))
    (line,) = ledger_lines(facts, (v1, v2), "EUR")
    assert (line.order_id, line.terms_version, line.amount_minor) == ("o-1", 1, 1_000)
    assert (line.campaign_id, line.period, line.currency) == ("camp", PERIOD, "EUR")


def test_no_terms_no_lines() -> None:
    facts = PeriodFacts("camp", PERIOD, conversions=(conv(1, day(1)),))
    assert ledger_lines(facts, (), "EUR") == ()


EVERYTHING: Plan = {
    "sale": {"rate": {"percent": "7.5"}, "new_customer": {"percent": "12"}},
    "lead_minor": 300,
    "actions_minor": {"install": 150, "signup": 80},
    "click": {"per_click_minor": 3, "paid_click_cap": 50},
    "base_fee_minor": 400,
    "tiers": [{"from_sales": 3, "rate": {"percent": "10"}}],
    "milestones": [{"at_sales": 2, "bonus_minor": 250}, {"at_sales": 4, "bonus_minor": 500}],
    "creator_cap_minor": 3_000,
    "campaign_budget_minor": 4_500,
}
MIXED_CONVERSIONS = (
    conv(1, day(1), 12_345, "anna"),
    conv(2, day(2), 8_000, "anna", new=True),
    conv(3, day(2), 9_999, "bob"),  # same time as 2, another creator
    conv(4, day(3), 0, "anna", kind="lead"),
    conv(5, day(3), 20_000, "anna"),
    conv(6, day(4), 0, "bob", kind="install"),
    conv(7, day(5), 4_321, "bob", kind="action", action="signup"),
    conv(8, day(6), 15_000, "anna"),
    conv(9, day(6), 15_000, "bob"),
    conv(10, day(7), 5_005, "anna"),
)
MIXED_REFUNDS = (
    refund(1, 12_345, day(2)),  # full, before approval and period end: drops a net sale
    refund(5, 5_000, day(3) + 7 * DAY, 1),  # partial, after approval (lock 7 days)
    refund(5, 15_000, day(3) + 8 * DAY, 2),  # the rest, after approval
    refund(9, 1, day(8)),
)
MIXED_CLICKS = (ClickTally("carl", 70, day(0)), ClickTally("anna", 20, day(1)))


def mixed_lines(
    conversions: Iterable[ConversionFact],
    refunds: Iterable[RefundFact],
    clicks: Iterable[ClickTally],
) -> tuple[Line, ...]:
    return run(
        EVERYTHING,
        conversions,
        refunds,
        clicks,
        confirmed={"o-4": "ev-conf-4"},
        lock_days=7,
        confirm=True,
    )


def test_the_same_facts_in_any_order_give_identical_lines() -> None:
    expected = mixed_lines(MIXED_CONVERSIONS, MIXED_REFUNDS, MIXED_CLICKS)
    assert {line.kind for line in expected} == {
        "sale",
        "lead",
        "action",
        "click",
        "base_fee",
        "bonus",
        "clawback",
    }
    assert any(line.cap_cuts for line in expected)
    assert len({line.line_id for line in expected}) == len(expected)
    shuffler = random.Random(20261101)
    for _ in range(25):
        conversions, refunds, clicks = (
            list(MIXED_CONVERSIONS),
            list(MIXED_REFUNDS),
            list(MIXED_CLICKS),
        )
        for facts in (conversions, refunds, clicks):
            shuffler.shuffle(facts)
        assert mixed_lines(conversions, refunds, clicks) == expected
    backwards = mixed_lines(MIXED_CONVERSIONS[::-1], MIXED_REFUNDS[::-1], MIXED_CLICKS[::-1])
    assert backwards == expected


def test_lines_come_in_event_time_order_and_respect_the_caps() -> None:
    lines = mixed_lines(MIXED_CONVERSIONS, MIXED_REFUNDS, MIXED_CLICKS)
    accruals = [line for line in lines if line.kind != "clawback"]
    assert [a.occurred_at for a in accruals] == sorted(a.occurred_at for a in accruals)
    assert sum(a.amount_minor for a in accruals) <= 4_500
    for who in {a.affiliate_id for a in accruals}:
        assert sum(a.amount_minor for a in accruals if a.affiliate_id == who) <= 3_000


# --- a conversion replaced by a correction (a late click won the order) -------------------
# Its reversal of reason "reattributed" takes back the whole remaining amount: a reduction
# while the line is pending, a clawback once approved, the reason on the line. The new
# conversion is paid as if it had been the order's from the start.

LEAD_20: dict[str, object] = {"lead_minor": 2_000}


def superseded(c: ConversionFact, at: int, remaining: int) -> RefundFact:
    """The reversal a correction makes of ``c`` at ``at``: everything still left of it."""
    return RefundFact(
        reversal_id=f"rev-reattributed-{c.conversion_id}",
        event_id=f"ev-reattributed-{c.conversion_id}",
        order_id=c.order_id,
        amount_minor=remaining,
        occurred_at=at,
        conversion_id=c.conversion_id,
        reason="reattributed",
    )


def taken_over(c: ConversionFact, who: str) -> ConversionFact:
    """The correction's conversion of the same order, for ``who``."""
    return replace(
        c, conversion_id=f"{c.conversion_id}-{who}", event_id=f"ev-{who}", affiliate_id=who
    )


def net(lines: tuple[Line, ...], who: str) -> int:
    return sum(line.amount_minor for line in lines if line.affiliate_id == who)


@dataclass(frozen=True)
class ReattributionCase:
    name: str
    corrected_at: int  # event time of the reattributed reversal
    anna_sale_line: int  # what anna's sale line still pays
    anna_clawbacks: tuple[int, ...]
    rule_has: str


REATTRIBUTION_CASES = [
    # pending: the line is reduced to nothing, the reason is on it
    ReattributionCase(
        "pending", APPROVE - 1, 0, (), "reattributed to another click before approval"
    ),
    # approved: the line stays, a clawback takes it all back
    ReattributionCase("approved", APPROVE, 1_000, (-1_000,), "sale:"),
]


@pytest.mark.parametrize("case", REATTRIBUTION_CASES, ids=lambda c: c.name)
def test_a_reattributed_sale_goes_to_the_new_creator_in_every_lifecycle_state(
    case: ReattributionCase,
) -> None:
    anna = conv(1, SALE_AT)
    ben = taken_over(anna, "ben")
    lines = run(PERCENT_10, [anna, ben], [superseded(anna, case.corrected_at, 10_000)])
    (anna_line,) = [x for x in of_kind(lines, "sale") if x.affiliate_id == "anna"]
    assert anna_line.amount_minor == case.anna_sale_line
    assert case.rule_has in anna_line.rule
    clawbacks = of_kind(lines, "clawback")
    assert tuple(x.amount_minor for x in clawbacks) == case.anna_clawbacks
    assert all("reattributed" in x.rule and x.affiliate_id == "anna" for x in clawbacks)
    assert (net(lines, "anna"), net(lines, "ben")) == (0, 1_000)
    assert net(lines, "ben") == net(run(PERCENT_10, [replace(anna, affiliate_id="ben")]), "ben")


def test_a_reattribution_after_a_partial_refund_moves_only_what_is_left() -> None:
    anna = conv(1, SALE_AT)
    ben = taken_over(anna, "ben")
    first_refund = replace(refund(1, 2_500, SALE_AT + DAY), conversion_id=anna.conversion_id)
    reapplied = replace(
        first_refund,
        reversal_id="rev-1-ben",
        event_id="ev-rev-ben",
        conversion_id=ben.conversion_id,
    )
    lines = run(
        PERCENT_10,
        [anna, ben],
        [first_refund, superseded(anna, SALE_AT + 2 * DAY, 7_500), reapplied],
    )
    assert (net(lines, "anna"), net(lines, "ben")) == (0, 750)


def test_a_superseded_sale_is_not_a_net_sale_for_tiers_or_base_fees() -> None:
    plan = {**PERCENT_10, "base_fee_minor": 500}
    anna = conv(1, SALE_AT)
    ben = taken_over(anna, "ben")
    lines = run(plan, [anna, ben], [superseded(anna, APPROVE - 1, 10_000)])
    assert [x.affiliate_id for x in of_kind(lines, "base_fee")] == ["ben"]


@pytest.mark.parametrize(("offset", "clawback"), [(-1, ()), (0, (-2_000,))])
def test_a_reattributed_lead_fee_is_taken_back_even_with_no_amount(
    offset: int, clawback: tuple[int, ...]
) -> None:
    anna = conv(1, SALE_AT, amount=0, kind="lead")
    ben = taken_over(anna, "ben")
    lines = run(LEAD_20, [anna, ben], [superseded(anna, APPROVE + offset, 0)])
    assert tuple(x.amount_minor for x in of_kind(lines, "clawback")) == clawback
    assert (net(lines, "anna"), net(lines, "ben")) == (0, 2_000)

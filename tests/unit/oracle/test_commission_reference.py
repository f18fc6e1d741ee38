"""The commission reference (ledger v2) at its boundaries, hand-computed, and its invariants.

Each case builds the facts of one campaign-period (November 2026, whose end on
1 December is the boundary for net sales) and lists every line the reference must
give with its dated components. Lines are named for reading: ``conv-N`` is the
line of conversion N, ``click:anna``, ``base_fee:anna`` and ``bonus:anna:3`` the
period lines. Terms lock for 10 days unless a case says otherwise, so ``due(n)`` is
the approval time of a fact on day ``n``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afflux.oracle import (
    TargetLine,
    balances,
    net_per_order,
    reference_from_events,
    reference_lines,
    target_amounts,
)
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import (
    ClickTally,
    ConversionFact,
    RefundFact,
)
from afflux.shared.core.ids import derived_id
from afflux.shared.core.periods import day_of, period_bounds
from afflux.shared.core.terms import CampaignTerms, TermsVersion, terms_in_force
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    LeadConfirmed,
)

pytestmark = pytest.mark.unit

DAY = MS_PER_DAY
PERIOD = "2026-11"
START, END = period_bounds(PERIOD)
LOCK_DAYS = 10
CREATORS = ("anna", "bob", "carl")

Plan = Mapping[str, object]
PERCENT_10: Plan = {"sale": {"rate": {"percent": "10"}}}
TIER_AT_2: Plan = {**PERCENT_10, "tiers": [{"from_sales": 2, "rate": {"percent": "20"}}]}


def day(n: int) -> int:
    """Event time ``n`` days into the period (day 0 is 1 November 00:00 UTC)."""
    return START + n * DAY


def due(n: int) -> int:
    """When a line dated on day ``n`` is approved under the default lock."""
    return day(n + LOCK_DAYS)


def click_due(n: int) -> int:
    """When day ``n``'s click line (dated at the day's last millisecond) is approved."""
    return due(n) + DAY - 1


def terms(plan: Plan, lock_days: int = LOCK_DAYS, confirm: bool = False) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "lead_confirmation_required": confirm,
            "plan": dict(plan),
        }
    )


def version(
    plan: Plan,
    number: int = 1,
    effective_from: int = 0,
    lock_days: int = LOCK_DAYS,
    confirm: bool = False,
) -> TermsVersion:
    return TermsVersion(
        version=number,
        effective_from=effective_from,
        published_at=0,
        terms=terms(plan, lock_days, confirm),
    )


def conv(
    n: int,
    at: int,
    amount: int = 1_000,
    who: str = "anna",
    new: bool = False,
    kind: str = "sale",
    action: str | None = None,
    order: str | None = None,
    terms_version: int = 1,
) -> ConversionFact:
    """Conversion ``conv-n`` of order ``o-n`` (unless ``order`` names another)."""
    return ConversionFact(
        conversion_id=f"conv-{n}",
        event_id=f"ev-{n}",
        order_id=order or f"o-{n}",
        affiliate_id=who,
        kind=kind,
        action=action,
        amount_minor=amount,
        currency="EUR",
        new_customer=new,
        occurred_at=at,
        terms_version=terms_version,
    )


def refund(
    n: int, amount: int, at: int, seq: int = 1, reason: str = "refund", named: bool = True
) -> RefundFact:
    """Reversal ``rev-n-seq`` of conversion ``conv-n`` (by order only when not ``named``)."""
    return RefundFact(
        reversal_id=f"rev-{n}-{seq}",
        event_id=f"ev-rev-{n}-{seq}",
        order_id=f"o-{n}",
        amount_minor=amount,
        occurred_at=at,
        conversion_id=f"conv-{n}" if named else "",
        reason=reason,
    )


def label_of(period: str = PERIOD) -> dict[str, str]:
    """line id -> the readable name of every line a case can produce."""
    names = {f"conv-{n}": derived_id("line", f"conv-{n}") for n in range(1, 20)}
    for who in CREATORS:
        for kind in ("click", "base_fee"):
            names[f"{kind}:{who}"] = derived_id("line", kind, "camp", period, who)
        for at in range(1, 10):
            names[f"bonus:{who}:{at}"] = derived_id("line", "bonus", "camp", period, who, str(at))
        for n in range(0, 30):  # per-click pay: a line per day with clicks
            date = day_of(day(n))
            names[f"click:{who}:{n}"] = derived_id("line", "click", "camp", period, who, date)
    return {line_id: name for name, line_id in names.items()}


LABELS = label_of()
Parts = tuple[tuple[int, str, int], ...]  # (approve_at, name, amount) per component


def readable(lines: Iterable[TargetLine]) -> dict[str, Parts]:
    return {
        LABELS[line.line_id]: tuple((c.approve_at, c.name, c.amount_minor) for c in line.components)
        for line in lines
    }


@dataclass(frozen=True)
class Case:
    name: str
    plan: Plan
    expect: Mapping[str, Parts]  # every line, with its components
    conversions: tuple[ConversionFact, ...] = ()
    refunds: tuple[RefundFact, ...] = ()
    clicks: tuple[ClickTally, ...] = ()
    confirmations: Mapping[str, str] = field(default_factory=dict)
    confirm: bool = False
    versions: tuple[TermsVersion, ...] = ()  # instead of ``plan`` alone as version 1

    def lines(self) -> tuple[TargetLine, ...]:
        versions = self.versions or (version(self.plan, confirm=self.confirm),)
        return reference_lines(
            "camp",
            PERIOD,
            self.conversions,
            self.refunds,
            self.confirmations,
            self.clicks,
            versions,
        )


REATTRIBUTED = "reattributed"
# conv-1 was anna's until a correction gave order o-1 to bob (conv-2) on day 3, or on day 20.
CORRECTED = (conv(1, day(1)), conv(2, day(1), who="bob", order="o-1"))
V1_THEN_V2 = (
    version({**PERCENT_10, "base_fee_minor": 1_000, "creator_cap_minor": 5_000}),
    version(
        {"sale": {"rate": {"percent": "20"}}, "base_fee_minor": 2_000, "creator_cap_minor": 100},
        number=2,
        effective_from=day(15),
        lock_days=5,
    ),
)

CASES = [
    # the from_sales-th net sale is the first at the tier rate, one before is not; ranks per creator
    Case(
        "tier boundary rank",
        TIER_AT_2,
        {
            "conv-1": ((due(1), "accrual", 100),),
            "conv-2": ((due(2), "accrual", 200),),
            "conv-3": ((due(3), "accrual", 100),),
        },
        conversions=(conv(1, day(1)), conv(2, day(2)), conv(3, day(3), who="bob")),
    ),
    # a new customer's sale is paid the new-customer rate even inside a tier
    Case(
        "new-customer rate beats tier",
        {
            "sale": {"rate": {"percent": "10"}, "new_customer": {"percent": "20"}},
            "tiers": [{"from_sales": 1, "rate": {"percent": "50"}}],
        },
        {"conv-1": ((due(1), "accrual", 200),), "conv-2": ((due(2), "accrual", 500),)},
        conversions=(conv(1, day(1), new=True), conv(2, day(2))),
    ),
    # half of 1010 refunded 1 ms before approval: 101 * 505 / 1010 = 50.5 -> 51 back
    Case(
        "partial refund before approval, pro rata half up",
        PERCENT_10,
        {"conv-1": ((due(1), "accrual", 101), (due(1), "refund", -51))},
        conversions=(conv(1, day(1), 1_010),),
        refunds=(refund(1, 505, due(1) - 1),),
    ),
    # a refund at the approval instant is taken back as a clawback dated then
    Case(
        "refund exactly at approve_at is a clawback",
        PERCENT_10,
        {"conv-1": ((due(1), "accrual", 100), (due(1), "clawback:rev-1-1", -25))},
        conversions=(conv(1, day(1)),),
        refunds=(refund(1, 250, due(1)),),
    ),
    # thirds of 101 are 33.7 each: the cumulative share gives 34, 33, 34, never 3 x 34
    Case(
        "several clawbacks round to no more than the line",
        PERCENT_10,
        {
            "conv-1": (
                (due(1), "accrual", 101),
                (day(12), "clawback:rev-1-1", -34),
                (day(13), "clawback:rev-1-2", -33),
                (day(14), "clawback:rev-1-3", -34),
            )
        },
        conversions=(conv(1, day(1), 1_010),),
        refunds=(
            refund(1, 337, day(12), 1),
            refund(1, 337, day(13), 2),
            refund(1, 336, day(14), 3),
        ),
    ),
    # refunded in full 1 ms before the end: no net sale, sale 2 is net sale 1, no milestone
    Case(
        "full refund before period end drops the net sale",
        {**TIER_AT_2, "milestones": [{"at_sales": 2, "bonus_minor": 500}]},
        {
            "conv-1": ((due(1), "accrual", 100), (END - 1, "clawback:rev-1-1", -100)),
            "conv-2": ((due(2), "accrual", 100),),
        },
        conversions=(conv(1, day(1)), conv(2, day(2))),
        refunds=(refund(1, 1_000, END - 1),),
    ),
    # refunded in full at the end: still net sale 1, sale 2 in the tier, milestone dated day 2
    Case(
        "full refund after period end keeps the net sale",
        {**TIER_AT_2, "milestones": [{"at_sales": 2, "bonus_minor": 500}]},
        {
            "conv-1": ((due(1), "accrual", 100), (END, "clawback:rev-1-1", -100)),
            "conv-2": ((due(2), "accrual", 200),),
            "bonus:anna:2": ((due(2), "accrual", 500),),
        },
        conversions=(conv(1, day(1)), conv(2, day(2))),
        refunds=(refund(1, 1_000, END),),
    ),
    # corrected before approval: anna's line is refunded whole, she has no activity
    Case(
        "reattributed before approval",
        {**PERCENT_10, "base_fee_minor": 300},
        {
            "conv-1": ((due(1), "accrual", 100), (due(1), "refund", -100)),
            "conv-2": ((due(1), "accrual", 100),),
            "base_fee:bob": ((due(1), "accrual", 300),),
        },
        conversions=CORRECTED,
        refunds=(refund(1, 1_000, day(3), reason=REATTRIBUTED),),
    ),
    # corrected after approval and a partial clawback: the correction takes the rest back
    Case(
        "reattributed after approval",
        {**PERCENT_10, "base_fee_minor": 300},
        {
            "conv-1": (
                (due(1), "accrual", 100),
                (day(12), "clawback:rev-1-1", -50),
                (day(20), "clawback:rev-1-2", -50),
            ),
            "conv-2": ((due(1), "accrual", 100),),
            "base_fee:bob": ((due(1), "accrual", 300),),
        },
        conversions=CORRECTED,
        refunds=(refund(1, 500, day(12), 1), refund(1, 500, day(20), 2, reason=REATTRIBUTED)),
    ),
    # an approved action keeps its fee through a refund; a correction takes it all back
    Case(
        "approved action: refund takes nothing, correction takes all",
        {"actions_minor": {"install": 150}},
        {
            "conv-1": ((due(1), "accrual", 150), (day(20), "clawback:rev-1-2", -150)),
            "conv-2": ((due(1), "accrual", 150),),
        },
        conversions=(
            conv(1, day(1), kind="install"),
            conv(2, day(1), who="bob", kind="install", order="o-1"),
        ),
        refunds=(refund(1, 400, day(12), 1), refund(1, 600, day(20), 2, reason=REATTRIBUTED)),
    ),
    # a refund naming no conversion belongs to its order's first conversion
    Case(
        "refund without a conversion id",
        PERCENT_10,
        {
            "conv-1": ((due(1), "accrual", 100), (due(1), "refund", -50)),
            "conv-2": ((due(2), "accrual", 100),),
        },
        conversions=(conv(1, day(1)), conv(2, day(2), who="bob", order="o-1")),
        refunds=(refund(1, 500, day(3), named=False),),
    ),
    # a lead the terms want confirmed is paid only for the confirmed order
    Case(
        "lead requiring confirmation",
        {"lead_minor": 300},
        {"conv-2": ((due(2), "accrual", 300),)},
        conversions=(conv(1, day(1), 0, kind="lead"), conv(2, day(2), 0, kind="lead")),
        confirmations={"o-2": "ev-confirm-2"},
        confirm=True,
    ),
    # an action the plan does not name gets no line; the install kind is its own action
    Case(
        "action not in map",
        {"actions_minor": {"install": 150}},
        {"conv-2": ((due(2), "accrual", 150),)},
        conversions=(
            conv(1, day(1), kind="action", action="signup"),
            conv(2, day(2), kind="install"),
        ),
    ),
    # one click over the paid-click cap, at it, one under
    Case(
        "click cap",
        {"click": {"per_click_minor": 5, "paid_click_cap": 100}},
        {
            "click:anna:2": ((click_due(2), "accrual", 500),),
            "click:bob:3": ((click_due(3), "accrual", 500),),
            "click:carl:4": ((click_due(4), "accrual", 495),),
        },
        clicks=(
            ClickTally("anna", 101, day(2)),
            ClickTally("bob", 100, day(3)),
            ClickTally("carl", 99, day(4)),
        ),
    ),
    # a zero paid-click cap: the creator's click line pays nothing
    Case(
        "zero click cap",
        {"click": {"per_click_minor": 5, "paid_click_cap": 0}},
        {"click:anna:2": ()},
        clicks=(ClickTally("anna", 10, day(2)),),
    ),
    # clicks before the first sale date the fee; an unpaid lead is activity; no valid click is none
    Case(
        "base fee dated at first activity",
        {**PERCENT_10, "base_fee_minor": 1_000},
        {
            "conv-1": ((due(5), "accrual", 100),),
            "base_fee:anna": ((due(3), "accrual", 1_000),),
            "base_fee:carl": ((due(4), "accrual", 1_000),),
        },
        conversions=(conv(1, day(5)), conv(2, day(4), 0, who="carl", kind="lead")),
        clicks=(ClickTally("anna", 4, day(3)), ClickTally("bob", 0, day(1))),
    ),
    # the bonus for 2 net sales is dated at the second; 4 is never reached
    Case(
        "milestone dated at the at_sales-th net sale",
        {
            **PERCENT_10,
            "milestones": [
                {"at_sales": 2, "bonus_minor": 500},
                {"at_sales": 4, "bonus_minor": 900},
            ],
        },
        {
            "conv-1": ((due(1), "accrual", 100),),
            "conv-2": ((due(3), "accrual", 100),),
            "conv-3": ((due(5), "accrual", 100),),
            "bonus:anna:2": ((due(3), "accrual", 500),),
        },
        conversions=(conv(1, day(1)), conv(2, day(3)), conv(3, day(5))),
    ),
    # cap 150 over 100 + 100 + 100, sale 1 clawed back by 40 after approval: 60 + 90 + 0
    Case(
        "creator cap cut, a later refund releases room to the next line",
        {**PERCENT_10, "creator_cap_minor": 150},
        {
            "conv-1": ((due(1), "accrual", 100), (day(20), "clawback:rev-1-1", -40)),
            "conv-2": ((due(2), "accrual", 100), (due(2), "cap:creator", -10)),
            "conv-3": ((due(3), "accrual", 100), (due(3), "cap:creator", -100)),
        },
        conversions=(conv(1, day(1)), conv(2, day(2)), conv(3, day(3))),
        refunds=(refund(1, 400, day(20)),),
    ),
    # budget 250: 100 + 100 + (creator cap leaves 50) + (cap leaves 50, budget leaves 0)
    Case(
        "campaign budget across two creators",
        {**PERCENT_10, "creator_cap_minor": 150, "campaign_budget_minor": 250},
        {
            "conv-1": ((due(1), "accrual", 100),),
            "conv-2": ((due(2), "accrual", 100),),
            "conv-3": ((due(3), "accrual", 100), (due(3), "cap:creator", -50)),
            "conv-4": (
                (due(4), "accrual", 100),
                (due(4), "cap:creator", -50),
                (due(4), "cap:campaign", -50),
            ),
        },
        conversions=(
            conv(1, day(1)),
            conv(2, day(2), who="bob"),
            conv(3, day(3)),
            conv(4, day(4), who="bob"),
        ),
    ),
    # v2 from day 15: the sale takes v2's rate and lock; fee, cap and their lock stay v1's
    Case(
        "period terms are the version in force at period start",
        {},
        {
            "conv-1": ((day(25), "accrual", 200),),
            "base_fee:anna": ((due(20), "accrual", 1_000),),
        },
        conversions=(conv(1, day(20), terms_version=2),),
        versions=V1_THEN_V2,
    ),
    # a version effective at the period's first millisecond is the period's terms
    Case(
        "version effective exactly at period start",
        {},
        {
            "conv-1": ((day(6), "accrual", 200),),
            "base_fee:anna": ((day(6), "accrual", 2_000),),
        },
        conversions=(conv(1, day(1), terms_version=2),),
        versions=(
            V1_THEN_V2[0],
            version(
                {"sale": {"rate": {"percent": "20"}}, "base_fee_minor": 2_000},
                number=2,
                effective_from=START,
                lock_days=5,
            ),
        ),
    ),
    # no facts: no lines
    Case("empty period", {**PERCENT_10, "base_fee_minor": 1_000}, {}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reference_lines_at_each_boundary(case: Case) -> None:
    lines = case.lines()
    assert readable(lines) == case.expect
    for line in lines:
        assert line.pays_minor == sum(c.amount_minor for c in line.components)


def test_comparable_targets_sum_components_per_approval_time() -> None:
    case = next(c for c in CASES if c.name == "refund exactly at approve_at is a clawback")
    lines = case.lines()
    line_id = derived_id("line", "conv-1")
    # accrual and clawback share the approval instant: one target of 75
    assert target_amounts(lines) == {(line_id, due(1)): 75}
    assert net_per_order(lines) == {"o-1": 75}
    assert balances(lines, due(1) - 1) == {"anna": (75, 0)}
    assert balances(lines, due(1)) == {"anna": (0, 75)}


def test_balances_approve_each_component_at_its_own_time() -> None:
    case = next(c for c in CASES if c.name == "several clawbacks round to no more than the line")
    lines = case.lines()
    # 101 approved on day 11, then 34 and 33 taken back; the last 34 is still pending
    assert balances(lines, day(13)) == {"anna": (-34, 34)}
    # everything taken back: nothing owed, nothing listed
    assert balances(lines, day(14)) == {}
    assert net_per_order(lines) == {}


def test_reattributed_order_nets_to_the_new_creator_alone() -> None:
    case = next(c for c in CASES if c.name == "reattributed after approval")
    lines = case.lines()
    assert net_per_order(lines) == {"o-1": 100}
    assert balances(lines, END + 60 * DAY) == {"bob": (0, 400)}


# -- from events ----------------------------------------------------------------------

VERSIONS = {"camp": (version({**PERCENT_10, "click": {"per_click_minor": 5}, "lead_minor": 300}),)}


def attributed(
    n: int, at: int, amount: int = 1_000, kind: str = "sale", currency: str = "EUR"
) -> ConversionAttributed:
    return ConversionAttributed.model_validate(
        {
            "event_id": f"ev-{n}",
            "occurred_at": at,
            "conversion_id": f"conv-{n}",
            "order_id": f"o-{n}",
            "campaign_id": "camp",
            "affiliate_id": "anna",
            "reason": "click_id",
            "model": "last_click",
            "window_ms": 30 * DAY,
            "terms_version": 1,
            "kind": kind,
            "amount_minor": amount,
            "currency": currency,
            "order_event_id": f"ev-order-{n}",
        }
    )


def reversed_(n: int, amount: int, at: int, order_at: int) -> ConversionReversed:
    return ConversionReversed(
        event_id=f"ev-rev-{n}",
        occurred_at=at,
        reversal_id=f"rev-{n}-1",
        refund_id=f"refund-{n}",
        conversion_id=f"conv-{n}",
        order_id=f"o-{n}",
        campaign_id="camp",
        affiliate_id="anna",
        amount_minor=amount,
        requested_minor=amount,
        refunded_total_minor=amount,
        order_amount_minor=1_000,
        currency="EUR",
        order_occurred_at=order_at,
    )


def click(click_id: str, at: int, flags: tuple[str, ...] = (), bot: bool = False) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{click_id}-{at}",
        occurred_at=at,
        click_id=click_id,
        link_code="code",
        affiliate_id="anna",
        campaign_id="camp",
        visitor_id="v",
        is_bot=bot,
        flags=flags,
    )


def test_a_reversal_lands_in_its_orders_period() -> None:
    # ordered on 30 November, refunded on 5 December, before approval (10 December)
    events = [attributed(1, day(29)), reversed_(1, 500, END + 4 * DAY, day(29))]
    assert readable(reference_from_events(events, VERSIONS)[("camp", PERIOD)]) == {
        "conv-1": ((due(29), "accrual", 100), (due(29), "refund", -50))
    }
    assert list(reference_from_events(events, VERSIONS)) == [("camp", PERIOD)]


def test_a_click_counts_once_per_id_and_only_without_flags() -> None:
    events = [
        click("c-dup-flag", day(1), flags=("duplicate",)),  # first copy flagged: never counted
        click("c-dup-flag", day(1)),
        click("c-bot", day(1), bot=True),  # a legacy bot flag is a reason too
        click("c-rate", day(2), flags=("rate",)),
        click("c-1", day(4)),
        click("c-1", day(4)),  # the same click again
        click("c-2", day(3)),  # the first valid click, arriving late
    ]
    assert readable(reference_from_events(events, VERSIONS)[("camp", PERIOD)]) == {
        "click:anna:3": ((click_due(3), "accrual", 5),),
        "click:anna:4": ((click_due(4), "accrual", 5),),
    }


def test_a_lead_confirmed_before_its_conversion_arrives_is_paid() -> None:
    versions = {"camp": (version({"lead_minor": 300}, confirm=True),)}
    confirmed = LeadConfirmed(
        event_id="ev-confirm", occurred_at=day(2), order_id="o-1", campaign_id="camp"
    )
    events = [
        confirmed,
        attributed(1, day(1), 0, kind="lead"),
        attributed(2, day(1), 0, kind="lead"),
    ]
    assert readable(reference_from_events(events, versions)[("camp", PERIOD)]) == {
        "conv-1": ((due(1), "accrual", 300),)
    }


@pytest.mark.parametrize(
    "refused",
    [
        attributed(1, day(1), currency="USD"),  # another currency than the campaign's
        attributed(1, day(1), amount=10**12 + 1),  # above the default max_order_minor
        attributed(1, day(1)).model_copy(update={"campaign_id": "other"}),  # no terms
    ],
)
def test_a_conversion_the_ledger_refuses_counts_for_nothing(refused: ConversionAttributed) -> None:
    assert reference_from_events([refused], VERSIONS) == {}


# -- properties -------------------------------------------------------------------------

rates = st.one_of(
    st.sampled_from(["0", "5", "10", "12.5", "33.3333"]).map(lambda p: {"percent": p}),
    st.integers(0, 500).map(lambda f: {"fixed_minor": f}),
)


@st.composite
def plans(draw: st.DrawFn, caps: bool = True) -> dict[str, object]:
    plan: dict[str, object] = {}
    if draw(st.booleans()):
        sale: dict[str, object] = {"rate": draw(rates)}
        if draw(st.booleans()):
            sale["new_customer"] = draw(rates)
        plan["sale"] = sale
        starts = draw(st.lists(st.integers(1, 5), max_size=2, unique=True))
        plan["tiers"] = [{"from_sales": s, "rate": draw(rates)} for s in sorted(starts)]
    plan["lead_minor"] = draw(st.none() | st.integers(0, 400))
    plan["actions_minor"] = draw(
        st.dictionaries(st.sampled_from(["install", "signup"]), st.integers(0, 300))
    )
    if draw(st.booleans()):
        plan["click"] = {
            "per_click_minor": draw(st.integers(0, 20)),
            "paid_click_cap": draw(st.none() | st.integers(0, 30)),
        }
    plan["base_fee_minor"] = draw(st.none() | st.integers(0, 500))
    at = draw(st.lists(st.integers(1, 5), max_size=2, unique=True))
    plan["milestones"] = [
        {"at_sales": a, "bonus_minor": draw(st.integers(0, 900))} for a in sorted(at)
    ]
    if caps:
        plan["creator_cap_minor"] = draw(st.none() | st.integers(0, 2_000))
        plan["campaign_budget_minor"] = draw(st.none() | st.integers(0, 4_000))
    return plan


@dataclass(frozen=True)
class Facts:
    versions: tuple[TermsVersion, ...]
    conversions: tuple[ConversionFact, ...]
    refunds: tuple[RefundFact, ...]
    confirmations: dict[str, str]
    clicks: tuple[ClickTally, ...]

    def lines(self) -> tuple[TargetLine, ...]:
        return reference_lines(
            "camp",
            PERIOD,
            self.conversions,
            self.refunds,
            self.confirmations,
            self.clicks,
            self.versions,
        )


@st.composite
def period_facts(
    draw: st.DrawFn,
    caps: bool = True,
    versions: int = 2,
    lock_days: int | None = None,
    named_corrections: bool = False,
) -> Facts:
    """Random facts of one period; refunds up to 60 days after it, reasons mixed."""
    chosen = []
    for number in range(1, versions + 1):
        chosen.append(
            TermsVersion(
                version=number,
                effective_from=0 if number == 1 else draw(st.integers(START, END)),
                published_at=0,
                terms=terms(
                    draw(plans(caps)),
                    draw(st.integers(0, 40)) if lock_days is None else lock_days,
                    draw(st.booleans()),
                ),
            )
        )
    conversions = tuple(
        ConversionFact(
            conversion_id=f"conv-{n}",
            event_id=f"ev-{n}",
            order_id=f"o-{draw(st.integers(0, 6))}",
            affiliate_id=draw(st.sampled_from(CREATORS)),
            kind=(kind := draw(st.sampled_from(["sale", "sale", "lead", "install", "action"]))),
            action=draw(st.sampled_from([None, "signup"])) if kind == "action" else None,
            amount_minor=draw(st.integers(0, 5_000)),
            currency="EUR",
            new_customer=draw(st.booleans()),
            occurred_at=draw(st.integers(START, END - 1)),
            terms_version=draw(st.integers(1, versions)),
        )
        for n in range(draw(st.integers(0, 10)))
    )
    refunds = tuple(
        RefundFact(
            reversal_id=f"rev-{n}",
            event_id=f"ev-rev-{n}",
            order_id=(target := draw(st.sampled_from(conversions))).order_id,
            amount_minor=draw(st.integers(0, 3_000)),
            occurred_at=draw(st.integers(START, END + 60 * DAY)),
            reason=(reason := draw(st.sampled_from(["refund", "refund", "refund", REATTRIBUTED]))),
            conversion_id=(
                target.conversion_id
                if named_corrections and reason == REATTRIBUTED
                else draw(st.sampled_from([target.conversion_id, target.conversion_id, ""]))
            ),
        )
        for n in range(draw(st.integers(0, 8)) if conversions else 0)
    )
    orders = sorted({c.order_id for c in conversions})
    confirmations = (
        {o: f"ev-confirm-{o}" for o in draw(st.lists(st.sampled_from(orders)))} if orders else {}
    )
    clicks = tuple(
        ClickTally(who, draw(st.integers(0, 40)), draw(st.integers(START, END - 1)))
        for who in CREATORS
        if draw(st.booleans())
    )
    return Facts(tuple(chosen), conversions, refunds, confirmations, clicks)


@settings(max_examples=300, deadline=None)
@given(period_facts())
def test_no_line_pays_below_zero_or_past_a_cap(facts: Facts) -> None:
    lines = facts.lines()
    plan = terms_in_force(facts.versions, START).terms.plan
    per_creator: dict[str, int] = defaultdict(int)
    for line in lines:
        assert line.pays_minor >= 0
        assert line.pays_minor == sum(c.amount_minor for c in line.components)
        per_creator[line.affiliate_id] += line.pays_minor
    if plan.creator_cap_minor is not None:
        assert max(per_creator.values(), default=0) <= plan.creator_cap_minor
    if plan.campaign_budget_minor is not None:
        assert sum(per_creator.values()) <= plan.campaign_budget_minor
    # the comparable views carry the same money
    assert sum(target_amounts(lines).values()) == sum(per_creator.values())
    assert sum(net_per_order(lines).values()) == sum(
        line.pays_minor for line in lines if line.order_id is not None
    )
    for as_of in (START, END, END + 120 * DAY):
        held = balances(lines, as_of)
        for who in CREATORS:
            assert sum(held.get(who, (0, 0))) == per_creator[who]

"""A renewal written straight to the topic whose ``renewal_order_id`` is another order's id
(``POST /v1/renewals`` refuses it with a 409) is void, whatever the arrival order: an
order id is its order's. Its first order's key may pay it before the order's outcome
reaches the renewal order's key; the refund stage then reverses that conversion whole,
dated at the renewal's own time, gives the order its refunds and its own renewals, and
the money (per creator, per order, per approval date in the ledger) is the batch
oracle's for every interleaving. Before, the two shared one conversion id, and the
order's refunds went to whichever the stage read first."""

from __future__ import annotations

from itertools import permutations

import pytest

from afflux.attribution.join import JoinPartition, Output
from afflux.attribution.refunds import RefundPartition
from afflux.oracle import attribute
from afflux.oracle.commission import balances, net_per_order, reference_from_events
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.core.whatif.replay import replay
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    SubscriptionRenewed,
)
from afflux.shared.whatif_decode import LogReader

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "subs",
        "merchant_id": "m",
        "currency": "EUR",
        "grace_seconds": 1,
        "lock_days": 10,
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "recurring": {"rate": {"percent": "20"}, "max_renewals": 12},
        },
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def at_terms(campaign: str, at: int) -> TermsVersion:
    return VERSIONS[0]


def click(visitor: str, creator: str, at: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{visitor}",
        occurred_at=at,
        click_id=f"{visitor}.c",
        link_code="l",
        affiliate_id=creator,
        campaign_id="subs",
        visitor_id=visitor,
    )


def order(order_id: str, visitor: str, at: int, amount: int) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{order_id}",
        occurred_at=at,
        order_id=order_id,
        campaign_id="subs",
        merchant_id="m",
        amount_minor=amount,
        currency="EUR",
        visitor_id=visitor,
    )


def renewal(first: str, renewal_order: str, at: int, amount: int) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        event_id=f"ev-{renewal_order}-of-{first}",
        occurred_at=at,
        order_id=first,
        renewal_order_id=renewal_order,
        renewal_number=1,
        campaign_id="subs",
        merchant_id="m",
        amount_minor=amount,
        currency="EUR",
    )


REFUND = OrderRefunded(
    event_id="ev-rf",
    occurred_at=T0 + 31 * DAY,
    refund_id="rf",
    order_id="order-x",
    campaign_id="subs",
    amount_minor=3_000,
    currency="EUR",
)
# ana wins the subscription's first order; ben (or nobody) the order "order-x". A renewal
# of order-a names order-x as its renewal order; order-x renews itself too.
VOID = renewal("order-a", "order-x", T0 + 30 * DAY, 2_000)
OWN = renewal("order-x", "order-x:renewal-1", T0 + 35 * DAY, 1_000)


def inputs(ben_clicked: bool) -> list[Envelope]:
    clicks = [click("va", "ana", T0 - DAY)] + ([click("vx", "ben", T0)] if ben_clicked else [])
    orders = [order("order-a", "va", T0, 5_000), order("order-x", "vx", T0 + DAY, 8_000)]
    return [*clicks, *orders, VOID, OWN, REFUND]


def run(ben_clicked: bool, arrival: tuple[str, ...]) -> list[Envelope]:
    """The join decides both orders; stage 2 settles order-a and its renewal, then takes
    order-x's outcome, the renewal's outcome (read back), the refund and order-x's own
    renewal in ``arrival`` order, restarting from its changelog after each."""
    join, stage = JoinPartition(), RefundPartition(terms=at_terms)
    for e in inputs(ben_clicked):
        if isinstance(e, ClickRecorded):
            join.click(e.visitor_id, e, 0, at_terms)
        elif isinstance(e, OrderPlaced):
            join.order(e.visitor_id or e.order_id, e, 0)
    outcomes = {getattr(e, "order_id", ""): e for _, _, e in join.due(10_000, at_terms)}
    published: list[Envelope] = list(outcomes.values())
    changelog: dict[str, bytes | None] = {}

    def deliver(event: Envelope, key: str, step: int) -> list[Output]:
        if isinstance(event, ConversionAttributed):
            return stage.conversion(key, event)
        if isinstance(event, OrderUnattributed):
            return stage.unattributed(key, event)
        if isinstance(event, OrderRefunded):
            return stage.refund(key, event, step)
        assert isinstance(event, SubscriptionRenewed)
        return stage.renewal(key, event, step)

    published += [e for _, _, e in deliver(outcomes["order-a"], "order-a", 0)]
    [(_, _, renewal_outcome)] = deliver(VOID, "order-a", 0)
    published.append(renewal_outcome)
    to_key_x = {
        "sale": outcomes["order-x"],
        "renewal": renewal_outcome,
        "refund": REFUND,
        "own": OWN,
    }
    for step, name in enumerate(arrival, 1):
        published += [e for _, _, e in deliver(to_key_x[name], "order-x", step)]
        changelog.update(stage.take_dirty())
        stage = RefundPartition(terms=at_terms)
        for key, value in changelog.items():
            if value is not None:
                stage.restore(key, value)
    return published


def owed(events: list[Envelope]) -> dict[str, int]:
    out: dict[str, int] = {}
    seen: set[str] = set()
    for e in events:
        if e.event_id in seen:
            continue
        seen.add(e.event_id)
        if isinstance(e, ConversionAttributed):
            out[e.affiliate_id] = out.get(e.affiliate_id, 0) + e.amount_minor
        elif isinstance(e, ConversionReversed):
            out[e.affiliate_id] = out.get(e.affiliate_id, 0) - e.amount_minor
    return {creator: net for creator, net in out.items() if net}


def ledger_money(events: list[Envelope]) -> tuple[dict[str, int], list[object]]:
    """What the ledger pays for these events: per order, and each creator's (pending,
    approved) at every date that matters."""
    lines = [
        line
        for period_lines in reference_from_events(events, {"subs": VERSIONS}).values()
        for line in period_lines
    ]
    dates = [T0 + n * DAY for n in (0, 11, 30, 35, 39, 41, 46, 60, 400)]
    return net_per_order(lines), [balances(lines, d) for d in dates]


def distinct_ids(events: list[Envelope]) -> None:
    by_id: dict[str, Envelope] = {}
    for e in events:
        assert by_id.setdefault(e.event_id, e) == e, f"two events under the id {e.event_id}"


ARRIVALS = list(permutations(("sale", "renewal", "refund", "own")))


@pytest.mark.parametrize("ben_clicked", [True, False], ids=["order won", "order unattributed"])
def test_a_renewal_naming_another_order_pays_nothing_in_any_arrival_order(
    ben_clicked: bool,
) -> None:
    want = attribute(inputs(ben_clicked), {"subs": VERSIONS})
    oracle = [*want.conversions, *want.reversals, *want.unmatched]
    # The void renewal earns ana nothing; ben keeps order-x less its refund and, when he
    # won it, earns its own renewal.
    expected = {"ana": 5_000, "ben": 8_000 - 3_000 + 1_000} if ben_clicked else {"ana": 5_000}
    assert owed(oracle) == expected
    for arrival in ARRIVALS:
        got = run(ben_clicked, arrival)
        distinct_ids(got)
        assert owed(got) == expected, arrival
        assert ledger_money(got) == ledger_money(oracle), arrival


def test_the_void_renewal_is_reversed_whole_at_its_own_time() -> None:
    got = run(True, ("renewal", "refund", "sale", "own"))
    void = [e for e in got if isinstance(e, ConversionReversed) and e.reason == "reattributed"]
    renewal_conversion = next(
        e
        for e in got
        if isinstance(e, ConversionAttributed) and e.kind == "renewal" and e.order_id == "order-x"
    )
    assert [(r.conversion_id, r.occurred_at) for r in void] == [
        (renewal_conversion.conversion_id, VOID.occurred_at)
    ]
    # The refund it had taken (2,000 of 3,000, capped at the renewal) is order-x's again.
    ben_refunds = [
        r.amount_minor for r in got if isinstance(r, ConversionReversed) and r.affiliate_id == "ben"
    ]
    assert ben_refunds == [3_000]


@pytest.mark.parametrize("ben_clicked", [True, False], ids=["order won", "order unattributed"])
def test_the_whatif_replay_pays_the_void_renewal_nothing_as_the_oracle(ben_clicked: bool) -> None:
    events = inputs(ben_clicked)
    reader = LogReader(CampaignLog("subs"))
    for event in events:
        reader.item(event.model_dump(mode="json"))
    want = attribute(events, {"subs": VERSIONS})
    lines = reference_from_events([*want.conversions, *want.reversals], {"subs": VERSIONS})
    pay: dict[str, int] = {}
    for found in lines.values():
        for line in found:
            pay[line.affiliate_id] = pay.get(line.affiliate_id, 0) + line.pays_minor

    got = replay(reader.log, VERSIONS).commission_by_creator()

    assert {a: v for a, v in got.items() if v} == {a: v for a, v in pay.items() if v}
    # ana: 10 % of her 5,000 only; ben (when he won order-x): 10 % of 8,000 less the
    # refund's share, and 20 % of order-x's own renewal.
    assert pay == ({"ana": 500, "ben": 500 + 200} if ben_clicked else {"ana": 500})

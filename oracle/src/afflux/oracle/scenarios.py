"""Seeded scenarios for the differential tests and the benchmark.

A scenario is a set of campaign terms (with a mid-scenario terms change) and a
list of events in the order they are to be produced: visitors clicking several
creators' links (some flagged bot or duplicate), orders at window edges
(exactly in, 1 ms out), orders produced before their clicks, coupon against
cookie, explicit click ids (own, stale, unknown), orders without a visitor,
redelivered clicks and orders, lead confirmations, partial and over-refunds,
refunds of orders nobody placed. Same seed, same scenario.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded, Envelope, LeadConfirmed, OrderPlaced, OrderRefunded

START_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
CREATORS = tuple(f"creator-{n:02d}" for n in range(1, 9))


def campaign_terms(grace_seconds: int) -> dict[str, tuple[TermsVersion, ...]]:
    """Four programs shaped like examples/campaigns.yaml; fashion changes terms on day 6."""

    def terms(**fields: object) -> CampaignTerms:
        return CampaignTerms.model_validate({"grace_seconds": grace_seconds, **fields})

    fashion = terms(
        campaign_id="acme-fashion",
        merchant_id="merchant-acme",
        currency="EUR",
        cookie_window_days=3,
        window_overrides_days={"creator-01": 5},
        model="last_click",
        coupons={"ANNA10": "creator-01", "BEN15": "creator-02"},
    )
    fashion_v2 = fashion.model_copy(update={"cookie_window_days": 2})
    apps = terms(
        campaign_id="globex-apps",
        merchant_id="merchant-globex",
        currency="USD",
        cookie_window_days=2,
        model="first_click",
        precedence=("coupon", "click_id", "cookie"),
        coupons={"DAVEAPP": "creator-04"},
    )
    leads = terms(
        campaign_id="initech-insurance",
        merchant_id="merchant-initech",
        currency="EUR",
        cookie_window_days=4,
        lead_confirmation_required=True,
    )
    news = terms(
        campaign_id="acme-newsletter",
        merchant_id="merchant-acme",
        currency="USD",
        cookie_window_days=1,
        precedence=("cookie", "coupon"),
        coupons={"FRANKNEWS": "creator-06"},
    )

    def v(n: int, t: CampaignTerms, at: int) -> TermsVersion:
        return TermsVersion(version=n, effective_from=at, published_at=at, terms=t)

    day6 = START_MS + 6 * MS_PER_DAY
    return {
        "acme-fashion": (v(1, fashion, START_MS), v(2, fashion_v2, day6)),
        "globex-apps": (v(1, apps, START_MS),),
        "initech-insurance": (v(1, leads, START_MS),),
        "acme-newsletter": (v(1, news, START_MS),),
    }


@dataclass
class Scenario:
    seed: int
    campaigns: dict[str, tuple[TermsVersion, ...]]
    events: list[Envelope] = field(default_factory=list)


def generate(
    seed: int,
    *,
    visitors: int = 60,
    clicks_per_visitor: float = 3.0,
    order_share: float = 0.5,
    grace_seconds: int = 2,
    prefix: str = "",
) -> Scenario:
    """A realistic mixed scenario; ``prefix`` keeps ids apart between scenarios."""
    rng = random.Random(seed)
    campaigns = campaign_terms(grace_seconds)
    names = sorted(campaigns)
    out = Scenario(seed, campaigns)
    tag = f"{prefix}s{seed}"
    orders: list[OrderPlaced] = []
    for n in range(visitors):
        visitor = f"v{tag}-{n}"
        mine = _clicks(rng, visitor, names, clicks_per_visitor)
        block: list[Envelope] = list(mine)
        if rng.random() < 0.05 and mine:
            block.append(rng.choice(mine))  # a redelivered click
        if rng.random() < order_share:
            order = _order(rng, f"o{tag}-{n}", visitor, mine, names, campaigns)
            orders.append(order)
            if rng.random() < 0.2 and mine:
                block.insert(0, order)  # produced before its clicks (they come within grace)
            else:
                block.append(order)
            if rng.random() < 0.05:
                block.append(order)  # redelivered
        out.events.extend(block)
    for n in range(max(1, visitors // 20)):
        # no visitor at all: only a coupon or nothing can win
        coupon = rng.choice(["ANNA10", "DAVEAPP", "FRANKNEWS", None])
        campaign = rng.choice(names)
        orders.append(_plain_order(rng, f"o{tag}-nv{n}", campaign, None, coupon, campaigns))
        out.events.append(orders[-1])
    out.events.extend(_after_orders(rng, orders, tag))
    return out


def _clicks(
    rng: random.Random, visitor: str, campaigns: list[str], per_visitor: float
) -> list[ClickRecorded]:
    count = max(0, round(rng.expovariate(1 / per_visitor))) if per_visitor else 0
    chosen = rng.sample(campaigns, k=rng.choice([1, 1, 2]))
    base = START_MS + rng.randrange(0, 8 * MS_PER_DAY)
    clicks: list[ClickRecorded] = []
    for i in range(count):
        at = base + rng.randrange(0, 3 * MS_PER_DAY)
        if i and rng.random() < 0.1:
            at = clicks[-1].occurred_at  # the same millisecond: ties
        flags = rng.random()
        clicks.append(
            ClickRecorded(
                event_id=f"ce-{visitor}-{i}",
                occurred_at=at,
                click_id=f"{visitor}.{rng.getrandbits(40):010x}",
                link_code=f"L{i}",
                affiliate_id=rng.choice(CREATORS[:5]),
                campaign_id=rng.choice(chosen),
                visitor_id=visitor,
                is_bot=flags < 0.04,
                is_duplicate=0.04 <= flags < 0.08,
            )
        )
    return clicks


def _order(
    rng: random.Random,
    order_id: str,
    visitor: str,
    clicks: list[ClickRecorded],
    names: list[str],
    campaigns: dict[str, tuple[TermsVersion, ...]],
) -> OrderPlaced:
    if not clicks:
        return _plain_order(rng, order_id, rng.choice(names), visitor, None, campaigns)
    anchor = rng.choice(clicks)
    terms = campaigns[anchor.campaign_id][0].terms
    window = terms.window_ms(anchor.affiliate_id)
    lag = rng.choice([0, 1, window, window + 1, window - 1, rng.randrange(0, window), -1])
    at = max(0, anchor.occurred_at + lag)
    coupon = rng.choice([None, None, None, *terms.coupons, "NOBODY"])
    click_id: str | None = None
    pick = rng.random()
    if pick < 0.3:
        click_id = anchor.click_id
    elif pick < 0.35:
        click_id = f"{visitor}.ffffffffff"  # a click the join never saw
    campaign = anchor.campaign_id
    elsewhere = sorted(set(names) - {c.campaign_id for c in clicks})
    if rng.random() < 0.06 and elsewhere:
        campaign, coupon = rng.choice(elsewhere), None  # a program this visitor never clicked
    order = _plain_order(rng, order_id, campaign, visitor, coupon, campaigns, at=at)
    if rng.random() < 0.1 and click_id:
        # the click id alone routes the order to its visitor
        return order.model_copy(update={"click_id": click_id, "visitor_id": None})
    return order.model_copy(update={"click_id": click_id})


def _plain_order(
    rng: random.Random,
    order_id: str,
    campaign: str,
    visitor: str | None,
    coupon: str | None,
    campaigns: dict[str, tuple[TermsVersion, ...]],
    at: int | None = None,
) -> OrderPlaced:
    terms = campaigns[campaign][0].terms
    lead = terms.lead_confirmation_required or (
        campaign == "acme-newsletter" and rng.random() < 0.5
    )
    return OrderPlaced(
        event_id=f"oe-{order_id}",
        occurred_at=at if at is not None else START_MS + rng.randrange(0, 10 * MS_PER_DAY),
        order_id=order_id,
        campaign_id=campaign,
        merchant_id=terms.merchant_id,
        kind="lead" if lead else "sale",
        amount_minor=0 if lead else rng.randrange(500, 30_000),
        currency=terms.currency,
        visitor_id=visitor,
        coupon_code=coupon,
        customer_id=f"cust-{rng.randrange(1000)}",
        new_customer=rng.random() < 0.3,
    )


def _after_orders(rng: random.Random, orders: list[OrderPlaced], tag: str) -> list[Envelope]:
    """Lead confirmations and refunds, after the orders they follow."""
    later: list[Envelope] = []
    for order in orders:
        if order.kind == "lead" and rng.random() < 0.7:
            later.append(
                LeadConfirmed(
                    event_id=f"lead-{order.order_id}",
                    occurred_at=order.occurred_at + 1000,
                    order_id=order.order_id,
                    campaign_id=order.campaign_id,
                )
            )
        if order.kind == "sale" and rng.random() < 0.3:
            left = order.amount_minor
            for r in range(rng.choice([1, 1, 2, 3])):
                amount = max(1, rng.choice([left, left // 2, left + 100, 1]))
                refund = OrderRefunded(
                    event_id=f"re-{order.order_id}-{r}",
                    occurred_at=order.occurred_at + (r + 1) * 3_600_000,
                    refund_id=f"rf-{order.order_id}-{r}",
                    order_id=order.order_id,
                    campaign_id=order.campaign_id,
                    amount_minor=amount,
                    currency=order.currency,
                )
                later.append(refund)
                if rng.random() < 0.1:
                    later.append(refund)  # redelivered
                left = max(0, left - amount)
    for n in range(max(1, len(orders) // 25)):
        later.append(
            OrderRefunded(
                event_id=f"re-{tag}-ghost-{n}",
                occurred_at=START_MS + MS_PER_DAY,
                refund_id=f"rf-ghost-{n}",
                order_id=f"o{tag}-ghost-{n}",
                campaign_id="acme-fashion",
                amount_minor=100,
                currency="EUR",
            )
        )
    return later

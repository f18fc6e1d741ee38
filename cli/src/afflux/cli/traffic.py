"""Seeded, realistic affiliate traffic over HTTP: used by the demo, soak and verify.

Creators share tracking links with skewed (Zipf-like) popularity; a visitor
clicks one to three links, sometimes as a bot; some buy after a short delay,
by cookie or with the click id only; some buy with a creator's promo code; a
few sales are refunded in part or in full; some leads are confirmed. In campaigns
that pay per engagement or attribute live streams or survey answers, some visitor
slots are creators publishing content and streaming live, and some orders answer
the survey (``afflux.cli.creator_traffic``).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from afflux.cli.creator_traffic import (
    SURVEY_RATE,
    CreatorJourneys,
    CreatorTally,
    creator_economy,
    reads_surveys,
    survey_answer,
)
from afflux.cli.demo_client import DemoClient
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.clock_source import system_clock


@dataclass
class Program:
    """What the simulation knows of one campaign."""

    terms: CampaignTerms
    links: dict[str, str] = field(default_factory=dict)  # affiliate_id -> code

    @property
    def kinds(self) -> list[tuple[str, str | None]]:
        plan = self.terms.plan
        kinds: list[tuple[str, str | None]] = []
        if plan.sale or plan.tiers:
            kinds += [("sale", None)] * 4
        if plan.lead_minor is not None:
            kinds += [("lead", None)] * 2
        kinds += [("action", name) for name in plan.actions_minor]
        return kinds or [("sale", None)]


@dataclass(frozen=True)
class TrafficMix:
    buy_rate: float = 0.3
    coupon_rate: float = 0.06
    bot_rate: float = 0.03
    refund_rate: float = 0.08
    renewal_rate: float = 0.5  # of sales of a campaign that pays recurring commissions
    click_id_only_rate: float = 0.2
    think_time_s: tuple[float, float] = (0.2, 2.5)
    # Visitor slots 1, 1 + n, 1 + 2n, ... of a run are creators (0: none), when a
    # campaign's terms pay engagement or read live streams or survey answers.
    creator_every: int = 10
    # Orders the merchant reports this long after the purchase, dated at it by its clock:
    # with a clock more than the skew less the delay slow, a late report.
    late_report_rate: float = 0.0
    late_report_s: tuple[float, float] = (11.0, 15.0)


def creator_ids(count: int) -> list[str]:
    return [f"creator-{i:02d}" for i in range(1, count + 1)]


def popularity(count: int) -> list[float]:
    return [1.0 / (rank**1.1) for rank in range(1, count + 1)]


@dataclass
class Tally:
    clicks: int = 0
    orders: int = 0
    refunds: int = 0
    renewals: int = 0
    late_reports: int = 0  # orders reported ``late_report_s`` after the purchase
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    click_ids: list[str] = field(default_factory=list)  # from every 302 answered
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (campaign, order) answered 2xx
    creator: CreatorTally = field(default_factory=CreatorTally)
    # (campaign, order) -> when the visitor bought, on our clock (``_order``'s orders)
    purchased: dict[tuple[str, str], int] = field(default_factory=dict)


class Traffic:
    def __init__(
        self,
        client: DemoClient,
        programs: list[Program],
        creators: list[str],
        *,
        mix: TrafficMix = TrafficMix(),
        run_id: str = "o",
    ) -> None:
        self.client = client
        self.programs = programs
        self.creators = creators
        self.weights = popularity(len(creators))
        self.mix = mix
        self.run_id = run_id
        self.tally = Tally()
        self.creator_programs = [p for p in programs if creator_economy(p.terms)]

    async def create_links(self) -> None:
        for program in self.programs:
            for affiliate in self.creators:
                program.links[affiliate] = await self.client.create_link(program.terms, affiliate)

    async def visit(self, visitor_no: int, rng: random.Random) -> bool:
        """One visitor's journey; True when it placed an order."""
        every = self.mix.creator_every
        if every and visitor_no % every == 1 and self.creator_programs:
            await self._creator(visitor_no, rng)
            return True
        program = rng.choice(self.programs)
        order_id = f"{self.run_id}-{visitor_no}"
        if program.terms.coupons and rng.random() < self.mix.coupon_rate:
            code = rng.choice(sorted(program.terms.coupons))
            await self._order(program, rng, order_id, coupon=code)
            return True
        touches = 1 + (rng.random() < 0.25) + (rng.random() < 0.08)
        visitor_id: str | None = None
        click_id = ""
        for _ in range(touches):
            affiliate = rng.choices(self.creators, self.weights)[0]
            bot = rng.random() < self.mix.bot_rate
            visitor_id, click_id = await self.client.click(
                program.links[affiliate], visitor_id, bot=bot
            )
            self.tally.clicks += 1
            self.tally.click_ids.append(click_id)
            await asyncio.sleep(rng.uniform(0.02, 0.3))
        if rng.random() >= self.mix.buy_rate:
            return False
        await asyncio.sleep(rng.uniform(*self.mix.think_time_s))
        # A visitor whose clicks never set a cookie (bots) can only be joined by click id.
        by_click_id = not visitor_id or rng.random() < self.mix.click_id_only_rate
        await self._order(
            program,
            rng,
            order_id,
            visitor_id=None if by_click_id else visitor_id,
            click_id=click_id if by_click_id else None,
        )
        return True

    async def _creator(self, visitor_no: int, rng: random.Random) -> None:
        program = rng.choice(self.creator_programs)
        creator = rng.choices(self.creators, self.weights)[0]
        journeys = CreatorJourneys(
            self.client, self.tally.creator, self._ordered, think_time_s=self.mix.think_time_s
        )
        name = f"{self.run_id}-{visitor_no}"
        await journeys.run(program.terms, visitor_no // self.mix.creator_every, creator, name, rng)

    def _ordered(self, campaign_id: str, order_id: str) -> None:
        self.tally.orders += 1
        self.tally.accepted.append((campaign_id, order_id))

    async def _order(
        self,
        program: Program,
        rng: random.Random,
        order_id: str,
        *,
        visitor_id: str | None = None,
        click_id: str | None = None,
        coupon: str | None = None,
    ) -> None:
        terms = program.terms
        kind, action = rng.choice(program.kinds)
        amount = max(100, int(rng.lognormvariate(8.3, 0.6))) if kind == "sale" else 0
        items, shipping = sale_items(terms, amount, rng) if kind == "sale" else ([], 0)
        answer: dict[str, str] | None = None
        if reads_surveys(terms) and rng.random() < SURVEY_RATE:
            answer = survey_answer(terms, rng.choices(self.creators, self.weights)[0], rng)
        answer_later = answer is not None and rng.random() < 0.5
        bought_at, dated = system_clock(), None
        if self.mix.late_report_rate and rng.random() < self.mix.late_report_rate:
            dated = self.client.merchant_now()
            await asyncio.sleep(rng.uniform(*self.mix.late_report_s))
            self.tally.late_reports += 1
        await self.client.place_order(
            terms,
            order_id=order_id,
            kind=kind,
            action=action,
            amount=Money(amount, terms.currency),
            visitor_id=visitor_id,
            click_id=click_id,
            coupon=coupon,
            new_customer=rng.random() < 0.35,
            items=items,
            non_commissionable_minor=shipping,
            survey=None if answer_later else answer,
            occurred_at=dated,
        )
        self._ordered(terms.campaign_id, order_id)
        self.tally.purchased[(terms.campaign_id, order_id)] = bought_at
        if answer is not None:
            if answer_later:
                await asyncio.sleep(rng.uniform(0.1, 0.5))
                await self.client.answer_survey(terms, order_id, answer)
            self.tally.creator.survey_answers += 1
        if kind == "sale" and terms.plan.recurring and rng.random() < self.mix.renewal_rate:
            for number in range(1, rng.randint(1, 3) + 1):
                renewal = max(100, int(rng.lognormvariate(7.5, 0.3)))
                await self.client.renew(
                    terms, first_order_id=order_id, number=number, amount=renewal
                )
                self.tally.renewals += 1
        if kind == "lead" and terms.lead_confirmation_required and rng.random() < 0.7:
            await self.client.confirm_lead(terms, order_id)
        if kind == "sale" and rng.random() < self.mix.refund_rate:
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            part, named = refund_of(items, amount, rng)
            await self.client.refund(
                terms, order_id=order_id, refund_id=f"r-{order_id}", amount=part, items=named
            )
            self.tally.refunds += 1


def refund_of(
    items: list[Any], amount: int, rng: random.Random
) -> tuple[int, list[dict[str, Any]]]:
    """A sale's refund as a merchant sends it, its amount and the items it names: half the
    time the whole order; else a third of it, or, when the sale has items (reversed per
    item), one unit of its first item for that unit's price or a third of that item by
    amount. What it names always makes up what it refunds, as the orders API requires."""
    roll = rng.random()
    if roll < 0.5:
        return amount, []
    if not items:
        return max(1, amount // 3), []
    first = items[0]
    if roll < 0.75:
        return first["price_minor"], [{"sku": first["sku"], "quantity": 1}]
    part = max(1, first["quantity"] * first["price_minor"] // 3)
    return part, [{"sku": first["sku"], "amount_minor": part}]


def sale_items(terms: CampaignTerms, amount: int, rng: random.Random) -> tuple[list[Any], int]:
    """A sale's items for a campaign with per-product rates (a sku with its own rate, an
    item of a rated category, an excluded one, one at the sale's rate) and sometimes
    shipping as its non-commissionable part; they make up ``amount`` exactly. Other
    campaigns' sales carry no items."""
    products = terms.plan.sale.products if terms.plan.sale else None
    if products is None or amount < 400:
        return [], 0
    shipping = 295 if rng.random() < 0.4 else 0
    rest = amount - shipping
    parts = [rest * 4 // 10, rest * 3 // 10, rest // 10]
    parts.append(rest - sum(parts))
    skus = sorted(products.skus) or ["any-sku"]
    categories: list[str | None] = [*sorted(products.categories)] or [None]
    excluded: list[str | None] = [*sorted(products.excluded_categories)] or [None]
    rows: list[tuple[str, str | None]] = [
        (rng.choice(skus), None),
        (f"item-{rng.randint(1, 9)}", rng.choice(categories)),
        (f"card-{rng.randint(1, 9)}", rng.choice(excluded)),
        (f"plain-{rng.randint(1, 9)}", None),
    ]
    items: list[Any] = []
    for (sku, category), part in zip(rows, parts, strict=True):
        if part <= 0 or any(item["sku"] == sku for item in items):
            continue
        quantity = 2 if part % 2 == 0 and rng.random() < 0.3 else 1
        item: dict[str, Any] = {"sku": sku, "quantity": quantity, "price_minor": part // quantity}
        if category:
            item["category"] = category
        items.append(item)
    shipping += rest - sum(i["quantity"] * i["price_minor"] for i in items)
    return items, shipping

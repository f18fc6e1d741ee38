"""kill -9 of the payouts service under a stream of conversions, clicks and refunds.

Orders (by coupon), partial refunds and tracking-link clicks flow over HTTP
while the payouts process is killed twice and restarted. Afterwards every
creator's ledger must hold exactly one line per accepted order with the amount
worked out here (7.5 % of the order, half up, less the pro rata share of a
refund before approval) and one click line counting every click once: nothing
lost, nothing applied twice. Two conversions put straight on the topic, one
for a campaign without terms and one in another currency, must reach the
dead-letter topic with their reason while the consumer goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from afflux.cli.demo_client import DemoClient
from afflux.cli.scenario_checks import read_topic_sync
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import ConversionAttributed, DeadLetter
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.kafka import new_producer, send_event

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "ledger-kill-admin-token"
CAMPAIGN = "kill-shop"
CREATORS = ("kill-c1", "kill-c2", "kill-c3", "kill-c4")
CLICKERS = ("kill-c1", "kill-c2")
COUPONS = ", ".join(f"{c.upper().replace('-', '')}: {c}" for c in CREATORS)
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: {CAMPAIGN}
      merchant_id: merchant-kill
      currency: EUR
      allowed_domains: [shop.example.com]
      coupons: {{{COUPONS}}}
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {{rate: {{percent: "7.5"}}}}
        click: {{per_click_minor: 1}}
"""


def coupon_of(creator: str) -> str:
    return creator.upper().replace("-", "")


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {"AFFLUX_INSTANCE_ID": "1"}


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> CampaignTerms:
    path = tmp_path_factory.mktemp("ledger-kill-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return load_campaign_file(path).campaigns[0].terms


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[DemoClient]:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN
    ) as demo:
        yield demo


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Sent:
    """What the merchant and the visitors did, and what the ledger must therefore say."""

    orders: dict[str, dict[str, tuple[int, int]]] = field(
        default_factory=lambda: {c: {} for c in CREATORS}
    )  # creator -> order id -> (order amount, refunded before approval)
    clicks: Counter[str] = field(default_factory=Counter)

    def expected_lines(self, creator: str) -> set[tuple[str, str | None, int, int]]:
        """(kind, order, amount, refunded) of every line the creator must have."""
        lines: set[tuple[str, str | None, int, int]] = set()
        for order, (amount, refund) in self.orders[creator].items():
            gross = half_up(Decimal(amount) * Decimal("7.5") / 100)
            cut = half_up(Decimal(gross) * refund / amount) if refund else 0
            lines.add(("sale", order, gross - cut, cut))
        if self.clicks[creator]:
            lines.add(("click", None, self.clicks[creator], 0))
        return lines


async def send_orders(
    client: DemoClient, terms: CampaignTerms, sent: Sent, stop: asyncio.Event, lane: int
) -> None:
    """One merchant connection: orders round the creators; every 7th refunded in part."""
    for n in itertools.count():
        if stop.is_set():
            return
        creator = CREATORS[(n + lane) % len(CREATORS)]
        order = f"k{lane}-{n}"
        amount = 1_000 + (n * 7_919 + lane * 104_729) % 20_000
        response = await client.place_order(
            terms,
            order_id=order,
            kind="sale",
            amount=Money(amount, "EUR"),
            coupon=coupon_of(creator),
        )
        assert response.status_code == 202, response.text
        refund = amount // 4 if n % 7 == 3 else 0
        sent.orders[creator][order] = (amount, 0)
        if refund:
            await client.refund(terms, order_id=order, refund_id=f"rf-{order}", amount=refund)
            sent.orders[creator][order] = (amount, refund)
        await asyncio.sleep(0.04)


async def send_clicks(
    client: DemoClient, terms: CampaignTerms, sent: Sent, stop: asyncio.Event
) -> None:
    """Each click a new visitor (no cookie sent), so each is a valid unique click."""
    codes = {c: await client.create_link(terms, c) for c in CLICKERS}
    for n in itertools.count():
        if stop.is_set():
            return
        creator = CLICKERS[n % len(CLICKERS)]
        client.http.cookies.clear()
        await client.click(codes[creator], None)
        sent.clicks[creator] += 1
        await asyncio.sleep(0.02)


async def conversions_applied(client: DemoClient) -> int:
    """The campaign's conversions as the ledger holds them; -1 while payouts is away."""
    try:
        response = await client.http.get(
            f"{client.payouts_url}/v1/kpis/campaigns/{CAMPAIGN}", headers=client.admin
        )
    except httpx.HTTPError:
        return -1
    if response.status_code != 200:
        return -1
    return int(response.json()["conversions"])


async def until_applied(client: DemoClient, at_least: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := await conversions_applied(client)) < at_least:
        assert time.monotonic() < deadline, f"ledger stuck at {count} conversions"
        await asyncio.sleep(0.25)
    return count


async def put_poison(bootstrap: str, terms: CampaignTerms) -> dict[str, str]:
    """Two conversions the ledger must refuse, straight on the topic; key -> reason."""
    now = system_clock()

    def conversion(
        order: str, campaign: str, affiliate: str, currency: str
    ) -> ConversionAttributed:
        return ConversionAttributed(
            event_id=f"conv-{order}",
            occurred_at=now,
            conversion_id=f"cv-{order}",
            order_id=order,
            campaign_id=campaign,
            affiliate_id=affiliate,
            reason="coupon",
            model="last_click",
            window_ms=30 * MS_PER_DAY,
            terms_version=1,
            kind="sale",
            amount_minor=10_000,
            currency=currency,
            order_event_id=f"order-{order}",
        )

    poison = {
        "ghost-order": conversion("ghost-order", "kill-ghost", "kill-ghost-creator", "EUR"),
        "dollar-order": conversion("dollar-order", CAMPAIGN, CREATORS[0], "USD"),
    }
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for key, event in poison.items():
            await send_event(producer, "conversions", key, event)
    finally:
        await producer.stop()
    return {
        "ghost-order": "campaign 'kill-ghost' has no terms",
        "dollar-order": f"conversion in USD for campaign '{CAMPAIGN}' paid in EUR",
    }


async def ledger_of(client: DemoClient, creator: str) -> list[dict[str, Any]]:
    response = await client.http.get(
        f"{client.payouts_url}/v1/creators/{creator}/ledger",
        params={"campaign_id": CAMPAIGN, "limit": 1000},
        headers=client.admin,
    )
    response.raise_for_status()
    assert response.json()["next_cursor"] is None  # one page holds every posting
    lines: list[dict[str, Any]] = response.json()["lines"]
    return lines


def as_rows(lines: list[dict[str, Any]]) -> list[tuple[str, str | None, int, int]]:
    """The lines as (kind, order, amount, refunded); a creator's click lines (one per UTC
    day: a run across midnight has two) as one row of their sums."""
    rows = [
        (x["kind"], x["order_id"], x["amount_minor"], x["explain"]["refunded_minor"])
        for x in lines
        if x["kind"] != "click"
    ]
    clicks = [x for x in lines if x["kind"] == "click"]
    if clicks:
        amount = sum(x["amount_minor"] for x in clicks)
        rows.append(("click", None, amount, sum(x["explain"]["refunded_minor"] for x in clicks)))
    return rows


async def test_killing_payouts_mid_stream_loses_and_doubles_no_line(
    stack: Stack, client: DemoClient, terms: CampaignTerms
) -> None:
    sent, stop = Sent(), asyncio.Event()
    senders = [
        asyncio.create_task(send_orders(client, terms, sent, stop, lane)) for lane in range(2)
    ]
    senders.append(asyncio.create_task(send_clicks(client, terms, sent, stop)))
    try:
        applied = await until_applied(client, 20)
        reasons = await put_poison(stack.kafka_bootstrap, terms)
        for _ in range(2):
            # Kill while the stream runs and the ledger is moving, then restart it.
            applied = await until_applied(client, applied + 20)
            stack.kill_service("payouts")
            await asyncio.sleep(1)  # the stream goes on while the ledger is down
            await asyncio.to_thread(stack.start_service, "payouts")
        await until_applied(client, applied + 20)
    finally:
        stop.set()
        await asyncio.gather(*senders)
    total = sum(len(orders) for orders in sent.orders.values())
    assert total > 100
    assert sum(sent.clicks.values()) > 20

    # Wait for the ledger to settle on exactly the expected lines, creator by creator.
    deadline = time.monotonic() + 60
    for creator in CREATORS:
        expected = sent.expected_lines(creator)
        while True:
            rows = as_rows(await ledger_of(client, creator))
            if sorted(rows, key=repr) == sorted(expected, key=repr):
                break
            if time.monotonic() > deadline:
                missing = expected - set(rows)
                extra = [r for r in rows if r not in expected]
                doubled = [r for r, n in Counter(rows).items() if n > 1]
                raise AssertionError(
                    f"{creator}: {len(rows)} lines for {len(expected)} expected; "
                    f"missing {sorted(missing, key=repr)[:10]}, unexpected "
                    f"{sorted(extra, key=repr)[:10]}, twice {doubled[:10]}"
                )
            await asyncio.sleep(0.5)
        lines = await ledger_of(client, creator)
        assert len({x["line_id"] for x in lines}) == len(lines)
        if creator in CLICKERS:
            paid_by_day = [
                re.fullmatch(
                    r"clicks of \d{4}-\d\d-\d\d: (\d+) of \1 valid unique clicks at 1",
                    x["explain"]["rule"],
                )
                for x in lines
                if x["kind"] == "click"
            ]
            assert all(paid_by_day), [x["explain"]["rule"] for x in lines]
            assert sum(int(m[1]) for m in paid_by_day if m) == sent.clicks[creator]
        balance = (
            await client.http.get(
                f"{client.payouts_url}/v1/creators/{creator}/balance", headers=client.admin
            )
        ).json()["balances"]
        assert balance == [
            {
                "currency": "EUR",
                "pending_minor": sum(r[2] for r in expected),
                "approved_minor": 0,
                "paid_minor": 0,
                "reversed_minor": sum(r[3] for r in expected),
            }
        ]
    kpis = (
        await client.http.get(
            f"{client.payouts_url}/v1/kpis/campaigns/{CAMPAIGN}", headers=client.admin
        )
    ).json()
    assert kpis["conversions"] == total
    assert kpis["unique_clicks"] == kpis["clicks"] == sum(sent.clicks.values())

    # The refused conversions are on the dead-letter topic with their reason, and
    # nowhere in the ledger; the consumer went on (everything after them is there).
    letters = [
        e
        for e in await asyncio.to_thread(read_topic_sync, stack.kafka_bootstrap, "afflux.dlq")
        if isinstance(e, DeadLetter) and e.key in reasons
    ]
    assert {e.key: e.reason for e in letters} == reasons
    for letter in letters:
        assert (letter.consumer, letter.source_topic) == ("payouts.ledger", "conversions")
    # A record read again after a kill is dead-lettered again under the same id.
    assert len({(e.key, e.event_id) for e in letters}) == len(reasons)
    ghost = await client.http.get(
        f"{client.payouts_url}/v1/creators/kill-ghost-creator/ledger", headers=client.admin
    )
    assert ghost.status_code == 404
    assert "dollar-order" not in {x["order_id"] for x in await ledger_of(client, CREATORS[0])}
    health = await client.http.get(f"{client.payouts_url}/healthz")
    assert health.status_code == 200

"""Every commission plan element, end to end: clicks and orders over HTTP, money read back.

One stack runs six campaigns, each shaped for a few checks. Clicks go through
tracking links, orders, lead confirmations and refunds through the signed
merchant API, and the payouts API must then answer the exact ledger lines (with
their explanation), balances and KPIs. Every expected amount is worked out by
hand below, to the cent. Lines move through the stack asynchronously, so each
check polls the API until it answers the expected state (or a minute passes).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from afflux.cli.demo_client import DemoClient
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.money import Money
from afflux.shared.core.periods import day_of, period_of
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.clock_source import system_clock

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

T = TypeVar("T")
ADMIN_TOKEN = "ledger-plans-admin-token"
NEVER_PAID = 1_000_000_000  # min payout of every campaign but the payout one
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: plans-shop
      merchant_id: merchant-shop
      currency: EUR
      allowed_domains: [shop.example.com]
      grace_seconds: 1
      lock_days: 30
      min_payout_minor: {NEVER_PAID}
      plan:
        sale: {{rate: {{percent: "10"}}, new_customer: {{percent: "15"}}}}
  - effective_from: 0
    terms:
      campaign_id: plans-apps
      merchant_id: merchant-apps
      currency: USD
      allowed_domains: [apps.example.com]
      coupons: {{BEN: apps-ben}}
      grace_seconds: 1
      lock_days: 30
      min_payout_minor: {NEVER_PAID}
      plan:
        sale: {{rate: {{fixed_minor: 500}}}}
        actions_minor: {{install: 150, signup: 300}}
        click: {{per_click_minor: 5, paid_click_cap: 3}}
  - effective_from: 0
    terms:
      campaign_id: plans-leads
      merchant_id: merchant-leads
      currency: EUR
      coupons: {{DORA: lead-dora}}
      grace_seconds: 1
      lead_confirmation_required: true
      lock_days: 30
      min_payout_minor: {NEVER_PAID}
      plan:
        lead_minor: 2500
        base_fee_minor: 1000
  - effective_from: 0
    terms:
      campaign_id: plans-tiers
      merchant_id: merchant-tiers
      currency: EUR
      coupons: {{EVA: tier-eva, FINN: tier-finn}}
      grace_seconds: 1
      lock_days: 30
      min_payout_minor: {NEVER_PAID}
      plan:
        sale: {{rate: {{percent: "5"}}}}
        tiers: [{{from_sales: 3, rate: {{percent: "10"}}}}]
        milestones: [{{at_sales: 3, bonus_minor: 700}}]
  - effective_from: 0
    terms:
      campaign_id: plans-cap
      merchant_id: merchant-cap
      currency: EUR
      coupons: {{GUS: cap-gus}}
      grace_seconds: 1
      lock_days: 30
      min_payout_minor: {NEVER_PAID}
      plan:
        sale: {{rate: {{fixed_minor: 1000}}}}
        creator_cap_minor: 1500
  - effective_from: 0
    terms:
      campaign_id: plans-pay
      merchant_id: merchant-pay
      currency: EUR
      coupons: {{HANA: pay-hana}}
      grace_seconds: 1
      lock_days: 1
      min_payout_minor: 100
      plan:
        sale: {{rate: {{percent: "10"}}}}
"""


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CampaignTerms]:
    path = tmp_path_factory.mktemp("ledger-plans-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return {e.terms.campaign_id: e.terms for e in load_campaign_file(path).campaigns}


def base_time() -> int:
    """A moment a few minutes ago, inside the current month, for orders placed by coupon
    (whose times the test sets, so that their event-time order is known)."""
    now = system_clock()
    moment = datetime.fromtimestamp(now / 1000, UTC)
    month_start = int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)
    return max(now - 10 * 60_000, month_start + 1_000)


@dataclass
class Driven:
    """What the module fixture sent, for the checks to refer to."""

    orders: dict[str, str]  # name in the test -> order id
    click_day: str  # the UTC day apps-cleo's clicks were made, which their line is of


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[DemoClient]:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN
    ) as demo:
        yield demo


async def fresh_click(client: DemoClient, code: str, *, bot: bool = False) -> str:
    """A click by a new visitor: the HTTP client must not send the previous one's cookie."""
    client.http.cookies.clear()
    visitor, _ = await client.click(code, None, bot=bot)
    assert visitor or bot
    return visitor


@pytest.fixture(scope="module")
async def driven(client: DemoClient, terms: dict[str, CampaignTerms]) -> Driven:
    """Everything but the refunds and payout runs, sent once at the start."""
    orders: dict[str, str] = {}
    base = base_time()

    async def order(name: str, campaign: str, **fields: Any) -> None:
        orders[name] = f"{name}-{base}"
        await client.place_order(terms[campaign], order_id=orders[name], **fields)

    # plans-shop, creator shop-ana: two sales through tracking-link clicks, one of them a
    # new customer's; the first visitor clicks twice within seconds (one duplicate).
    shop = terms["plans-shop"]
    code = await client.create_link(shop, "shop-ana")
    first = await fresh_click(client, code)
    await client.click(code, first)  # duplicate
    second = await fresh_click(client, code)
    await order("shop-1", "plans-shop", kind="sale", amount=Money(12345, "EUR"), visitor_id=first)
    await order(
        "shop-2",
        "plans-shop",
        kind="sale",
        amount=Money(9999, "EUR"),
        visitor_id=second,
        new_customer=True,
    )

    # plans-apps, creator apps-cleo: five valid unique clicks, one duplicate, one bot.
    apps = terms["plans-apps"]
    code = await client.create_link(apps, "apps-cleo")
    click_day = day_of(system_clock())
    visitor = await fresh_click(client, code)
    await client.click(code, visitor)  # duplicate
    await fresh_click(client, code, bot=True)
    for _ in range(4):
        await fresh_click(client, code)
    # plans-apps, creator apps-ben (coupon): a fixed sale, an install, a signup and an
    # action the plan does not pay.
    usd = Money(0, "USD")
    await order("apps-sale", "plans-apps", kind="sale", amount=Money(4321, "USD"), coupon="BEN")
    await order("apps-install", "plans-apps", kind="install", amount=usd, coupon="BEN")
    await order(
        "apps-signup", "plans-apps", kind="action", action="signup", amount=usd, coupon="BEN"
    )
    await order(
        "apps-review", "plans-apps", kind="action", action="review", amount=usd, coupon="BEN"
    )

    # plans-leads, creator lead-dora: two leads, only the first one confirmed.
    eur = Money(0, "EUR")
    leads = "plans-leads"
    await order("lead-1", leads, kind="lead", amount=eur, coupon="DORA", occurred_at=base)
    await order("lead-2", leads, kind="lead", amount=eur, coupon="DORA", occurred_at=base + 1000)
    await client.confirm_lead(terms[leads], orders["lead-1"])

    # plans-tiers: tier-eva and tier-finn make three sales each, a second apart.
    for n, amount in enumerate((10_000, 20_000, 30_000)):
        await order(
            f"eva-{n + 1}",
            "plans-tiers",
            kind="sale",
            amount=Money(amount, "EUR"),
            coupon="EVA",
            occurred_at=base + n * 1000,
        )
    for n in range(3):
        await order(
            f"finn-{n + 1}",
            "plans-tiers",
            kind="sale",
            amount=Money(10_000, "EUR"),
            coupon="FINN",
            occurred_at=base + n * 1000,
        )

    # plans-cap, creator cap-gus: two sales of 1000 each against a cap of 1500.
    for n in range(2):
        await order(
            f"cap-{n + 1}",
            "plans-cap",
            kind="sale",
            amount=Money(5_000, "EUR"),
            coupon="GUS",
            occurred_at=base + n * 1000,
        )
    return Driven(orders, click_day)


# -- polling and reading ---------------------------------------------------------


async def eventually(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str, timeout_s: float = 60
) -> T:
    """Read until ``done`` holds; fail with the last answer after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = await read()
            if done(last):
                return last
        except httpx.HTTPStatusError as exc:  # 404 until the creator has a ledger
            last = f"{exc.response.status_code} {exc.response.text}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s; last: {last!r}")
        await asyncio.sleep(0.5)


async def get(client: DemoClient, path: str, **params: Any) -> Any:
    response = await client.http.get(
        f"{client.payouts_url}{path}", params=params, headers=client.admin
    )
    response.raise_for_status()
    return response.json()


Row = tuple[str, str | None, int, int, int, tuple[tuple[str, int], ...], str]


def row(line: dict[str, Any]) -> Row:
    """What a ledger line says: kind, order, amount, gross, refunded, cap cuts, rule."""
    explain = line["explain"]
    return (
        line["kind"],
        line["order_id"],
        line["amount_minor"],
        explain["gross_minor"],
        explain["refunded_minor"],
        tuple((c["scope"], c["cut_minor"]) for c in explain["cap_cuts"]),
        explain["rule"],
    )


def same_rows(expected: list[Row]) -> Callable[[Any], bool]:
    return lambda answer: sorted(map(row, answer["lines"]), key=repr) == sorted(expected, key=repr)


async def ledger_becomes(
    client: DemoClient, creator: str, campaign: str, expected: list[Row], **params: Any
) -> list[dict[str, Any]]:
    answer = await eventually(
        lambda: get(
            client, f"/v1/creators/{creator}/ledger", campaign_id=campaign, limit=1000, **params
        ),
        same_rows(expected),
        f"ledger of {creator}",
    )
    lines: list[dict[str, Any]] = answer["lines"]
    return lines


async def balance(client: DemoClient, creator: str) -> dict[str, Any]:
    answer = await get(client, f"/v1/creators/{creator}/balance")
    assert len(answer["balances"]) == 1, answer
    entry: dict[str, Any] = answer["balances"][0]
    return entry


def balance_is(currency: str, pending: int, approved: int, paid: int, reversed_: int) -> Any:
    return {
        "currency": currency,
        "pending_minor": pending,
        "approved_minor": approved,
        "paid_minor": paid,
        "reversed_minor": reversed_,
    }


def order_of(driven: Driven, name: str) -> str:
    return driven.orders[name]


# -- the checks -----------------------------------------------------------------


async def test_percent_sale_and_new_customer_rate_through_clicks(
    client: DemoClient, driven: Driven
) -> None:
    shop_1, shop_2 = order_of(driven, "shop-1"), order_of(driven, "shop-2")
    # 10 % of 12345 = 1234.5 -> 1235 (half up); 15 % of 9999 = 1499.85 -> 1500.
    lines = await ledger_becomes(
        client,
        "shop-ana",
        "plans-shop",
        [
            ("sale", shop_1, 1235, 1235, 0, (), "sale: 10% of 12345 (base rate)"),
            ("sale", shop_2, 1500, 1500, 0, (), "sale: 15% of 9999 (new-customer rate)"),
        ],
    )
    for line in lines:
        assert line["status"] == "pending"
        assert line["approve_at"] == line["occurred_at"] + 30 * MS_PER_DAY
        assert line["explain"]["terms_version"] == 1
        assert len(line["explain"]["source_event_ids"]) == 1
        assert line["currency"] == "EUR"
    assert await balance(client, "shop-ana") == balance_is("EUR", 2735, 0, 0, 0)


async def test_campaign_kpis_count_clicks_conversions_and_money(
    client: DemoClient, driven: Driven
) -> None:
    await ledger_becomes(
        client,
        "shop-ana",
        "plans-shop",
        [
            (
                "sale",
                order_of(driven, "shop-1"),
                1235,
                1235,
                0,
                (),
                "sale: 10% of 12345 (base rate)",
            ),
            (
                "sale",
                order_of(driven, "shop-2"),
                1500,
                1500,
                0,
                (),
                "sale: 15% of 9999 (new-customer rate)",
            ),
        ],
    )
    # Three non-bot clicks, one of them a duplicate (the same visitor from the same address
    # and browser: both duplicate and ip_duplicate); two sales of 12345 and 9999.
    revenue, commission = 12345 + 9999, 1235 + 1500
    expected = {
        "campaign_id": "plans-shop",
        "period": None,
        "currency": "EUR",
        "clicks": 3,
        "unique_clicks": 2,
        "valid_clicks": 2,
        "flagged_clicks": 1,
        "flagged_by_reason": {
            "bot": 0,
            "duplicate": 1,
            "ip_duplicate": 1,
            "rate": 0,
            "embedded": 0,
        },
        "conversions": 2,
        "conversion_rate": 1.0,
        "revenue_minor": revenue,
        "refunds_minor": 0,
        "net_revenue_minor": revenue,
        "commission_minor": commission,
        "epc_minor": 912,  # 2735 / 3 = 911.67
        "cpa_minor": 1368,  # 2735 / 2 = 1367.5, half up
        "aov_minor": 11172,  # 22344 / 2
        "roi": round((revenue - commission) / commission, 6),
        "new_customer_share": 0.5,
    }
    # The sales KPIs exactly; beside them the content KPIs of a campaign without content.
    kpis = await eventually(
        lambda: get(client, "/v1/kpis/campaigns/plans-shop"),
        lambda kpis: {name: kpis.get(name) for name in expected} == expected,
        "KPIs of plans-shop",
    )
    assert (kpis["views"], kpis["engagement_pay_minor"], kpis["rpm_minor"], kpis["ctr"]) == (
        0,
        0,
        None,
        None,
    )


async def test_fixed_sale_and_action_kinds(client: DemoClient, driven: Driven) -> None:
    # The review action is not in the plan: it earns nothing and has no line.
    await ledger_becomes(
        client,
        "apps-ben",
        "plans-apps",
        [
            (
                "sale",
                order_of(driven, "apps-sale"),
                500,
                500,
                0,
                (),
                "sale: fixed 500 of 4321 (base rate)",
            ),
            (
                "action",
                order_of(driven, "apps-install"),
                150,
                150,
                0,
                (),
                "action install: fixed 150",
            ),
            (
                "action",
                order_of(driven, "apps-signup"),
                300,
                300,
                0,
                (),
                "action signup: fixed 300",
            ),
        ],
    )
    assert await balance(client, "apps-ben") == balance_is("USD", 950, 0, 0, 0)
    # ... but it is a conversion all the same.
    kpis = await eventually(
        lambda: get(client, "/v1/kpis/creators/apps-ben", campaign_id="plans-apps"),
        lambda k: k["conversions"] == 4,
        "KPIs of apps-ben",
    )
    assert kpis["commission_minor"] == 950
    assert kpis["revenue_minor"] == 4321


async def test_paid_clicks_stop_at_the_cap(client: DemoClient, driven: Driven) -> None:
    lines = await ledger_becomes(
        client,
        "apps-cleo",
        "plans-apps",
        [
            (
                "click",
                None,
                15,
                15,
                0,
                (),
                f"clicks of {driven.click_day}: 3 valid unique clicks paid at 5"
                " (paid-click cap 3 reached, 0 paid on earlier days)",
            )
        ],
    )
    assert lines[0]["status"] == "pending"
    kpis = await eventually(
        lambda: get(client, "/v1/kpis/creators/apps-cleo", campaign_id="plans-apps"),
        lambda k: k["clicks"] == 6,
        "KPIs of apps-cleo",
    )
    # Six non-bot clicks (the duplicate included), five valid unique, no conversion;
    # EPC 15 / 6 = 2.5 -> 3, half up.
    assert (kpis["unique_clicks"], kpis["conversions"], kpis["commission_minor"]) == (5, 0, 15)
    assert (kpis["flagged_clicks"], kpis["flagged_by_reason"]["bot"]) == (2, 1)  # never paid
    assert kpis["epc_minor"] == 3
    assert kpis["conversion_rate"] == 0.0
    assert await balance(client, "apps-cleo") == balance_is("USD", 15, 0, 0, 0)


async def test_only_the_confirmed_lead_is_paid_and_the_base_fee_once(
    client: DemoClient, driven: Driven
) -> None:
    lines = await ledger_becomes(
        client,
        "lead-dora",
        "plans-leads",
        [
            ("base_fee", None, 1000, 1000, 0, (), "base fee 1000 for the period"),
            ("lead", order_of(driven, "lead-1"), 2500, 2500, 0, (), "lead: fixed 2500 (confirmed)"),
        ],
    )
    lead = next(x for x in lines if x["kind"] == "lead")
    fee = next(x for x in lines if x["kind"] == "base_fee")
    # The lead line names its conversion and its confirmation.
    assert len(lead["explain"]["source_event_ids"]) == 2
    assert all(lead["explain"]["source_event_ids"])
    # The fee is dated at the creator's first activity, the first lead.
    assert fee["occurred_at"] == lead["occurred_at"]
    # The unconfirmed lead arrived (a conversion) but pays nothing.
    kpis = await eventually(
        lambda: get(client, "/v1/kpis/creators/lead-dora", campaign_id="plans-leads"),
        lambda k: k["conversions"] == 2,
        "KPIs of lead-dora",
    )
    assert kpis["commission_minor"] == 3500
    assert await balance(client, "lead-dora") == balance_is("EUR", 3500, 0, 0, 0)


async def test_a_tier_applies_from_the_sale_that_crosses_it(
    client: DemoClient, driven: Driven
) -> None:
    # 5 % of 10000 and 20000, then the third net sale at the tier's 10 % of 30000;
    # the milestone at 3 net sales pays 700 once.
    lines = await ledger_becomes(
        client,
        "tier-eva",
        "plans-tiers",
        [
            ("sale", order_of(driven, "eva-1"), 500, 500, 0, (), "sale: 5% of 10000 (base rate)"),
            ("sale", order_of(driven, "eva-2"), 1000, 1000, 0, (), "sale: 5% of 20000 (base rate)"),
            (
                "sale",
                order_of(driven, "eva-3"),
                3000,
                3000,
                0,
                (),
                "sale: 10% of 30000 (tier from net sale 3)",
            ),
            ("bonus", None, 700, 700, 0, (), "milestone bonus at 3 net sales"),
        ],
    )
    bonus = next(x for x in lines if x["kind"] == "bonus")
    third = next(x for x in lines if x["order_id"] == order_of(driven, "eva-3"))
    assert bonus["occurred_at"] == third["occurred_at"]
    assert bonus["explain"]["source_event_ids"] == third["explain"]["source_event_ids"]
    assert await balance(client, "tier-eva") == balance_is("EUR", 5200, 0, 0, 0)


async def test_a_refund_below_the_milestone_takes_the_bonus_back(
    client: DemoClient, driven: Driven, terms: dict[str, CampaignTerms]
) -> None:
    finn = [order_of(driven, f"finn-{n}") for n in (1, 2, 3)]
    base, tier = (
        "sale: 5% of 10000 (base rate)",
        "sale: 10% of 10000 (tier from net sale 3)",
    )
    await ledger_becomes(
        client,
        "tier-finn",
        "plans-tiers",
        [
            ("sale", finn[0], 500, 500, 0, (), base),
            ("sale", finn[1], 500, 500, 0, (), base),
            ("sale", finn[2], 1000, 1000, 0, (), tier),
            ("bonus", None, 700, 700, 0, (), "milestone bonus at 3 net sales"),
        ],
    )
    assert await balance(client, "tier-finn") == balance_is("EUR", 2700, 0, 0, 0)
    # The first sale is refunded in full before approval: its line drops to 0, the
    # others are net sales 1 and 2 (base rate again: the third gets a tier adjustment of
    # -500) and the bonus is reversed. Nothing posted is changed: each correction is a
    # posting of its own.
    await client.refund(
        terms["plans-tiers"], order_id=finn[0], refund_id=f"rf-{finn[0]}", amount=10_000
    )
    gone = "milestone bonus at 3 net sales (net sales fell below it before the period ended)"
    lines = await ledger_becomes(
        client,
        "tier-finn",
        "plans-tiers",
        [
            ("sale", finn[0], 0, 500, 500, (), base),
            ("sale", finn[1], 500, 500, 0, (), base),
            ("sale", finn[2], 500, 500, 0, (), f"{base}, re-ranked (was 1000)"),
            ("bonus", None, 0, 0, 0, (), gone),
        ],
    )
    refunded = next(x for x in lines if x["order_id"] == finn[0])
    assert len(refunded["explain"]["source_event_ids"]) == 2  # the conversion and the reversal
    postings = (await get(client, "/v1/creators/tier-finn/ledger", campaign_id="plans-tiers"))[
        "postings"
    ]
    kinds = sorted((p["kind"], p["amount_minor"]) for p in postings)
    assert kinds == sorted(
        [
            ("accrual", 500),
            ("accrual", 500),
            ("accrual", 1000),
            ("bonus", 700),
            ("refund_reduction", -500),
            ("tier_adjustment", -500),
            ("bonus_reversal", -700),
        ]
    ), postings
    adjustment = next(p for p in postings if p["kind"] == "tier_adjustment")
    assert adjustment["corrects"] == next(
        p["posting_id"] for p in postings if p["line_id"] == adjustment["line_id"]
    )
    assert await balance(client, "tier-finn") == balance_is("EUR", 1000, 0, 0, 500)
    kpis = await eventually(
        lambda: get(client, "/v1/kpis/creators/tier-finn", campaign_id="plans-tiers"),
        lambda k: k["refunds_minor"] == 10_000,
        "KPIs of tier-finn",
    )
    assert (kpis["revenue_minor"], kpis["net_revenue_minor"]) == (30_000, 20_000)
    assert kpis["commission_minor"] == 1000


async def test_the_creator_cap_cuts_the_second_sale_and_counts_the_cut(
    client: DemoClient, driven: Driven
) -> None:
    await ledger_becomes(
        client,
        "cap-gus",
        "plans-cap",
        [
            (
                "sale",
                order_of(driven, "cap-1"),
                1000,
                1000,
                0,
                (),
                "sale: fixed 1000 of 5000 (base rate)",
            ),
            (
                "sale",
                order_of(driven, "cap-2"),
                500,
                1000,
                0,
                (("creator", 500),),
                "sale: fixed 1000 of 5000 (base rate)",
            ),
        ],
    )
    assert await balance(client, "cap-gus") == balance_is("EUR", 1500, 0, 0, 0)
    metrics = await client.http.get(f"{client.payouts_url}/metrics")
    found = re.search(
        r'^afflux_cap_cuts_total\{campaign="plans-cap",scope="creator"\} (\S+)$',
        metrics.text,
        re.MULTILINE,
    )
    assert found is not None, metrics.text
    assert float(found[1]) == 1.0


async def test_a_refund_after_payout_is_clawed_back_from_the_next_run(
    client: DemoClient, driven: Driven, terms: dict[str, CampaignTerms]
) -> None:
    pay = terms["plans-pay"]
    now = system_clock()
    two_days_ago = now - 2 * MS_PER_DAY  # one lock day: approved a day ago
    first, second = f"pay-1-{now}", f"pay-2-{now}"
    await client.place_order(
        pay,
        order_id=first,
        kind="sale",
        amount=Money(20_000, "EUR"),
        coupon="HANA",
        occurred_at=two_days_ago,
    )
    sale = ("sale", first, 2000, 2000, 0, (), "sale: 10% of 20000 (base rate)")
    lines = await ledger_becomes(client, "pay-hana", "plans-pay", [sale])
    assert lines[0]["status"] == "approved"

    async def run(as_of: int, period: str | None = None) -> dict[str, Any]:
        body = {"as_of": as_of} | ({"period": period} if period else {})
        response = await client.http.post(
            f"{client.payouts_url}/v1/payouts/run", headers=client.admin, json=body
        )
        response.raise_for_status()
        mine = [r for r in response.json()["results"] if r["affiliate_id"] == "pay-hana"]
        assert len(mine) == 1, response.json()
        return mine[0]

    unauthorised = await client.http.post(f"{client.payouts_url}/v1/payouts/run", json={})
    assert unauthorised.status_code == 401
    paid = await run(now)
    assert (paid["status"], paid["amount_minor"], paid["currency"]) == ("paid", 2000, "EUR")
    assert paid["payout_id"]
    again = await run(now)
    assert (again["status"], again["amount_minor"]) == ("already_paid", 2000)
    assert again["payout_id"] == paid["payout_id"]
    assert await balance(client, "pay-hana") == balance_is("EUR", 0, 0, 2000, 0)

    # A quarter of the order is refunded after approval and payment: a clawback posting
    # of 2000 * 5000 / 20000 = 500 on the sale's line, dated and approved at the refund,
    # so the approved balance is negative; the paid accrual stays as it was.
    await client.refund(pay, order_id=first, refund_id=f"rf-{first}", amount=5_000)
    clawed = ("sale", first, 1500, 2000, 500, (), "sale: 10% of 20000 (base rate)")
    await ledger_becomes(client, "pay-hana", "plans-pay", [clawed])
    postings = (await get(client, "/v1/creators/pay-hana/ledger", campaign_id="plans-pay"))[
        "postings"
    ]
    back = next(p for p in postings if p["kind"] == "clawback")
    assert (back["amount_minor"], back["status"]) == (-500, "approved")
    assert back["approve_at"] == back["occurred_at"]
    assert back["rule"] == "clawback: refund of 5000 after approval"
    accrual = next(p for p in postings if p["kind"] == "accrual")
    assert (accrual["amount_minor"], accrual["line_id"]) == (2000, back["line_id"])
    assert await balance(client, "pay-hana") == balance_is("EUR", 0, -500, 2000, 500)

    # Another approved sale (800); the next run, in a later period, pays 800 - 500.
    await client.place_order(
        pay,
        order_id=second,
        kind="sale",
        amount=Money(8_000, "EUR"),
        coupon="HANA",
        occurred_at=two_days_ago + 1000,
    )
    later = ("sale", second, 800, 800, 0, (), "sale: 10% of 8000 (base rate)")
    await ledger_becomes(client, "pay-hana", "plans-pay", [clawed, later])
    assert await balance(client, "pay-hana") == balance_is("EUR", 0, 300, 2000, 500)
    # A run is as of now at the latest (a later cut-off would pay what is still pending),
    # named after a later period.
    carried = await run(system_clock(), period_of(now + 40 * MS_PER_DAY, "month"))
    assert (carried["status"], carried["amount_minor"]) == ("paid", 300)
    assert carried["period"] != paid["period"]
    assert await balance(client, "pay-hana") == balance_is("EUR", 0, 0, 2300, 500)

"""Agency overrides and the review queue end to end over HTTP: orders and a refund through
the signed merchant API; the ledger's override postings read back from the agencies'
ledgers and the creator's statement; terms with an agency cycle refused with 422 naming
the field; a burst of orders held for review, listed, approved and declined by the
merchant's key (API, CLI, portal page), and the decisions in the ledger and the KPIs; an
order paid with the creator's own email hash held by the attribution worker's signal.
The tests share one stack; each stands alone (the review page's test makes its own burst
and reads the queue's counts as the earlier tests left them)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest

from afflux.cli import reviews_cmd
from afflux.cli.demo_client import DemoClient
from afflux.cli.main import _parser
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

T = TypeVar("T")
ADMIN_TOKEN = "overrides-reviews-admin-token"
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: agency-shop
      merchant_id: merchant-agency
      currency: EUR
      coupons: {ANA: ana}
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {percent: "10"}}
      overrides:
        levels: 2
        agencies:
          ana: {agency_id: north, share_percent: "10"}
          north: {agency_id: group, share_percent: "5"}
  - effective_from: 0
    terms:
      campaign_id: review-shop
      merchant_id: merchant-review
      currency: EUR
      coupons: {REX: rex}
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {percent: "10"}}
      review:
        hold_on: [burst, self_referral]
        thresholds: {burst_per_hour: 1}
  - effective_from: 0
    terms:
      campaign_id: review-self
      merchant_id: merchant-self
      currency: EUR
      coupons: {SAL: sal}
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {percent: "10"}}
      review:
        hold_on: [self_referral]
        creator_email_hashes: {sal: h-sal}
"""
AFFILIATES = ("ana", "north", "group")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CampaignTerms]:
    path = tmp_path_factory.mktemp("overrides-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return {e.terms.campaign_id: e.terms for e in load_campaign_file(path).campaigns}


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[DemoClient]:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN
    ) as demo:
        yield demo


async def until(check: Callable[[], Awaitable[T]], want: T, timeout_s: float = 60) -> None:
    """Poll until ``check`` answers ``want`` (the stack applies asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got == want:
            return
        assert time.monotonic() < deadline, f"timed out: {got} instead of {want}"
        await asyncio.sleep(0.2)


async def postings_of(
    http: httpx.AsyncClient, payouts: str, affiliate: str
) -> list[dict[str, Any]]:
    answer = await http.get(f"{payouts}/v1/creators/{affiliate}/ledger", headers=ADMIN)
    return list(answer.json()["postings"]) if answer.status_code == 200 else []


async def posting_count(http: httpx.AsyncClient, payouts: str, affiliate: str) -> int:
    return len(await postings_of(http, payouts, affiliate))


def net(postings: list[dict[str, Any]]) -> int:
    return sum(int(p["amount_minor"]) for p in postings)


async def test_agencies_earn_their_share_of_what_the_creator_is_paid(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    shop = terms["agency-shop"]
    payouts = stack.url("payouts")
    order_id = f"agency-1-{time.time_ns()}"
    await client.place_order(
        shop, order_id=order_id, kind="sale", amount=Money(10_000, "EUR"), coupon="ANA"
    )

    async def sums() -> dict[str, int]:
        return {a: net(await postings_of(client.http, payouts, a)) for a in AFFILIATES}

    # 10 % of 10000 to ana; north 10 % of ana's 1000 on top; group (level 2) 5 % of it.
    await until(sums, {"ana": 1000, "north": 100, "group": 50})
    north = await postings_of(client.http, payouts, "north")
    assert [p["kind"] for p in north] == ["override"]
    assert north[0]["rule"].startswith("override: 10% of ana's sale line (agency level 1)")

    # A quarter refunded before approval: every override follows ana's line (750; group's
    # 5 % of it is 37.5, rounded down: never more than its share).
    await client.refund(shop, order_id=order_id, refund_id=f"r-{order_id}", amount=2_500)
    await until(sums, {"ana": 750, "north": 75, "group": 37})
    assert [p["kind"] for p in await postings_of(client.http, payouts, "north")] == [
        "override",
        "override_reduction",
    ]

    statement = await client.http.get(f"{payouts}/v1/creators/ana/statement", headers=ADMIN)
    assert statement.status_code == 200
    assert statement.json()["overrides_on_commission"] == [
        {"campaign_id": "agency-shop", "agency_id": "group", "amount_minor": 37},
        {"campaign_id": "agency-shop", "agency_id": "north", "amount_minor": 75},
    ]
    # The creator is paid in full: the brand pays the overrides on top.
    assert net(await postings_of(client.http, payouts, "ana")) == 750

    # The creator's statement page shows them too.
    ana = await key_of(client, payouts, "creator", "ana")
    async with logged_in(payouts, ana) as browser:
        page = await browser.get("/portal/creators/ana/statement")
    assert page.status_code == 200
    assert "Agency overrides on this commission" in page.text
    assert "north" in page.text


async def test_an_agency_cycle_is_refused_naming_the_field(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    body = terms["agency-shop"].model_dump(mode="json")
    body["overrides"]["agencies"]["group"] = {"agency_id": "ana", "share_percent": "1"}
    answer = await client.http.put(
        f"{stack.url('orders')}/v1/campaigns/agency-shop", json={"terms": body}, headers=ADMIN
    )
    assert answer.status_code == 422, answer.text
    assert "overrides" in answer.text
    assert "ana -> north -> group -> ana" in answer.text


@asynccontextmanager
async def logged_in(payouts: str, key: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A browser session of ``key`` (the portal's login form)."""
    async with httpx.AsyncClient(base_url=payouts) as browser:
        form = await browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        login = await browser.post(
            "/login",
            data={
                "key": key["Authorization"].removeprefix("Bearer "),
                "csrf_token": token.group(1),
                "next": "/portal",
            },
            headers={"origin": payouts},
        )
        assert login.status_code == 303, login.text
        yield browser


async def review_counts(browser: httpx.AsyncClient) -> tuple[int, int, int]:
    """(held, approved, declined) as the review page of review-shop shows them."""
    text = (await browser.get("/portal/campaigns/review-shop/reviews")).text
    found = re.search(r'id="review-counts">(\d+) held, (\d+) approved, (\d+) declined\.<', text)
    assert found, "the review page shows no counts"
    held, approved, declined = (int(n) for n in found.groups())
    return held, approved, declined


async def key_of(client: DemoClient, payouts: str, role: str, subject: str) -> dict[str, str]:
    answer = await client.http.post(
        f"{payouts}/v1/keys", json={"role": role, "subject": subject}, headers=ADMIN
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['key']}"}


async def test_a_burst_is_held_until_the_merchant_approves_or_declines_it(
    stack: Stack,
    client: DemoClient,
    terms: dict[str, CampaignTerms],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shop = terms["review-shop"]
    payouts = stack.url("payouts")
    merchant = await key_of(client, payouts, "merchant", "merchant-review")
    stranger = await key_of(client, payouts, "merchant", "merchant-agency")
    rex = await key_of(client, payouts, "creator", "rex")
    base = client.merchant_now() - 60_000
    orders = [f"rev-{n}-{time.time_ns()}" for n in range(3)]
    before = await posting_count(client.http, payouts, "rex")

    for n, order_id in enumerate(orders):  # three within a minute: the 2nd and 3rd burst
        await client.place_order(
            shop,
            order_id=order_id,
            kind="sale",
            amount=Money(10_000, "EUR"),
            coupon="REX",
            occurred_at=base + n * 1_000,
        )
        # Each in the ledger before the next: orders keyed apart reach it in any order,
        # and one read before an earlier one is held only by a correction (the money is
        # the same; the postings below are the history of the in-order arrival).
        await until(lambda: posting_count(client.http, payouts, "rex"), before + n + 1)

    async def queue() -> list[str]:
        answer = await client.http.get(f"{payouts}/v1/reviews", headers=merchant)
        assert answer.status_code == 200, answer.text
        return [r["order_id"] for r in answer.json()["reviews"]]

    await until(queue, orders[1:])
    listed = (await client.http.get(f"{payouts}/v1/reviews", headers=merchant)).json()
    assert [r["signals"] for r in listed["reviews"]] == [["burst"], ["burst"]]
    assert listed["counts"] == {"held": 2, "approved": 0, "declined": 0}
    held_first, held_second = (r["conversion_id"] for r in listed["reviews"])
    # Another merchant sees nothing; a creator may not list.
    other = await client.http.get(f"{payouts}/v1/reviews", headers=stranger)
    assert other.json()["reviews"] == []
    assert (await client.http.get(f"{payouts}/v1/reviews", headers=rex)).status_code == 403

    # Held: pending, never approved at the lock.
    rex_ledger = await postings_of(client.http, payouts, "rex")
    assert sorted(p["approve_at"] > 2**52 for p in rex_ledger) == [False, True, True]

    # Refusals: a creator's key, an unknown conversion, another merchant, one not held.
    decline = f"{payouts}/v1/reviews/{held_first}/decline"
    assert (await client.http.post(decline, headers=rex)).status_code == 403
    unknown = await client.http.post(f"{payouts}/v1/reviews/nope/approve", headers=merchant)
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["field"] == "conversion_id"
    assert (await client.http.post(decline, headers=stranger)).status_code == 404
    every = await client.http.get(f"{payouts}/v1/reviews?status=all", headers=merchant)
    [not_held] = [r for r in every.json()["reviews"] if r["order_id"] == orders[0]]
    assert not_held["status"] == "not_held"
    refused = await client.http.post(
        f"{payouts}/v1/reviews/{not_held['conversion_id']}/approve", headers=merchant
    )
    assert refused.status_code == 409
    assert "not_held" in refused.text

    # The merchant declines one (its reason on the reversal) and approves the other.
    answer = await client.http.post(
        decline, json={"reason": "self-purchase pattern"}, headers=merchant
    )
    assert answer.status_code == 202, answer.text
    approve = f"{payouts}/v1/reviews/{held_second}/approve"
    assert (await client.http.post(approve, headers=merchant)).status_code == 202

    async def kinds() -> list[str]:
        return sorted(p["kind"] for p in await postings_of(client.http, payouts, "rex"))

    await until(kinds, ["accrual", "accrual", "accrual", "accrual", "moved", "review_decline"])
    postings = await postings_of(client.http, payouts, "rex")
    declined = next(p for p in postings if p["kind"] == "review_decline")
    assert declined["amount_minor"] == -1000
    assert declined["rule"] == (
        "declined in review by merchant:merchant-review (burst): self-purchase pattern"
    )
    # Approved from the lock's end (the decision came before it): 1000 + 1000 pending.
    assert net([p for p in postings if p["approve_at"] < 2**52]) == 2000
    again = await client.http.post(decline, headers=merchant)
    assert again.status_code == 409
    assert "already_decided" in again.text

    kpis = await client.http.get(f"{payouts}/v1/kpis/campaigns/review-shop", headers=merchant)
    assert kpis.status_code == 200
    row = kpis.json()
    assert (row["reviews_held"], row["reviews_approved"], row["reviews_declined"]) == (0, 1, 1)

    # The same queue from the command line (the admin token).
    monkeypatch.setenv("AFFLUX_ADMIN_TOKEN", ADMIN_TOKEN)
    argv = ["reviews", "--url", payouts, "list", "--campaign", "review-shop", "--status", "all"]
    assert await asyncio.to_thread(reviews_cmd.run, _parser().parse_args(argv)) == 0
    printed = capsys.readouterr().out
    assert "held 0, approved 1, declined 1" in printed
    assert f"order {orders[1]}  declined  burst" in printed
    refused = ["reviews", "--url", payouts, "approve", held_first]
    assert await asyncio.to_thread(reviews_cmd.run, _parser().parse_args(refused)) == 1


async def test_the_merchant_declines_from_the_portals_review_page(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    """Stands alone: two orders of rex a second apart make their own burst (the terms
    hold a second sale within the hour), so the later one is held whatever the earlier
    tests of the module left; the page's counts are held to the API's."""
    payouts = stack.url("payouts")
    first, order_id = (f"rev-portal-{n}-{time.time_ns()}" for n in range(2))
    merchant = await key_of(client, payouts, "merchant", "merchant-review")
    before = await posting_count(client.http, payouts, "rex")

    for n, placed in enumerate((first, order_id)):
        await client.place_order(
            terms["review-shop"],
            order_id=placed,
            kind="sale",
            amount=Money(20_000, "EUR"),
            coupon="REX",
            occurred_at=client.merchant_now() - 31_000 + n * 1_000,
        )
        # In the ledger before the next, so the first one's hold (if any) is settled
        # before the counts are read.
        await until(lambda: posting_count(client.http, payouts, "rex"), before + n + 1)

    async def queue() -> dict[str, Any]:
        answer = await client.http.get(f"{payouts}/v1/reviews", headers=merchant)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def held() -> bool:
        return order_id in [r["order_id"] for r in (await queue())["reviews"]]

    await until(held, True)
    listed = await queue()
    [conversion] = [r["conversion_id"] for r in listed["reviews"] if r["order_id"] == order_id]
    counts = listed["counts"]
    async with logged_in(payouts, merchant) as browser:
        page = await browser.get("/portal/campaigns/review-shop/reviews")
        assert page.status_code == 200
        expected = (
            f"{counts['held']} held, {counts['approved']} approved, {counts['declined']} declined."
        )
        assert expected in page.text
        assert order_id in page.text
        action = re.search(rf'action="([^"]+/{re.escape(conversion)}/decline)"', page.text)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert action
        assert csrf
        origin = {"origin": payouts}
        forged = await browser.post(action.group(1), data={"reason": "x"}, headers=origin)
        assert forged.status_code == 403
        sent = await browser.post(
            action.group(1),
            data={"reason": "coupon leak", "csrf_token": csrf.group(1)},
            headers=origin,
        )
        assert sent.status_code == 303, sent.text
        # The notice is built from the decision and the conversion the redirect names.
        shown = await browser.get(sent.headers["location"])
        notice = re.search(r'id="review-done">([^<]+)<', shown.text)
        assert notice
        assert notice.group(1).startswith("declined ")
        assert notice.group(1).endswith(": the ledger applies it in a moment")
        # Text of a link's own is never shown as the page's word.
        spoofed = await browser.get(
            "/portal/campaigns/review-shop/reviews",
            params={"done": "Your account is suspended", "decided": "approve", "conversion": "x"},
        )
        assert spoofed.status_code == 200
        assert "suspended" not in spoofed.text
        assert 'id="review-done"' not in spoofed.text

        # Declined: one fewer held (and the first order, if it was held, still is).
        decided = (counts["held"] - 1, counts["approved"], counts["declined"] + 1)
        await until(lambda: review_counts(browser), decided)
        again = await browser.post(
            action.group(1), data={"csrf_token": csrf.group(1)}, headers=origin
        )
        assert again.status_code == 409
        assert "already_decided" in again.text


async def test_the_worker_holds_an_order_paid_with_the_creators_own_email(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    payouts = stack.url("payouts")
    shop = terms["review-self"]
    for n, email in enumerate(("h-sal", "h-someone-else")):
        body = {
            "order_id": f"self-{n}-{time.time_ns()}",
            "campaign_id": shop.campaign_id,
            "kind": "sale",
            "amount_minor": 5_000,
            "currency": "EUR",
            "coupon_code": "SAL",
            "customer_email_hash": email,
            "occurred_at": client.merchant_now(),
        }
        answer = await client._signed("POST", "/v1/orders", shop.merchant_id, body)
        assert answer.status_code in (200, 202), answer.text

    async def queue() -> list[tuple[str, list[str]]]:
        answer = await client.http.get(
            f"{payouts}/v1/reviews", params={"campaign_id": "review-self"}, headers=ADMIN
        )
        return [(r["affiliate_id"], r["signals"]) for r in answer.json()["reviews"]]

    await until(queue, [("sal", ["self_referral"])])


async def test_refunds_sent_before_their_order_report_no_more_than_the_order(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    """Two refunds of 6000 reach the orders service before their order of 10000 (so it
    cannot check them against its amount): the order's outcome reports 10000 refunded,
    what the attribution worker's capped reversals took off and the ledger reduced
    (ana's line and both agencies' overrides net to 0), not the 12000 asked."""
    shop = terms["agency-shop"]
    order_id = f"agency-early-{time.time_ns()}"
    for n in (1, 2):
        await client.refund(shop, order_id=order_id, refund_id=f"r{n}-{order_id}", amount=6_000)
    await client.place_order(
        shop, order_id=order_id, kind="sale", amount=Money(10_000, "EUR"), coupon="ANA"
    )

    async def outcome() -> dict[str, Any]:
        answer = await client.http.get(
            f"{stack.url('orders')}/v1/orders/{order_id}",
            params={"campaign_id": shop.campaign_id},
            headers=ADMIN,
        )
        if answer.status_code != 200:
            return {}
        [body] = answer.json()["outcomes"]
        return dict(body)

    async def applied() -> tuple[str | None, list[int]]:
        # The index reads conversions and reversals from their own topics: for a moment
        # it may hold the reversals but not yet the conversion (status "pending").
        body = await outcome()
        return body.get("status"), sorted(r["amount_minor"] for r in body.get("reversals", []))

    await until(applied, ("attributed", [4_000, 6_000]), timeout_s=120)
    body = await outcome()
    assert len(body["refunds"]) == 2
    assert body["refunded_minor"] == 10_000 == body["order"]["amount_minor"]

    async def order_nets() -> dict[str, tuple[bool, int]]:
        out = {}
        for affiliate in AFFILIATES:
            postings = await postings_of(client.http, stack.url("payouts"), affiliate)
            mine = [p for p in postings if p["order_id"] == order_id]
            out[affiliate] = (len(mine) >= 2, net(mine))
        return out

    # Each line accrued, then reduced in full: what the ledger took back is the order.
    await until(order_nets, {"ana": (True, 0), "north": (True, 0), "group": (True, 0)})

"""Livestream and survey attribution end to end over HTTP, one stack: a creator's live
stream published on the payouts service claims an order placed on the orders service
during it (and one placed while the stream was still live, once its end is published),
a survey answer given with an order or later attributes an unclaimed order at the
reduced rate, and the merchant reads the rule, the stream and the answer back. A
creator's own key streams only into a campaign it belongs to."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from afflux.cli.demo_client import dev_merchant_secret
from afflux.cli.stack import Stack
from afflux.orders.signing import sign_call, sign_request

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "livestream-survey-admin-token"
MERCHANT = "merchant-live"
CAMPAIGN = "live-shop"  # streams claim orders after cookies
SURVEYED = "survey-shop"  # no streams: survey answers attribute at half the rate
GLOW = "glow-cosmetics"  # streams, latest started first: one test's alone
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: {CAMPAIGN}
      merchant_id: {MERCHANT}
      currency: EUR
      allowed_domains: [shop.example]
      grace_seconds: 1
      precedence: [click_id, coupon, cookie, livestream]
      livestream: {{tail_minutes: 30, overlap: latest_started}}
      plan:
        sale: {{rate: {{percent: "10"}}}}
  - effective_from: 0
    terms:
      campaign_id: {SURVEYED}
      merchant_id: {MERCHANT}
      currency: EUR
      grace_seconds: 1
      survey: {{mode: reduced_rate, reduced_rate_percent: "50", handles: {{"@AnnaStyle": ana}}}}
      plan:
        sale: {{rate: {{percent: "10"}}}}
  - effective_from: 0
    terms:
      campaign_id: {GLOW}
      merchant_id: {MERCHANT}
      currency: EUR
      allowed_domains: [glow.example]
      grace_seconds: 1
      precedence: [click_id, coupon, cookie, livestream]
      livestream: {{overlap: latest_started}}
      plan:
        sale: {{rate: {{percent: "10"}}}}
"""
MINUTE = 60_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Merchant:
    """What a merchant's integration and a platform connector do over HTTP."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack, self.http = stack, http
        self.secret = dev_merchant_secret(MERCHANT)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Afflux-Merchant": MERCHANT,
            "X-Afflux-Signature": sign_call("POST", path, raw, self.secret, int(time.time())),
        }
        return await self.http.post(
            f"{self.stack.url('orders')}{path}", content=raw, headers=headers
        )

    async def order(self, order_id: str, campaign: str = CAMPAIGN, **extra: Any) -> None:
        body = {
            "order_id": order_id,
            "campaign_id": campaign,
            "occurred_at": int(time.time() * 1000),
            "amount_minor": 10_000,
            "currency": "EUR",
            "visitor_id": unique("v"),
            **extra,
        }
        answer = await self.post("/v1/orders", body)
        assert answer.status_code == 202, answer.text

    async def outcome(self, order_id: str) -> dict[str, Any] | None:
        target = f"/v1/orders/{order_id}"
        headers = {
            "X-Afflux-Merchant": MERCHANT,
            "X-Afflux-Signature": sign_request("GET", target, self.secret, int(time.time())),
        }
        answer = await self.http.get(f"{self.stack.url('orders')}{target}", headers=headers)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()["outcomes"][0]
        return found

    async def content(self, body: dict[str, Any]) -> httpx.Response:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return await self.http.post(
            f"{self.stack.url('payouts')}/v1/content", json=body, headers=admin
        )


@pytest.fixture
async def merchant(stack: Stack) -> AsyncIterator[Merchant]:
    async with httpx.AsyncClient(timeout=15) as http:
        yield Merchant(stack, http)


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


def live(content_id: str, who: str, started: int, ended: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "content_id": content_id,
        "platform": "tiktok",
        "affiliate_id": who,
        "campaign_id": CAMPAIGN,
        "kind": "live",
        "url": f"https://tiktok.example/live/{content_id}",
        "published_at": started,
        "live_started_at": started,
    }
    if ended is not None:
        body["live_ended_at"] = ended
    return body


def settled(status: str, rule: str | None = None) -> Callable[[dict[str, Any] | None], bool]:
    def check(found: dict[str, Any] | None) -> bool:
        return bool(found and found["status"] == status and found.get("rule") == rule)

    return check


async def test_an_order_during_a_stream_is_the_live_creators_and_a_later_stream_end_corrects_it(
    merchant: Merchant,
) -> None:
    now = int(time.time() * 1000)
    ended, still_live = unique("s"), unique("s")
    assert (
        await merchant.content(live(ended, "ana", now - 20 * MINUTE, now - MINUTE))
    ).status_code == 202
    assert (
        await merchant.content(live(still_live, "cai", now - 5 * MINUTE, None))
    ).status_code == 202
    # An end before its start is refused, naming the field.
    bad = await merchant.content(live(unique("s"), "ana", now - MINUTE, now - 2 * MINUTE))
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "live_ended_at"

    # Within the ended stream's tail; the other, still live, claims nothing yet.
    order_id = unique("o")
    await merchant.order(order_id)
    by_stream = settled("attributed", "livestream")
    found = await until(lambda: _when(merchant.outcome(order_id), by_stream))
    assert found["decision"]["affiliate_id"] == "ana"
    assert found["decision"]["live_stream_id"] == f"tiktok:{ended}"

    # The later-started stream's end comes: it claims the order too and, started last,
    # wins it; the first answer is replaced and the money moves with it.
    end = int(time.time() * 1000)
    assert (
        await merchant.content(live(still_live, "cai", now - 5 * MINUTE, end))
    ).status_code == 202

    async def moved() -> dict[str, Any] | None:
        found = await merchant.outcome(order_id)
        return found if found and found["decision"]["affiliate_id"] == "cai" else None

    found = await until(moved)
    assert found["rule"] == "livestream"
    assert found["decision"]["correction_reason"] == "late_content"
    assert [c["affiliate_id"] for c in found["replaced"]] == ["ana"]

    # The ledger writes each creator's postings in a step of its own (one hash slot each):
    # cai's accrual can be readable a moment before ana's take-back, so wait for both.
    async def both_sides() -> list[dict[str, Any]]:
        postings = await _postings(merchant, order_id)
        anas = [p for p in postings if p["affiliate_id"] == "ana"]
        caught_up = len(anas) >= 2 and {p["affiliate_id"] for p in postings} == {"ana", "cai"}
        return postings if caught_up else []

    postings = await until(both_sides)
    net: dict[str, int] = {}
    for p in postings:
        net[p["affiliate_id"]] = net.get(p["affiliate_id"], 0) + p["amount_minor"]
    assert net == {"ana": 0, "cai": 1_000}  # 10 % of 100.00 EUR, moved to the later stream


async def test_a_survey_answer_attributes_an_unclaimed_order_at_the_reduced_rate(
    merchant: Merchant,
) -> None:
    with_order, later = unique("o"), unique("o")
    await merchant.order(with_order, SURVEYED, survey={"affiliate_id": "ben"})
    await merchant.order(later, SURVEYED)
    unattributed = await until(lambda: _when(merchant.outcome(later), settled("unattributed")))
    assert unattributed["unattributed_reason"] == "no_click"
    answer = await merchant.post(
        f"/v1/orders/{later}/survey", {"campaign_id": SURVEYED, "handle": "@annastyle"}
    )
    assert answer.status_code == 202, answer.text
    assert (
        await merchant.post(f"/v1/orders/{unique('nope')}/survey", {"campaign_id": SURVEYED})
    ).status_code == 422  # names nobody: the body is judged before the order is looked up

    by_survey = settled("attributed", "survey")
    found = await until(lambda: _when(merchant.outcome(later), by_survey))
    assert found["decision"]["affiliate_id"] == "ana"
    assert found["survey"] == {"affiliate_id": None, "handle": "@annastyle", "given": "later"}
    direct = await until(lambda: _when(merchant.outcome(with_order), by_survey))
    assert direct["decision"]["affiliate_id"] == "ben"
    # 10 % of 100.00 EUR, at the survey's 50 %.
    postings = await until(lambda: _postings(merchant, later))
    accruals = [p for p in postings if p["kind"] == "accrual"]
    assert [p["amount_minor"] for p in accruals] == [500]
    assert "survey-attributed" in accruals[0]["rule"]


async def test_a_creator_key_streams_only_into_a_campaign_it_belongs_to(
    merchant: Merchant,
) -> None:
    """Otherwise any creator could claim a campaign's orders with a stream of its own."""
    http, admin = merchant.http, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    payouts, clicks = merchant.stack.url("payouts"), merchant.stack.url("clicks")
    creator = unique("dee")
    issued = await http.post(
        f"{payouts}/v1/keys", json={"role": "creator", "subject": creator}, headers=admin
    )
    assert issued.status_code == 201, issued.text
    own = {"Authorization": f"Bearer {issued.json()['key']}"}
    now = int(time.time() * 1000)
    stream = live(unique("s"), creator, now - 10 * MINUTE, now - MINUTE)

    refused = await http.post(f"{payouts}/v1/content", json=stream, headers=own)
    assert refused.status_code == 403, refused.text
    problem = refused.json()["detail"][0]
    assert problem["field"] == "campaign_id"
    assert f"does not belong to campaign '{CAMPAIGN}'" in problem["reason"]

    # The merchant's program takes the creator in: the admin issues it a tracking link.
    link = {
        "affiliate_id": creator,
        "campaign_id": CAMPAIGN,
        "destination_url": "https://shop.example/spring",
    }
    made = await http.post(f"{clicks}/v1/links", json=link, headers=admin)
    assert made.status_code == 201, made.text
    accepted = await http.post(f"{payouts}/v1/content", json=stream, headers=own)
    assert accepted.status_code == 202, accepted.text

    # The brand ends it: the link deactivated, the next new stream is refused.
    code = made.json()["code"]
    assert (await http.delete(f"{clicks}/v1/links/{code}", headers=admin)).status_code == 200
    later = live(unique("s"), creator, now - 5 * MINUTE, now - MINUTE)
    ended = await http.post(f"{payouts}/v1/content", json=later, headers=own)
    assert ended.status_code == 403, ended.text

    # A survey handle in the terms makes a creator belong too: ana's key, no link.
    ana = await http.post(
        f"{payouts}/v1/keys", json={"role": "creator", "subject": "ana"}, headers=admin
    )
    post = {**live(unique("p"), "ana", now - MINUTE, None), "campaign_id": SURVEYED}
    post.update(kind="post", live_started_at=None)
    answer = await http.post(
        f"{payouts}/v1/content",
        json=post,
        headers={"Authorization": f"Bearer {ana.json()['key']}"},
    )
    assert answer.status_code == 202, answer.text


async def test_a_member_creators_own_stream_takes_no_order_until_the_merchant_releases_it(
    merchant: Merchant,
) -> None:
    """A creator of the campaign publishes its own stream, started 1 s after the real one
    the merchant published: under latest_started it would take every order of the window
    on its word alone. Held, it claims nothing until the merchant releases it; then the
    orders move to it as content read late, dated at the release."""
    http, admin = merchant.http, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    payouts, clicks = merchant.stack.url("payouts"), merchant.stack.url("clicks")

    async def key(role: str, subject: str) -> dict[str, str]:
        issued = await http.post(
            f"{payouts}/v1/keys", json={"role": role, "subject": subject}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        return {"Authorization": f"Bearer {issued.json()['key']}"}

    brand, thief = await key("merchant", MERCHANT), unique("creator-03")
    own = await key("creator", thief)
    link = {
        "affiliate_id": thief,
        "campaign_id": GLOW,
        "destination_url": "https://glow.example/",
    }
    assert (await http.post(f"{clicks}/v1/links", json=link, headers=admin)).status_code == 201
    now = int(time.time() * 1000)
    real, steal = unique("legit-live"), unique("steal")
    start, end = now - 10 * MINUTE, now - MINUTE
    published = await http.post(
        f"{payouts}/v1/content",
        json={**live(real, "creator-02", start, end), "campaign_id": GLOW},
        headers=brand,
    )
    assert published.status_code == 202, published.text
    first = unique("o")
    await merchant.order(first, GLOW)
    by_stream = settled("attributed", "livestream")
    found = await until(lambda: _when(merchant.outcome(first), by_stream))
    assert found["decision"]["affiliate_id"] == "creator-02"

    stolen = await http.post(
        f"{payouts}/v1/content",
        json={**live(steal, thief, start + 1_000, end), "campaign_id": GLOW},
        headers=own,
    )
    assert stolen.status_code == 202, stolen.text
    second = unique("o")
    await merchant.order(second, GLOW)
    found = await until(lambda: _when(merchant.outcome(second), by_stream))
    assert found["decision"]["affiliate_id"] == "creator-02"

    release = f"{payouts}/v1/content/tiktok/{steal}/release"
    assert (await http.post(release, headers=own)).status_code == 403
    released_at = int(time.time() * 1000)
    assert (await http.post(release, headers=brand)).status_code == 202
    for order_id in (first, second):

        async def moved(order_id: str = order_id) -> dict[str, Any] | None:
            found = await merchant.outcome(order_id)
            return found if found and found["decision"]["affiliate_id"] == thief else None

        found = await until(moved)
        assert found["decision"]["correction_reason"] == "late_content"
        assert found["decision"]["live_stream_id"] == f"tiktok:{steal}"
        # corrected by the release, not by the publication before it
        assert found["decision"]["corrected_at"] >= released_at
        assert [c["affiliate_id"] for c in found["replaced"]] == ["creator-02"]


async def _when(
    pending: Awaitable[dict[str, Any] | None], ok: Callable[[dict[str, Any] | None], bool]
) -> dict[str, Any] | None:
    found = await pending
    return found if ok(found) else None


async def _postings(merchant: Merchant, order_id: str) -> list[dict[str, Any]]:
    found = await merchant.outcome(order_id)
    return list(found["postings"] or []) if found else []

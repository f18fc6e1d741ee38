"""Pay per engagement end to end over HTTP: a creator key publishes its content and
posts stats, a merchant key releases a held content (what a creator's key published
earns nothing before), and the ledger answers the engagement lines; keys that may not
post are refused, bad stats get a 422 naming the field. The payouts service runs, and
the clicks service for the creators' links (a creator publishes only into a campaign it
belongs to); the ledger consumes the content topic itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from afflux.cli.processes import free_port
from afflux.cli.stack import SERVICES, Stack, StackOptions

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "engagement-http-admin-token"
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: glow
      merchant_id: merchant-glow
      currency: EUR
      allowed_domains: [glow.example]
      lock_days: 30
      plan:
        engagement:
          values: {like_minor: "0.5", comment_minor: "2"}
          minimum_interactions: 100
          review: {max_rate: "0.5"}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("engagement-http")
    running = Stack(
        StackOptions(
            work_dir=work,
            ports={name: free_port() for name in SERVICES},
            env={"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN},
        )
    )
    try:
        running.start_infra()
        campaigns = Path(work) / "campaigns.yaml"
        campaigns.write_text(TERMS_YAML)
        running.apply_campaigns(campaigns)
        running.start_service("clicks")
        running.start_service("payouts")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url("payouts"), timeout=10) as client:
        yield client


async def _key(http: httpx.AsyncClient, role: str, subject: str) -> dict[str, str]:
    answer = await http.post(
        "/v1/keys",
        json={"role": role, "subject": subject},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['key']}"}


async def _link(stack: Stack, affiliate_id: str, campaign_id: str) -> None:
    """The program takes the creator in: the admin issues it a tracking link."""
    body = {
        "affiliate_id": affiliate_id,
        "campaign_id": campaign_id,
        "destination_url": "https://glow.example/",
    }
    async with httpx.AsyncClient(base_url=stack.url("clicks"), timeout=10) as clicks:
        made = await clicks.post(
            "/v1/links", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert made.status_code == 201, made.text


async def _until(check: Callable[[], Awaitable[Any]], timeout_s: float = 60) -> Any:
    """Poll until ``check`` answers something truthy (the ledger applies asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def _stats(as_of: int, likes: int, comments: int = 0, followers: int = 10_000) -> dict[str, int]:
    return {
        "as_of": as_of,
        "views": likes * 10,
        "impressions": likes * 20,
        "likes": likes,
        "comments": comments,
        "shares": 0,
        "saves": 0,
        "followers": followers,
    }


async def test_engagement_is_paid_corrected_held_and_released_over_http(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    ana = await _key(http, "creator", "ana")
    bo = await _key(http, "creator", "bo")
    merchant = await _key(http, "merchant", "merchant-glow")
    stranger = await _key(http, "merchant", "merchant-other")
    now = int(time.time() * 1000)
    post = {
        "content_id": f"p-{now}",
        "platform": "instagram",
        "affiliate_id": "ana",
        "campaign_id": "glow",
        "kind": "post",
        "url": "https://instagram.com/p/1",
        "published_at": now - 3_600_000,
    }
    assert (await http.post("/v1/content", json=post, headers=bo)).status_code == 403
    # Not in the program yet: no link, coupon or posting of ana's in glow.
    outside = await http.post("/v1/content", json=post, headers=ana)
    assert outside.status_code == 403, outside.text
    assert outside.json()["detail"][0]["field"] == "campaign_id"
    await _link(stack, "ana", "glow")
    published = await http.post("/v1/content", json=post, headers=ana)
    assert published.status_code == 202, published.text
    stats = f"/v1/content/instagram/{post['content_id']}/stats"

    # Refused: another creator, a merchant of another campaign, bad counts, the future.
    assert (await http.post(stats, json=_stats(now, 300), headers=bo)).status_code == 404
    assert (await http.post(stats, json=_stats(now, 300), headers=stranger)).status_code == 404
    for body, field in (
        ({**_stats(now, 300), "likes": -1}, "likes"),
        ({**_stats(now, 300), "shares": 10**12 + 1}, "shares"),
        (_stats(now + 3_600_000, 300), "as_of"),
    ):
        refused = await http.post(stats, json=body, headers=ana)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["field"] == field

    async def ledger_of_ana() -> list[dict[str, Any]]:
        ledger = await http.get("/v1/creators/ana/ledger", headers=ana)
        # 404 until the ledger has seen the creator
        return list(ledger.json()["postings"]) if ledger.status_code == 200 else []

    async def postings_of_ana(count: int) -> list[dict[str, Any]]:
        postings = await ledger_of_ana()
        return postings if len(postings) >= count else []

    async def row_of(content_id: str) -> dict[str, Any] | None:
        answer = await http.get(
            "/v1/kpis/creators/ana/contents", headers=ana, params={"campaign_id": "glow"}
        )
        rows = answer.json()["contents"] if answer.status_code == 200 else []
        mine = [r for r in rows if r["content_id"] == content_id and r["snapshots"]]
        return mine[0] if mine else None

    # The platform's figures, through the brand's key: 300 likes and 20 comments. The
    # content is the creator's word (it could name another author's post id): nothing
    # is paid until the merchant releases it, then 150 + 40; then the platform removes
    # 100 fake likes.
    answer = await http.post(stats, json=_stats(now - 60_000, 300, 20), headers=merchant)
    assert answer.status_code == 202, answer.text
    row = await _until(partial(row_of, post["content_id"]))
    assert row is not None
    assert (row["held_for_review"], row["awaiting_release"]) == (True, True)
    # Its figures wait for the release too: the reach of a post that may be another's.
    assert (row["engagement"], row["views"]) == (0, 0)
    assert await ledger_of_ana() == []
    release = f"/v1/content/instagram/{post['content_id']}/release"
    assert (await http.post(release, headers=merchant)).status_code == 202
    postings = await _until(partial(postings_of_ana, 1))
    answer = await http.post(stats, json=_stats(now, 200, 20), headers=merchant)
    assert answer.status_code == 202, answer.text
    postings = await _until(partial(postings_of_ana, 2))
    assert [(p["kind"], p["amount_minor"]) for p in postings] == [
        ("engagement_pay", 190),
        ("engagement_correction", -50),
    ]
    assert postings[1]["corrects"] == postings[0]["posting_id"]
    # The lock counts from the publication's receipt, not from a published_at an hour before.
    assert postings[0]["approve_at"] >= now + 30 * 86_400_000

    # A live stream of 600 likes from 1,000 followers is held until the merchant releases it.
    live = {
        **post,
        "content_id": f"l-{now}",
        "kind": "live",
        "live_started_at": now - 600_000,  # a creator reports its stream as it happens
        "live_ended_at": now - 700_000,
    }
    refused = await http.post("/v1/content", json=live, headers=ana)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "live_ended_at"
    live["live_ended_at"] = now - 60_000
    assert (await http.post("/v1/content", json=live, headers=ana)).status_code == 202
    live_stats = f"/v1/content/instagram/{live['content_id']}/stats"
    held = await http.post(live_stats, json=_stats(now, 600, followers=1_000), headers=ana)
    assert held.status_code == 202
    release = f"/v1/content/instagram/{live['content_id']}/release"
    assert (await http.post(release, headers=ana)).status_code == 403
    assert (await http.post(release, json={"note": "checked"}, headers=merchant)).status_code == 202

    async def released() -> list[dict[str, Any]]:
        return [p for p in await ledger_of_ana() if p["line_id"] != postings[0]["line_id"]]

    paid = await _until(released)
    assert [(p["kind"], p["amount_minor"]) for p in paid] == [("engagement_pay", 300)]
    assert "released after review" in paid[0]["rule"]

    # Figures the creator posts with its own key, however calm, wait for the brand.
    own = {**post, "content_id": f"o-{now}"}
    assert (await http.post("/v1/content", json=own, headers=ana)).status_code == 202
    own_stats = f"/v1/content/instagram/{own['content_id']}/stats"
    reported = await http.post(own_stats, json=_stats(now, 400), headers=ana)
    assert reported.status_code == 202, reported.text

    row = await _until(partial(row_of, own["content_id"]))
    assert row is not None
    assert row["held_for_review"] is True
    assert row["engagement"] == 0  # the creator's own figures count once confirmed
    known = {p["posting_id"] for p in await ledger_of_ana()}
    confirm = own_stats.replace("/stats", "/release")
    assert (await http.post(confirm, headers=merchant)).status_code == 202

    async def confirmed() -> list[dict[str, Any]]:
        return [p for p in await ledger_of_ana() if p["posting_id"] not in known]

    confirmed_pay = await _until(confirmed)
    assert [(p["kind"], p["amount_minor"]) for p in confirmed_pay] == [("engagement_pay", 200)]
    assert "published by the creator itself" in confirmed_pay[0]["rule"]

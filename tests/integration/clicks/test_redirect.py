"""GET/HEAD /c/{code}: the redirect, the visitor cookie, the click event and its flags."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from afflux.clicks.app import create_app
from afflux.clicks.visitor_cookie import visitor_id_of
from afflux.shared.core.ids import derived_id, visitor_of_click
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import ClickRecorded

from .conftest import (
    ADMIN,
    IP_SECRET,
    ClickWatch,
    click_id_of,
    clicks_settings,
    client_for,
    create_link,
    wait_for_campaign,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def link(client: httpx.AsyncClient, campaign: CampaignTerms) -> dict[str, Any]:
    return await create_link(client, campaign.campaign_id, "https://shop.example.com/p?x=1#top")


def ip_hash(ip: str) -> str:
    return hmac.new(IP_SECRET.encode(), ip.encode(), hashlib.sha256).hexdigest()


async def test_click_redirects_with_the_click_id_and_sets_the_visitor_cookie(
    client: httpx.AsyncClient, link: dict[str, Any], clicks_topic: ClickWatch
) -> None:
    response = await client.get(
        f"/c/{link['code']}?sub1=story&sub5=e&utm_source=ig&utm_medium=social&other=x",
        headers={"Referer": "https://instagram.com/creator"},
    )
    assert response.status_code == 302
    location = response.headers["location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "shop.example.com",
        "/p",
        "top",
    )
    query = parse_qs(parts.query)
    assert query["x"] == ["1"]  # the destination's own query is kept
    click_id = query["afx_click"][0]

    cookie = response.headers["set-cookie"]
    visitor = visitor_id_of(response.cookies["afx_vid"])
    assert re.fullmatch(r"v_[0-9a-f]{32}~[0-9a-f]{32}", response.cookies["afx_vid"])
    assert visitor_of_click(click_id) == visitor
    assert "Max-Age=31536000" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http, no trusted proxy saying https
    assert response.headers["cache-control"] == "no-store"

    event = await clicks_topic.click(click_id)
    click = ClickRecorded.model_validate(event)
    assert click.event_id == derived_id("click", click_id)
    assert click.visitor_id == visitor
    assert (click.link_code, click.affiliate_id) == (link["code"], link["affiliate_id"])
    assert click.sub_ids == {"sub1": "story", "sub5": "e"}
    assert click.utm == {"utm_source": "ig", "utm_medium": "social"}
    assert click.referrer == "https://instagram.com/creator"
    assert click.ip_hash == ip_hash("127.0.0.1")
    assert (click.is_bot, click.is_duplicate) == (False, False)
    index = clicks_topic.events.index(event)
    assert clicks_topic.keys[index] == visitor.encode()  # keyed by visitor for the join


async def test_a_returning_visitor_keeps_its_id_and_gets_no_new_cookie(
    client: httpx.AsyncClient, link: dict[str, Any]
) -> None:
    first = await client.get(f"/c/{link['code']}")
    cookie = first.cookies["afx_vid"]
    client.cookies.clear()
    again = await client.get(f"/c/{link['code']}", headers={"Cookie": f"afx_vid={cookie}"})
    assert again.status_code == 302
    assert "set-cookie" not in again.headers
    assert visitor_of_click(click_id_of(again.headers["location"])) == visitor_id_of(cookie)


@pytest.mark.parametrize("cookie", ["x", "garbage", "v_abc", "v_" + "0" * 31 + "G"])
async def test_a_visitor_cookie_not_of_the_redirects_form_is_replaced(
    client: httpx.AsyncClient, link: dict[str, Any], cookie: str
) -> None:
    client.cookies.clear()
    answer = await client.get(f"/c/{link['code']}", headers={"Cookie": f"afx_vid={cookie}"})
    assert answer.status_code == 302
    visitor = visitor_id_of(answer.cookies["afx_vid"])
    assert re.fullmatch(r"v_[0-9a-f]{32}", visitor)
    assert visitor_of_click(click_id_of(answer.headers["location"])) == visitor


async def test_a_visitor_id_seen_in_a_click_id_cannot_be_clicked_as(
    client: httpx.AsyncClient, link: dict[str, Any], clicks_topic: ClickWatch
) -> None:
    """A shopper's visitor id is in every landing URL (``afx_click``): a creator who saw
    one and clicked their own link with it as cookie won the shopper's next order
    attributed by cookie. Only a cookie this service sealed names a visitor."""
    client.cookies.clear()
    shopper = await client.get(f"/c/{link['code']}")
    seen = visitor_of_click(click_id_of(shopper.headers["location"]))
    client.cookies.clear()

    forged = await client.get(f"/c/{link['code']}", headers={"Cookie": f"afx_vid={seen}"})
    resealed = await client.get(
        f"/c/{link['code']}", headers={"Cookie": f"afx_vid={seen}~{'0' * 32}"}
    )

    for answer in (forged, resealed):
        assert answer.status_code == 302
        click = await clicks_topic.click(click_id_of(answer.headers["location"]))
        assert click["visitor_id"] != seen
        assert visitor_id_of(answer.cookies["afx_vid"]) == click["visitor_id"]


async def test_same_visitor_same_link_within_the_window_is_flagged_duplicate(
    client: httpx.AsyncClient, link: dict[str, Any], clicks_topic: ClickWatch
) -> None:
    first = await client.get(f"/c/{link['code']}")
    cookie = first.cookies["afx_vid"]
    client.cookies.clear()
    second = await client.get(f"/c/{link['code']}", headers={"Cookie": f"afx_vid={cookie}"})
    assert second.status_code == 302
    assert (await clicks_topic.click(click_id_of(first.headers["location"])))[
        "is_duplicate"
    ] is False
    assert (await clicks_topic.click(click_id_of(second.headers["location"])))[
        "is_duplicate"
    ] is True


@pytest.mark.parametrize(
    ("method", "user_agent"),
    [
        ("HEAD", None),
        ("GET", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
        ("GET", "facebookexternalhit/1.1"),
    ],
)
async def test_head_and_link_previews_still_redirect_but_are_flagged_bot(
    client: httpx.AsyncClient,
    link: dict[str, Any],
    clicks_topic: ClickWatch,
    method: str,
    user_agent: str | None,
) -> None:
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = await client.request(method, f"/c/{link['code']}", headers=headers)
    assert response.status_code == 302
    event = await clicks_topic.click(click_id_of(response.headers["location"]))
    assert event["is_bot"] is True


async def test_unknown_code_gets_a_404_page_with_the_code_escaped(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/c/<script>alert(1)</script>")
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/c/abc%0d%0aSet-Cookie:%20evil=1",
        "/c/abc%0D%0ALocation:%20https://evil.example.org/",
        "/c/abc%0aSet-Cookie:%20evil=1",
        "/c/" + "a" * 65,
        "/c/cod%C3%A9",
        "/c/",
        "/c/a/b",
    ],
    ids=["crlf-encoded", "crlf-upper", "lf-only", "too-long", "non-ascii", "empty", "slash"],
)
async def test_malformed_codes_are_404_without_header_injection(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "set-cookie" not in response.headers
    assert "location" not in response.headers


async def test_forwarded_for_is_trusted_only_from_configured_proxies(
    clicks_app: FastAPI, link: dict[str, Any], clicks_topic: ClickWatch
) -> None:
    spoof = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    async with client_for(clicks_app, "198.51.100.20") as direct:
        untrusted = await direct.get(f"/c/{link['code']}", headers=spoof)
    async with client_for(clicks_app, "10.1.2.3") as proxy:
        trusted = await proxy.get(f"/c/{link['code']}", headers=spoof)

    assert "Secure" not in untrusted.headers["set-cookie"]
    assert "Secure" in trusted.headers["set-cookie"]
    untrusted_event = await clicks_topic.click(click_id_of(untrusted.headers["location"]))
    trusted_event = await clicks_topic.click(click_id_of(trusted.headers["location"]))
    assert untrusted_event["ip_hash"] == ip_hash("198.51.100.20")
    assert trusted_event["ip_hash"] == ip_hash("203.0.113.9")
    assert "203.0.113.9" not in str(trusted_event)


async def test_an_ipv6_client_is_hashed_as_its_64(
    clicks_app: FastAPI, link: dict[str, Any], clicks_topic: ClickWatch
) -> None:
    async with client_for(clicks_app, "10.1.2.3") as proxy:
        response = await proxy.get(
            f"/c/{link['code']}", headers={"X-Forwarded-For": "2001:DB8:0:7::1%eth0"}
        )
    event = await clicks_topic.click(click_id_of(response.headers["location"]))
    # What a merchant hashes for the same_ip signal: the group, never the address.
    assert event["ip_hash"] == ip_hash("2001:db8:0:7::/64")


async def test_every_forwarded_for_line_of_a_trusted_proxy_counts_in_order(
    clicks_app: FastAPI, link: dict[str, Any], clicks_topic: ClickWatch
) -> None:
    # HTTP allows repeating the header; its lines join with commas into one list. The
    # last line here holds only a trusted proxy: the client is on the line before it.
    lines = [
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-For", "10.1.2.4"),
    ]
    async with client_for(clicks_app, "10.1.2.3") as proxy:
        response = await proxy.get(f"/c/{link['code']}", headers=lines)

    event = await clicks_topic.click(click_id_of(response.headers["location"]))
    assert event["ip_hash"] == ip_hash("203.0.113.9")


async def test_deactivation_reaches_another_instance_without_a_restart(
    infra: Any,
    clicks_app: FastAPI,
    client: httpx.AsyncClient,
    link: dict[str, Any],
    campaign: CampaignTerms,
    tmp_path: Any,
) -> None:
    other = create_app(clicks_settings(infra, tmp_path))
    async with other.router.lifespan_context(other), client_for(other) as replica:
        await wait_for_campaign(other, campaign.campaign_id)
        assert (await replica.get(f"/c/{link['code']}")).status_code == 302  # now cached
        assert (await client.delete(f"/v1/links/{link['code']}", headers=ADMIN)).status_code == 200
        statuses = []
        for _ in range(100):
            statuses.append((await replica.get(f"/c/{link['code']}")).status_code)
            if statuses[-1] == 404:
                break
            await asyncio.sleep(0.05)
        assert statuses[-1] == 404


async def test_metrics_count_clicks_by_campaign_and_outcome(
    client: httpx.AsyncClient, link: dict[str, Any], campaign: CampaignTerms
) -> None:
    await client.get(f"/c/{link['code']}")
    await client.get("/c/no-such-code")
    text = (await client.get("/metrics")).text
    assert f'afflux_clicks_total{{campaign="{campaign.campaign_id}",outcome="redirected"}}' in text
    assert 'afflux_clicks_total{campaign="none",outcome="not_found"}' in text
    for name in (
        "afflux_redirect_seconds_bucket",
        "afflux_clicks_wal_bytes",
        "afflux_clicks_wal_max_bytes",
        "afflux_clicks_wal_segments",
        "afflux_clicks_wal_unsent_records",
        "afflux_clicks_wal_fsync_seconds_bucket",
        "afflux_click_events_sent_total",
    ):
        assert name in text


async def test_healthz_is_ready_with_broker_redis_and_campaigns(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks == {
        "campaigns": True,
        "redis": True,
        "links": True,
        "kafka": "ok",
        "click_log": "ok",
    }

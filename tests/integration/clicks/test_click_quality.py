"""Clicks no person made, replayed through the real clicks service: flagged, kept, not paid.

The findings: forty cookie-less clicks from one address and one browser on a
pay-per-click campaign were all valid and all paid; a redirect loaded as an
image or an iframe (cookie stuffing) counted and set the attribution cookie;
thirty clicks from one address rotating the browser's build number
(``Chrome/120.0.6099.1``, ``.2``, ...) were all valid but the two the rate caught.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from afflux.clicks.app import create_app
from afflux.payouts import reads
from afflux.payouts.keys import Keys
from afflux.payouts.store import Batch, ClickItem, LedgerStore
from afflux.payouts.views import Counts, kpi_row, tally
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded
from afflux.shared.io.campaign_publish import publish_terms

from .conftest import (
    ClickWatch,
    click_id_of,
    clicks_settings,
    client_for,
    create_link,
    shop_terms,
    unique,
    wait_for_campaign,
)

pytestmark = pytest.mark.integration

PER_CLICK_MINOR = 7


@pytest.fixture(scope="module")
async def pay_per_click(infra: Any) -> CampaignTerms:
    base = shop_terms(unique("clicks-ppc")).model_dump()
    terms = CampaignTerms.model_validate(
        {**base, "plan": {"click": {"per_click_minor": PER_CLICK_MINOR}}}
    )
    await publish_terms(infra.kafka_bootstrap, [(terms, 0)])
    return terms


async def cookieless_clicks(
    http: httpx.AsyncClient, code: str, n: int, user_agents: list[str] | None = None
) -> list[str]:
    click_ids = []
    for i in range(n):
        http.cookies.clear()  # a new visitor every time: no afx_vid
        headers = {"User-Agent": user_agents[i]} if user_agents else None
        response = await http.get(f"/c/{code}", headers=headers)
        assert response.status_code == 302
        click_ids.append(click_id_of(response.headers["location"]))
    return click_ids


async def paid_clicks(
    redis_url: str, terms: CampaignTerms, clicks: list[ClickRecorded]
) -> tuple[int, dict[str, Any]]:
    """What the payouts ledger pays for ``clicks``, and the creator's KPIs."""
    version = TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)
    redis: Redis[bytes] = Redis.from_url(redis_url, db=3)
    store = LedgerStore(redis, Keys(f"afx:test:{uuid.uuid4().hex[:8]}:"))
    try:
        kind = terms.plan.period
        periods = {period_of(c.occurred_at, kind) for c in clicks}
        batch = Batch(clicks=[ClickItem.of(c, period_of(c.occurred_at, kind)) for c in clicks])
        await store.apply(batch, lambda cid: (version,), lambda cid: terms.currency)
        paid, counts = 0, dict[str, Counts]()
        cps = [(terms.campaign_id, period) for period in periods]
        for affiliate in {c.affiliate_id for c in clicks}:
            postings = await reads.period_postings(store, affiliate, cps)
            paid += sum(p.amount_minor for p in postings if p.line_kind == "click")
        for cid, period in cps:
            kpis, click_tally = await reads.period_counters(store, cid, period)
            tally(kpis, click_tally, terms.currency, counts)
        (creator,) = counts.values()
        return paid, kpi_row(creator)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


async def test_forty_cookieless_clicks_from_one_address_and_browser_count_and_pay_once(
    infra: Any, clicks_app: FastAPI, pay_per_click: CampaignTerms, clicks_topic: ClickWatch
) -> None:
    await wait_for_campaign(clicks_app, pay_per_click.campaign_id)
    async with client_for(clicks_app, "192.0.2.40") as http:
        link = await create_link(http, pay_per_click.campaign_id, "https://shop.example.com/")
        click_ids = await cookieless_clicks(http, link["code"], 40)
        metrics = (await http.get("/metrics")).text

    events = [ClickRecorded.model_validate(await clicks_topic.click(c)) for c in click_ids]
    assert [e.flags for e in events] == [()] + [("ip_duplicate",)] * 39
    assert all(e.is_duplicate and not e.is_bot for e in events[1:])  # for older readers
    # The raw user agent is not kept once classified.
    assert {(e.user_agent, e.ua_family, e.ua_version) for e in events} == {("", "Chrome", "126")}
    assert 'afflux_clicks_flagged_total{reason="ip_duplicate"}' in metrics
    assert (
        f'afflux_clicks_total{{campaign="{pay_per_click.campaign_id}",outcome="ip_duplicate"}} 39.0'
        in metrics
    )

    paid, kpis = await paid_clicks(infra.redis_url, pay_per_click, events)
    assert paid == PER_CLICK_MINOR  # the one valid click, not forty
    assert (kpis["valid_clicks"], kpis["flagged_clicks"]) == (1, 39)
    assert kpis["flagged_by_reason"] == {
        "bot": 0,
        "duplicate": 0,
        "ip_duplicate": 39,
        "rate": 0,
        "embedded": 0,
    }


def chrome(version: str) -> str:
    return (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{version} Safari/537.36"
    )


async def test_thirty_clicks_from_one_address_rotating_the_browser_build_pay_once(
    infra: Any, clicks_app: FastAPI, pay_per_click: CampaignTerms, clicks_topic: ClickWatch
) -> None:
    builds = [chrome(f"120.0.6099.{n}") for n in range(1, 31)]
    async with client_for(clicks_app, "192.0.2.44") as http:
        link = await create_link(http, pay_per_click.campaign_id, "https://shop.example.com/")
        click_ids = await cookieless_clicks(http, link["code"], 30, builds)

    events = [ClickRecorded.model_validate(await clicks_topic.click(c)) for c in click_ids]
    assert [e.flags for e in events] == [()] + [("ip_duplicate",)] * 29
    assert {(e.ua_family, e.ua_version) for e in events} == {("Chrome", "120")}
    paid, kpis = await paid_clicks(infra.redis_url, pay_per_click, events)
    assert paid == PER_CLICK_MINOR
    assert (kpis["valid_clicks"], kpis["flagged_by_reason"]["ip_duplicate"]) == (1, 29)


async def test_one_address_rotating_browsers_majors_and_links_is_paid_the_bound_per_creator(
    infra: Any, clicks_app: FastAPI, pay_per_click: CampaignTerms, clicks_topic: ClickWatch
) -> None:
    """The default bound, AFFLUX_CLICKS_IP_AGENTS_PER_WINDOW = 4: a household's browsers,
    over all the creator's links to the campaign (a creator makes as many as it likes)."""
    await wait_for_campaign(clicks_app, pay_per_click.campaign_id)
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        *(chrome(f"{major}.0.0.0") for major in range(100, 128)),
    ]
    async with client_for(clicks_app, "192.0.2.45") as http:
        link = await create_link(http, pay_per_click.campaign_id, "https://shop.example.com/")
        other = await create_link(
            http,
            pay_per_click.campaign_id,
            "https://shop.example.com/",
            affiliate_id=link["affiliate_id"],
        )
        click_ids = await cookieless_clicks(http, link["code"], 30, agents)
        # The bound is the creator's: the same address on its other link is not counted.
        click_ids += await cookieless_clicks(http, other["code"], 1, agents[-1:])
        metrics = (await http.get("/metrics")).text

    events = [ClickRecorded.model_validate(await clicks_topic.click(c)) for c in click_ids]
    assert [e.flags for e in events] == [()] * 4 + [("ip_duplicate",)] * 27
    assert [(e.ua_family, e.ua_version) for e in events[:4]] == [
        ("Firefox", "128"),
        ("Safari", "17"),
        ("Chrome", "100"),
        ("Chrome", "101"),
    ]
    assert (
        f'afflux_clicks_total{{campaign="{pay_per_click.campaign_id}",outcome="ip_duplicate"}}'
        in metrics
    )
    paid, kpis = await paid_clicks(infra.redis_url, pay_per_click, events)
    assert paid == 4 * PER_CLICK_MINOR
    assert (kpis["valid_clicks"], kpis["flagged_by_reason"]["ip_duplicate"]) == (4, 27)


async def test_a_zero_bound_pays_every_distinct_browser_of_an_address(
    infra: Any, pay_per_click: CampaignTerms, clicks_topic: ClickWatch, tmp_path: Any
) -> None:
    app = create_app(clicks_settings(infra, tmp_path, clicks_ip_agents_per_window=0))
    majors = [chrome(f"{major}.0.0.0") for major in range(100, 110)]
    async with app.router.lifespan_context(app), client_for(app, "192.0.2.46") as http:
        await wait_for_campaign(app, pay_per_click.campaign_id)
        link = await create_link(http, pay_per_click.campaign_id, "https://shop.example.com/")
        click_ids = await cookieless_clicks(http, link["code"], 10, majors)
        click_ids += await cookieless_clicks(http, link["code"], 1, [chrome("100.0.1.2")])
    events = [await clicks_topic.click(c) for c in click_ids]
    assert [e["flags"] for e in events] == [[]] * 10 + [["ip_duplicate"]]


async def test_a_campaigns_terms_set_its_own_bound_per_address_and_link(
    infra: Any, clicks_app: FastAPI, clicks_topic: ClickWatch
) -> None:
    base = shop_terms(unique("clicks-strict")).model_dump()
    strict = CampaignTerms.model_validate({**base, "ip_agents_per_window": 1})
    await publish_terms(infra.kafka_bootstrap, [(strict, 0)])
    await wait_for_campaign(clicks_app, strict.campaign_id)
    browsers = [chrome("126.0.0.0"), chrome("127.0.0.0"), chrome("128.0.0.0")]
    async with client_for(clicks_app, "192.0.2.47") as http:
        link = await create_link(http, strict.campaign_id, "https://shop.example.com/")
        click_ids = await cookieless_clicks(http, link["code"], 3, browsers)
    events = [await clicks_topic.click(c) for c in click_ids]
    assert [e["flags"] for e in events] == [[], ["ip_duplicate"], ["ip_duplicate"]]


STUFFING = [
    pytest.param(
        {"Sec-Fetch-Dest": "image", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
        id="img",
    ),
    pytest.param(
        {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"},
        id="iframe",
    ),
    pytest.param({"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "no-cors"}, id="no-cors-fetch"),
    pytest.param({"Sec-Fetch-Dest": "script", "Sec-Fetch-Mode": "no-cors"}, id="script"),
]


@pytest.mark.parametrize("fetch", STUFFING)
async def test_an_embedded_request_is_redirected_flagged_and_sets_no_cookie(
    clicks_app: FastAPI, campaign: CampaignTerms, clicks_topic: ClickWatch, fetch: dict[str, str]
) -> None:
    async with client_for(clicks_app, "192.0.2.41") as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
        http.cookies.clear()
        headers = {**fetch, "Referer": "https://stuffer.example.net/blog"}
        response = await http.get(f"/c/{link['code']}", headers=headers)
    assert response.status_code == 302
    assert "afx_click=" in response.headers["location"]
    assert "set-cookie" not in response.headers
    event = ClickRecorded.model_validate(
        await clicks_topic.click(click_id_of(response.headers["location"]))
    )
    assert event.flags == ("embedded",)
    assert event.flagged


@pytest.mark.parametrize(
    "fetch",
    [
        pytest.param(
            {
                "Sec-Fetch-Dest": "document",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Site": "cross-site",
            },
            id="navigation-from-another-site",
        ),
        pytest.param({}, id="no-fetch-metadata"),
    ],
)
async def test_a_top_level_navigation_counts_and_sets_the_cookie(
    clicks_app: FastAPI, campaign: CampaignTerms, clicks_topic: ClickWatch, fetch: dict[str, str]
) -> None:
    async with client_for(clicks_app, "192.0.2.42") as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
        http.cookies.clear()
        response = await http.get(f"/c/{link['code']}", headers=fetch)
    assert response.status_code == 302
    assert response.headers["set-cookie"].startswith("afx_vid=")
    event = await clicks_topic.click(click_id_of(response.headers["location"]))
    assert (event["flags"], event["is_bot"], event["is_duplicate"]) == ([], False, False)


PREFETCHES = [
    pytest.param(
        "192.0.2.51",
        {
            "Sec-Purpose": "prefetch",
            "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Site": "cross-site",
        },
        id="speculation-rules-prefetch",
    ),
    pytest.param(
        "192.0.2.52",
        {
            "Sec-Purpose": "prefetch;prerender",
            "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Site": "cross-site",
        },
        id="prerender",
    ),
    pytest.param("192.0.2.53", {"Purpose": "prefetch"}, id="legacy-purpose"),
]  # an address each: the person's click opens its window


@pytest.mark.parametrize(("address", "fetch"), PREFETCHES)
async def test_a_prefetch_is_declined_and_the_persons_later_click_counts(
    clicks_app: FastAPI,
    campaign: CampaignTerms,
    clicks_topic: ClickWatch,
    address: str,
    fetch: dict[str, str],
) -> None:
    """A creator's page prefetching its own link (speculation rules) made every reader a
    counted, paid click with an attribution cookie, no one having clicked; and the
    person's real click within the hour became ``ip_duplicate`` of the prefetch, so the
    order naming it went unattributed. A prefetch is answered with an error the browser
    does not keep: no click, no cookie, and the click comes to the service when made."""
    async with client_for(clicks_app, address) as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
        http.cookies.clear()
        declined = await http.get(f"/c/{link['code']}?sub1=story", headers=fetch)
        head = await http.head(f"/c/{link['code']}", headers=fetch)
        metrics = (await http.get("/metrics")).text
        http.cookies.clear()  # the HEAD's: a bot's request may still name a visitor
        clicked = await http.get(
            f"/c/{link['code']}",
            headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate",
                     "Sec-Fetch-Site": "cross-site", "Sec-Fetch-User": "?1"},
        )  # fmt: skip
    assert declined.status_code == 503
    assert "location" not in declined.headers
    assert "set-cookie" not in declined.headers
    assert declined.headers["cache-control"] == "no-store"
    # kept and shown by an in-app browser, the page makes the tap a click
    assert f'content="0;url=/c/{link["code"]}?sub1=story"' in declined.text
    assert f'<a href="/c/{link["code"]}?sub1=story">Open the link</a>' in declined.text
    assert head.status_code == 302  # a HEAD stays a bot's request, redirected
    counted = f'afflux_clicks_total{{campaign="{campaign.campaign_id}",outcome="prefetch"}}'
    assert counted in metrics
    assert clicked.status_code == 302
    assert clicked.headers["set-cookie"].startswith("afx_vid=")
    event = await clicks_topic.click(click_id_of(clicked.headers["location"]))
    assert event["flags"] == []


async def test_an_address_clicking_more_than_the_rate_across_links_is_flagged_rate(
    infra: Any, campaign: CampaignTerms, clicks_topic: ClickWatch, tmp_path: Any
) -> None:
    app = create_app(clicks_settings(infra, tmp_path, clicks_ip_rate_per_minute=3))
    async with app.router.lifespan_context(app), client_for(app, "192.0.2.43") as http:
        await wait_for_campaign(app, campaign.campaign_id)
        links = [
            await create_link(http, campaign.campaign_id, "https://shop.example.com/")
            for _ in range(5)
        ]
        click_ids = []
        for link in links:  # other links each time: no duplicate window applies
            click_ids += await cookieless_clicks(http, link["code"], 1)
        metrics = (await http.get("/metrics")).text
    events = [await clicks_topic.click(c) for c in click_ids]
    assert [e["flags"] for e in events] == [[], [], [], ["rate"], ["rate"]]
    assert 'afflux_clicks_flagged_total{reason="rate"} 2.0' in metrics


# IPv6: a host holds a whole /64 and may click from a new address each time. Its clicks
# reach the service through a trusted proxy (10.0.0.0/8 in these settings), whose
# X-Forwarded-For names the client, as a real deployment behind a load balancer does.
PROXY = "10.0.0.7"


async def forwarded_clicks(http: httpx.AsyncClient, code: str, addresses: list[str]) -> list[str]:
    """One cookie-less click per client address, each forwarded by the trusted proxy."""
    click_ids = []
    for address in addresses:
        http.cookies.clear()
        response = await http.get(f"/c/{code}", headers={"X-Forwarded-For": address})
        assert response.status_code == 302
        click_ids.append(click_id_of(response.headers["location"]))
    return click_ids


async def test_sixty_clicks_rotating_addresses_inside_one_ipv6_64_count_and_pay_once(
    infra: Any, clicks_app: FastAPI, pay_per_click: CampaignTerms, clicks_topic: ClickWatch
) -> None:
    await wait_for_campaign(clicks_app, pay_per_click.campaign_id)
    rotated = [f"2001:db8:60:2::{n:x}" for n in range(1, 61)]
    async with client_for(clicks_app, PROXY) as http:
        link = await create_link(http, pay_per_click.campaign_id, "https://shop.example.com/")
        click_ids = await forwarded_clicks(http, link["code"], rotated)

    events = [ClickRecorded.model_validate(await clicks_topic.click(c)) for c in click_ids]
    assert [e.flags for e in events] == [()] + [("ip_duplicate",)] * 59
    assert len({e.ip_hash for e in events}) == 1
    paid, kpis = await paid_clicks(infra.redis_url, pay_per_click, events)
    assert paid == PER_CLICK_MINOR  # like one IPv4 address: one click, not sixty
    assert (kpis["valid_clicks"], kpis["flagged_by_reason"]["ip_duplicate"]) == (1, 59)


async def test_two_ipv6_64s_are_two_addresses_and_a_mapped_ipv4_is_its_ipv4_address(
    clicks_app: FastAPI, campaign: CampaignTerms, clicks_topic: ClickWatch
) -> None:
    addresses = [
        "2001:db8:61:1::1",
        "2001:db8:61:2::1",  # the next /64: another household
        "2001:db8:61:1:ffff:ffff:ffff:fffe",  # back in the first /64
        "192.0.2.61",
        "::ffff:192.0.2.61",  # the same IPv4 client seen by a dual-stack proxy
    ]
    async with client_for(clicks_app, PROXY) as http:
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
        click_ids = await forwarded_clicks(http, link["code"], addresses)

    events = [await clicks_topic.click(c) for c in click_ids]
    assert [e["flags"] for e in events] == [[], [], ["ip_duplicate"], [], ["ip_duplicate"]]
    hashes = [e["ip_hash"] for e in events]
    assert hashes[0] == hashes[2] != hashes[1]
    assert hashes[3] == hashes[4]


async def test_an_ipv6_host_rotating_addresses_across_links_is_held_to_the_rate(
    infra: Any, campaign: CampaignTerms, clicks_topic: ClickWatch, tmp_path: Any
) -> None:
    app = create_app(clicks_settings(infra, tmp_path, clicks_ip_rate_per_minute=3))
    async with app.router.lifespan_context(app), client_for(app, PROXY) as http:
        await wait_for_campaign(app, campaign.campaign_id)
        click_ids = []
        for n in range(1, 6):  # another link and another address of the /64 each time
            link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
            click_ids += await forwarded_clicks(http, link["code"], [f"2001:db8:62:9::{n}"])
        # Another /64 has a minute of its own.
        click_ids += await forwarded_clicks(http, link["code"], ["2001:db8:62:a::1"])
    events = [await clicks_topic.click(c) for c in click_ids]
    assert [e["flags"] for e in events] == [[], [], [], ["rate"], ["rate"], []]


async def test_a_wider_configured_ipv6_prefix_groups_a_whole_56(
    infra: Any, campaign: CampaignTerms, clicks_topic: ClickWatch, tmp_path: Any
) -> None:
    app = create_app(clicks_settings(infra, tmp_path, clicks_ipv6_prefix_bits=56))
    async with app.router.lifespan_context(app), client_for(app, PROXY) as http:
        await wait_for_campaign(app, campaign.campaign_id)
        link = await create_link(http, campaign.campaign_id, "https://shop.example.com/")
        click_ids = await forwarded_clicks(
            http, link["code"], ["2001:db8:63:100::1", "2001:db8:63:1ff::1", "2001:db8:63:200::1"]
        )
    events = [await clicks_topic.click(c) for c in click_ids]
    assert [e["flags"] for e in events] == [[], ["ip_duplicate"], []]

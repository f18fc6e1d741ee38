"""What a creator's portal pages show agrees with the API for money that is pending past
its period (held for a review decision) and for corrections dated after it (a clawback
on its refund's day)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from ledger_app import DAY, HOUR, NOV_1, directory_of, first_version, sale_fact
from pydantic import SecretStr
from redis.asyncio import Redis

from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.terms import TermsVersion
from afflux.shared.io.http.principals import AccessStore

pytestmark = pytest.mark.integration

NOW = NOV_1 + 40 * DAY  # 2026-12-11: November is past its end and its lock


def _terms(campaign_id: str, **more: Any) -> TermsVersion:
    return first_version(
        {
            "campaign_id": campaign_id,
            "merchant_id": "m1",
            "currency": "EUR",
            "lock_days": 0,
            "plan": {"sale": {"rate": {"percent": "10"}}},
            **more,
        }
    )


def _sale(campaign: str, n: int, at: int, signals: tuple[str, ...] = ()) -> ConversionFact:
    return sale_fact(f"{campaign}-{n}", "cr", at, risk_signals=signals)


async def _creator_client(
    redis: Redis[bytes], store: LedgerStore, terms: TermsVersion, *more: TermsVersion
) -> tuple[httpx.AsyncClient, dict[str, str]]:
    app = create_app(
        PayoutsSettings(_env_file=None, admin_token=SecretStr("t"), redis_url="redis://unused"),
        clock=lambda: NOW,
    )
    access = AccessStore(redis)
    app.state.store, app.state.directory, app.state.access = (
        store,
        directory_of([terms, *more]),
        access,
    )
    _, key = await access.issue("creator", "cr", NOW)
    principal = await access.principal_of_key(key)
    assert principal is not None
    session, _ = await access.begin_session(principal, key, 600)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p")
    http.cookies.set("afx_session", session)
    return http, {"authorization": f"Bearer {key}"}


async def test_money_held_for_review_past_its_period_is_on_the_approval_schedule(
    empty_redis: Redis[bytes],
) -> None:
    terms = _terms(
        "held", review={"hold_on": ["self_referral"], "creator_email_hashes": {"cr": "h"}}
    )
    store = LedgerStore(empty_redis)
    sales = [_sale("held", 1, NOV_1 + HOUR), _sale("held", 2, NOV_1 + 2 * HOUR, ("self_referral",))]
    await store.apply(
        Batch(
            conversions=[("held", "2026-11", c) for c in sales],
            review_index={
                c.conversion_id: ["held", "2026-11", c.order_id, c.affiliate_id, c.occurred_at]
                for c in sales
            },
        ),
        lambda cid: (terms,),
        lambda cid: "EUR",
    )
    http, bearer = await _creator_client(empty_redis, store, terms)
    async with http:
        api = (await http.get("/v1/creators/cr/balance", headers=bearer)).json()
        page = (await http.get("/portal/creators/cr")).text

    assert [(b["pending_minor"], b["approved_minor"]) for b in api["balances"]] == [(1000, 1000)]
    schedule = page.split("When pending amounts are approved</h2>")[1].split("<h2>")[0]
    assert "Nothing is pending" not in schedule
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", schedule)]
    assert cells == ["a review decision", "10.00 EUR"]


async def test_a_clawback_after_the_period_is_on_the_periods_commission_chart(
    empty_redis: Redis[bytes],
) -> None:
    terms = _terms("claw")
    store = LedgerStore(empty_redis)
    sale = _sale("claw", 1, NOV_1 + DAY)
    refund = RefundFact(
        reversal_id="r1",
        event_id="er1",
        order_id=sale.order_id,
        amount_minor=10_000,
        occurred_at=NOV_1 + 34 * DAY,  # 2026-12-05, long after approval
        conversion_id=sale.conversion_id,
    )
    await store.apply(
        Batch(conversions=[("claw", "2026-11", sale)]), lambda c: (terms,), lambda c: "EUR"
    )
    await store.apply(
        Batch(refunds=[("claw", "2026-11", refund)]), lambda c: (terms,), lambda c: "EUR"
    )
    http, bearer = await _creator_client(empty_redis, store, terms)
    query = "campaign_id=claw&period=2026-11"
    async with http:
        series = (await http.get(f"/v1/kpis/creators/cr/series?{query}", headers=bearer)).json()
        page = (await http.get("/portal/creators/cr/kpis?period=2026-11")).text

    buckets = {b["day"]: b["commission_minor"] for b in series["buckets"]}
    assert buckets == {"2026-11-02": 1000, "2026-12-05": -1000}
    block = re.search(r'data-target="chart-claw-commission">(.*?)</script>', page)
    assert block is not None
    chart = json.loads(block.group(1))
    points = dict(zip(chart["x"], chart["series"][0]["values"], strict=True))
    assert sum(points.values()) == 0
    assert [v for v in points.values() if v] == [10.0, -10.0]
    assert len(points) == 35  # 1 November to 5 December


async def _one_sale_in(redis: Redis[bytes], campaign: str) -> httpx.AsyncClient:
    """A creator's client on a ledger holding one November sale of ``campaign``."""
    terms = _terms(campaign)
    store = LedgerStore(redis)
    await store.apply(
        Batch(conversions=[(campaign, "2026-11", _sale(campaign, 1, NOV_1 + HOUR))]),
        lambda cid: (terms,),
        lambda cid: "EUR",
    )
    http, _ = await _creator_client(redis, store, terms)
    return http


@pytest.mark.parametrize("page", ["statement", "ledger", "statement.csv"])
async def test_a_problem_on_a_page_a_browser_opened_is_a_page_not_json(
    empty_redis: Redis[bytes], page: str
) -> None:
    """A statement of a campaign the creator has no part in answered the API's JSON 404
    in the browser; an API client still gets the JSON problem."""
    http = await _one_sale_in(empty_redis, "mine")
    path = f"/portal/creators/cr/{page}"
    async with http:
        opened = await http.get(
            path, params={"campaign_id": "theirs"}, headers={"accept": "text/html,*/*;q=0.8"}
        )
        fetched = await http.get(path, params={"campaign_id": "theirs"})

    assert opened.status_code == 404
    assert opened.headers["content-type"].startswith("text/html")
    assert "<title>Not found · afflux</title>" in opened.text
    assert re.search(r'<ul class="error" id="problem"><li>campaign_id: [^<]*theirs', opened.text)
    assert fetched.status_code == 404
    assert fetched.json()["detail"][0]["field"] == "campaign_id"


async def test_the_kpis_page_narrows_to_the_campaign_asked(empty_redis: Redis[bytes]) -> None:
    """It listed every campaign whatever ``campaign_id`` said."""
    mine, other = _terms("mine"), _terms("other")
    store = LedgerStore(empty_redis)
    versions = {"mine": (mine,), "other": (other,)}
    await store.apply(
        Batch(
            conversions=[
                ("mine", "2026-11", _sale("mine", 1, NOV_1 + HOUR)),
                ("other", "2026-11", _sale("other", 1, NOV_1 + HOUR)),
            ]
        ),
        lambda cid: versions[cid],
        lambda cid: "EUR",
    )
    http, _ = await _creator_client(empty_redis, store, mine, other)
    async with http:
        every = await http.get("/portal/creators/cr/kpis", params={"period": "2026-11"})
        narrowed = await http.get(
            "/portal/creators/cr/kpis", params={"period": "2026-11", "campaign_id": "mine"}
        )
        unknown = await http.get("/portal/creators/cr/kpis", params={"campaign_id": "theirs"})

    assert re.findall(r"<h2>Campaign (\w+), 2026-11</h2>", every.text) == ["mine", "other"]
    assert re.findall(r"<h2>Campaign (\w+), 2026-11</h2>", narrowed.text) == ["mine"]
    assert '<option value="mine" selected>mine</option>' in narrowed.text
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "shown"),
    [
        ("/portal/creators/cr/statement?period=banana", 422, "period: "),
        ("/portal/campaigns/mine?period=2026-11-and-some-more", 422, "period: "),
        ("/reports/creators/cr?period=banana", 422, "period: "),
        ("/portal/nothing-here", 404, "Not Found"),
        ("/portal/creators/cr/statement?campaign_id=mine&period=2026-W45", 422, "is paid by"),
    ],
)
async def test_every_refusal_a_browser_opens_is_a_page_with_a_way_on(
    empty_redis: Redis[bytes], path: str, status: int, shown: str
) -> None:
    """A malformed period failing the query's own bound, a report page or an unknown
    portal path showed JSON; an error page had no way back."""
    http = await _one_sale_in(empty_redis, "mine")
    async with http:
        opened = await http.get(path, headers={"accept": "text/html"})

    assert opened.status_code == status, opened.text
    assert opened.headers["content-type"].startswith("text/html")
    assert shown in opened.text
    back, _, query = path.partition("?")
    if query:  # the page without its filters
        assert f'<p id="ways-on"><a href="{back}">Back to {back}</a>' in opened.text
    else:  # no page to go back to: the link led to the same refusal
        assert '<p id="ways-on"><a href="/portal">Portal home</a></p>' in opened.text
        assert f'href="{back}"' not in opened.text


async def test_with_a_campaign_chosen_the_period_picker_offers_only_its_periods(
    empty_redis: Redis[bytes],
) -> None:
    """A weekly campaign's weeks were offered beside a monthly one's months, and choosing
    one gave the 422 page of a period the chosen campaign was never paid by."""
    monthly, weekly = (
        _terms("monthly"),
        _terms("weekly", plan={"period": "week", "sale": {"rate": {"percent": "10"}}}),
    )
    store = LedgerStore(empty_redis)
    versions = {"monthly": (monthly,), "weekly": (weekly,)}
    await store.apply(
        Batch(
            conversions=[
                ("monthly", "2026-11", _sale("monthly", 1, NOV_1 + HOUR)),
                ("weekly", "2026-W45", _sale("weekly", 1, NOV_1 + 3 * DAY)),
            ]
        ),
        lambda cid: versions[cid],
        lambda cid: "EUR",
    )
    http, _ = await _creator_client(empty_redis, store, monthly, weekly)
    async with http:
        every = await http.get("/portal/creators/cr/ledger")
        narrowed = await http.get("/portal/creators/cr/ledger", params={"campaign_id": "monthly"})

    def offered(page: str) -> list[str]:
        picker = re.search(r'<select name="period" id="period">(.*?)</select>', page)
        assert picker is not None
        return [v for v in re.findall(r'<option value="([^"]*)"', picker[1]) if v]

    assert offered(every.text) == ["2026-W45", "2026-11"]
    assert offered(narrowed.text) == ["2026-11"]

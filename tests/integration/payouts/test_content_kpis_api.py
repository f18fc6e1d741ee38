"""The KPI API over a real Redis ledger: a campaign's and a creator's reach, engagement,
CTR, RPM and EMV come from the counters the journal step keeps, and the per-content
answer from each content's latest snapshot; a shrinking snapshot lowers them.

The ledger, in two batches: campaign ``glow`` (EUR, 1 per like from 100 likes, EMV values
set) has anna's post (two snapshots, then a smaller third) and her live stream, which wins
a 100.00 sale (rule livestream); anna also has 40 valid clicks, 10 of them on a link
placed in the post (``utm_content``), and a 50.00 sale by link.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from afflux.payouts.app import create_app
from afflux.payouts.keys import Keys
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import Batch, ClickItem, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.engagement import Publication, Snapshot
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.integration

HOUR = 3_600_000
NOV_2 = 1_793_577_600_000  # 2026-11-02T00:00:00Z
TOKEN = "content-kpis-token"
POST, LIVE = "instagram:P1", "tiktok:L1"
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "glow",
        "merchant_id": "m",
        "currency": "EUR",
        "precedence": ["click_id", "coupon", "livestream", "cookie"],
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "engagement": {"values": {"like_minor": "1"}, "minimum_interactions": 100},
        },
        "emv": {"per_impression_minor_per_1000": 500, "per_like_minor": 5},
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def _snap(key: str, hour: int, likes: int, views: int) -> Snapshot:
    return Snapshot(
        key, NOV_2 + hour * HOUR, views, 2 * views, likes, 10, 0, 0, 5_000, f"{key}@{hour}"
    )


def _sale(name: str, amount: int, rule: str, stream: str | None) -> ConversionFact:
    return ConversionFact(
        f"conv-{name}",
        f"ev-{name}",
        f"order-{name}",
        "anna",
        "sale",
        None,
        amount,
        "EUR",
        False,
        NOV_2 + 5 * HOUR,
        1,
        attributed_by=rule,
        live_stream_id=stream,
    )


def _content(*events: Publication | Snapshot) -> list[tuple[str, str, Publication | Snapshot]]:
    return [("glow", "2026-11", e) for e in events]


FIRST = Batch(
    content=_content(
        Publication(POST, "anna", "glow", "post", NOV_2, "pub-p1"),
        Publication(LIVE, "anna", "glow", "live", NOV_2 + 4 * HOUR, "pub-l1"),
        _snap(POST, 1, likes=300, views=4_000),
        _snap(POST, 2, likes=500, views=6_000),
        _snap(LIVE, 6, likes=40, views=2_000),
    ),
    content_routes={POST: "glow|2026-11", LIVE: "glow|2026-11"},
    conversions=[
        ("glow", "2026-11", _sale("live", 10_000, "livestream", LIVE)),
        ("glow", "2026-11", _sale("link", 5_000, "click_id", None)),
    ],
    clicks=[
        ClickItem("glow", "2026-11", f"k{n}", "anna", NOV_2 + n, (), POST if n < 10 else "")
        for n in range(40)
    ],
)
SECOND = Batch(content=_content(_snap(POST, 3, likes=400, views=6_000)))  # likes removed


@dataclass
class Api:
    http: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
async def api(infra: Any) -> AsyncIterator[Api]:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=5)
    store = LedgerStore(redis, Keys(f"afx:test:{uuid.uuid4().hex[:8]}:"))
    for batch in (FIRST, SECOND):
        await store.apply(batch, lambda cid: VERSIONS, lambda cid: "EUR")
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(event_id="t", occurred_at=0, campaign_id="glow", versions=VERSIONS)
    )
    app = create_app(
        PayoutsSettings(_env_file=None, admin_token=SecretStr(TOKEN), redis_url="redis://unused"),
        clock=lambda: NOV_2 + 24 * HOUR,
    )
    app.state.store, app.state.directory = store, directory
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://payouts",
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as http:
            yield Api(http)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


async def test_a_campaigns_kpis_sum_its_contents_latest_snapshots(api: Api) -> None:
    row = await api.get("/v1/kpis/campaigns/glow", period="2026-11")
    # The post's third snapshot (400 likes) replaced its second (500): 400 + 40 likes.
    assert (row["contents"], row["views"], row["impressions"]) == (2, 8_000, 16_000)
    assert row["engagement"] == 400 + 10 + 40 + 10
    assert row["engagement_rate"] == 0.046  # 460 / (5,000 + 5,000) followers
    assert row["ctr"] == 0.0025  # 40 valid clicks / 16,000 impressions
    assert row["rpm_minor"] == 1_875  # 150.00 net over 8,000 views, per 1,000
    assert row["emv_minor"] == 8_000 + 2_200  # 16,000 impressions at 5.00 CPM, 440 likes
    # The post's 400 likes pay 1 each (its 410 interactions reach the minimum of 100);
    # the stream's 50 interactions do not.
    assert row["engagement_pay_minor"] == 400
    assert row["cost_per_engagement_minor"] == 1  # 400 / 460, rounded half up
    assert row["commission_minor"] == 400 + 1_000 + 500
    assert row["conversions_by_rule"]["livestream"] == 1
    assert row["conversions_by_rule"]["click_id"] == 1


async def test_the_contents_answer_has_one_row_per_content(api: Api) -> None:
    answer = await api.get("/v1/kpis/campaigns/glow/contents", period="2026-11")
    rows = {(r["platform"], r["content_id"]): r for r in answer["contents"]}
    post, live = rows[("instagram", "P1")], rows[("tiktok", "L1")]
    assert (post["kind"], post["views"], post["engagement"], post["snapshots"]) == (
        "post",
        6_000,
        410,
        3,
    )
    assert post["engagement_rate"] == 0.082  # 410 / 5,000
    assert (post["clicks"], post["ctr"]) == (10, 0.000833)  # 10 / 12,000 impressions
    assert (post["rpm_minor"], post["revenue_minor"]) == (None, None)
    assert post["emv_minor"] == 6_000 + 2_000  # 12,000 impressions, 400 likes
    assert (live["kind"], live["revenue_minor"], live["rpm_minor"]) == ("live", 10_000, 5_000)
    assert (live["clicks"], live["ctr"]) == (0, 0.0)  # anna tags links; none named the stream
    assert live["emv_minor"] == 2_000 + 200


async def test_a_creators_contents_and_row(api: Api) -> None:
    answer = await api.get("/v1/kpis/creators/anna/contents")
    assert sorted(r["content_id"] for r in answer["contents"]) == ["L1", "P1"]
    assert answer["campaign_id"] is None
    narrowed = await api.get("/v1/kpis/creators/anna/contents", campaign_id="glow")
    assert narrowed["campaign_id"] == "glow"  # the filter it applied (it said null)
    assert {r["period"] for r in answer["contents"]} == {"2026-11"}
    row = await api.get("/v1/kpis/creators/anna", campaign_id="glow")
    assert (row["views"], row["emv_minor"]) == (8_000, 10_200)

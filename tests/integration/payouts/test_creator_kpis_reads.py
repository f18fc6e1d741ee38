"""A creator's KPIs read only the creator's own campaign-periods (the creator index),
however many other creators and campaigns the network holds, and answer what the
network-wide tally says of that creator.

The store: anna sells and is clicked in acme November and December, beta November
(EUR) and gamma November (USD); bob sells beside her in acme November; and forty other
creators each sell in a campaign of their own, where anna never appears.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ledger_app import directory_of, payouts_http
from redis.asyncio import Redis

from afflux.payouts import views
from afflux.payouts.queries import counts_for
from afflux.payouts.store import Batch, ClickItem, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.integration

HOUR = 3_600_000
DAY = 24 * HOUR
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
DEC_1 = NOV_1 + 30 * DAY
TOKEN = "creator-kpis-admin-token"
OTHERS = 40


def _terms(campaign: str, currency: str = "EUR") -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": currency,
            "lock_days": 0,
            "plan": {"sale": {"rate": {"fixed_minor": 700}}, "click": {"per_click_minor": 5}},
        }
    )
    return TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)


TERMS = {
    cid: _terms(cid, currency)
    for cid, currency in [("acme", "EUR"), ("beta", "EUR"), ("gamma", "USD")]
    + [(f"other-{n:02d}", "EUR") for n in range(OTHERS)]
}


def _sale(name: str, affiliate: str, at: int, amount: int, currency: str = "EUR") -> ConversionFact:
    return ConversionFact(
        conversion_id=f"conv-{name}",
        event_id=f"ev-{name}",
        order_id=f"order-{name}",
        affiliate_id=affiliate,
        kind="sale",
        action=None,
        amount_minor=amount,
        currency=currency,
        new_customer=True,
        occurred_at=at,
        terms_version=1,
    )


def _batch() -> Batch:
    batch = Batch(
        conversions=[
            ("acme", "2026-11", _sale("a1", "anna", NOV_1 + HOUR, 10_000)),
            ("acme", "2026-11", _sale("a2", "anna", NOV_1 + 2 * DAY, 4_000)),
            ("acme", "2026-11", _sale("b1", "bob", NOV_1 + 3 * HOUR, 9_000)),
            ("acme", "2026-12", _sale("a3", "anna", DEC_1 + HOUR, 2_500)),
            ("beta", "2026-11", _sale("a4", "anna", NOV_1 + 5 * DAY, 8_000)),
            ("gamma", "2026-11", _sale("a5", "anna", NOV_1 + 6 * DAY, 3_000, "USD")),
        ],
        clicks=[
            ClickItem("acme", "2026-11", "click-a1", "anna", NOV_1 + 30 * 60_000),
            ClickItem("acme", "2026-11", "click-a2", "anna", NOV_1 + DAY, ("duplicate",)),
            ClickItem("acme", "2026-11", "click-b1", "bob", NOV_1 + 2 * HOUR),
            ClickItem("acme", "2026-12", "click-a3", "anna", DEC_1 + 30 * 60_000),
        ],
    )
    for n in range(OTHERS):
        cid, creator = f"other-{n:02d}", f"crew-{n:02d}"
        batch.conversions.append((cid, "2026-11", _sale(f"o{n}", creator, NOV_1 + n * HOUR, 5_000)))
        batch.clicks.append(ClickItem(cid, "2026-11", f"click-o{n}", creator, NOV_1 + n * HOUR))
    return batch


# anna's own campaign-periods: what her reads may touch.
ANNA_PERIODS = [("acme", "2026-11"), ("acme", "2026-12"), ("beta", "2026-11"), ("gamma", "2026-11")]


@dataclass
class Network:
    http: httpx.AsyncClient
    redis: Redis[bytes]
    store: LedgerStore
    directory: CampaignDirectory

    async def get(self, path: str, **params: str) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def counters_read_by(self, path: str, **params: str) -> tuple[Any, int]:
        """``path``'s answer, and how many counter hashes (``kpis``, ``clicks``) it read."""
        await self.redis.config_resetstat()
        answer = await self.get(path, **params)
        stats = await self.redis.info("commandstats")
        return answer, int(stats.get("cmdstat_hgetall", {}).get("calls", 0))

    async def network_wide(self, affiliate: str, campaign: str | None, period: str | None) -> Any:
        """The creator's counts out of a tally of every campaign-period (the reference)."""
        counts = await counts_for(self.store, self.directory, campaign, period)
        return [c for (_, a), c in sorted(counts.items()) if a == affiliate]


@pytest.fixture(scope="module")
async def network(plain_redis_url: str, infra: Any) -> AsyncIterator[Network]:
    redis: Redis[bytes] = Redis.from_url(plain_redis_url)
    store = LedgerStore(redis)
    await store.apply(_batch(), lambda cid: (TERMS[cid],), lambda cid: TERMS[cid].terms.currency)
    directory = directory_of(TERMS.values())
    try:
        async with payouts_http(
            store, directory, infra.kafka_bootstrap, TOKEN, lambda: DEC_1 + 20 * DAY
        ) as http:
            yield Network(http, redis, store, directory)
    finally:
        await redis.aclose()


def _rows(parts: list[views.Counts]) -> list[dict[str, Any]]:
    per_currency: dict[str, list[views.Counts]] = {}
    for c in parts:
        per_currency.setdefault(c.currency, []).append(c)
    return [views.kpi_row(views.combine(p)) for _, p in sorted(per_currency.items())]


SCOPES = [
    pytest.param({}, ANNA_PERIODS, id="every-campaign-and-period"),
    pytest.param(
        {"period": "2026-11"}, [cp for cp in ANNA_PERIODS if cp[1] == "2026-11"], id="period"
    ),
    pytest.param({"campaign_id": "acme"}, ANNA_PERIODS[:2], id="campaign"),
    pytest.param(
        {"campaign_id": "acme", "period": "2026-12"}, [("acme", "2026-12")], id="campaign-period"
    ),
]


@pytest.mark.parametrize(("scope", "periods"), SCOPES)
async def test_a_creators_kpis_read_only_the_creators_campaign_periods(
    network: Network, scope: dict[str, str], periods: list[tuple[str, str]]
) -> None:
    answer, read = await network.counters_read_by("/v1/kpis/creators/anna", **scope)

    reference = _rows(
        await network.network_wide("anna", scope.get("campaign_id"), scope.get("period"))
    )
    assert [
        {k: v for k, v in row.items() if k not in ("affiliate_id", "campaign_id")}
        for row in answer["creators"]
    ] == reference
    assert read <= 2 * len(periods)  # each a kpis and a clicks hash, never the network's


@pytest.mark.parametrize(("scope", "periods"), SCOPES[2:])
async def test_a_creators_series_reads_only_the_creators_campaign_periods(
    network: Network, scope: dict[str, str], periods: list[tuple[str, str]]
) -> None:
    answer, read = await network.counters_read_by("/v1/kpis/creators/anna/series", **scope)

    reference = views.combine(
        await network.network_wide("anna", scope.get("campaign_id"), scope.get("period"))
    )
    assert answer["buckets"] == views.series(reference)
    assert answer["buckets"], "nothing compared"
    assert read <= 2 * len(periods)
    assert answer["campaign_id"] == scope.get("campaign_id")  # the filter it applied


async def test_a_creator_with_nothing_in_the_scope_is_404_on_affiliate_id(
    network: Network,
) -> None:
    for path, params in [
        ("/v1/kpis/creators/nobody", {}),
        ("/v1/kpis/creators/anna", {"campaign_id": "other-03"}),
        ("/v1/kpis/creators/anna/series", {"period": "2026-10"}),
    ]:
        response = await network.http.get(path, params=params)
        assert response.status_code == 404, response.text
        assert response.json()["detail"][0]["field"] == "affiliate_id"
        # Not "no ledger": anna has one, only nothing in what was asked.
        creator = path.split("/")[4]
        assert response.json()["detail"][0]["reason"] == (
            f"no postings of creator {creator!r} in what was asked"
        )


async def test_an_unknown_campaign_or_a_bad_period_is_refused_before_the_creator(
    network: Network,
) -> None:
    unknown = await network.http.get("/v1/kpis/creators/nobody", params={"campaign_id": "zeta"})
    assert (unknown.status_code, unknown.json()["detail"][0]["field"]) == (404, "campaign_id")
    bad = await network.http.get("/v1/kpis/creators/nobody/series", params={"period": "11-2026"})
    assert (bad.status_code, bad.json()["detail"][0]["field"]) == (422, "period")


@pytest.mark.parametrize(("scope", "periods"), SCOPES[:2])
async def test_a_creators_series_without_a_campaign_is_one_per_currency(
    network: Network, scope: dict[str, str], periods: list[tuple[str, str]]
) -> None:
    """anna sells in EUR (acme, beta) and USD (gamma): summed into one series labelled
    EUR, her USD commission read as euros."""
    answer, read = await network.counters_read_by("/v1/kpis/creators/anna/series", **scope)

    counts = await network.network_wide("anna", None, scope.get("period"))
    expected = [
        {
            "currency": currency,
            "buckets": views.series(views.combine(c for c in counts if c.currency == currency)),
        }
        for currency in ("EUR", "USD")
    ]
    assert answer["by_currency"] == expected
    assert (answer["currency"], answer["buckets"]) == ("EUR", expected[0]["buckets"])
    paid_days = [
        {b["day"] for b in series["buckets"] if b["commission_minor"]} for series in expected
    ]
    assert "2026-11-07" not in paid_days[0]  # gamma's USD sale, on its day
    assert paid_days[1] == {"2026-11-07"}
    assert read <= 2 * len(periods)


def test_counts_in_two_currencies_are_not_summed() -> None:
    with pytest.raises(ValueError, match="EUR and USD"):
        views.combine([views.Counts(currency="EUR"), views.Counts(currency="USD")])

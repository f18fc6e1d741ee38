"""A live stream's revenue in its content row counts every sale it won, those placed in
the next period included: a stream over midnight of a period's end lost half its sales."""

from __future__ import annotations

import pytest
from ledger_app import DAY, NOV_1, directory_of, first_version, sale_fact
from redis.asyncio import Redis

from afflux.payouts.queries import contents_for
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.engagement import Publication

pytestmark = pytest.mark.integration

DEC_1 = NOV_1 + 30 * DAY
MINUTE = 60_000
TERMS = first_version(
    {
        "campaign_id": "live-camp",
        "merchant_id": "m",
        "currency": "EUR",
        "lock_days": 30,
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "engagement": {"values": {"like_minor": "1"}},
        },
    }
)


def _won(n: int, at: int) -> ConversionFact:
    return sale_fact(
        str(n), "ana", at, amount_minor=50_000, attributed_by="livestream",
        live_stream_id="insta:L1",
    )  # fmt: skip


async def test_a_streams_sales_after_its_periods_end_count_in_its_revenue(
    empty_redis: Redis[bytes],
) -> None:
    store = LedgerStore(empty_redis)
    stream = Publication("insta:L1", "ana", "live-camp", "live", DEC_1 - 30 * MINUTE, "pub-L1")

    def versions(campaign: str) -> tuple[object, ...]:
        return (TERMS,)

    await store.apply(
        Batch(
            content=[("live-camp", "2026-11", stream)],
            content_routes={"insta:L1": ("live-camp", "2026-11", "ana")},
        ),
        versions,  # type: ignore[arg-type]
        lambda _: "EUR",
    )
    for n, at in ((1, DEC_1 - 10 * MINUTE), (2, DEC_1 + 10 * MINUTE)):  # 23:50 and 00:10
        period = "2026-11" if at < DEC_1 else "2026-12"
        await store.apply(
            Batch(conversions=[("live-camp", period, _won(n, at))]),
            versions,  # type: ignore[arg-type]
            lambda _: "EUR",
        )

    rows = await contents_for(store, [("live-camp", "2026-11")], directory_of([TERMS]), "ana")

    assert [(r["content_id"], r["revenue_minor"]) for r in rows] == [("L1", 100_000)]

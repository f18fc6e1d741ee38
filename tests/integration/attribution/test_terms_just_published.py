"""An order sent right after a new terms version is decided under that version.

A creator's code settles an order at once. The worker's campaign view follows the
``campaigns`` topic on its own, a fetch behind, so an order read just after a new version
was published (the code given to another creator from now on) went to the old version's
creator, for good: 6 of 20 in a run on the embedded broker, while the oracle, reading
event times alone, gave each to the new one. The worker now reads the view up to the
topic's end before it decides a batch's orders (``afflux.shared.io.terms_barrier``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import harness as h
import pytest

from afflux.cli.brokers import BrokerKind, broker_with_topics
from afflux.oracle import attribute
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished, ConversionAttributed, OrderPlaced
from afflux.shared.io.kafka import new_producer, partition_for
from afflux.shared.topics import CAMPAIGNS, CONVERSIONS, ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

CAMPAIGNS_RACED = 20
PARTITIONS = 4


def version(number: int, effective_from: int, campaign: str, creator: str) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "grace_seconds": 30,
            "coupons": {"SAVE": creator},
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    return TermsVersion(
        version=number, effective_from=effective_from, published_at=effective_from, terms=terms
    )


def order(campaign: str, n: int, at: int) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{campaign}",
        occurred_at=at,
        order_id=f"order-{n}",
        campaign_id=campaign,
        merchant_id="m",
        amount_minor=10_000,
        currency="EUR",
        visitor_id=f"visitor-{n}",
        coupon_code="SAVE",
    )


async def race(bootstrap: str) -> dict[str, tuple[tuple[TermsVersion, ...], OrderPlaced]]:
    """Per campaign: the code moved from ana to ben from now on, and an order with it
    5 ms later, sent as soon as the broker took the new version."""
    producer = new_producer(bootstrap, linger_ms=0)
    await producer.start()
    sent = {}
    try:
        for n in range(CAMPAIGNS_RACED):
            campaign = f"raced-{n}"
            now = int(time.time() * 1000)
            versions = (version(1, 0, campaign, "ana"), version(2, now, campaign, "ben"))
            published = CampaignTermsPublished(
                event_id=f"terms-{campaign}-2",
                occurred_at=now,
                campaign_id=campaign,
                versions=versions,
            )
            await producer.send_and_wait(CAMPAIGNS.name, encode(published), key=campaign.encode())
            placed = order(campaign, n, now + 5)
            key = f"visitor-{n}".encode()
            partition = partition_for(key, PARTITIONS)
            await producer.send_and_wait(ORDERS.name, encode(placed), key=key, partition=partition)
            sent[campaign] = (versions, placed)
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()
    return sent


@pytest.mark.slow
def test_an_order_right_after_a_new_version_is_decided_under_it(
    tmp_path: Path, broker_kind: BrokerKind
) -> None:
    with broker_with_topics(broker_kind, tmp_path, PARTITIONS) as bootstrap:
        first = {
            f"raced-{n}": (version(1, 0, f"raced-{n}", "ana"),) for n in range(CAMPAIGNS_RACED)
        }
        asyncio.run(h.publish_campaigns(bootstrap, first))
        worker, _ = h.start_worker(bootstrap, tmp_path)
        try:
            sent = asyncio.run(race(bootstrap))
            expected = {}
            for campaign, (versions, placed) in sent.items():
                [conversion] = attribute([placed], {campaign: versions}).conversions
                assert isinstance(conversion, ConversionAttributed)
                expected[campaign] = (conversion.affiliate_id, conversion.terms_version)
            assert set(expected.values()) == {("ben", 2)}

            deadline = time.monotonic() + 60
            got: dict[str, tuple[str, int]] = {}
            while len(got) < len(sent):
                assert time.monotonic() < deadline, f"decided {len(got)} of {len(sent)}"
                outputs = asyncio.run(h.read_topics(bootstrap, [CONVERSIONS.name]))
                got = {
                    e.campaign_id: (e.affiliate_id, e.terms_version)
                    for e in outputs[CONVERSIONS.name]
                    if isinstance(e, ConversionAttributed)
                }
                time.sleep(0.5)
            assert got == expected
        finally:
            worker.stop()

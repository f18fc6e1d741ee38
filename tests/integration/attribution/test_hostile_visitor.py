"""One visitor id replayed by a script: the clicks service records every request, flagged
(duplicate, rate), so one cookie can put tens of thousands of clicks on ``clicks`` within
a minute. The join keeps a bounded number per visitor (``AFFLUX_ATTRIBUTION_CLICKS_PER_
VISITOR``), flagged ones given up first: the worker keeps deciding every order, the
hostile visitor's own order included, and its answers still equal the oracle's, which
keeps every click."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import harness as h
import pytest
from aiokafka import AIOKafkaConsumer

from afflux.cli.brokers import BrokerKind, broker_with_topics
from afflux.oracle import attribute, generate
from afflux.oracle.scenarios import CREATORS, START_MS
from afflux.shared.events import ClickRecorded, Envelope, OrderPlaced
from afflux.shared.io.kafka import topic_partitions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
BOUND = 500
FLAGGED = 12_000  # about 1.2 MB of join state for one visitor, unbounded
HOSTILE = "v-hostile-script"


@dataclass
class HostileRun:
    expected: set[str]
    got: set[str]
    work: Path
    dropped: float
    largest_snapshot: int  # bytes of the largest record on the join's changelog


def _hostile_events(campaign: str, merchant: str, currency: str) -> list[Envelope]:
    """``FLAGGED`` duplicate clicks of one creator, then one valid click of another and
    an order: the valid click must win whatever the flagged ones did to the state."""
    events: list[Envelope] = [
        ClickRecorded(
            event_id=f"hostile-{n}",
            occurred_at=START_MS + n * 5,
            click_id=f"hostile.{n:08d}",
            link_code="hostile-link",
            affiliate_id=CREATORS[0],
            campaign_id=campaign,
            visitor_id=HOSTILE,
            is_duplicate=True,
            flags=("duplicate",),
        )
        for n in range(FLAGGED)
    ]
    valid_at = START_MS + FLAGGED * 5 + 1_000
    events.append(
        ClickRecorded(
            event_id="hostile-valid",
            occurred_at=valid_at,
            click_id="hostile.valid",
            link_code="honest-link",
            affiliate_id=CREATORS[1],
            campaign_id=campaign,
            visitor_id=HOSTILE,
        )
    )
    events.append(
        OrderPlaced(
            event_id="oe-hostile-order",
            occurred_at=valid_at + 60_000,
            order_id="hostile-order",
            campaign_id=campaign,
            merchant_id=merchant,
            kind="sale",
            amount_minor=12_345,
            currency=currency,
            visitor_id=HOSTILE,
            customer_id="cust-hostile",
        )
    )
    return events


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind
) -> Iterator[HostileRun]:
    work = tmp_path_factory.mktemp("hostile-visitor")
    scenario = generate(410, visitors=40, prefix="hv")
    campaign = next(
        c
        for c, v in sorted(scenario.campaigns.items())
        if not v[0].terms.lead_confirmation_required
    )
    terms = scenario.campaigns[campaign][0].terms
    events = [*_hostile_events(campaign, terms.merchant_id, terms.currency), *scenario.events]
    with broker_with_topics(broker_kind, work, PARTITIONS) as bootstrap:
        asyncio.run(h.publish_campaigns(bootstrap, scenario.campaigns))
        env = {"AFFLUX_ATTRIBUTION_CLICKS_PER_VISITOR": str(BOUND)}
        worker, port = h.start_worker(bootstrap, work, extra=env)
        try:
            asyncio.run(h.produce(bootstrap, events, PARTITIONS))
            expected = h.expected_sets(attribute(events, scenario.campaigns))
            got = asyncio.run(h.wait_for(bootstrap, expected, timeout_s=120))
            largest = asyncio.run(_largest_record(bootstrap, "afflux-attribution-join-state"))
            yield HostileRun(expected, got, work, _dropped(port), largest)
        finally:
            worker.stop()


async def _largest_record(bootstrap: str, topic: str) -> int:
    """Bytes of the largest record on ``topic``, read to the fetch high watermark (the
    embedded broker's ListOffsets may leave out the newest batch)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        read = dict.fromkeys(tps, 0)
        largest = 0
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    read[tp] = r.offset + 1
                    largest = max(largest, len(r.value or b""))
            highs = [consumer.highwater(tp) for tp in tps]
            if all(h is not None and read[tp] >= h for tp, h in zip(tps, highs, strict=True)):
                return largest
        raise AssertionError(f"{topic} not read to its end")
    finally:
        await consumer.stop()


def _dropped(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("afflux_attribution_visitor_clicks_dropped_total")
    )


def test_a_visitor_replaying_one_cookie_leaves_every_answer_the_oracles(
    hostile: HostileRun,
) -> None:
    h.assert_same(hostile.expected, hostile.got, hostile.work)
    assert any('"order_id": "hostile-order"' in e and CREATORS[1] in e for e in hostile.got)


def test_the_clicks_given_up_are_counted(hostile: HostileRun) -> None:
    assert hostile.dropped == FLAGGED - BOUND + 1


def test_the_cookies_state_stays_within_its_bound(hostile: HostileRun) -> None:
    # About 100 bytes a click held: unbounded, 12,000 clicks made a 1.2 MB snapshot.
    assert hostile.largest_snapshot < BOUND * 150

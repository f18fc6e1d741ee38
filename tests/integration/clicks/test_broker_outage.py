"""No click is lost: the broker goes away, clicks keep getting 302s (each on disk first), and
every click event arrives exactly once when the broker is back.

The embedded broker keeps its log in memory, so this test uses a private broker and, after
restarting it on the same port, creates the topics again (as an operator would).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import Child, free_port
from afflux.clicks.app import create_app, open_wal
from afflux.clicks.links import Link
from afflux.clicks.quality import UserAgentInfo
from afflux.clicks.redirect import click_event
from afflux.clicks.shipper import encode_event
from afflux.clicks.wal import line
from afflux.shared.core.ids import new_click_id, visitor_of_click
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.kafka import create_topics

from .conftest import (
    ADMIN,
    ClickWatch,
    click_id_of,
    clicks_settings,
    client_for,
    create_link,
    shop_terms,
    unique,
    wait_for_campaign,
    watch_clicks,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]
BROWSER = UserAgentInfo("Chrome", "131", is_bot=False)

CLICKS_WHILE_DOWN = 1_000


class PrivateBroker:
    def __init__(self, work: Path, kind: BrokerKind) -> None:
        self.port = free_port()
        self.work = work
        self.kind = kind
        self.child: Child | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.child = start_chosen_broker(self.kind, self.port, self.work)
        await create_topics(self.bootstrap, 4)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


@pytest.fixture
async def broker(tmp_path: Path, broker_kind: BrokerKind) -> AsyncIterator[PrivateBroker]:
    private = PrivateBroker(tmp_path, broker_kind)
    await private.start()
    try:
        yield private
    finally:
        private.stop()


@pytest.mark.slow
async def test_clicks_while_the_broker_is_down_all_arrive_once_it_is_back(
    infra: Any, broker: PrivateBroker, tmp_path: Path
) -> None:
    terms = shop_terms(unique("clicks-outage"))
    await publish_terms(broker.bootstrap, [(terms, 0)])
    settings = clicks_settings(
        infra,
        tmp_path / "data",
        kafka_bootstrap=broker.bootstrap,
        clicks_send_timeout_ms=1_500,
        clicks_retry_ms=300,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as http:
        await wait_for_campaign(app, terms.campaign_id)
        link = await create_link(http, terms.campaign_id, "https://shop.example.com/")
        warm = await http.get(f"/c/{link['code']}")
        before = await watch_clicks(broker.bootstrap)
        await before.click(click_id_of(warm.headers["location"]))
        await before.consumer.stop()

        broker.stop()
        fired: list[str] = []
        statuses: Counter[int] = Counter()
        for start in range(0, CLICKS_WHILE_DOWN, 50):
            answers = await asyncio.gather(
                *(http.get(f"/c/{link['code']}?sub1={n}") for n in range(start, start + 50))
            )
            for answer in answers:
                statuses[answer.status_code] += 1
                if answer.status_code == 302:
                    fired.append(click_id_of(answer.headers["location"]))
        assert statuses == {302: CLICKS_WHILE_DOWN}

        shipper = app.state.shipper
        assert shipper.unsent >= CLICKS_WHILE_DOWN  # every 302 was answered from disk
        for _ in range(200):  # the first send times out
            if not shipper.broker_ok:
                break
            await asyncio.sleep(0.1)
        assert (await http.get("/healthz")).json()["checks"]["kafka"] == "retrying"

        await broker.start()
        after = await watch_clicks(broker.bootstrap)
        try:
            wanted = set(fired)
            for _ in range(600):
                await after.settle(quiet_rounds=1)
                if wanted <= {e.get("click_id") for e in after.events}:
                    break
                await asyncio.sleep(0.1)
            await after.settle()
            arrived = Counter(e["click_id"] for e in after.events if e["click_id"] in wanted)
        finally:
            await after.consumer.stop()
        assert set(arrived) == wanted
        assert max(arrived.values()) == 1  # none sent twice
        for _ in range(100):
            if shipper.broker_ok and not shipper.unsent:
                break
            await asyncio.sleep(0.1)
        assert shipper.unsent == 0
        assert shipper.broker_ok


async def test_events_left_in_the_click_log_by_a_previous_run_are_sent_at_start(
    infra: Any, clicks_topic: ClickWatch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    settings = clicks_settings(infra, data_dir)
    link = Link("spooled", "creator-spool", "clicks-spool", "https://shop.example.com/", True, 0)
    click_ids = [new_click_id(f"v_spool{n}") for n in range(3)]
    wal = open_wal(settings)
    for click_id in click_ids:
        event = click_event(
            click_id, link, visitor_of(click_id), 1_700_000_000_000, "h", BROWSER, None
        )
        wal.append(line(visitor_of(click_id).encode(), encode_event(event)))
    wal.close()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        arrived = [await clicks_topic.click(click_id) for click_id in click_ids]
        assert [e["click_id"] for e in arrived] == click_ids  # in the order written
        for _ in range(100):
            if app.state.shipper.unsent == 0:
                break
            await asyncio.sleep(0.05)
        assert app.state.shipper.unsent == 0


def visitor_of(click_id: str) -> str:
    visitor = visitor_of_click(click_id)
    assert visitor is not None
    return visitor


async def test_a_link_change_the_broker_does_not_take_is_refused_and_not_applied(
    infra: Any, broker: PrivateBroker, tmp_path: Path
) -> None:
    terms = shop_terms(unique("links-outage"))
    await publish_terms(broker.bootstrap, [(terms, 0)])
    settings = clicks_settings(
        infra, tmp_path / "data", kafka_bootstrap=broker.bootstrap, clicks_send_timeout_ms=1_000
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as http:
        await wait_for_campaign(app, terms.campaign_id)
        kept = await create_link(http, terms.campaign_id, "https://shop.example.com/")
        broker.stop()
        code = unique("refused")
        body = {
            "affiliate_id": "creator-outage",
            "campaign_id": terms.campaign_id,
            "destination_url": "https://shop.example.com/",
            "code": code,
        }
        created = await http.post("/v1/links", json=body, headers=ADMIN)
        assert created.status_code == 503
        assert created.json()["detail"][0]["reason"].startswith(
            "the broker did not acknowledge the change"
        )
        assert (await http.get(f"/v1/links/{code}", headers=ADMIN)).status_code == 404
        deleted = await http.delete(f"/v1/links/{kept['code']}", headers=ADMIN)
        assert deleted.status_code == 503
        assert (await http.get(f"/c/{kept['code']}")).status_code == 302  # still active

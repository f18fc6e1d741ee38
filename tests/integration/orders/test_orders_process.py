"""``python -m afflux.orders`` as a process, and what happens when the broker goes away."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import Child, free_port, stall
from afflux.cli.scenario_checks import read_topic
from afflux.orders.app import create_app
from afflux.orders.settings import OrdersSettings
from afflux.orders.signing import sign
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import OrderPlaced
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.kafka import create_topics

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

SECRETS = json.dumps({"merchant-p": ["p-secret"]})


def service_env(infra: Any, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AFFLUX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "AFFLUX_REDIS_URL": infra.redis_url.rsplit("/", 1)[0] + "/2",
        "AFFLUX_MERCHANT_SECRETS": SECRETS,
        **extra,
    }


@contextmanager
def serving(infra: Any, port: int, **extra: str) -> Iterator[str]:
    """The orders process on ``port`` until healthy, its URL; then SIGTERM, exit 0."""
    child = subprocess.Popen(
        [sys.executable, "-m", "afflux.orders"],
        env=service_env(infra, AFFLUX_ORDERS_PORT=str(port), **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and not healthy:
            try:
                healthy = oneshot.get(f"{url}/healthz").status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert healthy
        yield url
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_with_an_operator_port_metrics_answer_only_there_and_the_reference_stays(
    infra: Any,
) -> None:
    """Every campaign's order and refund counts answered on the merchants' port: any
    merchant could watch a competitor's volumes."""
    operator = free_port()
    with serving(infra, free_port(), AFFLUX_ORDERS_OPERATOR_PORT=str(operator)) as public:
        hidden = oneshot.get(f"{public}/metrics")
        assert hidden.status_code == 404
        assert hidden.json() == {"detail": [{"field": None, "reason": "Not Found"}]}
        internal = f"http://127.0.0.1:{operator}/metrics"
        assert "afflux_orders_total" in oneshot.get(internal).text
        # The API reference is the integrators': it stays on their port.
        assert oneshot.get(f"{public}/openapi.json").status_code == 200
        assert oneshot.get(f"{public}/docs").status_code == 200


def test_service_serves_until_sigterm_then_exits_zero(infra: Any) -> None:
    with serving(infra, free_port()) as url:
        assert "afflux_orders_total" in oneshot.get(f"{url}/metrics").text


@pytest.mark.parametrize(
    ("override", "says"),
    [
        pytest.param(
            {"AFFLUX_REDIS_URL": "redis://127.0.0.1:1/2"},
            "cannot reach Redis at redis://127.0.0.1:1/2",
            id="redis",
        ),
        pytest.param(
            {"AFFLUX_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "Kafka broker at 127.0.0.1:1", id="broker"
        ),
        pytest.param(
            {
                "AFFLUX_ENV": "production",
                "AFFLUX_ADMIN_TOKEN": "t" * 32,
                "AFFLUX_MERCHANT_SECRETS": "",
            },
            "no merchant secrets configured",
            id="production without secrets",
        ),
    ],
)
def test_service_that_cannot_start_says_why_and_exits_2(
    infra: Any, override: dict[str, str], says: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "afflux.orders"],
        env=service_env(infra, AFFLUX_ORDERS_PORT=str(free_port()), **override),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert says in done.stderr
    assert "p-secret" not in done.stderr


def signed_order(order_id: str, amount_minor: int = 100) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "order_id": order_id,
            "campaign_id": "outage-shop",
            "occurred_at": int(time.time() * 1000),
            "amount_minor": amount_minor,
            "currency": "EUR",
            "visitor_id": "v-1",
        }
    ).encode()
    headers = {
        "X-Afflux-Merchant": "merchant-p",
        "X-Afflux-Signature": sign(body, "p-secret", int(time.time())),
    }
    return body, headers


async def kafka_health(http: httpx.AsyncClient, says: str, limit_s: float = 30) -> int:
    """Ask /healthz until its kafka check reads ``says`` (True, or words of its reason)."""
    deadline = time.monotonic() + limit_s
    while True:
        answer = await http.get("/healthz")
        body = answer.json()
        shown = body.get("reasons", {}).get("kafka") or body["checks"]["kafka"]
        if (shown is True and says == "ok") or (isinstance(shown, str) and says in shown):
            return answer.status_code
        assert time.monotonic() < deadline, f"kafka check still {shown!r}, waited for {says!r}"
        await asyncio.sleep(0.1)


async def broker_up(http: httpx.AsyncClient, value: float, limit_s: float = 40) -> bool:
    """Wait until ``afflux_broker_up`` reads ``value`` (it is read every 15 s)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        text = (await http.get("/metrics")).text
        if f"afflux_broker_up {value}" in text.splitlines():
            return True
        await asyncio.sleep(0.5)
    return False


@asynccontextmanager
async def on_own_broker(
    infra: Any, work: Path, broker_kind: BrokerKind, produce_timeout_s: float
) -> AsyncIterator[tuple[FastAPI, Child, OrdersSettings]]:
    """The orders app, started, on a broker of its own (to stall or stop) with the
    outage-shop campaign; the broker stopped afterwards."""
    port = free_port()
    broker = start_chosen_broker(broker_kind, port, work)
    bootstrap = f"127.0.0.1:{port}"
    terms = CampaignTerms(campaign_id="outage-shop", merchant_id="merchant-p", currency="EUR")
    settings = OrdersSettings.model_validate(
        {
            "kafka_bootstrap": bootstrap,
            "redis_url": infra.redis_url.rsplit("/", 1)[0] + "/2",
            "merchant_secrets": SECRETS,
            "orders_produce_timeout_s": produce_timeout_s,
            "orders_redis_prefix": f"afx:orders-outage-{uuid.uuid4().hex[:6]}",
        }
    )
    try:
        await create_topics(bootstrap, 4)
        await publish_terms(bootstrap, [(terms, 0)])
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(app.state.directory.ready.wait(), 30)
            yield app, broker, settings
    finally:
        broker.stop()


@pytest.mark.slow
async def test_healthz_names_a_stalled_or_stopped_broker_and_recovers(
    infra: Any, tmp_path: Path, broker_kind: BrokerKind
) -> None:
    async with on_own_broker(infra, tmp_path, broker_kind, 60.0) as (app, broker, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://o") as http:
            assert await kafka_health(http, "ok") == 200  # idle: the broker answered a probe

            stall(broker.pid)
            try:
                body, headers = signed_order("o-stalled")
                order = asyncio.create_task(http.post("/v1/orders", content=body, headers=headers))
                status = await kafka_health(http, "for the broker's acknowledgement")
                assert status == 503
                assert not order.done()
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            assert (await order).status_code == 202
            assert await kafka_health(http, "ok") == 200

            assert await broker_up(http, 1.0)
            broker.stop()  # and no order comes: the probe is what notices
            assert await kafka_health(http, "metadata request") == 503
            # ... and so does the gauge an alert reads, with no request asking
            assert await broker_up(http, 0.0)


@pytest.mark.slow
async def test_order_the_broker_cannot_take_is_503_and_only_the_same_order_is_taken_again(
    infra: Any, tmp_path: Path, broker_kind: BrokerKind
) -> None:
    """The broker gone after the service started. If the producer took the record and
    never heard back, which it cannot tell from a broker that stored it and stalled, the
    claim is kept unsure: the same order may be sent again, another with its id may not.
    If it never took it (no metadata), the claim is released and the 503 says so."""
    async with on_own_broker(infra, tmp_path, broker_kind, 2.0) as (app, broker, settings):
        broker.stop()
        body, headers = signed_order("o-1")
        other, other_headers = signed_order("o-1", amount_minor=999)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://o") as http:
            response = await http.post("/v1/orders", content=body, headers=headers)
            changed = await http.post("/v1/orders", content=other, headers=other_headers)

        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        [problem] = response.json()["detail"]
        assert problem["field"] is None
        redis = Redis.from_url(settings.redis_url)
        try:
            claim = f"{settings.orders_redis_prefix}:o:outage-shop:o-1"
            kept = await redis.hmget(claim, "state", "unsure")
        finally:
            await redis.aclose()  # type: ignore[attr-defined]
        if "nothing was accepted" in problem["reason"]:
            # The producer never took it (Apache Kafka: no metadata once the broker went):
            # released, and another order under its id is only refused for the broker.
            assert kept == [None, None]
            assert changed.status_code == 503, changed.text
        else:
            assert "may still have recorded it" in problem["reason"]
            assert kept == [b"0", b"1"]
            assert changed.status_code == 409, changed.text
            assert changed.json()["detail"][0]["field"] == "amount_minor"


@pytest.mark.slow
async def test_an_order_answered_503_in_a_stall_is_on_the_topic_only_as_sent(
    infra: Any, tmp_path: Path, broker_kind: BrokerKind
) -> None:
    """The broker stalled (SIGSTOP) past the produce timeout: the order is answered 503,
    yet the broker stores it once it resumes. The id sent again with another amount was
    answered 202 and paid on the first copy, the one the merchant had been told was not
    taken; now it is refused, and the same order sent again is taken."""
    async with on_own_broker(infra, tmp_path, broker_kind, 1.0) as (app, broker, settings):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://o") as http:
            # The first produce (the producer's metadata, then the send) may take longer
            # than the 1 s produce timeout on a loaded machine: sent again until taken,
            # as a merchant would (the same order is one order).
            first, first_headers = signed_order("o-stall", amount_minor=100)
            for _ in range(20):
                taken = await http.post("/v1/orders", content=first, headers=first_headers)
                if taken.status_code != 503:
                    break
                await asyncio.sleep(0.5)
            assert taken.status_code == 202, taken.text
            sent, headers = signed_order("o-stalled", amount_minor=100)
            changed, changed_headers = signed_order("o-stalled", amount_minor=500)
            assert broker.pid is not None
            stall(broker.pid)
            try:
                stalled = await http.post("/v1/orders", content=sent, headers=headers)
                refused = await http.post("/v1/orders", content=changed, headers=changed_headers)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            assert stalled.status_code == 503, stalled.text
            assert refused.status_code == 409, refused.text
            again = await http.post("/v1/orders", content=sent, headers=headers)
            assert again.status_code in (200, 202), again.text

        amounts = await _order_amounts(settings.kafka_bootstrap, "o-stalled")
        assert amounts
        assert set(amounts) == {100}


async def _order_amounts(bootstrap: str, order_id: str) -> list[int]:
    """The amount of every copy of ``order_id`` on the orders topic (read to its end:
    idle time counts only once every partition is read, so a broker slow to answer the
    first fetch after its stall does not end the read with nothing)."""
    events = await read_topic(bootstrap, "orders", idle_s=1.5)
    return [e.amount_minor for e in events if isinstance(e, OrderPlaced) and e.order_id == order_id]

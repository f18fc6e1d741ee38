"""A real Prometheus scraping a running stack answers every Grafana panel's query with
data, and evaluates every alert rule without an error.

Prometheus (the Debian ``prometheus`` binary) scrapes the four services every second on
a free loopback port. A short workload makes each series the dashboard reads exist:
clicks and orders, an attributed and an unattributed order, a refund, a capped
creator, a creator's post whose stats grow and shrink, and a record no consumer can
decode (a dead letter).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from afflux.cli.demo_client import DemoClient
from afflux.cli.processes import Child, free_port
from afflux.cli.stack import Stack
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import ORDERS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "e2e-monitoring-token"
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: watch-shop
      merchant_id: merchant-watch
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {percent: "10"}}
  - effective_from: 0
    terms:
      campaign_id: watch-capped
      merchant_id: merchant-watch-capped
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {fixed_minor: 1000}}
        creator_cap_minor: 1500
"""
# What Grafana sends in place of its variables, for a scrape every second.
GRAFANA_VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "1s",
    "$__range": "5m",
    '"$campaign"': '".*"',
}
DATA_TIMEOUT_S = 40.0


def _terms() -> dict[str, CampaignTerms]:
    entries = yaml.safe_load(TERMS_YAML)["campaigns"]
    return {e["terms"]["campaign_id"]: CampaignTerms.model_validate(e["terms"]) for e in entries}


def _panel_queries() -> list[tuple[str, str]]:
    """(panel title and legend, query as Grafana sends it) for every panel target."""
    path = ROOT / "deploy/grafana/dashboards/afflux.json"
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((f"{panel['title']}: {target.get('legendFormat', '')}", expr))
    return queries


@pytest.fixture(scope="module")
def prometheus(
    stack: Stack, prometheus_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Prometheus scraping the stack every second, with afflux's alert rules; its URL."""
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy/prometheus/rules.yml")],
        "scrape_configs": [
            {
                "job_name": f"afflux-{name}",
                "static_configs": [{"targets": [stack.url(name).removeprefix("http://")]}],
            }
            for name in ("clicks", "orders", "payouts", "attribution")
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    child = Child(
        "prometheus",
        [
            prometheus_server,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        work / "prometheus.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        # Counters seen at 0 before the workload: their first increments show in rate().
        child.wait_until(lambda: _scraped_every_target(url), timeout_s=30)
        yield url
    finally:
        child.stop()


def _scraped_every_target(url: str) -> bool:
    try:
        response = oneshot.get(f"{url}/api/v1/query", params={"query": "sum(up)"}, timeout=1)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    result = response.json()["data"]["result"]
    return bool(result) and float(result[0]["value"][1]) == 4


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


POST = _unique("post")


async def _snapshot(client: DemoClient, likes: int, as_of: int) -> None:
    """A stats snapshot of the post: reach added, or taken back when smaller. Applied
    before the next is sent: snapshots applied in one batch count only their net change."""
    await client.post_stats(
        "instagram",
        POST,
        {
            "as_of": as_of,
            "views": 10 * likes,
            "impressions": 20 * likes,
            "likes": likes,
            "comments": likes // 10,
            "shares": likes // 20,
            "saves": likes // 10,
            "followers": 50 * likes,
        },
    )
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while time.monotonic() < deadline:
        rows = await client.campaign_contents("watch-shop")
        if any(r["content_id"] == POST and r["as_of"] == as_of for r in rows):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the snapshot as of {as_of} never reached the ledger")


def _client(stack: Stack) -> DemoClient:
    return DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN)


async def _more_orders(stack: Stack) -> None:
    """A click, its order and an unattributed order: counters that exist move again."""
    shop = _terms()["watch-shop"]
    async with _client(stack) as client:
        code = await client.create_link(shop, _unique("creator"))
        visitor, _ = await client.click(code, None)
        for visitor_id in (visitor, _unique("visitor")):
            await client.place_order(
                shop,
                order_id=_unique("order"),
                kind="sale",
                amount=Money(7_000, "EUR"),
                visitor_id=visitor_id,
            )
        now = client.merchant_now()
        await _snapshot(client, 400, now - 1_000)
        await _snapshot(client, 350, now)


async def _workload(stack: Stack) -> None:
    terms = _terms()
    shop, capped = terms["watch-shop"], terms["watch-capped"]
    async with _client(stack) as client:
        code = await client.create_link(shop, _unique("creator"))
        visitor, _ = await client.click(code, None)
        refunded = _unique("order")
        for order_id in (refunded, _unique("order")):
            await client.place_order(
                shop,
                order_id=order_id,
                kind="sale",
                amount=Money(10_000, "EUR"),
                visitor_id=visitor,
            )
        await client.place_order(
            shop,
            order_id=_unique("order"),
            kind="sale",
            amount=Money(5_000, "EUR"),
            visitor_id=_unique("visitor"),  # never clicked: unattributed
        )
        capped_code = await client.create_link(capped, _unique("creator"))
        capped_visitor, _ = await client.click(capped_code, None)
        for _ in range(2):  # 1000 each under a cap of 1500: the second is cut
            await client.place_order(
                capped,
                order_id=_unique("order"),
                kind="sale",
                amount=Money(2_000, "EUR"),
                visitor_id=capped_visitor,
            )
        # A refund waits for its order's outcome (AFFLUX_REFUND_WAIT_SECONDS): a reversal.
        await client.refund(shop, order_id=refunded, refund_id=_unique("refund"), amount=10_000)
        now = client.merchant_now()
        await client.publish_content(
            {
                "content_id": POST,
                "platform": "instagram",
                "affiliate_id": _unique("creator"),
                "campaign_id": shop.campaign_id,
                "kind": "post",
                "url": f"https://instagram.com/p/{POST}",
                "published_at": now - 60_000,
            }
        )
        await _snapshot(client, 300, now - 30_000)
        await _snapshot(client, 250, now - 20_000)  # smaller: fake likes removed
    producer = new_producer(stack.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(ORDERS.name, b"not json", key=b"monitoring-poison")
    finally:
        await producer.stop()


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


async def _query(http: httpx.AsyncClient, url: str, expr: str) -> list[dict[str, Any]]:
    response = await http.get(f"{url}/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def test_every_panel_query_returns_data_from_a_running_stack(
    stack: Stack, prometheus: str
) -> None:
    queries = _panel_queries()
    deadline = time.monotonic() + DATA_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as http:

        async def missing(has: Callable[[list[dict[str, Any]]], bool]) -> list[str]:
            while True:
                found = [(t, has(await _query(http, prometheus, e))) for t, e in queries]
                absent = [t for t, ok in found if not ok]
                if not absent or time.monotonic() > deadline:
                    return absent
                await asyncio.sleep(1)  # one scrape interval

        await _workload(stack)
        # A labelled series is born at its first increment, which rate() cannot see: once
        # Prometheus holds every series, more orders move them.
        absent = await missing(bool)
        assert not absent, "panels without series:\n" + "\n".join(absent)
        await _more_orders(stack)
        empty = await missing(_has_data)
    assert not empty, "panels without data:\n" + "\n".join(empty)


async def test_every_alert_rule_evaluates_without_error(stack: Stack, prometheus: str) -> None:
    deadline = time.monotonic() + DATA_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            body = (await http.get(f"{prometheus}/api/v1/rules")).json()
            rules = [r for g in body["data"]["groups"] for r in g["rules"]]
            if rules and all(r["health"] != "unknown" for r in rules):
                break
            assert time.monotonic() < deadline, "rules never evaluated"
            await asyncio.sleep(1)
    assert {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"} == {}

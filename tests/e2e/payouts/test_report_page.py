"""The report pages, rendered by headless Chromium, show exactly what the KPI API says.

A whole stack runs; clicks and orders go in over HTTP; once the payouts API
reports the conversions, Chromium loads each report page, runs its script and
dumps the DOM. Every KPI cell and every chart point must equal the API's value.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from afflux.cli.demo_client import DemoClient
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
]

ADMIN_TOKEN = "report-admin-token"
CAMPAIGN = f"report-{uuid.uuid4().hex[:8]}"
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: {CAMPAIGN}
      merchant_id: merchant-report
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {{rate: {{percent: "10"}}}}
"""
KPI_FIELDS = (
    "clicks",
    "unique_clicks",
    "conversions",
    "conversion_rate",
    "revenue_minor",
    "refunds_minor",
    "net_revenue_minor",
    "commission_minor",
    "epc_minor",
    "cpa_minor",
    "aov_minor",
    "roi",
    "new_customer_share",
)
SERIES_FIELDS = {
    "clicks": ("clicks",),
    "conversions": ("conversions",),
    "commission": ("commission_minor", "commission"),
}


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> CampaignTerms:
    path = tmp_path_factory.mktemp("report-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return load_campaign_file(path).campaigns[0].terms


class _Dom(HTMLParser):
    """Collects the attributes of every element that carries data-* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []
        self.body: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        found["<tag>"] = tag
        if tag == "body":
            self.body = found
        if any(k.startswith("data-") for k in found):
            self.elements.append(found)


def render(chromium: str, url: str) -> _Dom:
    with tempfile.TemporaryDirectory() as profile:
        args = [chromium, "--headless", "--disable-gpu", f"--user-data-dir={profile}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        args += ["--virtual-time-budget=15000", "--dump-dom", url]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _Dom()
    dom.feed(result.stdout)
    return dom


def rows_of(body: Any) -> list[dict[str, Any]]:
    """The KPI objects of an answer: one object, or a list under a key (as the page reads it)."""
    if isinstance(body, list):
        return body
    for key in ("creators", "campaigns", "kpis", "items"):
        if isinstance(body.get(key), list):
            return list(body[key])
    return [body]


def buckets_of(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in ("buckets", "series", "points", "items", "data"):
        if isinstance(body.get(key), list):
            return list(body[key])
    return []


def same(shown: str, value: Any) -> bool:
    if value is None:
        return shown == ""
    return shown != "" and float(shown) == float(value)


def check_page(dom: _Dom, kpis: Any, series: Any) -> None:
    assert dom.body.get("data-state") == "ready", dom.body
    rows = rows_of(kpis)
    assert rows
    cells = {
        (e["data-kpi"], int(e["data-column"])): e["data-value"]
        for e in dom.elements
        if e["<tag>"] == "td" and "data-column" in e
    }
    for column, row in enumerate(rows):
        for name in KPI_FIELDS:
            if name in row:
                shown = cells[(name, column)]
                assert same(shown, row[name]), (name, column, shown, row[name])
    points = [e for e in dom.elements if e["<tag>"] == "circle"]
    buckets = buckets_of(series)
    for name, keys in SERIES_FIELDS.items():
        drawn = sorted(
            (int(p["data-index"]), p["data-value"]) for p in points if p["data-series"] == name
        )
        assert [i for i, _ in drawn] == list(range(len(buckets)))
        for (_, shown), bucket in zip(drawn, buckets, strict=True):
            value = next((bucket[k] for k in keys if bucket.get(k) is not None), 0)
            assert same(shown, value), (name, shown, bucket)


async def get_json(url: str) -> Any:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(url)
    response.raise_for_status()
    return response.json()


async def wait_for_total(url: str, field: str, expected: int, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            body = await get_json(url)
            if sum(int(r.get(field, 0)) for r in rows_of(body)) >= expected:
                return body
        except httpx.HTTPStatusError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never reported {expected} {field}")
        await asyncio.sleep(0.5)


async def test_report_pages_show_the_api_numbers(
    stack: Stack, terms: CampaignTerms, chromium: str
) -> None:
    creators = [f"creator-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    payouts = stack.url("payouts")
    campaign_api = f"{payouts}/v1/kpis/campaigns/{CAMPAIGN}"
    client = DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN)
    async with client:
        buyers: list[tuple[str, int, str]] = []
        for n, creator in enumerate(creators):
            code = await client.create_link(terms, creator)
            for visit in range(3 + n):
                visitor, _ = await client.click(code, None)
                if visit < 1 + n:
                    buyers.append((creator, visit, visitor))
        # Visitors buy after their clicks have been recorded, as real ones do; a click
        # that reaches the broker after the order's grace is rightly not attributed.
        await wait_for_total(campaign_api, "clicks", 7)
        for creator, visit, visitor in buyers:
            await client.place_order(
                terms,
                order_id=f"{creator}-order-{visit}",
                kind="sale",
                amount=Money(10_000 + 1_234 * visit, "EUR"),
                visitor_id=visitor,
                new_customer=visit == 0,
            )
    campaign_kpis = await wait_for_total(campaign_api, "conversions", 3)
    campaign_series = await get_json(f"{campaign_api}/series")
    campaign_page = render(chromium, f"{payouts}/reports/campaigns/{CAMPAIGN}")
    check_page(campaign_page, campaign_kpis, campaign_series)
    # The campaign page also lists its creators.
    listed = {e["data-creator"] for e in campaign_page.elements if "data-creator" in e}
    assert set(creators) <= listed

    creator = creators[1]
    creator_api = f"{payouts}/v1/kpis/creators/{creator}"
    creator_kpis = await wait_for_total(f"{creator_api}?campaign_id={CAMPAIGN}", "conversions", 2)
    creator_series = await get_json(f"{creator_api}/series?campaign_id={CAMPAIGN}")
    page = render(chromium, f"{payouts}/reports/creators/{creator}?campaign_id={CAMPAIGN}")
    check_page(page, creator_kpis, creator_series)

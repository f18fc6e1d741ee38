"""The portal's pages load only what this origin serves, and a browser without a session
is sent to log in."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from afflux.payouts.portal.brand_pages import insights_section
from afflux.payouts.portal.guard import not_found
from afflux.payouts.portal.html import CSP, page
from afflux.payouts.portal.routes import ASSETS, install_portal
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.principals import AccessConfig

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_portal(app)
    app.state.access_config = AccessConfig(admin_token="portal-unit-admin-token")
    app.state.directory = CampaignDirectory()
    app.state.access = None
    # Never read: without a session the page answers before touching the ledger.
    app.state.store = object()
    app.state.clock = lambda: 0
    return TestClient(app, follow_redirects=False)


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_every_asset_is_served_from_the_package(client: TestClient, name: str) -> None:
    answer = client.get(f"/portal/assets/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == ASSETS[name]
    assert answer.content


def test_the_icon_a_browser_asks_for_beside_every_page_is_served(client: TestClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.content.startswith(b"<svg")
    assert '<link rel="icon" href="/portal/assets/favicon.svg"' in page("Balance", "", csrf="t")


def test_uplot_ships_with_its_licence(client: TestClient) -> None:
    assert "uPlot" in client.get("/portal/assets/uPlot.iife.min.js").text
    assert "MIT License" in client.get("/portal/assets/uPlot.LICENSE").text


def test_an_unknown_asset_is_not_found(client: TestClient) -> None:
    assert client.get("/portal/assets/..%2Fapp.py").status_code == 404
    assert client.get("/portal/assets/evil.js").status_code == 404


@pytest.mark.parametrize(
    "path", ["/portal", "/portal/creators/ana/ledger?period=2026-11", "/portal/campaigns/shop"]
)
def test_without_a_session_the_browser_is_sent_to_log_in_and_back(
    client: TestClient, path: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/login?next=")
    assert parse_qs(urlsplit(location).query)["next"] == [path]


def test_pages_carry_no_inline_script_or_style_and_load_only_this_origin() -> None:
    html = page("Balance", "<p>x</p>", csrf="t")
    assert re.findall(r"<script>", html) == []
    assert "<style" not in html
    assert " style=" not in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(s.startswith("/portal/assets/") for s in sources)
    assert "script-src 'self';" in CSP
    assert "unsafe-inline" not in CSP
    assert "form-action 'self'" in CSP


def test_not_found_escapes_the_id() -> None:
    answer = not_found("creator <script>alert(1)</script>")
    assert answer.status_code == 404
    assert b"<script>alert(1)" not in answer.body


@pytest.mark.parametrize("orders_url", ["", "http://127.0.0.1:9"])
async def test_a_campaigns_insights_say_so_when_the_orders_service_does_not_answer(
    orders_url: str,
) -> None:
    app = FastAPI()
    app.state.settings = PayoutsSettings(admin_token="t", orders_url=orders_url)
    request = Request({"type": "http", "app": app, "headers": []})
    section = await insights_section(request, "shop", "2026-11")
    assert section.startswith('<p class="error" id="insights-error">Not available now: ')

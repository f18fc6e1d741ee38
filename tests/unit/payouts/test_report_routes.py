"""The report pages are self-contained HTML whose only script and style the CSP allows."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afflux.payouts.routes.reports import router
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.principals import AccessConfig

pytestmark = pytest.mark.unit
ADMIN_TOKEN = "report-pages-admin-token"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    # The pages answer only to a reader of their creator or campaign: admin here (who
    # sees what is tests/integration/payouts/test_access_matrix.py).
    app.state.access_config = AccessConfig(admin_token=ADMIN_TOKEN)
    app.state.directory = CampaignDirectory()
    return TestClient(app, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("path", ["/reports/campaigns/shop", "/reports/creators/creator-01"])
def test_page_is_html_with_a_matching_csp(client: TestClient, path: str) -> None:
    response = client.get(path, params={"period": "2026-01"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(scripts) == 1
    assert len(styles) == 1
    csp = response.headers["content-security-policy"]
    assert f"script-src {_hash(scripts[0])};" in csp
    assert f"style-src {_hash(styles[0])};" in csp
    assert "connect-src 'self'" in csp


def test_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    html = client.get("/reports/campaigns/shop").text
    assert re.findall(r"(?:src|href)\s*=", html) == []
    assert "//" not in re.sub(r"http://www\.w3\.org/2000/svg", "", html.replace("://", ""))


def test_page_reads_the_kpi_api_of_its_own_origin(client: TestClient) -> None:
    html = client.get("/reports/creators/creator-01").text
    assert '"/v1/kpis/"' in html
    assert '"/series"' in html
    assert "innerHTML" not in html  # API values only ever become text


def test_ids_are_not_echoed_into_the_page(client: TestClient) -> None:
    html = client.get("/reports/campaigns/%3Cscript%3Ealert(1)%3C%2Fscript%3E").text
    assert "alert(1)" not in html

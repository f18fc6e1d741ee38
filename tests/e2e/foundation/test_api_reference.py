"""Each service's API reference works offline: ``/openapi.json`` is a JSON OpenAPI document
listing the service's endpoints, and ``/docs``, rendered by headless Chromium with every
request outside loopback refused, shows each of them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

from afflux.cli.stack import Stack
from afflux.shared.io.http import tls as oneshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# What each service must list (its whole surface; the unit test
# tests/unit/shared/test_api_reference_complete.py holds the documents to the routes).
ENDPOINTS = {
    "clicks": ("/c/{code}", "/v1/links", "/v1/links/{code}", "/healthz", "/metrics"),
    "orders": (
        "/v1/orders",
        "/v1/orders:batch",
        "/v1/postback",
        "/v1/refunds",
        "/v1/leads/{order_id}/confirm",
        "/v1/campaigns/{campaign_id}",
        "/v1/admin/backfill/orders",
        "/v1/admin/backfill/refunds",
        "/healthz",
        "/metrics",
    ),
    "payouts": ("/v1/creators/{affiliate_id}/balance", "/v1/payouts/run", "/healthz", "/metrics"),
    "attribution": ("/healthz", "/metrics"),
}


class _Text(HTMLParser):
    """The text a reader sees, without scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def rendered_text(chromium: str, url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        args = [chromium, "--headless", "--disable-gpu", f"--user-data-dir={profile}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        # As on a machine without internet: every host but loopback fails to resolve.
        args += [
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    text = _Text()
    text.feed(result.stdout)
    # Swagger UI breaks long paths with zero-width spaces.
    return "".join(text.parts).replace("\u200b", "")


@pytest.mark.parametrize("service", list(ENDPOINTS))
def test_openapi_json_lists_every_endpoint(stack: Stack, service: str) -> None:
    answer = oneshot.get(f"{stack.url(service)}/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert document["openapi"].startswith("3.")
    assert set(ENDPOINTS[service]) <= set(document["paths"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], f"{method} {path} documents no answer"


@pytest.mark.parametrize("service", list(ENDPOINTS))
def test_docs_page_loads_nothing_from_outside(stack: Stack, service: str) -> None:
    page = oneshot.get(f"{stack.url(service)}/docs", timeout=10)
    assert page.status_code == 200
    assert "http://" not in page.text
    assert "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = oneshot.get(f"{stack.url(service)}/docs/assets/{asset}", timeout=10)
        assert served.status_code == 200, asset
        assert len(served.content) > 10_000, asset


@pytest.mark.parametrize("service", list(ENDPOINTS))
def test_docs_rendered_offline_show_every_endpoint(
    stack: Stack, chromium: str, service: str
) -> None:
    text = rendered_text(chromium, f"{stack.url(service)}/docs")
    document = oneshot.get(f"{stack.url(service)}/openapi.json", timeout=10).json()
    assert document["info"]["title"] in text
    missing = [path for path in document["paths"] if path not in text]
    assert not missing, f"not on the rendered page: {missing}\n{text[:2000]}"

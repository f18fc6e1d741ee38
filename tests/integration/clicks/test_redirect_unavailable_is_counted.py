"""A redirect whose link Redis cannot give answers 503, and is counted: it was in neither
``afflux_clicks_total`` nor ``afflux_redirect_seconds``, so a Redis outage left visitors
without a redirect and every figure an operator reads unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afflux.cli.embedded import start_redis
from afflux.cli.processes import free_port
from afflux.clicks.app import create_app
from afflux.shared.core.terms import CampaignTerms

from .conftest import clicks_settings, client_for, create_link, wait_for_campaign
from .test_link_poison import metric


async def test_a_redirect_redis_cannot_serve_is_a_counted_503(
    infra: Any, campaign: CampaignTerms, tmp_path: Path
) -> None:
    port = free_port()
    redis = start_redis(port, tmp_path / "redis", tmp_path)  # this app's own, to stop
    try:
        settings = clicks_settings(infra, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await wait_for_campaign(app, campaign.campaign_id)
            async with client_for(app) as http:
                link = await create_link(http, campaign.campaign_id, "https://shop.example.com/a")
                app.state.cache.clear()
                redis.kill()

                answer = await http.get(f"/c/{link['code']}")
                text = (await http.get("/metrics")).text
    finally:
        redis.kill()

    assert answer.status_code == 503, answer.text
    assert metric(text, "afflux_clicks_total", campaign="none", outcome="unavailable") == 1
    [timed] = [
        line for line in text.splitlines() if line.startswith("afflux_redirect_seconds_count")
    ]
    assert float(timed.split()[-1]) >= 1

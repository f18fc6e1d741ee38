"""The clicks service exports how far its clock is off Redis's (it dates every click)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from afflux.clicks.app import create_app

from .conftest import clicks_settings

pytestmark = pytest.mark.integration


async def test_the_clicks_service_exports_its_clock_offset(
    infra: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = clicks_settings(infra, tmp_path_factory.mktemp("clicks-clock"))
    app = create_app(settings, clock=lambda: int(time.time() * 1000) - 45_000)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://clicks") as http:
            for _ in range(100):  # the first reading is taken at start-up
                text = (await http.get("/metrics")).text
                if "afflux_clock_offset_seconds " in text:
                    break
                await asyncio.sleep(0.05)
    [line] = [s for s in text.splitlines() if s.startswith("afflux_clock_offset_seconds ")]
    assert -45.1 <= float(line.split()[1]) <= -44.9

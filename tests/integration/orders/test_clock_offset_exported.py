"""The orders service exports how far its clock is off Redis's (it dates every order)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from afflux.orders.app import create_app

from .conftest import orders_settings

pytestmark = pytest.mark.integration


async def exported_clock_offset(app: FastAPI, base_url: str) -> float:
    """``afflux_clock_offset_seconds`` on the started ``app``'s /metrics, once its first
    reading (taken at start-up) is there."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        for _ in range(100):
            text = (await http.get("/metrics")).text
            if "afflux_clock_offset_seconds " in text:
                break
            await asyncio.sleep(0.05)
    [line] = [s for s in text.splitlines() if s.startswith("afflux_clock_offset_seconds ")]
    return float(line.split()[1])


async def test_the_orders_service_exports_its_clock_offset(infra: Any) -> None:
    app = create_app(orders_settings(infra), clock=lambda: int(time.time() * 1000) + 90_000)
    async with app.router.lifespan_context(app):
        offset = await exported_clock_offset(app, "http://orders")
    assert 89.9 <= offset <= 90.1

"""The clicks service exports how far its clock is off Redis's (it dates every click)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.integration.orders.test_clock_offset_exported import exported_clock_offset

from afflux.clicks.app import create_app

from .conftest import clicks_settings

pytestmark = pytest.mark.integration


async def test_the_clicks_service_exports_its_clock_offset(
    infra: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = clicks_settings(infra, tmp_path_factory.mktemp("clicks-clock"))
    app = create_app(settings, clock=lambda: int(time.time() * 1000) - 45_000)
    async with app.router.lifespan_context(app):
        offset = await exported_clock_offset(app, "http://clicks")
    assert -45.1 <= offset <= -44.9

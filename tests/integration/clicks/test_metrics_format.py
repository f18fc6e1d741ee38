"""The /metrics output passes ``promtool check metrics``."""

from __future__ import annotations

import subprocess

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_promtool_accepts_the_metrics(client: httpx.AsyncClient, promtool: str) -> None:
    await client.get("/c/no-such-code")
    text = (await client.get("/metrics")).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

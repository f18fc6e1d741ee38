"""A whole stack for the abuse tests, its clicks service trusting loopback as a proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli.processes import free_port
from afflux.cli.stack import SERVICES, Stack, StackOptions

ADMIN_TOKEN = "abuse-admin-token"
CAMPAIGNS = Path(__file__).parents[3] / "examples" / "campaigns.yaml"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("abuse-stack")
    running = Stack(
        StackOptions(
            work_dir=work,
            ports={name: free_port() for name in SERVICES},
            env={
                "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN,
                "AFFLUX_CLICKS_TRUSTED_PROXIES": "127.0.0.1",
                "AFFLUX_CLICKS_IP_HASH_SECRET": "abuse-ip-secret",
            },
        )
    )
    try:
        running.start_infra()
        running.apply_campaigns(CAMPAIGNS)
        running.start_all()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def admin_token() -> str:
    return ADMIN_TOKEN

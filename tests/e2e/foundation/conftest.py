"""A whole stack (fresh broker, Redis and the four services as processes) per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from afflux.cli.demo_client import DemoClient
from afflux.cli.processes import free_port
from afflux.cli.stack import Stack, StackOptions
from afflux.shared.core.terms import CampaignTerms

ADMIN_TOKEN = "e2e-admin-token"

TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: e2e-shop
      merchant_id: merchant-e2e
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {percent: "10"}}
  - effective_from: 0
    terms:
      campaign_id: e2e-instant
      merchant_id: merchant-e2e
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 0
      grace_seconds: 1
      plan:
        sale: {rate: {percent: "10"}}
"""


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work: Path = tmp_path_factory.mktemp("e2e-stack")
    ports = {name: free_port() for name in ("clicks", "orders", "payouts", "attribution")}
    running = Stack(
        StackOptions(work_dir=work, ports=ports, env={"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN})
    )
    try:
        running.start_infra()
        terms = work / "campaigns.yaml"
        terms.write_text(TERMS_YAML)
        running.apply_campaigns(terms)
        running.start_all()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def campaign_terms() -> dict[str, CampaignTerms]:
    entries = yaml.safe_load(TERMS_YAML)["campaigns"]
    return {e["terms"]["campaign_id"]: CampaignTerms.model_validate(e["terms"]) for e in entries}


@pytest.fixture
def client(stack: Stack) -> DemoClient:
    return DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN)

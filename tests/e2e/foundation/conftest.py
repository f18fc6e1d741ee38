"""A whole stack (fresh broker, Redis and the four services as processes) per module."""

from __future__ import annotations

import pytest
import yaml

from afflux.cli.demo_client import DemoClient
from afflux.cli.stack import Stack
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
def stack_campaigns() -> str:
    return TERMS_YAML


@pytest.fixture(scope="package")
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture(scope="package")
def campaign_terms() -> dict[str, CampaignTerms]:
    entries = yaml.safe_load(TERMS_YAML)["campaigns"]
    return {e["terms"]["campaign_id"]: CampaignTerms.model_validate(e["terms"]) for e in entries}


@pytest.fixture
def client(stack: Stack) -> DemoClient:
    return DemoClient(stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN)

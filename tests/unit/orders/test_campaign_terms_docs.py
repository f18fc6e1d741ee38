"""The shipped examples and the published schema of campaign terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from afflux.orders.campaigns_cli import schema_text
from afflux.shared.campaign_file import load_campaign_file

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_schema_file_is_current() -> None:
    stored = (ROOT / "docs/campaigns.schema.json").read_text(encoding="utf-8")
    assert stored == schema_text(), (
        "docs/campaigns.schema.json is stale: run "
        "python -m afflux.orders.campaigns_cli schema > docs/campaigns.schema.json"
    )


def test_examples_exercise_every_plan_element_model_and_window() -> None:
    entries = load_campaign_file(ROOT / "examples/campaigns.yaml").campaigns
    terms = [entry.terms for entry in entries]
    plans = [t.plan for t in terms]
    used = {
        "percent sale": any(p.sale and p.sale.rate.percent is not None for p in plans),
        "fixed sale": any(p.sale and p.sale.rate.fixed_minor is not None for p in plans),
        "new-customer rate": any(p.sale and p.sale.new_customer for p in plans),
        "per-product rates": any(
            p.sale and p.sale.products and p.sale.products.skus and p.sale.products.categories
            for p in plans
        ),
        "recurring commissions": any(p.recurring for p in plans),
        "lead with confirmation": any(
            t.plan.lead_minor is not None and t.lead_confirmation_required for t in terms
        ),
        "lead without confirmation": any(
            t.plan.lead_minor is not None and not t.lead_confirmation_required for t in terms
        ),
        "action kinds": any(p.actions_minor for p in plans),
        "paid click cap": any(p.click and p.click.paid_click_cap for p in plans),
        "base fee": any(p.base_fee_minor for p in plans),
        "volume tiers": any(p.tiers for p in plans),
        "milestones": any(p.milestones for p in plans),
        "creator cap": any(p.creator_cap_minor for p in plans),
        "campaign budget": any(p.campaign_budget_minor for p in plans),
        "coupons": any(t.coupons for t in terms),
        "pay per engagement": any(p.engagement for p in plans),
        "livestream attribution": any("livestream" in t.precedence for t in terms),
        "EMV values": any(t.emv for t in terms),
    }
    assert [name for name, present in used.items() if not present] == []
    assert {t.model for t in terms} == {"last_click", "first_click"}
    assert {t.cookie_window_days for t in terms} >= {7, 30, 90}
    assert {t.currency for t in terms} == {"EUR", "USD"}

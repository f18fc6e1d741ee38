"""What-if over HTTP on the whole stack: a campaign's clicks and orders on its topics,
``POST /v1/campaigns/{id}/whatif`` answers admin and the campaign's merchant with the diff
the replay gives for the same events, another merchant with the 404 of an unknown
campaign, an invalid draft with a 422 naming the field, a range without events with an
empty diff; the portal page shows the same diff under the portal's CSP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from afflux.bench.feed import produce
from afflux.cli.stack import Stack
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import whatif
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import ClickRecorded, Envelope, OrderPlaced
from afflux.shared.io.http import tls as oneshot
from afflux.shared.whatif_decode import LogReader

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "whatif-stack-admin-token"
DAY0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
DAY = 86_400_000
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: whatif-shop
      merchant_id: whatif-merchant
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      plan:
        sale: {rate: {percent: "5"}}
        tiers:
          - {from_sales: 2, rate: {percent: "10"}}
  - effective_from: 0
    terms:
      campaign_id: else-shop
      merchant_id: else-merchant
      currency: EUR
      allowed_domains: [else.example.com]
      plan:
        sale: {rate: {percent: "10"}}
"""


def events() -> list[Envelope]:
    """Three sales of creator-a's visitors, one of creator-b's (4 to 6 November)."""
    out: list[Envelope] = []
    for n, creator in enumerate(("creator-a", "creator-a", "creator-a", "creator-b")):
        visitor, at = f"v-wi-{n}", DAY0 + (3 + n) * DAY
        out.append(
            ClickRecorded(
                event_id=f"e-wi-click-{n}",
                occurred_at=at - 3_600_000,
                click_id=f"{visitor}.k",
                link_code=f"l-{creator}",
                affiliate_id=creator,
                campaign_id="whatif-shop",
                visitor_id=visitor,
            )
        )
        out.append(
            OrderPlaced(
                event_id=f"e-wi-order-{n}",
                occurred_at=at,
                order_id=f"o-wi-{n}",
                campaign_id="whatif-shop",
                merchant_id="whatif-merchant",
                amount_minor=10_000,
                currency="EUR",
                visitor_id=visitor,
            )
        )
    return out


def current() -> tuple[TermsVersion, ...]:
    """whatif-shop's terms as TERMS_YAML publishes them."""
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "whatif-shop",
            "merchant_id": "whatif-merchant",
            "currency": "EUR",
            "allowed_domains": ["shop.example.com"],
            "cookie_window_days": 30,
            "plan": {
                "sale": {"rate": {"percent": "5"}},
                "tiers": [{"from_sales": 2, "rate": {"percent": "10"}}],
            },
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def doubled(terms: CampaignTerms) -> dict[str, Any]:
    raw = terms.model_dump(mode="json")
    raw["plan"]["tiers"][0]["rate"]["percent"] = "20"
    return raw


def key(stack: Stack, role: str, subject: str) -> dict[str, str]:
    issued = oneshot.post(
        f"{stack.url('payouts')}/v1/keys",
        json={"role": role, "subject": subject},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert issued.status_code == 201, issued.text
    return {"authorization": f"Bearer {issued.json()['key']}"}


@pytest.fixture(scope="module")
def fed(stack: Stack) -> list[Envelope]:
    recorded = events()
    asyncio.run(produce(stack.kafka_bootstrap, recorded, stack.options.partitions))
    return recorded


def test_whatif_answers_admin_and_the_merchant_with_the_replayed_diff(
    stack: Stack, fed: list[Envelope]
) -> None:
    versions = current()
    draft = doubled(versions[0].terms)
    log = LogReader(CampaignLog("whatif-shop"))
    for event in fed:
        log.item(event.model_dump(mode="json"))
    expected = whatif(log.log, versions, CampaignTerms.model_validate(draft)).as_dict()
    url = f"{stack.url('payouts')}/v1/campaigns/whatif-shop/whatif"
    for headers in (
        {"authorization": f"Bearer {ADMIN_TOKEN}"},
        key(stack, "merchant", "whatif-merchant"),
    ):
        answer = oneshot.post(url, json={"terms": draft}, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
    body = answer.json()
    # creator-a's 2nd and 3rd sales move from the 10 % tier to 20 %: 5 + 20 + 20 against 25
    assert [
        (c["affiliate_id"], c["current_minor"], c["draft_minor"]) for c in body["creators"]
    ] == [("creator-a", 2_500, 4_500)]
    assert "tier from net sale 2 rate 10% -> 20%" in body["changes"][0]["reason"]


def test_another_merchants_campaign_is_the_404_of_an_unknown_one(
    stack: Stack, fed: list[Envelope]
) -> None:
    headers = key(stack, "merchant", "else-merchant")
    draft = {"terms": doubled(current()[0].terms)}
    base = stack.url("payouts")
    other = oneshot.post(f"{base}/v1/campaigns/whatif-shop/whatif", json=draft, headers=headers)
    unknown = oneshot.post(f"{base}/v1/campaigns/nowhat-shop/whatif", json=draft, headers=headers)
    assert other.status_code == unknown.status_code == 404
    assert other.text.replace("whatif-shop", "nowhat-shop") == unknown.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"plan": {"sale": {"rate": {"percent": "abc"}}}}, "terms.plan.sale.rate.percent"),
        ({"currency": "USD"}, "terms.currency"),
        ({"cookie_window_days": -1}, "terms.cookie_window_days"),
    ],
)
def test_an_invalid_draft_is_a_422_naming_the_field(
    stack: Stack, fed: list[Envelope], change: dict[str, Any], field: str
) -> None:
    draft = {**current()[0].terms.model_dump(mode="json"), **change}
    answer = oneshot.post(
        f"{stack.url('payouts')}/v1/campaigns/whatif-shop/whatif",
        json={"terms": draft},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == field


def test_a_range_without_events_is_an_empty_diff(stack: Stack, fed: list[Envelope]) -> None:
    answer = oneshot.post(
        f"{stack.url('payouts')}/v1/campaigns/whatif-shop/whatif",
        json={"terms": doubled(current()[0].terms), "from": "2025-01-01", "to": "2025-01-31"},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["empty"] is True
    assert answer.json()["orders"] == 0


def test_the_portal_page_shows_the_diff_under_its_csp(stack: Stack, fed: list[Envelope]) -> None:
    import yaml

    headers = key(stack, "merchant", "whatif-merchant")
    page = f"{stack.url('payouts')}/portal/campaigns/whatif-shop/whatif"
    form = oneshot.get(page, headers=headers)
    assert form.status_code == 200
    assert "script-src 'self'" in form.headers["content-security-policy"]
    assert 'id="whatif-form"' in form.text
    draft = yaml.safe_dump(doubled(current()[0].terms))
    shown = oneshot.post(page, data={"terms": draft}, headers=headers, timeout=60)
    assert shown.status_code == 200, shown.text
    assert 'class="whatif-creators"' in shown.text
    assert "creator-a" in shown.text
    assert "<script>" not in shown.text
    refused = oneshot.post(page, data={"terms": "campaign_id: [\n"}, headers=headers)
    assert refused.status_code == 422
    assert 'id="whatif-refused"' in refused.text
    # Eight levels of merged aliases (600 bytes) would be 10^8 entries once read.
    chain = ["l0: &l0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for n in range(1, 9):
        chain.append(f"l{n}: &l{n} {{<<: [{', '.join([f'*l{n - 1}'] * 10)}]}}")
    for hostile, reason in (
        ("\n".join(chain), "terms: not YAML: anchors and aliases are not accepted here"),
        ("[" * 2_000 + "]" * 2_000, "terms: not YAML: nested deeper than 32 levels"),
    ):
        answer = oneshot.post(page, data={"terms": hostile}, headers=headers, timeout=10)
        assert answer.status_code == 422, answer.text[:300]
        assert reason in answer.text
    assert oneshot.get(f"{stack.url('payouts')}/healthz", timeout=10).status_code == 200

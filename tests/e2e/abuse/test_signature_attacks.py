"""Signature attacks against the running orders service: each is refused and emits nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from afflux.cli.scenario_checks import read_topic_sync
from afflux.cli.stack import Stack
from afflux.orders.signing import sign
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.events import OrderPlaced
from afflux.shared.io.http import tls as oneshot

pytestmark = [pytest.mark.e2e]

CAMPAIGNS = {
    e.terms.campaign_id: e.terms
    for e in load_campaign_file(Path(__file__).parents[3] / "examples" / "campaigns.yaml").campaigns
}
ACME = CAMPAIGNS["acme-fashion"]
GLOBEX = CAMPAIGNS["globex-apps"]


def _order(order_id: str, campaign_id: str = ACME.campaign_id) -> bytes:
    return json.dumps(
        {
            "order_id": order_id,
            "campaign_id": campaign_id,
            "occurred_at": int(time.time() * 1000),
            "kind": "sale",
            "amount_minor": 2500,
            "currency": CAMPAIGNS[campaign_id].currency,
            "visitor_id": "v_attacker",
        }
    ).encode()


def _secret(merchant: str) -> str:
    return f"dev-secret-{merchant}"


def _attacks() -> list[tuple[str, bytes, dict[str, str], int]]:
    now = int(time.time())
    body = _order("attack-wrong-secret")
    stale = _order("attack-replayed")
    tampered = _order("attack-tampered")
    foreign = _order("attack-foreign", GLOBEX.campaign_id)
    merchant = ACME.merchant_id
    return [
        ("wrong secret", body, {"sig": sign(body, "not-the-secret", now)}, 401),
        (
            "request replayed 301 s after it was signed",
            stale,
            {"sig": sign(stale, _secret(merchant), now - 301)},
            401,
        ),
        (
            "one byte changed after signing",
            tampered.replace(b"2500", b"2501"),
            {"sig": sign(tampered, _secret(merchant), now)},
            401,
        ),
        (
            "a merchant signing for another merchant's campaign (as an unknown campaign)",
            foreign,
            {"sig": sign(foreign, _secret(merchant), now)},
            422,
        ),
    ]


@pytest.mark.parametrize("case", range(4))
def test_signature_attack_is_refused_and_emits_nothing(stack: Stack, case: int) -> None:
    name, body, extra, status = _attacks()[case]
    answer = oneshot.post(
        f"{stack.url('orders')}/v1/orders",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Afflux-Merchant": ACME.merchant_id,
            "X-Afflux-Signature": extra["sig"],
        },
    )
    assert answer.status_code == status, (name, answer.text)
    order_id = json.loads(body)["order_id"]
    orders = read_topic_sync(stack.kafka_bootstrap, "orders", idle_s=1.0)
    assert [e for e in orders if isinstance(e, OrderPlaced) and e.order_id == order_id] == []

"""Each dead letter the worker writes is counted under a bounded label naming its kind."""

from __future__ import annotations

import pytest

from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.outbox import Outbox

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("not JSON: unexpected character", "not_json"),
        ("invalid event: OrderPlaced.order_id: Field required", "invalid_event"),
        ("unknown campaign", "unknown_campaign"),
        ("event_time_in_future: occurred_at 9 is 9 ms after", "event_time_in_future"),
        ("event_time_too_old: occurred_at 1 is 9 ms before", "event_time_too_old"),
        ("currency_mismatch: order in USD, campaign pays in EUR", "currency_mismatch"),
        ("currency_mismatch: refund in JPY, order in EUR", "currency_mismatch"),
        ("merchant_mismatch: order of merchant 'x' for campaign", "merchant_mismatch"),
        ("wrong_topic: OrderPlaced does not travel on 'clicks'", "wrong_topic"),
        ("failed: ValueError: x", "failed"),
        ("unexpected event type OrderRefunded", "unexpected_event_type"),
        ("an empty array: a packed record holds at least one event", "undecodable"),
    ],
)
def test_a_dead_letter_is_counted_under_the_label_of_its_kind(reason: str, label: str) -> None:
    metrics = AttributionMetrics()
    outbox = Outbox(metrics, lambda: 0)
    letter = outbox.letter("orders", 0, 7, 0, b"k", None, reason, b"{}")

    outbox.records([], [letter], lambda topic: None)

    sample = metrics.registry.get_sample_value(
        "afflux_dlq_total", {"topic": "orders", "reason": label}
    )
    assert sample == 1.0

"""Pruning the refund stage: an order's record is kept for the retention after its
latest event, and never while a refund waits for the order's outcome."""

from __future__ import annotations

import pytest

from afflux.attribution.join import WATERMARK_KEY
from afflux.attribution.refunds import RefundPartition
from afflux.shared.events import ConversionAttributed, OrderRefunded
from afflux.shared.topics import REVERSALS, UNMATCHED

pytestmark = pytest.mark.unit

DAY = 86_400_000
RETENTION = 400 * DAY
T0 = 1_793_491_200_000


def conversion(order: str, at: int) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"conv-ev-{order}",
        occurred_at=at,
        conversion_id=f"conv-{order}",
        order_id=order,
        campaign_id="campaign",
        affiliate_id="creator",
        reason="cookie",
        model="last_click",
        window_ms=30 * DAY,
        terms_version=1,
        amount_minor=10_000,
        currency="EUR",
        order_event_id=f"order-ev-{order}",
    )


def refund(order: str, at: int, n: int = 1) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"refund-ev-{order}-{n}",
        occurred_at=at,
        refund_id=f"refund-{order}-{n}",
        order_id=order,
        campaign_id="campaign",
        amount_minor=1_000,
        currency="EUR",
    )


def stage_with(order: str, at: int) -> RefundPartition:
    stage = RefundPartition()
    stage.conversion(order, conversion(order, at))
    stage.conversion("fresh", conversion("fresh", T0 + RETENTION + DAY))  # moves the watermark
    stage.take_dirty()
    return stage


def prune(stage: RefundPartition) -> None:
    stage.prune(stage.watermark - RETENTION)


@pytest.mark.parametrize(
    ("last_event", "kept"),
    [
        (T0 + DAY - 1, False),  # one ms before the horizon: forgotten
        (T0 + DAY, True),  # exactly at the horizon: kept
    ],
)
def test_an_order_is_forgotten_once_its_latest_event_is_past_the_retention(
    last_event: int, kept: bool
) -> None:
    stage = stage_with("old", last_event)

    prune(stage)

    assert ("old" in stage.keys) is kept
    written = dict(stage.take_dirty())
    if not kept:
        assert written["old"] is None  # a tombstone on the changelog


def test_a_late_refund_keeps_the_order_for_another_retention() -> None:
    stage = stage_with("old", T0)
    stage.refund("old", refund("old", T0 + RETENTION), arrived=0)

    prune(stage)

    assert "old" in stage.keys


def test_an_order_with_a_waiting_refund_is_never_forgotten() -> None:
    stage = RefundPartition()
    stage.refund("unknown", refund("unknown", T0), arrived=0)
    stage.conversion("fresh", conversion("fresh", T0 + 2 * RETENTION))

    prune(stage)

    assert "unknown" in stage.keys


def test_a_refund_for_a_forgotten_order_is_unknown_after_the_wait() -> None:
    stage = stage_with("old", T0)
    prune(stage)

    assert stage.refund("old", refund("old", T0 + RETENTION + DAY), arrived=10) == []
    ((topic, key, event),) = stage.due(safe_time=10 + 5_000, wait_ms=5_000)

    assert (topic, key) == (UNMATCHED.name, "old")
    assert getattr(event, "reason", None) == "order_unknown"


def test_a_known_order_is_still_reversed() -> None:
    stage = stage_with("kept", T0 + RETENTION)
    prune(stage)

    ((topic, _, _),) = stage.refund("kept", refund("kept", T0 + RETENTION + 1), arrived=0)

    assert topic == REVERSALS.name


def test_last_event_time_and_watermark_survive_a_restore_from_the_changelog() -> None:
    stage = stage_with("old", T0)
    stage.dirty.update(stage.keys)
    restored = RefundPartition()
    for key, value in stage.take_dirty():
        assert value is not None
        restored.restore(key, value)

    assert restored.watermark == stage.watermark
    assert restored.keys["old"].last_at == T0
    assert WATERMARK_KEY not in restored.keys
    prune(restored)
    assert "old" not in restored.keys

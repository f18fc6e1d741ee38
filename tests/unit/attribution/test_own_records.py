"""Records the worker wrote and reads back are handed back as the events they were
encoded from: the same events a decode of the same bytes gives, in the same order."""

from __future__ import annotations

import pytest

from afflux.attribution.decode import decode_items
from afflux.attribution.outbox import _packed
from afflux.attribution.own_records import OwnRecords
from afflux.oracle import attribute, generate
from afflux.shared.events import (
    Assist,
    ConversionAttributed,
    Envelope,
    LeadConfirmed,
    OrderItem,
    RefundUnmatched,
)
from afflux.shared.topics import CONVERSIONS, REVERSALS, UNMATCHED

pytestmark = pytest.mark.unit

READ_BACK = frozenset((CONVERSIONS.name, UNMATCHED.name))


def _rich_conversion() -> ConversionAttributed:
    """Every optional field set, tuples of models and texts beyond ASCII included."""
    return ConversionAttributed(
        event_id="ev-ü-1",
        occurred_at=1_794_700_800_123,
        conversion_id="conv-1",
        order_id="order-€-1",
        campaign_id="acme",
        affiliate_id="anna",
        reason="survey",
        model="last_click",
        window_ms=86_400_000,
        click_id="v1.abc",
        clicked_at=1_794_700_000_000,
        lag_ms=800_123,
        assists=(Assist(affiliate_id="ben", click_id="v1.def", clicked_at=1_794_600_000_000),),
        terms_version=3,
        kind="sale",
        amount_minor=12_345,
        currency="KWD",
        visitor_id="v1",
        customer_id="cust-ñ",
        new_customer=True,
        order_event_id="oev-1",
        items=(OrderItem(sku="sku-1", category="shoes", quantity=3, price_minor=4_115),),
        non_commissionable_minor=45,
        supersedes="conv-0",
        correction_reason="late_survey",
        corrected_at=1_794_700_900_000,
        survey_affiliate_id="anna",
        risk_signals=("fast_conversion",),
    )


def _outputs(seed: int) -> list[tuple[str, str, Envelope]]:
    scenario = generate(seed, visitors=300, prefix=f"s{seed}")
    result = attribute(scenario.events, scenario.campaigns)
    out: list[tuple[str, str, Envelope]] = []
    for event in [*result.conversions, *result.unmatched, *result.reversals]:
        topic = (
            CONVERSIONS.name
            if isinstance(event, ConversionAttributed | LeadConfirmed)
            else REVERSALS.name
            if event.type == "ConversionReversed"
            else UNMATCHED.name
        )
        out.append((topic, str(event.order_id), event))  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_record_read_back_gives_the_events_a_decode_of_its_bytes_gives(seed: int) -> None:
    out = [*_outputs(seed), (CONVERSIONS.name, "order-€-1", _rich_conversion())]
    own = OwnRecords()

    records = _packed(out, lambda topic: 4, READ_BACK, own)

    read_back = [r for r in records if r[0] in READ_BACK]
    assert read_back
    assert len(own) == len(read_back)
    for topic, _, value, _ in records:
        remembered = own.take(value)
        if topic not in READ_BACK:
            assert remembered is None  # the reversals: never read back by this worker
            continue
        decoded = [event for _, event, reason, _, _ in decode_items(value) if not reason]
        assert remembered is not None
        assert list(remembered) == decoded
        assert [e.model_dump_json() for e in remembered] == [
            e.model_dump_json()
            for e in decoded  # type: ignore[union-attr]
        ]
    assert len(own) == 0
    assert own.held_bytes == 0


def test_a_record_is_handed_back_once_then_decoded_as_any_other() -> None:
    own = OwnRecords()
    event = RefundUnmatched(
        event_id="ev-1",
        occurred_at=1,
        refund_id="rf-1",
        order_id="o-1",
        campaign_id="acme",
        amount_minor=100,
        currency="EUR",
        reason="order_unknown",
    )
    ((_, _, value, _),) = _packed([(UNMATCHED.name, "o-1", event)], lambda t: None, READ_BACK, own)

    assert own.take(value) == (event,)
    assert own.take(value) is None  # a redelivery decodes
    assert own.take(None) is None


def test_the_oldest_records_are_forgotten_past_the_bound_in_bytes() -> None:
    own = OwnRecords(max_bytes=100)
    values = [bytes([65 + n]) * 40 for n in range(4)]
    for value in values:
        own.remember(value, ())

    assert own.held_bytes == 80
    assert own.take(values[0]) is None
    assert own.take(values[1]) is None
    assert own.take(values[2]) == ()
    assert own.take(values[3]) == ()
    own.remember(b"x" * 101, ())  # larger than the bound: never kept
    assert len(own) == 0
    assert own.held_bytes == 0

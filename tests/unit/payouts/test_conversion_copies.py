"""A conversion id names one decision: a copy under another event id changes nothing,
a conflicting one (another creator, amount or time) is refused, never re-prices."""

from __future__ import annotations

from dataclasses import replace

import pytest

from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.conversion_copies import (
    ConversionConflict,
    ReversalConflict,
    new_conversions,
    new_refunds,
)
from afflux.shared.core.journal.records import LineRecord, RefundEntry

pytestmark = pytest.mark.unit

FIRST = ConversionFact(
    conversion_id="conv-1",
    event_id="conv-1",
    order_id="o-1",
    affiliate_id="anna",
    kind="sale",
    action=None,
    amount_minor=10_000,
    currency="EUR",
    new_customer=False,
    occurred_at=1_000,
    terms_version=1,
)


def held(*facts: ConversionFact) -> dict[str, LineRecord]:
    """A period holding a line per fact, as the store loads it."""
    lines: dict[str, LineRecord] = {}
    for fact in facts:
        line_id = derived_id("line", fact.conversion_id)
        lines[line_id] = LineRecord(line_id, fact.affiliate_id, "sale", conversion=fact)
    return lines


def test_a_conversion_the_period_does_not_hold_is_new() -> None:
    assert new_conversions(held(), [FIRST]) == (FIRST,)


def test_a_copy_under_another_event_id_is_left_out() -> None:
    copy = replace(FIRST, event_id="written-again")
    assert new_conversions(held(FIRST), [copy]) == ()
    assert new_conversions(held(), [FIRST, copy]) == (FIRST,)


@pytest.mark.parametrize(
    "change",
    [
        {"affiliate_id": "bob"},
        {"amount_minor": 900_000},
        {"amount_minor": 10_001},
        {"occurred_at": 1_001},
        {"terms_version": 2},
        {"kind": "lead"},
        {"new_customer": True},
        {"risk_signals": ("same_ip",)},
        {"items": (("sku", "shoes", 1, 10_000),)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_conflicting_copy_is_refused_whether_held_or_earlier_in_the_batch(
    change: dict[str, object],
) -> None:
    conflicting = replace(FIRST, event_id="forged", **change)  # type: ignore[arg-type]
    with pytest.raises(ConversionConflict, match=f"{next(iter(change))}"):
        new_conversions(held(FIRST), [conflicting])
    with pytest.raises(ConversionConflict, match="'conv-1' is already held from event 'conv-1'"):
        new_conversions(held(), [FIRST, conflicting])


def test_other_conversions_of_the_same_order_are_their_own() -> None:
    correction = replace(FIRST, conversion_id="conv-1-late", event_id="conv-1-late")
    assert new_conversions(held(FIRST), [correction]) == (correction,)


REFUND = RefundFact("rev-1", "ev-rev-1", "o-1", 1_000, 2_000, "conv-1")


def holding_refund(refund: RefundFact) -> dict[str, LineRecord]:
    lines = held(FIRST)
    line = lines[derived_id("line", FIRST.conversion_id)]
    line.refunds = (RefundEntry(refund.reversal_id, refund.event_id, refund.amount_minor,
                                refund.occurred_at, refund.reason, refund.items),)  # fmt: skip
    return lines


def test_a_reversal_copy_under_another_event_id_is_left_out() -> None:
    copy = replace(REFUND, event_id="written-again")
    assert new_refunds(held(FIRST), [REFUND]) == (REFUND,)
    assert new_refunds(holding_refund(REFUND), [copy]) == ()
    assert new_refunds(held(FIRST), [REFUND, copy]) == (REFUND,)


@pytest.mark.parametrize(
    "change",
    [{"amount_minor": 9_000}, {"occurred_at": 2_001}, {"reason": "reattributed"}],
    ids=lambda c: next(iter(c)),
)
def test_a_reversal_under_a_held_id_with_other_facts_is_refused(change: dict[str, object]) -> None:
    other = replace(REFUND, event_id="forged", **change)  # type: ignore[arg-type]
    with pytest.raises(ReversalConflict, match="reversal 'rev-1' is already held from event"):
        new_refunds(holding_refund(REFUND), [other])
    with pytest.raises(ReversalConflict):
        new_refunds(held(FIRST), [REFUND, other])

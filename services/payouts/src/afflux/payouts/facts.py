"""Ledger facts as stored in Redis (JSON), and their conversion to the engine's values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from afflux.shared.core.commission import (
    CapCut,
    ClickTally,
    ConversionFact,
    Line,
    PeriodFacts,
    RefundFact,
)
from afflux.shared.events import ConversionAttributed, ConversionReversed
from afflux.shared.wire import compact_json

CONVERSION = "c:"
CONFIRMATION = "l:"
REFUND = "r:"


def conversion_fact(event: ConversionAttributed) -> ConversionFact:
    return ConversionFact(
        conversion_id=event.conversion_id,
        event_id=event.event_id,
        order_id=event.order_id,
        affiliate_id=event.affiliate_id,
        kind=event.kind,
        action=event.action,
        amount_minor=event.amount_minor,
        currency=event.currency,
        new_customer=event.new_customer,
        occurred_at=event.occurred_at,
        terms_version=event.terms_version,
    )


def refund_fact(event: ConversionReversed) -> RefundFact:
    return RefundFact(
        reversal_id=event.reversal_id,
        event_id=event.event_id,
        order_id=event.order_id,
        amount_minor=event.amount_minor,
        occurred_at=event.occurred_at,
        conversion_id=event.conversion_id,
        reason=event.reason,
    )


def dump(value: ConversionFact | RefundFact | dict[str, str]) -> str:
    if isinstance(value, dict):
        return compact_json(value)
    return compact_json({name: getattr(value, name) for name in type(value).__slots__})


Parsed = ConversionFact | RefundFact | tuple[str, str] | None  # a confirmation: order, event id


def parse_fact(field: str, raw: str) -> Parsed:
    """One stored fact as the engine's value (None for a field of no known kind)."""
    data: dict[str, Any] = json.loads(raw)
    if field.startswith(CONVERSION):
        return ConversionFact(**data)
    if field.startswith(REFUND):
        return RefundFact(**data)
    if field.startswith(CONFIRMATION):
        return (data["order_id"], data["event_id"])
    return None


def period_facts(
    campaign_id: str, period: str, parsed: Mapping[str, Parsed], clicks: Mapping[str, str]
) -> PeriodFacts:
    """The engine's input from a period's parsed facts and click tallies."""
    conversions: list[ConversionFact] = []
    refunds: list[RefundFact] = []
    confirmations: dict[str, str] = {}
    for fact in parsed.values():
        if isinstance(fact, ConversionFact):
            conversions.append(fact)
        elif isinstance(fact, RefundFact):
            refunds.append(fact)
        elif fact is not None:
            confirmations[fact[0]] = fact[1]
    return PeriodFacts(
        campaign_id=campaign_id,
        period=period,
        conversions=tuple(conversions),
        confirmed_orders=frozenset(confirmations),
        confirmation_ids=confirmations,
        refunds=tuple(refunds),
        clicks=click_tallies(clicks),
    )


def click_tallies(clicks: Mapping[str, str]) -> tuple[ClickTally, ...]:
    """From the tally hash: ``u|<affiliate>`` unique clicks, ``f|<affiliate>`` first click time."""
    tallies = []
    for field, value in clicks.items():
        kind, _, affiliate = field.partition("|")
        if kind == "u":
            first = int(clicks.get(f"f|{affiliate}", "0"))
            tallies.append(ClickTally(affiliate, int(value), first))
    return tuple(sorted(tallies, key=lambda t: t.affiliate_id))


def line_to_json(line: Line) -> dict[str, Any]:
    data = {name: getattr(line, name) for name in Line.__slots__}
    data["source_event_ids"] = list(line.source_event_ids)
    data["cap_cuts"] = [{"scope": c.scope, "cut_minor": c.cut_minor} for c in line.cap_cuts]
    return data


def line_from_json(data: dict[str, Any]) -> Line:
    values = dict(data)
    values["source_event_ids"] = tuple(values["source_event_ids"])
    values["cap_cuts"] = tuple(CapCut(**c) for c in values["cap_cuts"])
    return Line(**values)

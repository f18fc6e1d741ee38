"""KPI counters a line contributes to, so reads never scan facts.

Each conversion line contributes to its creator's counters (conversions,
sales, revenue, refunds, new customers, conversions per day) while it is the
order's current conversion; a correction that replaces it takes its share back.
The step adds the difference of a line's contribution before and after a batch,
and every posting's amount to the creator's commission (in all and per day of
the line's time). Field names: ``<counter>|<affiliate>`` and
``<counter>|<affiliate>|<YYYY-MM-DD>``.
"""

from __future__ import annotations

from afflux.shared.core.journal import rules
from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.periods import day_of

Contribution = tuple[tuple[str, int], ...]


def kpi_contribution(record: LineRecord, period_end: int, *, empty: bool = False) -> Contribution:
    del period_end  # the counters count refunds whenever they happen
    c = record.conversion
    if empty or c is None or rules.is_superseded(record):
        return ()
    a = record.affiliate_id
    day = day_of(c.occurred_at)
    sale = c.kind == "sale"
    refunded = sum(r.amount_minor for r in record.refunds)
    return (
        (f"conversions|{a}", 1),
        (f"conversions|{a}|{day}", 1),
        (f"sales|{a}", 1 if sale else 0),
        (f"revenue|{a}", c.amount_minor if sale else 0),
        (f"refunds|{a}", refunded),
        (f"new_customers|{a}", 1 if c.new_customer else 0),
    )


def add_contribution(
    kpis: dict[str, int], record: LineRecord, old: Contribution, new: Contribution
) -> None:
    del record
    for name, value in old:
        kpis[name] = kpis.get(name, 0) - value
    for name, value in new:
        kpis[name] = kpis.get(name, 0) + value

"""One conversion id, one set of facts: what a period does with a conversion it holds.

The attribution worker gives each conversion a derived id and writes it once (a
redelivery carries the same event id, which the ledger already drops). A second
record under a known conversion id but another event id is therefore either the same
decision copied (left out: nothing to change) or a conflicting one: another creator,
amount or time for a line that may already be approved or paid. Taking it would
re-price the line in place, or move it to another creator while the first one's period
sums still counted it, so it is refused, whichever of the two arrived in the batch.
The same holds across the periods of a campaign: a copy dated in another period than
the first (``elsewhere``, known to the store from the campaign-wide claim each
conversion id makes) would be a second line paying the same order, and is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.records import LineRecord


class ConversionConflict(ValueError):
    """A conversion whose id the period holds (or the batch holds earlier) with other
    facts: the first one stands, this one is refused."""


def new_conversions(
    lines: Mapping[str, LineRecord],
    conversions: Sequence[ConversionFact],
    elsewhere: Mapping[str, str] | None = None,
) -> tuple[ConversionFact, ...]:
    """``conversions`` new to the period held in ``lines``, in order; a copy of a known
    conversion under another event id is left out. Raises ``ConversionConflict`` for one
    whose id is known with other facts, or held by another period of its campaign
    (``elsewhere``: conversion id -> that period)."""
    first: dict[str, ConversionFact] = {}
    out: list[ConversionFact] = []
    for c in conversions:
        if elsewhere and (other := elsewhere.get(c.conversion_id)) is not None:
            raise ConversionConflict(
                f"conversion {c.conversion_id!r} is already held by period {other!r} of "
                f"its campaign; event {c.event_id!r}, dated in another period, is refused"
            )
        earlier = first.get(c.conversion_id)
        if earlier is None:
            record = lines.get(derived_id("line", c.conversion_id))
            earlier = None if record is None else record.conversion
        if earlier is None:
            first[c.conversion_id] = c
            out.append(c)
            continue
        if replace(c, event_id=earlier.event_id) != earlier:
            raise ConversionConflict(
                f"conversion {c.conversion_id!r} is already held from event "
                f"{earlier.event_id!r} with other facts ({_difference(earlier, c)}); "
                f"event {c.event_id!r} is refused"
            )
    return tuple(out)


class ReversalConflict(ConversionConflict):
    """A reversal whose id the period holds (or the batch holds earlier) with other
    facts: the first one stands, this one is refused."""


def new_refunds(
    lines: Mapping[str, LineRecord], refunds: Sequence[RefundFact]
) -> tuple[RefundFact, ...]:
    """``refunds`` new to the period held in ``lines``, in order; a copy of a held
    reversal under another event id is left out. Raises ``ReversalConflict`` for one
    whose reversal id is held on its conversion with another amount, time, reason or
    items: taken, a second record under the id of a reversal of 10.00 took back the whole
    commission. A reversal id is one conversion's: the same id on another conversion is
    another reversal (as in the batch reference)."""
    first: dict[tuple[str, str], RefundFact] = {}
    out: list[RefundFact] = []
    for r in refunds:
        earlier = first.get((r.conversion_id, r.reversal_id))
        if earlier is not None:
            if replace(r, event_id=earlier.event_id) != earlier:
                raise _reversal_conflict(r, earlier.event_id)
            continue
        record = lines.get(derived_id("line", r.conversion_id)) if r.conversion_id else None
        held = (
            next((e for e in record.refunds if e.reversal_id == r.reversal_id), None)
            if record
            else None
        )
        if held is not None:
            if (held.amount_minor, held.occurred_at, held.reason, held.items) != (
                r.amount_minor, r.occurred_at, r.reason, r.items
            ):  # fmt: skip
                raise _reversal_conflict(r, held.event_id)
            continue
        first[(r.conversion_id, r.reversal_id)] = r
        out.append(r)
    return tuple(out)


def _reversal_conflict(r: RefundFact, earlier_event: str) -> ReversalConflict:
    return ReversalConflict(
        f"reversal {r.reversal_id!r} is already held from event {earlier_event!r} with other "
        f"facts; event {r.event_id!r} is refused"
    )


def _difference(earlier: ConversionFact, later: ConversionFact) -> str:
    names = [
        name
        for name in ConversionFact.__slots__
        if name != "event_id" and getattr(earlier, name) != getattr(later, name)
    ]
    return ", ".join(
        f"{name} {getattr(earlier, name)!r} then {getattr(later, name)!r}" for name in names[:3]
    )

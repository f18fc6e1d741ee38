"""Where each conversion of a campaign with review terms stands in the review queue.

The ledger keeps, per campaign-period, one sorted set per status (held, approved,
declined, not held) of the conversions whose line is in the period, scored by the
order's time, so the queue is read a page at a time, oldest first, and counted without
reading a line record. A step moves a conversion between the sets when its line's status
changes; ``moves`` says which moves a step makes, from the statuses as stored and the
line records the step wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field

from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.journal.review_lines import DECLINE
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import TermsVersion, terms_in_force

HELD, APPROVED, DECLINED, NOT_HELD = "held", "approved", "declined", "not_held"
STATUSES = (HELD, APPROVED, DECLINED, NOT_HELD)
DECIDED_STATUSES = (APPROVED, DECLINED)


def is_row(record: LineRecord) -> bool:
    """A conversion's own line (not an agency's override line of it)."""
    return record.conversion is not None and record.override is None


def status(record: LineRecord | None) -> str:
    """held (waiting for a decision), approved, declined or not_held; a conversion the
    ledger has not applied yet is not held."""
    if record is None or not record.held:
        return NOT_HELD
    if record.review is None:
        return HELD
    return DECLINED if record.review[0] == DECLINE else APPROVED


@dataclass
class Moves:
    """A step's changes to the status sets: members added per status (with their
    score, the order's time) and removed per status."""

    added: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def moves(stored: MutableMapping[str, str], records: Iterable[LineRecord]) -> Moves:
    """The moves that bring ``records`` (line records a step wrote, or every record of a
    period whose sets were never written) into the sets, given ``stored`` (line id ->
    status as the sets hold it), which is updated to match."""
    out = Moves()
    for record in records:
        conversion = record.conversion
        if conversion is None or record.override is not None:
            continue
        now = status(record)
        was = stored.get(record.line_id)
        if was == now:
            continue
        stored[record.line_id] = now
        member = conversion.conversion_id
        out.added.setdefault(now, []).append((conversion.occurred_at, member))
        if was is not None:
            out.removed.setdefault(was, []).append(member)
    return out


def reviewed_during(versions: Sequence[TermsVersion], period: str) -> bool:
    """Whether terms that review conversions were in force at some time in ``period``
    (the version in force at its start, or one starting within it): a period without
    holds none."""
    if not versions:
        return False
    start, end = period_bounds(period)
    in_force = [terms_in_force(versions, start)]
    in_force += [v for v in versions if start < v.effective_from < end]
    return any(v.terms.review is not None for v in in_force)

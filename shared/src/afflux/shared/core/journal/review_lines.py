"""Conversions held for review in the journal (afflux.shared.core.review).

A conversion line is held when the signals its conversion carries, plus ``burst``
(more than ``burst_per_hour`` of the creator's current conversions of the period within
the hour up to it, by event time), meet the ``hold_on`` of its terms version. A held
line accrues as usual but is dated ``HELD_UNTIL`` (pending, never approved) until a
decision (``ConversionReviewed``) reaches the ledger: approved, it is moved to
``max(its lock's end, the decision's time)``; declined, its whole commission is
reversed (``review_decline``, the reason in the rule). A held line counts for its
creator's tiers, milestones and activity (base fee) only once approved, and from the
approval on (``counts``, ``counted_at``); a declined one never does. A decision on a line
that is not held changes nothing (the first decision stands) while no signal of its
terms could hold it; once decided, a line stays held (``DECIDED``) even when later
facts take its signals away, so the decision keeps applying.

A renewal follows its subscription's first order when that order's line is in the same
campaign-period (``follows``): while the first order is held and waits, the renewal waits
with it; approved, the renewal is approved at the later of its own lock's end and that
decision; declined, the renewal's whole commission is reversed (``review_decline``, the
first order's reason in the rule). A decision on the renewal itself counts only where the
first order is not held.

The same facts give the same holds in any arrival order: ``burst`` is a function of the
period's conversions by event time, so a conversion that arrives late re-judges the
conversions of the hour after it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from afflux.shared.core.commission import version_by_number
from afflux.shared.core.journal import rules
from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.review import BURST_WINDOW_MS, HELD_UNTIL, ReviewTerms, holding
from afflux.shared.core.terms import TermsVersion

APPROVE, DECLINE = "approve", "decline"
# What holds a decided line that no signal holds any more (``ReviewBook._judgment``).
DECIDED = "decided"


@dataclass(frozen=True, slots=True)
class ReviewFact:
    """A decision on a held conversion, as the ledger takes it."""

    conversion_id: str
    event_id: str
    decision: str  # approve or decline
    reason: str
    decided_by: str
    occurred_at: int


def review_terms(versions: Sequence[TermsVersion], record: LineRecord) -> ReviewTerms | None:
    c = record.conversion
    if c is None:
        return None
    return version_by_number(versions, c.terms_version).terms.review


Review = tuple[str, str, str, str, int]  # (decision, event id, reason, by, at)
Standing = tuple[tuple[str, ...], Review | None]  # the signals holding a line, its decision


def standing(record: LineRecord) -> Standing:
    """The hold the line waits on and its decision: a renewal of a held first order, the
    first order's; any other line, its own."""
    if record.follows is not None and record.follows[0]:
        return record.follows
    return record.held, record.review


def _following(record: LineRecord) -> bool:
    return record.follows is not None and bool(record.follows[0])


def first_order_standing(record: LineRecord) -> Standing:
    """What a renewal of the order of this (current) line follows: its hold and, when held,
    its decision."""
    return record.held, record.review if record.held else None


def is_held(record: LineRecord) -> bool:
    """Held and still waiting for a decision."""
    held, review = standing(record)
    return bool(held) and review is None


def is_declined(record: LineRecord) -> bool:
    held, review = standing(record)
    return bool(held) and review is not None and review[0] == DECLINE


def counts(record: LineRecord) -> bool:
    """Whether the line counts for its creator's tiers, milestones and activity (base
    fee): a held line only once approved, a declined one never. Counting a line still
    waiting would pay, before any decision, the bonus, the tier uplift or the base fee it
    brings."""
    held, review = standing(record)
    return not held or (review is not None and review[0] == APPROVE)


def counted_at(record: LineRecord) -> int:
    """When the line began to count: its time, or for a held line approved, the later of
    its time and the approval (a milestone or a base fee it brings is dated then)."""
    held, review = standing(record)
    if held and review is not None and review[0] == APPROVE:
        return max(record.time, review[4])
    return record.time


class ReviewBook:
    """Each creator's current conversions by (time, line id): what ``burst`` counts; and
    their conversions taken back as reattributed, which it does not count but which stay
    held by it (so the current ones in the hour before such a line still judge it)."""

    def __init__(self, versions: Sequence[TermsVersion]) -> None:
        self.active = any(v.terms.review is not None for v in versions)
        self.times: dict[str, list[tuple[int, str]]] = {}
        self.gone: dict[str, list[tuple[int, str]]] = {}

    def load(self, records: Iterable[LineRecord]) -> None:
        if not self.active:
            return
        for record in records:
            if record.conversion is not None:
                book = self.gone if rules.is_superseded(record) else self.times
                book.setdefault(record.affiliate_id, []).append((record.time, record.line_id))
        for keys in (*self.times.values(), *self.gone.values()):
            keys.sort()

    def judge(
        self,
        versions: Sequence[TermsVersion],
        lines: dict[str, LineRecord],
        dirty: set[str],
        touch: Callable[[LineRecord], None],
    ) -> None:
        """Bring the holds and approval dates of the changed conversion lines (and of the
        conversions in the hour after each, whose ``burst`` they may change) up to date."""
        if not self.active:
            if not any(v.terms.review is not None for v in versions):
                return
            self.active = True  # terms with a review published since the period was loaded
            self.load(lines.values())
        burst = any(
            v.terms.review is not None and "burst" in v.terms.review.hold_on for v in versions
        )
        again: set[str] = set()
        for line_id in sorted(dirty):
            record = lines[line_id]
            if record.conversion is None:
                continue
            keys = self.times.setdefault(record.affiliate_id, [])
            gone = self.gone.setdefault(record.affiliate_id, [])
            key = (record.time, line_id)
            current = not rules.is_superseded(record)
            _place(keys, key, current)
            _place(gone, key, not current)
            again.add(line_id)
            if burst:  # the conversions of the hour after it count it
                until = (record.time + BURST_WINDOW_MS, "")
                for book in (keys, gone):
                    end = bisect_left(book, until)
                    again.update(later for _, later in book[bisect_right(book, key) : end])
        for line_id in sorted(again):
            self.rejudge(versions, lines[line_id], touch)

    def follow(
        self,
        versions: Sequence[TermsVersion],
        record: LineRecord,
        first_order: Standing | None,
        touch: Callable[[LineRecord], None],
    ) -> None:
        """A renewal takes its first order's standing (None: no line of it in the period)."""
        if first_order != record.follows:
            touch(record)
            record.follows = first_order
            self.rejudge(versions, record, touch)

    def rejudge(
        self,
        versions: Sequence[TermsVersion],
        record: LineRecord,
        touch: Callable[[LineRecord], None],
    ) -> None:
        judged = self._judgment(versions, record)
        if judged != (record.held, record.approve_at):
            touch(record)  # before the change: the KPI counters move by the difference
            record.held, record.approve_at = judged

    def _judgment(
        self, versions: Sequence[TermsVersion], record: LineRecord
    ) -> tuple[tuple[str, ...], int]:
        """The signals holding the line, and its approval date."""
        c = record.conversion
        assert c is not None
        review = review_terms(versions, record)
        raised = tuple(c.risk_signals)
        if review is not None and self._burst(record, review.thresholds.burst_per_hour):
            raised += ("burst",)
        # A line taken back as reattributed stays held: nothing it brought is approved
        # without a decision, and the taking back is a reduction at the hold's date.
        held = holding(review, raised)
        if not held and review is not None and record.review is not None:
            # Decided, it stays held, whatever later facts do to its signals: a sale
            # declined for burst was paid in full at its lock once another sale of that
            # hour was reattributed and the burst fell under the threshold.
            held = (DECIDED,)
        base = c.occurred_at + rules.lock_ms(versions, c.terms_version)
        follows = record.follows
        waits_on, decision = follows if follows and follows[0] else (held, record.review)
        if not waits_on:
            return held, base
        if decision is None:
            return held, HELD_UNTIL
        return held, max(base, decision[4])

    def _burst(self, record: LineRecord, per_hour: int) -> bool:
        """More than ``per_hour`` current conversions of the creator in the hour up to the
        line, the line itself counted even once taken back as reattributed (its own
        taking back released a hold it had only by counting itself)."""
        keys = self.times.get(record.affiliate_id, [])
        start = bisect_left(keys, (record.time - BURST_WINDOW_MS + 1, ""))
        end = bisect_right(keys, (record.time, record.line_id))
        itself = 1 if rules.is_superseded(record) else 0
        return end - start + itself > per_hour


def _place(keys: list[tuple[int, str]], key: tuple[int, str], belongs: bool) -> None:
    """``key`` in the sorted ``keys`` when it ``belongs`` there, else out of them."""
    index = bisect_left(keys, key)
    present = index < len(keys) and keys[index] == key
    if belongs and not present:
        keys.insert(index, key)
    elif present and not belongs:
        del keys[index]


def line_time(record: LineRecord, approve_at: int) -> int:
    """The event time of a posting of the line's own component dated ``approve_at``: the
    line's time less the lock after it (fixed, so a moved line's old component keeps its
    old date); a hold's date is no lock, so a component dated by or since a hold is at the
    line's time."""
    if HELD_UNTIL in (approve_at, record.approve_at):
        return record.time
    return approve_at - (record.approve_at - record.time)


def take(record: LineRecord, fact: ReviewFact) -> None:
    """A decision joins its line (the first one stands)."""
    if record.review is None:
        record.review = (
            fact.decision,
            fact.event_id,
            fact.reason,
            fact.decided_by,
            fact.occurred_at,
        )


def priced(record: LineRecord) -> None:
    """The review's part of the line's rule (and of its gross: a decline earns nothing)."""
    held, review = standing(record)
    if not held:
        return
    signals = ", ".join(held)
    c = record.conversion
    first = c.first_order_id if c is not None and _following(record) else None
    what = "review" if first is None else f"review with its first order {first}"
    if review is None:
        record.rule += f"; held for {what} ({signals}): pending until approved"
        return
    decision, _, reason, by, _ = review
    if decision == DECLINE:
        record.gross = 0
        record.rule = f"declined in {what} by {by} ({signals}): {reason or 'no reason given'}"
    else:
        record.rule += f"; approved in {what} by {by} ({signals})"


def review_contribution(record: LineRecord) -> tuple[tuple[str, int], ...]:
    """The line's share of its creator's review counters (KPIs); none for a line taken
    back as reattributed, which leaves every KPI (``kpis.kpi_contribution``)."""
    if not record.held or rules.is_superseded(record):
        return ()
    a = record.affiliate_id
    if record.review is None:
        return ((f"review_held|{a}", 1),)
    if record.review[0] == DECLINE:
        return ((f"review_declined|{a}", 1),)
    return ((f"review_approved|{a}", 1),)

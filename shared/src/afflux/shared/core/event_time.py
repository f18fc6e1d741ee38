"""How far an event's own time may stray from the broker's time for its record.

Above: an event time later than its record's timestamp plus the allowed clock skew
cannot be true; taken as it is, it would move a stage's event-time watermark into
the future. The orders service refuses such times at its door
(``AFFLUX_ORDERS_CLOCK_SKEW_S``, the same default); the attribution worker and the
batch oracle refuse records produced straight to a topic by this rule.

Below: the orders service takes an order, refund or renewal dated at most the
campaign's backfill limit (``backfill_limit_ms``: the longest cookie window plus the
longest lock of the versions in force by the event's time, unless
``AFFLUX_ORDERS_BACKFILL_LIMIT_DAYS`` sets one limit for all)
before its receive time; anything older needs an operator's explicit backfill. An
older time produced straight to a topic (seconds sent as milliseconds, a year-old
replay) would be attributed and approved at once, past the return window: the worker
and the oracle refuse it by the same limit, measured from the record's timestamp, with
the clock skew on top (the record is stamped a moment after the orders service
placed the event, possibly by another clock). A record that carries the
``BACKFILL_HEADER`` is an explicit backfill (the orders service's admin backfill
marks what it produces so) and is held to the upper bound only, as the admin
backfill is.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.terms import TermsVersion

DEFAULT_CLOCK_SKEW_MS = 5 * 60_000
EVENT_TIME_IN_FUTURE = "event_time_in_future"
EVENT_TIME_TOO_OLD = "event_time_too_old"
# The Kafka record header that marks an explicit backfill (value ``b"1"``).
BACKFILL_HEADER = "afflux-backfill"
BACKFILL_HEADERS: tuple[tuple[str, bytes], ...] = ((BACKFILL_HEADER, b"1"),)
Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
# What the orders service places in event time, down to the campaign's backfill limit: the
# lower bound holds these event types alone. Named by type, as the core holds no event
# models (``afflux.shared.events.PLACED_TYPES`` are these types' models).
PLACED_KINDS = frozenset(("OrderPlaced", "OrderRefunded", "SubscriptionRenewed"))


def event_time_in_future(occurred_at: int, record_ts: int, skew_ms: int) -> bool:
    """True when ``occurred_at`` is more than ``skew_ms`` after ``record_ts`` (exactly
    ``skew_ms`` after is still accepted)."""
    return occurred_at - record_ts > skew_ms


# How far an input's time may be after a consumer's own clock. The record's timestamp
# holds the producer to the skew; this bound only stops one that stamped its record as
# far ahead as its event (a click a year ahead moved the watermark a year, and the next
# prune dropped every click of its partition). Held to the skew, a worker whose clock ran
# 400 s behind its producers dead-lettered their live clicks and orders, for good
# (commission lost); an hour ahead of the watermark stays inside the prune's day margin.
OWN_CLOCK_TOLERANCE_MS = 60 * 60_000


def ahead_of_own_clock(occurred_at: int, now_ms: int, skew_ms: int) -> bool:
    """True when ``occurred_at`` is more than the own-clock tolerance (or the skew, if
    larger) after this consumer's clock ``now_ms``."""
    return event_time_in_future(occurred_at, now_ms, max(skew_ms, OWN_CLOCK_TOLERANCE_MS))


def backfill_limit_ms(
    versions: Iterable[TermsVersion], configured_days: int | None, at: int | None = None
) -> int:
    """The configured limit, else the campaign's longest cookie window plus its longest lock.

    Past that age every commission the order could earn would already be approved
    (and may be paid), so accepting it is a correction of closed money, not a report.
    ``at``: the event's time; only the versions in force by then count (see
    ``BackfillLimits``). None: every version, the longest limit the campaign may give.
    """
    if configured_days is not None:
        return configured_days * MS_PER_DAY
    return BackfillLimits.of(versions, None).at(at)


@dataclass(frozen=True, slots=True)
class BackfillLimits:
    """A campaign's backfill limit per event time: the longest window plus the longest
    lock of the versions in force by then (the first version published counts from the
    start, as ``terms_in_force`` applies it before any ``effective_from``).

    A version that lengthens the window or the lock widens the limit for events from
    its start only. Counting it for older events let a late report older than the
    previous limit in, once the version was published: the attribution worker had
    pruned, under the previous horizon, the clicks such an order needs, so it went
    unattributed live and to its creator in a replay, which knows the version from the
    start and keeps them."""

    starts: tuple[int, ...]  # effective_from, ascending
    limits: tuple[int, ...]  # the limit from each start on
    configured: int | None = None
    before: int = 0  # before every start: the first version's

    @classmethod
    def of(cls, versions: Iterable[TermsVersion], configured_days: int | None) -> BackfillLimits:
        ordered = sorted(versions, key=lambda v: (v.effective_from, v.version))
        starts: list[int] = []
        limits: list[int] = []
        window = lock = 0
        if ordered:
            first = min(ordered, key=lambda v: v.version)
            window, lock = first.terms.max_window_ms(), first.terms.lock_ms
        before = window + lock
        # Every version counts from its start, one corrected at that very instant too: it
        # was never in force, but leaving it out narrowed the limit of a log already taken
        # (a replay, the oracle, the what-if) and refused orders the live run had paid.
        for v in ordered:
            window = max(window, v.terms.max_window_ms())
            lock = max(lock, v.terms.lock_ms)
            starts.append(v.effective_from)
            limits.append(window + lock)
        configured = None if configured_days is None else configured_days * MS_PER_DAY
        return cls(tuple(starts), tuple(limits), configured, before)

    def at(self, at_ms: int | None) -> int:
        """The limit for an event at ``at_ms`` (None: the longest, any time)."""
        if self.configured is not None:
            return self.configured
        if not self.limits:
            return 0
        if at_ms is None:
            return self.limits[-1]
        index = bisect_right(self.starts, at_ms) - 1
        return self.limits[index] if index >= 0 else self.before


def event_time_too_old(occurred_at: int, record_ts: int, allowed_ms: int) -> bool:
    """True when ``occurred_at`` is more than ``allowed_ms`` before ``record_ts`` (exactly
    ``allowed_ms`` before is still accepted). ``allowed_ms``: the campaign's backfill
    limit plus the clock skew (``allowed_age_ms``)."""
    return record_ts - occurred_at > allowed_ms


def allowed_age_ms(backfill_limit: int, skew_ms: int) -> int:
    """How far an event time may be before its record's timestamp: the backfill limit the
    orders service measured from its receive time, plus the skew between that time and
    the record's timestamp."""
    return backfill_limit + skew_ms


def too_old_reason(occurred_at: int, record_ts: int, backfill_limit: int, skew_ms: int) -> str:
    """The dead letter's reason for an event time ``event_time_too_old`` refused."""
    return (
        f"{EVENT_TIME_TOO_OLD}: occurred_at {occurred_at} is {record_ts - occurred_at} ms "
        f"before the record's timestamp {record_ts} (allowed: "
        f"{allowed_age_ms(backfill_limit, skew_ms)} ms, the campaign's backfill limit "
        f"{backfill_limit} ms plus the clock skew {skew_ms} ms; older events need an "
        f"explicit backfill)"
    )


def is_backfill(headers: Headers) -> bool:
    """Whether a record's headers mark it an explicit backfill (``BACKFILL_HEADER: 1``)."""
    if not headers:
        return False
    if isinstance(headers, Mapping):
        return headers.get(BACKFILL_HEADER) == b"1"
    return any(name == BACKFILL_HEADER and value == b"1" for name, value in headers)

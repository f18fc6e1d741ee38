"""Where on the event-time axis an incoming order or refund is placed.

Pure: functions of (the merchant's time, the server's receive time, limits, and
the time the merchant signed the request at, by its own clock). Clicks are
stamped by afflux's own clock, so an order reported in real time is moved onto
afflux's clock: by how far the merchant's clock is off ours, as the signature's
timestamp tells it (our receive time less the signing time, never later than
the receive time), else to the receive time itself. A merchant clock a few
minutes slow can then never put an order before the click that led to it, and a
postback minutes late does not move its order past the clicks made after the
purchase (a link clicked on the thank-you page took the sale). The merchant's
time is kept beside it as ``reported_occurred_at``. An older time is a late
report, taken down to the backfill limit and moved by the same offset when the
request is signed (as sent when not); anything older than that needs an
explicit backfill by an operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from afflux.orders.errors import Rejected
from afflux.shared.core.clock import MS_PER_DAY, MS_PER_SECOND, from_ms

BACKFILL_PATH = "POST /v1/admin/backfill/{what}"
# How far ``now - t`` goes for a clock that agrees with ours: the signature's second,
# rounded down, and a second of transit.
AGREEING_MS = 2 * MS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Placement:
    """The event time to produce and, when it replaced the merchant's, the merchant's;
    ``undated``: the merchant gave no time, so the receive time stands for none of its."""

    occurred_at: int
    reported_occurred_at: int | None = None
    undated: bool = False


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """``skew_ms``: how far the merchant's clock may be off ours, either way.
    ``backfill_limit_ms``: the oldest age accepted without an explicit backfill
    (``afflux.shared.core.event_time.backfill_limit_ms``, shared with the attribution
    worker and the batch oracle, which refuse an older event produced straight to a
    topic by the same limit)."""

    skew_ms: int
    backfill_limit_ms: int


def place(
    reported: int,
    now_ms: int,
    limits: TimeLimits,
    *,
    backfill: bool = False,
    what: str = "orders",
    signed_at_ms: int | None = None,
) -> Placement:
    """The placement of an event the merchant dated ``reported``, received at ``now_ms``
    in a request signed at ``signed_at_ms`` by the merchant's clock (None: unsigned).

    - more than the skew in the future: refused;
    - within the skew of now (either way, edges included): placed at
      ``reported + (now_ms - signed_at_ms)``, no later than ``now_ms`` (at ``now_ms``
      when unsigned), nor, when the offset is under ``AGREEING_MS``, than the end of
      ``reported``'s UTC day; the merchant's time kept as reported (a backfill keeps
      its own time, never ahead of now);
    - older: moved the same way when signed by a clock a second or more off ours (the
      merchant's time kept as reported), else its own time; refused when that is older
      than the backfill limit (edge included), unless it is an explicit backfill.

    A late report is moved too: the clock that dated it is off ours by what the
    signature says whenever it is sent, and left at its own time, an order reported a
    minute past the skew jumped by the whole offset (a clock 4 minutes slow put it before
    the click that led to it, a fast one after clicks made after it).
    """
    skew = limits.skew_ms
    if reported < SECONDS_LIKE_BELOW_MS:
        # 1970 as milliseconds is today as seconds: the hint to backfill such an order
        # paid it into a period of 1970 that no statement of now shows.
        raise Rejected(
            422,
            "occurred_at",
            f"{reported} is {iso_ms(reported)} in milliseconds: it reads as seconds since"
            f" the epoch; afflux times are milliseconds ({reported * 1000} for"
            f" {iso_ms(reported * 1000)}) or RFC 3339 with a zone",
        )
    if reported > now_ms + skew:
        raise Rejected(
            422,
            "occurred_at",
            f"more than {skew // MS_PER_SECOND} s in the future (the clock-skew allowance)",
        )
    if backfill:
        # A backfill records what already happened. Dated ahead of now it would be decided
        # under the terms in force then, and a version published meanwhile for a time
        # before it (allowed: it starts after its publication) prices it otherwise in
        # every replay.
        if reported > now_ms:
            raise Rejected(
                422, "occurred_at", "in the future: a backfill records what already happened"
            )
        return Placement(reported)
    at = event_time(reported, now_ms, skew, signed_at_ms)
    if reported >= now_ms - skew:
        return Placement(at, reported)
    # The limit holds for the time produced, as the attribution worker checks it: held
    # to the merchant's, a report from a fast clock at the limit was taken here and
    # dead-lettered there (event_time_too_old), its commission lost.
    if at < now_ms - limits.backfill_limit_ms:
        raise Rejected(
            422,
            "occurred_at",
            f"older than the backfill limit of {_duration(limits.backfill_limit_ms)}"
            f"{'' if at == reported else ' (on our clock: the merchant clock is off ours)'};"
            f" send old {what} through {BACKFILL_PATH.format(what=what)} (admin)",
        )
    return Placement(at, None if at == reported else reported)


# Before 1973-03-03T09:46:40Z in milliseconds, and after it in seconds: no affiliate
# program's order is that old, and every time now in seconds is below it.
SECONDS_LIKE_BELOW_MS = 100_000_000_000


def iso_ms(ms: int) -> str:
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time(reported: int, now_ms: int, skew_ms: int, signed_at_ms: int | None) -> int:
    """Where a merchant's report dated ``reported`` lands on our clock (no backfill, no
    limit checked): see ``place``. Its campaign's backfill limit is the one in force then."""
    late = reported < now_ms - skew_ms
    if signed_at_ms is None:
        return reported if late else now_ms
    offset = now_ms - signed_at_ms
    # The signature's whole seconds cannot tell an offset under a second from a clock
    # that agrees with ours: such a late report keeps its own time.
    if late and abs(offset) < MS_PER_SECOND:
        return reported
    moved = min(now_ms, reported + offset)
    # Moved by less than the signature's rounding and transit can tell from a clock that
    # agrees with ours, a purchase in a day's last second stays in its day: moved past
    # midnight, a right clock's order at 23:59:59.999 on a month's last day counted in the
    # next month. Every period (month, ISO week) starts at midnight UTC. (A clock up to two
    # seconds slow is then placed up to two seconds early across midnight: a click in
    # those seconds would not count, where a checkout takes far longer after its click.)
    if abs(offset) < AGREEING_MS:
        return min(moved, _day_end(reported))
    return moved


def _day_end(at_ms: int) -> int:
    """The last millisecond of ``at_ms``'s UTC day."""
    return at_ms - at_ms % MS_PER_DAY + MS_PER_DAY - 1


def _duration(ms: int) -> str:
    if ms % MS_PER_DAY == 0:
        return f"{ms // MS_PER_DAY} days"
    return f"{ms // MS_PER_SECOND} s"

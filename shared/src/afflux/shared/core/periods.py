"""Commission periods: calendar months ("2026-11") and ISO weeks ("2026-W47"), in UTC."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from afflux.shared.core.clock import from_ms, to_ms
from afflux.shared.core.terms import Period, TermsTimeline, TermsVersion, iso_ms

# ASCII digits only, matched in full: ``\d`` also takes Arabic-Indic or fullwidth digits
# ("٢٠٢٦-١٢" read as 2026-12) and ``$`` matches before a trailing newline ("2026-12\n"),
# so a payout run paid under a period name nobody could look up.
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
# Times are unix milliseconds, so periods start in 1970; a period must also end within
# what a datetime holds (the end of 9999-12 is in year 10000: refused).
_FIRST_YEAR = 1970


class BadPeriod(ValueError):
    pass


def period_of(at_ms: int, period: Period) -> str:
    moment = from_ms(at_ms)
    if period == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


CADENCE_NAMES: dict[Period, str] = {"month": "a month (YYYY-MM)", "week": "an ISO week (YYYY-Www)"}


def cadence_of(name: str) -> Period:
    """The cadence a period name is of: ``week`` for ``YYYY-Www``, else ``month``."""
    return "week" if _WEEK.fullmatch(name) else "month"


def payout_period(asked: str | None, at_ms: int, cadence: Period) -> str:
    """The payout period a campaign paid by ``cadence`` is paid under in a run as of
    ``at_ms``: ``asked`` when it is a period of that cadence, else the campaign's own
    period at ``at_ms`` (a monthly campaign is never paid under a week's name, nor a
    weekly one under a month's)."""
    if asked is not None and cadence_of(asked) == cadence:
        return asked
    return period_of(at_ms, cadence)


def period_bounds(name: str) -> tuple[int, int]:
    """[start, end) of a period name in UTC milliseconds; BadPeriod when malformed."""
    if match := _MONTH.fullmatch(name):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12 or year < _FIRST_YEAR:
            raise BadPeriod(f"{name!r}: no such month")
        try:
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        except ValueError:
            raise BadPeriod(f"{name!r}: ends after year 9999") from None
        return to_ms(start), to_ms(end)
    if match := _WEEK.fullmatch(name):
        year, week = int(match[1]), int(match[2])
        if year < _FIRST_YEAR:
            raise BadPeriod(f"{name!r}: no such ISO week")
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise BadPeriod(f"{name!r}: no such ISO week") from None
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        try:
            end = start + timedelta(days=7)
        except OverflowError:
            raise BadPeriod(f"{name!r}: ends after year 9999") from None
        return to_ms(start), to_ms(end)
    raise BadPeriod(f"{name!r}: use YYYY-MM for a month or YYYY-Www for an ISO week")


def period_end(name: str) -> int:
    return period_bounds(name)[1]


def day_of(at_ms: int) -> str:
    """The UTC day of an event time, ``YYYY-MM-DD``."""
    return _day_name(at_ms // 86_400_000)


@lru_cache(maxsize=4096)
def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y-%m-%d")


def is_period_of(versions: Sequence[TermsVersion], name: str) -> bool:
    """Whether ``name`` is a period some version of a campaign's terms cuts its time into
    (a week of a campaign paid by the month never holds anything); BadPeriod when
    ``name`` is no period at all."""
    period_bounds(name)
    return any(v.terms.plan.period == cadence_of(name) for v in versions)


def _starts_a_period(at_ms: int, cadence: Period) -> bool:
    try:
        return period_bounds(period_of(at_ms, cadence))[0] == at_ms
    except BadPeriod:  # before 1970 or past 9999: no period of afflux starts there
        return False


def _cadence_switches(versions: Sequence[TermsVersion]) -> set[tuple[int, Period, Period]]:
    """Where the plan's period changes between the versions in force (``TermsTimeline``:
    the first published before every start) at an instant that does not begin a period
    of both cadences."""
    if not versions:
        return set()
    timeline = TermsTimeline.of(versions)
    switches = set()
    previous = timeline.first.terms.plan.period
    for start, winner in zip(timeline.starts, timeline.winners, strict=True):
        cadence = winner.terms.plan.period
        if cadence != previous and not (
            _starts_a_period(start, "month") and _starts_a_period(start, "week")
        ):
            switches.add((start, previous, cadence))
        previous = cadence
    return switches


def cadence_change(versions: Sequence[TermsVersion], planned: Sequence[TermsVersion]) -> str | None:
    """Why the versions ``planned`` (``versions`` and the new one) may not be published: a
    version that changes the plan's ``period`` (month, week) at an instant inside a period
    of either cadence. Events before it fall in the old cadence's period and events after
    in the new one's, which began before the change: the two periods overlap, each with
    its own cap, base fee and milestones (a creator capped at 10.00 a month earned 20.00
    over four days). A change at an instant that begins both (a Monday that is the first
    of a month, 00:00 UTC) leaves no overlap."""
    new = _cadence_switches(planned) - _cadence_switches(versions)
    if not new:
        return None
    start, before, after = min(new)
    return (
        f"the plan's period changes from {before} to {after} at {iso_ms(start)}, inside a"
        f" {'month' if not _starts_a_period(start, 'month') else 'week'}: periods of the two"
        " cadences would overlap, each with its own caps, tiers, milestones and base fee"
        " (change it at 00:00 UTC of a Monday that is the first of a month, or start a"
        " new campaign)"
    )

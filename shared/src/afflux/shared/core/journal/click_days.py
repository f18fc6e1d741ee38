"""Per-click pay by UTC day (DESIGN §4, caps in event-time order).

A creator's valid unique clicks of a period are paid one line per UTC day, dated at
the end of that day: a line then grows only with clicks made before its date, so the
caps, which pay a scope's lines in (time, line id) order, never give a line's later
clicks the room of a line dated between them. One line for the whole period, dated
at its first click, did: clicks made on the 20th took the campaign budget from
another creator's sale of the 10th, already approved and paid.

The paid-click cap is taken by the days in order: a day pays its clicks while the
cap has room left by the days before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from afflux.shared.core.clock import MS_PER_DAY


@dataclass(frozen=True, slots=True)
class ClickDay:
    """One UTC day of a creator's valid unique clicks in a period."""

    day_start: int  # ms, 00:00 UTC of the day
    clicks: int  # valid unique clicks that day
    paid: int  # of them, paid: the paid-click cap taken by the days in order
    paid_before: int  # clicks paid on the period's earlier days

    @property
    def line_time(self) -> int:
        """The line's date: the day's last millisecond, after every click it pays."""
        return self.day_start + MS_PER_DAY - 1


def day_start(at_ms: int) -> int:
    return at_ms - at_ms % MS_PER_DAY


def click_days(
    per_day: Iterable[tuple[int, int]], unique_clicks: int, first_at: int, cap: int | None
) -> list[ClickDay]:
    """The days with valid clicks, in order, each with what it pays. ``per_day``: (day
    start, valid unique clicks that day). Clicks counted before the ledger kept them per
    day (``unique_clicks`` above the days' sum) are taken as made on ``first_at``'s day."""
    counts: dict[int, int] = {}
    for day, n in per_day:
        counts[day] = counts.get(day, 0) + n
    missing = unique_clicks - sum(counts.values())
    if missing > 0:
        first_day = day_start(first_at)
        counts[first_day] = counts.get(first_day, 0) + missing
    out: list[ClickDay] = []
    paid_so_far = 0
    for day in sorted(counts):
        n = counts[day]
        if n <= 0:
            continue
        paid = n if cap is None else max(0, min(n, cap - paid_so_far))
        out.append(ClickDay(day, n, paid, paid_so_far))
        paid_so_far += paid
    return out


def click_day_rule(date: str, day: ClickDay, per_click: int, cap: int | None) -> str:
    """A day line's explanation, in words that stay true for as long as its pay does (a
    posting is written only when the pay changes, and creators read the postings). Once
    the paid-click cap is used up it names only what is paid: naming the day's count as
    well ("5 of 5") went stale at the next click ("5 of 8"), which changes no posting."""
    if cap is None:
        return f"clicks of {date}: {day.paid} of {day.clicks} valid unique clicks at {per_click}"
    if day.paid_before + day.paid >= cap:
        return (
            f"clicks of {date}: {day.paid} valid unique clicks paid at {per_click}"
            f" (paid-click cap {cap} reached, {day.paid_before} paid on earlier days)"
        )
    # Under the cap the earlier days' count is left out too: a late click on an earlier
    # day changed it without changing this day's pay, so no posting, and the words read
    # "0 on earlier days" beside the earlier day's line paying one.
    return f"clicks of {date}: {day.paid} of {day.clicks} valid unique clicks at {per_click}" + (
        f" (paid-click cap {cap})"
    )

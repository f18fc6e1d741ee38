"""Per-day series on a real time axis (pure).

The ledger counts per day only where something happened, so ``buckets`` is sparse.
A chart drawn from it alone would join two distant days with a straight line, as if
a trend ran between them. ``daily`` lays the buckets on every day from the first to
the last (the chosen period's bounds when given, stretched to any bucket outside them:
a clawback of a period's sale falls on its refund's day, after the period; never past
``until``), a day without a bucket counting zero: that is what happened on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MS_PER_DAY = 86_400_000
FIELDS = ("clicks", "conversions", "commission_minor")


@dataclass(frozen=True, slots=True)
class Daily:
    starts: tuple[int, ...]  # each day's start, epoch ms (UTC)
    values: Mapping[str, tuple[int, ...]]  # field -> one value per day


def daily(
    buckets: Sequence[Mapping[str, Any]],
    *,
    start: int | None = None,
    end: int | None = None,
    until: int | None = None,
) -> Daily:
    """Every day from ``start`` to before ``end``, and from the first bucket's day to the
    last's (so the points add up to the buckets), capped at ``until``'s day; zero where
    no bucket."""
    by_day = {int(b["start"]): b for b in buckets}
    if start is None and end is None and not by_day:
        return Daily((), dict.fromkeys(FIELDS, ()))
    first = min([start if start is not None else min(by_day, default=0), *by_day])
    last = end - MS_PER_DAY if end is not None else max(by_day, default=first)
    last = max([last, *by_day])
    if until is not None:
        last = min(last, until - until % MS_PER_DAY)
    first -= first % MS_PER_DAY
    days = tuple(range(first, last + 1, MS_PER_DAY)) if last >= first else ()
    values = {f: tuple(int(by_day[d][f]) if d in by_day else 0 for d in days) for f in FIELDS}
    return Daily(days, values)

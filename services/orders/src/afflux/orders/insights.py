"""What a brand learns beyond its conversions, per campaign and UTC day of the order:
unattributed orders by reason, orders a late click re-decided, and other creators'
eligible clicks on attributed orders (assists), with those that would have won.

The order-outcome index (afflux.orders.outcome_index) sees every event these come
from. ``marks`` (pure) names, per event, the set an order joins:

- ``u:<reason>``: an ``OrderUnattributed`` order, by its reason;
- ``late:reattributed`` / ``late:attributed``: a conversion that a late click caused
  (``correction_reason: late_click``), replacing another creator's or the order's
  unattributed answer;
- ``a:<affiliate>``: an attributed order on which ``affiliate`` had an eligible click
  that did not win (an assist); ``w:<affiliate>``: such an order where that click was
  the order's first eligible click, so first-click attribution would have chosen it
  ("would have won"); ``assisters`` lists the affiliates with assists that day.

Members are order ids, so a redelivered or re-decided event counts an order once per
set. Each set is one Redis key (``SADD``; single-key, so it holds on a Redis Cluster)
that expires with the index's retention.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import get_args

from redis.asyncio import Redis

from afflux.shared.core.periods import day_of
from afflux.shared.events import (
    ConversionAttributed,
    Envelope,
    OrderUnattributed,
    UnattributedReason,
)

REASONS: tuple[str, ...] = get_args(UnattributedReason)
LATE = ("reattributed", "attributed")
MS_PER_DAY = 86_400_000

Mark = tuple[str, str, str, str]  # campaign, day, set name, member


def marks(event: Envelope) -> list[Mark]:
    """The sets ``event`` puts its order in (none for other events)."""
    if isinstance(event, OrderUnattributed):
        day = day_of(event.occurred_at)
        return [(event.campaign_id, day, f"u:{event.reason}", event.order_id)]
    if not isinstance(event, ConversionAttributed):
        return []
    c, day, order = event.campaign_id, day_of(event.occurred_at), event.order_id
    out: list[Mark] = []
    if event.correction_reason == "late_click":
        out.append((c, day, f"late:{'reattributed' if event.supersedes else 'attributed'}", order))
    others = [a for a in event.assists if a.affiliate_id != event.affiliate_id]
    first = min(
        [a.clicked_at for a in event.assists]
        + ([event.clicked_at] if event.clicked_at is not None else []),
        default=None,
    )
    for assist in others:
        out.append((c, day, f"a:{assist.affiliate_id}", order))
        out.append((c, day, "assisters", assist.affiliate_id))
        if assist.clicked_at == first and (
            event.clicked_at is None or assist.clicked_at < event.clicked_at
        ):
            out.append((c, day, f"w:{assist.affiliate_id}", order))
    return out


@dataclass
class Insights:
    """A campaign's counts over some days."""

    unattributed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    late: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LATE, 0))
    assists: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    would_have_won: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def days_between(start: int, end: int) -> list[str]:
    """Every UTC day in [start, end)."""
    return [day_of(t) for t in range(start - start % MS_PER_DAY, end, MS_PER_DAY)]


class InsightStore:
    """The sets in Redis, beside the order-outcome index's hashes."""

    def __init__(self, redis: Redis[bytes], prefix: str, retention_ms: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_ms = retention_ms

    def key(self, campaign: str, day: str, name: str) -> str:
        # The campaign's length first, so no two (campaign, day) pairs share a key.
        return f"{self.prefix}:insights:{len(campaign)}:{campaign}:{day}:{name}"

    async def add(self, events: Iterable[Envelope]) -> None:
        found = [m for e in events for m in marks(e)]
        if not found:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for campaign, day, name, member in found:
                key = self.key(campaign, day, name)
                pipe.sadd(key, member)
                pipe.pexpire(key, self.retention_ms)
            await pipe.execute()

    async def counts(self, campaign: str, days: Sequence[str]) -> Insights:
        """The campaign's counts over ``days``: O(days x (reasons + creators with assists))."""
        out = Insights()
        fixed = [f"u:{r}" for r in REASONS] + [f"late:{x}" for x in LATE]
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                for name in fixed:
                    pipe.scard(self.key(campaign, day, name))
                pipe.smembers(self.key(campaign, day, "assisters"))
            answers = await pipe.execute()
        per_day = len(fixed) + 1
        assisters: list[tuple[str, str]] = []
        for n, day in enumerate(days):
            row = answers[n * per_day : (n + 1) * per_day]
            for name, value in zip(fixed, row[:-1], strict=True):
                kind, _, what = name.partition(":")
                (out.unattributed if kind == "u" else out.late)[what] += int(value)
            assisters += [(day, a.decode()) for a in row[-1]]
        if assisters:
            async with self.redis.pipeline(transaction=False) as pipe:
                for day, affiliate in assisters:
                    pipe.scard(self.key(campaign, day, f"a:{affiliate}"))
                    pipe.scard(self.key(campaign, day, f"w:{affiliate}"))
                sizes = await pipe.execute()
            for i, (_, affiliate) in enumerate(assisters):
                out.assists[affiliate] += int(sizes[2 * i])
                out.would_have_won[affiliate] += int(sizes[2 * i + 1])
        return out

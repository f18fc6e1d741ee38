"""Done marks of acknowledged orders that Redis did not take, retried until it does.

After the broker acknowledged a batch of orders their claims are marked done, off the
answer's path (the 202 depends on the acknowledgement only). When Redis is away at that
moment the marks are kept here and retried with a short backoff (Redis restarted on its
append-only file answers again after about 0.1 s) until Redis takes them, so no claim of
an acknowledged order stays pending until it expires and then reads as an unknown order
to the order's lead confirmation or survey answer. Every mark, the first and a retried
one alike, writes a claim Redis lost anew, and a renewal's number key
(``ClaimStore.mark_done``).

A lead confirmation or survey answer that finds the claim of an order whose mark waits
here gone or expired pending (Redis killed with ``-9`` may come back without it) retries
the mark at once instead of answering 404.

Bounds: at most ``max_undone`` marks wait (a mark beyond that is given up), and those
still waiting when the process stops are given up too. A confirmation or survey answer
for such an order finds it in the order-outcome index instead (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from afflux.orders.claims import ClaimStore, NewOrder
from afflux.shared.io.background import cancel_and_wait

log = logging.getLogger(__name__)

BACKOFF_S = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
MAX_UNDONE = 100_000
MARKS_PER_CALL = 500


class MarkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.marks = Counter(
            "afflux_order_claim_marks_total",
            "Done marks of acknowledged orders' claims that Redis did not take at once, by "
            "outcome (deferred: kept for retry; retried: taken on a retry; given_up: "
            "dropped, the retry queue full or the process stopping)",
            ["outcome"],
            registry=registry,
        )
        self.deferred = self.marks.labels("deferred")
        self.retried = self.marks.labels("retried")
        self.given_up = self.marks.labels("given_up")


class DoneMarks:
    """Marks claims done; keeps the marks Redis refused and retries them in one task."""

    def __init__(
        self,
        claims: ClaimStore,
        metrics: MarkMetrics,
        *,
        max_undone: int = MAX_UNDONE,
        backoff_s: Sequence[float] = BACKOFF_S,
    ) -> None:
        self.claims = claims
        self.metrics = metrics
        self.max_undone = max_undone
        self.backoff_s = tuple(backoff_s)
        # By claim key: an order deferred twice is marked once.
        self._undone: dict[tuple[str, str], NewOrder] = {}
        self._retrying: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def undone(self) -> int:
        return len(self._undone)

    async def retry_now(self, campaign_id: str, order_id: str) -> bool:
        """Whether the order's done mark was waiting for Redis (so it was acknowledged);
        it is then retried at once (raises if Redis refuses again)."""
        order = self._undone.get((campaign_id, order_id))
        if order is None:
            return False
        await self.claims.mark_done([order])
        self._marked([order])
        return True

    def _marked(self, orders: Sequence[NewOrder]) -> None:
        # Popped here only: a mark retried by a request and the retry task at once counts once.
        taken = [self._undone.pop((o.campaign_id, o.order_id), None) for o in orders]
        self.metrics.retried.inc(sum(order is not None for order in taken))

    async def mark(self, orders: Sequence[NewOrder]) -> None:
        """Mark acknowledged orders' claims done; if Redis refuses, retry them later."""
        try:
            await self.claims.mark_done(orders)
        except Exception as exc:
            log.warning("order claims not marked done (%r); retrying until Redis answers", exc)
            self.defer(orders)

    def defer(self, orders: Sequence[NewOrder]) -> None:
        for order in orders:
            key = (order.campaign_id, order.order_id)
            if self._closed or (key not in self._undone and len(self._undone) >= self.max_undone):
                self.metrics.given_up.inc()
                log.error("done mark of order %s/%s given up: retry queue full or stopped", *key)
                continue
            self._undone[key] = order
            self.metrics.deferred.inc()
        if self._undone and (self._retrying is None or self._retrying.done()):
            self._retrying = asyncio.get_running_loop().create_task(
                self._retry(), name="order-claim-marks"
            )

    async def _retry(self) -> None:
        failures = 0
        while self._undone:
            batch = list(itertools.islice(self._undone.values(), MARKS_PER_CALL))
            try:
                await self.claims.mark_done(batch)
            except Exception:
                await asyncio.sleep(self.backoff_s[min(failures, len(self.backoff_s) - 1)])
                failures += 1
                continue
            failures = 0
            self._marked(batch)
            log.info("%d order claims marked done on a retry", len(batch))

    async def close(self) -> None:
        """Stop retrying; what still waits, or comes later, is given up (the outcome
        index covers it)."""
        self._closed = True
        if self._retrying is not None:
            await cancel_and_wait([self._retrying])
        if self._undone:
            log.error("%d done marks of order claims given up at shutdown", len(self._undone))
            self.metrics.given_up.inc(len(self._undone))
            self._undone.clear()

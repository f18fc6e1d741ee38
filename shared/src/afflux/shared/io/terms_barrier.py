"""Deciding an order only once the campaign view holds every terms version published
before it.

The worker decides an order under the terms in force at its event time, and an order
that names a known click or a creator's code is decided at once. Its campaign view
follows the ``campaigns`` topic on its own, a fetch behind: a version published just
before the order (a coupon given to another creator from now on) was not read yet, and
the order went to the old version's creator for good (6 of 20 orders sent right after
a new version, on the embedded broker), while the oracle, reading event times alone,
gave it to the new one.

So before a batch holding orders is applied, the barrier asks the broker for the
``campaigns`` partitions' end offsets (ListOffsets: one round trip) and waits until the
view has applied everything before them. The view notes what it applied only once a
whole fetch answer is applied, so always at a batch's end: the embedded broker answers
ListOffsets with the last batch's first offset + 1 when a batch holds several records,
and a view that has applied past that has applied the whole batch. When no version
came meanwhile (nearly always), the view already holds them: one round trip and no
wait. An ask started after a batch's records were fetched covers them: a batch shares
an ask only with batches fetched before it started, so under load it is one round trip
per batch.

Bounded as ``TermsRecheck`` is: a wait for the view ends after ``wait_s``, and such
waiting never takes more than a share of the time (a view that does not follow slows
the worker by at most that much). A batch whose wait was cut so decides no order at
once: its orders wait for their grace, by when the view has caught up (under load the
share ran out within 20 versions published in 4 s, and the last orders of that run went
to the old version's creator for good). The ask is not counted (a loaded machine slows every
round trip, and counting them skipped the barrier under load: one order in 20 went to
the old creator in a CI run); it is bounded by ``ASK_TIMEOUT_S`` on its own. One that
fails is logged and the batch decides no order at once either: a broker that does not
answer ListOffsets may be the very reason the view lags (a stalled fetch of
``campaigns``), so a failed ask vouches for nothing. Read-backs of records the consumer
skipped pass the barrier too (``Stage._process_batch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import stop_consumer, topic_partitions
from afflux.shared.io.terms_recheck import WAIT_S, WaitShare
from afflux.shared.topics import CAMPAIGNS

log = logging.getLogger(__name__)
ASK_TIMEOUT_S = 2.0


class TermsBarrier:
    def __init__(
        self,
        directory: CampaignDirectory,
        bootstrap: str,
        wait_s: float = WAIT_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.bootstrap = bootstrap
        self.wait_s = wait_s
        self.monotonic = monotonic
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._asked: tuple[float, asyncio.Task[dict[int, int]]] | None = None
        self.share = WaitShare(monotonic)

    async def passed(self, since: float) -> bool:
        """Wait until the view holds every campaigns record the broker held at some time
        after ``since`` (monotonic); False when that could not be made sure of (the ask
        failed, or the view lags and could not be waited for: past the share, or the wait
        ran out): the worker then decides nothing at once."""
        asked = self._asked
        if asked is None or asked[0] < since or (asked[1].done() and asked[1].exception()):
            asked = (self.monotonic(), asyncio.ensure_future(self._ends()))
            self._asked = asked
        try:
            ends = await asyncio.shield(asked[1])
        except Exception as exc:  # the broker away: nothing known of the view
            log.warning("campaign terms end offsets not known (%s): no order at once", exc)
            return False
        if self.directory.holds(ends):
            return True
        # Only waiting for the view counts toward the share: the ask is one round trip,
        # however slow a loaded machine makes it, and bounded on its own.
        if self.share.over():
            return False
        started = self.monotonic()
        try:
            return await self.directory.applied_through(ends, self.wait_s)
        finally:
            self.share.waited(started, self.monotonic())

    async def close(self) -> None:
        if self._asked is not None:
            self._asked[1].cancel()
            with contextlib.suppress(BaseException):
                await self._asked[1]
        if self._consumer is not None:
            await stop_consumer(self._consumer)
            self._consumer = None

    async def _ends(self) -> dict[int, int]:
        """The ``campaigns`` partitions' end offsets, within ``ASK_TIMEOUT_S`` in all."""
        return await asyncio.wait_for(self._ask(), ASK_TIMEOUT_S)

    async def _ask(self) -> dict[int, int]:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
            try:
                await consumer.start()
            except BaseException:
                with contextlib.suppress(Exception):  # half started: its client closed
                    await stop_consumer(consumer)
                raise
            self._consumer = consumer
        if not self._partitions:
            self._partitions = await topic_partitions(
                self._consumer, CAMPAIGNS.name, timeout_s=ASK_TIMEOUT_S / 2
            )
            if not self._partitions:
                raise LookupError(f"no partitions of {CAMPAIGNS.name} known yet")
        found = await self._consumer.end_offsets(self._partitions)
        return {tp.partition: int(offset) for tp, offset in found.items()}

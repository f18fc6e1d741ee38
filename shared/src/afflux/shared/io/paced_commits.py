"""Group offsets committed at most once an interval, and only for partitions that moved.

For consumers whose writes are idempotent (a redelivered record writes what it wrote
before), committing after every poll buys nothing but broker work: on the embedded
broker's durable storage each committed partition is an object written to the object
store, and a consumer that committed all its partitions after each small poll cost
the store more writes than the orders themselves. Committing what moved, once a
second, bounds a restart's redelivery to about a second of records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0
FLUSH_TIMEOUT_S = 3.0  # a broker that does not answer must not hold a stop long


class OffsetPacer:
    """The next offsets to commit per partition, and whether the interval has passed.

    No I/O: ``PacedCommits`` asks it what to commit."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.pending: dict[TopicPartition, int] = {}
        self.last_commit = clock()

    def stored(self, offsets: Mapping[TopicPartition, int]) -> None:
        """``offsets``: per partition, the offset after its last record now stored."""
        for tp, offset in offsets.items():
            if offset > self.pending.get(tp, -1):
                self.pending[tp] = offset

    def due(self) -> bool:
        return bool(self.pending) and self.clock() - self.last_commit >= self.interval_s

    def take(self, assigned: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """What to commit now: the pending offsets of the partitions still assigned (a
        partition moved to another member is read again from its last commit there,
        which an idempotent consumer allows); the rest is dropped."""
        owned = set(assigned)
        offsets = {tp: o for tp, o in self.pending.items() if tp in owned}
        self.pending.clear()
        self.last_commit = self.clock()
        return offsets

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget what is pending for ``partitions``: they were revoked, or their owner
        moved back to an earlier offset (its store was cleared and replays)."""
        for tp in partitions:
            self.pending.pop(tp, None)

    def put_back(self, offsets: Mapping[TopicPartition, int]) -> None:
        """A commit that failed: its offsets wait for the next one."""
        self.stored(offsets)


class PacedCommits:
    """Commits ``consumer``'s stored offsets through an ``OffsetPacer``."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        interval_s: float = COMMIT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.pacer = OffsetPacer(interval_s, clock)

    async def stored(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Note what is stored (after each poll, an empty one too: ``{}``); commit what
        is pending if the interval has passed."""
        self.pacer.stored(offsets)
        if self.pacer.due():
            await self.flush()

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        self.pacer.drop(partitions)

    async def flush(self) -> None:
        """Commit every pending offset now (at stop). A failure (a rebalance, the broker
        away) keeps them for the next commit and is logged, never raised: the records
        are stored, and a redelivery writes the same."""
        if not self.pacer.pending:
            return
        offsets = self.pacer.take(self.consumer.assignment())
        if not offsets:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), FLUSH_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            self.pacer.put_back(offsets)
            log.warning("committing offsets failed (%r); the next commit has them", exc)

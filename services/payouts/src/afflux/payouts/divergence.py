"""Does the log still hold what the ledger applied? Stored offsets checked against the log.

The ledger resumes from the offsets it stored in Redis. When the log under them
is gone (a broker on memory storage restarted, a topic deleted and created
again), those offsets point past the end of the new log, or into records the
ledger never saw: consuming on would silently skip records. So, per partition:

- the stored offset must not be beyond the log end (the high watermark of a
  Fetch response; ListOffsets "latest" is wrong on the embedded broker);
- the record the ledger applied last must still be there: its fingerprint
  (offset, timestamp, hash of key and value), stored in the same ``MULTI/EXEC``
  as the offset, must match the record now at that offset. This catches a log
  recreated and grown past the stored offset again.

``judge`` is the pure decision; ``LogProbe`` reads what it needs from the
broker with a consumer of its own (no group), never moving the ledger's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from afflux.shared.io.kafka import stop_consumer

log = logging.getLogger(__name__)
RECOVERY = "afflux ledger rebuild"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The last record the ledger applied from a partition."""

    offset: int
    timestamp: int
    digest: str  # sha256 of the key's length, the key and the value, first 16 bytes in hex

    def encode(self) -> str:
        return f"{self.offset}:{self.timestamp}:{self.digest}"

    @classmethod
    def parse(cls, raw: str) -> Fingerprint:
        offset, timestamp, digest = raw.split(":")
        return cls(int(offset), int(timestamp), digest)

    @classmethod
    def of(cls, offset: int, timestamp: int, key: bytes | None, value: bytes | None) -> Fingerprint:
        h = hashlib.sha256()
        h.update(b"-" if key is None else str(len(key)).encode() + b":" + key)
        h.update(b"|")
        h.update(b"-" if value is None else value)
        return cls(offset, timestamp, h.hexdigest()[:32])

    @classmethod
    def of_record(cls, record: ConsumerRecord[bytes, bytes]) -> Fingerprint:
        return cls.of(record.offset, record.timestamp, record.key, record.value)


@dataclass(frozen=True, slots=True)
class Divergence:
    """A partition whose log no longer holds what the ledger applied."""

    topic: str
    partition: int
    stored_offset: int
    log_end: int
    reason: str

    def message(self) -> str:
        return (
            f"ledger diverged from {self.topic}[{self.partition}]: stored offset "
            f"{self.stored_offset}, log end {self.log_end}: {self.reason}; this partition is "
            f"no longer consumed (nothing is skipped); recover with `{RECOVERY}`"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "stored_offset": self.stored_offset,
            "log_end": self.log_end,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Look:
    """What the log holds: its end (Fetch high watermark) and the first record at or after
    the offset looked at (None: none there, or nothing was asked)."""

    log_end: int
    record: Fingerprint | None
    # With no record at or after the offset looked at: where the log now starts (the
    # probe's position once reset to the earliest offset); None when not known.
    start: int | None = None


def judge(stored_offset: int | None, last: Fingerprint | None, look: Look) -> str | None:
    """Why the log no longer holds what the ledger applied, or None when it does.

    ``stored_offset`` is the next offset the ledger would read (None: nothing stored),
    ``last`` the fingerprint of the last record it applied, ``look`` the log as read at
    ``last.offset``."""
    if stored_offset is None:
        return None
    if stored_offset > look.log_end:
        return "the stored offset is beyond the end of the log (the log was lost or recreated)"
    if last is None:
        return None
    record = look.record
    if record is None:
        if look.start is not None and look.start > last.offset:
            # Retention (or DeleteRecords) emptied the log past what the ledger applied.
            if look.start > stored_offset:
                return f"the log now starts at offset {look.start}, after the stored offset"
            return None  # only applied records went: nothing unread is missing
        return f"no record at offset {last.offset}, which the ledger applied"
    if record.offset == last.offset:
        if record != last:
            return (
                f"the record at offset {last.offset} is not the one the ledger applied "
                "(the log was recreated)"
            )
        return None
    if record.offset > stored_offset:
        # The log now starts after records the ledger never read: they are gone.
        return f"the log now starts at offset {record.offset}, after the stored offset"
    return None  # the applied record was deleted by retention; nothing unread is missing


class LogProbe:
    """Reads a partition's log end and one record, on a consumer of its own."""

    def __init__(self, bootstrap: str, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=1024 * 1024,
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await stop_consumer(self.consumer)

    async def look(self, wanted: Mapping[TopicPartition, int | None]) -> dict[TopicPartition, Look]:
        """Per partition, the log end and (when an offset is given) the first record at or
        after it. Partitions the broker did not answer for within the timeout are left out."""
        if not wanted:
            return {}
        probe = self.consumer
        probe.assign(list(wanted))
        for tp, at in wanted.items():
            if at is None:
                await probe.seek_to_beginning(tp)
            else:
                probe.seek(tp, at)
        found: dict[TopicPartition, Fingerprint] = {}
        looks: dict[TopicPartition, Look] = {}
        deadline = time.monotonic() + self.timeout_s
        while len(looks) < len(wanted) and time.monotonic() < deadline:
            pending = [tp for tp in wanted if tp not in looks]
            try:
                polled = await probe.getmany(*pending, timeout_ms=100, max_records=len(pending))
            except KafkaError as exc:  # the broker is away: what is unanswered is checked later
                log.warning("log check: %r", exc)
                break
            for tp, records in polled.items():
                if records and tp not in found:
                    found[tp] = Fingerprint.of_record(records[0])
            for tp in pending:
                end = probe.highwater(tp)
                at = wanted[tp]
                if end is None:
                    continue
                if at is None or tp in found or end <= at:
                    looks[tp] = Look(end, found.get(tp) if at is not None else None)
                    continue
                # The offset is gone and the log empty from its new start to its end (the
                # fetch was reset to the earliest offset): no record will come. Without
                # this the check waited for one for ever, the ledger healthy meanwhile.
                start = await probe.position(tp)
                if start >= end and start > at:
                    looks[tp] = Look(end, None, start)
            await asyncio.sleep(0)
        probe.unsubscribe()
        return looks

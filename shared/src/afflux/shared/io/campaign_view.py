"""A process-local view of every campaign's terms, kept current from the ``campaigns`` topic.

Reads all partitions from the beginning without a consumer group (every
process needs every campaign; ``afflux.shared.io.whole_topic``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka.structs import ConsumerRecord

from afflux.shared.core.terms import TermsVersion, history_conflict, terms_in_force
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.whole_topic import follow_whole_topic
from afflux.shared.topics import CAMPAIGNS
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

log = logging.getLogger(__name__)

Listener = Callable[[CampaignTermsPublished], None]
# The record, the reason and the class of the exception that refused it.
BadRecord = Callable[[ConsumerRecord[bytes, bytes], str, str], Awaitable[None]]


class UnknownCampaign(LookupError):
    pass


class _Waiters:
    """Who waits for a condition on the view, woken when a change makes it hold."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def wake(self) -> None:
        still = []
        for met, waiter in self._waiting:
            if waiter.done():
                continue
            if met():
                waiter.set_result(None)
            else:
                still.append((met, waiter))
        self._waiting = still

    async def until(self, met: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until ``met()``; False when it did not."""
        if met():
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((met, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except TimeoutError:
            return False
        finally:
            if not waiter.done():
                waiter.cancel()
        return True


class CampaignDirectory:
    """campaign_id -> versions; ``apply`` is pure bookkeeping, ``run`` feeds it from Kafka."""

    def __init__(self) -> None:
        self._versions: dict[str, tuple[TermsVersion, ...]] = {}
        self._listeners: list[Listener] = []
        self.ready = asyncio.Event()
        # Wall-clock ms as of which every campaigns record on the broker has been applied
        # (0: not known yet), and who waits for it to pass a time.
        self.synced_at_ms = 0
        # Partition -> the offset after the last record applied, noted once a whole
        # fetch answer is applied (so always at a batch's end).
        self.applied: dict[int, int] = {}
        self._waiters = _Waiters()  # who waits for either to pass a point

    def note_applied(self, positions: dict[int, int]) -> None:
        """Every record before ``positions`` (partition -> offset) has been applied."""
        for partition, offset in positions.items():
            self.applied[partition] = max(self.applied.get(partition, 0), offset)
        self._waiters.wake()

    def holds(self, ends: dict[int, int]) -> bool:
        """Whether every record before ``ends`` (partition -> offset) has been applied."""
        return all(self.applied.get(p, 0) >= end for p, end in ends.items())

    async def applied_through(self, ends: dict[int, int], timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until every record before ``ends`` is applied."""
        return await self._waiters.until(lambda: self.holds(ends), timeout_s)

    def mark_synced(self, at_ms: int) -> None:
        """Every campaigns record the broker held at ``at_ms`` has been applied."""
        self.synced_at_ms = max(self.synced_at_ms, at_ms)
        self._waiters.wake()

    def may_lag(self, record_ms: int, now_ms: int, margin_ms: int) -> bool:
        """Whether a record stamped ``record_ms`` may name terms published before it that
        this view has not read yet: the view has not been in sync since ``margin_ms``
        (the producers' clock skew) after the record's time. A record stamped more than
        the margin after ``now_ms`` was not written by our services and never waits."""
        return record_ms <= now_ms + margin_ms and self.synced_at_ms < record_ms + margin_ms

    async def synced_past(self, at_ms: int, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until the view is in sync as of ``at_ms``."""
        return await self._waiters.until(lambda: self.synced_at_ms >= at_ms, timeout_s)

    def apply(self, published: CampaignTermsPublished) -> None:
        """Take the record's history when it follows the one held (``takes_over``);
        UndecodableRecord ``HistoryRewrite`` when it changes a version already held."""
        current = self._versions.get(published.campaign_id, ())
        conflict = history_conflict(current, published.versions)
        if conflict is not None:
            raise UndecodableRecord(
                f"{conflict} (campaign {published.campaign_id!r}; the version held stays)",
                "HistoryRewrite",
            )
        # Records carry the full history; never let an older record shrink it.
        if len(published.versions) >= len(current):
            self._versions[published.campaign_id] = published.versions
            for listener in self._listeners:
                listener(published)

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def campaign_ids(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, campaign_id: str) -> tuple[TermsVersion, ...]:
        try:
            return self._versions[campaign_id]
        except KeyError:
            raise UnknownCampaign(campaign_id) from None

    def latest(self, campaign_id: str) -> TermsVersion:
        return max(self.versions(campaign_id), key=lambda v: v.version)

    def at(self, campaign_id: str, at_ms: int) -> TermsVersion:
        """The campaign's terms in force at event time ``at_ms`` (``terms_in_force``)."""
        return terms_in_force(self.versions(campaign_id), at_ms)

    def __contains__(self, campaign_id: object) -> bool:
        return campaign_id in self._versions


async def follow_campaigns(
    directory: CampaignDirectory, bootstrap: str, *, on_bad_record: BadRecord | None = None
) -> None:
    """Feed ``directory`` from the campaigns topic until cancelled.

    A bad record, or a bad item of a packed record, is skipped whatever fails on it
    (decoding, validation, a listener); ``on_bad_record`` (given by the one service
    that dead-letters campaign records, so they are not reported four times) hears of it.
    """

    async def on_record(record: ConsumerRecord[bytes, bytes]) -> None:
        for reason, error_class in apply_record(directory, record.value, record.key):
            log.warning("bad campaigns record at %s: %s", record.offset, reason)
            if on_bad_record is not None:
                await on_bad_record(record, reason, error_class)

    # A fetch finding nothing new is answered after 500 ms, which is how far the view's
    # catch-up time (``mark_synced``) trails the clock and so about how long an event
    # naming terms this process has not read waits (rare: terms just published). A new
    # record is answered at once. At 100 ms the four services' views were a third of an
    # idle stack's CPU (the broker's most of all): 31 % of a core against 22 % at 500 ms.
    await follow_whole_topic(
        CAMPAIGNS.name,
        bootstrap,
        on_record,
        directory.ready,
        directory.mark_synced,
        fetch_max_wait_ms=500,
        on_fetched=directory.note_applied,
    )


def apply_record(
    directory: CampaignDirectory, value: bytes | None, key: bytes | None = None
) -> list[tuple[str, str]]:
    """Apply every good item of one record; the reason and exception class of each bad one.

    With ``key`` (the record's), an item of another campaign than the key names is bad:
    the topic is compacted by key, so such a record would in time take the place of the
    keyed campaign's own terms, and every reader starting after that would lose them."""
    try:
        parsed = parse_value(value)
    except UndecodableRecord as exc:
        return [(str(exc), exc.error_class)]
    bad: list[tuple[str, str]] = []
    for index, item in enumerate(parsed if isinstance(parsed, list) else [parsed]):
        where = f"item {index}: " if isinstance(parsed, list) else ""
        try:
            if not isinstance(item, dict):
                raise UndecodableRecord("record must be a JSON object or an array of objects")
            event = event_from_dict(item)
            if not isinstance(event, CampaignTermsPublished):
                raise UndecodableRecord(f"unexpected event type {event.type}")
            if not event.versions:
                raise UndecodableRecord("campaign terms without any version")
            if key is not None and key != event.campaign_id.encode():
                raise UndecodableRecord(
                    f"key_mismatch: record keyed {key[:64]!r} carries the terms of campaign"
                    f" {event.campaign_id!r}",
                    "KeyMismatch",
                )
            directory.apply(event)
        except UndecodableRecord as exc:
            bad.append((where + str(exc), exc.error_class))
        except Exception as exc:  # one bad campaign never stops the view
            bad.append((f"{where}{exc!r}"[:2000], type(exc).__name__))
    return bad

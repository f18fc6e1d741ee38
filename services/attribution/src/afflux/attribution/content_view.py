"""Every campaign's live streams and creators' handles, kept current from ``content``.

Like the campaign terms, every worker needs every campaign's streams (an order's
partition is its visitor's, a stream's is its own), so the topic is read from the
beginning on all partitions without a consumer group. ``ContentBook.apply`` is plain
bookkeeping; ``follow_content`` feeds it from Kafka.

What counts of a content: a live stream claims orders once its end is known, over the
window of the latest ``ContentPublished`` of that content that carries an end (a
publication still live, without an end, claims nothing yet); a handle is a claim of
its creator in the content's campaign. A content's campaign and creator are those of its
first publication: a later one naming others is left out (the ledger dead-letters it),
unless the content is still held and the later one is the brand's, which takes it over
(``takes_over``: the held publications are forgotten); and so is one stating a time
(its end, too) past the clock skew after its record. Each change that can give an order
a winner is appended to ``changes`` with its record's broker time: the join re-decides
the orders it concerns (``JoinPartition.content_changed``), so an answer given before a
stream's end arrived is corrected, and the correction carries the same time on every
replay.

A content first published with its creator's own key (``reported_by: creator``) is held
until the brand releases it (``ContentReleased``; ``held_for_release``): its stream is
kept as ``held`` (the choice lets it claim nothing) and its handle is not a claim. The
release is a change like a publication, at the release record's broker time: the stream
(its latest publication's window) now claims orders and the handle names its creator,
so orders answered before it are corrected (``late_content``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka.structs import ConsumerRecord

from afflux.shared.content_facts import latest_time
from afflux.shared.core.attribution import NO_CONTENT, Content, LiveTouch, content_handles
from afflux.shared.core.content import content_key, handle_counts, held_for_release, takes_over
from afflux.shared.core.event_time import (
    DEFAULT_CLOCK_SKEW_MS,
    ahead_of_own_clock,
    event_time_in_future,
)
from afflux.shared.core.terms import normalize_handle
from afflux.shared.events import ContentPublished, ContentReleased
from afflux.shared.io.whole_topic import follow_whole_topic
from afflux.shared.topics import CONTENT
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

log = logging.getLogger(__name__)


# Content partition, offset, and which change of the record: twice the item's index in a
# packed record, + 1 for the item's handle (one item may make a stream and a handle change).
Position = tuple[int, int, int]


class IdentityChanged(ValueError):
    """A publication names another campaign or creator than its content's first one."""


@dataclass(frozen=True, slots=True)
class ContentChange:
    """A stream that now claims orders (or claims others), or new handle claims, in
    ``campaign_id``; ``at``: the broker time of the record that made it; ``position``:
    where that record is on the topic (so a partition restored from its changelog skips
    what it had applied)."""

    campaign_id: str
    at: int
    stream: LiveTouch | None = None
    handles: tuple[str, ...] = ()  # normalised
    position: Position = (0, 0, 0)


@dataclass(slots=True)
class _Campaign:
    streams: dict[str, LiveTouch] = field(default_factory=dict)
    handle_claims: set[tuple[str, str]] = field(default_factory=set)
    content: Content | None = None  # cached view, rebuilt after a change


class ContentBook:
    """campaign -> its streams and handle claims, and the list of changes in the order
    they were read."""

    def __init__(
        self, clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS, clock: Callable[[], int] | None = None
    ) -> None:
        # A publication stamped further after its record, or after the worker's ``clock``,
        # than this is left out, as the worker dead-letters such inputs and the oracle
        # (``admitted``) leaves them out.
        self.clock_skew_ms = clock_skew_ms
        self.clock = clock
        self._campaigns: dict[str, _Campaign] = {}
        # <platform>:<content_id> -> (campaign, creator) of its first publication: a later
        # one naming others is refused, as the ledger refuses it (content_identity_changed).
        self._owners: dict[str, tuple[str, str]] = {}
        # <platform>:<content_id> -> reported_by of its first publication, and the
        # contents released; a held content's publications wait in ``_held``.
        self._first_by: dict[str, str | None] = {}
        self._released: set[str] = set()
        self._held: dict[str, list[ContentPublished]] = {}
        self.changes: list[ContentChange] = []
        self.ready = asyncio.Event()

    @classmethod
    def without_content(cls) -> ContentBook:
        """A book no topic feeds, ready at once (for a worker driven without content)."""
        book = cls()
        book.ready.set()
        return book

    def apply(
        self, event: ContentPublished, at: int, position: Position = (0, 0, 0)
    ) -> list[ContentChange]:
        """Take one publication (read at broker time ``at`` from ``position``); the
        changes it makes. Raises ``IdentityChanged`` for a publication of a content first
        published for another campaign or creator (it changes nothing), unless it takes
        over a held content (``takes_over``)."""
        stream_id = stream_key(event)
        owner = self._owners.setdefault(stream_id, (event.campaign_id, event.affiliate_id))
        if owner != (event.campaign_id, event.affiliate_id):
            if not takes_over(
                self._first_by.get(stream_id),
                stream_id in self._released,
                event.reported_by,
                owner[0],
                event.campaign_id,
            ):
                raise IdentityChanged(
                    f"content_identity_changed: {stream_id} was published for campaign"
                    f" {owner[0]!r} by {owner[1]!r}"
                )
            self._forget_held(stream_id, owner[0])
            self._owners[stream_id] = (event.campaign_id, event.affiliate_id)
        first_by = self._first_by.setdefault(stream_id, event.reported_by)
        if event.handle and not handle_counts(
            first_by, stream_id in self._released, event.reported_by
        ):
            event = event.model_copy(update={"handle": None})
        if held_for_release(first_by, stream_id in self._released):
            self._held.setdefault(stream_id, []).append(event)
            campaign = self._campaigns.setdefault(event.campaign_id, _Campaign())
            stream = live_touch(event, held=True)
            if stream is not None and campaign.streams.get(stream_id) != stream:
                campaign.streams[stream_id] = stream  # kept, claiming nothing: no change
                campaign.content = None
            return []
        return self._counted(event.campaign_id, [event], at, position)

    def _forget_held(self, stream_id: str, campaign_id: str) -> None:
        """A held content the brand's publication takes over (``takes_over``): its held
        publications never counted, so they go without a change (its stream claimed
        nothing, its handles were no claims)."""
        self._first_by.pop(stream_id, None)
        self._held.pop(stream_id, None)
        campaign = self._campaigns.get(campaign_id)
        if campaign is not None and campaign.streams.pop(stream_id, None) is not None:
            campaign.content = None

    def release(
        self, event: ContentReleased, at: int, position: Position = (0, 0, 0)
    ) -> list[ContentChange]:
        """Take a release (read at broker time ``at`` from ``position``): a held
        content's publications now count, as if they had all come in this record (its
        stream's latest window claims orders, its handles are claims). A release
        before any publication of the content changes nothing, as the ledger refuses it
        (``unknown_content``): the content stays held for its release and open to the
        brand's takeover (``takes_over``) in both. A second release changes nothing."""
        key = content_key(event.platform, event.content_id)
        if key not in self._owners:
            return []
        self._released.add(key)
        held = self._held.pop(key, [])
        return self._counted(held[0].campaign_id, held, at, position) if held else []

    def _counted(
        self, campaign_id: str, events: list[ContentPublished], at: int, position: Position
    ) -> list[ContentChange]:
        """Take publications (of one content) that count; their changes, at most one for
        the stream and one for the new handle claims, at ``position`` and after it."""
        campaign = self._campaigns.setdefault(campaign_id, _Campaign())
        before = campaign.streams.get(stream_key(events[0]))
        stream: LiveTouch | None = None
        handles: list[str] = []
        for event in events:
            stream = live_touch(event) or stream
            if event.handle and normalize_handle(event.handle):
                claim = (normalize_handle(event.handle), event.affiliate_id)
                if claim not in campaign.handle_claims:
                    campaign.handle_claims.add(claim)
                    handles.append(claim[0])
        made: list[ContentChange] = []
        if stream is not None and before != stream:
            campaign.streams[stream.stream_id] = stream
            made.append(ContentChange(campaign_id, at, stream=stream, position=position))
        if handles:
            handle_position = (position[0], position[1], position[2] + 1)
            made.append(
                ContentChange(campaign_id, at, handles=tuple(handles), position=handle_position)
            )
        if made:
            campaign.content = None
            self.changes.extend(made)
        return made

    def content(self, campaign_id: str) -> Content:
        """What the choice needs of the campaign's content (streams, handles)."""
        campaign = self._campaigns.get(campaign_id)
        if campaign is None:
            return NO_CONTENT
        if campaign.content is None:
            campaign.content = Content(
                tuple(campaign.streams.values()), content_handles(campaign.handle_claims)
            )
        return campaign.content


def stream_key(event: ContentPublished) -> str:
    return f"{event.platform}:{event.content_id}"


def live_touch(event: ContentPublished, held: bool = False) -> LiveTouch | None:
    """The stream a live publication claims with, once its end is known; None for other
    kinds, a stream still live, or (never accepted upstream) an end before the start."""
    start, end = event.live_started_at, event.live_ended_at
    if event.kind != "live" or start is None or end is None or end < start:
        return None
    return LiveTouch(stream_key(event), event.affiliate_id, event.campaign_id, start, end, held)


_READ = ("ContentPublished", "ContentReleased")


def apply_record(
    book: ContentBook, value: bytes | None, at: int, partition: int = 0, offset: int = 0
) -> list[str]:
    """Apply every live publication, handle or release in one record; reasons for bad
    items. Stats and other kinds without a handle are not this reader's business and
    pass silently."""
    if value is None or (b"ContentPublished" not in value and b"ContentReleased" not in value):
        return []  # stats, most of the topic: not even parsed (a worker reads it all at start)
    try:
        parsed = parse_value(value)
    except UndecodableRecord as exc:
        return [str(exc)]
    bad: list[str] = []
    for index, item in enumerate(parsed if isinstance(parsed, list) else [parsed]):
        if not isinstance(item, dict) or item.get("type") not in _READ:
            continue
        try:
            event = event_from_dict(item)
            if not isinstance(event, ContentPublished | ContentReleased):
                continue
            # A release stamped too far ahead is left out too, as the oracle's ``admitted``
            # leaves out every input event (the content API stamps releases itself).
            if event_time_in_future(latest_time(event), at, book.clock_skew_ms):
                bad.append(f"event_time_in_future: a time of {latest_time(event)}, record {at}")
                continue
            now = book.clock() if book.clock is not None else None
            if now is not None and ahead_of_own_clock(latest_time(event), now, book.clock_skew_ms):
                bad.append(f"event_time_in_future: a time of {latest_time(event)}, clock {now}")
                continue
            if isinstance(event, ContentReleased):
                book.release(event, at, (partition, offset, 2 * index))
            else:
                book.apply(event, at, (partition, offset, 2 * index))
        except IdentityChanged as exc:
            bad.append(str(exc)[:500])
        except Exception as exc:  # one bad item never stops the view (the content
            bad.append(f"{exc!r}"[:500])  # consumer dead-letters it)
    return bad


async def follow_content(book: ContentBook, bootstrap: str) -> None:
    """Feed ``book`` from the content topic until cancelled; ``book.ready`` once it has
    read every partition up to the high watermark its first fetches reported."""

    async def on_record(record: ConsumerRecord[bytes, bytes]) -> None:
        applied = apply_record(
            book, record.value, record.timestamp, record.partition, record.offset
        )
        for reason in applied:
            log.warning("content record %d@%d: %s", record.partition, record.offset, reason)

    await follow_whole_topic(CONTENT.name, bootstrap, on_record, book.ready)

"""Publishing campaign terms versions to the compacted ``campaigns`` topic."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer

from afflux.shared.core.clock import Clock
from afflux.shared.core.ids import derived_id
from afflux.shared.core.periods import cadence_change
from afflux.shared.core.terms import (
    CampaignTerms,
    TermsVersion,
    append_version,
    backdated_version,
    currency_change,
    merchant_change,
    takes_over,
)
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.kafka import new_producer, stop_consumer
from afflux.shared.topics import CAMPAIGNS
from afflux.shared.wire import (
    MAX_EXPANDED_BYTES,
    MAX_RECORD_BYTES,
    UndecodableRecord,
    compress,
    decode_record,
    encode,
)

# The key, the headers and the record batch around a value: what the producer's request
# limit (1 MiB, the same as MAX_RECORD_BYTES) counts beside it.
RECORD_OVERHEAD_BYTES = 4 * 1024
# A history this large goes out compressed (``afflux.shared.wire.compress``): below it a
# record stays plain JSON, what an integrator reading the topic expects.
COMPRESS_ABOVE_BYTES = 64 * 1024


class TermsTooLarge(ValueError):
    """A campaign's whole version history no longer fits one campaigns record."""


class TermsRefused(ValueError):
    """Terms that may not follow the campaign's versions (``field``: the entry's field)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def next_publication(
    history: tuple[TermsVersion, ...],
    terms: CampaignTerms,
    effective_from: int | None,
    now_ms: int,
) -> CampaignTermsPublished | None:
    """The record that adds ``terms`` as a new version, or None when nothing changed:
    the terms equal the latest version's, at the same ``effective_from`` when one is
    given (without one, a version would start now: the same terms again are no change,
    so a file or a PUT without it can be applied twice)."""
    if effective_from is None and history and max(history, key=_number).terms == terms:
        return None
    versions = append_version(
        history, terms, effective_from if effective_from is not None else now_ms, now_ms
    )
    if versions == history:
        return None
    latest = versions[-1]
    return CampaignTermsPublished(
        event_id=derived_id("terms", terms.campaign_id, str(latest.version)),
        occurred_at=latest.published_at,
        campaign_id=terms.campaign_id,
        versions=versions,
    )


def _number(version: TermsVersion) -> int:
    return version.version


def record_value(
    record: CampaignTermsPublished,
    *,
    max_expanded: int = MAX_EXPANDED_BYTES,
    max_record: int = MAX_RECORD_BYTES - RECORD_OVERHEAD_BYTES,
) -> bytes:
    """The campaigns record's value: the event's JSON, compressed above
    ``COMPRESS_ABOVE_BYTES``; TermsTooLarge when a reader could not take it.

    Each record holds every version (the topic is compacted by campaign): one over either
    limit could never be sent, or never be read back if it were. Compressed, a version
    that repeats the one before costs a few hundred bytes, so the expanded limit is what
    a long history of a large coupon map meets first."""
    value = encode(record)
    size = len(value)
    campaign = record.campaign_id
    if size > max_expanded:
        raise TermsTooLarge(
            f"campaign {campaign!r}: its {len(record.versions)} versions encode to"
            f" {size:,} bytes, over the {max_expanded:,} a campaigns record may"
            " expand to; publish smaller terms (fewer coupons or overrides per version)"
        )
    if size > COMPRESS_ABOVE_BYTES:
        value = compress(value)
    if len(value) > max_record:
        raise TermsTooLarge(
            f"campaign {campaign!r}: its {len(record.versions)} versions encode to"
            f" {size:,} bytes, {len(value):,} compressed, over the {max_record:,} a campaigns"
            " record may hold; publish smaller terms (fewer coupons or overrides per version)"
        )
    return value


async def read_all_versions(bootstrap: str) -> dict[str, tuple[TermsVersion, ...]]:
    """Every campaign's version history as currently on the topic (read to the high watermark)."""
    consumer = AIOKafkaConsumer(
        CAMPAIGNS.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    history: dict[str, tuple[TermsVersion, ...]] = {}
    consumed: dict[object, int] = {}
    try:
        idle_rounds = 0
        while idle_rounds < 3:
            batches = await consumer.getmany(timeout_ms=300, max_records=1000)
            if not batches:
                assigned = consumer.assignment()
                done = assigned and all(
                    (consumer.highwater(tp) or 0) <= consumed.get(tp, 0) for tp in assigned
                )
                idle_rounds = idle_rounds + 1 if done or not assigned else idle_rounds
                continue
            for tp, records in batches.items():
                for record in records:
                    consumed[tp] = record.offset + 1
                    try:
                        events = decode_record(record.value)
                    except UndecodableRecord:
                        continue
                    for event in events:
                        if isinstance(event, CampaignTermsPublished):
                            known = history.get(event.campaign_id, ())
                            if takes_over(known, event.versions):  # as every reader does
                                history[event.campaign_id] = event.versions
    finally:
        await stop_consumer(consumer)
    return history


async def publish_terms(
    bootstrap: str,
    entries: Sequence[tuple[CampaignTerms, int | None]],
    clock: Clock = system_clock,
    *,
    forward_only: bool = True,
) -> list[CampaignTermsPublished]:
    """Publish each campaign's terms as a new version when they differ from the latest.
    ``forward_only``: a later version may not start before now (``backdated_version``);
    False only where a history is built on purpose (tests, benchmarks' seeded terms)."""
    history = await read_all_versions(bootstrap)
    now = clock()
    # A campaign's currency and merchant are those of its stored versions and of the
    # file's entries before: listing a campaign twice in one file changes neither.
    planned = dict(history)
    for terms, effective_from in entries:  # before anything is sent: a refused file
        versions = history.get(terms.campaign_id, ())  # publishes nothing
        before = planned.get(terms.campaign_id, ())
        refused = currency_change(before, terms)
        if refused is not None:
            raise TermsRefused("currency", refused)
        refused = merchant_change(before, terms)
        if refused is not None:
            raise TermsRefused("merchant_id", refused)
        starts = effective_from if effective_from is not None else now
        planned[terms.campaign_id] = append_version(before, terms, starts, now)
        refused = cadence_change(before, planned[terms.campaign_id])
        if refused is not None:
            raise TermsRefused("plan.period", refused)
        backdated = backdated_version(versions, terms, starts, now)
        if forward_only and backdated is not None:
            raise TermsRefused("effective_from", backdated)
    producer = new_producer(bootstrap)
    await producer.start()
    published = []
    try:
        for terms, effective_from in entries:
            record = next_publication(
                history.get(terms.campaign_id, ()), terms, effective_from, clock()
            )
            if record is None:
                continue
            value = record_value(record)
            await producer.send_and_wait(CAMPAIGNS.name, value, key=terms.campaign_id.encode())
            history[terms.campaign_id] = record.versions
            published.append(record)
    finally:
        await producer.stop()
    return published


async def republish_history(bootstrap: str, campaign_id: str) -> CampaignTermsPublished | None:
    """Write the campaign's whole history (as on the topic) again as its latest record;
    None when the topic holds none. What keeps a campaign after a tombstone: the topic
    is compacted by campaign, so a tombstone would in time delete every version before
    it, and every service starting after that would lose the campaign's terms (its
    pending money refused). The record is the latest publication's own event again,
    which readers take as no change. Call it under the campaign's publication lock
    (``campaign_terms_lock``), or a version published meanwhile could be left out."""
    history = (await read_all_versions(bootstrap)).get(campaign_id)
    if not history:
        return None
    latest = max(history, key=_number)
    record = CampaignTermsPublished(
        event_id=derived_id("terms", campaign_id, str(latest.version)),
        occurred_at=latest.published_at,
        campaign_id=campaign_id,
        versions=history,
    )
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(CAMPAIGNS.name, record_value(record), key=campaign_id.encode())
    finally:
        await producer.stop()
    return record

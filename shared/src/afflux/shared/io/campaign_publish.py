"""Publishing campaign terms versions to the compacted ``campaigns`` topic."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer

from afflux.shared.core.clock import Clock
from afflux.shared.core.ids import derived_id
from afflux.shared.core.terms import CampaignTerms, TermsVersion, append_version
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.kafka import new_producer, send_event, stop_consumer
from afflux.shared.topics import CAMPAIGNS
from afflux.shared.wire import MAX_RECORD_BYTES, UndecodableRecord, decode_record, encode

# The key, the headers and the record batch around a value: what the producer's request
# limit (1 MiB, the same as MAX_RECORD_BYTES) counts beside it.
RECORD_OVERHEAD_BYTES = 4 * 1024


class TermsTooLarge(ValueError):
    """A campaign's whole version history no longer fits one campaigns record."""


def next_publication(
    history: tuple[TermsVersion, ...],
    terms: CampaignTerms,
    effective_from: int | None,
    now_ms: int,
) -> CampaignTermsPublished | None:
    """The record that adds ``terms`` as a new version, or None when nothing changed."""
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
                            if len(event.versions) >= len(known):
                                history[event.campaign_id] = event.versions
    finally:
        await stop_consumer(consumer)
    return history


async def publish_terms(
    bootstrap: str,
    entries: Sequence[tuple[CampaignTerms, int | None]],
    clock: Clock = system_clock,
) -> list[CampaignTermsPublished]:
    """Publish each campaign's terms as a new version when they differ from the latest."""
    history = await read_all_versions(bootstrap)
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
            size = len(encode(record))
            if size > MAX_RECORD_BYTES - RECORD_OVERHEAD_BYTES:
                # Each record holds every version (the topic is compacted by campaign):
                # one over the limit could never be sent, nor read back if it were.
                raise TermsTooLarge(
                    f"campaign {terms.campaign_id!r}: its {len(record.versions)} versions"
                    f" encode to {size:,} bytes, over the"
                    f" {MAX_RECORD_BYTES - RECORD_OVERHEAD_BYTES:,} a campaigns record may"
                    " hold; publish smaller terms (fewer coupons or overrides per version)"
                )
            await send_event(producer, CAMPAIGNS.name, terms.campaign_id, record)
            history[terms.campaign_id] = record.versions
            published.append(record)
    finally:
        await producer.stop()
    return published

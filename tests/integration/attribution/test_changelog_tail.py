"""Reading a changelog from a local store's offset: the tail after it, to the fetch
high watermark; an offset the changelog does not hold is an error, never a silent
read from elsewhere (the disk store then recovers from the whole changelog)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.errors import OffsetOutOfRangeError

from afflux.attribution.changelog import ensure_changelogs, read_tails
from afflux.shared.io.kafka import new_producer

pytestmark = pytest.mark.integration

TOPIC = "test-tail-state"
RECORDS = 30  # keys k0..k9, each written three times, in batches of several records


@dataclass(frozen=True)
class Case:
    start: int | None
    keys: int  # distinct keys read
    comment: str


CASES = [
    Case(None, 10, "no local store: the whole changelog"),
    Case(0, 10, "a store written before the first record"),
    Case(25, 5, "the last five records"),
    Case(RECORDS - 1, 1, "the last record only: the last batch is read"),
    Case(RECORDS, 0, "a store as new as the changelog: nothing to read"),
]


@pytest.fixture(scope="module")
def changelog(private_broker: tuple[str, Path]) -> str:
    bootstrap, _ = private_broker

    async def fill() -> None:
        await ensure_changelogs(bootstrap, [TOPIC], 1)
        producer = new_producer(bootstrap, linger_ms=50)
        await producer.start()
        try:
            acks = [
                await producer.send(TOPIC, f"v{n}".encode(), key=f"k{n % 10}".encode(), partition=0)
                for n in range(RECORDS)
            ]
            await asyncio.gather(*acks)
        finally:
            await producer.stop()

    asyncio.run(fill())
    return bootstrap


@pytest.mark.parametrize("case", CASES, ids=[c.comment for c in CASES])
def test_the_tail_after_a_store_offset_is_read_to_the_high_watermark(
    changelog: str, case: Case
) -> None:
    tails = asyncio.run(read_tails(changelog, TOPIC, {0: case.start}))
    table, end = tails[0]
    assert end == RECORDS
    assert len(table) == case.keys
    if case.keys:
        assert table["k9"] == b"v29"  # the latest value of a key, from the last batch


def test_an_offset_past_the_changelog_end_is_an_error(changelog: str) -> None:
    # A local store older than a changelog that was deleted and created again.
    with pytest.raises(OffsetOutOfRangeError):
        asyncio.run(read_tails(changelog, TOPIC, {0: RECORDS + 5}))
